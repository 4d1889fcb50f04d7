//! What a server offers as signal sources, and what it would take to see more.
//!
//! Read once at the start: `performance_schema` (a restart to change), its consumers (statement
//! history needs `events_statements_current` too: seen on MariaDB 10.11, where both are off by
//! default and history alone recorded nothing), `setup_actors` (an excluded account is invisible
//! to the error summary: seen on MySQL 9.7), MySQL's `error` instrument, MariaDB's `userstat`
//! and the sql_errlog plugin. [`wanted_settings`] turns the gaps that can be closed at run time
//! into statements the session journals and applies; nothing here changes a server.

use super::pfs::{ERROR_SUMMARY, STATUS};
use super::userstat::{PROCESSLIST, USER_STATISTICS};
use super::{errlog, logins, SignalFiles, SourceInfo, WatchTarget};
use crate::db::server::text;
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::setting::Knob;
use std::collections::BTreeMap;

/// Source names not defined by a reader module.
pub const THREADS: &str = "performance_schema.threads";
pub const UPTIME: &str = "Uptime";

pub use crate::model::setting::Setting;

/// What the monitor reads on this server.
#[derive(Debug, Clone)]
pub struct Caps {
    pub flavour: Flavour,
    pub pfs: bool,
    /// The statement history table to read, when its consumers are on.
    pub history: Option<&'static str>,
    /// MySQL's error summary (needs the `error` instrument).
    pub error_summary: bool,
    /// MariaDB without performance_schema, with `userstat=1`.
    pub userstat: bool,
    /// MariaDB with `userstat=1` (performance_schema on or off): `DENIED_CONNECTIONS`.
    pub denied_connections: bool,
    /// MySQL's `performance_schema.error_log` logs refused logins (`log_error_verbosity=3`).
    pub error_log_table: bool,
}

/// What the server reports about its instrumentation.
#[derive(Debug, Default)]
struct Found {
    pfs: bool,
    consumers: BTreeMap<String, bool>,
    /// `setup_actors` rows for the user or `%`: (host, user, enabled, history).
    actors: Vec<(String, String, bool, bool)>,
    error_instrument: bool,
    statements_disabled: u64,
    history_size: u64,
    long_size: u64,
    userstat: bool,
    /// MariaDB's sql_errlog plugin is active, with its sampling rate.
    errlog_rate: Option<u64>,
    /// MySQL: `performance_schema.error_log` exists (8.0.22+), and `log_error_verbosity`.
    error_log_table: bool,
    verbosity: u64,
}

impl Found {
    fn consumer(&self, name: &str) -> bool {
        self.consumers.get(name).copied().unwrap_or(false)
    }

    fn statements_on(&self) -> bool {
        ["global_instrumentation", "thread_instrumentation", "events_statements_current"].iter().all(|c| self.consumer(c))
    }

    fn history_table(&self) -> Option<&'static str> {
        if !self.pfs || !self.statements_on() {
            None
        } else if self.consumer("events_statements_history_long") {
            Some("events_statements_history_long")
        } else if self.consumer("events_statements_history") {
            Some("events_statements_history")
        } else {
            None
        }
    }
}

async fn read(server: &mut Server, user: &str) -> Result<Found> {
    let mut f = Found::default();
    let flavour = server.info.flavour;
    f.pfs = server.first::<u64>("reading performance_schema", "SELECT @@GLOBAL.performance_schema").await?.unwrap_or(0) == 1;
    if f.pfs {
        let rows: Vec<(String, String)> =
            server.rows_as("reading setup_consumers", "SELECT NAME, ENABLED FROM performance_schema.setup_consumers").await?;
        f.consumers = rows.into_iter().map(|(n, e)| (n, e == "YES")).collect();
        let actors =
            server.rows("reading setup_actors", "SELECT HOST, USER, ENABLED, HISTORY FROM performance_schema.setup_actors").await?;
        f.actors = actors
            .iter()
            .map(|r| (text(r, 0), text(r, 1), text(r, 2) == "YES", text(r, 3) == "YES"))
            .filter(|(_, u, _, _)| u == user || u == "%")
            .collect();
        let sizes: Option<(i64, i64)> = server
            .first(
                "reading history sizes",
                "SELECT @@GLOBAL.performance_schema_events_statements_history_size, @@GLOBAL.performance_schema_events_statements_history_long_size",
            )
            .await?;
        (f.history_size, f.long_size) = sizes.map(|(a, b)| (a.max(0) as u64, b.max(0) as u64)).unwrap_or((10, 10_000));
        f.statements_disabled = server
            .first::<u64>(
                "reading setup_instruments",
                "SELECT COUNT(*) FROM performance_schema.setup_instruments WHERE NAME LIKE 'statement/sql/%' AND ENABLED = 'NO'",
            )
            .await?
            .unwrap_or(0);
        if flavour == Flavour::MySql {
            let e: Option<String> = server
                .first("reading setup_instruments", "SELECT ENABLED FROM performance_schema.setup_instruments WHERE NAME = 'error'")
                .await?;
            f.error_instrument = e.as_deref() == Some("YES");
            f.error_log_table = server
                .first::<u64>(
                    "looking for performance_schema.error_log",
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'error_log'",
                )
                .await?
                .unwrap_or(0)
                == 1;
            f.verbosity = server.first::<u64>("reading log_error_verbosity", "SELECT @@GLOBAL.log_error_verbosity").await?.unwrap_or(0);
        }
    }
    if flavour == Flavour::MariaDb {
        f.userstat = server.first::<u64>("reading userstat", "SELECT @@GLOBAL.userstat").await?.unwrap_or(0) == 1;
        let status: Option<String> = server
            .first("reading plugins", "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'SQL_ERROR_LOG'")
            .await?;
        if status.as_deref() == Some("ACTIVE") {
            f.errlog_rate = server.first::<u64>("reading sql_error_log_rate", "SELECT @@GLOBAL.sql_error_log_rate").await?;
        }
    }
    Ok(f)
}

/// The settings the sources of `caps` rely on, all on when the monitor started: the statement
/// consumers of the history it reads, and MariaDB's `userstat` when it counts refused logins or
/// denied accesses. Turned off mid-window, a source goes silent instead of failing.
pub fn relied_knobs(caps: &Caps) -> Vec<Knob> {
    let mut out = Vec::new();
    if let Some(h) = caps.history {
        for c in ["global_instrumentation", "thread_instrumentation", "events_statements_current", h] {
            out.push(Knob::Consumer(c.to_string()));
        }
    }
    if caps.userstat || caps.denied_connections {
        out.push(Knob::Global("userstat".into()));
    }
    out
}

/// Reads what the server offers; returns what to read and the source list for the report.
pub async fn discover(server: &mut Server, target: &WatchTarget, files: &SignalFiles) -> Result<(Caps, Vec<SourceInfo>)> {
    let f = read(server, &target.user).await?;
    let flavour = server.info.flavour;
    let caps = Caps {
        flavour,
        pfs: f.pfs,
        history: f.history_table(),
        error_summary: flavour == Flavour::MySql && f.pfs && f.error_instrument,
        userstat: flavour == Flavour::MariaDb && !f.pfs && f.userstat,
        denied_connections: flavour == Flavour::MariaDb && f.userstat,
        error_log_table: flavour == Flavour::MySql && f.error_log_table && f.verbosity >= 3,
    };
    let mut out = Vec::new();
    let actors = actor_blind_spots(&f, &target.user);
    if !f.pfs {
        out.push(src(
            "performance_schema",
            "",
            vec!["performance_schema=OFF: it takes a restart with performance_schema=ON".into()],
            false,
        ));
    }
    match flavour {
        Flavour::MySql => out.extend(mysql_error_sources(&f, &caps, &actors)),
        Flavour::MariaDb => out.extend(mariadb_login_sources(&f, &caps, files)),
    }
    out.push(history_source(&f, flavour, &actors));
    out.extend(activity_sources(&f, flavour));
    out.push(src(UPTIME, "restarts: the start time moved or Uptime went down; dropped connections", Vec::new(), true));
    Ok((caps, out))
}

/// One source of the report.
fn src(name: &str, covers: &str, blind: Vec<String>, available: bool) -> SourceInfo {
    SourceInfo { name: name.to_string(), covers: covers.to_string(), blind_spots: blind, available, logins: false }
}

/// MySQL: the error summary and the error log table.
fn mysql_error_sources(f: &Found, caps: &Caps, actors: &[String]) -> Vec<SourceInfo> {
    let mut out = Vec::new();
    let mut blind = vec!["names no table and no statement (the statement history does)".to_string()];
    blind.extend(actors.iter().cloned());
    if f.pfs && !f.error_instrument {
        blind.push("the `error` instrument is disabled in setup_instruments".into());
    }
    let covers = "privilege errors (1044 1142 1143 1345 1356 1370 1449) of every account, raised and handled, and refused logins (1044 1045 3118) per account";
    out.push(SourceInfo { logins: true, ..src(ERROR_SUMMARY, covers, blind, caps.error_summary) });
    let mut blind = Vec::new();
    if !f.error_log_table {
        blind.push("performance_schema.error_log needs MySQL 8.0.22 or later".to_string());
    } else if f.verbosity < 3 {
        blind
            .push(format!("log_error_verbosity={}: refused logins are logged only at 3 (SET GLOBAL log_error_verbosity = 3)", f.verbosity));
    }
    let covers = "refused logins (Access denied notes MY-010914, MY-010926) with the account as the client gave it";
    out.push(SourceInfo { logins: true, ..src(logins::ERROR_LOG_TABLE, covers, blind, caps.error_log_table) });
    out
}

/// MariaDB: sql_errlog, denied connections, the audit log and the error log file.
fn mariadb_login_sources(f: &Found, caps: &Caps, files: &SignalFiles) -> Vec<SourceInfo> {
    let mut out = vec![errlog_source(f, files)];
    let blind = if f.userstat {
        vec!["per user name: no host, no error number".to_string()]
    } else {
        vec!["userstat=OFF: SET GLOBAL userstat = ON makes it count (no restart)".to_string()]
    };
    let covers = "refused connection attempts per user (a default database refused, a wrong password, a locked account)";
    out.push(SourceInfo { logins: true, ..src(logins::DENIED_CONNECTIONS, covers, blind, caps.denied_connections) });
    let (blind, available) = match &files.audit_log {
        Some(_) => (vec!["lines the server writes to a file this machine can read".to_string()], true),
        None => (vec!["server_audit is not active with CONNECT events and a file readable here".to_string()], false),
    };
    out.push(SourceInfo { logins: true, ..src(logins::AUDIT_LOG, "FAILED_CONNECT lines: user, host, error", blind, available) });
    let (blind, available) = match &files.error_log {
        Some(_) => (Vec::new(), true),
        None => (vec!["the error log is not readable here, or log_warnings < 2".to_string()], false),
    };
    out.push(SourceInfo { logins: true, ..src(logins::ERROR_LOG_FILE, "Access denied warnings of refused logins", blind, available) });
    out
}

/// Activity and connections: the status counters and threads, or the processlist and userstat.
fn activity_sources(f: &Found, flavour: Flavour) -> Vec<SourceInfo> {
    let mut out = Vec::new();
    if f.pfs {
        let mut blind = vec![
            "handler calls come from any table, information_schema and SHOW included; pings in the same poll interval as a table statement count along (min(statements, handler calls))".to_string(),
            "work of connections that closed in a poll interval in which a pre-cut connection closed too is dropped".into(),
        ];
        if flavour == Flavour::MariaDb {
            blind.push("Access_denied_errors counts table denials of SELECT and DML, not 1044, 1143, 1345, 1370 nor SHOW's 1142".into());
        }
        let covers = match flavour {
            Flavour::MariaDb => "denied accesses per account (Access_denied_errors) and activity: statements and handler calls (rows read or written) per connection and per account, closed connections included",
            Flavour::MySql => "activity: statements and handler calls (rows read or written) per connection and per account, closed connections included",
        };
        out.push(src(STATUS, covers, blind, true));
        out.push(src(THREADS, "the account's open connections and whether they are instrumented", Vec::new(), true));
        return out;
    }
    out.push(src(PROCESSLIST, "the account's open connections", Vec::new(), true));
    if flavour == Flavour::MariaDb {
        let blind = if f.userstat {
            vec![
                "ACCESS_DENIED counts table denials of SELECT and DML, not 1044, 1143, 1345, 1370 nor SHOW's 1142; no host, no table"
                    .into(),
                "activity counts only while no pre-cut connection is open, and reads of empty tables count nothing".into(),
            ]
        } else {
            vec!["userstat=OFF (SET GLOBAL userstat=ON; see wanted_settings)".into()]
        };
        out.push(src(USER_STATISTICS, "denied accesses per user (ACCESS_DENIED) and rows read or written per user", blind, f.userstat));
    }
    out
}

fn errlog_source(f: &Found, files: &SignalFiles) -> SourceInfo {
    let mut blind = vec![
        "lines written inside a definer's security context name the definer; they are folded into the caller's line".to_string(),
        "USE through COM_INIT_DB logs no query text".into(),
    ];
    let available = match (f.errlog_rate, &files.sql_errlog) {
        (None, _) => {
            blind.push("the sql_errlog plugin is not active (INSTALL SONAME 'sql_errlog' takes effect at once)".into());
            false
        }
        (Some(_), None) => {
            blind.push("the file is not readable here (remote server): the SQL sources work alone".into());
            false
        }
        (Some(0), Some(_)) => {
            blind.push("sql_error_log_rate=0: the plugin logs nothing".into());
            false
        }
        (Some(rate), Some(_)) => {
            if rate > 1 {
                blind.push(format!("sql_error_log_rate={rate}: only one error in {rate} is logged"));
            }
            true
        }
    };
    SourceInfo {
        name: errlog::SOURCE.into(),
        covers: "every failed statement and refused login: user, client host, error, message with the schema-qualified table, query text"
            .into(),
        blind_spots: blind,
        available,
        logins: true,
    }
}

fn history_source(f: &Found, flavour: Flavour, actors: &[String]) -> SourceInfo {
    let table = f.history_table();
    let mut blind = Vec::new();
    match table {
        Some("events_statements_history_long") => {
            blind.push(format!("keeps the last {} statements of the whole server: a busy server wraps it quickly", f.long_size));
        }
        Some(_) => {
            blind.push(format!(
                "keeps {} statements per connection: a connection running more between two polls hides the older ones",
                f.history_size
            ));
            blind.push("rows vanish with their connection: a connection that opens and closes between two polls is not seen here".into());
        }
        None if !f.pfs => blind.push("performance_schema=OFF".into()),
        None => blind.push(format!(
            "the consumers events_statements_current and events_statements_history are not both on{}; see wanted_settings",
            if flavour == Flavour::MariaDb { " (MariaDB's default)" } else { "" }
        )),
    }
    if flavour == Flavour::MySql {
        blind.push("MySQL names the table of a 1142 without its schema: resolved from the digest when it names one such table".into());
    }
    if f.statements_disabled > 0 {
        blind.push(format!("{} statement/sql instruments are disabled in setup_instruments", f.statements_disabled));
    }
    blind.extend(actors.iter().cloned());
    SourceInfo {
        name: format!("performance_schema.{}", table.unwrap_or("events_statements_history")),
        covers: "which statement failed (error, message, digest, text); statements of post-cut connections; other accounts' errors naming the account, a cut table or a dependent".into(),
        blind_spots: blind,
        available: table.is_some(),
        logins: false,
    }
}

/// `setup_actors` rows that hide the user (rows naming the user win over `%` rows).
fn actor_blind_spots(f: &Found, user: &str) -> Vec<String> {
    if !f.pfs {
        return Vec::new();
    }
    let own: Vec<_> = f.actors.iter().filter(|a| a.1 == user).collect();
    let rows = if own.is_empty() { f.actors.iter().collect() } else { own };
    if rows.is_empty() {
        return vec![format!("no setup_actors row matches {user}: its connections are not instrumented")];
    }
    let mut out = Vec::new();
    for (host, u, enabled, history) in rows {
        if !enabled {
            out.push(format!("setup_actors ({host}, {u}) disables instrumentation for {user}'s connections from matching hosts"));
        } else if !history {
            out.push(format!("setup_actors ({host}, {u}) disables statement history for {user}'s connections from matching hosts"));
        }
    }
    out
}

/// Settings that would let a monitor on this server see more, with their inverses. Only what
/// can change at run time; `performance_schema=OFF` needs a restart and is reported by the
/// sources instead.
pub async fn wanted_settings(server: &mut Server) -> Result<Vec<Setting>> {
    let f = read(server, "").await?;
    let flavour = server.info.flavour;
    let mut out = Vec::new();
    if f.pfs {
        let mut wanted = vec![
            ("global_instrumentation", "every other consumer depends on it"),
            ("thread_instrumentation", "per-connection statements and status depend on it"),
            ("events_statements_current", "the statement history records nothing without it"),
            ("events_statements_history", "names the statement, table and digest of each privilege error; counts post-cut statements"),
            ("statements_digest", "digests identify statements without their text"),
        ];
        if flavour == Flavour::MySql {
            wanted.push((
                "events_statements_history_long",
                "keeps statements of connections that closed between two polls (collateral errors)",
            ));
        }
        for (name, why) in wanted {
            if !f.consumer(name) {
                out.push(Setting::consumer(name, why));
            }
        }
    }
    if flavour == Flavour::MariaDb && !f.userstat {
        out.push(Setting::global(
            "userstat",
            "1",
            "0",
            "USER_STATISTICS counts refused logins (DENIED_CONNECTIONS) per user, and denied accesses and rows per user when performance_schema is off",
        ));
    }
    Ok(out)
}
