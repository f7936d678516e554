//! Property tests: decoding and transform never panic on arbitrary payload shapes, and every
//! record the transform emits passes validation (the others are reported with a code).

use clevertap_etl_core::spec::{OnBreach, ValidationSettings};
use clevertap_etl_core::validate::is_clean;
use clevertap_etl_core::{
    explain, transform, transform_owned, AccountId, Routing, TransformSpec, UnixSeconds,
    WebhookPayload,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys CleverTap or the spec give a meaning to, mixed with arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Phone", "Gender", "Email", "Employed", "Education", "Married", "Age", "Items",
            "Name", "DOB", "at", "timestamp", "city", "event_name", "target_account",
            "profile_upload", "event_upload", "a.b", "tag#1", "$%", "", "x".repeat(130).leak(),
        ])
        .prop_map(str::to_owned),
        2 => "[a-zA-Z0-9 _.#$%:;!é🎉-]{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e12..1.0e15f64).prop_map(Value::from),
        prop::sample::select(vec![
            "yes",
            "No",
            "male",
            "F",
            "+919876543210",
            "98765 43210",
            "a@b.co",
            " x@y.z ",
            "graduate",
            "33",
            "2020-05-12T13:42:30Z",
            "2020-05-12T19:12:30+05:30",
            "1700000000123",
            "$D_1589290950",
            "App Launched",
            "W44-Z4K-K65Z",
            "  ",
        ])
        .prop_map(Value::from),
        "[ -~é🎉]{0,16}".prop_map(Value::String),
        Just(Value::String("é".repeat(300))),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[_a-zA-Z0-9@.+ ]{0,12}".prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

/// A profile-shaped object: known keys (any spelling) with values of their kind, mostly, and
/// now and then anything (which the decoder must refuse without panicking).
fn profile() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        4 => (
            prop::sample::select(vec!["objectId", "identity", "Identity", "email", "Email", "name", "push_token"]),
            id(),
        ).prop_map(|(k, v)| (k.to_owned(), v)),
        4 => (
            prop::sample::select(vec!["profileData", "ProfileData", "event_properties", "key_values"]),
            object(),
        ).prop_map(|(k, v)| (k.to_owned(), v)),
        1 => prop::collection::vec("[a-z0-9@.]{0,8}", 0..4)
            .prop_map(|ids| ("all_identities".to_owned(), Value::from(ids))),
        1 => (key(), json()),
    ];
    prop::collection::vec(field, 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn payload() -> impl Strategy<Value = Value> {
    let profiles = prop_oneof![
        6 => prop::collection::vec(profile(), 0..5).prop_map(Value::Array),
        1 => profile(),
        1 => json(),
    ];
    let key_values = prop_oneof![4 => object(), 1 => json()];
    (profiles, key_values, any::<bool>(), json()).prop_map(|(profiles, kv, is_test, target)| {
        let mut o = Map::new();
        o.insert("profiles".into(), profiles);
        o.insert("key_values".into(), kv);
        o.insert("is_test".into(), Value::Bool(is_test));
        o.insert("targetId".into(), target);
        Value::Object(o)
    })
}

/// The default spec, and one that uses every mapping feature, under three breach policies.
fn spec() -> impl Strategy<Value = TransformSpec> {
    let rich: TransformSpec = toml::from_str(
        r#"
        identifiers = ["identity", "email", "objectId"]
        [profile]
        copy = { Name = "name", Email = "email", Ids = "all_identities", KV = "key_values.event_name" }
        convert = { Age = "number", Married = "bool", DOB = "date", city = "string" }
        ts = { field = "profileData.at" }
        [[events]]
        [[events]]
        name = "Charged"
        ts = { field = "event_properties.timestamp", unit = "seconds" }
        [[events]]
        source = "key_values"
        ts = "now"
        [validation]
        max_event_properties = 4
        max_value_bytes = 64
        "#,
    )
    .unwrap();
    let policy = prop::sample::select(vec![OnBreach::Reject, OnBreach::Fix, OnBreach::Drop]);
    let limits = prop::option::of((0..130usize, 0..600usize, 0..8usize, 0..5usize));
    (
        prop::sample::select(vec![TransformSpec::default(), rich]),
        policy,
        limits,
    )
        .prop_map(|(mut spec, on, limits)| {
            let v = &mut spec.validation;
            if let Some((keys, values, props, items)) = limits {
                v.max_key_chars = keys;
                v.max_value_bytes = values;
                v.max_event_properties = props;
                v.max_profile_array_items = items;
            }
            *v = ValidationSettings {
                key_length: on,
                key_chars: on,
                value_length: on,
                nested: on,
                event_properties: on,
                ts: on,
                phone: on,
                gender: on,
                email: on,
                employed: on,
                education: on,
                married: on,
                age: on,
                ..v.clone()
            };
            spec
        })
}

const CODES: &[u16] = &[
    509, 512, 513, 514, 515, 516, 517, 518, 519, 520, 522, 523, 525,
];

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = WebhookPayload::from_slice(&bytes);
    }

    #[test]
    fn transform_never_panics_and_emits_only_valid_records(body in payload(), spec in spec()) {
        let Ok(payload) = WebhookPayload::from_slice(body.to_string().as_bytes()) else {
            return Ok(());
        };
        let routing = Routing {
            accounts: vec![AccountId::try_from("W44-Z4K-K65Z").unwrap()],
            allow_payload_credentials: false,
        };
        let result = transform(&payload, &spec, &routing, UnixSeconds(1_700_000_000));
        // The owned variant plans exactly the same.
        let owned = transform_owned(payload.clone(), &spec, &routing, UnixSeconds(1_700_000_000));
        prop_assert_eq!(&owned, &result);
        let Ok(plan) = result else {
            return Ok(());
        };
        for planned in plan.accounts.iter().flat_map(|a| &a.records) {
            prop_assert!(
                is_clean(&planned.record, &spec.validation),
                "emitted record breaks a rule: {:?}", planned.record
            );
            prop_assert!(planned.profile < payload.profiles.len());
        }
        for skipped in &plan.skipped {
            prop_assert!(CODES.contains(&skipped.code), "unexpected code {}", skipped.code);
            prop_assert!(skipped.profile < payload.profiles.len());
        }
        let why = explain(&payload, &plan);
        prop_assert_eq!(why.counts.send, plan.record_count());
        prop_assert_eq!(why.counts.rejected, plan.skipped.len());
        let _ = why.to_string();
        // The plan serializes (it is what the service returns).
        prop_assert!(serde_json::to_string(&plan).is_ok());
    }
}
