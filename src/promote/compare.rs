//! Chunked comparison of the moved tables on the primary and the replica (issue 6, steps 5 and 8).
//!
//! # How
//!
//! Like pt-table-checksum and Vitess VDiff, without statement-based tricks: [`compare`] walks each
//! table's key on the primary in chunks of `chunk_rows` rows (`SELECT key ... LIMIT 1 OFFSET n-1`),
//! and reads `COUNT(*)` and an order-independent checksum of every chunk on both servers with the
//! same range predicate. Chunks are contiguous and half-open, `(lower, upper]`; the first starts
//! at the beginning of the key, the last ends at the highest key seen when it was cut. While the
//! service writes, a chunk can differ only because the replica lags: it is read again after the
//! replica has applied the primary's GTID position (read right after the primary's sum), at most
//! [`RECHECKS`] times, the primary's side read afresh each time. A chunk still differing then
//! (hot, or really different) or whose wait timed out goes to `dirty`.
//!
//! After the write fence, [`delta`] re-checks the dirty chunks and everything past the last
//! chunk of each table (new rows, and rows the replica alone has), in chunks, its last one open.
//! A chunk that compared equal is not read again: the replica applies the same row events after
//! it, which the fence's GTID wait (step 8) vouches for.
//!
//! The checksum and the range predicates are [`crate::compare`]'s (shared with `verify`).

use crate::compare::{open_session, TableQueries};
pub use crate::compare::{ChunkSum, ALGORITHM};
use crate::db::Server;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::model::TableName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Re-reads of a differing chunk before it is left for the delta.
pub const RECHECKS: u32 = 3;
/// How long one re-read waits for the replica to reach the primary's position.
pub const LAG_WAIT: Duration = Duration::from_secs(10);
/// How long [`delta`] waits for the replica to apply everything the (drained) primary has.
pub const DELTA_WAIT: Duration = Duration::from_secs(60);
/// Progress lines during a long table, at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What [`compare`] found, kept for [`delta`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// [`ALGORITHM`] when the sums were taken.
    pub algorithm: String,
    /// The tables compared, in order: a table without rows has no chunk but still has a tail.
    pub tables: Vec<TableName>,
    /// Rows per chunk; the delta cuts the tails the same way.
    pub chunk_rows: u64,
    /// Every chunk in key order per table, with the primary's sums (of the last try).
    pub chunks: Vec<ChunkSum>,
    /// The chunks that still differed after the re-reads (primary's sums), for the delta.
    pub dirty: Vec<ChunkSum>,
    pub equal_chunks: usize,
    /// Chunks that differed at first sight and were read again after waiting for the replica.
    pub rechecked: usize,
    /// Rows the primary's chunks held (for throughput figures).
    pub rows: u64,
    pub took: Duration,
}

/// What [`delta`] found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeltaReport {
    /// Dirty chunks re-checked plus tail chunks.
    pub checked_chunks: usize,
    /// Chunks that differ (primary's sums).
    pub differing: Vec<ChunkSum>,
    /// The replica's sums of the same chunks, in the same order.
    pub differing_replica: Vec<ChunkSum>,
    /// Rows in the checked chunks on each side.
    pub rows_primary: u64,
    pub rows_replica: u64,
    pub took: Duration,
}

impl DeltaReport {
    pub fn is_clean(&self) -> bool {
        self.differing.is_empty()
    }
}

/// The comparison's own connections (the nodes' stay free for positions and waits).
struct Sides {
    primary: Server,
    replica: Server,
}

impl Sides {
    async fn open(primary: &Node, replica: &Node) -> Result<Sides> {
        let mut sides = Sides { primary: primary.server.another().await?, replica: replica.server.another().await? };
        for s in [&mut sides.primary, &mut sides.replica] {
            open_session(s).await?;
        }
        Ok(sides)
    }

    async fn close(self) {
        self.primary.close().await;
        self.replica.close().await;
    }
}

/// One chunk's verdict.
struct Checked {
    primary: ChunkSum,
    replica: ChunkSum,
    rechecked: bool,
    /// Why it is dirty, for progress.
    why: &'static str,
}

/// Sums a chunk on both sides; re-reads a difference after the replica caught up (see module doc).
async fn check(
    sides: &mut Sides,
    pn: &mut Node,
    rn: &mut Node,
    q: &TableQueries,
    lower: Option<&[String]>,
    upper: Option<&[String]>,
) -> Result<Checked> {
    // Both servers at once: the two reads are closer in time and the servers work in parallel.
    let (mut p, mut r) = tokio::try_join!(q.sum(&mut sides.primary, lower, upper), q.sum(&mut sides.replica, lower, upper))?;
    let (mut tries, mut why) = (0, "");
    while !p.matches(&r) {
        if tries == RECHECKS {
            why = "still differed after every re-read (a hot chunk, or rows that really differ)";
            break;
        }
        tries += 1;
        // Read after the primary's sum. No early "the primary held still, so the rows differ":
        // MySQL makes a commit visible before it adds its GTID to gtid_executed, so this
        // position can miss a transaction the sum already saw.
        let pos = pn.position().await?;
        if !rn.wait_for(&pos, LAG_WAIT).await? {
            why = "the replica did not reach the primary's position in time";
            break;
        }
        r = q.sum(&mut sides.replica, lower, upper).await?;
        if !p.matches(&r) && tries < RECHECKS {
            // The primary may have moved on too: the next round compares its newer state.
            p = q.sum(&mut sides.primary, lower, upper).await?;
        }
    }
    Ok(Checked { primary: p, replica: r, rechecked: tries > 0, why })
}

/// Compares `tables` on the primary and the replica in chunks of `chunk_rows` rows (step 5),
/// while the service may still write. Reads only; opens its own connection to each server.
pub async fn compare(
    primary: &mut Node,
    replica: &mut Node,
    tables: &[TableName],
    chunk_rows: u64,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Comparison> {
    if chunk_rows == 0 {
        return Err(Error::BadInput("the chunk size must be at least one row".into()));
    }
    let started = Instant::now();
    let mut sides = Sides::open(primary, replica).await?;
    let mut out = Comparison {
        algorithm: ALGORITHM.into(),
        tables: tables.to_vec(),
        chunk_rows,
        chunks: Vec::new(),
        dirty: Vec::new(),
        equal_chunks: 0,
        rechecked: 0,
        rows: 0,
        took: Duration::ZERO,
    };
    let mut result = Ok(());
    for table in tables {
        result = compare_table(&mut sides, primary, replica, table, &mut out, progress).await;
        if result.is_err() {
            break;
        }
    }
    sides.close().await;
    result?;
    out.took = started.elapsed();
    Ok(out)
}

async fn compare_table(
    sides: &mut Sides,
    pn: &mut Node,
    rn: &mut Node,
    table: &TableName,
    out: &mut Comparison,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let q = TableQueries::read(&mut sides.primary, &mut sides.replica, "replica", table).await?;
    let names: Vec<&str> = q.key.iter().map(|k| k.name.as_str()).collect();
    progress(&format!("{table}: comparing by key {} ({}) in chunks of {} rows", q.index, names.join(", "), out.chunk_rows));
    let (started, mut said) = (Instant::now(), Instant::now());
    let (mut lower, mut chunks, mut dirty, mut rows) = (None::<Vec<String>>, 0usize, 0usize, 0u64);
    loop {
        let (upper, last) = match q.key_after(&mut sides.primary, lower.as_deref(), Some(out.chunk_rows - 1)).await? {
            Some(u) => (u, false),
            None => match q.key_after(&mut sides.primary, lower.as_deref(), None).await? {
                Some(u) => (u, true),
                None => break,
            },
        };
        let c = check(sides, pn, rn, &q, lower.as_deref(), Some(&upper)).await?;
        chunks += 1;
        rows += c.primary.rows;
        out.rechecked += usize::from(c.rechecked);
        if c.primary.matches(&c.replica) {
            out.equal_chunks += 1;
        } else {
            dirty += 1;
            progress(&format!("{}: {}; left for the delta", c.primary.describe(), c.why));
            out.dirty.push(c.primary.clone());
        }
        out.chunks.push(c.primary);
        lower = Some(upper);
        if last {
            break;
        }
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            progress(&format!("{table}: {chunks} chunks, {rows} rows so far"));
        }
    }
    out.rows += rows;
    progress(&format!("{table}: {chunks} chunks, {} equal, {dirty} dirty, {rows} rows in {:.1?}", chunks - dirty, started.elapsed()));
    Ok(())
}

/// After the fence (step 8), with the primary drained: re-checks every dirty chunk of `earlier`
/// and every row past the last chunk of each table. Waits first (up to [`DELTA_WAIT`]) for the
/// replica to apply everything the primary has executed.
pub async fn delta(primary: &mut Node, replica: &mut Node, earlier: &Comparison) -> Result<DeltaReport> {
    if earlier.algorithm != ALGORITHM {
        return Err(Error::JournalState {
            what: format!("the comparison was made with checksum {:?}, this version uses {ALGORITHM:?}", earlier.algorithm),
            todo: "compare the tables again",
        });
    }
    let started = Instant::now();
    let pos = primary.position().await?;
    if !replica.wait_for(&pos, DELTA_WAIT).await? {
        return Err(Error::ReplicaNotReady {
            what: format!("{}: the replica has not applied the primary's position {pos} within {} s", replica.name, DELTA_WAIT.as_secs()),
            todo: "the delta cannot be checked yet; resume once the replica has caught up",
        });
    }
    let mut sides = Sides::open(primary, replica).await?;
    let mut out = DeltaReport {
        checked_chunks: 0,
        differing: Vec::new(),
        differing_replica: Vec::new(),
        rows_primary: 0,
        rows_replica: 0,
        took: Duration::ZERO,
    };
    let result = delta_all(&mut sides, primary, replica, earlier, &mut out).await;
    sides.close().await;
    result?;
    out.took = started.elapsed();
    Ok(out)
}

async fn delta_all(sides: &mut Sides, pn: &mut Node, rn: &mut Node, earlier: &Comparison, out: &mut DeltaReport) -> Result<()> {
    let mut queries = BTreeMap::new();
    for t in earlier.tables.iter().chain(earlier.dirty.iter().map(|d| &d.table)) {
        if !queries.contains_key(t) {
            queries.insert(t.clone(), TableQueries::read(&mut sides.primary, &mut sides.replica, "replica", t).await?);
        }
    }
    let mut record = |c: Checked| {
        out.checked_chunks += 1;
        out.rows_primary += c.primary.rows;
        out.rows_replica += c.replica.rows;
        if !c.primary.matches(&c.replica) {
            out.differing.push(c.primary);
            out.differing_replica.push(c.replica);
        }
    };
    for d in &earlier.dirty {
        let q = &queries[&d.table];
        record(check(sides, pn, rn, q, d.lower.as_deref(), d.upper.as_deref()).await?);
    }
    for t in &earlier.tables {
        let q = &queries[t];
        let mut lower = match earlier.chunks.iter().rev().find(|c| &c.table == t) {
            Some(c) if c.upper.is_none() => continue,
            Some(c) => c.upper.clone(),
            None => None,
        };
        loop {
            let upper = q.key_after(&mut sides.primary, lower.as_deref(), Some(earlier.chunk_rows.max(1) - 1)).await?;
            record(check(sides, pn, rn, q, lower.as_deref(), upper.as_deref()).await?);
            match upper {
                Some(u) => lower = Some(u),
                None => break,
            }
        }
    }
    Ok(())
}
