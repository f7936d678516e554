//! The SQLite spool (rusqlite, bundled SQLite): WAL journal, `synchronous = FULL`, so a
//! committed webhook survives a crash or power loss.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{Accepted, Claimed, DeliverySummary, NewDelivery, Spool, SpoolError, StateFilter};
use crate::account::AccountId;
use crate::record::UploadRecord;
use crate::report::{Counts, DeliveryReport, DeliveryState, Failure, RecordOutcome, Stage};
use crate::transform::{Plan, UnixSeconds};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id          TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body_hash   TEXT NOT NULL,
    target_id   TEXT,
    is_test     INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    skipped     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_hash ON deliveries (body_hash, received_at);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at);
CREATE TABLE IF NOT EXISTS records (
    id          INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL,
    record      TEXT NOT NULL,
    state       TEXT NOT NULL,
    code        INTEGER,
    reason      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_state ON records (state, id);
CREATE INDEX IF NOT EXISTS records_by_delivery ON records (delivery_id);
CREATE TABLE IF NOT EXISTS attempts (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    records   INTEGER NOT NULL,
    processed INTEGER NOT NULL,
    rejected  INTEGER NOT NULL,
    dead      INTEGER NOT NULL,
    requeued  INTEGER NOT NULL
);
";

/// The SQLite spool. Cheap to clone; clones share one connection.
///
/// Accepts go through one writer thread that commits every accept waiting at that moment in
/// one transaction (group commit): each webhook is still on disk before it is answered, but
/// concurrent webhooks share an fsync instead of queueing for one each.
#[derive(Clone)]
pub struct SqliteSpool {
    conn: Arc<Mutex<Connection>>,
    accepts: std::sync::mpsc::Sender<AcceptJob>,
}

/// One accept for the writer thread.
struct AcceptJob {
    row: AcceptRow,
    reply: tokio::sync::oneshot::Sender<Result<Accepted, SpoolError>>,
}

/// What an accept writes, prepared off the writer thread.
struct AcceptRow {
    id: String,
    received_at: i64,
    body_hash: String,
    target_id: Option<Value>,
    is_test: bool,
    payload: Vec<u8>,
    skipped: Vec<Failure>,
    rows: Vec<(String, String)>,
    dedupe_since: i64,
}

/// Most accepts committed together.
const GROUP_COMMIT_MAX: usize = 256;

/// The writer thread: takes the accepts waiting, writes each in its own savepoint (one failing
/// does not fail the others), commits once, answers each.
fn writer(conn: Arc<Mutex<Connection>>, jobs: std::sync::mpsc::Receiver<AcceptJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut guard = lock(&conn);
        let results = write_batch(&mut guard, &batch);
        drop(guard);
        match results {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(SpoolError::Database(e.to_string())));
                }
            }
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    batch: &[AcceptJob],
) -> Result<Vec<Result<Accepted, SpoolError>>, SpoolError> {
    let mut tx = conn.transaction().map_err(db)?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let mut sp = tx.savepoint().map_err(db)?;
        let result = write_one(&sp, &job.row);
        if result.is_ok() {
            sp.commit().map_err(db)?;
        } else {
            sp.rollback().map_err(db)?;
        }
        results.push(result);
    }
    tx.commit().map_err(db)?;
    Ok(results)
}

fn write_one(tx: &Connection, row: &AcceptRow) -> Result<Accepted, SpoolError> {
    let original: Option<String> = tx
        .query_row(
            "SELECT id FROM deliveries WHERE body_hash = ?1 AND received_at >= ?2 ORDER BY received_at LIMIT 1",
            params![row.body_hash, row.dedupe_since],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if let Some(original) = original {
        let report = report_of(tx, &original)?
            .ok_or_else(|| SpoolError::Corrupt(format!("delivery {original} vanished")))?;
        return Ok(Accepted::Duplicate(report));
    }
    let target_id = row
        .target_id
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(corrupt)?;
    let skipped = serde_json::to_string(&row.skipped).map_err(corrupt)?;
    tx.execute(
        "INSERT INTO deliveries (id, received_at, body_hash, target_id, is_test, payload, skipped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![row.id, row.received_at, row.body_hash, target_id, row.is_test, row.payload, skipped],
    )
    .map_err(db)?;
    insert_rows(tx, &row.id, &row.rows, row.is_test, row.received_at)?;
    // The report of what was just written, without reading it back.
    let n = row.rows.len() as u64;
    let mut counts = Counts {
        skipped: row.skipped.len() as u64,
        ..Counts::default()
    };
    if row.is_test {
        counts.skipped += n;
    } else {
        counts.pending = n;
    }
    counts.planned = counts.skipped + counts.pending;
    Ok(Accepted::Stored(DeliveryReport {
        delivery_id: row.id.clone(),
        target_id: row.target_id.clone(),
        state: if row.is_test {
            DeliveryState::Test
        } else {
            counts.state()
        },
        counts,
        failures: row.skipped.clone(),
    }))
}

impl std::fmt::Debug for SqliteSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSpool").finish_non_exhaustive()
    }
}

fn db(e: rusqlite::Error) -> SpoolError {
    SpoolError::Database(e.to_string())
}

fn corrupt(e: serde_json::Error) -> SpoolError {
    SpoolError::Corrupt(e.to_string())
}

impl SqliteSpool {
    /// Opens (creating if needed) the spool file at `path`.
    pub fn open(path: &Path) -> Result<Self, SpoolError> {
        Self::setup(Connection::open(path).map_err(db)?)
    }

    /// A spool in memory, for tests and the demo: nothing survives the process.
    pub fn in_memory() -> Result<Self, SpoolError> {
        Self::setup(Connection::open_in_memory().map_err(db)?)
    }

    fn setup(conn: Connection) -> Result<Self, SpoolError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let conn = Arc::new(Mutex::new(conn));
        let (accepts, jobs) = std::sync::mpsc::channel();
        let writer_conn = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("clevertap-etl-spool-writer".into())
            .spawn(move || writer(writer_conn, jobs))
            .map_err(|e| SpoolError::Task(format!("cannot start the spool writer: {e}")))?;
        Ok(SqliteSpool { conn, accepts })
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))?
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn skipped_failures(plan: &Plan) -> Vec<Failure> {
    plan.skipped
        .iter()
        .map(|s| Failure {
            stage: Stage::Validate,
            record: s.record.clone(),
            code: Some(i64::from(s.code)),
            reason: s.reason.clone(),
            retryable: false,
        })
        .collect()
}

/// A plan's records as rows to insert: `(account id, record JSON)`, minus those equal to one
/// in `skip`.
fn rows_of(plan: &Plan, skip: &[Value]) -> Result<Vec<(String, String)>, SpoolError> {
    let mut rows = Vec::with_capacity(plan.record_count());
    for group in &plan.accounts {
        for planned in &group.records {
            if !skip.is_empty() && skip.contains(&planned.record.to_value()) {
                continue;
            }
            let text = serde_json::to_string(&planned.record).map_err(corrupt)?;
            rows.push((group.target.account_id().as_str().to_owned(), text));
        }
    }
    Ok(rows)
}

fn insert_rows(
    tx: &Connection,
    delivery_id: &str,
    rows: &[(String, String)],
    is_test: bool,
    at: i64,
) -> Result<(), SpoolError> {
    let state = if is_test { "test" } else { "pending" };
    let mut stmt = tx
        .prepare_cached("INSERT INTO records (delivery_id, account_id, record, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(db)?;
    for (account, text) in rows {
        stmt.execute(params![delivery_id, account, text, state, at])
            .map_err(db)?;
    }
    Ok(())
}

fn report_of(conn: &Connection, id: &str) -> Result<Option<DeliveryReport>, SpoolError> {
    let row: Option<(Option<String>, bool, String)> = conn
        .query_row(
            "SELECT target_id, is_test, skipped FROM deliveries WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db)?;
    let Some((target_id, is_test, skipped)) = row else {
        return Ok(None);
    };
    let mut failures: Vec<Failure> = serde_json::from_str(&skipped).map_err(corrupt)?;
    let mut counts = Counts {
        skipped: failures.len() as u64,
        ..Counts::default()
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT state, code, reason, record FROM records WHERE delivery_id = ?1 ORDER BY id",
        )
        .map_err(db)?;
    let mut rows = stmt.query([id]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let state: String = r.get(0).map_err(db)?;
        match state.as_str() {
            "processed" => counts.processed += 1,
            "pending" | "sending" => counts.pending += 1,
            "test" => counts.skipped += 1,
            "rejected" | "dead" => {
                let dead = state == "dead";
                if dead {
                    counts.dead += 1;
                } else {
                    counts.rejected += 1;
                }
                let record: String = r.get(3).map_err(db)?;
                failures.push(Failure {
                    stage: Stage::Upload,
                    record: serde_json::from_str(&record).map_err(corrupt)?,
                    code: r.get(1).map_err(db)?,
                    reason: r
                        .get::<_, Option<String>>(2)
                        .map_err(db)?
                        .unwrap_or_default(),
                    retryable: dead,
                });
            }
            other => {
                return Err(SpoolError::Corrupt(format!(
                    "unknown record state {other:?}"
                )))
            }
        }
    }
    counts.planned =
        counts.processed + counts.rejected + counts.skipped + counts.pending + counts.dead;
    let state = if is_test {
        DeliveryState::Test
    } else {
        counts.state()
    };
    Ok(Some(DeliveryReport {
        delivery_id: id.to_owned(),
        target_id: target_id.and_then(|t| serde_json::from_str(&t).ok()),
        state,
        counts,
        failures,
    }))
}

#[async_trait]
impl Spool for SqliteSpool {
    async fn accept(&self, delivery: NewDelivery<'_>) -> Result<Accepted, SpoolError> {
        // The plan is borrowed; the writer gets the rows it writes (far smaller than a copy of
        // the plan), serialized here, off the writer thread.
        let row = AcceptRow {
            rows: rows_of(delivery.plan, &[])?,
            skipped: skipped_failures(delivery.plan),
            target_id: delivery.plan.target_id.clone(),
            is_test: delivery.plan.is_test,
            id: delivery.id,
            received_at: delivery.received_at.0,
            body_hash: delivery.body_hash,
            payload: delivery.payload,
            dedupe_since: delivery.dedupe_since.0,
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.accepts
            .send(AcceptJob { row, reply })
            .map_err(|_| SpoolError::Task("the spool writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| SpoolError::Task("the spool writer has stopped".into()))?
    }

    async fn recover(&self) -> Result<u64, SpoolError> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "UPDATE records SET state = 'pending' WHERE state = 'sending'",
                    [],
                )
                .map_err(db)?;
            Ok(n as u64)
        })
        .await
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, SpoolError> {
        // Under the lock: read the rows and mark them in one statement. Parsing happens after,
        // so webhook commits wait as little as possible.
        let rows: Vec<(i64, String, String, String)> = self
            .with(move |conn| {
                let tx = conn.transaction().map_err(db)?;
                let rows = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id, delivery_id, account_id, record FROM records WHERE state = 'pending' ORDER BY id LIMIT ?1",
                        )
                        .map_err(db)?;
                    let mapped = stmt
                        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .map_err(db)?;
                    mapped.collect::<Result<Vec<_>, _>>().map_err(db)?
                };
                if let Some((last, ..)) = rows.last() {
                    // The rows read are exactly the pending ones up to the last id read.
                    tx.execute(
                        "UPDATE records SET state = 'sending' WHERE state = 'pending' AND id <= ?1",
                        [last],
                    )
                    .map_err(db)?;
                }
                tx.commit().map_err(db)?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, delivery_id, account, record)| {
                Ok(Claimed {
                    id,
                    delivery_id,
                    account_id: AccountId::try_from(account)
                        .map_err(|e| SpoolError::Corrupt(e.to_string()))?,
                    record: serde_json::from_str::<UploadRecord>(&record).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn complete(
        &self,
        at: UnixSeconds,
        outcomes: &[(i64, RecordOutcome)],
    ) -> Result<(), SpoolError> {
        let outcomes = outcomes.to_vec();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let (mut processed, mut rejected, mut dead, mut requeued) = (0, 0, 0, 0);
            {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE records SET state = ?2, code = ?3, reason = ?4, attempts = attempts + 1, updated_at = ?5 WHERE id = ?1",
                    )
                    .map_err(db)?;
                for (id, outcome) in &outcomes {
                    let (state, code, reason) = match outcome {
                        RecordOutcome::Processed => {
                            processed += 1;
                            ("processed", None, None)
                        }
                        RecordOutcome::Rejected { code, reason } => {
                            rejected += 1;
                            ("rejected", *code, Some(reason.as_str()))
                        }
                        RecordOutcome::Dead { code, reason } => {
                            dead += 1;
                            ("dead", *code, Some(reason.as_str()))
                        }
                        RecordOutcome::Pending => {
                            requeued += 1;
                            ("pending", None, None)
                        }
                    };
                    stmt.execute(params![id, state, code, reason, at.0]).map_err(db)?;
                }
            }
            tx.execute(
                "INSERT INTO attempts (at, records, processed, rejected, dead, requeued) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at.0, outcomes.len() as i64, processed, rejected, dead, requeued],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn report(&self, delivery_id: &str) -> Result<Option<DeliveryReport>, SpoolError> {
        let id = delivery_id.to_owned();
        self.with(move |conn| report_of(conn, &id)).await
    }

    async fn list(
        &self,
        state: Option<StateFilter>,
        limit: usize,
    ) -> Result<Vec<DeliverySummary>, SpoolError> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT d.id, d.received_at, d.is_test, json_array_length(d.skipped),
                            COALESCE(SUM(r.state IN ('pending', 'sending')), 0),
                            COALESCE(SUM(r.state = 'processed'), 0),
                            COALESCE(SUM(r.state = 'rejected'), 0),
                            COALESCE(SUM(r.state = 'dead'), 0),
                            COALESCE(SUM(r.state = 'test'), 0)
                     FROM deliveries d LEFT JOIN records r ON r.delivery_id = d.id
                     GROUP BY d.id ORDER BY d.received_at DESC, d.rowid DESC",
                )
                .map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                let get = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64).map_err(db);
                let mut counts = Counts {
                    skipped: get(3)? + get(8)?,
                    pending: get(4)?,
                    processed: get(5)?,
                    rejected: get(6)?,
                    dead: get(7)?,
                    planned: 0,
                };
                counts.planned = counts.processed
                    + counts.rejected
                    + counts.skipped
                    + counts.pending
                    + counts.dead;
                let is_test: bool = r.get(2).map_err(db)?;
                let s = if is_test {
                    DeliveryState::Test
                } else {
                    counts.state()
                };
                let wanted = state.is_none_or(|f| f.matches(s, &counts));
                if wanted {
                    out.push(DeliverySummary {
                        delivery_id: r.get(0).map_err(db)?,
                        received_at: r.get(1).map_err(db)?,
                        state: s,
                        counts,
                    });
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn payload(&self, delivery_id: &str) -> Result<Option<Vec<u8>>, SpoolError> {
        let id = delivery_id.to_owned();
        self.with(move |conn| {
            conn.query_row("SELECT payload FROM deliveries WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn requeue(
        &self,
        delivery_id: &str,
        replan: Option<&Plan>,
    ) -> Result<Option<DeliveryReport>, SpoolError> {
        let id = delivery_id.to_owned();
        let replan = replan.cloned();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM deliveries WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if exists.is_none() {
                return Ok(None);
            }
            match &replan {
                None => {
                    tx.execute(
                        "UPDATE records SET state = 'pending', code = NULL, reason = NULL WHERE delivery_id = ?1 AND state = 'dead'",
                        [&id],
                    )
                    .map_err(db)?;
                }
                Some(plan) => {
                    let processed: Vec<Value> = {
                        let mut stmt = tx
                            .prepare_cached("SELECT record FROM records WHERE delivery_id = ?1 AND state IN ('processed', 'sending')")
                            .map_err(db)?;
                        let rows = stmt.query_map([&id], |r| r.get::<_, String>(0)).map_err(db)?;
                        let mut out = Vec::new();
                        for text in rows {
                            out.push(serde_json::from_str(&text.map_err(db)?).map_err(corrupt)?);
                        }
                        out
                    };
                    tx.execute(
                        "DELETE FROM records WHERE delivery_id = ?1 AND state NOT IN ('processed', 'sending')",
                        [&id],
                    )
                    .map_err(db)?;
                    let skipped = serde_json::to_string(&skipped_failures(plan)).map_err(corrupt)?;
                    tx.execute("UPDATE deliveries SET skipped = ?2 WHERE id = ?1", params![id, skipped])
                        .map_err(db)?;
                    let now: i64 = tx
                        .query_row("SELECT COALESCE(MAX(updated_at), 0) FROM records", [], |r| r.get(0))
                        .map_err(db)?;
                    insert_rows(&tx, &id, &rows_of(plan, &processed)?, plan.is_test, now)?;
                }
            }
            tx.commit().map_err(db)?;
            report_of(conn, &id)
        })
        .await
    }

    async fn check_writable(&self) -> Result<(), SpoolError> {
        self.with(|conn| {
            // Takes the write lock and lets it go: fails on a read-only file or full disk.
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(db)
        })
        .await
    }

    async fn pending_records(&self) -> Result<u64, SpoolError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM records WHERE state IN ('pending', 'sending')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(db)
        })
        .await
    }

    async fn prune(&self, before: UnixSeconds) -> Result<u64, SpoolError> {
        self.with(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM deliveries WHERE received_at < ?1 AND NOT EXISTS (
                         SELECT 1 FROM records r WHERE r.delivery_id = deliveries.id AND r.state IN ('pending', 'sending'))",
                    [before.0],
                )
                .map_err(db)?;
            conn.execute("DELETE FROM attempts WHERE at < ?1", [before.0]).map_err(db)?;
            Ok(n as u64)
        })
        .await
    }
}
