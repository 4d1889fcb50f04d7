//! The servers a session changes: the primary and its replicas, each a [`Node`] with its own
//! connection, identity and boot time, and the few replication and processlist queries the
//! cut and the restore need.

use crate::db::{ConnectSpec, Flavour, Server};
use crate::error::Result;
use crate::journal::ServerRef;
use crate::model::ident::quote_str;
use std::time::{Duration, Instant};

/// One server of the session.
pub struct Node {
    /// `primary`, or `replica1`, `replica2`... in the order given.
    pub name: String,
    pub server: Server,
    /// MySQL `server_uuid`, MariaDB `server_id`.
    pub identity: String,
    spec: ConnectSpec,
}

/// Replication health of a replica, for the operator's acknowledgement before a cut.
#[derive(Debug, Clone)]
pub struct ReplicaHealth {
    pub io_running: bool,
    pub sql_running: bool,
    /// Configured delay (`SQL_Delay`), seconds.
    pub delay: u64,
    pub last_error: Option<String>,
}

impl ReplicaHealth {
    pub fn problem(&self) -> Option<String> {
        if !self.io_running || !self.sql_running {
            return Some(format!(
                "replication is stopped (IO thread {}, SQL thread {}){}",
                if self.io_running { "running" } else { "stopped" },
                if self.sql_running { "running" } else { "stopped" },
                self.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        (self.delay > 0).then(|| format!("the replica is delayed by {} s (SQL_Delay)", self.delay))
    }
}

impl Node {
    pub async fn connect(spec: &ConnectSpec, name: &str) -> Result<Node> {
        let mut server = Server::connect(spec).await?;
        let identity = identity(&mut server).await?;
        Ok(Node { name: name.to_string(), server, identity, spec: spec.clone() })
    }

    /// A second connection to the same server under the same name (the fail-safe's heartbeat
    /// connection, whose session runs without binary logging).
    pub async fn companion(&self) -> Result<Node> {
        Ok(Node { name: self.name.clone(), server: self.server.another().await?, identity: self.identity.clone(), spec: self.spec.clone() })
    }

    /// [`Node::companion`] whose session does not write the binary log (the fail-safe's
    /// heartbeat: its refreshes neither replicate nor fill the binary log).
    pub async fn unlogged_companion(&self) -> Result<Node> {
        let mut n = self.companion().await?;
        n.server.session("setting sql_log_bin = 0", "SET SESSION sql_log_bin = 0").await?;
        Ok(n)
    }

    pub fn flavour(&self) -> Flavour {
        self.server.info.flavour
    }

    pub fn spec(&self) -> &ConnectSpec {
        &self.spec
    }

    pub fn reference(&self) -> ServerRef {
        ServerRef { name: self.name.clone(), target: self.server.target.clone(), identity: self.identity.clone() }
    }

    /// Opens a fresh connection (after the server restarted or dropped ours).
    pub async fn reconnect(&mut self) -> Result<()> {
        let server = Server::connect(&self.spec).await?;
        let old = std::mem::replace(&mut self.server, server);
        drop(old);
        Ok(())
    }

    /// Reconnects until the server answers or `deadline` passes, calling `waiting` each second.
    pub async fn reconnect_until(&mut self, deadline: Instant, waiting: &mut (dyn FnMut(&str) + Send)) -> Result<()> {
        loop {
            match self.reconnect().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    waiting(&format!("{}: not reachable yet ({e}); retrying", self.name));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// The server's start time (Unix seconds): changes when it restarts, which also restarts
    /// processlist ids.
    pub async fn boot(&mut self) -> Result<i64> {
        let table = match self.flavour() {
            Flavour::MySql => "performance_schema.global_status",
            Flavour::MariaDb => "information_schema.GLOBAL_STATUS",
        };
        let sql = format!("SELECT UNIX_TIMESTAMP() - CAST(VARIABLE_VALUE AS SIGNED) FROM {table} WHERE VARIABLE_NAME = 'Uptime'");
        let v: Option<i64> = self.server.first("reading the server's uptime", &sql).await?;
        Ok(v.unwrap_or(0))
    }

    /// A processlist id higher than every connection open now: the id of a connection opened
    /// just for this (ids only grow until the server restarts).
    pub async fn watermark(&mut self) -> Result<u64> {
        let fresh = self.server.another().await?;
        let id = fresh.connection_id();
        fresh.close().await;
        Ok(id)
    }

    /// Connections of `user` (any host row) with an id in `range`, except privfence's own.
    pub async fn connections_of(&mut self, user: &str, above: u64, below: u64) -> Result<Vec<u64>> {
        let own = self.server.connection_id();
        let sql = format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {} AND ID > {above} AND ID < {below} AND ID <> {own} ORDER BY ID",
            quote_str(user)
        );
        let ids: Vec<u64> = self.server.rows_as("listing the account's connections", &sql).await?;
        Ok(ids)
    }

    /// The replication position of everything this server has executed: MySQL's
    /// `gtid_executed` (or `binlog:FILE:POS` when GTIDs are off), MariaDB's `gtid_binlog_pos`.
    pub async fn position(&mut self) -> Result<String> {
        if self.flavour() == Flavour::MariaDb {
            let v: Option<String> = self.server.first("reading the GTID position", "SELECT @@GLOBAL.gtid_binlog_pos").await?;
            return Ok(v.unwrap_or_default());
        }
        let mode: Option<String> = self.server.first("reading gtid_mode", "SELECT @@GLOBAL.gtid_mode").await?;
        if mode.as_deref() == Some("ON") {
            let v: Option<String> = self.server.first("reading the GTID position", "SELECT @@GLOBAL.gtid_executed").await?;
            return Ok(v.unwrap_or_default());
        }
        let rows = self.server.rows("reading the binary log position", "SHOW BINARY LOG STATUS").await?;
        Ok(rows.first().map(|r| format!("binlog:{}:{}", crate::db::server::text(r, 0), crate::db::server::text(r, 1))).unwrap_or_default())
    }

    /// Waits until this replica has applied `position` (GTID containment, or the binary log
    /// position when GTIDs are off; never Seconds_Behind_Master). `Ok(false)` on timeout.
    pub async fn wait_for(&mut self, position: &str, timeout: Duration) -> Result<bool> {
        if position.is_empty() {
            return Ok(true);
        }
        let secs = timeout.as_secs_f64().max(0.1);
        let sql = match (self.flavour(), position.strip_prefix("binlog:").and_then(|p| p.rsplit_once(':'))) {
            (Flavour::MySql, Some((file, pos))) => {
                let pos: u64 = pos.parse().map_err(|_| crate::error::Error::Unexpected(format!("bad binlog position {position:?}")))?;
                format!("SELECT IF(SOURCE_POS_WAIT({}, {pos}, {}) >= 0, 0, 1)", quote_str(file), secs.ceil() as u64)
            }
            (Flavour::MySql, None) => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {secs:.1})", quote_str(position)),
            (Flavour::MariaDb, _) => format!("SELECT MASTER_GTID_WAIT({}, {secs:.1})", quote_str(position)),
        };
        let v: Option<i64> = self.server.first("waiting for the replica to apply the change", &sql).await?;
        Ok(v == Some(0))
    }

    /// Replication state of this server as a replica (`None`: not a replica).
    pub async fn replica_health(&mut self) -> Result<Option<ReplicaHealth>> {
        let sql = match self.flavour() {
            Flavour::MySql => "SHOW REPLICA STATUS",
            Flavour::MariaDb => "SHOW SLAVE STATUS",
        };
        let rows = self.server.rows("reading replication status", sql).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let col = |names: &[&str]| -> Option<String> {
            let cols = row.columns_ref();
            names.iter().find_map(|n| cols.iter().position(|c| c.name_str() == *n)).and_then(|i| crate::db::server::opt_text(row, i))
        };
        let yes = |v: Option<String>| v.is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        let err = col(&["Last_SQL_Error"]).filter(|e| !e.is_empty()).or_else(|| col(&["Last_IO_Error"]).filter(|e| !e.is_empty()));
        Ok(Some(ReplicaHealth {
            io_running: yes(col(&["Replica_IO_Running", "Slave_IO_Running"])),
            sql_running: yes(col(&["Replica_SQL_Running", "Slave_SQL_Running"])),
            delay: col(&["SQL_Delay"]).and_then(|d| d.parse().ok()).unwrap_or(0),
            last_error: err,
        }))
    }

    /// The replicas this primary knows of, as `HOST:PORT` (those started with `report_host`;
    /// `SHOW REPLICAS` on MySQL, `SHOW SLAVE HOSTS` on MariaDB).
    pub async fn discover_replicas(&mut self) -> Result<Vec<String>> {
        let sql = match self.flavour() {
            Flavour::MySql => "SHOW REPLICAS",
            Flavour::MariaDb => "SHOW SLAVE HOSTS",
        };
        let rows = self.server.rows("listing replicas", sql).await?;
        let mut out = Vec::new();
        for row in &rows {
            let cols = row.columns_ref();
            let get = |name: &str| cols.iter().position(|c| c.name_str() == name).and_then(|i| crate::db::server::opt_text(row, i));
            if let (Some(h), Some(p)) = (get("Host").filter(|h| !h.is_empty()), get("Port")) {
                out.push(format!("{h}:{p}"));
            }
        }
        Ok(out)
    }

    /// How many replicas are connected to this server (binlog dump threads).
    pub async fn attached_replicas(&mut self) -> Result<u64> {
        let n: Option<u64> = self
            .server
            .first(
                "counting connected replicas",
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')",
            )
            .await?;
        Ok(n.unwrap_or(0))
    }
}

async fn identity(server: &mut Server) -> Result<String> {
    let sql = match server.info.flavour {
        Flavour::MySql => "SELECT CONCAT(@@server_uuid, '')",
        Flavour::MariaDb => "SELECT CONCAT('server_id=', @@server_id)",
    };
    Ok(server.first::<String>("reading the server's identity", sql).await?.unwrap_or_default())
}

/// The primary and its replicas.
pub struct Topology {
    pub nodes: Vec<Node>,
}

impl Topology {
    pub fn primary(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    pub fn replicas(&mut self) -> &mut [Node] {
        &mut self.nodes[1..]
    }

    pub fn references(&self) -> Vec<ServerRef> {
        self.nodes.iter().map(Node::reference).collect()
    }

    /// Waits until every replica has applied everything the primary executed so far.
    /// Returns the replicas that did not within `timeout`.
    pub async fn wait_replicas(&mut self, timeout: Duration) -> Result<Vec<String>> {
        if self.nodes.len() < 2 {
            return Ok(Vec::new());
        }
        let pos = self.nodes[0].position().await?;
        let mut late = Vec::new();
        for r in &mut self.nodes[1..] {
            if !r.wait_for(&pos, timeout).await? {
                late.push(r.name.clone());
            }
        }
        Ok(late)
    }
}
