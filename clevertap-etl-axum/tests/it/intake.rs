//! Async mode: the webhook is stored in a spool (a temp file) and answered `pending`; a worker
//! delivers to a wiremock CleverTap; the deliveries API reads and re-queues.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use clevertap_etl_axum::{app, AppState, ServiceSettings};
use clevertap_etl_core::spool::{Intake, Spool, SqliteSpool, Worker};
use clevertap_etl_core::{Config, Endpoint, HttpUploader, HttpUploaderConfig, Pipeline};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{get, post, send, SEED_ACCOUNT};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clevertap-etl-axum-it-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The service in async mode over a spool file, its worker either running or left to the test
/// (`worker.round()`), and the stop switch of a running worker.
struct Service {
    app: Router,
    worker: Worker,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
    spool_path: PathBuf,
    _dir: Arc<TempDir>,
}

impl Service {
    /// Stops a running worker, letting its round finish.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.unwrap();
        }
    }

    async fn post(&self, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
        post(self.app.clone(), uri, body).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, value) = send(self.app.clone(), get(uri)).await;
        (status, value)
    }

    /// Polls a delivery until it is no longer pending.
    async fn settled(&self, id: &str) -> Value {
        for _ in 0..1000 {
            let (status, report) = self.get(&format!("/v1/deliveries/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{report}");
            if report["state"] != "pending" {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("delivery {id} never settled");
    }
}

const FAST_RETRIES: &str = "backoff_base_ms = 1\nbackoff_max_ms = 2\n";

/// Builds the service configured by `toml` (the seed account is added), uploading to `server`,
/// over the spool file in `dir` (a fresh one when `None`), with its worker running or not.
fn service(server: &MockServer, toml: &str, dir: Option<Arc<TempDir>>, run: bool) -> Service {
    let dir = dir.unwrap_or_else(|| Arc::new(TempDir::new("spool")));
    let spool_path = dir.0.join("spool.sqlite");
    let config = Config::from_toml_str(&format!("{SEED_ACCOUNT}{toml}")).unwrap();
    let creds = config
        .credentials(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(server.uri()),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let pipeline = Pipeline::from_config(&config, Arc::new(uploader), creds);
    let spool: Arc<dyn Spool> = Arc::new(SqliteSpool::open(&spool_path).unwrap());
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        config.worker_settings(),
    );
    let intake = Intake::new(spool, worker.clone(), config.intake_settings());
    let state = AppState::new(pipeline)
        .with_settings(ServiceSettings::from_config(
            &config.server,
            Default::default(),
        ))
        .with_intake(intake);
    let (stop, running) = if run {
        let (stop, stopped) = oneshot::channel::<()>();
        let w = worker.clone();
        let task = tokio::spawn(async move {
            w.run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        (Some(stop), Some(task))
    } else {
        (None, None)
    };
    Service {
        app: app(state),
        worker,
        stop,
        running,
        spool_path,
        _dir: dir,
    }
}

fn success() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []}))
}

/// A webhook body with one profile `tag` (a profile and an event record).
fn payload(tag: &str) -> Vec<u8> {
    json!({"targetId": 5, "profiles": [{"objectId": tag, "profileData": {"city": "Pune"},
                                        "event_properties": {"p": 1}}]})
    .to_string()
    .into_bytes()
}

fn test_call() -> Vec<u8> {
    json!({"targetId": 0, "is_test": true,
           "profiles": {"objectId": "test_object", "profileData": {"Name": "Test User"}}})
    .to_string()
    .into_bytes()
}

fn id_of(report: &Value) -> String {
    report["delivery_id"].as_str().unwrap().to_owned()
}

async fn uploads(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn the_webhook_is_answered_while_clevertap_is_still_busy() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .respond_with(success().set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut svc = service(&server, "", None, true);
    let (status, first) = svc.post("/webhooks/clevertap", payload("slow-a")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["state"], "pending");
    assert_eq!(first["counts"]["pending"], 2);
    // Wait until the worker's upload of the first webhook is at CleverTap, unanswered.
    for _ in 0..1000 {
        if !server.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, second) = svc.post("/webhooks/clevertap", payload("slow-b")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["state"], "pending");
    // The second answer came while CleverTap had still not answered the first upload.
    let (_, first_now) = svc.get(&format!("/v1/deliveries/{}", id_of(&first))).await;
    assert_eq!(first_now["state"], "pending", "{first_now}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(svc.settled(&id_of(&first)).await["state"], "delivered");
    assert_eq!(svc.settled(&id_of(&second)).await["state"], "delivered");
    svc.stop().await;
}

#[tokio::test]
async fn the_same_body_twice_is_one_delivery_and_one_upload() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success())
        .expect(1)
        .mount(&server)
        .await;
    let mut svc = service(&server, "", None, true);
    let body = payload("dup");
    let (_, first) = svc.post("/webhooks/clevertap", body.clone()).await;
    let (status, second) = svc.post("/webhooks/clevertap", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["delivery_id"], second["delivery_id"]);
    assert_eq!(svc.settled(&id_of(&first)).await["state"], "delivered");
    // Once delivered, the same body is still answered with the original, now final, report.
    let (_, third) = svc.post("/webhooks/clevertap", body).await;
    assert_eq!(third["delivery_id"], first["delivery_id"]);
    assert_eq!(third["state"], "delivered");
    svc.stop().await;
    let (_, list) = svc.get("/v1/deliveries").await;
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_test_call_is_answered_test_and_nothing_is_uploaded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success())
        .mount(&server)
        .await;
    let mut svc = service(&server, "", None, true);
    let (status, report) = svc.post("/webhooks/clevertap", test_call()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["state"], "test");
    assert_eq!(report["counts"]["pending"], 0);
    // A real webhook after it: once that one is delivered, the worker has been past the test
    // call (records are claimed oldest first), and only the real one was uploaded.
    let (_, real) = svc.post("/webhooks/clevertap", payload("real")).await;
    assert_eq!(svc.settled(&id_of(&real)).await["state"], "delivered");
    let bodies = uploads(&server).await;
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0]["d"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["objectId"] == "real"));
    let (_, shown) = svc.get(&format!("/v1/deliveries/{}", id_of(&report))).await;
    assert_eq!(shown["state"], "test");
    svc.stop().await;
}

#[tokio::test]
async fn past_max_pending_records_webhooks_get_503_backpressure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success())
        .expect(0)
        .mount(&server)
        .await;
    // The worker is not running: nothing drains.
    let svc = service(
        &server,
        "[delivery]\nmax_pending_records = 2\n",
        None,
        false,
    );
    let (status, first) = svc.post("/webhooks/clevertap", payload("bp-1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let request = Request::post("/webhooks/clevertap")
        .header("content-type", "application/json")
        .body(Body::from(payload("bp-2")))
        .unwrap();
    let (status, headers, answer) = send(svc.app.clone(), request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "backpressure");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
    let (_, list) = svc.get("/v1/deliveries").await;
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_by_state_and_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(success())
        .mount(&server)
        .await;
    let svc = service(&server, "", None, false);
    let (_, a) = svc.post("/webhooks/clevertap", payload("list-a")).await;
    let (_, b) = svc.post("/webhooks/clevertap", payload("list-b")).await;
    let (_, t) = svc.post("/webhooks/clevertap", test_call()).await;
    let ids = |list: &Value| -> Vec<String> {
        list["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    };
    let (_, pending) = svc.get("/v1/deliveries?state=pending").await;
    assert_eq!(ids(&pending), [id_of(&b), id_of(&a)]);
    let (_, tests) = svc.get("/v1/deliveries?state=test").await;
    assert_eq!(ids(&tests), [id_of(&t)]);
    let (_, all) = svc.get("/v1/deliveries").await;
    assert_eq!(ids(&all), [id_of(&t), id_of(&b), id_of(&a)]);
    let (_, one) = svc.get("/v1/deliveries?limit=1").await;
    assert_eq!(ids(&one), [id_of(&t)]);
    let (_, one_pending) = svc.get("/v1/deliveries?state=pending&limit=1").await;
    assert_eq!(ids(&one_pending), [id_of(&b)]);

    assert_eq!(svc.worker.round().await.unwrap(), 4);
    let (_, delivered) = svc.get("/v1/deliveries?state=delivered").await;
    assert_eq!(ids(&delivered), [id_of(&b), id_of(&a)]);
    let (_, pending) = svc.get("/v1/deliveries?state=pending").await;
    assert!(ids(&pending).is_empty());
    let (status, bad) = svc.get("/v1/deliveries?state=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn retry_requeues_dead_records_and_they_are_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success())
        .mount(&server)
        .await;
    let svc = service(
        &server,
        &format!("[delivery]\nmax_attempts = 1\n{FAST_RETRIES}"),
        None,
        false,
    );
    let (_, answer) = svc.post("/webhooks/clevertap", payload("retry")).await;
    let id = id_of(&answer);
    assert_eq!(svc.worker.round().await.unwrap(), 2);
    let (_, report) = svc.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(report["state"], "failed", "{report}");
    assert_eq!(report["counts"]["dead"], 2);
    assert_eq!(report["failures"][0]["code"], 503);
    let (_, dead) = svc.get("/v1/deliveries?state=dead").await;
    assert_eq!(dead["deliveries"][0]["delivery_id"], id.as_str());

    let (status, requeued) = svc
        .post(&format!("/v1/deliveries/{id}/retry"), Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK, "{requeued}");
    assert_eq!(requeued["state"], "pending");
    assert_eq!(requeued["counts"]["pending"], 2);
    assert_eq!(svc.worker.round().await.unwrap(), 2);
    let (_, report) = svc.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(report["state"], "delivered", "{report}");
    assert_eq!(report["counts"]["processed"], 2);
    assert_eq!(uploads(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_with_remap_replans_the_stored_payload_and_skips_processed_records() {
    let server = MockServer::start().await;
    // First answer: the profile is processed, the event rejected.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 512, "error": "bad event. Skipped record number : 2", "record": {}}]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(success())
        .mount(&server)
        .await;
    let before = service(&server, "", None, false);
    let (_, answer) = before.post("/webhooks/clevertap", payload("remap")).await;
    let id = id_of(&answer);
    before.worker.round().await.unwrap();
    let (_, report) = before.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(report["state"], "partial", "{report}");

    // The mapping is changed (a restart with a new configuration, same spool).
    let after = service(
        &server,
        "[transform]\nevent_name = \"Renamed\"\n",
        Some(Arc::clone(&before._dir)),
        false,
    );
    assert_eq!(after.spool_path, before.spool_path);
    let (status, requeued) = after
        .post(&format!("/v1/deliveries/{id}/retry?remap=true"), Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK, "{requeued}");
    assert_eq!(requeued["counts"]["processed"], 1);
    assert_eq!(requeued["counts"]["pending"], 1);
    assert_eq!(requeued["counts"]["rejected"], 0);
    assert_eq!(after.worker.round().await.unwrap(), 1);
    let (_, report) = after.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(report["state"], "delivered", "{report}");
    let bodies = uploads(&server).await;
    assert_eq!(bodies.len(), 2);
    // The profile record, processed already, was not sent again; the event was, renamed.
    assert_eq!(bodies[1]["d"].as_array().unwrap().len(), 1);
    assert_eq!(bodies[1]["d"][0]["type"], "event");
    assert_eq!(bodies[1]["d"][0]["evtName"], "Renamed");
}

#[tokio::test]
async fn unknown_deliveries_are_404() {
    let server = MockServer::start().await;
    let svc = service(&server, "", None, false);
    let (status, answer) = svc.get("/v1/deliveries/no-such-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "no_delivery");
    for uri in [
        "/v1/deliveries/no-such-id/retry",
        "/v1/deliveries/no-such-id/retry?remap=true",
    ] {
        let (status, answer) = svc.post(uri, Vec::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {answer}");
        assert_eq!(answer["error"]["code"], "no_delivery");
    }
}

#[tokio::test]
async fn readyz_reports_the_spool() {
    let server = MockServer::start().await;
    let svc = service(&server, "", None, false);
    let (status, answer) = svc.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ready"], true);
    assert_eq!(answer["checks"]["spool"], "ok");
}
