//! performance_schema readers: MySQL's error summary, the statement history (both flavours),
//! and the status counters per connection and per account. Each is one query per poll.

use super::codes::{sql_list, LOGIN_ERRORS, PRIVILEGE_ERRORS};
use crate::db::server::{opt_text, text};
use crate::db::Server;
use crate::error::Result;
use crate::model::ident::quote_str;
use mysql_async::Row;
use std::collections::BTreeMap;

/// Source names, as alarms and [`super::SourceInfo`] carry them.
pub const ERROR_SUMMARY: &str = "performance_schema.events_errors_summary_by_account_by_error";
pub const STATUS: &str = "performance_schema.status_by_account";

/// Column `i` as an unsigned number (NULL, negative or unreadable: 0).
pub fn num(row: &Row, i: usize) -> u64 {
    opt_text(row, i).and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0)
}

/// One row of MySQL's `events_errors_summary_by_account_by_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    pub user: String,
    pub host: String,
    pub code: u32,
    pub name: String,
    pub raised: u64,
    pub handled: u64,
}

/// The user's summary rows (every host) for the watched and login error numbers, nonzero
/// only. Restricted to the user, the table's index answers in about 1 ms; the whole table
/// (every account times some 5000 error numbers) took 7 ms on an idle sandbox.
pub async fn error_summary(server: &mut Server, user: &str) -> Result<Vec<ErrorRow>> {
    let codes: Vec<u32> = PRIVILEGE_ERRORS.iter().chain(&LOGIN_ERRORS).copied().collect();
    let sql = format!(
        "SELECT USER, HOST, ERROR_NUMBER, ERROR_NAME, SUM_ERROR_RAISED, SUM_ERROR_HANDLED \
         FROM performance_schema.events_errors_summary_by_account_by_error \
         WHERE USER = {} AND ERROR_NUMBER IN ({}) AND SUM_ERROR_RAISED + SUM_ERROR_HANDLED > 0",
        quote_str(user),
        sql_list(&codes)
    );
    let rows = server.rows("reading the error summary", &sql).await?;
    Ok(rows
        .iter()
        .map(|r| ErrorRow {
            user: text(r, 0),
            host: text(r, 1),
            code: num(r, 2) as u32,
            name: text(r, 3),
            raised: num(r, 4),
            handled: num(r, 5),
        })
        .collect())
}

/// One finished statement from the statement history.
#[derive(Debug, Clone, Default)]
pub struct HistoryRow {
    pub thread_id: u64,
    pub event_id: u64,
    pub event_name: String,
    pub schema: Option<String>,
    pub digest: Option<String>,
    pub digest_text: Option<String>,
    /// Only fetched for failed statements and those without a digest text.
    pub sql_text: Option<String>,
    pub errno: u32,
    pub message: Option<String>,
    /// Not nested in a stored program (a statement the client sent).
    pub top_level: bool,
    /// From `threads`; `None` when the connection has closed (`_long` rows).
    pub processlist_id: Option<u64>,
    pub user: Option<String>,
    pub host: Option<String>,
}

/// Rows of the statement history (`table`: `events_statements_history` or `_long`) that are
/// privilege errors of anyone, or statements of the watched user's connections with a
/// processlist id at or above `since` (or in `threads`, connections seen earlier that may have
/// closed). The monitor's own thread is left out.
pub async fn history(
    server: &mut Server,
    table: &str,
    own_thread: u64,
    user: &str,
    since: u64,
    threads: &[u64],
) -> Result<Vec<HistoryRow>> {
    let known = if threads.is_empty() { String::new() } else { format!(" OR h.THREAD_ID IN ({})", sql_list_u64(threads)) };
    let sql = format!(
        "SELECT h.THREAD_ID, h.EVENT_ID, h.EVENT_NAME, h.CURRENT_SCHEMA, h.DIGEST, h.DIGEST_TEXT, \
         IF(h.MYSQL_ERRNO <> 0 OR h.DIGEST_TEXT IS NULL, h.SQL_TEXT, NULL), h.MYSQL_ERRNO, h.MESSAGE_TEXT, \
         h.NESTING_EVENT_ID IS NULL, t.PROCESSLIST_ID, t.PROCESSLIST_USER, t.PROCESSLIST_HOST \
         FROM performance_schema.{table} h LEFT JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID \
         WHERE h.THREAD_ID <> {own_thread} AND h.END_EVENT_ID IS NOT NULL \
         AND (h.MYSQL_ERRNO IN ({codes}) OR (t.PROCESSLIST_USER = {u} AND t.PROCESSLIST_ID >= {since}){known})",
        codes = sql_list(&PRIVILEGE_ERRORS),
        u = quote_str(user),
    );
    let rows = server.rows("reading the statement history", &sql).await?;
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            thread_id: num(r, 0),
            event_id: num(r, 1),
            event_name: text(r, 2),
            schema: opt_text(r, 3),
            digest: opt_text(r, 4),
            digest_text: opt_text(r, 5),
            sql_text: opt_text(r, 6),
            errno: num(r, 7) as u32,
            message: opt_text(r, 8),
            top_level: num(r, 9) == 1,
            processlist_id: opt_text(r, 10).and_then(|s| s.parse().ok()),
            user: opt_text(r, 11),
            host: opt_text(r, 12),
        })
        .collect())
}

fn sql_list_u64(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// The status variables whose sum is [`Counts::handler`].
const HANDLER_CALLS: [&str; 10] = [
    "Handler_read_first",
    "Handler_read_key",
    "Handler_read_last",
    "Handler_read_next",
    "Handler_read_prev",
    "Handler_read_rnd",
    "Handler_read_rnd_next",
    "Handler_write",
    "Handler_update",
    "Handler_delete",
];

/// Status counters that matter here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Statements the client sent (`Questions`).
    pub questions: u64,
    /// Handler calls: rows read, written, updated, deleted (`Handler_read_*`, `Handler_write`,
    /// `Handler_update`, `Handler_delete`). Zero for pings, `SET`, `SELECT 1`; at least one for
    /// a statement that reads or writes a table, even an empty one. (The table-open counters
    /// would do per connection, but MariaDB does not add them to the account when a
    /// connection closes: seen on 10.11.)
    pub handler: u64,
    /// MariaDB's `Access_denied_errors` (MySQL has none per account).
    pub denied: u64,
}

impl Counts {
    fn add(&mut self, name: &str, v: u64) {
        match name {
            "Questions" => self.questions += v,
            n if HANDLER_CALLS.contains(&n) => self.handler += v,
            "Access_denied_errors" => self.denied += v,
            _ => {}
        }
    }
}

/// One open connection of the watched user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadStat {
    pub processlist_id: u64,
    pub host: String,
    /// `PROCESSLIST_COMMAND`: `Connect` while the login is under way.
    pub command: String,
    /// `threads.INSTRUMENTED` and `HISTORY`: `setup_actors` can turn either off per account.
    pub instrumented: bool,
    pub history: bool,
    pub counts: Counts,
}

impl ThreadStat {
    /// The connection is past its login: a thread in its handshake (`Connect`, or no command
    /// yet) may still be refused.
    pub fn logged_in(&self) -> bool {
        !self.command.is_empty() && self.command != "Connect"
    }
}

/// The watched user's connections (by thread id) and its accounts' totals (by client host),
/// read in one statement so both describe the same moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSnapshot {
    pub threads: BTreeMap<u64, ThreadStat>,
    pub accounts: BTreeMap<String, Counts>,
}

impl StatusSnapshot {
    /// The totals of every host of the user.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.accounts.values() {
            t.questions += c.questions;
            t.handler += c.handler;
            t.denied += c.denied;
        }
        t
    }
}

/// Reads the status counters of the user's connections and accounts.
pub async fn status(server: &mut Server, user: &str) -> Result<StatusSnapshot> {
    let u = quote_str(user);
    let names = ["Questions", "Access_denied_errors"].iter().chain(&HANDLER_CALLS).map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT 'a', 0, 0, a.HOST, '', '', a.VARIABLE_NAME, a.VARIABLE_VALUE, '' FROM performance_schema.status_by_account a \
         WHERE a.USER = {u} AND a.VARIABLE_NAME IN ({names}) \
         UNION ALL \
         SELECT 't', t.THREAD_ID, t.PROCESSLIST_ID, t.PROCESSLIST_HOST, t.INSTRUMENTED, t.HISTORY, s.VARIABLE_NAME, s.VARIABLE_VALUE, \
         IFNULL(t.PROCESSLIST_COMMAND, '') \
         FROM performance_schema.threads t LEFT JOIN performance_schema.status_by_thread s \
         ON s.THREAD_ID = t.THREAD_ID AND s.VARIABLE_NAME IN ({names}) WHERE t.PROCESSLIST_USER = {u}"
    );
    let rows = server.rows("reading status counters", &sql).await?;
    let mut snap = StatusSnapshot::default();
    for r in &rows {
        let name = text(r, 6);
        let value = num(r, 7);
        if text(r, 0) == "a" {
            snap.accounts.entry(text(r, 3)).or_default().add(&name, value);
        } else {
            let t = snap.threads.entry(num(r, 1)).or_insert_with(|| ThreadStat {
                processlist_id: num(r, 2),
                host: text(r, 3),
                command: text(r, 8),
                instrumented: text(r, 4) == "YES",
                history: text(r, 5) == "YES",
                counts: Counts::default(),
            });
            t.counts.add(&name, value);
        }
    }
    Ok(snap)
}

/// The server's `Uptime` in seconds.
pub async fn uptime(server: &mut Server) -> Result<u64> {
    let row: Option<(String, String)> = server.first("reading Uptime", "SHOW GLOBAL STATUS LIKE 'Uptime'").await?;
    Ok(row.and_then(|(_, v)| v.parse().ok()).unwrap_or(0))
}

/// This connection's thread id in performance_schema (0 without performance_schema).
pub async fn own_thread(server: &mut Server) -> Result<u64> {
    let row: Option<u64> = server
        .first("reading the monitor's thread id", "SELECT THREAD_ID FROM performance_schema.threads WHERE PROCESSLIST_ID = CONNECTION_ID()")
        .await?;
    Ok(row.unwrap_or(0))
}
