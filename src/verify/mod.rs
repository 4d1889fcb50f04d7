//! `verify` and `backfill`: two independent servers holding a service's tables while an
//! application writes both (dual writes, or new-database-first with tombstones).
//!
//! # Verify ([`verify`])
//!
//! Every table's definition is checked on both sides first ([`definition::prepare`]); then each
//! table is walked in chunks cut on the source (`(lower, upper]`, the last chunk open-ended so
//! rows only the target has are seen) and summed on both servers at once with the promotion's
//! order-independent checksum ([`crate::compare`]), pipelined: the target sums chunk N while the
//! source cuts and sums chunk N+1. Keys with a tombstone on the target count as deleted: both
//! sums leave out the tombstoned keys of the chunk, listed (read from the target just before
//! its sum; the source's sum is taken again with them only when there are any).
//! While both servers are written, a chunk can differ for a moment: a differing chunk is read
//! again after `recheck_delay`, up to `rechecks` times; a chunk that still differs is narrowed
//! to keys (key and row hash per row on both sides, twice, `recheck_delay` apart), and only keys
//! that differed both times, the same way, are reported. Reports carry keys, never row data.
//!
//! # Layout
//!
//! [`definition`]: the checks before any row is read; [`backfill`]: the copy (chunks, journal,
//! pipeline); [`throttle`]: its brakes (rate, `Threads_running`, replica lag by GTID or by a
//! [`heartbeat`] row);
//! [`position`]: server identities and binary log positions; [`cleanup`]: tombstone removal;
//! [`literal`]: the values of the backfill's text `INSERT`s;
//! [`progress`]: what all three report while they work (the CLI draws it);
//! [`readers`]: who still uses a copy.

pub mod backfill;
pub mod cleanup;
pub mod definition;
pub mod heartbeat;
pub mod literal;
pub mod position;
pub mod progress;
pub mod readers;
pub mod throttle;

use crate::compare::{open_session, ChunkSum, ALGORITHM};
use crate::db::Server;
use crate::error::Result;
use crate::model::TableName;
use definition::Prepared;
pub use progress::{Brake, OnProgress, Progress, Work};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How a verify reads.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub chunk_rows: u64,
    /// Re-reads of a differing chunk before it is narrowed to keys.
    pub rechecks: u32,
    /// The wait before each re-read (long enough for the application's other write to land).
    pub recheck_delay: Duration,
    /// At most this many keys per table in a report (the count of the rest is kept).
    pub max_keys: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { chunk_rows: 5000, rechecks: 3, recheck_delay: Duration::from_millis(500), max_keys: 1000 }
    }
}

/// How one key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// On the source, not on the target (and no tombstone).
    MissingOnTarget,
    /// On the target only.
    ExtraOnTarget,
    /// On both, with different values.
    Differs,
}

/// One key that differed persistently.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDiff {
    pub table: TableName,
    pub key: Vec<String>,
    pub kind: DiffKind,
}

/// A chunk that differed after every re-read (the range the keys were found in).
#[derive(Debug, Clone, Serialize)]
pub struct RangeDiff {
    pub source: ChunkSum,
    pub target: ChunkSum,
    /// Keys found differing in it (at most `max_keys` per table are listed).
    pub keys: usize,
}

/// What a verify found (`--format json` prints it; see docs/formats.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub algorithm: String,
    pub tables: Vec<TableName>,
    pub chunks: usize,
    pub equal_chunks: usize,
    /// Chunks that differed at first sight and were read again.
    pub rechecked: usize,
    /// Rows summed on each side (tombstoned keys left out).
    pub rows_source: u64,
    pub rows_target: u64,
    pub ranges: Vec<RangeDiff>,
    pub keys: Vec<KeyDiff>,
    /// Keys that differed but were not listed (over `max_keys`).
    pub keys_not_listed: usize,
    pub took_ms: u64,
}

impl VerifyReport {
    pub fn is_equal(&self) -> bool {
        self.ranges.is_empty() && self.keys.is_empty()
    }
}

/// Opens the private connections a verify or backfill reads through.
pub async fn connections(from: &Server, to: &Server) -> Result<(Server, Server)> {
    let (mut a, mut b) = (from.another().await?, to.another().await?);
    open_session(&mut a).await?;
    open_session(&mut b).await?;
    Ok((a, b))
}

/// Compares `tables` between `from` and `to` (see the module doc). Reads only.
pub async fn verify(
    from: &Server,
    to: &Server,
    tables: &[TableName],
    tombstones: Option<&str>,
    opts: &VerifyOptions,
    progress: &mut OnProgress<'_>,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let (mut a, mut b) = connections(from, to).await?;
    let result = async {
        definition::refuse_replica_of_source(&mut a, &mut b, "verify with tombstones").await.or_else(|e| {
            // A replica may be verified (without tombstones): it is the promotion's comparison.
            if tombstones.is_none() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let prepared = definition::prepare(&mut a, &mut b, tables, tombstones).await?;
        let mut out = VerifyReport { algorithm: ALGORITHM.into(), tables: tables.to_vec(), ..Default::default() };
        progress(&Progress::Started { work: Work::Verify, total: progress::estimate_rows(&mut a, tables).await?, done: 0 });
        for p in &prepared {
            verify_table(&mut a, &mut b, p, opts, &mut out, progress).await?;
        }
        Ok(out)
    }
    .await;
    a.close().await;
    b.close().await;
    let mut out = result?;
    out.took_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// The predicate (` AND NOT (key = .. OR ...)`, or empty) that leaves out the keys with a
/// tombstone on the target in `(lower, upper]`, read from the target just before: the same on
/// both sides, so both sum the same keys (a tombstone written meanwhile makes the chunk differ
/// for a moment, and the re-read settles it).
async fn tombstone_filter(b: &mut Server, p: &Prepared, lower: Option<&[String]>, upper: Option<&[String]>) -> Result<String> {
    let Some(tomb) = &p.tombstones else { return Ok(String::new()) };
    let q = &p.queries;
    let keys = q.keys_in(b, tomb, lower, upper, "").await?;
    if keys.is_empty() {
        return Ok(String::new());
    }
    let terms: Result<Vec<String>> = keys.iter().map(|k| q.key_equals(&q.table, k)).collect();
    Ok(format!(" AND NOT ({})", terms?.join(" OR ")))
}

async fn sums(
    a: &mut Server,
    b: &mut Server,
    p: &Prepared,
    lower: Option<&[String]>,
    upper: Option<&[String]>,
) -> Result<(ChunkSum, ChunkSum)> {
    let f = tombstone_filter(b, p, lower, upper).await?;
    let q = &p.queries;
    tokio::try_join!(q.sum_where(a, lower, upper, &f), q.sum_where(b, lower, upper, &f))
}

/// The source's next chunk after `lower`: its upper bound (`None`: the rest of the table) and
/// its sum with no key left out.
async fn source_chunk(a: &mut Server, p: &Prepared, lower: Option<&[String]>, rows: u64) -> Result<(Option<Vec<String>>, ChunkSum)> {
    let q = &p.queries;
    let upper = q.key_after(a, lower, Some(rows.max(1) - 1)).await?;
    let sum = q.sum(a, lower, upper.as_deref()).await?;
    Ok((upper, sum))
}

/// Chunk N's sums, pipelined: the target sums chunk N (its tombstones left out) while the source
/// already cuts and sums chunk N+1; returns chunk N's pair and chunk N+1 (`None` after the
/// last). The source's sum of chunk N is taken again with the tombstone filter only when the
/// target has tombstones in the range.
async fn pipelined(
    a: &mut Server,
    b: &mut Server,
    p: &Prepared,
    lower: Option<&[String]>,
    ahead: (Option<Vec<String>>, ChunkSum),
    rows: u64,
) -> Result<((ChunkSum, ChunkSum), Option<(Option<Vec<String>>, ChunkSum)>)> {
    let (upper, source_sum) = ahead;
    let u = upper.as_deref();
    let q = &p.queries;
    let target = async {
        let f = tombstone_filter(b, p, lower, u).await?;
        let sum = q.sum_where(b, lower, u, &f).await?;
        Ok::<_, crate::error::Error>((f, sum))
    };
    let next = async {
        match u {
            Some(u) => source_chunk(a, p, Some(u), rows).await.map(Some),
            None => Ok(None),
        }
    };
    let ((filter, sb), next) = tokio::try_join!(target, next)?;
    let sa = if filter.is_empty() { source_sum } else { q.sum_where(a, lower, u, &filter).await? };
    Ok(((sa, sb), next))
}

async fn key_diffs(
    a: &mut Server,
    b: &mut Server,
    p: &Prepared,
    lower: Option<&[String]>,
    upper: Option<&[String]>,
) -> Result<BTreeMap<Vec<String>, DiffKind>> {
    let f = tombstone_filter(b, p, lower, upper).await?;
    let q = &p.queries;
    let (ra, rb) = tokio::try_join!(q.row_hashes(a, lower, upper, &f), q.row_hashes(b, lower, upper, &f))?;
    let rb: BTreeMap<Vec<String>, String> = rb.into_iter().collect();
    let mut out = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (k, h) in ra {
        match rb.get(&k) {
            None => {
                out.insert(k.clone(), DiffKind::MissingOnTarget);
            }
            Some(hb) if *hb != h => {
                out.insert(k.clone(), DiffKind::Differs);
            }
            Some(_) => {}
        }
        seen.insert(k);
    }
    for k in rb.into_keys().filter(|k| !seen.contains(k)) {
        out.insert(k, DiffKind::ExtraOnTarget);
    }
    Ok(out)
}

async fn verify_table(
    a: &mut Server,
    b: &mut Server,
    p: &Prepared,
    opts: &VerifyOptions,
    out: &mut VerifyReport,
    progress: &mut OnProgress<'_>,
) -> Result<()> {
    let q = &p.queries;
    progress(&Progress::Table {
        work: Work::Verify,
        table: q.table.clone(),
        index: q.index.clone(),
        key: q.key_names(),
        chunk_rows: opts.chunk_rows,
    });
    let mut lower: Option<Vec<String>> = None;
    let mut listed = 0usize;
    let mut ahead = Some(source_chunk(a, p, None, opts.chunk_rows).await?);
    while let Some(chunk) = ahead.take() {
        let upper = chunk.0.clone();
        let (l, u) = (lower.as_deref(), upper.as_deref());
        let ((mut sa, mut sb), next) = pipelined(a, b, p, l, chunk, opts.chunk_rows).await?;
        ahead = next;
        let mut tries = 0;
        while !sa.matches(&sb) && tries < opts.rechecks {
            tries += 1;
            tokio::time::sleep(opts.recheck_delay).await;
            (sa, sb) = sums(a, b, p, l, u).await?;
        }
        out.chunks += 1;
        out.rechecked += usize::from(tries > 0);
        out.rows_source += sa.rows;
        out.rows_target += sb.rows;
        if sa.matches(&sb) {
            out.equal_chunks += 1;
        } else {
            // Narrow to keys, twice: only keys that differ the same way both times are reported.
            let first = key_diffs(a, b, p, l, u).await?;
            tokio::time::sleep(opts.recheck_delay).await;
            let second = key_diffs(a, b, p, l, u).await?;
            let keys: Vec<(Vec<String>, DiffKind)> = first.into_iter().filter(|(k, d)| second.get(k) == Some(d)).collect();
            if keys.is_empty() {
                out.equal_chunks += 1;
            } else {
                progress(&Progress::Differs { range: sa.describe(), keys: keys.len() });
                out.ranges.push(RangeDiff { source: sa, target: sb, keys: keys.len() });
                for (key, kind) in keys {
                    if listed < opts.max_keys {
                        out.keys.push(KeyDiff { table: q.table.clone(), key, kind });
                        listed += 1;
                    } else {
                        out.keys_not_listed += 1;
                    }
                }
            }
        }
        progress(&Progress::Rows { work: Work::Verify, table: q.table.clone(), done: out.rows_source, copied: 0 });
        lower = upper;
    }
    Ok(())
}
