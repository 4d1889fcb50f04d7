//! Sync-back: after a promotion, the new server's changes to the service's tables copied back
//! to the old primary's copy (the archived tables), so a revert loses nothing.
//!
//! # Layout
//!
//! - [`position`]: where sync-back stands (MySQL GTID set; MariaDB file and offset). Pure.
//! - [`stream`]: the new server's binary log as a replication stream, decoded into committed
//!   transactions of the watched tables' row changes, and DDL on them (which stops it).
//! - [`apply`]: the old primary's copy: rows from full images and the position, one target
//!   transaction per batch; the column check against each table map.
//! - [`check`]: the up-front checks (binary log settings, start position present, privileges,
//!   the copy), shared with `promote run --sync-back`.
//!
//! [`run`] is the long-running loop: read, batch, apply, report lag; SIGINT/SIGTERM end it
//! between two batches. Its setup (the position table, the first position row) goes through
//! the journaling executor; the rows do not (see [`apply`]).

pub mod apply;
pub mod check;
pub mod position;
pub mod stream;
pub mod writers;

use crate::db::{ConnectSpec, Flavour, Server};
use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Journal, Phase};
use crate::model::TableName;
use crate::output::Output;
use apply::{Target, TargetTable};
use position::Position;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What sync-back copies, from where to where.
#[derive(Debug, Clone)]
pub struct Plan {
    pub service: String,
    /// The new server (the binary log's source).
    pub source: ConnectSpec,
    /// The old primary, as sync-back's own account.
    pub target: ConnectSpec,
    /// (table on the new server, its copy on the old primary).
    pub tables: Vec<(TableName, TableName)>,
    /// Where to start when the old primary holds no position yet (the promotion's, captured
    /// under its fence). A stored position always wins: it was written with the rows.
    pub start: Option<Position>,
}

/// How sync-back runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The replica id it announces to the new server (unique among its replicas).
    pub server_id: u32,
    /// Row changes per target transaction, at most (a source transaction is never split).
    pub batch_rows: usize,
    /// A batch is applied at the latest this long after its first transaction arrived.
    pub flush_after: Duration,
    /// Status line and metrics interval.
    pub status_every: Duration,
    /// Prometheus text file written at every status.
    pub prom_file: Option<PathBuf>,
    /// SIGINT/SIGTERM/SIGHUP: stop after the current batch.
    pub interrupts: crate::engine::interrupt::Interrupts,
    /// Stop once nothing arrived for this long and everything was applied (tests, benchmarks).
    pub exit_when_idle: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server_id: 0,
            batch_rows: 1000,
            flush_after: Duration::from_millis(50),
            status_every: Duration::from_secs(1),
            prom_file: None,
            interrupts: Default::default(),
            exit_when_idle: None,
        }
    }
}

/// The default replica id of a service's sync-back: stable per service, far above the ids
/// people give servers.
pub fn default_server_id(service: &str) -> u32 {
    3_000_000_000 + (crate::plan::fingerprint::fnv1a64(service.as_bytes()) % 1_000_000_000) as u32
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub started_at: Option<Position>,
    pub position: Option<Position>,
    pub transactions: u64,
    pub rows: u64,
    /// Source commit to target commit, per applied transaction with rows (milliseconds).
    pub lag_p50_ms: u64,
    pub lag_p99_ms: u64,
    pub lag_max_ms: u64,
    /// Why it stopped: `signal`, `idle`.
    pub stopped: String,
}

/// The named lock a running sync-back of `service` holds on the old primary, on the connection
/// that writes the copy: a second sync-back refuses, and `promote revert` ends the holder's
/// connection (journaled) once sync-back caught up with its fence, then holds the lock itself.
pub fn lock_name(service: &str) -> String {
    exec::lock_name("privfence-syncback:", service)
}

/// Refuses when a revert gave the service back to the old primary: a copy is gone and the
/// table it copies is there again under its own name (writing it would overwrite the
/// service's own writes).
async fn refuse_after_revert(old: &mut Server, service: &str, tables: &[(TableName, TableName)]) -> Result<()> {
    for (from, to) in tables {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}), \
             (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {})",
            crate::model::ident::quote_str(&to.schema),
            crate::model::ident::quote_str(&to.name),
            crate::model::ident::quote_str(&from.schema),
            crate::model::ident::quote_str(&from.name)
        );
        let (copy, live): (u64, u64) = old.first("looking for the old copy", &sql).await?.unwrap_or((0, 0));
        if copy == 0 && live > 0 && from != to {
            return Err(Error::Refused(format!(
                "{to} is gone and {from} is live again on the old primary: a revert gave {service} back to it, so sync-back has \
                 nothing to copy (and must not write the service's live table). To move the service again, run a new promotion"
            )));
        }
        if copy == 0 {
            // Sync-back's account may not see the live table: the same refusal, both causes named.
            return Err(Error::Refused(format!(
                "{to} does not exist on the old primary: after a revert (which renames it back to {from}) sync-back has nothing \
                 to copy and must not write the service's live table; otherwise name the copy's schema with --to-schema"
            )));
        }
    }
    Ok(())
}

/// Everything [`run`] needs, connected and checked.
pub struct Ready {
    source_spec: ConnectSpec,
    flavour: Flavour,
    source: Server,
    target: Target,
    start: Position,
}

/// Connects, runs the up-front checks (refusing with all failures named), creates the position
/// table and the first position row (journaled), and returns where to start.
pub async fn prepare(j: &mut Journal, plan: &Plan, out: &mut Output) -> Result<Ready> {
    let mut source = Server::connect(&plan.source).await?;
    let mut node = Node::connect(&plan.target, "old-primary").await?;
    refuse_after_revert(&mut node.server, &plan.service, &plan.tables).await?;
    // The row writer's connection holds the lock for as long as sync-back runs.
    let mut server = Server::connect_row_writer(&plan.target).await?;
    let name = lock_name(&plan.service);
    if !exec::lock(&mut server, "taking sync-back's lock", &name, 0).await? {
        return Err(Error::Refused(format!(
            "another sync-back of {} is running on the old primary, or a revert is stopping it (the lock {name} is held)",
            plan.service
        )));
    }
    let stored = apply::stored_position(&mut node.server, &plan.service).await?;
    let start = match (&stored, &plan.start) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(Error::BadInput(
                "no start position: the old primary holds none for this service; give --promote-journal (the promotion's) or \
                 --start-file/--start-pos/--start-gtid"
                    .into(),
            ))
        }
    };
    let mut checks = check::source(&mut source, &start).await?;
    checks.extend(check::target(&mut source, &mut node.server, &plan.tables).await?);
    for c in &checks {
        out.status(&format!("  {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    if check::refuses(&checks) {
        return Err(Error::Refused(format!("sync-back cannot start: {}", check::failures(&checks))));
    }
    if stored.is_none() {
        // Only what is missing: sync-back's account may hold privileges on its table alone.
        let have: Option<(u64, u64)> = node
            .server
            .first(
                "looking for sync-back's schema",
                "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'privfence'), \
                 (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'privfence' AND TABLE_NAME = 'syncback_position')",
            )
            .await?;
        let (schema, table) = have.unwrap_or((0, 0));
        for (k, sql) in apply::position_table_sql().into_iter().enumerate() {
            if (k == 0 && schema == 0) || (k == 1 && table == 0) {
                exec::run(j, &mut node, Phase::Promote, Some("syncback-setup"), &sql, &[]).await?;
            }
        }
        exec::run(j, &mut node, Phase::Promote, Some("syncback-start"), &apply::position_insert_sql(&plan.service, &start), &[]).await?;
    }
    node.server.close().await;
    let mut tables = std::collections::BTreeMap::new();
    for (from, to) in &plan.tables {
        tables.insert(from.clone(), TargetTable::read(&mut server, to).await?);
    }
    let flavour = source.info.flavour;
    Ok(Ready { source_spec: plan.source.clone(), flavour, source, target: Target { server, service: plan.service.clone(), tables }, start })
}

/// The batch being gathered.
#[derive(Default)]
struct Batch {
    changes: Vec<stream::Change>,
    txns: u64,
    end: Option<Position>,
    since: Option<Instant>,
    /// Source commit times (µs) of the transactions with rows, for the lag.
    commits: Vec<u64>,
}

/// Runs until a signal (or `exit_when_idle`); a DDL on a service table, a column mismatch or a
/// lost stream end it with an error naming the cause. Everything applied is committed with its
/// position, so running it again continues exactly there.
pub async fn run(ready: Ready, opts: &Options, out: &mut Output) -> Result<Report> {
    let Ready { source_spec, flavour, mut source, mut target, start } = ready;
    let watched: Vec<TableName> = target.tables.keys().cloned().collect();
    let server_id = if opts.server_id == 0 { default_server_id(&target.service) } else { opts.server_id };
    let mut reader = stream::open(&source_spec, flavour, &start, server_id, &watched).await?;
    out.status(&format!("sync-back of {} from {} to {}: starting at {start}", target.service, source.target, target.server.target));
    let mut report = Report { started_at: Some(start.clone()), position: Some(start), ..Report::default() };
    let mut lags: Vec<u64> = Vec::new();
    let mut batch = Batch::default();
    let (mut last_status, mut last_event) = (Instant::now(), Instant::now());
    let result = loop {
        if opts.interrupts.any() {
            report.stopped = "signal".into();
            break Ok(());
        }
        // A batch with rows waits `flush_after`; one that only moves the position, a second.
        let hold = if batch.changes.is_empty() { Duration::from_secs(1) } else { opts.flush_after };
        let wait = match batch.since {
            Some(t) => hold.saturating_sub(t.elapsed()),
            None => opts.status_every.min(Duration::from_millis(200)),
        };
        let next = tokio::select! {
            n = tokio::time::timeout(wait, reader.next()) => n,
            _ = opts.interrupts.wait_beyond(0) => continue,
        };
        match next {
            Err(_) => {}
            Ok(Ok(Some(stream::Item::Commit { txn, end }))) => {
                last_event = Instant::now();
                batch.since.get_or_insert_with(Instant::now);
                if !txn.changes.is_empty() {
                    batch.commits.push(txn.committed_us);
                }
                batch.changes.extend(txn.changes);
                batch.txns += 1;
                batch.end = Some(end);
            }
            Ok(Ok(Some(stream::Item::Ddl { table, statement }))) => {
                flush(&mut target, &mut batch, &mut report, &mut lags).await?;
                break Err(Error::SyncBack(format!(
                    "sync-back stopped: the new server ran a statement on {table}: `{statement}`; nothing after it was applied \
                     (the old copy is at {}). Apply the same change to the old copy (or re-create it), then start sync-back again \
                     past it",
                    report.position.as_ref().map(|p| p.to_string()).unwrap_or_default()
                )));
            }
            Ok(Ok(None)) => break Err(Error::SyncBack(format!("{}: the new server ended the binary log stream", source.target))),
            Ok(Err(e)) => break Err(e),
        }
        let hold = if batch.changes.is_empty() { Duration::from_secs(1) } else { opts.flush_after };
        let due = batch.since.is_some_and(|t| t.elapsed() >= hold);
        if due || batch.changes.len() >= opts.batch_rows {
            flush(&mut target, &mut batch, &mut report, &mut lags).await?;
            // Idle means nothing arrived while waiting, not time spent applying.
            last_event = last_event.max(Instant::now());
        }
        if last_status.elapsed() >= opts.status_every {
            last_status = Instant::now();
            if let Err(e) = still_locked(&mut target).await {
                break Err(e);
            }
            status(&mut source, &report, &batch, &lags, opts, out).await;
        }
        if opts.exit_when_idle.is_some_and(|d| last_event.elapsed() >= d) && batch.since.is_none() {
            report.stopped = "idle".into();
            break Ok(());
        }
    };
    // Whatever ended the loop, what was read and not yet applied is applied (it is whole
    // transactions); after an error nothing more is written.
    if result.is_ok() {
        flush(&mut target, &mut batch, &mut report, &mut lags).await?;
    }
    reader.close().await;
    percentiles(&mut report, &mut lags);
    status(&mut source, &report, &batch, &lags, opts, out).await;
    result.map(|_| report)
}

/// Whether the writer's connection still holds sync-back's lock: a revert ends that connection
/// once sync-back caught up with its fence, and sync-back then stops (an idle sync-back learns
/// it here, a busy one at its next write).
async fn still_locked(target: &mut Target) -> Result<()> {
    let sql = format!("SELECT IS_USED_LOCK({}) = CONNECTION_ID()", crate::model::ident::quote_str(&lock_name(&target.service)));
    let ours: Option<Option<i64>> = target.server.first("checking sync-back's lock", &sql).await.unwrap_or(None);
    if ours.flatten() == Some(1) {
        return Ok(());
    }
    Err(Error::SyncBack(format!(
        "sync-back stopped: its connection to the old primary ({}) was ended or lost its lock; a revert (`promote revert`) \
         stops sync-back this way once it caught up. What it applied is stored with its position: start sync-back again if \
         no revert is under way",
        target.server.target
    )))
}

async fn flush(target: &mut Target, batch: &mut Batch, report: &mut Report, lags: &mut Vec<u64>) -> Result<()> {
    let Some(end) = batch.end.take() else { return Ok(()) };
    target.apply(&batch.changes, batch.txns, &end).await?;
    let now = chrono::Utc::now().timestamp_micros().max(0) as u64;
    lags.extend(batch.commits.iter().map(|c| now.saturating_sub(*c) / 1000));
    report.transactions += batch.txns;
    report.rows += batch.changes.len() as u64;
    report.position = Some(end);
    *batch = Batch::default();
    Ok(())
}

fn percentiles(report: &mut Report, lags: &mut [u64]) {
    if lags.is_empty() {
        return;
    }
    lags.sort_unstable();
    let at = |q: f64| lags[((lags.len() as f64 - 1.0) * q).round() as usize];
    report.lag_p50_ms = at(0.5);
    report.lag_p99_ms = at(0.99);
    report.lag_max_ms = lags[lags.len() - 1];
}

/// Transactions the new server committed that sync-back has not applied (MySQL: GTIDs; MariaDB:
/// bytes of the binary log, when in the same file).
async fn behind(source: &mut Server, at: &Position) -> Option<String> {
    match &at.gtid {
        Some(g) => {
            let sql = format!("SELECT GTID_SUBTRACT(@@GLOBAL.gtid_executed, {})", crate::model::ident::quote_str(g));
            let rest: String = source.first("measuring sync-back's lag", &sql).await.ok().flatten()?;
            let set = position::GtidSet::parse(&rest).ok()?;
            let n: u64 = set
                .members()
                .iter()
                .flat_map(|m| m.split(':').skip(1).map(str::to_string).collect::<Vec<_>>())
                .map(|iv| match iv.split_once('-') {
                    Some((a, b)) => b.parse::<u64>().unwrap_or(0) - a.parse::<u64>().unwrap_or(0) + 1,
                    None => 1,
                })
                .sum();
            Some(format!("{n} transaction(s)"))
        }
        None => {
            let now = check::current_position(source).await.ok()?;
            (now.file == at.file).then(|| format!("{} byte(s)", now.pos.saturating_sub(at.pos)))
        }
    }
}

async fn status(source: &mut Server, report: &Report, batch: &Batch, lags: &[u64], opts: &Options, out: &mut Output) {
    let lag_s = batch.since.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    let behind = match &report.position {
        Some(p) => behind(source, p).await.unwrap_or_else(|| "unknown".into()),
        None => "unknown".into(),
    };
    out.progress(&format!(
        "sync-back: {} transaction(s), {} row(s) applied; lag {lag_s:.1} s, {} row change(s) pending, behind {behind}",
        report.transactions,
        report.rows,
        batch.changes.len()
    ));
    if let Some(path) = &opts.prom_file {
        let last = lags.last().copied().unwrap_or(0) as f64 / 1000.0;
        let text = format!(
            "# TYPE privfence_syncback_transactions_total counter\nprivfence_syncback_transactions_total {}\n\
             # TYPE privfence_syncback_rows_total counter\nprivfence_syncback_rows_total {}\n\
             # TYPE privfence_syncback_pending_rows gauge\nprivfence_syncback_pending_rows {}\n\
             # TYPE privfence_syncback_lag_seconds gauge\nprivfence_syncback_lag_seconds {:.3}\n",
            report.transactions,
            report.rows,
            batch.changes.len(),
            lag_s.max(if batch.since.is_some() { last } else { 0.0 })
        );
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).is_err() {
            out.warn(&format!("cannot write {}", path.display()));
        }
    }
}
