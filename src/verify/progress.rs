//! What a verify, a backfill or a tombstone cleanup reports while it works: numbers and names,
//! never a screen's text. The library calls back with a [`Progress`] after each chunk (and when
//! a brake holds the next one); the CLI draws it: a bar on a terminal (rows done of the
//! estimate, rows/s, time left; a brake's reason as the bar's message), plain lines at most
//! every few seconds elsewhere (`src/cli/verify.rs`). `Display` gives a plain line for a log.

use crate::db::Server;
use crate::error::Result;
use crate::model::ident::quote_str;
use crate::model::TableName;
use std::fmt;
use std::time::Duration;

/// The work a [`Progress`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A backfill's copy.
    Copy,
    /// A verify (alone, or the one that ends a backfill or comes before a cleanup).
    Verify,
    /// `--cleanup-tombstones` deleting tombstones.
    Cleanup,
}

impl Work {
    /// The word for it in a line: `backfill`, `verify`, `tombstone cleanup`.
    pub fn noun(self) -> &'static str {
        match self {
            Work::Copy => "backfill",
            Work::Verify => "verify",
            Work::Cleanup => "tombstone cleanup",
        }
    }
}

/// Why a backfill's next chunk waits ([`super::throttle`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Brake {
    /// The target's `Threads_running` is above `--max-threads-running`.
    ThreadsRunning { running: u64, max: u64 },
    /// A replica of the target is further behind than `--max-lag` (`replica`: HOST:PORT).
    ReplicaLag { replica: String, lag: Duration, max: Duration },
}

impl fmt::Display for Brake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Brake::ThreadsRunning { running, max } => {
                write!(f, "the target has {running} threads running (more than {max}): waiting")
            }
            Brake::ReplicaLag { replica, lag, max } => {
                write!(f, "replica {replica} is {:.1} s behind the target (more than --max-lag {max:?}): waiting", lag.as_secs_f64())
            }
        }
    }
}

/// One report of work under way.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// `work` begins over `total` rows, all its tables together: an estimate (the source's
    /// information_schema `TABLE_ROWS`; for a cleanup, the tombstones counted), so `done` may
    /// pass it. `done` of them were done by earlier runs (a resumed backfill), not by this one.
    Started { work: Work, total: u64, done: u64 },
    /// A table begins, walked by the index `index` over `key` in chunks of `chunk_rows` (0: an
    /// adaptive backfill's chunks, sized by their time; a cleanup: a tombstone table, in
    /// batches, `key` empty).
    Table { work: Work, table: TableName, index: String, key: Vec<String>, chunk_rows: u64 },
    /// After a chunk: `done` rows gone through so far over all the tables (a backfill: read
    /// and copied or skipped, earlier runs' included; a verify: compared on the source; a
    /// cleanup: tombstones deleted). `copied`: the rows this backfill run inserted.
    Rows { work: Work, table: TableName, done: u64, copied: u64 },
    /// The backfill's next chunk of `table` waits, and why.
    Throttled { table: TableName, brake: Brake },
    /// A verify's chunk still differed after its re-reads: `keys` keys differ in `range`.
    Differs { range: String, keys: usize },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Started { work, total, done: 0 } => write!(f, "{}: about {total} rows", work.noun()),
            Progress::Started { work, total, done } => {
                write!(f, "{}: about {total} rows, {done} of them done by earlier runs", work.noun())
            }
            Progress::Table { work: Work::Cleanup, table, chunk_rows, .. } => {
                write!(f, "{table}: deleting tombstones in batches of {chunk_rows}")
            }
            Progress::Table { work: Work::Copy, table, index, key, chunk_rows: 0 } => {
                write!(f, "{table}: copying by key {index} ({}) in chunks sized to about half a second each", key.join(", "))
            }
            Progress::Table { work, table, index, key, chunk_rows } => {
                let verb = if *work == Work::Copy { "copying" } else { "comparing" };
                write!(f, "{table}: {verb} by key {index} ({}) in chunks of {chunk_rows} rows", key.join(", "))
            }
            Progress::Rows { work: Work::Copy, table, done, copied } => write!(f, "{table}: {done} rows read, {copied} copied"),
            Progress::Rows { work: Work::Verify, table, done, .. } => write!(f, "{table}: {done} rows compared"),
            Progress::Rows { work: Work::Cleanup, table, done, .. } => write!(f, "{table}: {done} tombstones deleted"),
            Progress::Throttled { table, brake } => write!(f, "{table}: {brake}"),
            Progress::Differs { range, keys } => write!(f, "{range}: {keys} keys differ"),
        }
    }
}

/// Where a verify, a backfill or a cleanup reports its [`Progress`].
pub type OnProgress<'a> = dyn FnMut(&Progress) + Send + 'a;

/// The rows of `tables` by the server's estimate (information_schema `TABLE_ROWS`: InnoDB's
/// sampled count, off by tens of percent, but free to read).
pub async fn estimate_rows(s: &mut Server, tables: &[TableName]) -> Result<u64> {
    let mut n = 0;
    for t in tables {
        let sql = format!(
            "SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
            quote_str(&t.schema),
            quote_str(&t.name)
        );
        n += s.first::<u64>("estimating the rows", &sql).await?.unwrap_or(0);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_table_and_the_numbers() {
        let t = TableName::new("shop", "or`ders");
        let rows = Progress::Rows { work: Work::Copy, table: t.clone(), done: 1200, copied: 700 };
        assert_eq!(rows.to_string(), format!("{t}: 1200 rows read, 700 copied"));
        let lag = Brake::ReplicaLag { replica: "127.0.0.1:3307".into(), lag: Duration::from_millis(2500), max: Duration::from_secs(1) };
        let held = Progress::Throttled { table: t.clone(), brake: lag };
        assert_eq!(held.to_string(), format!("{t}: replica 127.0.0.1:3307 is 2.5 s behind the target (more than --max-lag 1s): waiting"));
        let resumed = Progress::Started { work: Work::Copy, total: 10, done: 4 };
        assert_eq!(resumed.to_string(), "backfill: about 10 rows, 4 of them done by earlier runs");
    }
}
