//! The delivery engine end to end, over the real HTTP uploader: every row of the retry table,
//! the per-account governor, batching by count and bytes, and the never-send-twice rule.
//!
//! Backoffs are a few milliseconds; nothing asserts on durations, only on counts and orders.

use std::sync::Arc;
use std::time::Duration;

use clevertap_etl_core::record::{EventRecord, Identifier, ProfileRecord};
use clevertap_etl_core::retry::Backoff;
use clevertap_etl_core::transform::{AccountPlan, PlannedRecord};
use clevertap_etl_core::{
    AccountId, Deliverer, DeliveryReport, DeliverySettings, Endpoint, HttpUploader,
    HttpUploaderConfig, Job, Plan, RecordOutcome, Target, UploadRecord,
};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fake::{Fake, FakeConfig};
use crate::support::credentials;

const ACC: &str = "ACC-1";

fn event(n: usize) -> UploadRecord {
    UploadRecord::Event(EventRecord {
        identifier: Identifier::Identity(format!("u{n}")),
        ts: None,
        evt_name: "From Webhook".into(),
        evt_data: serde_json::Map::new(),
    })
}

fn profile(n: usize) -> UploadRecord {
    UploadRecord::Profile(ProfileRecord {
        identifier: Identifier::Identity(format!("u{n}")),
        ts: None,
        profile_data: serde_json::Map::new(),
    })
}

fn events(n: usize) -> Vec<UploadRecord> {
    (0..n).map(event).collect()
}

fn plan(groups: Vec<(&str, Vec<UploadRecord>)>) -> Plan {
    Plan {
        target_id: None,
        is_test: false,
        accounts: groups
            .into_iter()
            .map(|(account, records)| AccountPlan {
                target: Target::Configured(AccountId::try_from(account).unwrap()),
                records: records
                    .into_iter()
                    .enumerate()
                    .map(|(profile, record)| PlannedRecord {
                        profile,
                        record,
                        fixes: Vec::new(),
                    })
                    .collect(),
            })
            .collect(),
        skipped: vec![],
    }
}

/// Default settings with millisecond backoffs.
fn fast() -> DeliverySettings {
    DeliverySettings {
        backoff: Backoff {
            base: Duration::from_millis(2),
            max: Duration::from_millis(10),
            retry_after_max: Duration::from_millis(20),
        },
        ..DeliverySettings::default()
    }
}

fn deliverer(base_url: &str, accounts: &[&str], settings: DeliverySettings) -> Arc<Deliverer> {
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(base_url.into()),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    Arc::new(
        Deliverer::new(
            Arc::new(uploader),
            accounts.iter().map(|a| credentials(a, "PASS-WORD")),
            settings,
        )
        .with_jitter_seed(7),
    )
}

fn success(processed: usize) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "processed": processed, "unprocessed": []}))
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn values(records: &[UploadRecord]) -> Value {
    json!({ "d": records.iter().map(UploadRecord::to_value).collect::<Vec<_>>() })
}

fn assert_all(outcomes: &[RecordOutcome], expected: &RecordOutcome) {
    assert!(outcomes.iter().all(|o| o == expected), "{outcomes:#?}");
}

#[tokio::test]
async fn success_sends_one_request_and_processes_all() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .and(header("X-CleverTap-Account-Id", ACC))
        .respond_with(success(3))
        .expect(1)
        .mount(&server)
        .await;
    let plan = plan(vec![(ACC, events(3))]);
    let outcomes = deliverer(&server.uri(), &[ACC], fast())
        .deliver(&plan)
        .await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    let report = DeliveryReport::build("d1".into(), &plan, &outcomes);
    assert!(report.counts.is_consistent());
    assert_eq!(report.counts.processed, 3);
}

#[tokio::test]
async fn row_429_is_retried_and_lowers_the_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_string("Too many concurrent requests"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success(2))
        .expect(1)
        .mount(&server)
        .await;
    let d = deliverer(&server.uri(), &[ACC], fast());
    let outcomes = d.deliver(&plan(vec![(ACC, events(2))])).await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    let stats = d.concurrency(&AccountId::try_from(ACC).unwrap()).unwrap();
    // 15 halved to 7 by the 429, then one success: 8.
    assert_eq!(stats.limit, 8);
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn row_5xx_and_408_are_retried_until_success() {
    for status in [408, 500, 502, 503, 504] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string("try later"))
            .up_to_n_times(2)
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(success(1))
            .expect(1)
            .mount(&server)
            .await;
        let outcomes = deliverer(&server.uri(), &[ACC], fast())
            .deliver(&plan(vec![(ACC, events(1))]))
            .await;
        assert_all(&outcomes, &RecordOutcome::Processed);
    }
}

#[tokio::test]
async fn row_retry_after_is_honoured_within_its_clamp() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "3600"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success(1))
        .expect(1)
        .mount(&server)
        .await;
    // A one-hour Retry-After, clamped to 20 ms: the retry happens and the test ends.
    let outcomes = deliverer(&server.uri(), &[ACC], fast())
        .deliver(&plan(vec![(ACC, events(1))]))
        .await;
    assert_all(&outcomes, &RecordOutcome::Processed);
}

#[tokio::test]
async fn row_timeout_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success(1).set_delay(Duration::from_secs(5)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success(1))
        .expect(1)
        .mount(&server)
        .await;
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(server.uri()),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    let d = Deliverer::new(Arc::new(uploader), [credentials(ACC, "P")], fast());
    let outcomes = d.deliver(&plan(vec![(ACC, events(1))])).await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn row_connection_error_is_retried_until_attempts_run_out() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let settings = DeliverySettings {
        max_attempts: 3,
        ..fast()
    };
    let outcomes = deliverer(&format!("http://{addr}"), &[ACC], settings)
        .deliver(&plan(vec![(ACC, events(2))]))
        .await;
    for o in &outcomes {
        let RecordOutcome::Dead { code: None, reason } = o else {
            panic!("{o:?}")
        };
        assert!(reason.contains("after 3 attempt(s)"), "{reason}");
        assert!(reason.contains("could not reach"), "{reason}");
        assert!(!reason.contains("PASS-WORD"));
    }
}

#[tokio::test]
async fn row_5xx_until_max_attempts_makes_records_dead_with_the_last_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("exploded"))
        .expect(4)
        .mount(&server)
        .await;
    let settings = DeliverySettings {
        max_attempts: 4,
        ..fast()
    };
    let plan = plan(vec![(ACC, events(2))]);
    let outcomes = deliverer(&server.uri(), &[ACC], settings)
        .deliver(&plan)
        .await;
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, RecordOutcome::Dead { code: Some(500), reason } if reason.contains("exploded"))));
    let report = DeliveryReport::build("d".into(), &plan, &outcomes);
    assert_eq!(report.counts.dead, 2);
    assert!(report.counts.is_consistent());
}

#[tokio::test]
async fn max_retry_duration_stops_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let settings = DeliverySettings {
        max_retry_duration: Duration::ZERO,
        ..fast()
    };
    let outcomes = deliverer(&server.uri(), &[ACC], settings)
        .deliver(&plan(vec![(ACC, events(1))]))
        .await;
    assert!(
        matches!(&outcomes[0], RecordOutcome::Dead { code: Some(503), reason } if reason.contains("retry time")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn row_401_fails_the_account_fast() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"status": "fail", "error": "Invalid Credentials", "code": 401}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let settings = DeliverySettings {
        batch_size: 1,
        max_concurrency: 1,
        ..fast()
    };
    let d = deliverer(&server.uri(), &[ACC], settings);
    let outcomes = d.deliver(&plan(vec![(ACC, events(3))])).await;
    for o in &outcomes {
        assert!(
            matches!(o, RecordOutcome::Dead { code: Some(401), reason } if reason.contains("Invalid Credentials")),
            "{o:?}"
        );
    }
    assert!(
        matches!(&outcomes[2], RecordOutcome::Dead { reason, .. } if reason.starts_with("not sent"))
    );
    let failing = d.failing_accounts();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].account.as_str(), ACC);
    assert_eq!(failing[0].code, 401);
    // A later delivery is not sent either.
    let again = d.deliver(&plan(vec![(ACC, events(1))])).await;
    assert!(matches!(
        &again[0],
        RecordOutcome::Dead {
            code: Some(401),
            ..
        }
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(!format!("{failing:?}{outcomes:?}").contains("PASS-WORD"));
}

#[tokio::test]
async fn row_403_fails_the_account_and_clear_failing_lets_it_send_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string("Forbidden"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success(1))
        .expect(1)
        .mount(&server)
        .await;
    let d = deliverer(&server.uri(), &[ACC], fast());
    let first = d.deliver(&plan(vec![(ACC, events(1))])).await;
    assert!(matches!(
        &first[0],
        RecordOutcome::Dead {
            code: Some(403),
            ..
        }
    ));
    assert!(d.clear_failing(&AccountId::try_from(ACC).unwrap()));
    assert!(d.failing_accounts().is_empty());
    let second = d.deliver(&plan(vec![(ACC, events(1))])).await;
    assert_eq!(second, vec![RecordOutcome::Processed]);
}

#[tokio::test]
async fn row_other_4xx_is_rejected_with_message_and_status_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"status": "fail", "error": "Malformed request", "code": 400}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let outcomes = deliverer(&server.uri(), &[ACC], fast())
        .deliver(&plan(vec![(ACC, events(2))]))
        .await;
    assert_all(
        &outcomes,
        &RecordOutcome::Rejected {
            code: Some(400),
            reason: "Malformed request".into(),
        },
    );
}

#[tokio::test]
async fn row_200_fail_with_empty_unprocessed_rejects_all_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "fail", "processed": 0, "unprocessed": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let outcomes = deliverer(&server.uri(), &[ACC], fast())
        .deliver(&plan(vec![(ACC, events(2))]))
        .await;
    assert!(outcomes.iter().all(
        |o| matches!(o, RecordOutcome::Rejected { reason, .. } if reason.contains("status fail"))
    ));
}

#[tokio::test]
async fn partial_resends_only_555_records_and_never_processed_ones() {
    let server = MockServer::start().await;
    let skipped = |code: i64, n: usize| {
        json!({"status": "fail", "code": code,
            "error": format!("Server error. Skipped record number : {n}"), "record": {}})
    };
    // 1st: r0 processed, r1 509, r2 and r3 555.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "partial", "processed": 1,
            "unprocessed": [skipped(509, 2), skipped(555, 3), skipped(555, 4)]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // 2nd (r2, r3): r2 processed, r3 555 again.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "partial", "processed": 1, "unprocessed": [skipped(555, 2)]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // 3rd (r3): processed.
    Mock::given(method("POST"))
        .respond_with(success(1))
        .mount(&server)
        .await;
    let records = events(4);
    let plan = plan(vec![(ACC, records.clone())]);
    let outcomes = deliverer(&server.uri(), &[ACC], fast())
        .deliver(&plan)
        .await;
    assert_eq!(
        outcomes,
        vec![
            RecordOutcome::Processed,
            RecordOutcome::Rejected {
                code: Some(509),
                reason: "Server error. Skipped record number : 2".into()
            },
            RecordOutcome::Processed,
            RecordOutcome::Processed,
        ]
    );
    assert_eq!(
        bodies(&server).await,
        vec![
            values(&records),
            values(&records[2..4]),
            values(&records[3..4]),
        ]
    );
    let report = DeliveryReport::build("d".into(), &plan, &outcomes);
    assert_eq!((report.counts.processed, report.counts.rejected), (3, 1));
    assert!(report.counts.is_consistent());
}

#[tokio::test]
async fn profiles_go_before_events_and_batches_respect_batch_size() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success(2))
        .expect(3)
        .mount(&server)
        .await;
    let records = vec![event(0), profile(1), event(2), profile(3), event(4)];
    let settings = DeliverySettings {
        batch_size: 2,
        max_concurrency: 1,
        ..fast()
    };
    let outcomes = deliverer(&server.uri(), &[ACC], settings)
        .deliver(&plan(vec![(ACC, records.clone())]))
        .await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    assert_eq!(
        bodies(&server).await,
        vec![
            values(&[profile(1), profile(3)]),
            values(&[event(0), event(2)]),
            values(&[event(4)]),
        ]
    );
}

#[tokio::test]
async fn bodies_are_split_by_bytes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success(1))
        .mount(&server)
        .await;
    let records = events(10);
    let one = serde_json::to_vec(&records[0]).unwrap().len();
    // Room for three records: envelope 8 bytes, two commas.
    let limit = 8 + 3 * one + 2;
    let settings = DeliverySettings {
        max_body_bytes: limit,
        max_concurrency: 1,
        ..fast()
    };
    let outcomes = deliverer(&server.uri(), &[ACC], settings)
        .deliver(&plan(vec![(ACC, records.clone())]))
        .await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.body.len() <= limit));
    let sent: Vec<Value> = bodies(&server)
        .await
        .into_iter()
        .flat_map(|b| b["d"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        sent,
        records
            .iter()
            .map(UploadRecord::to_value)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn plans_for_one_account_are_coalesced_into_full_batches() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success(6))
        .expect(1)
        .mount(&server)
        .await;
    let d = deliverer(&server.uri(), &[ACC], fast());
    let a = plan(vec![(ACC, events(2))]);
    let b = plan(vec![(ACC, vec![event(2), event(3), profile(4), event(5)])]);
    let outcomes = d.deliver_plans(&[&a, &b]).await;
    assert_eq!(outcomes[0], vec![RecordOutcome::Processed; 2]);
    assert_eq!(outcomes[1], vec![RecordOutcome::Processed; 4]);
    // The lower level: keys come back in job order.
    let target = Target::Configured(AccountId::try_from("NOPE").unwrap());
    let jobs = vec![
        Job {
            key: "x",
            record: event(0),
        },
        Job {
            key: "y",
            record: event(1),
        },
    ];
    let out = d.deliver_jobs(&target, jobs).await;
    assert_eq!(
        out.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec!["x", "y"]
    );
    assert!(
        matches!(&out[0].1, RecordOutcome::Rejected { reason, .. } if reason.contains("no passcode"))
    );
}

#[tokio::test]
async fn the_account_cap_is_never_exceeded_across_concurrent_deliveries() {
    let fake = Fake::start(FakeConfig {
        latency: Duration::from_millis(20),
        ..FakeConfig::default()
    })
    .await;
    let settings = DeliverySettings {
        batch_size: 1,
        max_concurrency: 4,
        ..fast()
    };
    let d = deliverer(&fake.uri(), &[ACC], settings);
    let runs = (0..3).map(|_| {
        let d = Arc::clone(&d);
        tokio::spawn(async move { d.deliver(&plan(vec![(ACC, events(12))])).await })
    });
    for run in runs.collect::<Vec<_>>() {
        assert_all(&run.await.unwrap(), &RecordOutcome::Processed);
    }
    assert_eq!(fake.requests(), 36);
    let max = fake.max_in_flight(ACC);
    assert!(max <= 4, "{max} in flight");
    assert!(max > 1, "requests never overlapped");
}

#[tokio::test]
async fn a_429_burst_converges_without_losing_or_duplicating_records() {
    let fake = Fake::start(FakeConfig {
        latency: Duration::from_millis(10),
        limit: Some(3),
        keep_bodies: true,
    })
    .await;
    let settings = DeliverySettings {
        batch_size: 1,
        max_concurrency: 15,
        ..fast()
    };
    let d = deliverer(&fake.uri(), &[ACC], settings);
    let outcomes = d.deliver(&plan(vec![(ACC, events(40))])).await;
    assert_all(&outcomes, &RecordOutcome::Processed);
    assert!(fake.throttled() > 0);
    assert!(fake.max_in_flight(ACC) <= 3);
    // Every record was processed exactly once.
    assert_eq!(fake.requests() - fake.throttled(), 40);
    let stats = d.concurrency(&AccountId::try_from(ACC).unwrap()).unwrap();
    assert_eq!((stats.in_flight, stats.waiting), (0, 0));
}

#[tokio::test]
async fn two_accounts_do_not_block_each_other() {
    let fake = Fake::start(FakeConfig::default()).await;
    fake.hold("ACC-A");
    let settings = DeliverySettings {
        batch_size: 1,
        max_concurrency: 1,
        ..fast()
    };
    let d = deliverer(&fake.uri(), &["ACC-A", "ACC-B"], settings);
    let stuck = tokio::spawn({
        let d = Arc::clone(&d);
        async move { d.deliver(&plan(vec![("ACC-A", events(3))])).await }
    });
    while fake.in_flight("ACC-A") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ACC-A holds its only slot; ACC-B goes through all the same.
    let b = d.deliver(&plan(vec![("ACC-B", events(3))])).await;
    assert_all(&b, &RecordOutcome::Processed);
    assert!(!stuck.is_finished());
    assert_eq!(fake.in_flight("ACC-A"), 1);
    fake.release("ACC-A");
    assert_all(&stuck.await.unwrap(), &RecordOutcome::Processed);
    assert_eq!(fake.requests(), 6);
}

#[test]
fn deliverer_is_shareable_and_its_futures_are_send() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: T) {}
    let d = deliverer("http://127.0.0.1:9", &[ACC], fast());
    assert_send_sync(&d);
    let plan = plan(vec![(ACC, events(1))]);
    assert_send(d.deliver(&plan));
    assert_send(d.deliver_jobs(
        &Target::Configured(AccountId::try_from(ACC).unwrap()),
        vec![Job {
            key: 0u64,
            record: event(0),
        }],
    ));
    assert!(!format!("{d:?}").contains("PASS-WORD"));
}

#[tokio::test]
async fn the_cap_holds_when_a_caller_gives_up_mid_request() {
    let fake = Fake::start(FakeConfig::default()).await;
    fake.hold(ACC);
    let settings = DeliverySettings {
        batch_size: 1,
        max_concurrency: 2,
        ..fast()
    };
    let d = deliverer(&fake.uri(), &[ACC], settings);
    let account = AccountId::try_from(ACC).unwrap();
    let abandoned = tokio::spawn({
        let d = Arc::clone(&d);
        async move { d.deliver(&plan(vec![(ACC, events(4))])).await }
    });
    while fake.in_flight(ACC) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    // The abandoned requests are still in flight at CleverTap: they keep their slots.
    let next = tokio::spawn({
        let d = Arc::clone(&d);
        async move { d.deliver(&plan(vec![(ACC, events(2))])).await }
    });
    while d.concurrency(&account).unwrap().waiting < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(d.concurrency(&account).unwrap().in_flight, 2);
    fake.release(ACC);
    assert_all(&next.await.unwrap(), &RecordOutcome::Processed);
    assert_eq!(fake.max_in_flight(ACC), 2);
    assert_eq!(fake.requests(), 4);
}
