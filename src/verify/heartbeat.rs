//! `--lag-by heartbeat`: a backfill's replica lag measured by a heartbeat row on the target,
//! for replicas whose GTID position cannot be compared with the target's (another GTID domain
//! layout, filters, a managed replica that hides `gtid_executed`), or a target without GTIDs.
//!
//! The row lives in privfence's own table [`TABLE`] on the target, one row per backfill (its
//! `name`: the first table copied). The table and the row are created through the journaling
//! executor (intent fsynced first, as every server change). Then each chunk's transaction sets
//! the row's `seq` to the chunk's beat number before its `COMMIT`, journaled with the chunk's
//! `begun` record (`heartbeat`), so the beat commits, replicates and is applied with the rows.
//! A replica has applied a chunk when its copy of the row shows that chunk's beat or a later
//! one; the throttle notes each beat with the time it committed and a replica's lag is the age
//! of the oldest beat it has not shown yet ([`super::throttle`]): no clocks compared, and a
//! stopped SQL thread shows as a growing lag (never `Seconds_Behind_Master`).

use crate::db::Server;
use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Journal, Phase};
use crate::model::ident::quote_str;

/// privfence's heartbeat table on a backfill's target.
pub const TABLE: &str = "`privfence`.`backfill_heartbeat`";

/// The statements that create [`TABLE`] (run through the journaling executor).
fn table_sql() -> [String; 2] {
    [
        "CREATE DATABASE IF NOT EXISTS `privfence`".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(255) NOT NULL PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL, \
             at DATETIME(6) NOT NULL) ENGINE=InnoDB"
        ),
    ]
}

/// One backfill's heartbeat row and its last beat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub name: String,
    /// The last beat written (or found at start).
    pub seq: u64,
}

impl Heartbeat {
    /// Creates the table and the row on `to` where missing (journaled in `j`) and reads the
    /// row's last beat.
    pub async fn arm(to: &Server, j: &mut Journal, name: &str) -> Result<Heartbeat> {
        let mut node = Node::connect(to.spec(), "target").await?;
        let result = async {
            let have: Option<(u64, u64)> = node
                .server
                .first(
                    "looking for the heartbeat table",
                    "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'privfence'), \
                     (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'privfence' AND TABLE_NAME = 'backfill_heartbeat')",
                )
                .await?;
            let (schema, table) = have.unwrap_or((0, 0));
            let [create_schema, create_table] = table_sql();
            if schema == 0 {
                exec::run(j, &mut node, Phase::Setting, Some("heartbeat-setup"), &create_schema, &[]).await?;
            }
            if table == 0 {
                exec::run(j, &mut node, Phase::Setting, Some("heartbeat-setup"), &create_table, &[]).await?;
            }
            if let Some(seq) = read(&mut node.server, name).await? {
                return Ok(Heartbeat { name: name.to_string(), seq });
            }
            let insert = format!("INSERT INTO {TABLE} (name, seq, at) VALUES ({}, 0, NOW(6))", quote_str(name));
            exec::run(j, &mut node, Phase::Setting, Some("heartbeat-setup"), &insert, &[]).await?;
            Ok(Heartbeat { name: name.to_string(), seq: 0 })
        }
        .await;
        node.server.close().await;
        result
    }

    /// The next beat: its number and the statement a chunk's transaction runs before `COMMIT`.
    pub fn advance(&mut self) -> (u64, String) {
        self.seq += 1;
        (self.seq, format!("UPDATE {TABLE} SET seq = {}, at = NOW(6) WHERE name = {}", self.seq, quote_str(&self.name)))
    }
}

/// The last beat of `name` a server shows (`None`: no row, or no table yet on a replica that
/// has not applied its creation).
pub async fn read(s: &mut Server, name: &str) -> Result<Option<u64>> {
    let sql = format!("SELECT seq FROM {TABLE} WHERE name = {}", quote_str(name));
    match s.first::<u64>("reading the heartbeat", &sql).await {
        Ok(v) => Ok(v),
        Err(Error::Query { source: mysql_async::Error::Server(e), .. }) if e.code == 1146 || e.code == 1049 => Ok(None),
        Err(e) => Err(e),
    }
}
