//! The background worker: drains the spool through the delivery engine.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Claimed, Spool, SpoolError};
use crate::account::AccountId;
use crate::deliver::{pack_jobs, Deliverer, Job};
use crate::report::RecordOutcome;
use crate::transform::{Target, UnixSeconds};

/// How the worker drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Records claimed per round (split into requests of the engine's batch size).
    pub claim_limit: usize,
    /// How long to wait for new work when the spool is empty (a new webhook wakes it sooner).
    pub idle_poll: Duration,
    /// Finished deliveries older than this are pruned; `None` keeps them.
    pub retention: Option<Duration>,
    /// How often pruning runs.
    pub prune_every: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            claim_limit: 15_000,
            idle_poll: Duration::from_millis(500),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// A function told about stored outcomes.
type ObserveFn = dyn Fn(&[RecordOutcome]) + Send + Sync;

/// Told about every stored outcome (for metrics).
pub type OutcomeObserver = Arc<ObserveFn>;

/// Drains a spool. Cheap to clone; [`Worker::wake`] nudges it after new work arrives.
#[derive(Clone)]
pub struct Worker {
    spool: Arc<dyn Spool>,
    deliverer: Arc<Deliverer>,
    settings: WorkerSettings,
    wake: Arc<Notify>,
    observer: Option<OutcomeObserver>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker over a spool and an engine.
    pub fn new(spool: Arc<dyn Spool>, deliverer: Arc<Deliverer>, settings: WorkerSettings) -> Self {
        Worker {
            spool,
            deliverer,
            settings,
            wake: Arc::new(Notify::new()),
            observer: None,
        }
    }

    /// Calls `observer` with the outcomes of each request once they are stored.
    #[must_use]
    pub fn with_observer(mut self, observer: OutcomeObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the worker there is new work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Recovers records left `sending` by a previous run, then drains until `shutdown`
    /// completes. On shutdown it stops claiming and lets the requests in flight finish, so the
    /// spool is left consistent.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), SpoolError> {
        let recovered = self.spool.recover().await?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "records that were in flight at the last stop are pending again"
            );
        }
        tokio::pin!(shutdown);
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= self.settings.prune_every) {
                self.prune().await;
                last_prune = Some(std::time::Instant::now());
            }
            // A round runs to completion: a shutdown arriving meanwhile is seen right after.
            let worked = self.round().await?;
            if worked > 0 {
                if futures_ready(&mut shutdown).await {
                    break;
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
        tracing::info!("delivery paused: nothing in flight, the spool is consistent");
        Ok(())
    }

    /// Claims and delivers one round of records. Returns how many were claimed.
    pub async fn round(&self) -> Result<usize, SpoolError> {
        let claimed = self.spool.claim(self.settings.claim_limit).await?;
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let mut by_account: BTreeMap<AccountId, Vec<Claimed>> = BTreeMap::new();
        for c in claimed {
            by_account.entry(c.account_id.clone()).or_default().push(c);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (account, records) in by_account {
            let target = Target::Configured(account);
            let jobs: Vec<Job<i64>> = records
                .into_iter()
                .map(|c| Job {
                    key: c.id,
                    record: c.record,
                })
                .collect();
            // One task per request: its outcomes are stored as soon as it is answered.
            for request in pack_jobs(jobs, self.deliverer.settings()) {
                let (deliverer, spool, target, observer) = (
                    Arc::clone(&self.deliverer),
                    Arc::clone(&self.spool),
                    target.clone(),
                    self.observer.clone(),
                );
                tasks.spawn(async move {
                    let store = Store {
                        spool: &*spool,
                        observer: observer.as_deref(),
                    };
                    deliver_request(&deliverer, store, &target, request).await
                });
            }
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let result = done
                .map_err(|e| SpoolError::Task(e.to_string()))
                .and_then(|r| r);
            if let Err(e) = result {
                tracing::error!(error = %e, "could not store delivery outcomes");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    async fn prune(&self) {
        let Some(retention) = self.settings.retention else {
            return;
        };
        let cutoff = UnixSeconds(
            UnixSeconds::now().0 - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX),
        );
        match self.spool.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "finished deliveries past retention were pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning the spool failed"),
        }
    }
}

/// Delivers one request's records and stores their outcomes: those that settle early (the
/// processed and rejected records of a `partial` answer, while its 555 records are retried) at
/// once, the rest when the request is done. A processed record is never left `sending`, so a
/// crash cannot send it again.
async fn deliver_request(
    deliverer: &Deliverer,
    store: Store<'_>,
    target: &Target,
    jobs: Vec<Job<i64>>,
) -> Result<(), SpoolError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<(i64, RecordOutcome)>>();
    let sink = move |settled: Vec<(i64, RecordOutcome)>| {
        // The receiver outlives the delivery: a send cannot fail while it matters.
        let _ = tx.send(settled);
    };
    let delivery = deliverer.deliver_jobs_reporting(target, jobs, &sink);
    tokio::pin!(delivery);
    let mut stored = HashSet::new();
    let outcomes = loop {
        tokio::select! {
            Some(early) = rx.recv() => {
                store.complete(&early).await?;
                stored.extend(early.iter().map(|(id, _)| *id));
            }
            outcomes = &mut delivery => break outcomes,
        }
    };
    let rest: Vec<(i64, RecordOutcome)> = outcomes
        .into_iter()
        .filter(|(id, _)| !stored.contains(id))
        .collect();
    store.complete(&rest).await
}

/// Where a request's outcomes go: the spool, then the observer.
#[derive(Clone, Copy)]
struct Store<'a> {
    spool: &'a dyn Spool,
    observer: Option<&'a ObserveFn>,
}

impl Store<'_> {
    async fn complete(self, outcomes: &[(i64, RecordOutcome)]) -> Result<(), SpoolError> {
        self.spool.complete(UnixSeconds::now(), outcomes).await?;
        if let Some(observe) = self.observer {
            let list: Vec<RecordOutcome> = outcomes.iter().map(|(_, o)| o.clone()).collect();
            observe(&list);
        }
        Ok(())
    }
}

/// Whether `f` is already complete, without waiting.
async fn futures_ready<F: Future<Output = ()>>(f: &mut std::pin::Pin<&mut F>) -> bool {
    tokio::select! {
        biased;
        () = f.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}
