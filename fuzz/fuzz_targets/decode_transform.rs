//! Decodes arbitrary bytes as a webhook payload and, when they decode, runs the transform with
//! the default spec (borrowed and owned, which must agree), checks that every emitted record
//! passes validation untouched and every skipped one carries a CleverTap code, and encodes the
//! plan and its request bodies.
//!
//! Run with: `cargo +nightly fuzz run decode_transform` (from the repository root).
#![no_main]

use clevertap_etl_core::deliver::bodies;
use clevertap_etl_core::validate::is_clean;
use clevertap_etl_core::{
    explain, transform, transform_owned, AccountId, DeliverySettings, Routing, TransformSpec,
    UnixSeconds, WebhookPayload,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = WebhookPayload::from_slice(data) else {
        return;
    };
    let spec = TransformSpec::default();
    let Ok(account) = AccountId::try_from("W44-Z4K-K65Z") else {
        return;
    };
    let routing = Routing {
        accounts: vec![account],
        allow_payload_credentials: false,
    };
    let now = UnixSeconds(1_700_000_000);
    let plan = transform(&payload, &spec, &routing, now);
    let owned = transform_owned(payload.clone(), &spec, &routing, now);
    assert_eq!(plan, owned, "transform and transform_owned disagree");
    let Ok(plan) = plan else {
        return;
    };
    for planned in plan.accounts.iter().flat_map(|a| &a.records) {
        assert!(
            is_clean(&planned.record, &spec.validation),
            "emitted record breaks a rule: {:?}",
            planned.record
        );
        assert!(planned.profile < payload.profiles.len());
    }
    for skipped in &plan.skipped {
        assert!((509..=528).contains(&skipped.code), "code {}", skipped.code);
    }
    let why = explain(&payload, &plan);
    assert_eq!(why.counts.send, plan.record_count());
    let settings = DeliverySettings::default();
    for account in &plan.accounts {
        let records: Vec<_> = account.records.iter().map(|r| r.record.clone()).collect();
        let sent: usize = bodies(&records, &settings).iter().map(|b| b.d.len()).sum();
        assert_eq!(sent, records.len());
    }
    assert!(serde_json::to_vec(&plan).is_ok());
});
