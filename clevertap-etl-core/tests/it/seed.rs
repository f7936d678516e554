//! The seed script's behaviour, as a golden test: its sample payload must plan exactly the two
//! records it sent back.

use clevertap_etl_core::{transform, Routing, TransformSpec, UnixSeconds};
use serde_json::json;

use crate::support::payload;

#[test]
fn seed_sample_plans_exactly_the_seed_records() {
    let payload = payload("seed.json");
    let plan = transform(
        &payload,
        &TransformSpec::default(),
        &Routing::default(),
        UnixSeconds(1_589_621_800),
    )
    .unwrap();
    assert!(plan.skipped.is_empty());
    assert_eq!(plan.accounts.len(), 1);
    assert_eq!(
        plan.accounts[0].target.account_id().as_str(),
        "W44-Z4K-K65Z"
    );
    let records: Vec<_> = plan.accounts[0]
        .records
        .iter()
        .map(|r| r.record.to_value())
        .collect();
    // The seed's two request bodies, record for record.
    let seed_profile = json!({"objectId": "__189f188bf9394c0da3d219ea4959a785", "type": "profile",
        "profileData": {"city": "Mumbai", "evtname": "CSV upload event test", "apitest": 23,
                        "datetest": "$D_1589290950", "itp": "1", "test": "1233"}});
    let seed_event = json!({"objectId": "__189f188bf9394c0da3d219ea4959a785", "type": "event",
        "evtName": "From Webhook",
        "evtData": {"Event Prop Name": "Property value", "CT App Version": "2.2", "CT Source": "Mobile"}});
    assert_eq!(records, vec![seed_profile, seed_event]);
}

#[test]
fn seed_sample_keeps_every_field() {
    let p = payload("seed.json");
    assert_eq!(p.target_id, Some(json!(1_589_621_729)));
    let prof = &p.profiles[0];
    assert_eq!(prof.identity.as_deref(), Some("1234"));
    assert_eq!(prof.email.as_deref(), Some("yash+567@clevertap.com"));
    assert_eq!(prof.name.as_deref(), Some("Yash TEST"));
    assert_eq!(prof.all_identities.len(), 3);
    assert!(prof.push_token.as_deref().unwrap().starts_with("fcm:"));
    assert!(!p.is_test);
}
