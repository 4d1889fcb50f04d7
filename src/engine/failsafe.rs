//! The server-side fail-safe (a dead man's switch): while a cut is in force, an `EVENT` on the
//! primary restores the account by itself when privfence's heartbeat goes silent for
//! `after` (privfence killed, hung, or cut off from the server). See docs/failsafe.md.
//!
//! ```text
//! privfence schema (created on first use, `privfence failsafe remove` drops it)
//!   heartbeat(name, at, after_ms)   one row per armed fail-safe; refreshed every second by
//!                                   privfence on a connection with sql_log_bin=0
//!   fired(name, fired_at, heartbeat_at, done_at, errors)   written by the procedure (replicates)
//!   restore_<name>()   the turn's inverse statements: re-grants, KILL of the account's
//!                      connections above the cut-begin watermark, removals; records `fired`
//!   failsafe_<name>    EVERY 1 SECOND: heartbeat older than after_ms and not fired → CALL
//! ```
//!
//! Events reach replicas disabled, so the fail-safe only ever fires on the primary; what its
//! procedure does there (the GRANTs and REVOKEs) is binary-logged and replicates like any
//! restore. Once `fired` has its row the event's condition is false for good: it is inert until
//! privfence (alive again, or `resume`) reads what happened, verifies and drops it.

use super::node::Node;
use crate::error::Result;
use crate::journal::JournalStep;
use crate::model::ident::{quote_ident as qi, quote_str as qs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The schema privfence owns on a primary.
pub const SCHEMA: &str = "privfence";

/// What one fail-safe restores, and when.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `t` + 16 hex digits, unique per turn: names the heartbeat row, event and procedure.
    pub name: String,
    /// Silence after which the server restores.
    pub after: Duration,
    /// The account's user name (its connections are ended, any host row).
    pub user: String,
    /// The primary's cut-begin watermark: connections above it were opened during the cut.
    pub watermark: u64,
    /// Inverse statements that give back (run before the connections are ended).
    pub regrants: Vec<String>,
    /// Inverse statements that remove what the cut added (run after).
    pub removals: Vec<String>,
    /// End the account's connections above the watermark (a cut; not a promotion's fence,
    /// whose account is locked).
    pub kill: bool,
    /// Run the procedure without binary logging (a promotion's fence never reached the
    /// replica, so neither may its undo).
    pub unlogged: bool,
}

impl Spec {
    /// The fail-safe of a turn: every step's inverse, in the restore's order.
    pub fn for_turn(name: String, after: Duration, user: &str, watermark: u64, steps: &[JournalStep]) -> Spec {
        let inverses: Vec<String> = steps.iter().rev().map(|s| s.inverse.clone()).collect();
        let first_removal = inverses.iter().position(|s| s.starts_with("REVOKE ")).unwrap_or(inverses.len());
        Spec {
            name,
            after,
            user: user.to_string(),
            watermark,
            regrants: inverses[..first_removal].to_vec(),
            removals: inverses[first_removal..].to_vec(),
            kill: true,
            unlogged: false,
        }
    }

    /// Only the names (for disarming).
    pub fn named(name: &str) -> Spec {
        Spec {
            name: name.to_string(),
            after: Duration::ZERO,
            user: String::new(),
            watermark: 0,
            regrants: vec![],
            removals: vec![],
            kill: false,
            unlogged: false,
        }
    }

    pub fn event(&self) -> String {
        format!("{}.{}", qi(SCHEMA), qi(&format!("failsafe_{}", self.name)))
    }

    pub fn procedure(&self) -> String {
        format!("{}.{}", qi(SCHEMA), qi(&format!("restore_{}", self.name)))
    }

    fn table(t: &str) -> String {
        format!("{}.{}", qi(SCHEMA), qi(t))
    }

    /// The schema and its two tables (binary-logged: they exist on the replicas too).
    pub fn schema_sql() -> Vec<String> {
        vec![
            format!("CREATE DATABASE IF NOT EXISTS {}", qi(SCHEMA)),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (name VARCHAR(64) NOT NULL PRIMARY KEY, at DATETIME(3) NOT NULL, after_ms BIGINT NOT NULL) ENGINE=InnoDB",
                Self::table("heartbeat")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (name VARCHAR(64) NOT NULL PRIMARY KEY, fired_at DATETIME(3) NOT NULL, heartbeat_at DATETIME(3) NULL, \
                 done_at DATETIME(3) NULL, errors INT NOT NULL DEFAULT 0) ENGINE=InnoDB",
                Self::table("fired")
            ),
        ]
    }

    /// The procedure the event calls: records that it fired, re-grants, ends the account's
    /// connections opened during the cut (one failed KILL does not stop the rest), removes
    /// what the cut added, and records that it finished with how many statements failed.
    pub fn procedure_sql(&self) -> String {
        let n = qs(&self.name);
        let cursor = if self.kill {
            format!(
                "DECLARE c CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {} AND ID > {};\n",
                qs(&self.user),
                self.watermark
            )
        } else {
            String::new()
        };
        let mut b = format!(
            "CREATE PROCEDURE {}() SQL SECURITY DEFINER COMMENT 'privfence fail-safe: restores a cut when the heartbeat stops'\nBEGIN\n\
             DECLARE done INT DEFAULT 0;\nDECLARE failed INT DEFAULT 0;\nDECLARE hb DATETIME(3) DEFAULT NULL;\nDECLARE cid BIGINT UNSIGNED;\n\
             {cursor}DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;\nDECLARE CONTINUE HANDLER FOR SQLEXCEPTION SET failed = failed + 1;\n\
             {}SELECT at INTO hb FROM {} WHERE name = {n};\nINSERT INTO {} (name, fired_at, heartbeat_at) VALUES ({n}, NOW(3), hb);\n",
            self.procedure(),
            if self.unlogged { "SET SESSION sql_log_bin = 0;\n" } else { "" },
            Self::table("heartbeat"),
            Self::table("fired"),
        );
        for g in &self.regrants {
            b.push_str(g);
            b.push_str(";\n");
        }
        if self.kill {
            b.push_str(
                "SET done = 0;\nOPEN c;\nkills: LOOP\nFETCH c INTO cid;\nIF done = 1 THEN LEAVE kills; END IF;\n\
             SET @privfence_kill = CONCAT('KILL CONNECTION ', cid);\nPREPARE privfence_kill FROM @privfence_kill;\n\
             EXECUTE privfence_kill;\nDEALLOCATE PREPARE privfence_kill;\nEND LOOP;\nCLOSE c;\n",
            );
        }
        for r in &self.removals {
            b.push_str(r);
            b.push_str(";\n");
        }
        b.push_str(&format!("UPDATE {} SET done_at = NOW(3), errors = failed WHERE name = {n};\nEND", Self::table("fired")));
        b
    }

    /// The event: once a second, a stale heartbeat and no `fired` row call the procedure.
    pub fn event_sql(&self) -> String {
        let n = qs(&self.name);
        format!(
            "CREATE EVENT {} ON SCHEDULE EVERY 1 SECOND ON COMPLETION PRESERVE ENABLE \
             COMMENT 'privfence fail-safe: restores a cut when the heartbeat stops' DO\nBEGIN\n\
             IF NOT EXISTS (SELECT 1 FROM {} WHERE name = {n}) AND (SELECT at FROM {} WHERE name = {n}) < NOW(3) - INTERVAL {} MICROSECOND THEN\n\
             CALL {}();\nEND IF;\nEND",
            self.event(),
            Self::table("fired"),
            Self::table("heartbeat"),
            self.after.as_micros(),
            self.procedure()
        )
    }

    /// The heartbeat row (run without binary logging).
    pub fn heartbeat_insert(&self) -> String {
        format!(
            "REPLACE INTO {} (name, at, after_ms) VALUES ({}, NOW(3), {})",
            Self::table("heartbeat"),
            qs(&self.name),
            self.after.as_millis()
        )
    }

    /// The statement run every second without binary logging: refreshes the heartbeat unless
    /// the fail-safe fired (then it changes no row, which is how privfence learns it fired).
    pub fn heartbeat_sql(&self) -> String {
        let n = qs(&self.name);
        format!(
            "UPDATE {} SET at = NOW(3) WHERE name = {n} AND NOT EXISTS (SELECT 1 FROM {} WHERE name = {n})",
            Self::table("heartbeat"),
            Self::table("fired")
        )
    }

    /// Disarming, in order: the event (logged), then the heartbeat row (unlogged), then the
    /// procedure (logged).
    pub fn drop_event_sql(&self) -> String {
        format!("DROP EVENT IF EXISTS {}", self.event())
    }

    pub fn heartbeat_delete(&self) -> String {
        format!("DELETE FROM {} WHERE name = {}", Self::table("heartbeat"), qs(&self.name))
    }

    pub fn drop_procedure_sql(&self) -> String {
        format!("DROP PROCEDURE IF EXISTS {}", self.procedure())
    }

    /// Reads the `fired` row: (fired_at, heartbeat_at, stale ms, done_at, errors).
    pub fn fired_sql(name: &str) -> String {
        format!(
            "SELECT DATE_FORMAT(fired_at, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(heartbeat_at, '%Y-%m-%d %H:%i:%s.%f'), \
             CAST(TIMESTAMPDIFF(MICROSECOND, heartbeat_at, fired_at) / 1000 AS SIGNED), DATE_FORMAT(done_at, '%Y-%m-%d %H:%i:%s.%f'), errors \
             FROM {} WHERE name = {}",
            Self::table("fired"),
            qs(name)
        )
    }
}

/// What the server says its fail-safe did.
#[derive(Debug, Clone)]
pub struct Fired {
    pub fired_at: String,
    pub heartbeat_at: Option<String>,
    /// How long the heartbeat had been silent when it fired.
    pub stale_ms: Option<i64>,
    /// When the procedure finished (None: still running, or it stopped half-way).
    pub done_at: Option<String>,
    pub errors: i64,
}

impl Fired {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "fired_at": self.fired_at, "heartbeat_at": self.heartbeat_at, "stale_ms": self.stale_ms,
            "done_at": self.done_at, "errors": self.errors,
        })
    }

    /// From the journal's `fired` record.
    pub fn from_json(v: &serde_json::Value) -> Fired {
        let s = |k: &str| v[k].as_str().map(str::to_string);
        Fired {
            fired_at: s("fired_at").unwrap_or_default(),
            heartbeat_at: s("heartbeat_at"),
            stale_ms: v["stale_ms"].as_i64(),
            done_at: s("done_at"),
            errors: v["errors"].as_i64().unwrap_or(0),
        }
    }

    /// The verdict's reason.
    pub fn reason(&self) -> String {
        let secs = self.stale_ms.map(|ms| format!("{:.1}", ms as f64 / 1000.0)).unwrap_or_else(|| "?".into());
        format!("server-side fail-safe after {secs} s without heartbeat")
    }
}

/// Reads the fail-safe's `fired` row on `node`, if any.
pub async fn read_fired(node: &mut Node, name: &str) -> Result<Option<Fired>> {
    type Row = (String, Option<String>, Option<i64>, Option<String>, i64);
    let row: Option<Row> = node.server.first("reading the fail-safe's record", &Spec::fired_sql(name)).await?;
    Ok(row.map(|(fired_at, heartbeat_at, stale_ms, done_at, errors)| Fired { fired_at, heartbeat_at, stale_ms, done_at, errors }))
}

/// Whether `privfence` exists with a table `fired` (a fail-safe was ever armed here).
pub async fn schema_exists(node: &mut Node) -> Result<bool> {
    let n: Option<i64> = node
        .server
        .first(
            "looking for the privfence schema",
            &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = 'fired'", qs(SCHEMA)),
        )
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

/// The heartbeat: a task refreshing the row every second on its own connection (whose
/// session has `sql_log_bin=0`, so heartbeats neither replicate nor fill the binary log).
pub struct Heartbeat {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Node>,
    after: Duration,
}

struct Shared {
    /// The heartbeat changed no row: the fail-safe fired.
    fired: AtomicBool,
    last_ok: Mutex<Instant>,
}

impl Heartbeat {
    /// Starts refreshing with `sql` on `node` (already `sql_log_bin=0`).
    pub fn spawn(mut node: Node, sql: String, after: Duration) -> Heartbeat {
        let shared = Arc::new(Shared { fired: AtomicBool::new(false), last_ok: Mutex::new(Instant::now()) });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // After a stop (SIGSTOP, a hang) one refresh, not a burst of missed ones.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !st.load(Ordering::SeqCst) {
                tick.tick().await;
                if st.load(Ordering::SeqCst) {
                    break;
                }
                // The one unjournaled write, by design (docs/failsafe.md): the heartbeat row's
                // refresh, unlogged, once a second; arming journaled the statement.
                #[allow(clippy::disallowed_methods)]
                let refreshed = node.server.execute_affected(&sql).await;
                match refreshed {
                    Ok(0) => sh.fired.store(true, Ordering::SeqCst),
                    Ok(_) => *sh.last_ok.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now(),
                    Err(_) => {
                        // A lost connection: open another (the server keeps counting meanwhile).
                        if let Ok(fresh) = node.unlogged_companion().await {
                            node = fresh;
                        }
                    }
                }
            }
            node
        });
        Heartbeat { shared, stop, task, after }
    }

    /// The heartbeat found the fail-safe fired.
    pub fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// Time since the last refresh the server took.
    pub fn silent_for(&self) -> Duration {
        self.shared.last_ok.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    /// The fail-safe fired, or may have (the heartbeat has been silent for longer than
    /// `after` less a second of margin).
    pub fn maybe_fired(&self) -> bool {
        self.fired() || self.silent_for() + Duration::from_secs(1) >= self.after
    }

    /// Resolves once [`maybe_fired`](Self::maybe_fired) holds.
    pub async fn wait(&self) {
        while !self.maybe_fired() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops refreshing at once, without waiting for the next beat (the connection is
    /// dropped; a refresh in flight is harmless): for a disarm inside a write gap.
    pub fn stop_now(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
    }

    /// Stops refreshing; returns the heartbeat connection.
    pub async fn stop(self) -> Option<Node> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepKind;

    fn step(id: &str, kind: StepKind, forward: &str, inverse: &str) -> JournalStep {
        JournalStep { id: id.into(), kind, forward: forward.into(), inverse: inverse.into() }
    }

    #[test]
    fn the_procedure_regrants_kills_then_removes() {
        let steps = vec![
            step("01-grant", StepKind::Grant, "GRANT SELECT ON `s`.`orders` TO 'a'@'%'", "REVOKE SELECT ON `s`.`orders` FROM 'a'@'%'"),
            step("02-revoke", StepKind::Revoke, "REVOKE SELECT ON `s`.* FROM 'a'@'%'", "GRANT SELECT ON `s`.* TO 'a'@'%'"),
        ];
        let s = Spec::for_turn("t0123".into(), Duration::from_secs(30), "o'neil", 41, &steps);
        assert_eq!(s.regrants, vec!["GRANT SELECT ON `s`.* TO 'a'@'%'"]);
        assert_eq!(s.removals, vec!["REVOKE SELECT ON `s`.`orders` FROM 'a'@'%'"]);
        let p = s.procedure_sql();
        let (g, k, r) = (p.find("GRANT SELECT").unwrap(), p.find("KILL CONNECTION").unwrap(), p.find("REVOKE SELECT").unwrap());
        assert!(p.find("INSERT INTO `privfence`.`fired`").unwrap() < g && g < k && k < r, "{p}");
        assert!(p.contains("USER = 'o\\'neil' AND ID > 41"), "{p}");
        assert!(s.event_sql().contains("INTERVAL 30000000 MICROSECOND"));
        assert!(s.heartbeat_sql().starts_with("UPDATE `privfence`.`heartbeat` SET at = NOW(3) WHERE name = 't0123'"));
    }
}
