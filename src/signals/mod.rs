//! Watchers: while a guided session holds an account cut off some tables, a [`Monitor`] per
//! server polls every source that can show the cut hurting someone, and says how much the
//! account worked meanwhile (a quiet window proves nothing).
//!
//! One [`Monitor::poll`] reads each source once (four or five small queries and the new bytes
//! of the watched files) and returns the [`Alarm`]s that are new since the previous poll plus
//! the cumulative [`Activity`]. What each alarm means for the session is decided there, not
//! here: every alarm kind is a reason to restore.
//!
//! # Sources
//!
//! | source | flavour | sees | blind spots |
//! | --- | --- | --- | --- |
//! | `events_errors_summary_by_account_by_error` | MySQL | privilege errors per account and error number, raised and handled (a handler inside a routine hides them from the client), failed logins | no table, no statement; accounts excluded in `setup_actors` are not counted (seen: an excluded account's 1142 left the row unchanged) |
//! | `events_statements_history` (`_long` when its consumer is on) | MySQL; MariaDB when `events_statements_current` *and* `_history` are on (both off by default in 10.11, and history records nothing without current) | the failing statement: error, message, digest, text; statements of the account's post-cut connections; errors of other accounts naming the account, a cut table or a dependent (collateral) | keeps 10 statements per thread by default; rows vanish with their connection (except `_long`), so a connection that opens and closes between two polls is not seen here |
//! | `status_by_thread` + `status_by_account` | both, with `performance_schema=ON` | per connection and per account: statements (`Questions`), handler calls (`Handler_read_*`, `_write`, `_update`, `_delete`: none for pings, `SET`, `SELECT 1`), MariaDB's `Access_denied_errors`; the account rows keep closed connections' totals, so short-lived connections count | handler calls come from any table (information_schema, `SHOW`) and a poll interval's pings count along with a table statement (the count is `min(statements, handler calls)`); some answers need no row (MyISAM `COUNT(*)`); the activity of connections that closed in a poll interval in which a pre-cut connection also closed cannot be told apart and is dropped |
//! | `sql_errlog` file | MariaDB, when readable locally | every failed statement: user, client host, error, message with the schema-qualified table, query text (also `USE` via `COM_INIT_DB`, shown as `(null)`) | remote servers; `sql_error_log_rate` > 1 samples; lines written inside a definer's security context name the definer (host and ip are the definer's host pattern), not the caller |
//! | `USER_STATISTICS` | MariaDB with `userstat=1` and `performance_schema=OFF` | `ACCESS_DENIED` per user; rows read and written per user (activity) | no host, no table; `ACCESS_DENIED` counts table denials of SELECT and DML (and the 1142 under a definer view) but not 1044, 1143, 1345, 1370 nor `SHOW`'s 1142 (seen on 10.11); activity is counted only while no pre-cut connection is open, and reads of empty tables count nothing |
//! | `performance_schema.threads` / `information_schema.PROCESSLIST` | both | the account's open connections; per-connection instrumentation (`INSTRUMENTED`, `HISTORY`) | none |
//! | `Uptime` and the connection itself | both | restarts: `Uptime` went down or is lower than the time since the previous poll allows, or a reconnect got a lower processlist id (ids only grow until a restart); a dropped connection is reconnected once per poll, and a poll that cannot reconnect fails | none |
//! | application logs | any | new lines matching a pattern | lines written while the file was replaced faster than one poll |
//!
//! Each error raises one alarm whichever sources see it: counters and detail rows are matched
//! (`tally`). Citations carry digests, table names and error messages, never statement text;
//! the text goes to [`Alarm::statement`], which is never serialized.
//!
//! Denied logins are alarms ([`AlarmKind::LoginDenied`]): a refused default database (1044), a
//! refused login (1045, 1698), a locked account (3118, 4151), a default role that can no longer
//! be activated (1959). An application whose every reconnect fails runs no statement at all, so
//! its failed logins are the only sign of it; they are also counted in
//! [`Activity::failed_logins`] for the status line. Sources: MySQL's error summary (per account
//! and error number) and `performance_schema.error_log`; MariaDB's
//! `USER_STATISTICS.DENIED_CONNECTIONS` (with `userstat=1`, performance_schema on or off), the
//! sql_errlog file, server_audit's `FAILED_CONNECT` lines and the error log's `Access denied`
//! warnings (files, when readable here). A failed login's thread never counts as activity: only
//! connections seen past their login (`PROCESSLIST_COMMAND` other than `Connect`) do.
//!
//! # Layout
//!
//! - `monitor`: [`Monitor`]: start, poll (with reconnect and restart detection), close;
//!   `monitor::read`: the per-source readers of a poll.
//! - `discover`: what a server offers (performance_schema, consumers, actors, userstat, plugin),
//!   the [`SourceInfo`] list, and [`wanted_settings`].
//! - `pfs`: the performance_schema readers: error summary, statement history, status counters.
//! - `userstat`: MariaDB's `USER_STATISTICS` and `PROCESSLIST` (no performance_schema).
//! - `errors`: which error numbers count, what their messages name, whose error it is.
//! - `tally`: one alarm per error, whichever source (counter or detail) sees it first.
//! - `activity`: statements of post-cut connections, from history rows and status counters.
//! - `logins`: refused connection attempts (server_audit, error logs), and finding a local
//!   server's log files.
//! - `errlog`, `applog`, `tail`: following files across rotation and partial lines.

mod activity;
mod applog;
mod codes;
mod discover;
mod errlog;
mod errors;
pub mod logins;
mod monitor;
mod pfs;
mod tail;
mod tally;
mod userstat;

pub use discover::{wanted_settings, Setting};
pub use errors::{LOGIN_ERRORS, PRIVILEGE_ERRORS};
pub use monitor::Monitor;

use crate::model::TableName;
use serde::{Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

/// What a monitor watches: one account (every host row of its user name) and the objects the
/// cut is about.
#[derive(Debug, Clone, Serialize)]
pub struct WatchTarget {
    /// The account's user name; every host row of it is watched.
    pub user: String,
    /// The service's tables that were cut.
    pub tables: Vec<TableName>,
    /// Views (and routines, as `schema.name`) that read those tables: another account's error
    /// naming one of them is collateral damage.
    pub dependents: Vec<TableName>,
    /// Connections with a processlist id at or above this were opened after the cut: only
    /// their statements count as activity (earlier ones may still hold cached privileges).
    pub since_connection: u64,
}

/// Files a monitor follows besides the server's own tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalFiles {
    /// MariaDB's sql_errlog file when it is readable locally: followed as it grows.
    pub sql_errlog: Option<PathBuf>,
    /// MariaDB's server_audit file (with `CONNECT` events): its `FAILED_CONNECT` lines.
    pub audit_log: Option<PathBuf>,
    /// MariaDB's error log: its `Access denied for user` warnings.
    pub error_log: Option<PathBuf>,
    /// Application log files: a line appended after the start that matches the pattern is an
    /// alarm.
    #[serde(serialize_with = "app_logs_as_patterns")]
    pub app_logs: Vec<(PathBuf, regex::Regex)>,
}

fn app_logs_as_patterns<S: Serializer>(logs: &[(PathBuf, regex::Regex)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(logs.iter().map(|(p, r)| (p, r.as_str())))
}

/// One signal source of a monitor, for the session's report: what it sees and what it cannot.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// Stable name, the same as [`Alarm::source`] for its alarms.
    pub name: String,
    /// What the source sees.
    pub covers: String,
    /// What it cannot see (or why it is unavailable).
    pub blind_spots: Vec<String>,
    /// False when the source cannot be read at all on this server (its blind spots say why).
    pub available: bool,
    /// It sees refused connection attempts of the account (see [`reports_logins`]).
    pub logins: bool,
}

/// What one poll found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Poll {
    /// Alarms that are new since the previous poll.
    pub alarms: Vec<Alarm>,
    /// Activity of the account since the start (cumulative).
    pub activity: Activity,
    /// How long the poll took.
    pub took: Duration,
}

/// What the watched account did since the start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Activity {
    /// Statements from post-cut connections of the account that touched tables, proven by
    /// statement history rows (pool pings, `SET`, `SHOW`, table-less and system-schema
    /// `SELECT`s do not count). The only activity that can pass a window.
    pub statements: u64,
    /// Activity of post-cut connections that counters show but no statement source ties to a
    /// table (see `activity`): reported, never a pass.
    pub unattributed: u64,
    /// Sample rows behind [`Activity::unattributed`].
    pub unattributed_cited: Vec<String>,
    /// Privilege errors of the account seen so far.
    pub errors: u64,
    /// Connections of the account open now (pre-cut ones included).
    pub connections: u32,
    /// Denied connection attempts of the account seen so far (each also raised an alarm).
    pub failed_logins: u64,
    /// Up to [`CITED_MAX`] sample rows proving the activity: source and row, digests and table
    /// names, never statement text.
    pub cited: Vec<String>,
}

/// How many sample rows [`Activity::cited`] keeps.
pub const CITED_MAX: usize = 5;

/// Why an alarm was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AlarmKind {
    /// The watched account hit a privilege error (from any host row, on any object).
    PrivilegeError,
    /// A connection attempt of the watched account was refused (a default database it may no
    /// longer use, a refused login, a locked account) or started without its default role.
    LoginDenied,
    /// Another account hit a privilege error that names the watched account (a definer), a cut
    /// table or a dependent.
    Collateral,
    /// A counter went down: someone truncated or flushed it, so errors may have been missed.
    CounterReset,
    /// The server restarted: every counter started again, and connections were dropped.
    Restart,
    /// An application log line matched its pattern.
    AppLog,
    /// A setting a source relies on (a statement consumer, MariaDB's `userstat`) was turned off
    /// during the window, by another privfence session ending or by an operator: that source
    /// went silent, so silence no longer means nothing happened.
    SettingOff,
}

impl AlarmKind {
    /// In words, for reasons and status lines.
    pub fn describe(self) -> &'static str {
        match self {
            AlarmKind::PrivilegeError => "privilege error",
            AlarmKind::LoginDenied => "refused login",
            AlarmKind::Collateral => "collateral privilege error",
            AlarmKind::CounterReset => "counter reset",
            AlarmKind::Restart => "server restart",
            AlarmKind::AppLog => "application log line",
            AlarmKind::SettingOff => "a setting the watch relies on was turned off",
        }
    }
}

/// One abnormality.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// The monitor's name (`primary` or a replica's name).
    pub server: String,
    /// The source, as named in [`SourceInfo::name`] (`sql_errlog`, `USER_STATISTICS`, ...).
    pub source: String,
    /// `'user'@'host'` as the source reports it.
    pub account: Option<String>,
    /// The error number (1142, ...).
    pub error: Option<u32>,
    /// The table, view, routine or schema the message names, when known.
    pub object: Option<String>,
    /// The statement digest, where the source has one.
    pub digest: Option<String>,
    /// The statement text or the matching log line: for the screen only. Never serialized:
    /// it may carry personal data, and the session never writes it to reports or journals.
    #[serde(skip)]
    pub statement: Option<String>,
    /// The signal row as evidence, without statement text.
    pub cited: String,
    /// How many errors (or lines) the alarm stands for: a counter can rise by more than one
    /// between two polls.
    pub count: u64,
}

/// Whether a source reports privilege errors: without one available, a watch is blind.
pub fn reports_errors(s: &SourceInfo) -> bool {
    if !s.available {
        return false;
    }
    matches!(s.name.as_str(), pfs::ERROR_SUMMARY | pfs::STATUS | errlog::SOURCE | userstat::USER_STATISTICS)
        || s.name.starts_with("performance_schema.events_statements_history")
}

/// Whether a source sees the account's refused connection attempts. Without one on a server,
/// an application that can no longer log in there is invisible (it runs no statement at all).
pub fn reports_logins(s: &SourceInfo) -> bool {
    s.available && s.logins
}
