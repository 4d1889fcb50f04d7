//! `backfill --cleanup-tombstones`: once a verify passed, the tombstones go, in journaled
//! batches (docs/migrations.md: only when no backfill will run again).

use super::definition;
use super::progress::{OnProgress, Progress, Work};
use super::{verify, VerifyOptions, VerifyReport};
use crate::db::Server;
use crate::error::{Error, Result};
use crate::journal::{Journal, Record, StepState};
use crate::model::TableName;

/// Tombstones deleted per statement (each one journaled).
const BATCH: u64 = 1000;

/// `backfill --cleanup-tombstones`: after a verify passed, deletes the tombstones in batches
/// (each batch journaled before it runs). Returns the verify and the batches deleted.
pub async fn cleanup_tombstones(
    from: &Server,
    to: &Server,
    tables: &[TableName],
    pattern: &str,
    journal: &mut Journal,
    opts: &VerifyOptions,
    progress: &mut OnProgress<'_>,
) -> Result<(VerifyReport, u64)> {
    let report = verify(from, to, tables, Some(pattern), opts, progress).await?;
    if !report.is_equal() {
        return Err(Error::Diverged(format!(
            "the servers differ ({} keys), so the tombstones stay: they are what keeps a backfill from bringing deleted rows back",
            report.keys.len() + report.keys_not_listed
        )));
    }
    let mut b = to.another().await?;
    let tombs: Vec<TableName> = tables.iter().map(|t| definition::tombstone_table(pattern, t)).collect();
    let mut counts = Vec::with_capacity(tombs.len());
    for tomb in &tombs {
        counts.push(b.first::<u64>("counting tombstones", &format!("SELECT COUNT(*) FROM {}", tomb.sql())).await?.unwrap_or(0));
    }
    progress(&Progress::Started { work: Work::Cleanup, total: counts.iter().sum(), done: 0 });
    let (mut batches, mut gone) = (0, 0);
    for (tomb, count) in tombs.into_iter().zip(counts) {
        let index = "PRIMARY".to_string();
        progress(&Progress::Table { work: Work::Cleanup, table: tomb.clone(), index, key: Vec::new(), chunk_rows: BATCH });
        let mut left = count;
        loop {
            let any: Option<u64> = b.first("reading tombstones", &format!("SELECT 1 FROM {} LIMIT 1", tomb.sql())).await?;
            if any.is_none() {
                break;
            }
            let sql = format!("DELETE FROM {} LIMIT {BATCH}", tomb.sql());
            journal.append(Record::Step {
                name: "cleanup".into(),
                state: StepState::Begun,
                detail: serde_json::json!({ "table": tomb, "sql": sql }),
            })?;
            // A tombstone batch, journaled as begun above (clippy.toml).
            #[allow(clippy::disallowed_methods)]
            let deleted = b.execute_params(&sql, Vec::new()).await;
            deleted.map_err(|source| Error::Statement { server: b.target.clone(), sql: sql.clone(), source })?;
            journal.append(Record::Step {
                name: "cleanup".into(),
                state: StepState::Done,
                detail: serde_json::json!({ "table": tomb }),
            })?;
            batches += 1;
            // A batch deletes BATCH rows, or the rest (counted at the start: the application
            // writes no tombstone any more once a cleanup is due).
            gone += left.min(BATCH);
            left = left.saturating_sub(BATCH);
            progress(&Progress::Rows { work: Work::Cleanup, table: tomb.clone(), done: gone, copied: 0 });
        }
    }
    b.close().await;
    Ok((report, batches))
}
