//! Decode + transform + encode of a webhook payload, next to a bare `serde_json::Value` parse +
//! serialize of the same bytes: the transform's cost over the least any JSON service pays.
//!
//! Run with: `cargo bench -p clevertap-etl-core --bench transform -- --warm-up-time 1 --measurement-time 3`
// `criterion_group!` defines an undocumented `benches` function.
#![allow(missing_docs)]

use std::hint::black_box;

use clevertap_etl_core::record::UploadRecord;
use clevertap_etl_core::{
    transform, transform_owned, AccountId, Routing, TransformSpec, UnixSeconds, WebhookPayload,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Serialize;
use serde_json::{json, Value};

/// A payload of `n` seed-like profiles, each with its own ids.
fn payload(n: usize) -> Vec<u8> {
    let profiles: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "key_values": {"target_account": "W44-Z4K-K65Z", "profile_upload": "yes", "event_upload": "yes"},
                "email": format!("user+{i}@example.com"),
                "identity": i.to_string(),
                "all_identities": [i.to_string(), format!("user+{i}@example.com")],
                "objectId": format!("__{i:032x}"),
                "profileData": {"city": "Mumbai", "evtname": "CSV upload event test", "apitest": i,
                    "datetest": "$D_1589290950", "itp": "1", "test": "1233", "Gender": "M",
                    "Phone": "+919876543210", "tags": ["a", "b"]},
                "name": format!("User {i}"),
                "push_token": "fcm:eBtus6A0RpKfL-HPuUzrlp:APA91bFiq_suxBi3eS5nMR7i3JfmvyLP4QURtXHZqZX",
                "event_properties": {"Event Prop Name": "Property value", "CT App Version": "2.2",
                    "CT Source": "Mobile", "Amount": 12.5}
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "targetId": 1_589_621_729,
        "key_values": {"target_account": "W44-Z4K-K65Z", "profile_upload": "yes", "event_upload": "yes"},
        "profiles": profiles,
    }))
    .expect("serializable")
}

/// One upload body per account, borrowing the planned records.
#[derive(Serialize)]
struct Body<'a> {
    d: Vec<&'a UploadRecord>,
}

fn etl(bytes: &[u8], spec: &TransformSpec, routing: &Routing) -> usize {
    let payload = WebhookPayload::from_slice(bytes).expect("valid payload");
    let plan = transform(&payload, spec, routing, UnixSeconds(1_700_000_000)).expect("plannable");
    plan.accounts
        .iter()
        .map(|group| {
            let body = Body {
                d: group.records.iter().map(|r| &r.record).collect(),
            };
            serde_json::to_vec(&body).expect("serializable").len()
        })
        .sum()
}

/// [`etl`] with [`transform_owned`], as the webhook path can (it needs the payload no more).
fn etl_owned(bytes: &[u8], spec: &TransformSpec, routing: &Routing) -> usize {
    let payload = WebhookPayload::from_slice(bytes).expect("valid payload");
    let plan =
        transform_owned(payload, spec, routing, UnixSeconds(1_700_000_000)).expect("plannable");
    plan.accounts
        .iter()
        .map(|group| {
            let body = Body {
                d: group.records.iter().map(|r| &r.record).collect(),
            };
            serde_json::to_vec(&body).expect("serializable").len()
        })
        .sum()
}

fn bare(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).expect("valid json");
    serde_json::to_vec(&value).expect("serializable").len()
}

fn bench(c: &mut Criterion) {
    let spec = TransformSpec::default();
    let routing = Routing {
        accounts: vec![AccountId::try_from("W44-Z4K-K65Z").expect("valid id")],
        allow_payload_credentials: false,
    };
    let mut group = c.benchmark_group("webhook");
    for n in [10, 10_000] {
        let bytes = payload(n);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("bare_value_roundtrip", n),
            &bytes,
            |b, bytes| b.iter(|| bare(black_box(bytes))),
        );
        group.bench_with_input(
            BenchmarkId::new("decode_transform_encode", n),
            &bytes,
            |b, bytes| b.iter(|| etl(black_box(bytes), &spec, &routing)),
        );
        group.bench_with_input(
            BenchmarkId::new("decode_transform_owned_encode", n),
            &bytes,
            |b, bytes| b.iter(|| etl_owned(black_box(bytes), &spec, &routing)),
        );
    }
    group.finish();

    // The stages alone, to see where the time goes.
    let bytes = payload(10_000);
    let mut stages = c.benchmark_group("stages");
    stages.throughput(Throughput::Bytes(bytes.len() as u64));
    stages.bench_function("decode/10000", |b| {
        b.iter(|| WebhookPayload::from_slice(black_box(&bytes)).expect("valid payload"))
    });
    let decoded = WebhookPayload::from_slice(&bytes).expect("valid payload");
    stages.bench_function("transform/10000", |b| {
        b.iter(|| {
            transform(black_box(&decoded), &spec, &routing, UnixSeconds(0)).expect("plannable")
        })
    });
    let plan = transform(&decoded, &spec, &routing, UnixSeconds(0)).expect("plannable");
    stages.bench_function("encode/10000", |b| {
        b.iter(|| {
            let body = Body {
                d: plan.accounts[0].records.iter().map(|r| &r.record).collect(),
            };
            serde_json::to_vec(black_box(&body)).expect("serializable")
        })
    });
    stages.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
