//! The delivery engine: sends records through an [`Uploader`] and says what became of each one.
//!
//! For each account the engine
//! 1. packs records into bodies of at most [`DeliverySettings::batch_size`] records and
//!    [`DeliverySettings::max_body_bytes`] bytes, profiles before events (`batch.rs`);
//! 2. sends the bodies concurrently, at most the account's concurrency limit in flight, shared by
//!    every caller of the same [`Deliverer`]; the limit is adaptive (AIMD: a 429 halves it, a
//!    success raises it by one up to the maximum) unless [`DeliverySettings::adaptive`] is off
//!    (`governor.rs`);
//! 3. decides what each answer means with the pure [`crate::retry::classify`] and waits (here,
//!    with tokio's clock) before sending again what may be sent again. Records CleverTap
//!    processed are never sent again; retries stop after [`DeliverySettings::max_attempts`]
//!    attempts or [`DeliverySettings::max_retry_duration`], whichever comes first. Retries
//!    queue ahead of batches not yet sent.
//!
//! A 429 ("too many concurrent requests") is flow control: it halves the account's limit once
//! per burst, does not count as an attempt, and its batch is sent again as soon as the lowered
//! limit allows. Only when an account gets further 429 bursts without a success in between
//! does its throttled retries' wait grow (exponential backoff with full jitter), and a
//! `Retry-After` is always honoured.
//!
//! A 401 or 403 marks the account failing: its later batches are not sent and fail at once, until
//! [`Deliverer::clear_failing`] or a different passcode ([`Deliverer::failing_accounts`] feeds a
//! readiness probe). Different accounts never wait for each other.
//!
//! [`Deliverer::deliver`] delivers one plan; [`Deliverer::deliver_plans`] and
//! [`Deliverer::deliver_jobs`] take many plans' records for one account at once, so a caller
//! holding many small plans (a spool) still sends full batches.

mod batch;
mod governor;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;

use self::batch::{pack, Item};
pub use self::governor::ConcurrencyStats;
use self::governor::{Governor, Permit};
use crate::account::{AccountId, Credentials, Passcode};
use crate::record::{UploadBody, UploadRecord};
use crate::report::RecordOutcome;
use crate::retry::{backoff_delay, classify, Attempt, Backoff, Retry, RetryAction};
use crate::transform::{Plan, Target};
use crate::upload::{UploadError, UploadReply, Uploader};

/// The most records CleverTap takes in one request.
pub const MAX_BATCH_SIZE: usize = 1000;

/// The default largest request body, in bytes: 1 MiB.
///
/// CleverTap documents no body size limit (UNCONFIRMED); 1 MiB is the common default of HTTP
/// front ends (nginx's `client_max_body_size`) and holds 1000 records of up to ~1 KiB each.
/// Smaller bodies only cost more requests, so the guess errs low.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The default most requests in flight per account: CleverTap's current documented limit.
/// Older documents say 3; the adaptive governor finds the real one.
pub const DEFAULT_MAX_CONCURRENCY: usize = 15;

/// How the engine delivers. [`Default`] gives safe values for CleverTap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Records per request, 1 to [`MAX_BATCH_SIZE`]. Default 1000.
    pub batch_size: usize,
    /// Largest request body in bytes, the `{"d":[...]}` envelope included. Default
    /// [`DEFAULT_MAX_BODY_BYTES`]. A single record bigger than this is sent alone.
    pub max_body_bytes: usize,
    /// Most requests in flight per account. Default [`DEFAULT_MAX_CONCURRENCY`].
    pub max_concurrency: usize,
    /// Per-account overrides of `max_concurrency`.
    pub account_max_concurrency: BTreeMap<AccountId, usize>,
    /// Adapt each account's limit to 429s (AIMD). Default `true`; `false` keeps it fixed.
    pub adaptive: bool,
    /// Most attempts per record, the first included. Default 5. Attempts CleverTap throttled
    /// (429) do not count: they are bounded by `max_retry_duration` only.
    pub max_attempts: u32,
    /// No retry starts later than this after a batch's first attempt. Default 5 minutes.
    pub max_retry_duration: Duration,
    /// Backoff between attempts. Default: base 500 ms, max 30 s, `Retry-After` up to 60 s.
    pub backoff: Backoff,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            batch_size: MAX_BATCH_SIZE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            account_max_concurrency: BTreeMap::new(),
            adaptive: true,
            max_attempts: 5,
            max_retry_duration: Duration::from_secs(300),
            backoff: Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
                retry_after_max: Duration::from_secs(60),
            },
        }
    }
}

impl DeliverySettings {
    /// The most requests in flight for one account.
    pub fn max_concurrency_for(&self, account: &AccountId) -> usize {
        self.account_max_concurrency
            .get(account)
            .copied()
            .unwrap_or(self.max_concurrency)
            .max(1)
    }
}

/// One record to deliver, with the caller's key for it (a plan position, a spool row id, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Job<K> {
    /// The caller's key, handed back with the outcome.
    pub key: K,
    /// The record.
    pub record: UploadRecord,
}

/// An account CleverTap refused (401 or 403): its records fail without being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingAccount {
    /// The account.
    pub account: AccountId,
    /// The HTTP status CleverTap answered.
    pub code: i64,
    /// CleverTap's message.
    pub reason: String,
}

/// Sends plans to CleverTap. Share one (via `Arc`) between all callers: the per-account
/// concurrency limits and the failing accounts live here.
///
/// ```
/// use std::sync::Arc;
/// use clevertap_etl_core::sandbox::SandboxUploader;
/// use clevertap_etl_core::{
///     transform, Credentials, Deliverer, DeliveryReport, DeliverySettings, DeliveryState,
///     Passcode, Routing, TransformSpec, UnixSeconds, WebhookPayload,
/// };
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // The configured accounts' credentials; records for others are rejected unsent.
/// let account = Credentials {
///     account_id: "W44-Z4K-K65Z".try_into()?,
///     passcode: Passcode::new("from-your-secret-store"),
/// };
/// // HttpUploader in production; the in-process sandbox here.
/// let sandbox = Arc::new(SandboxUploader::default());
/// let settings = DeliverySettings { max_concurrency: 3, ..DeliverySettings::default() };
/// let deliverer = Deliverer::new(sandbox.clone(), [account.clone()], settings);
///
/// let payload = WebhookPayload::from_slice(br#"{"key_values": {"target_account": "W44-Z4K-K65Z"},
///     "profiles": [{"objectId": "__1", "profileData": {"city": "Pune"}, "event_properties": {"n": 1}}]}"#)?;
/// let routing = Routing { accounts: vec![account.account_id], ..Routing::default() };
/// let plan = transform(&payload, &TransformSpec::default(), &routing, UnixSeconds(0))?;
///
/// let outcomes = deliverer.deliver(&plan).await; // one per planned record, in plan order
/// let report = DeliveryReport::build("d-1".into(), &plan, &outcomes);
/// assert_eq!(report.state, DeliveryState::Delivered);
/// assert_eq!(report.counts.processed, 2);
/// assert_eq!(sandbox.received().len(), 1, "profile and event share one request");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Deliverer {
    uploader: Arc<dyn Uploader>,
    accounts: HashMap<AccountId, Credentials>,
    settings: DeliverySettings,
    governors: Mutex<HashMap<AccountId, Arc<Governor>>>,
    failing: Mutex<HashMap<AccountId, (Passcode, FailingAccount)>>,
    rng: Mutex<fastrand::Rng>,
    retries: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut accounts: Vec<_> = self.accounts.keys().collect();
        accounts.sort();
        f.debug_struct("Deliverer")
            .field("accounts", &accounts)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// An engine over an uploader, with the configured accounts' credentials.
    pub fn new(
        uploader: Arc<dyn Uploader>,
        accounts: impl IntoIterator<Item = Credentials>,
        settings: DeliverySettings,
    ) -> Self {
        Deliverer {
            uploader,
            accounts: accounts
                .into_iter()
                .map(|c| (c.account_id.clone(), c))
                .collect(),
            settings,
            governors: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
            rng: Mutex::new(fastrand::Rng::new()),
            retries: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Seeds the backoff jitter, for reproducible runs.
    pub fn with_jitter_seed(self, seed: u64) -> Self {
        *lock(&self.rng) = fastrand::Rng::with_seed(seed);
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// Delivers every record of a plan. Returns one outcome per planned record, in plan order
    /// (account by account, record by record).
    pub async fn deliver(&self, plan: &Plan) -> Vec<RecordOutcome> {
        self.deliver_plans(&[plan]).await.pop().unwrap_or_default()
    }

    /// Delivers several plans at once: records bound for the same account are packed together,
    /// so many small plans still make full batches. Returns, per plan, one outcome per planned
    /// record in plan order.
    pub async fn deliver_plans(&self, plans: &[&Plan]) -> Vec<Vec<RecordOutcome>> {
        // Per target: the records, and where each sits (plan index, position in the plan).
        struct Group<'p> {
            target: &'p Target,
            keys: Vec<(usize, usize)>,
            records: Vec<&'p UploadRecord>,
        }
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (p, plan) in plans.iter().enumerate() {
            let mut position = 0;
            for account in &plan.accounts {
                let index = match groups.iter().position(|g| *g.target == account.target) {
                    Some(index) => index,
                    None => {
                        groups.push(Group {
                            target: &account.target,
                            keys: Vec::new(),
                            records: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                let group = &mut groups[index];
                for planned in &account.records {
                    group.keys.push((p, position));
                    group.records.push(&planned.record);
                    position += 1;
                }
            }
        }
        let mut out: Vec<Vec<RecordOutcome>> = plans
            .iter()
            .map(|p| vec![RecordOutcome::Pending; p.record_count()])
            .collect();
        let results = join_all(
            groups
                .iter()
                .map(|g| self.deliver_to(g.target, &g.records, None)),
        )
        .await;
        for (group, outcomes) in groups.iter().zip(results) {
            for ((p, i), outcome) in group.keys.iter().zip(outcomes) {
                out[*p][*i] = outcome;
            }
        }
        out
    }

    /// Delivers records bound for one account, whatever plans they came from. Returns one
    /// `(key, outcome)` per job, in job order.
    ///
    /// This is the engine's lower level: a caller holding many jobs for one account (a spool)
    /// passes them all at once and gets full batches.
    pub async fn deliver_jobs<K>(
        &self,
        target: &Target,
        jobs: Vec<Job<K>>,
    ) -> Vec<(K, RecordOutcome)> {
        let records: Vec<&UploadRecord> = jobs.iter().map(|j| &j.record).collect();
        let outcomes = self.deliver_to(target, &records, None).await;
        jobs.into_iter().map(|j| j.key).zip(outcomes).collect()
    }

    /// [`Deliverer::deliver_jobs`], also telling `on_settled` about records that settle while
    /// others of their request are still being retried: after a `partial` answer, the records
    /// CleverTap processed or rejected are reported at once, before the 555 records' retry.
    /// A spool stores them right away, so a crash during the retry cannot re-send them. The
    /// returned list still holds every job's outcome, those already reported included.
    pub async fn deliver_jobs_reporting<K: Clone + Send + Sync>(
        &self,
        target: &Target,
        jobs: Vec<Job<K>>,
        on_settled: &(dyn Fn(Vec<(K, RecordOutcome)>) + Send + Sync),
    ) -> Vec<(K, RecordOutcome)> {
        let records: Vec<&UploadRecord> = jobs.iter().map(|j| &j.record).collect();
        let keys: Vec<K> = jobs.iter().map(|j| j.key.clone()).collect();
        let sink = |settled: &[(usize, RecordOutcome)]| {
            on_settled(
                settled
                    .iter()
                    .map(|(i, o)| (keys[*i].clone(), o.clone()))
                    .collect(),
            );
        };
        let outcomes = self.deliver_to(target, &records, Some(&sink)).await;
        jobs.into_iter().map(|j| j.key).zip(outcomes).collect()
    }

    /// Delivers records to one target; one outcome per record, in order.
    async fn deliver_to(
        &self,
        target: &Target,
        records: &[&UploadRecord],
        on_settled: Option<&Settled<'_>>,
    ) -> Vec<RecordOutcome> {
        let credentials = match target {
            Target::FromPayload(c) => Some(c),
            Target::Configured(id) => self.accounts.get(id),
        };
        match credentials {
            Some(c) => self.deliver_records(c, records, on_settled).await,
            None => {
                let reason = format!("no passcode configured for account {}", target.account_id());
                vec![RecordOutcome::Rejected { code: None, reason }; records.len()]
            }
        }
    }

    /// The accounts CleverTap refused (401 or 403) and that now fail fast, by account id.
    /// A readiness probe can report them.
    pub fn failing_accounts(&self) -> Vec<FailingAccount> {
        let mut list: Vec<_> = lock(&self.failing)
            .values()
            .map(|(_, f)| f.clone())
            .collect();
        list.sort_by(|a, b| a.account.cmp(&b.account));
        list
    }

    /// Lets an account's requests be sent again (after its credentials were fixed). Returns
    /// whether it was failing.
    pub fn clear_failing(&self, account: &AccountId) -> bool {
        lock(&self.failing).remove(account).is_some()
    }

    /// How many retries (of a whole request or of some of its records) were scheduled since
    /// the engine was built.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The accounts with configured credentials.
    pub fn accounts(&self) -> Vec<AccountId> {
        let mut ids: Vec<_> = self.accounts.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The concurrency governor's state for an account, once it has sent something.
    pub fn concurrency(&self, account: &AccountId) -> Option<ConcurrencyStats> {
        lock(&self.governors).get(account).map(|g| g.stats())
    }

    fn governor(&self, account: &AccountId) -> Arc<Governor> {
        let mut governors = lock(&self.governors);
        Arc::clone(governors.entry(account.clone()).or_insert_with(|| {
            Arc::new(Governor::new(
                self.settings.max_concurrency_for(account),
                self.settings.adaptive,
            ))
        }))
    }

    /// The account's failure, when these credentials are the ones CleverTap refused.
    fn failing_for(&self, credentials: &Credentials) -> Option<FailingAccount> {
        lock(&self.failing)
            .get(&credentials.account_id)
            .filter(|(passcode, _)| *passcode == credentials.passcode)
            .map(|(_, f)| f.clone())
    }

    fn mark_failing(&self, credentials: &Credentials, code: i64, reason: &str) {
        tracing::error!(
            account = %credentials.account_id,
            code,
            reason,
            "CleverTap refused the account's credentials; its uploads now fail fast"
        );
        lock(&self.failing).insert(
            credentials.account_id.clone(),
            (
                credentials.passcode.clone(),
                FailingAccount {
                    account: credentials.account_id.clone(),
                    code,
                    reason: reason.to_owned(),
                },
            ),
        );
    }

    /// Delivers records to one account; one outcome per record, in order.
    async fn deliver_records(
        &self,
        credentials: &Credentials,
        records: &[&UploadRecord],
        on_settled: Option<&Settled<'_>>,
    ) -> Vec<RecordOutcome> {
        let items: Vec<Item> = records
            .iter()
            .map(|r| Item {
                profile: r.is_profile(),
                bytes: serialized_len(r),
            })
            .collect();
        let batches = pack(
            &items,
            self.settings.batch_size.clamp(1, MAX_BATCH_SIZE),
            self.settings.max_body_bytes,
        );
        let governor = self.governor(&credentials.account_id);
        let results = join_all(
            batches
                .into_iter()
                .map(|batch| self.send_batch(credentials, &governor, records, batch, on_settled)),
        )
        .await;
        let mut outcomes = vec![RecordOutcome::Pending; records.len()];
        for (i, outcome) in results.into_iter().flatten() {
            outcomes[i] = outcome;
        }
        outcomes
    }

    /// Sends one batch until every record has a final outcome.
    async fn send_batch(
        &self,
        credentials: &Credentials,
        governor: &Arc<Governor>,
        records: &[&UploadRecord],
        batch: Vec<usize>,
        on_settled: Option<&Settled<'_>>,
    ) -> Vec<(usize, RecordOutcome)> {
        let started = tokio::time::Instant::now();
        let mut pending = batch;
        let mut done = Vec::with_capacity(pending.len());
        // Requests sent, and how many of them CleverTap throttled (429). Throttled requests do
        // not count against `max_attempts`: only `max_retry_duration` bounds them.
        let mut sent = 0u32;
        let mut throttled = 0u32;
        let mut throttle_streak = 0u32;
        loop {
            let permit = match self.failing_for(credentials) {
                Some(f) => return settle(done, &pending, fail_fast(&f)),
                // A retry is older than any batch not yet sent: it goes first.
                None => governor.acquire(sent > 0).await,
            };
            if let Some(f) = self.failing_for(credentials) {
                return settle(done, &pending, fail_fast(&f));
            }
            sent += 1;
            let body = UploadBody {
                d: pending.iter().map(|i| records[*i].clone()).collect(),
            };
            let (body, result, permit) = self.upload(credentials, body, permit).await;
            let sent_records = match body {
                Some(body) => body.d,
                None => pending.iter().map(|i| records[*i].clone()).collect(),
            };
            let action = classify(&Attempt {
                records: &sent_records,
                result: &result,
            });
            if let Some(permit) = permit {
                match (&result, &action) {
                    (Ok(reply), _) if reply.status == 200 => permit.success(),
                    (_, RetryAction::RetryAll(r)) if r.throttled => {
                        throttle_streak = permit.throttled();
                    }
                    _ => {}
                }
            }
            let retry = match action {
                RetryAction::Settle(outcomes) => {
                    done.extend(pending.into_iter().zip(outcomes));
                    return done;
                }
                RetryAction::GiveUpAccount { code, reason } => {
                    self.mark_failing(credentials, code, &reason);
                    let outcome = RecordOutcome::Dead {
                        code: Some(code),
                        reason: format!(
                            "CleverTap refused the credentials of account {} (HTTP {code}): \
                             {reason}",
                            credentials.account_id
                        ),
                    };
                    return settle(done, &pending, outcome);
                }
                RetryAction::RetryAll(retry) => retry,
                RetryAction::RetrySome { outcomes, retry } => {
                    let mut again = Vec::new();
                    let settled_before = done.len();
                    for (i, outcome) in pending.into_iter().zip(outcomes) {
                        match outcome {
                            Some(o) => done.push((i, o)),
                            None => again.push(i),
                        }
                    }
                    if let Some(sink) = on_settled {
                        sink(&done[settled_before..]);
                    }
                    pending = again;
                    retry
                }
            };
            let retry_number = if retry.throttled {
                // The first burst since a success waits only for the lowered limit; later
                // ones back off exponentially (see `Permit::throttled`).
                throttled += 1;
                throttle_streak.saturating_sub(1)
            } else {
                let attempts = sent - throttled;
                if attempts >= self.settings.max_attempts {
                    return settle(done, &pending, dead(&retry, sent, "attempts"));
                }
                attempts
            };
            let unit = lock(&self.rng).f64();
            let delay = backoff_delay(
                &self.settings.backoff,
                retry_number,
                retry.retry_after,
                unit,
            );
            if started.elapsed() + delay > self.settings.max_retry_duration {
                return settle(done, &pending, dead(&retry, sent, "retry time"));
            }
            self.retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(
                account = %credentials.account_id,
                records = pending.len(),
                sent,
                ?delay,
                code = retry.code,
                reason = %retry.reason,
                "upload will be retried"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

impl Deliverer {
    /// Sends one body on its own task, so that encoding runs in parallel with the caller's
    /// other batches and a caller that gives up mid-request still frees the slot only when
    /// the request ends.
    async fn upload(
        &self,
        credentials: &Credentials,
        body: UploadBody,
        permit: Permit,
    ) -> (
        Option<UploadBody>,
        Result<UploadReply, UploadError>,
        Option<Permit>,
    ) {
        let uploader = Arc::clone(&self.uploader);
        let task_credentials = credentials.clone();
        let records = body.d.len();
        let task = tokio::spawn(async move {
            let result = uploader.upload(&task_credentials, &body).await;
            (body, result, permit)
        });
        match task.await {
            Ok((body, result, permit)) => (Some(body), result, Some(permit)),
            // The uploader panicked: its slot was freed as its task unwound.
            Err(e) => {
                let error = UploadError::Other(format!("upload task failed: {e}"));
                tracing::error!(records, %error, "upload task failed");
                (None, Err(error), None)
            }
        }
    }
}

/// Told about records (by index) that settled before the rest of their request.
type Settled<'a> = dyn Fn(&[(usize, RecordOutcome)]) + Send + Sync + 'a;

/// Groups jobs for one account into the requests the engine will send: profiles first, at most
/// `batch_size` records and `max_body_bytes` bytes each. Passing each group to
/// [`Deliverer::deliver_jobs`] on its own makes every call exactly one request (plus its
/// retries), so a caller can store each request's outcomes as soon as it is answered.
pub fn pack_jobs<K>(jobs: Vec<Job<K>>, settings: &DeliverySettings) -> Vec<Vec<Job<K>>> {
    let items: Vec<Item> = jobs
        .iter()
        .map(|j| Item {
            profile: j.record.is_profile(),
            bytes: serialized_len(&j.record),
        })
        .collect();
    let batches = pack(
        &items,
        settings.batch_size.clamp(1, MAX_BATCH_SIZE),
        settings.max_body_bytes,
    );
    let mut slots: Vec<Option<Job<K>>> = jobs.into_iter().map(Some).collect();
    batches
        .into_iter()
        .map(|batch| batch.into_iter().filter_map(|i| slots[i].take()).collect())
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn settle(
    mut done: Vec<(usize, RecordOutcome)>,
    pending: &[usize],
    outcome: RecordOutcome,
) -> Vec<(usize, RecordOutcome)> {
    done.extend(pending.iter().map(|i| (*i, outcome.clone())));
    done
}

fn fail_fast(f: &FailingAccount) -> RecordOutcome {
    RecordOutcome::Dead {
        code: Some(f.code),
        reason: format!(
            "not sent: account {} is failing since CleverTap refused its credentials \
             (HTTP {}): {}",
            f.account, f.code, f.reason
        ),
    }
}

fn dead(retry: &Retry, attempts: u32, bound: &str) -> RecordOutcome {
    RecordOutcome::Dead {
        code: retry.code,
        reason: format!(
            "gave up after {attempts} attempt(s) (out of {bound}): {}",
            retry.reason
        ),
    }
}

/// A record's size as sent, without keeping the bytes.
/// Splits one account's records into the request bodies the engine would send: profiles first,
/// at most `batch_size` records and `max_body_bytes` bytes each. Pure; used to preview a plan.
pub fn bodies(records: &[UploadRecord], settings: &DeliverySettings) -> Vec<UploadBody> {
    let items: Vec<Item> = records
        .iter()
        .map(|r| Item {
            profile: r.is_profile(),
            bytes: serialized_len(r),
        })
        .collect();
    pack(
        &items,
        settings.batch_size.clamp(1, MAX_BATCH_SIZE),
        settings.max_body_bytes,
    )
    .into_iter()
    .map(|batch| UploadBody {
        d: batch.into_iter().map(|i| records[i].clone()).collect(),
    })
    .collect()
}

fn serialized_len(record: &UploadRecord) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Encoding errors surface when the body is sent; the size then does not matter.
    let _ = serde_json::to_writer(&mut count, record);
    count.0
}
