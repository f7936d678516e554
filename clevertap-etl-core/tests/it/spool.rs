//! The SQLite spool on a temp file, and its worker against a wiremock CleverTap: what the
//! durable intake promises (nothing lost, nothing processed sent twice, no secret stored).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::spool::{
    self, Accepted, Intake, IntakeSettings, NewDelivery, Spool, SqliteSpool, StateFilter, Worker,
    WorkerSettings,
};
use clevertap_etl_core::{
    AccountId, Config, Deliverer, DeliverySettings, DeliveryState, Endpoint, HttpUploader,
    HttpUploaderConfig, Pipeline, RecordOutcome, Routing, TransformSpec, UnixSeconds, Uploader,
};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{credentials, fixture};

const ACCOUNT: &str = "W44-Z4K-K65Z";
const DAY: i64 = 86_400;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clevertap-etl-core-it-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A webhook body whose profiles `{tag}-0`, `{tag}-1`, … each plan a profile and an event.
fn payload(tag: &str, profiles: usize) -> Vec<u8> {
    let profiles: Vec<Value> = (0..profiles)
        .map(|i| {
            json!({"objectId": format!("{tag}-{i}"), "profileData": {"city": "Pune"},
                   "event_properties": {"n": i}})
        })
        .collect();
    json!({"targetId": 42, "profiles": profiles})
        .to_string()
        .into_bytes()
}

fn pipeline_with(spec: TransformSpec, uploader: Arc<dyn Uploader>) -> Pipeline {
    let settings = DeliverySettings {
        max_attempts: 1,
        ..DeliverySettings::default()
    };
    let deliverer = Deliverer::new(uploader, [credentials(ACCOUNT, "PASS")], settings);
    let routing = Routing {
        accounts: vec![AccountId::try_from(ACCOUNT).unwrap()],
        allow_payload_credentials: false,
    };
    Pipeline::new(spec, routing, Arc::new(deliverer))
}

fn pipeline() -> Pipeline {
    pipeline_with(
        TransformSpec::default(),
        Arc::new(SandboxUploader::default()),
    )
}

fn open(dir: &TempDir) -> SqliteSpool {
    SqliteSpool::open(&dir.join("spool.sqlite")).unwrap()
}

/// Plans `body` and accepts it as delivery `id` received at `at`, deduping over `window`.
async fn accept(spool: &SqliteSpool, id: &str, body: &[u8], at: i64, window: i64) -> Accepted {
    let plan = pipeline().plan(body, UnixSeconds(at)).unwrap();
    spool
        .accept(NewDelivery {
            id: id.into(),
            received_at: UnixSeconds(at),
            body_hash: spool::body_hash(body),
            payload: spool::redact_secrets(body),
            plan: &plan,
            dedupe_since: UnixSeconds(at - window),
        })
        .await
        .unwrap()
}

/// Claims everything pending and gives each record the outcome `f` picks from the record.
async fn settle_all(spool: &SqliteSpool, f: impl Fn(&Value) -> RecordOutcome) -> usize {
    let claimed = spool.claim(1000).await.unwrap();
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|c| (c.id, f(&c.record.to_value())))
        .collect();
    spool.complete(UnixSeconds(0), &outcomes).await.unwrap();
    claimed.len()
}

fn dead() -> RecordOutcome {
    RecordOutcome::Dead {
        code: Some(503),
        reason: "gave up".into(),
    }
}

fn is_event(record: &Value) -> bool {
    record["type"] == "event"
}

#[tokio::test]
async fn accept_claim_complete_round_trip() {
    let dir = TempDir::new("round-trip");
    let spool = open(&dir);
    let accepted = accept(&spool, "d1", &payload("rt", 2), 1000, DAY).await;
    let Accepted::Stored(report) = accepted else {
        panic!("not stored: {accepted:?}")
    };
    assert_eq!(report.delivery_id, "d1");
    assert_eq!(report.state, DeliveryState::Pending);
    assert_eq!((report.counts.planned, report.counts.pending), (4, 4));
    assert_eq!(report.target_id, Some(json!(42)));

    let claimed = spool.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(claimed
        .iter()
        .all(|c| c.delivery_id == "d1" && c.account_id.as_str() == ACCOUNT));
    let ids: Vec<String> = claimed
        .iter()
        .map(|c| c.record.to_value()["objectId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["rt-0", "rt-0", "rt-1", "rt-1"]);
    // Claimed records are `sending`: still waiting, not claimable twice.
    assert_eq!(spool.pending_records().await.unwrap(), 4);
    assert!(spool.claim(10).await.unwrap().is_empty());

    let outcomes: Vec<_> = claimed
        .iter()
        .map(|c| (c.id, RecordOutcome::Processed))
        .collect();
    spool.complete(UnixSeconds(1001), &outcomes).await.unwrap();
    let report = spool.report("d1").await.unwrap().unwrap();
    assert_eq!(report.state, DeliveryState::Delivered);
    assert_eq!((report.counts.processed, report.counts.pending), (4, 0));
    assert!(report.failures.is_empty());
    assert_eq!(spool.pending_records().await.unwrap(), 0);
    // The file survives a reopen.
    drop(spool);
    let again = open(&dir);
    assert_eq!(
        again.report("d1").await.unwrap().unwrap().state,
        DeliveryState::Delivered
    );
}

#[tokio::test]
async fn a_body_seen_within_the_window_is_a_duplicate_and_outside_it_is_stored_anew() {
    let dir = TempDir::new("dedupe");
    let spool = open(&dir);
    let body = payload("dup", 1);
    assert!(matches!(
        accept(&spool, "first", &body, 10_000, 3600).await,
        Accepted::Stored(_)
    ));
    let again = accept(&spool, "second", &body, 12_000, 3600).await;
    let Accepted::Duplicate(report) = again else {
        panic!("not a duplicate: {again:?}")
    };
    assert_eq!(report.delivery_id, "first");
    assert!(spool.report("second").await.unwrap().is_none());
    assert_eq!(spool.pending_records().await.unwrap(), 2);
    // Another body is not a duplicate.
    assert!(matches!(
        accept(&spool, "other", &payload("dup2", 1), 12_000, 3600).await,
        Accepted::Stored(_)
    ));
    // Past the window, the same body is a new delivery.
    let later = accept(&spool, "third", &body, 10_000 + 7200, 3600).await;
    assert!(
        matches!(&later, Accepted::Stored(r) if r.delivery_id == "third"),
        "{later:?}"
    );
    assert_eq!(spool.pending_records().await.unwrap(), 6);
}

#[tokio::test]
async fn test_calls_store_nothing_pending() {
    let dir = TempDir::new("test-call");
    let spool = open(&dir);
    let accepted = accept(&spool, "t", &fixture("test-call.json"), 1000, DAY).await;
    let report = accepted.report();
    assert_eq!(report.state, DeliveryState::Test);
    assert_eq!(report.counts.pending, 0);
    assert!(report.counts.planned > 0);
    assert_eq!(report.counts.skipped, report.counts.planned);
    assert_eq!(spool.pending_records().await.unwrap(), 0);
    assert!(spool.claim(100).await.unwrap().is_empty());
    let tests = spool.list(Some(StateFilter::Test), 10).await.unwrap();
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].state, DeliveryState::Test);
    assert!(spool
        .list(Some(StateFilter::Pending), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn recover_puts_sending_records_back_to_pending() {
    let dir = TempDir::new("recover");
    let spool = open(&dir);
    accept(&spool, "d", &payload("rec", 2), 1000, DAY).await;
    let first: Vec<i64> = spool.claim(3).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(first.len(), 3);
    // A crash here: the process dies with three records `sending`. A new process opens the file.
    drop(spool);
    let spool = open(&dir);
    assert_eq!(spool.recover().await.unwrap(), 3);
    assert_eq!(spool.recover().await.unwrap(), 0);
    let again: Vec<i64> = spool
        .claim(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(again.len(), 4);
    assert!(first.iter().all(|id| again.contains(id)));
}

#[tokio::test]
async fn processed_records_are_never_claimed_again() {
    let dir = TempDir::new("processed");
    let spool = open(&dir);
    accept(&spool, "d", &payload("once", 2), 1000, DAY).await;
    let claimed = spool.claim(10).await.unwrap();
    let outcomes = vec![
        (claimed[0].id, RecordOutcome::Processed),
        (
            claimed[1].id,
            RecordOutcome::Rejected {
                code: Some(509),
                reason: "no".into(),
            },
        ),
        (claimed[2].id, RecordOutcome::Pending),
        (claimed[3].id, dead()),
    ];
    spool.complete(UnixSeconds(1001), &outcomes).await.unwrap();
    // Only the record put back (`Pending`) is claimed again, even after a recover.
    assert_eq!(spool.recover().await.unwrap(), 0);
    let again = spool.claim(10).await.unwrap();
    assert_eq!(
        again.iter().map(|c| c.id).collect::<Vec<_>>(),
        [claimed[2].id]
    );
    spool
        .complete(
            UnixSeconds(1002),
            &[(claimed[2].id, RecordOutcome::Processed)],
        )
        .await
        .unwrap();
    assert_eq!(spool.recover().await.unwrap(), 0);
    assert!(spool.claim(10).await.unwrap().is_empty());
    let report = spool.report("d").await.unwrap().unwrap();
    assert_eq!(
        (
            report.counts.processed,
            report.counts.rejected,
            report.counts.dead
        ),
        (2, 1, 1)
    );
    assert_eq!(report.state, DeliveryState::Partial);
}

#[tokio::test]
async fn requeue_puts_dead_records_back_in_the_queue() {
    let dir = TempDir::new("requeue");
    let spool = open(&dir);
    accept(&spool, "d", &payload("dead", 2), 1000, DAY).await;
    let ids: Vec<i64> = {
        let claimed = spool.claim(10).await.unwrap();
        let outcomes: Vec<_> = claimed.iter().map(|c| (c.id, dead())).collect();
        spool.complete(UnixSeconds(1001), &outcomes).await.unwrap();
        claimed.iter().map(|c| c.id).collect()
    };
    let report = spool.report("d").await.unwrap().unwrap();
    assert_eq!(
        (report.state, report.counts.dead),
        (DeliveryState::Failed, 4)
    );
    assert!(report.failures.iter().all(|f| f.retryable));
    assert_eq!(
        spool.list(Some(StateFilter::Dead), 10).await.unwrap().len(),
        1
    );
    assert!(spool.claim(10).await.unwrap().is_empty());

    let report = spool.requeue("d", None).await.unwrap().unwrap();
    assert_eq!(
        (report.state, report.counts.pending),
        (DeliveryState::Pending, 4)
    );
    assert!(report.failures.is_empty());
    let again: Vec<i64> = spool
        .claim(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(again, ids);
    assert!(spool.requeue("nope", None).await.unwrap().is_none());
}

#[tokio::test]
async fn requeue_with_a_new_plan_never_resends_a_processed_record() {
    let dir = TempDir::new("remap");
    let spool = open(&dir);
    let body = payload("remap", 2);
    accept(&spool, "d", &body, 1000, DAY).await;
    // Profiles processed, events rejected (say the event name was wrong).
    settle_all(&spool, |r| {
        if is_event(r) {
            RecordOutcome::Rejected {
                code: Some(509),
                reason: "bad event".into(),
            }
        } else {
            RecordOutcome::Processed
        }
    })
    .await;
    let stored = spool.payload("d").await.unwrap().unwrap();
    let spec = Config::from_toml_str("[transform]\nevent_name = \"Renamed\"\n")
        .unwrap()
        .transform;
    let plan = pipeline_with(spec, Arc::new(SandboxUploader::default()))
        .plan(&stored, UnixSeconds(2000))
        .unwrap();
    let report = spool.requeue("d", Some(&plan)).await.unwrap().unwrap();
    assert_eq!(
        (
            report.counts.planned,
            report.counts.processed,
            report.counts.pending,
            report.counts.rejected
        ),
        (4, 2, 2, 0)
    );
    let claimed = spool.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let record = c.record.to_value();
        assert!(is_event(&record), "{record}");
        assert_eq!(record["evtName"], "Renamed");
    }
}

#[tokio::test]
async fn prune_deletes_only_finished_deliveries_older_than_the_cutoff() {
    let dir = TempDir::new("prune");
    let spool = open(&dir);
    accept(&spool, "old-done", &payload("a", 1), 100, DAY).await;
    settle_all(&spool, |_| RecordOutcome::Processed).await;
    accept(&spool, "old-dead", &payload("b", 1), 100, DAY).await;
    settle_all(&spool, |_| dead()).await;
    accept(&spool, "old-test", &fixture("test-call.json"), 100, DAY).await;
    accept(&spool, "new-done", &payload("c", 1), 10_000, DAY).await;
    settle_all(&spool, |_| RecordOutcome::Processed).await;
    accept(&spool, "old-pending", &payload("d", 1), 100, DAY).await;
    accept(&spool, "old-sending", &payload("e", 1), 100, DAY).await;
    // "old-pending" and "old-sending" both have their records claimed; put one back.
    let claimed = spool.claim(10).await.unwrap();
    let back: Vec<_> = claimed
        .iter()
        .filter(|c| c.delivery_id == "old-pending")
        .map(|c| (c.id, RecordOutcome::Pending))
        .collect();
    spool.complete(UnixSeconds(101), &back).await.unwrap();

    assert_eq!(spool.prune(UnixSeconds(5000)).await.unwrap(), 3);
    for gone in ["old-done", "old-dead", "old-test"] {
        assert!(spool.report(gone).await.unwrap().is_none(), "{gone}");
        assert!(spool.payload(gone).await.unwrap().is_none(), "{gone}");
    }
    for kept in ["new-done", "old-pending", "old-sending"] {
        assert!(spool.report(kept).await.unwrap().is_some(), "{kept}");
    }
    assert_eq!(spool.pending_records().await.unwrap(), 4);
    assert_eq!(spool.list(None, 100).await.unwrap().len(), 3);
}

#[tokio::test]
async fn reports_and_listings_keep_the_count_invariant() {
    let dir = TempDir::new("invariant");
    let spool = open(&dir);
    // Three sendable profiles and one without an identifier (its records are skipped, 523).
    let body = json!({"targetId": 7, "profiles": [
        {"objectId": "inv-0", "profileData": {"a": 1}, "event_properties": {"n": 0}},
        {"objectId": "inv-1", "profileData": {"a": 1}, "event_properties": {"n": 1}},
        {"objectId": "inv-2", "profileData": {"a": 1}, "event_properties": {"n": 2}},
        {"profileData": {"a": 1}, "event_properties": {"n": 3}}
    ]})
    .to_string();
    let accepted = accept(&spool, "d", body.as_bytes(), 1000, DAY).await;
    let counts = accepted.report().counts;
    assert!(counts.is_consistent(), "{counts:?}");
    assert!(counts.skipped > 0 && counts.pending == 6, "{counts:?}");

    let claimed = spool.claim(10).await.unwrap();
    let outcomes: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let outcome = match i {
                0 | 1 => RecordOutcome::Processed,
                2 => RecordOutcome::Rejected {
                    code: Some(512),
                    reason: "bad".into(),
                },
                3 => dead(),
                _ => RecordOutcome::Pending,
            };
            (c.id, outcome)
        })
        .collect();
    spool.complete(UnixSeconds(1001), &outcomes).await.unwrap();
    let report = spool.report("d").await.unwrap().unwrap();
    let c = report.counts;
    assert!(c.is_consistent(), "{c:?}");
    assert_eq!(
        (c.planned, c.processed, c.rejected, c.dead, c.pending),
        (6 + counts.skipped, 2, 1, 1, 2)
    );
    assert_eq!(
        report.failures.len() as u64,
        c.skipped + c.rejected + c.dead
    );
    let listed = spool.list(None, 10).await.unwrap();
    assert_eq!(listed[0].counts, c);
    assert_eq!(listed[0].state, report.state);
}

#[tokio::test]
async fn the_spool_file_never_holds_a_payload_passcode() {
    const SECRET: &str = "PAYLOAD-PASSCODE-7f3a9c";
    let dir = TempDir::new("secret");
    let spool: Arc<dyn Spool> = Arc::new(open(&dir));
    let pipeline = pipeline();
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        WorkerSettings::default(),
    );
    let intake = Intake::new(Arc::clone(&spool), worker, IntakeSettings::default());
    let body = json!({"targetId": 1,
        "key_values": {"target_account": ACCOUNT, "target_passcode": SECRET},
        "profiles": [{"objectId": "sec-0", "profileData": {"city": "Pune"},
                      "key_values": {"target_passcode": SECRET, "api_token": SECRET}}]})
    .to_string();
    let accepted = intake
        .accept(&pipeline, body.as_bytes(), "d".into(), UnixSeconds(1000))
        .await
        .unwrap();
    assert!(matches!(accepted, Accepted::Stored(_)));
    let stored = String::from_utf8(spool.payload("d").await.unwrap().unwrap()).unwrap();
    assert!(!stored.contains(SECRET), "{stored}");
    assert!(stored.contains("<redacted>"), "{stored}");
    let bytes = |p: &Path| std::fs::read(p).unwrap_or_default();
    let mut files = bytes(&dir.join("spool.sqlite"));
    files.extend(bytes(&dir.join("spool.sqlite-wal")));
    assert!(files.len() > 4096, "the spool was written");
    assert!(
        !files.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the passcode reached the spool file"
    );
}

fn http_uploader(server: &MockServer) -> Arc<dyn Uploader> {
    Arc::new(
        HttpUploader::new(HttpUploaderConfig {
            endpoint: Endpoint::BaseUrl(server.uri()),
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn the_worker_delivers_and_stores_clevertap_per_record_verdicts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .and(header("X-CleverTap-Account-Id", ACCOUNT))
        .and(header("X-CleverTap-Passcode", "PASS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 509,
                             "error": "Event name is mandatory. Skipped record number : 2",
                             "record": {}}]})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = TempDir::new("worker");
    let sqlite = open(&dir);
    let spool: Arc<dyn Spool> = Arc::new(sqlite.clone());
    let pipeline = pipeline_with(TransformSpec::default(), http_uploader(&server));
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        WorkerSettings::default(),
    );
    accept(&sqlite, "d", &payload("w", 1), 1000, DAY).await;
    assert_eq!(worker.round().await.unwrap(), 2);
    assert_eq!(worker.round().await.unwrap(), 0);
    let report = spool.report("d").await.unwrap().unwrap();
    assert_eq!(report.state, DeliveryState::Partial);
    assert_eq!((report.counts.processed, report.counts.rejected), (1, 1));
    assert!(report.counts.is_consistent());
    let failure = &report.failures[0];
    assert_eq!(failure.code, Some(509));
    assert_eq!(failure.record["type"], "event");
    assert!(!failure.retryable);
    let body: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body["d"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_worker_recovers_records_left_sending_and_stops_on_shutdown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 4, "unprocessed": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = TempDir::new("worker-run");
    let sqlite = open(&dir);
    accept(&sqlite, "d", &payload("run", 2), 1000, DAY).await;
    // A previous run claimed the records and died.
    assert_eq!(sqlite.claim(10).await.unwrap().len(), 4);
    let spool: Arc<dyn Spool> = Arc::new(sqlite.clone());
    let pipeline = pipeline_with(TransformSpec::default(), http_uploader(&server));
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        WorkerSettings::default(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let mut report = None;
    for _ in 0..1000 {
        let r = spool.report("d").await.unwrap().unwrap();
        if r.state != DeliveryState::Pending {
            report = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    let report = report.expect("the worker never delivered the recovered records");
    assert_eq!(report.state, DeliveryState::Delivered);
    assert_eq!(report.counts.processed, 4);
}

#[tokio::test]
async fn records_processed_in_a_partial_answer_are_stored_before_the_555_retry() {
    let server = MockServer::start().await;
    // First answer: record 2 hit CleverTap's miscellaneous error (555), record 1 was processed.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 555,
                             "error": "Miscellaneous error. Skipped record number : 2", "record": {}}]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // The retry of record 2 is answered only after a long while.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 1, "unprocessed": []}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    let dir = TempDir::new("early");
    let sqlite = open(&dir);
    let spool: Arc<dyn Spool> = Arc::new(sqlite.clone());
    let mut settings = DeliverySettings {
        max_attempts: 3,
        ..DeliverySettings::default()
    };
    settings.backoff.base = Duration::from_millis(10);
    let deliverer = Deliverer::new(
        http_uploader(&server),
        [credentials(ACCOUNT, "PASS")],
        settings,
    );
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::new(deliverer),
        WorkerSettings::default(),
    );
    accept(&sqlite, "d", &payload("early", 1), 1000, DAY).await;
    let round = tokio::spawn({
        let worker = worker.clone();
        async move { worker.round().await }
    });
    // Wait until the retry of record 2 is with CleverTap (its answer takes 2 s)...
    for _ in 0..500 {
        if server.received_requests().await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "the retry is in flight"
    );
    // ...then the processed record is already stored as processed: a crash now would leave
    // only the 555 record to send again.
    let during = spool.report("d").await.unwrap().unwrap();
    assert_eq!((during.counts.processed, during.counts.pending), (1, 1));
    assert_eq!(round.await.unwrap().unwrap(), 2);
    let after = spool.report("d").await.unwrap().unwrap();
    assert_eq!((after.counts.processed, after.counts.pending), (2, 0));
    assert!(after.counts.is_consistent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_are_each_stored_once_and_duplicates_found_within_a_commit() {
    let dir = TempDir::new("group");
    let sqlite = open(&dir);
    let mut tasks = tokio::task::JoinSet::new();
    // 64 distinct bodies, each sent twice at once: group commit puts many in one transaction,
    // and a duplicate in the same transaction must still be found.
    for i in 0..64 {
        for copy in 0..2 {
            let sqlite = sqlite.clone();
            tasks.spawn(async move {
                let body = payload(&format!("g{i}"), 1);
                accept(&sqlite, &format!("d{i}-{copy}"), &body, 1000, DAY).await
            });
        }
    }
    let (mut stored, mut duplicates) = (std::collections::BTreeSet::new(), 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Accepted::Stored(r) => {
                assert!(stored.insert(r.delivery_id.clone()));
                assert_eq!(r.counts.pending, 2);
            }
            Accepted::Duplicate(_) => duplicates += 1,
        }
    }
    assert_eq!((stored.len(), duplicates), (64, 64));
    assert_eq!(sqlite.pending_records().await.unwrap(), 128);
    // Each stored report reads back as it was answered.
    for id in &stored {
        let report = sqlite.report(id).await.unwrap().unwrap();
        assert_eq!(
            (report.state, report.counts.pending),
            (DeliveryState::Pending, 2)
        );
    }
}
