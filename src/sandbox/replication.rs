//! GTID replication between the sandbox's primary and replica.
//!
//! Both instances are copies of one template whose binary logs and GTID history were reset, so
//! they start with equal (empty) histories and the replica can use auto-positioning from the
//! first event. Catch-up is checked the way `mysql-facts.md` §6 prescribes: the primary's GTID
//! set waited for on the replica, never `Seconds_Behind_Master`.

use super::server::Server;
use super::template::literal;
use super::SandboxError;
use crate::db::Flavour;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long the replica may take to have both replication threads running.
pub const RUNNING_DEADLINE: Duration = Duration::from_secs(30);

/// The replica's replication threads, as `SHOW REPLICA STATUS` / `SHOW SLAVE STATUS` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationState {
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// `Yes` or `No`.
    pub sql_running: String,
    /// The receiver's last error, empty when none.
    pub last_io_error: String,
    /// The applier's last error, empty when none.
    pub last_sql_error: String,
}

impl ReplicationState {
    /// Both threads run.
    pub fn is_running(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes"
    }
}

/// Points the replica at the primary with GTID auto-positioning, starts it and waits until
/// both threads run.
pub(crate) async fn configure(primary: &Server, replica: &Server, repl_password: &str) -> Result<(), SandboxError> {
    let mut conn = replica.conn().await?;
    let pw = literal(repl_password);
    let sql = match replica.flavour {
        // A 1 s connect retry: the default 60 s would stall tests after a primary restart.
        // Frequent heartbeats make the primary's dump thread notice a stopped replica at once;
        // otherwise MySQL's shutdown waits 8 s for that thread.
        Flavour::MySql => [
            format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={}, SOURCE_USER='repl', \
                 SOURCE_PASSWORD={pw}, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1, \
                 SOURCE_HEARTBEAT_PERIOD=0.5",
                primary.port
            ),
            "START REPLICA".to_string(),
        ],
        Flavour::MariaDb => [
            format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
                 MASTER_PASSWORD={pw}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
                 MASTER_HEARTBEAT_PERIOD=0.5",
                primary.port
            ),
            "START SLAVE".to_string(),
        ],
    };
    for stmt in &sql {
        conn.query_drop(stmt).await.map_err(|e| replica.sql_error("configuring replication", e))?;
    }
    wait_running(&mut conn, replica, RUNNING_DEADLINE).await?;
    let _ = conn.disconnect().await;
    Ok(())
}

/// Polls the replica until both threads run, an error shows up, or `limit` passes.
pub(crate) async fn wait_running(conn: &mut Conn, replica: &Server, limit: Duration) -> Result<(), SandboxError> {
    let deadline = Instant::now() + limit;
    loop {
        let state = state(conn, replica.flavour).await.map_err(|e| replica.sql_error("reading the replica status", e))?;
        match state {
            Some(s) if s.is_running() => return Ok(()),
            Some(s) if Instant::now() >= deadline || !s.last_io_error.is_empty() && s.io_running == "No" => {
                return Err(repl_error(
                    replica,
                    format!(
                        "the replica's threads did not both run within {} s: IO={} SQL={} last IO error: {:?} \
                         last SQL error: {:?}",
                        limit.as_secs(),
                        s.io_running,
                        s.sql_running,
                        s.last_io_error,
                        s.last_sql_error
                    ),
                ))
            }
            None => return Err(repl_error(replica, "the replica has no replication configured".into())),
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The replica's thread states, or `None` when it replicates from nobody.
pub async fn state(conn: &mut Conn, flavour: Flavour) -> Result<Option<ReplicationState>, mysql_async::Error> {
    let (stmt, prefix) = match flavour {
        Flavour::MySql => ("SHOW REPLICA STATUS", "Replica"),
        Flavour::MariaDb => ("SHOW SLAVE STATUS", "Slave"),
    };
    let row: Option<Row> = conn.query_first(stmt).await?;
    Ok(row.map(|row| ReplicationState {
        io_running: text(&row, &format!("{prefix}_IO_Running")),
        sql_running: text(&row, &format!("{prefix}_SQL_Running")),
        last_io_error: text(&row, "Last_IO_Error"),
        last_sql_error: text(&row, "Last_SQL_Error"),
    }))
}

/// Waits until the replica has applied everything the primary had executed when called.
pub(crate) async fn wait_caught_up(primary: &Server, replica: &Server, timeout: Duration) -> Result<(), SandboxError> {
    let mut p = primary.conn().await?;
    let read = match primary.flavour {
        Flavour::MySql => "SELECT @@GLOBAL.gtid_executed",
        Flavour::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
    };
    let gtids: Option<String> = p.query_first(read).await.map_err(|e| primary.sql_error("reading the primary's GTIDs", e))?;
    let _ = p.disconnect().await;
    let gtids = gtids.unwrap_or_default();
    let secs = timeout.as_secs_f64().max(0.001);
    let wait = match replica.flavour {
        Flavour::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {secs:.3})", literal(&gtids)),
        Flavour::MariaDb => format!("SELECT MASTER_GTID_WAIT({}, {secs:.3})", literal(&gtids)),
    };
    let mut r = replica.conn().await?;
    let res: Option<Option<i64>> = r.query_first(&wait).await.map_err(|e| replica.sql_error("waiting for the primary's GTIDs", e))?;
    let _ = r.disconnect().await;
    match res.flatten() {
        Some(0) => Ok(()),
        other => Err(repl_error(
            replica,
            format!("the replica did not apply the primary's GTIDs {gtids:?} within {secs:.1} s ({wait} returned {other:?})"),
        )),
    }
}

fn text(row: &Row, column: &str) -> String {
    match row.get::<Value, _>(column) {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(Value::NULL) | None => String::new(),
        Some(v) => v.as_sql(true),
    }
}

fn repl_error(replica: &Server, detail: String) -> SandboxError {
    SandboxError::Replication { flavour: replica.flavour, detail, log: replica.error_log.clone() }
}
