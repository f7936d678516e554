//! The fault suite: the delivery engine, over the real HTTP uploader, against a fake CleverTap
//! that misbehaves on purpose: runs of 503, bursts of 429 (scripted, and past a hidden in-flight
//! limit), dropped connections, hangs past the uploader's timeout, `partial` answers with 555
//! and 509 records, and 401. The fake keeps a ledger of what it did with every record (by the
//! record's unique id: its type and `objectId`), so each delivery is checked against the truth:
//!
//! - every planned record has exactly one outcome and
//!   `planned = processed + rejected + skipped + dead` with nothing left `pending`;
//! - the engine says "processed" for exactly the records the fake processed, "rejected" with the
//!   code the fake gave, and "dead" only for records the fake never processed;
//! - no record is processed twice, and none is sent again after the fake settled it.
//!
//! The one exception is genuine: CleverTap has no idempotency key, so a request that was
//! processed but whose answer never arrived (the connection dropped after processing, or a hang
//! past the timeout after processing) is sent again, and its records are processed twice
//! (at-least-once). The fake's "dropped" and "hang" faults therefore happen *before* processing
//! and must never cause a duplicate; the separate "processed, then dropped" fault processes first
//! and is allowed duplicates bounded to exactly that request's records, once per such request.
//!
//! Faults are drawn from a seeded generator keyed by the request's first record and how many
//! times the fake has seen it, so a round's script does not depend on the order requests
//! arrive in; only the hidden in-flight limit depends on timing. Every failure names the seed
//! and round.
//!
//! Knobs (environment):
//! - `CLEVERTAP_ETL_FAULT_ROUNDS`: randomized rounds per scenario (default 3; the mixed
//!   scenario runs twice as many). `CLEVERTAP_ETL_FAULT_ROUNDS=200` for a soak.
//! - `CLEVERTAP_ETL_FAULT_SEED`: the base seed (default 0xC1E7E7A9), to replay a failure.
//!
//! Backoffs are a few milliseconds and the uploader times out after 600 ms (a hang costs one
//! timeout); nothing asserts on durations, only on counts.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clevertap_etl_core::retry::Backoff;
use clevertap_etl_core::{
    transform, AccountId, Deliverer, DeliveryReport, DeliverySettings, Endpoint, HttpUploader,
    HttpUploaderConfig, Plan, RecordOutcome, Routing, TransformSpec, UnixSeconds, UploadRecord,
    WebhookPayload,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::credentials;

/// The account that is never refused.
const GOOD: &str = "ACC-GOOD";
/// The account the `Unauthorized` fault applies to.
const REFUSED: &str = "ACC-REFUSED";
/// The uploader's timeout: a hang costs this much.
const TIMEOUT: Duration = Duration::from_millis(600);
/// How long the fake takes over a request it processes.
const LATENCY: Duration = Duration::from_millis(2);

/// What the fake does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    /// 200 `success`: every record processed.
    None,
    /// 503, now and then with a `Retry-After`. Nothing processed.
    Unavailable,
    /// 429 (scripted; the hidden in-flight limit answers 429 too). Nothing processed.
    Throttled,
    /// Reads the request, then closes the connection without answering. Nothing processed.
    Dropped,
    /// Reads the request and never answers, until the client gives up. Nothing processed.
    Hang,
    /// 200 `partial`: per record 555 (retry), 509 (rejected) or processed.
    Partial,
    /// 401 `Invalid Credentials`, for the [`REFUSED`] account only (others: no fault).
    Unauthorized,
    /// Processes every record, then closes the connection without answering: the genuine
    /// at-least-once case.
    ProcessedThenDropped,
}

/// One kind of round: the weights of the faults, and the hidden in-flight limit.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    weights: Vec<(Fault, u32)>,
    /// Requests in flight per account past which the fake answers 429.
    limit: Option<usize>,
}

/// What the fake did with every record it saw, and with every request.
#[derive(Debug, Default)]
struct Ledger {
    /// Times each record was processed.
    processed: HashMap<String, u32>,
    /// The final code each rejected record was given (never 555).
    rejected: HashMap<String, i64>,
    /// Times each record was received, whatever happened to it.
    received: HashMap<String, u32>,
    /// Requests per first record id: drives the fault script.
    firsts: HashMap<String, u32>,
    /// Records processed in a request whose answer was then dropped, with how many times.
    at_least_once: HashMap<String, u32>,
    /// Records received again after the fake had settled them (processed or rejected),
    /// other than after a processed-then-dropped request.
    resent_after_settled: Vec<String>,
    /// Faults injected, by kind (the in-flight limit's 429s under `Throttled`).
    faults: BTreeMap<Fault, usize>,
    /// Requests in flight now, per account.
    in_flight: HashMap<String, usize>,
    /// First record ids whose next request is processed, then dropped (scripted tests).
    armed: HashSet<String>,
}

impl Ledger {
    /// What the fake did with one record, for failure messages.
    fn history(&self, id: &str) -> String {
        format!(
            "received {} time(s), processed {}, rejected {:?}, processed in a dropped request {}",
            self.received.get(id).unwrap_or(&0),
            self.processed.get(id).unwrap_or(&0),
            self.rejected.get(id),
            self.at_least_once.get(id).unwrap_or(&0),
        )
    }
}

/// A fake CleverTap Upload API on 127.0.0.1 that injects faults. It stops when dropped.
struct FaultyCleverTap {
    addr: SocketAddr,
    seed: u64,
    scenario: Scenario,
    ledger: Mutex<Ledger>,
}

struct Running {
    fake: Arc<FaultyCleverTap>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyCleverTap {
    async fn start(scenario: Scenario, seed: u64) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(FaultyCleverTap {
            addr: listener.local_addr().unwrap(),
            seed,
            scenario,
            ledger: Mutex::new(Ledger::default()),
        });
        let server = Arc::clone(&fake);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(Arc::clone(&server).serve(stream));
            }
        });
        Running { fake, task }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One connection: HTTP/1.1 with keep-alive, `content-length` bodies.
    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let head_end = loop {
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut length = 0usize;
            let mut account = String::new();
            for line in head.lines().skip(1) {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("x-clevertap-account-id") {
                    account = value.trim().to_owned();
                }
            }
            let total = head_end + 4 + length;
            while buf.len() < total {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = buf.drain(..total).skip(head_end + 4).collect();
            let (status, extra, text) = match self.handle(&account, &body) {
                Ok(answer) => answer,
                // Held until the client gives up (its timeout), then closed; never answered.
                Err(Fault::Hang) => {
                    let wait =
                        tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk));
                    let _ = wait.await;
                    return;
                }
                // Closed without an answer.
                Err(_) => return,
            };
            let admitted = status == 200;
            if admitted {
                // Processing takes a moment, in flight, so the hidden limit can be reached.
                tokio::time::sleep(LATENCY).await;
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{text}",
                text.len()
            );
            let written = stream.write_all(response.as_bytes()).await;
            if admitted {
                self.leave(&account);
            }
            if written.is_err() {
                return;
            }
        }
    }

    fn leave(&self, account: &str) {
        let mut ledger = self.ledger.lock().unwrap();
        if let Some(n) = ledger.in_flight.get_mut(account) {
            *n = n.saturating_sub(1);
        }
    }

    /// Decides and books what happens to one request: the status, extra header lines and body
    /// to answer, or the fault that answers nothing (the connection is dropped or held).
    /// A 200 answer is counted in flight until [`FaultyCleverTap::leave`].
    fn handle(&self, account: &str, body: &[u8]) -> Result<(u16, String, String), Fault> {
        let json: Value = serde_json::from_slice(body).unwrap();
        let ids: Vec<String> = json["d"]
            .as_array()
            .unwrap()
            .iter()
            .map(record_id)
            .collect();
        let mut ledger = self.ledger.lock().unwrap();
        for id in &ids {
            *ledger.received.entry(id.clone()).or_default() += 1;
            let settled = ledger.processed.contains_key(id) || ledger.rejected.contains_key(id);
            if settled && !ledger.at_least_once.contains_key(id) {
                ledger.resent_after_settled.push(id.clone());
            }
        }
        let first = ids.first().cloned().unwrap_or_default();
        let nth = {
            let n = ledger.firsts.entry(first.clone()).or_default();
            *n += 1;
            *n
        };
        let in_flight = *ledger.in_flight.get(account).unwrap_or(&0);
        let mut fault = if ledger.armed.remove(&first) {
            Fault::ProcessedThenDropped
        } else {
            self.pick(&first, nth)
        };
        if fault == Fault::Unauthorized && account != REFUSED {
            fault = Fault::None;
        }
        if self.scenario.limit.is_some_and(|limit| in_flight >= limit) {
            fault = Fault::Throttled;
        }
        *ledger.faults.entry(fault).or_default() += 1;
        match fault {
            Fault::Dropped | Fault::Hang => return Err(fault),
            Fault::ProcessedThenDropped => {
                for id in &ids {
                    *ledger.processed.entry(id.clone()).or_default() += 1;
                    *ledger.at_least_once.entry(id.clone()).or_default() += 1;
                }
                return Err(fault);
            }
            Fault::None | Fault::Partial => {
                *ledger.in_flight.entry(account.to_owned()).or_default() += 1;
            }
            _ => {}
        }
        let answer = match fault {
            Fault::Throttled => (
                429,
                String::new(),
                r#"{"status":"fail","error":"Too many concurrent requests","code":429}"#.into(),
            ),
            Fault::Unavailable => {
                let retry_after = if nth % 2 == 0 {
                    "retry-after: 1\r\n"
                } else {
                    ""
                };
                (503, retry_after.into(), "Service Unavailable".into())
            }
            Fault::Unauthorized => (
                401,
                String::new(),
                r#"{"status":"fail","error":"Invalid Credentials","code":401}"#.into(),
            ),
            Fault::Partial => {
                let records = json["d"].as_array().unwrap();
                let mut unprocessed = Vec::new();
                let mut processed = 0;
                for (i, id) in ids.iter().enumerate() {
                    let received = ledger.received[id];
                    let code = match rng(self.seed, id, received, 2).u32(0..10) {
                        0..=2 => Some(555),
                        3..=4 => Some(509),
                        _ => None,
                    };
                    match code {
                        None => {
                            processed += 1;
                            *ledger.processed.entry(id.clone()).or_default() += 1;
                        }
                        Some(code) => {
                            if code != 555 {
                                ledger.rejected.insert(id.clone(), code);
                            }
                            unprocessed.push(json!({"status": "fail", "code": code,
                                "error": format!("Fault {code}. Skipped record number : {}", i + 1),
                                "record": records[i]}));
                        }
                    }
                }
                let status = match (processed, unprocessed.is_empty()) {
                    (_, true) => "success",
                    (0, false) => "fail",
                    _ => "partial",
                };
                let text = json!({"status": status, "processed": processed,
                    "unprocessed": unprocessed});
                (200, String::new(), text.to_string())
            }
            _ => {
                for id in &ids {
                    *ledger.processed.entry(id.clone()).or_default() += 1;
                }
                let text = json!({"status": "success", "processed": ids.len(), "unprocessed": []});
                (200, String::new(), text.to_string())
            }
        };
        Ok(answer)
    }

    /// The scripted fault of the `nth` request starting with record `first`.
    fn pick(&self, first: &str, nth: u32) -> Fault {
        let total: u32 = self.scenario.weights.iter().map(|(_, w)| w).sum();
        let mut draw = rng(self.seed, first, nth, 1).u32(0..total.max(1));
        for (fault, weight) in &self.scenario.weights {
            if draw < *weight {
                return *fault;
            }
            draw -= weight;
        }
        Fault::None
    }
}

/// A generator determined by the seed, a record id, a counter and a salt.
fn rng(seed: u64, id: &str, n: u32, salt: u64) -> fastrand::Rng {
    let mut h = DefaultHasher::new();
    (seed, id, n, salt).hash(&mut h);
    fastrand::Rng::with_seed(h.finish())
}

/// A record's unique id: its type and identifier.
fn record_id(record: &Value) -> String {
    let kind = record["type"].as_str().unwrap_or("?");
    let id = record["objectId"]
        .as_str()
        .or_else(|| record["identity"].as_str())
        .unwrap_or("?");
    format!("{kind}:{id}")
}

fn planned_id(record: &UploadRecord) -> String {
    record_id(&record.to_value())
}

/// The base seed, from `CLEVERTAP_ETL_FAULT_SEED` (decimal or 0x-hex).
fn base_seed() -> u64 {
    match std::env::var("CLEVERTAP_ETL_FAULT_SEED") {
        Ok(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| panic!("CLEVERTAP_ETL_FAULT_SEED={s:?} is not a number")),
        Err(_) => 0xC1E7_E7A9,
    }
}

/// Randomized rounds per scenario, from `CLEVERTAP_ETL_FAULT_ROUNDS`.
fn rounds() -> u64 {
    match std::env::var("CLEVERTAP_ETL_FAULT_ROUNDS") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("CLEVERTAP_ETL_FAULT_ROUNDS={s:?} is not a number")),
        Err(_) => 3,
    }
}

/// A webhook payload of `n` profiles bound for `account`, every 7th without an identifier
/// (skipped by the transform with 523). Record ids are unique across the suite's rounds.
fn payload(tag: &str, account: &str, n: usize) -> WebhookPayload {
    let profiles: Vec<Value> = (0..n)
        .map(|i| {
            if i % 7 == 6 {
                json!({"profileData": {"i": i}})
            } else {
                json!({"objectId": format!("__{tag}-{i}"), "profileData": {"i": i},
                    "event_properties": {"i": i}})
            }
        })
        .collect();
    let body = json!({"targetId": 1, "key_values": {"target_account": account},
        "profiles": profiles});
    WebhookPayload::from_slice(body.to_string().as_bytes()).unwrap()
}

/// What one round sends: a few plans per account, delivered at once on one engine.
struct Round {
    seed: u64,
    label: String,
    settings: DeliverySettings,
    plans: Vec<Plan>,
}

impl Round {
    fn new(scenario: &str, seed: u64, round: u64) -> Round {
        let mut r = fastrand::Rng::with_seed(seed);
        let routing = Routing {
            accounts: vec![
                AccountId::try_from(GOOD).unwrap(),
                AccountId::try_from(REFUSED).unwrap(),
            ],
            allow_payload_credentials: false,
        };
        let plans = (0..r.usize(2..=4))
            .map(|p| {
                let account = if p % 2 == 0 { GOOD } else { REFUSED };
                let payload = payload(&format!("{round}.{p}"), account, r.usize(1..=24));
                transform(
                    &payload,
                    &TransformSpec::default(),
                    &routing,
                    UnixSeconds(1_700_000_000),
                )
                .unwrap()
            })
            .collect();
        let settings = DeliverySettings {
            batch_size: r.usize(1..=8),
            max_concurrency: r.usize(1..=6),
            adaptive: r.bool(),
            max_attempts: r.u32(3..=8),
            max_retry_duration: Duration::from_secs(30),
            backoff: Backoff {
                base: Duration::from_millis(1),
                max: Duration::from_millis(4),
                retry_after_max: Duration::from_millis(3),
            },
            ..DeliverySettings::default()
        };
        Round {
            seed,
            label: format!("scenario {scenario}, round {round}, seed {seed:#x}"),
            settings,
            plans,
        }
    }
}

/// What a scenario's rounds add up to.
#[derive(Debug, Default)]
struct Tally {
    faults: BTreeMap<Fault, usize>,
    outcomes: BTreeMap<&'static str, u64>,
    duplicates: usize,
}

/// Runs `rounds` rounds of a scenario and checks every delivery against the fake's ledger.
async fn run(scenario: Scenario, rounds: u64) -> Tally {
    let base = base_seed();
    let mut tally = Tally::default();
    for round in 0..rounds {
        let seed = base ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ hash_str(scenario.name);
        let r = Round::new(scenario.name, seed, round);
        let running = FaultyCleverTap::start(scenario.clone(), r.seed).await;
        let fake = &running.fake;
        let uploader = HttpUploader::new(HttpUploaderConfig {
            endpoint: Endpoint::BaseUrl(fake.uri()),
            timeout: TIMEOUT,
        })
        .unwrap();
        let deliverer = Arc::new(
            Deliverer::new(
                Arc::new(uploader),
                [
                    credentials(GOOD, "P-GOOD"),
                    credentials(REFUSED, "P-REFUSED"),
                ],
                r.settings.clone(),
            )
            .with_jitter_seed(seed),
        );
        let runs: Vec<_> = r
            .plans
            .iter()
            .map(|plan| {
                let d = Arc::clone(&deliverer);
                let plan = plan.clone();
                tokio::spawn(async move { d.deliver(&plan).await })
            })
            .collect();
        let mut all = Vec::new();
        for (plan, run) in r.plans.iter().zip(runs) {
            let outcomes = run.await.unwrap();
            all.push((plan, outcomes));
        }
        let ledger = fake.ledger.lock().unwrap();
        check_round(&r, &all, &ledger, &mut tally);
        for (fault, n) in &ledger.faults {
            *tally.faults.entry(*fault).or_default() += n;
        }
        for account in [GOOD, REFUSED] {
            if let Some(stats) = deliverer.concurrency(&AccountId::try_from(account).unwrap()) {
                assert_eq!(
                    (stats.in_flight, stats.waiting),
                    (0, 0),
                    "{}: slots leaked",
                    r.label
                );
            }
        }
    }
    eprintln!("{}: {rounds} round(s): {tally:?}", scenario.name);
    tally
}

fn hash_str(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The per-delivery and per-round invariants.
fn check_round(
    round: &Round,
    deliveries: &[(&Plan, Vec<RecordOutcome>)],
    ledger: &Ledger,
    tally: &mut Tally,
) {
    let label = &round.label;
    let mut planned_ids = HashSet::new();
    for (plan, outcomes) in deliveries {
        // One outcome per planned record, and the report adds up with nothing pending.
        assert_eq!(outcomes.len(), plan.record_count(), "{label}");
        let report = DeliveryReport::build("d".into(), plan, outcomes);
        let c = report.counts;
        assert!(c.is_consistent(), "{label}: {c:?}");
        assert_eq!(c.pending, 0, "{label}: {c:?}");
        assert_eq!(
            c.planned,
            c.processed + c.rejected + c.skipped + c.dead,
            "{label}: {c:?}"
        );
        assert_eq!(c.skipped as usize, plan.skipped.len(), "{label}");
        assert_eq!(
            report.failures.len() as u64,
            c.rejected + c.skipped + c.dead
        );
        let records = plan.accounts.iter().flat_map(|a| {
            a.records
                .iter()
                .map(move |r| (a.target.account_id().as_str(), &r.record))
        });
        for ((account, record), outcome) in records.zip(outcomes) {
            let id = planned_id(record);
            assert!(
                planned_ids.insert(id.clone()),
                "{label}: {id} planned twice"
            );
            let processed = ledger.processed.get(&id).copied().unwrap_or(0);
            let maybe_twice = ledger.at_least_once.contains_key(&id);
            match outcome {
                RecordOutcome::Processed => {
                    *tally.outcomes.entry("processed").or_default() += 1;
                    assert!(
                        processed >= 1,
                        "{label}: {id} processed, says the engine only: {}",
                        ledger.history(&id)
                    );
                }
                RecordOutcome::Rejected { code, reason } => {
                    *tally.outcomes.entry("rejected").or_default() += 1;
                    assert_eq!(
                        ledger.rejected.get(&id),
                        code.as_ref(),
                        "{label}: {id}: {reason}"
                    );
                    assert!(
                        processed == 0 || maybe_twice,
                        "{label}: {id} rejected but processed: {}",
                        ledger.history(&id)
                    );
                }
                RecordOutcome::Dead { code, reason } => {
                    *tally.outcomes.entry("dead").or_default() += 1;
                    assert!(
                        processed == 0 || maybe_twice,
                        "{label}: {id} dead ({reason}) but the fake processed it: {}",
                        ledger.history(&id)
                    );
                    if *code == Some(401) {
                        assert_eq!(account, REFUSED, "{label}: {id}: {reason}");
                    }
                }
                RecordOutcome::Pending => panic!("{label}: {id} still pending"),
            }
        }
    }
    // The fake saw only planned records.
    for id in ledger.received.keys() {
        assert!(planned_ids.contains(id), "{label}: unplanned record {id}");
    }
    // No record processed twice, except after a processed-then-dropped request, and then at
    // most once more per such request.
    for (id, n) in &ledger.processed {
        let allowed = 1 + ledger.at_least_once.get(id).copied().unwrap_or(0);
        assert!(*n <= allowed, "{label}: {id} processed {n} times");
        tally.duplicates += (*n - 1) as usize;
    }
    assert!(
        ledger.resent_after_settled.is_empty(),
        "{label}: sent again after CleverTap settled them: {:?}",
        ledger.resent_after_settled
    );
}

fn scenario(name: &'static str, weights: &[(Fault, u32)], limit: Option<usize>) -> Scenario {
    Scenario {
        name,
        weights: weights.to_vec(),
        limit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_503_end_processed_or_dead_never_twice() {
    let tally = run(
        scenario("503", &[(Fault::None, 2), (Fault::Unavailable, 3)], None),
        rounds(),
    )
    .await;
    assert!(
        tally.faults.get(&Fault::Unavailable) > Some(&0),
        "{tally:?}"
    );
    assert_eq!(tally.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_429_do_not_count_as_attempts_and_everything_is_processed() {
    let tally = run(
        scenario("429", &[(Fault::None, 1), (Fault::Throttled, 1)], Some(2)),
        rounds(),
    )
    .await;
    assert!(tally.faults.get(&Fault::Throttled) > Some(&0), "{tally:?}");
    // 429s are bounded by the retry duration only: nothing is rejected or dead.
    assert_eq!(tally.outcomes.get("rejected"), None, "{tally:?}");
    assert_eq!(tally.outcomes.get("dead"), None, "{tally:?}");
    assert_eq!(tally.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_hangs_are_retried_without_duplicates() {
    let tally = run(
        scenario(
            "dropped+hang",
            &[(Fault::None, 5), (Fault::Dropped, 3), (Fault::Hang, 1)],
            None,
        ),
        rounds(),
    )
    .await;
    assert!(tally.faults.get(&Fault::Dropped) > Some(&0), "{tally:?}");
    assert!(tally.faults.get(&Fault::Hang) > Some(&0), "{tally:?}");
    assert_eq!(tally.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_answers_resend_only_555_records() {
    let tally = run(
        scenario("partial", &[(Fault::None, 1), (Fault::Partial, 3)], None),
        rounds(),
    )
    .await;
    assert!(tally.faults.get(&Fault::Partial) > Some(&0), "{tally:?}");
    assert!(tally.outcomes.get("rejected") > Some(&0), "{tally:?}");
    assert_eq!(tally.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_fails_only_its_own_account() {
    let tally = run(
        scenario("401", &[(Fault::None, 4), (Fault::Unauthorized, 1)], None),
        rounds(),
    )
    .await;
    assert!(
        tally.faults.get(&Fault::Unauthorized) > Some(&0),
        "{tally:?}"
    );
    assert_eq!(tally.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_faults_in_randomized_rounds() {
    let tally = run(
        scenario(
            "mixed",
            &[
                (Fault::None, 10),
                (Fault::Unavailable, 3),
                (Fault::Throttled, 2),
                (Fault::Dropped, 2),
                (Fault::Hang, 1),
                (Fault::Partial, 3),
                (Fault::Unauthorized, 1),
                (Fault::ProcessedThenDropped, 1),
            ],
            Some(3),
        ),
        2 * rounds(),
    )
    .await;
    assert!(tally.faults.len() >= 6, "{tally:?}");
}

/// The at-least-once case, scripted: the first request is processed and its answer lost; the
/// engine sends it again and exactly its records are processed twice, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_then_dropped_duplicates_exactly_that_requests_records() {
    let running = FaultyCleverTap::start(
        scenario("at-least-once", &[(Fault::None, 1)], None),
        base_seed(),
    )
    .await;
    let fake = Arc::clone(&running.fake);
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(fake.uri()),
        timeout: TIMEOUT,
    })
    .unwrap();
    let settings = DeliverySettings {
        batch_size: 4,
        max_concurrency: 1,
        ..Round::new("at-least-once", 1, 0).settings
    };
    let deliverer = Deliverer::new(Arc::new(uploader), [credentials(GOOD, "P")], settings);
    let routing = Routing {
        accounts: vec![AccountId::try_from(GOOD).unwrap()],
        allow_payload_credentials: false,
    };
    let plan = transform(
        &payload("alo", GOOD, 5),
        &TransformSpec::default(),
        &routing,
        UnixSeconds(0),
    )
    .unwrap();
    // The first request (the first 4 profile records) is processed, then its answer is lost.
    let first_body: Vec<String> = plan.accounts[0]
        .records
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.is_profile())
        .take(4)
        .map(planned_id)
        .collect();
    fake.ledger
        .lock()
        .unwrap()
        .armed
        .insert(first_body[0].clone());
    let outcomes = deliverer.deliver(&plan).await;
    assert!(
        outcomes.iter().all(|o| *o == RecordOutcome::Processed),
        "{outcomes:?}"
    );
    let ledger = fake.ledger.lock().unwrap();
    let mut twice: Vec<&String> = ledger
        .processed
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    twice.sort();
    let mut expected: Vec<&String> = first_body.iter().collect();
    expected.sort();
    assert_eq!(twice, expected);
    assert!(ledger.processed.values().all(|n| *n <= 2));
    assert_eq!(ledger.faults.get(&Fault::ProcessedThenDropped), Some(&1));
    drop(running);
}
