//! `backfill`: copies the rows the target lacks, in key order, never overwriting and never
//! bringing back a row the application deleted (docs/migrations.md).
//!
//! # One chunk
//!
//! The chunk's rows are read from the source (typed values, binary protocol): at most
//! `chunk_rows` rows after `lower` (or, adaptive, as many as [`next_chunk_rows`] says), in key
//! order; their last key is the chunk's `upper`. The
//! bounds `(lower, upper]` are journaled (`begun`, fsynced) before the target is touched. Then,
//! in one REPEATABLE READ transaction on the target:
//!
//! 1. `SELECT key FROM tombstones WHERE range FOR UPDATE` and `SELECT key FROM t WHERE range
//!    FOR UPDATE`: next-key locks on both ranges. A locking read sees the latest committed rows
//!    and waits for an application transaction that holds a lock in the range; while they are
//!    held, no application transaction can add a row or a tombstone in the range.
//! 2. Plain multi-row `INSERT`s of the rows whose key is neither on the target nor tombstoned
//!    (no `REPLACE`, no upsert, no `INSERT IGNORE`: nothing on the target is ever overwritten,
//!    and an unexpected duplicate fails the chunk instead of passing silently). They are sent
//!    as text, as `mysqldump` writes them (one round trip; a prepared statement with tens of
//!    thousands of parameters cost a prepare, an execute and a close), with literals rendered
//!    from the typed values so the target stores exactly what the source holds
//!    ([`super::literal`]).
//! 3. `COMMIT`; then `done` is journaled (fsynced) with the counts and both servers' positions
//!    ([`super::position`]): the chunk is acknowledged.
//!
//! The source is read before the target's locks are taken, and that is safe: what protects a
//! row is the target's state under the locks, not the age of the source's copy. Interleavings
//! with an application that deletes a row and writes its tombstone in one transaction:
//! committed before step 1, the tombstone is seen and the key skipped; in flight at step 1, the
//! locking read waits for its commit and then sees the tombstone; started after step 1, its
//! tombstone insert waits for our commit, and its delete then removes the copied row (or InnoDB
//! reports a deadlock to one of the two, which retries: the backfill redoes the chunk). A
//! dual-written insert or upsert lands either before (the key is skipped) or after (it
//! overwrites our older copy) our transaction, never under it.
//!
//! # Pipeline
//!
//! While the target runs chunk N's transaction, the source already reads chunk N+1 (two
//! connections, one task). At most two chunks are in memory.
//!
//! # Checkpoints
//!
//! The journal (the session journal's format, [`crate::journal`]) first records the servers
//! (`step` `servers`: both [`Identity`]s); a later run against another target is refused
//! before anything is read or written. Then one `chunk`/`begun` and one `chunk`/`done` per
//! chunk, `done` carrying `source_position` (read right after the chunk's rows: an upper bound
//! of what they reflect) and `target_position` (right after its `COMMIT`). A rerun continues
//! each table after the `upper` of its last `done` chunk; a `begun` without `done` (killed
//! mid-chunk) is redone, which is safe because inserts skip present keys. Each chunk is
//! acknowledged once.
//!
//! # Brakes
//!
//! Before each chunk: `--max-rate`, `--max-threads-running` and `--max-lag` (the target's
//! replicas, by GTID or by a heartbeat row each chunk's transaction writes): [`super::throttle`],
//! [`super::heartbeat`].

pub use super::cleanup::cleanup_tombstones;
use super::definition::{self, Prepared};
use super::heartbeat::Heartbeat;
use super::literal;
use super::position::{check_target, position, Identity, Position, SERVERS_STEP};
use super::progress::{self, OnProgress, Progress, Work};
use super::throttle::{LagBy, LagOptions, Throttle};
use super::{connections, verify, VerifyOptions, VerifyReport};
use crate::compare::TableQueries;
use crate::db::Server;
use crate::error::{Error, Result};
use crate::journal::{Journal, Record, StepState};
use crate::model::ident::quote_ident;
use crate::model::TableName;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How a backfill writes.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Rows of the first chunk; of every chunk when not `adaptive`.
    pub chunk_rows: u64,
    /// Size each next chunk from the last one ([`next_chunk_rows`]): its transaction on the
    /// target near [`CHUNK_TARGET`], its rows within [`CHUNK_MIN_ROWS`]..[`CHUNK_MAX_ROWS`] and
    /// [`CHUNK_MAX_BYTES`]. The command line turns it on unless `--chunk-rows` is given.
    pub adaptive: bool,
    /// Rows per second read from the source, at most.
    pub max_rate: Option<f64>,
    /// Pause while the target's `Threads_running` is above this.
    pub max_threads_running: u64,
    /// Read and count only; no journal, no writes.
    pub dry_run: bool,
    /// Pause while a replica of the target is further behind than this (`--max-lag`).
    pub lag: Option<LagOptions>,
    /// The verify that ends a backfill.
    pub verify: VerifyOptions,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            chunk_rows: 5000,
            adaptive: false,
            max_rate: None,
            max_threads_running: 64,
            dry_run: false,
            lag: None,
            verify: VerifyOptions::default(),
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackfillReport {
    pub tables: Vec<TableName>,
    /// Chunks acknowledged by this run.
    pub chunks: usize,
    /// Chunks acknowledged by earlier runs (resumed after them).
    pub chunks_before: usize,
    pub rows_read: u64,
    /// Rows copied (a dry run: rows that would be copied).
    pub inserted: u64,
    /// Rows already on the target.
    pub present: u64,
    /// Rows skipped because their key has a tombstone.
    pub tombstoned: u64,
    /// Chunks redone after a deadlock or lock wait timeout.
    pub retries: u64,
    /// Chunks that waited for a replica of the target to catch up (`--max-lag`).
    pub lag_waits: u64,
    /// The replicas whose lag was watched.
    pub replicas: Vec<String>,
    /// The copy's time (the verify that ends a backfill has its own `took_ms`).
    pub copy_ms: u64,
    pub took_ms: u64,
    pub verify: Option<VerifyReport>,
}

/// The journal's checkpoint of one table: the `upper` of its last acknowledged chunk, the
/// chunks acknowledged and the rows they read (inserted, present or tombstoned).
fn checkpoint(j: &Journal, table: &TableName) -> (Option<Vec<String>>, usize, u64) {
    let mut last = None;
    let mut n = 0;
    let mut rows = 0;
    for e in j.entries() {
        if let Record::Step { name, state: StepState::Done, detail } = &e.record {
            if name == "chunk"
                && detail.get("table").and_then(|t| serde_json::from_value::<TableName>(t.clone()).ok()).as_ref() == Some(table)
            {
                last = detail.get("upper").and_then(|u| serde_json::from_value::<Vec<String>>(u.clone()).ok());
                n += 1;
                rows += ["inserted", "present", "tombstoned"].iter().filter_map(|k| detail.get(*k).and_then(|v| v.as_u64())).sum::<u64>();
            }
        }
    }
    (last, n, rows)
}

fn retryable(e: &Error) -> bool {
    let code = match e {
        Error::Query { source: mysql_async::Error::Server(se), .. } | Error::Statement { source: mysql_async::Error::Server(se), .. } => {
            se.code
        }
        _ => return false,
    };
    code == 1213 || code == 1205
}

/// Copies what `to` lacks of `tables` from `from`, then verifies (see the module doc).
pub async fn backfill(
    from: &Server,
    to: &Server,
    tables: &[TableName],
    tombstones: Option<&str>,
    mut journal: Option<&mut Journal>,
    opts: &BackfillOptions,
    progress: &mut OnProgress<'_>,
) -> Result<BackfillReport> {
    let started = Instant::now();
    let (mut a, mut b) = connections(from, to).await?;
    let result = async {
        if let Some(j) = journal.as_deref_mut() {
            tie_to_servers(j, &mut a, &mut b).await?;
        }
        definition::refuse_replica_of_source(&mut a, &mut b, "a backfill").await?;
        let prepared = definition::prepare(&mut a, &mut b, tables, tombstones).await?;
        b.session("setting the isolation level", "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
        let lag = if opts.dry_run { None } else { opts.lag.as_ref() };
        let mut throttle = Throttle::new(&mut b, opts.max_rate, opts.max_threads_running, lag).await?;
        // Armed once every check has passed (it is the backfill's first change).
        if lag.is_some_and(|l| l.by == LagBy::Heartbeat) {
            throttle.beat_with(arm_heartbeat(to, journal.as_deref_mut(), tables).await?);
        }
        let total = progress::estimate_rows(&mut a, tables).await?;
        let checkpoints: Vec<_> =
            prepared.iter().map(|p| journal.as_deref().map_or((None, 0, 0), |j| checkpoint(j, &p.queries.table))).collect();
        let rows_before = checkpoints.iter().map(|c| c.2).sum();
        progress(&Progress::Started { work: Work::Copy, total, done: rows_before });
        let mut out = BackfillReport { tables: tables.to_vec(), replicas: throttle.replicas(), ..Default::default() };
        let mut run = Run { opts, throttle: &mut throttle, started, rows_before, progress: &mut *progress };
        let mut copied = Ok(());
        for (p, (lower, before, _)) in prepared.iter().zip(checkpoints) {
            out.chunks_before += before;
            copied = copy_table(&mut a, &mut b, p, lower, journal.as_deref_mut(), &mut run, &mut out).await;
            if copied.is_err() {
                break;
            }
        }
        out.lag_waits = throttle.lag_waits;
        throttle.close().await;
        copied.map(|()| out)
    }
    .await;
    a.close().await;
    b.close().await;
    let mut out = result?;
    out.copy_ms = started.elapsed().as_millis() as u64;
    if !opts.dry_run {
        out.verify = Some(verify(from, to, tables, tombstones, &opts.verify, progress).await?);
    }
    out.took_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// Ties a journal to the servers: the first run records both identities; a later run against
/// another target is refused before anything is read or written.
async fn tie_to_servers(j: &mut Journal, a: &mut Server, b: &mut Server) -> Result<()> {
    let target = Identity::read(b).await?;
    let recorded = j.entries().iter().find_map(|e| match &e.record {
        Record::Step { name, detail, .. } if name == SERVERS_STEP => {
            Some(serde_json::from_value::<Identity>(detail.get("target").cloned().unwrap_or_default()))
        }
        _ => None,
    });
    match recorded {
        Some(Ok(r)) => check_target(&r, &target, &b.target, j.path()),
        Some(Err(e)) => Err(Error::JournalState {
            what: format!("the backfill journal {} names its target unreadably ({e})", j.path().display()),
            todo: "start a new journal (--restart keeps the old one aside, or --journal PATH)",
        }),
        None => {
            let source = Identity::read(a).await?;
            j.append(Record::Step {
                name: SERVERS_STEP.into(),
                state: StepState::Done,
                detail: serde_json::json!({ "source": source, "target": target, "source_address": a.target, "target_address": b.target }),
            })?;
            Ok(())
        }
    }
}

/// Creates the heartbeat row of `--lag-by heartbeat` (through the journal: it is a change).
async fn arm_heartbeat(to: &Server, journal: Option<&mut Journal>, tables: &[TableName]) -> Result<Heartbeat> {
    let Some(j) = journal else {
        return Err(Error::BadInput("--lag-by heartbeat writes a heartbeat row on the target, which needs the backfill's journal".into()));
    };
    let name = format!("backfill {}", tables.first().map(ToString::to_string).unwrap_or_default());
    Heartbeat::arm(to, j, &name).await
}

/// One chunk as read from the source: its bounds and rows, and the source's position after the
/// read (an upper bound of what the rows reflect).
struct SourceChunk {
    lower: Option<Vec<String>>,
    upper: Vec<String>,
    rows: Vec<SourceRow>,
    position: Option<Position>,
}

/// Reads the next chunk after `lower` (at most `limit` rows, in key order); `None` at the end.
async fn read_chunk(
    a: &mut Server,
    q: &TableQueries,
    lower: Option<Vec<String>>,
    limit: u64,
    positions: bool,
) -> Result<Option<SourceChunk>> {
    let rows = source_rows(a, q, lower.as_deref(), limit).await?;
    let Some(upper) = rows.last().map(|r| r.0.clone()) else { return Ok(None) };
    let position = if positions { Some(position(a).await?) } else { None };
    Ok(Some(SourceChunk { lower, upper, rows, position }))
}

/// Everything a table's copy needs besides the two connections.
struct Run<'a> {
    opts: &'a BackfillOptions,
    throttle: &'a mut Throttle,
    started: Instant,
    /// Rows read by earlier runs (their acknowledged chunks), for [`Progress::Rows`].
    rows_before: u64,
    progress: &'a mut OnProgress<'a>,
}

/// Copies one table, pipelined: while the target writes chunk N in its transaction, the source
/// reads chunk N+1 (the target's locks, not the order of the reads, make a chunk safe: see the
/// module doc).
async fn copy_table(
    a: &mut Server,
    b: &mut Server,
    p: &Prepared,
    lower: Option<Vec<String>>,
    mut journal: Option<&mut Journal>,
    run: &mut Run<'_>,
    out: &mut BackfillReport,
) -> Result<()> {
    let q = &p.queries;
    let opts = run.opts;
    let mut limit = if opts.adaptive { CHUNK_FIRST_ROWS } else { opts.chunk_rows.max(1) };
    let positions = journal.is_some();
    (run.progress)(&Progress::Table {
        work: Work::Copy,
        table: q.table.clone(),
        index: q.index.clone(),
        key: q.key_names(),
        chunk_rows: if opts.adaptive { 0 } else { limit },
    });
    let mut next = read_chunk(a, q, lower, limit, positions).await?;
    while let Some(chunk) = next.take() {
        let progress = &mut *run.progress;
        let mut held = |brake| progress(&Progress::Throttled { table: q.table.clone(), brake });
        run.throttle.wait(b, out.rows_read, run.started, &mut held).await?;
        let beat = if opts.dry_run { None } else { run.throttle.beat() };
        let mut detail = serde_json::json!({ "table": q.table, "lower": chunk.lower, "upper": chunk.upper });
        if let Some((n, _)) = &beat {
            detail["heartbeat"] = (*n).into();
        }
        if let Some(j) = journal.as_deref_mut() {
            j.append(Record::Step { name: "chunk".into(), state: StepState::Begun, detail: detail.clone() })?;
        }
        let avg_bytes = if opts.adaptive { row_bytes(&chunk.rows) } else { 0 };
        let read_limit = if opts.adaptive { next_chunk_rows(limit, None, avg_bytes) } else { limit };
        let timed_write = async {
            let started = Instant::now();
            (write_chunk(b, p, &chunk, opts.dry_run, beat.as_ref().map(|(_, sql)| sql.as_str())).await, started.elapsed())
        };
        let ((written, took), read) = tokio::join!(timed_write, read_chunk(a, q, Some(chunk.upper.clone()), read_limit, positions));
        let counts = written?;
        if opts.adaptive {
            limit = next_chunk_rows(read_limit, Some((took, chunk.rows.len() as u64)), avg_bytes);
        }
        let target_position = if opts.dry_run { None } else { Some(position(b).await?) };
        if let Some(t) = &target_position {
            run.throttle.committed(&t.gtid);
        }
        let mut done = detail;
        done["inserted"] = counts.inserted.into();
        done["present"] = counts.present.into();
        done["tombstoned"] = counts.tombstoned.into();
        done["source_position"] = serde_json::to_value(&chunk.position).unwrap_or_default();
        done["target_position"] = serde_json::to_value(&target_position).unwrap_or_default();
        if let Some(j) = journal.as_deref_mut() {
            j.append(Record::Step { name: "chunk".into(), state: StepState::Done, detail: done })?;
        }
        out.chunks += 1;
        out.rows_read += counts.read;
        out.inserted += counts.inserted;
        out.present += counts.present;
        out.tombstoned += counts.tombstoned;
        out.retries += counts.retries;
        (run.progress)(&Progress::Rows {
            work: Work::Copy,
            table: q.table.clone(),
            done: run.rows_before + out.rows_read,
            copied: out.inserted,
        });
        next = read?;
    }
    Ok(())
}

/// The time an adaptive chunk's transaction on the target aims at (Spirit aims its copier's
/// chunks at 500 ms too): long enough that a chunk's fixed costs (two journal fsyncs, the
/// locking reads, the commit, the positions) stay small, short enough that the next-key locks
/// it holds delay an application's write in its key range by well under a second.
pub const CHUNK_TARGET: Duration = Duration::from_millis(500);
/// Bounds of an adaptive chunk, in rows.
pub const CHUNK_MIN_ROWS: u64 = 500;
pub const CHUNK_MAX_ROWS: u64 = 20_000;
/// An adaptive copy's first chunk, before any row's size is known: small, so that even wide rows
/// cannot make it large; the next ones double until the target time, the rows or the bytes stop
/// them.
pub const CHUNK_FIRST_ROWS: u64 = 100;
/// Bound of an adaptive chunk, in bytes of row data: two chunks are in memory at once (one
/// written, one read ahead), plus the text of one `INSERT` ([`MAX_INSERT_BYTES`]).
pub const CHUNK_MAX_BYTES: u64 = 24 << 20;

/// The next chunk's rows. `last` is the last chunk's write time and rows (unknown for the read
/// ahead, sized while that write runs: then only the memory bound applies); `avg_bytes` the mean
/// size of a row read so far. Grows at most 2x and shrinks at most 4x a step.
pub fn next_chunk_rows(current: u64, last: Option<(Duration, u64)>, avg_bytes: u64) -> u64 {
    // Wide rows: the memory bound wins over the minimum (at least one row).
    let by_memory = (CHUNK_MAX_BYTES / avg_bytes.max(1)).max(1);
    let wanted = match last {
        Some((took, rows)) if rows > 0 && !took.is_zero() => {
            let per_row = took.as_secs_f64() / rows as f64;
            let ideal = (CHUNK_TARGET.as_secs_f64() / per_row) as u64;
            ideal.clamp(current / 4, current.saturating_mul(2))
        }
        _ => current,
    };
    wanted.clamp(CHUNK_MIN_ROWS, CHUNK_MAX_ROWS).min(by_memory)
}

/// The mean size of the rows, as read (bytes of text and binary values, 8 for any other).
fn row_bytes(rows: &[SourceRow]) -> u64 {
    if rows.is_empty() {
        return 1;
    }
    let total: usize = rows
        .iter()
        .map(|(_, vals)| vals.iter().map(|v| if let mysql_async::Value::Bytes(b) = v { b.len() } else { 8 }).sum::<usize>())
        .sum();
    (total / rows.len()).max(1) as u64
}

struct Counts {
    read: u64,
    inserted: u64,
    present: u64,
    tombstoned: u64,
    retries: u64,
}

/// [`copy_chunk`], redone after a deadlock or a lock wait timeout (the transaction was rolled
/// back, so nothing of it stayed).
async fn write_chunk(b: &mut Server, p: &Prepared, chunk: &SourceChunk, dry_run: bool, beat: Option<&str>) -> Result<Counts> {
    let mut retries = 0;
    loop {
        match copy_chunk(b, p, chunk, dry_run, beat).await {
            Ok(c) => return Ok(Counts { retries, ..c }),
            Err(e) if retryable(&e) => {
                let _ = b.session("rolling back", "ROLLBACK").await;
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                let _ = b.session("rolling back", "ROLLBACK").await;
                return Err(e);
            }
        }
    }
}

/// An `INSERT` is sent once its text reaches this size: well under `max_allowed_packet`
/// (16 MiB on MariaDB, 64 MiB on MySQL by default), large enough to need few round trips.
const MAX_INSERT_BYTES: usize = 4 << 20;

/// A text multi-row `INSERT` being built: its head, then `(literals), ...` ([`super::literal`]).
struct InsertText {
    head: String,
    binary: Vec<bool>,
    sql: String,
    rows: usize,
}

impl InsertText {
    fn new(q: &TableQueries) -> InsertText {
        let cols: Vec<String> = q.column_names().iter().map(|c| quote_ident(c)).collect();
        let head = format!("INSERT INTO {} ({}) VALUES ", q.table.sql(), cols.join(", "));
        let binary = q.columns.iter().map(|c| literal::is_binary(&c.data_type)).collect();
        InsertText { sql: head.clone(), head, binary, rows: 0 }
    }

    fn push(&mut self, values: &[mysql_async::Value]) {
        if self.rows > 0 {
            self.sql.push_str(", ");
        }
        self.sql.push('(');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            literal::push_literal(&mut self.sql, v, self.binary.get(i).copied().unwrap_or(true));
        }
        self.sql.push(')');
        self.rows += 1;
    }

    /// Sends the rows gathered so far, if any, and starts over.
    async fn flush(&mut self, b: &mut Server, q: &TableQueries) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let summary = format!("INSERT INTO {} ({} rows)", q.table, self.rows);
        // The backfill's one write, inside a chunk journaled first (clippy.toml).
        #[allow(clippy::disallowed_methods)]
        let inserted = b.execute_text(&self.sql, &summary).await;
        self.sql.truncate(self.head.len());
        self.rows = 0;
        inserted.map_err(|source| Error::Statement { server: b.target.clone(), sql: summary, source })
    }
}

/// One chunk in one target transaction (see the module doc); `dry_run` counts without locking
/// or writing. `beat` (`--lag-by heartbeat`) is the chunk's heartbeat, written before `COMMIT`.
async fn copy_chunk(b: &mut Server, p: &Prepared, chunk: &SourceChunk, dry_run: bool, beat: Option<&str>) -> Result<Counts> {
    let q = &p.queries;
    let (lower, upper) = (chunk.lower.as_deref(), Some(chunk.upper.as_slice()));
    let lock = if dry_run { "" } else { " FOR UPDATE" };
    if !dry_run {
        b.session("starting a transaction", "START TRANSACTION").await?;
    }
    let tombs: BTreeSet<Vec<String>> = match &p.tombstones {
        Some(t) => q.keys_in(b, t, lower, upper, lock).await?.into_iter().collect(),
        None => BTreeSet::new(),
    };
    let present: BTreeSet<Vec<String>> = q.keys_in(b, &q.table, lower, upper, lock).await?.into_iter().collect();
    let mut c = Counts { read: chunk.rows.len() as u64, inserted: 0, present: 0, tombstoned: 0, retries: 0 };
    let mut insert = InsertText::new(q);
    for (key, values) in &chunk.rows {
        if tombs.contains(key) {
            c.tombstoned += 1;
        } else if present.contains(key) {
            c.present += 1;
        } else {
            c.inserted += 1;
            if !dry_run {
                insert.push(values);
                if insert.sql.len() >= MAX_INSERT_BYTES {
                    insert.flush(b, q).await?;
                }
            }
        }
    }
    if !dry_run {
        insert.flush(b, q).await?;
        if let Some(sql) = beat {
            // The chunk's heartbeat, journaled with its `begun` record (super::heartbeat).
            #[allow(clippy::disallowed_methods)]
            let beaten = b.execute_text(sql, "the chunk's heartbeat").await;
            beaten.map_err(|source| Error::Statement { server: b.target.clone(), sql: sql.to_string(), source })?;
        }
        b.session("committing the chunk", "COMMIT").await?;
    }
    Ok(c)
}

type SourceRow = (Vec<String>, Vec<mysql_async::Value>);

/// The source's rows after `lower`, at most `limit`, in key order, each with its key.
async fn source_rows(a: &mut Server, q: &TableQueries, lower: Option<&[String]>, limit: u64) -> Result<Vec<SourceRow>> {
    let cols: Vec<String> = q.column_names().iter().map(|c| quote_ident(c)).collect();
    let order: Vec<String> = q.key_names().iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT {}, {} FROM {} FORCE INDEX ({}) WHERE {} ORDER BY {} LIMIT {limit}",
        cols.join(", "),
        q.key_select(&q.table).join(", "),
        q.table.sql(),
        quote_ident(&q.index),
        q.range(lower, None)?,
        order.join(", ")
    );
    let rows = a.rows_typed("reading the source's rows", &sql).await?;
    let n = cols.len();
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut v = r.unwrap();
            let key = v.split_off(n).into_iter().map(|k| match k {
                mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                other => other.as_sql(true).trim_matches('\'').to_string(),
            });
            (key.collect(), v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{checkpoint, next_chunk_rows, CHUNK_FIRST_ROWS, CHUNK_MAX_BYTES, CHUNK_MAX_ROWS, CHUNK_MIN_ROWS};
    use crate::journal::{Journal, Record, StepState, JOURNAL_FORMAT};
    use crate::model::TableName;
    use std::time::Duration;

    #[test]
    fn adaptive_chunks_aim_at_half_a_second_within_their_bounds() {
        let ms = Duration::from_millis;
        // 5,000 rows in 100 ms: 25,000 would take 500 ms, but a step at most doubles.
        assert_eq!(next_chunk_rows(5_000, Some((ms(100), 5_000)), 100), 10_000);
        assert_eq!(next_chunk_rows(8_000, Some((ms(250), 8_000)), 100), 16_000);
        // Slow writes shrink it, at most 4x a step, never under the minimum.
        assert_eq!(next_chunk_rows(20_000, Some((ms(4_000), 20_000)), 100), 5_000);
        assert_eq!(next_chunk_rows(CHUNK_FIRST_ROWS, Some((ms(5), CHUNK_FIRST_ROWS)), 100), CHUNK_MIN_ROWS);
        assert_eq!(next_chunk_rows(1_000, Some((ms(60_000), 1_000)), 100), CHUNK_MIN_ROWS);
        // Never over the maximum rows, nor over the memory bound for wide rows.
        assert_eq!(next_chunk_rows(15_000, Some((ms(10), 15_000)), 10), CHUNK_MAX_ROWS);
        assert_eq!(next_chunk_rows(15_000, Some((ms(10), 15_000)), 100_000), CHUNK_MAX_BYTES / 100_000);
        // No timing yet (the read ahead): the size stays, within the memory bound.
        assert_eq!(next_chunk_rows(5_000, None, 100), 5_000);
        assert_eq!(next_chunk_rows(5_000, None, 1 << 20), 24);
        assert_eq!(next_chunk_rows(5_000, None, 1 << 30), 1);
    }

    #[test]
    fn a_checkpoint_counts_the_rows_its_acknowledged_chunks_read() {
        let (t, other) = (TableName::new("s", "t"), TableName::new("s", "u"));
        let dir = tempfile::tempdir().unwrap();
        let header = Record::Header {
            format: JOURNAL_FORMAT,
            tool_version: "test".into(),
            service: "svc".into(),
            policy: "-".into(),
            tables: vec![t.clone(), other.clone()],
        };
        let mut j = Journal::open_or_create(&dir.path().join("j"), header).unwrap();
        let mut step = |state, table: &TableName, upper: &str, counts: [u64; 3]| {
            let detail = serde_json::json!({ "table": table, "lower": null, "upper": [upper],
                "inserted": counts[0], "present": counts[1], "tombstoned": counts[2] });
            j.append(Record::Step { name: "chunk".into(), state, detail }).unwrap();
        };
        step(StepState::Done, &t, "10", [7, 2, 1]);
        step(StepState::Done, &other, "5", [5, 0, 0]);
        step(StepState::Done, &t, "20", [10, 0, 0]);
        // Begun but not acknowledged (killed mid-chunk): redone, so not counted.
        step(StepState::Begun, &t, "30", [10, 0, 0]);
        let (last, chunks, rows) = checkpoint(&j, &t);
        assert_eq!((last, chunks, rows), (Some(vec!["20".to_string()]), 2, 20));
    }
}
