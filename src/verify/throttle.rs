//! A backfill's brakes, applied before each chunk: `--max-rate` (rows per second read),
//! `--max-threads-running` (the target's `Threads_running`) and `--max-lag` (its replicas' lag).
//!
//! # Replica lag, by GTID
//!
//! `Seconds_Behind_Master` is not used: it is 0 during a long transaction and NULL when the SQL
//! thread is stopped. Instead, after each chunk's `COMMIT` the target's GTID position is noted
//! with the time ([`Throttle::committed`]). A replica's lag is the age of the oldest noted
//! position it has not applied yet (MySQL: `GTID_SUBSET(pos, @@GLOBAL.gtid_executed)` on the
//! replica; MariaDB: every domain's sequence number in the replica's `gtid_slave_pos` reaches the
//! position's). It is exact to within one chunk: the replica has applied everything the target
//! had committed one mark earlier. While any replica's lag is above `--max-lag`, the next chunk
//! waits. A stopped SQL thread, a broken connection or a replica behind by a long transaction all
//! show as a growing lag. Replicas come from `--replica HOST:PORT`, else from the target's
//! `SHOW REPLICAS` / `SHOW SLAVE HOSTS` (replicas started with `report_host`).
//!
//! # Replica lag, by heartbeat (`--lag-by heartbeat`)
//!
//! The same marks, but each is a chunk's beat number in privfence's heartbeat row on the target
//! ([`super::heartbeat`]), written in the chunk's transaction; a replica has applied a mark when
//! its copy of the row shows that beat or a later one. No GTIDs needed on either side.

use super::heartbeat::{self, Heartbeat};
use super::position::gtid_variable;
use super::progress::Brake;
use crate::db::server::opt_text;
use crate::db::{Flavour, Server};
use crate::error::{Error, Result};
use crate::model::ident::quote_str;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How a replica's lag is measured (`--lag-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LagBy {
    /// The target's GTID position after each chunk, looked for in the replica's.
    #[default]
    Gtid,
    /// A heartbeat row the chunks write on the target, read on each replica.
    Heartbeat,
}

/// The replicas a backfill watches, and how far behind they may fall.
#[derive(Debug, Clone)]
pub struct LagOptions {
    pub max: Duration,
    /// `HOST:PORT` of each replica (credentials of the target); empty: ask the target.
    pub replicas: Vec<String>,
    pub by: LagBy,
}

struct Replica {
    server: Server,
    /// Target positions (GTID sets, or heartbeat beats) this replica has not been seen to apply,
    /// oldest first.
    marks: VecDeque<(String, Instant)>,
}

/// The brakes of one backfill run.
pub struct Throttle {
    max_rate: Option<f64>,
    max_threads_running: u64,
    max_lag: Duration,
    replicas: Vec<Replica>,
    /// `Some` with `--lag-by heartbeat`: the row the chunks beat.
    heartbeat: Option<Heartbeat>,
    /// Chunks that waited for a replica (for the report).
    pub lag_waits: u64,
}

impl Throttle {
    /// Connects to the target's replicas when `lag` is given; refuses a target without GTIDs
    /// (by GTID). Changes nothing: the heartbeat row is armed after ([`Throttle::beat_with`]).
    pub async fn new(to: &mut Server, max_rate: Option<f64>, max_threads_running: u64, lag: Option<&LagOptions>) -> Result<Throttle> {
        let mut t =
            Throttle { max_rate, max_threads_running, max_lag: Duration::ZERO, replicas: Vec::new(), heartbeat: None, lag_waits: 0 };
        let Some(lag) = lag else { return Ok(t) };
        t.max_lag = lag.max;
        if lag.by == LagBy::Gtid {
            require_gtids(to).await?;
        }
        let addresses = if lag.replicas.is_empty() { discover(to).await? } else { lag.replicas.clone() };
        if addresses.is_empty() {
            return Err(Error::BadInput(format!(
                "--max-lag: the target {} lists no replicas (SHOW REPLICAS shows only replicas started with report_host); \
                 name them with --replica HOST:PORT; nothing was changed",
                to.target
            )));
        }
        for a in addresses {
            let spec = to.spec().with_address(&a)?;
            t.replicas.push(Replica { server: Server::connect(&spec).await?, marks: VecDeque::new() });
        }
        Ok(t)
    }

    /// Measures lag by `heartbeat` (`--lag-by heartbeat`, once its row is armed).
    pub fn beat_with(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    /// The next chunk's heartbeat statement and beat (`None` by GTID or without `--max-lag`).
    pub fn beat(&mut self) -> Option<(u64, String)> {
        self.heartbeat.as_mut().map(Heartbeat::advance)
    }

    /// `HOST:PORT` of each replica watched.
    pub fn replicas(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.server.target.clone()).collect()
    }

    /// Notes the target's position after a chunk's `COMMIT`: its GTID set, or its beat.
    pub fn committed(&mut self, gtid: &str) {
        let mark = match &self.heartbeat {
            Some(h) => h.seq.to_string(),
            None => gtid.to_string(),
        };
        if mark.is_empty() {
            return;
        }
        let now = Instant::now();
        for r in &mut self.replicas {
            if r.marks.back().is_none_or(|(g, _)| *g != mark) {
                r.marks.push_back((mark.clone(), now));
            }
        }
    }

    /// Waits until the next chunk may start (see the module doc); `held` hears each time a
    /// brake holds it (every 250 ms while it does).
    pub async fn wait(
        &mut self,
        target: &mut Server,
        rows_read: u64,
        started: Instant,
        held: &mut (dyn FnMut(Brake) + Send),
    ) -> Result<()> {
        if let Some(rate) = self.max_rate.filter(|r| *r > 0.0) {
            let due = Duration::from_secs_f64(rows_read as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let mut waited = false;
        loop {
            let running: Option<(String, String)> =
                target.first("reading Threads_running", "SHOW GLOBAL STATUS LIKE 'Threads_running'").await?;
            let n = running.and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0);
            let busy = (n > self.max_threads_running).then_some(Brake::ThreadsRunning { running: n, max: self.max_threads_running });
            let behind = match busy {
                Some(_) => None,
                None => self.most_behind().await?,
            };
            let brake = match (busy, behind) {
                (Some(b), _) => b,
                (None, Some((replica, lag))) if lag > self.max_lag => Brake::ReplicaLag { replica, lag, max: self.max_lag },
                _ => {
                    self.lag_waits += u64::from(waited);
                    return Ok(());
                }
            };
            waited = true;
            held(brake);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The replica furthest behind and its lag (`None` without replicas).
    async fn most_behind(&mut self) -> Result<Option<(String, Duration)>> {
        let mut worst: Option<(String, Duration)> = None;
        let heartbeat = self.heartbeat.as_ref().map(|h| h.name.clone());
        for r in &mut self.replicas {
            if let Some(name) = &heartbeat {
                let seen = heartbeat::read(&mut r.server, name).await?.unwrap_or(0);
                while r.marks.front().is_some_and(|(m, _)| m.parse::<u64>().is_ok_and(|m| m <= seen)) {
                    r.marks.pop_front();
                }
                let lag = r.marks.front().map_or(Duration::ZERO, |(_, at)| at.elapsed());
                if worst.as_ref().is_none_or(|(_, w)| lag > *w) {
                    worst = Some((r.server.target.clone(), lag));
                }
                continue;
            }
            let applied = match r.server.info.flavour {
                Flavour::MariaDb => {
                    let pos: Option<String> = r.server.first("reading the replica's position", "SELECT @@GLOBAL.gtid_slave_pos").await?;
                    Some(pos.unwrap_or_default())
                }
                Flavour::MySql => None,
            };
            while let Some((g, _)) = r.marks.front() {
                let done = match &applied {
                    Some(pos) => mariadb_contains(pos, g),
                    None => {
                        let sql = format!("SELECT GTID_SUBSET({}, {})", quote_str(g), gtid_variable(Flavour::MySql));
                        r.server.first::<u64>("reading the replica's position", &sql).await? == Some(1)
                    }
                };
                if !done {
                    break;
                }
                r.marks.pop_front();
            }
            let lag = r.marks.front().map_or(Duration::ZERO, |(_, at)| at.elapsed());
            if worst.as_ref().is_none_or(|(_, w)| lag > *w) {
                worst = Some((r.server.target.clone(), lag));
            }
        }
        Ok(worst)
    }

    pub async fn close(self) {
        for r in self.replicas {
            r.server.close().await;
        }
    }
}

/// Refuses a target without GTIDs (`--lag-by gtid`).
async fn require_gtids(to: &mut Server) -> Result<()> {
    let gtids_on = match to.info.flavour {
        Flavour::MySql => to.first::<String>("reading gtid_mode", "SELECT @@GLOBAL.gtid_mode").await?.as_deref() == Some("ON"),
        Flavour::MariaDb => to.first::<u64>("reading log_bin", "SELECT @@GLOBAL.log_bin").await? == Some(1),
    };
    if gtids_on {
        return Ok(());
    }
    Err(Error::Setting {
        what: format!(
            "--max-lag measures replica lag by GTID, but the target {} has no GTIDs (MySQL: gtid_mode=ON; MariaDB: log_bin on); nothing was changed",
            to.target
        ),
        todo: "use --lag-by heartbeat, or turn GTIDs on",
    })
}

/// The target's replicas that registered with `report_host`, as `HOST:PORT`.
async fn discover(to: &mut Server) -> Result<Vec<String>> {
    let sql = match to.info.flavour {
        Flavour::MySql => "SHOW REPLICAS",
        Flavour::MariaDb => "SHOW SLAVE HOSTS",
    };
    let rows = to.rows("listing the target's replicas", sql).await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let col = |n: &str| row.columns_ref().iter().position(|c| c.name_str() == n).and_then(|i| opt_text(row, i));
            let host = col("Host").filter(|h| !h.is_empty())?;
            Some(format!("{host}:{}", col("Port")?))
        })
        .collect())
}

/// MariaDB GTID positions (`domain-server-seq,...`): whether `applied` reaches `wanted` in every
/// domain of `wanted`.
pub fn mariadb_contains(applied: &str, wanted: &str) -> bool {
    let parse = |s: &str| -> BTreeMap<u64, u64> {
        s.split(',')
            .filter_map(|g| {
                let mut it = g.trim().split('-');
                let (d, _, n) = (it.next()?.parse().ok()?, it.next()?, it.next()?.parse().ok()?);
                Some((d, n))
            })
            .collect()
    };
    let have = parse(applied);
    parse(wanted).into_iter().all(|(d, n)| have.get(&d).is_some_and(|h| *h >= n))
}

#[cfg(test)]
mod tests {
    use super::mariadb_contains;

    #[test]
    fn mariadb_positions_are_compared_per_domain() {
        assert!(mariadb_contains("0-1-10", "0-1-10"));
        assert!(mariadb_contains("0-1-11,1-2-5", "0-1-10"));
        assert!(!mariadb_contains("0-1-9", "0-1-10"));
        assert!(!mariadb_contains("0-1-10", "0-1-10,1-1-1"), "a domain the replica has not seen");
        assert!(mariadb_contains("0-2-12", "0-1-12"), "the sequence number counts, not the server id");
        assert!(mariadb_contains("", ""));
    }
}
