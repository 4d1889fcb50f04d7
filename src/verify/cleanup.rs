//! `backfill --cleanup-tombstones`: once a verify passed, the tombstones go, in journaled
//! batches (docs/migrations.md: only when no backfill will run again).

use super::definition;
use super::{verify, VerifyOptions, VerifyReport};
use crate::db::Server;
use crate::error::{Error, Result};
use crate::journal::{Journal, Record, StepState};
use crate::model::TableName;

/// `backfill --cleanup-tombstones`: after a verify passed, deletes the tombstones in batches
/// (each batch journaled before it runs). Returns the verify and the batches deleted.
pub async fn cleanup_tombstones(
    from: &Server,
    to: &Server,
    tables: &[TableName],
    pattern: &str,
    journal: &mut Journal,
    opts: &VerifyOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(VerifyReport, u64)> {
    let report = verify(from, to, tables, Some(pattern), opts, progress).await?;
    if !report.is_equal() {
        return Err(Error::Diverged(format!(
            "the servers differ ({} keys), so the tombstones stay: they are what keeps a backfill from bringing deleted rows back",
            report.keys.len() + report.keys_not_listed
        )));
    }
    let mut b = to.another().await?;
    let mut batches = 0;
    for t in tables {
        let tomb = definition::tombstone_table(pattern, t);
        loop {
            let any: Option<u64> = b.first("reading tombstones", &format!("SELECT 1 FROM {} LIMIT 1", tomb.sql())).await?;
            if any.is_none() {
                break;
            }
            let sql = format!("DELETE FROM {} LIMIT 1000", tomb.sql());
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
            progress(&format!("{tomb}: {batches} batches of tombstones deleted"));
        }
    }
    b.close().await;
    Ok((report, batches))
}
