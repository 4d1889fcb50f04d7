//! Where a server stands: its identity (a backfill's journal is tied to its target, so a resume
//! against another server is refused) and its binary log position (every acknowledged chunk
//! records the source's and the target's).
//!
//! A position is the GTID set (MySQL `@@GLOBAL.gtid_executed`, MariaDB `@@GLOBAL.gtid_binlog_pos`)
//! and, when the server has no GTIDs, the binary log's file and offset. Read on the source right
//! after a chunk's rows were read, it is an upper bound of what the copy saw; read on the target
//! right after the chunk's `COMMIT`, it contains the chunk's writes.

use crate::db::server::opt_text;
use crate::db::{Flavour, Server};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// What identifies a server across reconnects and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// MySQL's `@@server_uuid` (kept in its data directory); `None` on MariaDB, which has none.
    pub server_uuid: Option<String>,
    pub server_id: u64,
    /// `@@hostname` and `@@port`: two servers on one machine share the first, never the second.
    pub hostname: String,
    pub port: u64,
}

impl Identity {
    pub async fn read(s: &mut Server) -> Result<Identity> {
        let (server_id, hostname, port): (u64, String, u64) =
            s.first("reading the server's identity", "SELECT @@server_id, @@hostname, @@port").await?.unwrap_or_default();
        let server_uuid = match s.info.flavour {
            Flavour::MySql => s.first::<String>("reading server_uuid", "SELECT @@server_uuid").await?,
            Flavour::MariaDb => None,
        };
        Ok(Identity { server_uuid, server_id, hostname, port })
    }

    /// `server_uuid 3e11..., server_id 1, db1:3306`.
    pub fn describe(&self) -> String {
        let uuid = self.server_uuid.as_deref().map(|u| format!("server_uuid {u}, ")).unwrap_or_default();
        format!("{uuid}server_id {}, {}:{}", self.server_id, self.hostname, self.port)
    }
}

/// A server's binary log position at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The executed GTID set (MySQL) or binlog GTID position (MariaDB); empty without GTIDs.
    pub gtid: String,
    /// The binary log file and offset, when there are no GTIDs (and the binary log is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<u64>,
}

/// The GTID variable a position is read from.
pub fn gtid_variable(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::MySql => "@@GLOBAL.gtid_executed",
        Flavour::MariaDb => "@@GLOBAL.gtid_binlog_pos",
    }
}

/// Reads `s`'s position (one round trip with GTIDs, two without).
pub async fn position(s: &mut Server) -> Result<Position> {
    let gtid: Option<String> = s.first("reading the GTID position", &format!("SELECT {}", gtid_variable(s.info.flavour))).await?;
    let gtid = gtid.unwrap_or_default().replace('\n', "");
    if !gtid.is_empty() {
        return Ok(Position { gtid, file: None, pos: None });
    }
    let sql = match (s.info.flavour, s.info.version >= crate::db::flavour::Version::new(8, 2, 0)) {
        (Flavour::MySql, true) => "SHOW BINARY LOG STATUS",
        _ => "SHOW MASTER STATUS",
    };
    // Without the privilege (REPLICATION CLIENT / BINLOG MONITOR) or the binary log: no position.
    let rows = s.rows("reading the binary log position", sql).await.unwrap_or_default();
    let file = rows.first().and_then(|r| opt_text(r, 0));
    let pos = rows.first().and_then(|r| opt_text(r, 1)).and_then(|p| p.parse().ok());
    Ok(Position { gtid, file, pos })
}

/// The journal's record of the servers a backfill runs between (`step` `servers`).
pub const SERVERS_STEP: &str = "servers";

/// Refuses a target other than the one `recorded` (from the journal) names.
pub fn check_target(recorded: &Identity, now: &Identity, target: &str, journal: &std::path::Path) -> Result<()> {
    if recorded == now {
        return Ok(());
    }
    Err(Error::WrongServer {
        what: format!(
            "the backfill journal {} belongs to another target: it was started against {}, but --to {target} is {}; nothing was changed",
            journal.display(),
            recorded.describe(),
            now.describe()
        ),
        todo: "resume against the server the journal names, or start a new journal for this target (--restart keeps the old one aside, or --journal PATH)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uuid: Option<&str>, sid: u64, port: u64) -> Identity {
        Identity { server_uuid: uuid.map(str::to_string), server_id: sid, hostname: "h".into(), port }
    }

    #[test]
    fn another_target_is_refused_naming_both() {
        let p = std::path::Path::new("/j");
        assert!(check_target(&id(Some("u1"), 1, 3306), &id(Some("u1"), 1, 3306), "x", p).is_ok());
        let e = check_target(&id(Some("u1"), 1, 3306), &id(Some("u2"), 1, 3306), "root@h:3306", p).unwrap_err().to_string();
        assert!(e.contains("server_uuid u1") && e.contains("server_uuid u2") && e.contains("nothing was changed"), "{e}");
        // MariaDB: same server_id and host, another port.
        assert!(check_target(&id(None, 1, 3306), &id(None, 1, 3307), "x", p).is_err());
        let j = serde_json::to_value(id(None, 1, 1)).unwrap();
        assert_eq!(serde_json::from_value::<Identity>(j).unwrap(), id(None, 1, 1));
    }
}
