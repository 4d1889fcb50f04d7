//! Refused connection attempts: sources that see an application that can no longer log in.
//!
//! An application whose every reconnect fails runs no statement, so no statement source sees
//! it; only what the server records about the failed handshake does. Seen on MariaDB 10.11 and
//! MySQL 9.7 (a default database refused at login, a wrong password, a locked account):
//!
//! ```text
//! server_audit (MariaDB, server_audit_events with CONNECT):
//!   20261205 17:37:59,vm,analyst,localhost,12,0,FAILED_CONNECT,,,1044
//! error log (MariaDB, log_warnings >= 2, the default):
//!   2026-12-05 17:37:59 10 [Warning] Access denied for user 'analyst'@'%' to database 'shop'
//!   2026-12-05 17:37:57 5 [Warning] Access denied for user 'analyst'@'localhost' (using password: YES)
//! performance_schema.error_log (MySQL 8.0.22+, log_error_verbosity = 3):
//!   Note MY-010914 Access denied for user 'analyst'@'%' to database 'shop'
//!   Note MY-010926 Access denied for user 'analyst'@'localhost' (using password: YES)
//! ```
//!
//! `USER_STATISTICS.DENIED_CONNECTIONS` (MariaDB) and MySQL's error summary count the same
//! attempts per user and per account; they are read with the other counters (`monitor::read`).
//! Neither `status_by_account` nor `performance_schema.accounts` counts them, and a failed
//! login's thread never shows the account's name in `performance_schema.threads` (seen on
//! 10.11).
//!
//! Files are found from the server's own settings when the server runs on this machine
//! ([`discover_files`]): its pid file names a live process here.

use super::errors::{error_name, Sighting};
use super::tail::{Line, Tail};
use crate::db::server::{opt_text, text};
use crate::db::{Flavour, Server};
use crate::error::Result;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// Source names.
pub const AUDIT_LOG: &str = "server_audit";
pub const ERROR_LOG_FILE: &str = "error log";
pub const ERROR_LOG_TABLE: &str = "performance_schema.error_log";
pub const DENIED_CONNECTIONS: &str = "information_schema.USER_STATISTICS.DENIED_CONNECTIONS";

/// A server_audit line: `ts,serverhost,user,host,connid,queryid,op,db,object,retcode`. The user
/// name may hold commas; the host, the numbers and the operation cannot.
pub fn parse_audit_line(line: &str) -> Option<(String, String, u32)> {
    let (_, tail) = line.split_once(',').and_then(|(_, rest)| rest.split_once(','))?;
    let fields: Vec<&str> = tail.rsplitn(8, ',').collect();
    // fields (reversed): retcode, object, db, op, queryid, connid, host, user...
    if fields.len() != 8 || fields[3] != "FAILED_CONNECT" {
        return None;
    }
    let code = fields[0].trim().parse().ok()?;
    Some((fields[7].to_string(), fields[6].to_string(), code))
}

static DENIED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Access denied for user '((?:[^'\\]|\\.)*)'@'((?:[^'\\]|\\.)*)'(?:\.? ?(?P<locked>Account is locked)| to database '(?P<db>[^']*)'| \(using password)?")
        .expect("valid regex")
});

/// An `Access denied` message of a failed login: (user, host, error number).
pub fn parse_denied(message: &str) -> Option<(String, String, u32)> {
    let c = DENIED.captures(message)?;
    let code = if c.name("locked").is_some() {
        3118
    } else if c.name("db").is_some() {
        1044
    } else {
        1045
    };
    Some((c[1].to_string(), c[2].to_string(), code))
}

fn sighting(source: &str, at: String, user: String, host: String, code: u32, message: String) -> Sighting {
    let cited = format!("{source} ({at}): '{user}'@'{host}' ERROR {code} {}: {message}", error_name(code));
    Sighting { source: source.into(), user: Some(user), host: Some(host), code, message, cited, login: true, ..Default::default() }
}

/// A followed log file that reports refused logins.
#[derive(Debug)]
pub struct LoginLog {
    tail: Tail,
    /// [`AUDIT_LOG`] or [`ERROR_LOG_FILE`]: which parser reads its lines.
    kind: &'static str,
}

impl LoginLog {
    /// Starts at the file's current end.
    pub fn open(path: &Path, kind: &'static str) -> std::io::Result<LoginLog> {
        Ok(LoginLog { tail: Tail::at_end(path)?, kind })
    }

    pub fn source(&self) -> &'static str {
        self.kind
    }

    pub fn path(&self) -> &Path {
        self.tail.path()
    }

    /// Refused logins appended since the previous read.
    pub fn read(&mut self) -> std::io::Result<Vec<Sighting>> {
        let lines = self.tail.read_lines()?;
        let file = self.tail.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(lines.into_iter().filter_map(|l| self.parse(&l, &file)).collect())
    }

    fn parse(&self, l: &Line, file: &str) -> Option<Sighting> {
        let at = l.number.map(|n| format!("{file} line {n}")).unwrap_or_else(|| file.to_string());
        if self.kind == AUDIT_LOG {
            let (user, host, code) = parse_audit_line(&l.text)?;
            let message = format!("FAILED_CONNECT with error {code}");
            return Some(sighting(AUDIT_LOG, at, user, host, code, message));
        }
        let start = l.text.find("Access denied for user")?;
        let message = l.text[start..].trim_end().to_string();
        let (user, host, code) = parse_denied(&message)?;
        Some(sighting(ERROR_LOG_FILE, at, user, host, code, message))
    }
}

/// MySQL's `performance_schema.error_log`: refused logins logged after `after` (a `LOGGED`
/// value), oldest first, and the newest `LOGGED` seen.
pub async fn error_log_rows(server: &mut Server, after: &str) -> Result<(Vec<Sighting>, Option<String>)> {
    let sql = format!(
        "SELECT CAST(LOGGED AS CHAR), ERROR_CODE, DATA FROM performance_schema.error_log \
         WHERE LOGGED > {} AND DATA LIKE 'Access denied for user %' ORDER BY LOGGED",
        crate::model::ident::quote_str(after)
    );
    let rows = server.rows("reading performance_schema.error_log", &sql).await?;
    let mut out = Vec::new();
    let mut last = None;
    for r in &rows {
        let (logged, code, data) = (text(r, 0), text(r, 1), text(r, 2));
        if let Some((user, host, n)) = parse_denied(&data) {
            out.push(sighting(ERROR_LOG_TABLE, format!("{code} at {logged}"), user, host, n, data.clone()));
        }
        last = Some(logged);
    }
    Ok((out, last))
}

/// The newest `LOGGED` of MySQL's error log (the baseline), or a time far in the past.
pub async fn error_log_now(server: &mut Server) -> Result<String> {
    let rows =
        server.rows("reading performance_schema.error_log", "SELECT CAST(MAX(LOGGED) AS CHAR) FROM performance_schema.error_log").await?;
    Ok(rows.first().and_then(|r| opt_text(r, 0)).unwrap_or_else(|| "1970-01-01 00:00:00".into()))
}

/// Log files of a server that runs on this machine: its sql_errlog file, server_audit file
/// and error log, each when the server writes it and it is readable here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalFiles {
    pub sql_errlog: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub error_log: Option<PathBuf>,
}

/// Finds the log files of a MariaDB server on this machine. A server elsewhere (its pid file
/// names no live process here) has none: a file at the same path would be another server's.
pub async fn discover_files(server: &mut Server) -> Result<LocalFiles> {
    let mut out = LocalFiles::default();
    if server.info.flavour != Flavour::MariaDb {
        return Ok(out);
    }
    let row = server
        .rows("reading the server's files", "SELECT @@GLOBAL.datadir, @@GLOBAL.pid_file, @@GLOBAL.log_error, @@GLOBAL.log_warnings")
        .await?;
    let Some(r) = row.first() else { return Ok(out) };
    let datadir = PathBuf::from(text(r, 0));
    let at = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            datadir.join(p)
        }
    };
    if !pid_is_live(&at(&text(r, 1))) {
        return Ok(out);
    }
    let readable = |p: PathBuf| std::fs::File::open(&p).is_ok().then_some(p);
    let warnings: u64 = text(r, 3).parse().unwrap_or(0);
    if warnings >= 2 {
        out.error_log = opt_text(r, 2).filter(|p| !p.is_empty()).and_then(|p| readable(at(&p)));
    }
    let plugins: Vec<(String, String)> = server
        .rows_as(
            "reading plugins",
            "SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME IN ('SQL_ERROR_LOG', 'SERVER_AUDIT')",
        )
        .await?;
    let active = |n: &str| plugins.iter().any(|(p, s)| p == n && s == "ACTIVE");
    if active("SQL_ERROR_LOG") {
        let f: Option<String> = server.first("reading sql_error_log_filename", "SELECT @@GLOBAL.sql_error_log_filename").await?;
        out.sql_errlog = f.and_then(|p| readable(at(&p)));
    }
    if active("SERVER_AUDIT") {
        let row: Option<(String, String, String, String)> = server
            .first(
                "reading server_audit settings",
                "SELECT @@GLOBAL.server_audit_logging, @@GLOBAL.server_audit_output_type, @@GLOBAL.server_audit_events, @@GLOBAL.server_audit_file_path",
            )
            .await?;
        if let Some((on, output, events, path)) = row {
            let connects = events.is_empty() || events.to_ascii_uppercase().split(',').any(|e| e == "CONNECT");
            if on == "ON" && output.eq_ignore_ascii_case("file") && connects {
                let path = if path.is_empty() { "server_audit.log".to_string() } else { path };
                out.audit_log = readable(at(&path));
            }
        }
    }
    Ok(out)
}

/// The pid file names a process running on this machine.
fn pid_is_live(pid_file: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(pid_file) else { return false };
    let Ok(pid) = pid.trim().parse::<u32>() else { return false };
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("mariadbd") || String::from_utf8_lossy(&c).contains("mysqld"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines() {
        assert_eq!(
            parse_audit_line("20261205 17:37:59,vm,analyst,localhost,12,0,FAILED_CONNECT,,,1044"),
            Some(("analyst".into(), "localhost".into(), 1044))
        );
        assert_eq!(
            parse_audit_line("20261205 17:37:59,vm,we,ird,127.0.0.1,12,0,FAILED_CONNECT,shop,,1045"),
            Some(("we,ird".into(), "127.0.0.1".into(), 1045))
        );
        assert_eq!(parse_audit_line("20261205 17:37:59,vm,analyst,localhost,12,0,CONNECT,,,0"), None);
        assert_eq!(parse_audit_line("garbage"), None);
    }

    #[test]
    fn denied_messages() {
        assert_eq!(parse_denied("Access denied for user 'analyst'@'%' to database 'shop'"), Some(("analyst".into(), "%".into(), 1044)));
        assert_eq!(
            parse_denied("Access denied for user 'analyst'@'localhost' (using password: YES)"),
            Some(("analyst".into(), "localhost".into(), 1045))
        );
        assert_eq!(
            parse_denied("Access denied for user 'analyst'@'localhost'. Account is locked."),
            Some(("analyst".into(), "localhost".into(), 3118))
        );
        assert_eq!(parse_denied("Aborted connection 5 to db"), None);
    }
}
