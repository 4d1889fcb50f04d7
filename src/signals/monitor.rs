//! [`Monitor`]: one per server. Start records every source's baseline; each poll reads every
//! source once, reconnects once when the connection dropped, and turns what changed into alarms.
//!
//! Order within a poll: the error counters first (MySQL's summary), then the detail sources
//! (sql_errlog, statement history), then the status counters (activity, MariaDB's
//! `Access_denied_errors`), and, when a counter rose by more than the details explain, the
//! details once more before alarming from the counter alone (see `tally`). The readers are in
//! `read`.

mod read;

use super::activity::Tracker;
use super::applog::AppLog;
use super::discover::{self, discover, Caps, UPTIME};
use super::errlog::Errlog;
use super::errors::{LOGIN_ERRORS, PRIVILEGE_ERRORS};
use super::logins::{self, LoginLog};
use super::tally::{CounterKey, Tally};
use super::{pfs, Activity, Alarm, AlarmKind, Poll, SignalFiles, SourceInfo, WatchTarget};
use crate::db::{ConnectSpec, Flavour, Server};
use crate::error::{Error, Result};
use crate::model::ident::quote_str;
use crate::model::setting::Knob;
use read::summary_map;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// A poll's SQL that has not answered by then counts as a dropped connection.
const SQL_TIMEOUT: Duration = Duration::from_secs(5);
/// How many closed connections' thread ids are kept to read their `_long` history rows.
const KNOWN_CLOSED_MAX: usize = 200;
/// How long to let a statement finish before reading the details again: the client gets its
/// error before the server writes the statement's history row.
const DETAIL_GRACE: Duration = Duration::from_millis(15);
/// How long after a connection with denied statements was last seen MariaDB's
/// `DENIED_CONNECTIONS` is not read as refused logins (its disconnect flushes them there).
const DENIALS_SUSPECT: Duration = Duration::from_secs(2);
/// MariaDB's `Access_denied_errors` / `ACCESS_DENIED` moved for these errors (seen on 10.11).
const MARIADB_DENIED_CODES: [u32; 2] = [1142, 1356];

/// One counter's rise in the current poll, for the citation of a counter alarm.
#[derive(Debug, Clone)]
struct Rise {
    code: Option<u32>,
    host: Option<String>,
    text: String,
}

/// Watches one server for one account. See the module docs of [`crate::signals`].
pub struct Monitor {
    /// `primary` or the replica's name, copied into every alarm.
    name: String,
    /// To reconnect after a dropped connection.
    spec: ConnectSpec,
    /// `None` after a failed reconnect: the next poll tries again.
    server: Option<Server>,
    target: WatchTarget,
    caps: Caps,
    sources: Vec<SourceInfo>,
    /// The monitor's own performance_schema thread, left out of the history.
    own_thread: u64,
    /// `Uptime` at the last successful read, and when it was read: a restart is an `Uptime`
    /// lower than the elapsed time allows.
    clock: (u64, Instant),
    /// The processlist id of the monitor's connection: a reconnect that gets a lower one means
    /// a restart (ids only grow until then), a check that does not depend on `Uptime`'s whole
    /// seconds.
    conn_id: u64,
    id_went_down: bool,
    /// MySQL's error summary of the user as last read: (user, host, code) -> (raised, handled).
    errsum: BTreeMap<(String, String, u32), (u64, u64)>,
    /// MariaDB's denied-access counter of the user as last read (status or USER_STATISTICS).
    denied: Option<u64>,
    /// History rows already processed: (thread id, event id).
    seen: HashSet<(u64, u64)>,
    /// Post-cut connections of the user seen so far: thread id -> (processlist id, host).
    known: BTreeMap<u64, (u64, String)>,
    errlog: Option<Errlog>,
    /// server_audit and error-log files that report refused logins.
    login_logs: Vec<LoginLog>,
    /// MySQL's `performance_schema.error_log`: the newest `LOGGED` already read.
    error_log_after: Option<String>,
    /// MariaDB's `DENIED_CONNECTIONS` of the user as last read, and its rise in this poll.
    denied_logins: Option<u64>,
    denied_logins_rise: u64,
    /// A connection of the user had denied statements in this interval or the previous one, so
    /// `DENIED_CONNECTIONS` may have moved for them (see `read::denied_logins_counter`).
    denied_logins_untrusted: bool,
    /// When a connection of the user with denied statements was last seen.
    denials_seen_at: Option<Instant>,
    /// A refused login was seen in the current poll: the activity of connections that closed
    /// in this interval is not counted (a failed login's thread is no evidence of use).
    login_seen: bool,
    applogs: Vec<AppLog>,
    tally: Tally,
    /// Privilege errors of the user seen only by details no counter covers.
    extra_errors: u64,
    failed_logins: u64,
    activity: Tracker,
    connections: u32,
    /// Rises of the error counters in the current poll, for citations.
    rises: Vec<Rise>,
    /// Alarms found by a poll that then failed, handed out by the next one.
    stash: Vec<Alarm>,
    /// Settings the sources rely on, on at the start and checked at every poll
    /// ([`discover::relied_knobs`]).
    relied: Vec<Knob>,
}

impl Monitor {
    /// Opens its own connection, reads what the server offers, and records the baseline of
    /// every source (counters, file sizes, `Uptime`, history rows).
    pub async fn start(spec: &ConnectSpec, name: &str, target: WatchTarget, files: SignalFiles) -> Result<Monitor> {
        let mut server = Server::connect(spec).await?;
        // Tells other privfence processes that a watch runs here (engine::shared).
        crate::engine::shared::take_watch_slot(&mut server).await?;
        let (caps, mut sources) = discover(&mut server, &target, &files).await?;
        let io = |what: String| move |source| Error::Io { what, source };
        let errlog = match &files.sql_errlog {
            Some(p) => Some(Errlog::open(p).map_err(io(format!("opening the sql_errlog file {}", p.display())))?),
            None => None,
        };
        let mut login_logs = Vec::new();
        for (path, kind) in [(&files.audit_log, logins::AUDIT_LOG), (&files.error_log, logins::ERROR_LOG_FILE)] {
            if let Some(p) = path {
                login_logs.push(LoginLog::open(p, kind).map_err(io(format!("opening the {kind} file {}", p.display())))?);
            }
        }
        let mut applogs = Vec::new();
        for (path, pattern) in files.app_logs {
            let log = AppLog::open(&path, pattern.clone()).map_err(io(format!("opening the application log {}", path.display())))?;
            sources.push(SourceInfo {
                name: log.source(),
                covers: format!("new lines matching /{}/", pattern.as_str()),
                blind_spots: vec!["lines written and rotated away within one poll".into()],
                available: true,
                logins: false,
            });
            applogs.push(log);
        }
        let since = target.since_connection;
        let relied = discover::relied_knobs(&caps);
        let mut m = Monitor {
            name: name.to_string(),
            spec: spec.clone(),
            server: Some(server),
            target,
            caps,
            sources,
            own_thread: 0,
            clock: (0, Instant::now()),
            conn_id: 0,
            id_went_down: false,
            errsum: BTreeMap::new(),
            denied: None,
            seen: HashSet::new(),
            known: BTreeMap::new(),
            errlog,
            login_logs,
            error_log_after: None,
            denied_logins: None,
            denied_logins_rise: 0,
            denied_logins_untrusted: false,
            denials_seen_at: None,
            login_seen: false,
            applogs,
            tally: Tally::default(),
            extra_errors: 0,
            failed_logins: 0,
            activity: Tracker::new(since),
            connections: 0,
            rises: Vec::new(),
            stash: Vec::new(),
            relied,
        };
        m.baseline().await?;
        Ok(m)
    }

    /// The sources this monitor reads, with what they cover and their blind spots.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.sources
    }

    /// Sets the first processlist id of a post-cut connection, once the cut has run (monitors
    /// start before it, with `u64::MAX`, so their baseline precedes the cut's first statement).
    /// Connections with an id at or above it count as activity from now on.
    pub fn set_since_connection(&mut self, id: u64) {
        self.target.since_connection = id;
        self.activity.set_since(id);
    }

    /// The monitor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's flavour.
    pub fn flavour(&self) -> Flavour {
        self.caps.flavour
    }

    /// Gives back its watch slot, then closes the connection (the slot is free before this
    /// returns, not whenever the server notices the connection is gone).
    pub async fn close(self) {
        if let Some(mut s) = self.server {
            let _ = crate::engine::shared::release_watch_slot(&mut s).await;
            s.close().await;
        }
    }

    /// Reads every source once. Reconnects once when the connection dropped; a restart is an
    /// alarm. `Err` when the server cannot be read (the session counts consecutive errors as
    /// a blind monitor); alarms found before the failure come with the next poll.
    pub async fn poll(&mut self) -> Result<Poll> {
        let started = Instant::now();
        let mut alarms = std::mem::take(&mut self.stash);
        if let Err(e) = self.poll_into(&mut alarms).await {
            self.stash = alarms;
            return Err(e);
        }
        self.failed_logins += alarms.iter().filter(|a| a.kind == AlarmKind::LoginDenied).map(|a| a.count).sum::<u64>();
        let activity = Activity {
            statements: self.activity.statements(),
            errors: self.tally.errors(self.extra_errors),
            connections: self.connections,
            failed_logins: self.failed_logins,
            cited: self.activity.cited().to_vec(),
            unattributed: self.activity.unattributed(),
            unattributed_cited: self.activity.unattributed_cited().to_vec(),
        };
        Ok(Poll { alarms, activity, took: started.elapsed() })
    }

    async fn poll_into(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        for log in &mut self.applogs {
            let found = log.read(&self.name).map_err(|source| Error::Io { what: format!("reading {}", log.source()), source })?;
            alarms.extend(found);
        }
        let mut reconnected = false;
        if self.server.is_none() {
            self.reconnect().await?;
            reconnected = true;
        }
        match self.read_sql(alarms).await {
            Err(e) if !reconnected && is_connection_error(&e) => {
                self.reconnect().await?;
                self.read_sql(alarms).await
            }
            other => other,
        }
    }

    async fn reconnect(&mut self) -> Result<()> {
        self.server = None;
        let mut server = Server::connect(&self.spec).await?;
        crate::engine::shared::take_watch_slot(&mut server).await?;
        self.id_went_down |= server.connection_id() < self.conn_id;
        self.conn_id = server.connection_id();
        self.server = Some(server);
        self.own_thread = self.own_thread_id().await?;
        Ok(())
    }

    async fn own_thread_id(&mut self) -> Result<u64> {
        if !self.caps.pfs {
            return Ok(0);
        }
        pfs::own_thread(self.conn()).await
    }

    fn conn(&mut self) -> &mut Server {
        self.server.as_mut().expect("connected: poll reconnects first")
    }

    /// One SQL round, bounded by [`SQL_TIMEOUT`] (a hung connection is dropped).
    async fn read_sql(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        match tokio::time::timeout(SQL_TIMEOUT, self.read_sql_inner(alarms)).await {
            Ok(r) => r,
            Err(_) => {
                self.server = None;
                let io = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {} s", SQL_TIMEOUT.as_secs()));
                let source = mysql_async::Error::Io(mysql_async::IoError::Io(io));
                Err(Error::Query { what: format!("the poll of {}", self.name), target: self.spec.target(), source })
            }
        }
    }

    async fn read_sql_inner(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        self.rises.clear();
        self.login_seen = false;
        let up = pfs::uptime(self.conn()).await?;
        let (before, at) = self.clock;
        let expected = before + at.elapsed().as_secs();
        self.clock = (up, Instant::now());
        // Whole seconds on both sides: without a restart `up` is at least `expected`, give or
        // take the queries' latency.
        let by_uptime = up < before || up + 1 < expected;
        let by_id = std::mem::take(&mut self.id_went_down);
        if by_uptime || by_id {
            let why = if by_uptime { "" } else { " (the new connection got a lower processlist id)" };
            let cited = format!("Uptime is {up} s where {expected} s was expected from the previous poll: the server restarted{why}");
            alarms.push(self.alarm(AlarmKind::Restart, UPTIME, cited));
            self.restarted().await?;
        }
        // After a restart the settings are back to the server's defaults: the restart is the
        // alarm, and the settings still on are the ones relied on from now.
        self.check_knobs(alarms, !(by_uptime || by_id)).await?;
        if self.caps.error_summary {
            self.read_error_summary(alarms).await?;
        }
        self.read_details(alarms).await?;
        self.read_status(alarms).await?;
        let login_unexplained = self.denied_logins_rise > 0 && !alarms.iter().any(|a| a.kind == AlarmKind::LoginDenied);
        let has_details = self.errlog.is_some() || self.caps.history.is_some() || !self.login_logs.is_empty();
        if (!self.tally.unexplained().is_empty() || login_unexplained) && has_details {
            tokio::time::sleep(DETAIL_GRACE).await;
            self.read_details(alarms).await?;
        }
        for (key, n) in self.tally.unexplained() {
            alarms.push(self.counter_alarm(&key, n));
            self.tally.alarmed(&key, n);
        }
        self.denied_logins_alarm(alarms);
        Ok(())
    }

    /// An alarm (with `raise`) for each relied-on setting that is off now; it is checked no more.
    async fn check_knobs(&mut self, alarms: &mut Vec<Alarm>, raise: bool) -> Result<()> {
        let consumers: Vec<String> =
            self.relied.iter().filter_map(|k| if let Knob::Consumer(c) = k { Some(quote_str(c)) } else { None }).collect();
        let mut off: Vec<Knob> = Vec::new();
        if !consumers.is_empty() {
            let sql = format!(
                "SELECT NAME FROM performance_schema.setup_consumers WHERE ENABLED <> 'YES' AND NAME IN ({})",
                consumers.join(", ")
            );
            let rows: Vec<(String,)> = self.conn().rows_as("checking the watch's consumers", &sql).await?;
            off.extend(rows.into_iter().map(|(n,)| Knob::Consumer(n)));
        }
        if self.relied.contains(&Knob::Global("userstat".into())) {
            let on = self.conn().first::<u64>("checking userstat", "SELECT @@GLOBAL.userstat").await?.unwrap_or(0) == 1;
            if !on {
                off.push(Knob::Global("userstat".into()));
            }
        }
        for k in off {
            self.relied.retain(|r| r != &k);
            if !raise {
                continue;
            }
            let source = match &k {
                Knob::Consumer(_) => "setup_consumers",
                Knob::Global(_) => "global variables",
            };
            let name = k.name();
            let cited = format!(
                "{name} was on when the watch started and is off now (turned off by another privfence session ending, or by an operator): the sources relying on it went silent"
            );
            alarms.push(self.alarm(AlarmKind::SettingOff, source, cited));
        }
        Ok(())
    }

    /// Every counter started again: what the server shows now all happened after the restart.
    async fn restarted(&mut self) -> Result<()> {
        self.errsum.clear();
        self.denied = Some(0);
        self.denied_logins = Some(0);
        self.seen.clear();
        self.known.clear();
        self.activity.restarted();
        self.own_thread = self.own_thread_id().await?;
        Ok(())
    }

    /// The first reading of every source: a baseline, no alarms.
    async fn baseline(&mut self) -> Result<()> {
        self.conn_id = self.conn().connection_id();
        self.own_thread = self.own_thread_id().await?;
        self.clock = (pfs::uptime(self.conn()).await?, Instant::now());
        let user = self.target.user.clone();
        let codes: &[u32] = match self.caps.flavour {
            Flavour::MySql if self.caps.error_summary => &PRIVILEGE_ERRORS,
            Flavour::MariaDb if self.caps.pfs || self.caps.userstat => &MARIADB_DENIED_CODES,
            _ => &[],
        };
        if self.caps.flavour == Flavour::MySql {
            let logins: &[u32] = if self.caps.error_summary { &LOGIN_ERRORS } else { &[] };
            for c in codes.iter().chain(logins) {
                self.tally.rise(CounterKey { user: user.clone(), host: None, codes: vec![*c] }, 0);
            }
        } else if !codes.is_empty() {
            self.tally.rise(CounterKey { user: user.clone(), host: None, codes: codes.to_vec() }, 0);
        }
        if self.caps.error_log_table {
            self.error_log_after = Some(logins::error_log_now(self.conn()).await?);
        }
        if self.caps.error_summary {
            self.errsum = summary_map(pfs::error_summary(self.conn(), &user).await?);
        }
        if let Some(table) = self.caps.history {
            let (own, since) = (self.own_thread, self.activity.since());
            let rows = pfs::history(self.conn(), table, own, &user, since, &[]).await?;
            self.seen = rows.iter().map(|r| (r.thread_id, r.event_id)).collect();
        }
        let mut ignored = Vec::new();
        self.read_status(&mut ignored).await?;
        self.denied_logins_rise = 0;
        Ok(())
    }
}

/// A dropped or broken connection (worth one reconnect), as opposed to a server's answer.
fn is_connection_error(e: &Error) -> bool {
    match e {
        Error::Query { source, .. } | Error::Connect { source, .. } => !matches!(source, mysql_async::Error::Server(_)),
        _ => false,
    }
}
