//! Embed the transform in your own code: decode a CleverTap webhook body and map it to Upload
//! API records, with no I/O and no service.
//!
//! Run with: `cargo run -p clevertap-etl-examples --example embed_transform`

use clevertap_etl_core::{
    transform, DeliverySettings, Preview, Routing, TransformSpec, UnixSeconds, WebhookPayload,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Decode. Errors carry the JSON path of the fault.
    let payload = WebhookPayload::from_slice(clevertap_etl_examples::SEED.as_bytes())?;

    // 2. Transform with the default spec (the seed's behaviour). The time is yours to pass in.
    let spec = TransformSpec::default();
    let routing = Routing::default(); // no allowlist: records go to the account the payload names
    let plan = transform(&payload, &spec, &routing, UnixSeconds(1_700_000_000))?;

    // 3. Use the records: here, print the request bodies that would be sent.
    for upload in Preview::of(&plan, &DeliverySettings::default()).uploads {
        println!(
            "account {}: {}",
            upload.account_id,
            serde_json::to_string(&upload.body)?
        );
    }
    for skipped in &plan.skipped {
        println!("skipped [{}] {}", skipped.code, skipped.reason);
    }

    // A bad body is refused with the path of the fault.
    if let Err(err) = WebhookPayload::from_slice(br#"{"profiles": [{"profileData": "oops"}]}"#) {
        println!("bad payload: {err}");
    }
    Ok(())
}
