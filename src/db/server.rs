//! An open, read-only-by-convention connection to one server, with what we detected about it.
//!
//! Every privfence session on a server starts here: connect without a default database, pin the
//! session's `sql_mode` quoting rules (no `ANSI_QUOTES`, no `NO_BACKSLASH_ESCAPES`) so rendered
//! SQL means what it says, and detect flavour and version. Writes to servers do not go through
//! this type's query helpers: they belong to the journaling executor.
#![allow(clippy::disallowed_methods)] // the typed read paths and the one write path (clippy.toml)

use super::conn::{ConnectSpec, SslMode};
use super::flavour::{ServerInfo, Version};
use crate::error::{Error, Result};
use crate::model::AccountName;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts};

/// A connected server.
pub struct Server {
    conn: Conn,
    pub info: ServerInfo,
    /// `user@host:port` for messages; never a password.
    pub target: String,
    /// The account privfence is logged in as (`CURRENT_USER()`), for privilege checks.
    pub current_user: AccountName,
    /// How this connection was made, to open another one for concurrent reads (its password
    /// is a `Secret`, which never prints).
    spec: ConnectSpec,
}

/// Builds driver options. TLS per `ssl_mode`; `Preferred` is handled by the caller's retry.
fn driver_opts(spec: &ConnectSpec, tls: bool, row_writer: bool) -> Opts {
    let mut b = OptsBuilder::default()
        .user(Some(spec.user.clone()))
        .pass(spec.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(None::<String>)
        .prefer_socket(false)
        .stmt_cache_size(if row_writer { 32 } else { 0 })
        .client_found_rows(row_writer)
        .wait_timeout(Some(28_800));
    b = match &spec.socket {
        Some(s) => b.socket(Some(s.to_string_lossy().into_owned())),
        None => b.ip_or_hostname(spec.host.clone()).tcp_port(spec.port),
    };
    if tls && spec.socket.is_none() {
        let mut ssl = SslOpts::default();
        if let Some(ca) = &spec.ssl_ca {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        let (accept_invalid, skip_domain) = match spec.ssl_mode {
            SslMode::Preferred | SslMode::Required => (spec.ssl_ca.is_none(), true),
            SslMode::VerifyCa => (false, true),
            _ => (false, false),
        };
        ssl = ssl.with_danger_accept_invalid_certs(accept_invalid).with_danger_skip_domain_validation(skip_domain);
        b = b.ssl_opts(Some(ssl));
    }
    b.into()
}

async fn open(spec: &ConnectSpec) -> Result<Conn> {
    open_as(spec, false).await
}

/// `row_writer`: found-rows semantics (an `UPDATE` reports the rows it matched, so one that
/// sets identical values still counts) and a small prepared-statement cache, for sync-back's
/// row writer, which checks every statement's row count.
async fn open_as(spec: &ConnectSpec, row_writer: bool) -> Result<Conn> {
    let connect = |tls: bool| async move {
        match tokio::time::timeout(spec.connect_timeout, Conn::new(driver_opts(spec, tls, row_writer))).await {
            Ok(r) => r,
            Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?} (--connect-timeout)", spec.connect_timeout),
            )))),
        }
    };
    let wrap = |source| Error::Connect { target: spec.target(), source };
    match spec.ssl_mode {
        SslMode::Disabled => connect(false).await.map_err(wrap),
        SslMode::Preferred if spec.socket.is_none() => match connect(true).await {
            Ok(c) => Ok(c),
            // The server offers no TLS (or the handshake failed): the client's default falls back.
            Err(mysql_async::Error::Driver(_)) | Err(mysql_async::Error::Io(_)) => connect(false).await.map_err(wrap),
            Err(e) => Err(wrap(e)),
        },
        _ => connect(true).await.map_err(wrap),
    }
}

/// A bare driver connection made as [`Server::connect`] makes its own, for a connection that
/// becomes a binary log stream (sync-back's reader), which no query helper may use afterwards.
pub(crate) async fn raw_conn(spec: &ConnectSpec) -> Result<Conn> {
    open(spec).await
}

impl Server {
    /// Connects, pins the session's quoting rules and detects the server.
    pub async fn connect(spec: &ConnectSpec) -> Result<Server> {
        Server::connect_as(spec, false).await
    }

    /// A connection for sync-back's row writer: [`connect`](Self::connect) with found-rows
    /// semantics and a prepared-statement cache ([`open_as`]).
    pub async fn connect_row_writer(spec: &ConnectSpec) -> Result<Server> {
        Server::connect_as(spec, true).await
    }

    async fn connect_as(spec: &ConnectSpec, row_writer: bool) -> Result<Server> {
        let mut conn = open_as(spec, row_writer).await?;
        let target = spec.target();
        let q = |what: &str, source| Error::Query { what: what.into(), target: target.clone(), source };
        let trace = |sql: &str| super::redact::trace(&target, sql);
        trace("SET NAMES utf8mb4");
        trace("SELECT @@SESSION.sql_mode");
        conn.query_drop("SET NAMES utf8mb4").await.map_err(|e| q("SET NAMES", e))?;
        let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await.map_err(|e| q("reading sql_mode", e))?;
        let kept: Vec<&str> = mode
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|m| {
                !m.is_empty()
                    && !matches!(*m, "ANSI_QUOTES" | "NO_BACKSLASH_ESCAPES" | "ANSI" | "ORACLE" | "MSSQL" | "DB2" | "POSTGRESQL" | "MAXDB")
            })
            .collect();
        trace(&format!("SET SESSION sql_mode = '{}'", kept.join(",")));
        trace("SELECT @@version, @@version_comment, @@basedir, @@lower_case_table_names, CURRENT_USER()");
        conn.query_drop(format!("SET SESSION sql_mode = '{}'", kept.join(","))).await.map_err(|e| q("setting sql_mode", e))?;
        let row: Option<(String, String, Option<String>, u8, String)> = conn
            .query_first("SELECT @@version, @@version_comment, @@basedir, @@lower_case_table_names, CURRENT_USER()")
            .await
            .map_err(|e| q("detecting the server version", e))?;
        let (version, comment, basedir, lctn, current) = row.expect("SELECT of variables returns a row");
        let flavour = ServerInfo::detect_flavour(&version, &comment);
        let partial_revokes = match flavour {
            crate::db::Flavour::MySql => {
                let v: Option<i64> =
                    conn.query_first("SELECT @@GLOBAL.partial_revokes").await.map_err(|e| q("reading partial_revokes", e))?;
                v == Some(1)
            }
            crate::db::Flavour::MariaDb => false,
        };
        let info = ServerInfo {
            flavour,
            version: Version::parse_prefix(&version).unwrap_or(Version::new(0, 0, 0)),
            managed: ServerInfo::detect_managed(&version, &comment, basedir.as_deref().unwrap_or("")),
            version_string: version,
            version_comment: comment,
            lower_case_table_names: lctn,
            partial_revokes,
        };
        let current_user = parse_definer(&current).unwrap_or_else(|| AccountName::new(spec.user.clone(), "%"));
        Ok(Server { conn, info, target, current_user, spec: spec.clone() })
    }

    /// A second connection to the same server, as the same account (for reads that run
    /// concurrently with this connection's).
    pub async fn another(&self) -> Result<Server> {
        Server::connect(&self.spec).await
    }

    /// Runs a read query and returns all rows. `what` names it in errors. Refuses a statement
    /// that is not a read ([`is_read`]).
    pub async fn rows(&mut self, what: &str, sql: &str) -> Result<Vec<Row>> {
        super::redact::trace(&self.target, sql);
        must_read(what, sql)?;
        self.conn.query(sql).await.map_err(|e| self.query_err(what, e))
    }

    /// Runs a read query mapped to a tuple type.
    pub async fn rows_as<T: FromRow + Send + 'static>(&mut self, what: &str, sql: &str) -> Result<Vec<T>> {
        super::redact::trace(&self.target, sql);
        must_read(what, sql)?;
        self.conn.query(sql).await.map_err(|e| self.query_err(what, e))
    }

    /// The first row of a read query, mapped.
    pub async fn first<T: FromRow + Send + 'static>(&mut self, what: &str, sql: &str) -> Result<Option<T>> {
        super::redact::trace(&self.target, sql);
        must_read(what, sql)?;
        self.conn.query_first(sql).await.map_err(|e| self.query_err(what, e))
    }

    /// How this connection was made (to reconnect after a server restart).
    pub fn spec(&self) -> &ConnectSpec {
        &self.spec
    }

    /// Runs a statement that changes the server. Only the journaling executor
    /// ([`crate::engine::exec`]) calls this, after writing the statement's intent.
    pub(crate) async fn execute(&mut self, sql: &str) -> std::result::Result<(), mysql_async::Error> {
        super::redact::trace(&self.target, sql);
        self.conn.query_drop(sql).await
    }

    /// Runs a statement that changes only this connection's session (`SET SESSION
    /// sql_log_bin = 0`, ...): refused for anything else ([`is_read`]), so it is no write path.
    pub async fn session(&mut self, what: &str, sql: &str) -> Result<()> {
        super::redact::trace(&self.target, sql);
        must_read(what, sql)?;
        self.conn.query_drop(sql).await.map_err(|e| self.query_err(what, e))
    }

    /// [`execute`](Self::execute), returning the rows it changed (the fail-safe's heartbeat
    /// learns from 0 that the server-side fail-safe fired).
    pub(crate) async fn execute_affected(&mut self, sql: &str) -> std::result::Result<u64, mysql_async::Error> {
        super::redact::trace(&self.target, sql);
        self.conn.query_drop(sql).await?;
        Ok(self.conn.affected_rows())
    }

    /// Runs a read query over the binary protocol: values come back typed (integers, dates,
    /// bytes), so a copy writes back exactly what it read.
    pub async fn rows_typed(&mut self, what: &str, sql: &str) -> Result<Vec<Row>> {
        super::redact::trace(&self.target, sql);
        must_read(what, sql)?;
        self.conn.exec(sql, ()).await.map_err(|e| self.query_err(what, e))
    }

    /// Runs a prepared statement that changes the server, with typed parameters. Only the
    /// backfill's chunk writer ([`crate::verify::backfill`]) calls this, after journaling the
    /// chunk's intent.
    pub(crate) async fn execute_params(
        &mut self,
        sql: &str,
        params: Vec<mysql_async::Value>,
    ) -> std::result::Result<(), mysql_async::Error> {
        super::redact::trace(&self.target, sql);
        self.conn.exec_drop(sql, mysql_async::Params::Positional(params)).await
    }

    /// Runs a statement that changes the server over the text protocol (no prepare round trips).
    /// Only the backfill's chunk writer ([`crate::verify::backfill`]) calls this, after journaling
    /// the chunk's intent, with literals it rendered ([`crate::verify::literal`]). The trace shows
    /// `summary`, not the statement: its literals are row data.
    pub(crate) async fn execute_text(&mut self, sql: &str, summary: &str) -> std::result::Result<(), mysql_async::Error> {
        super::redact::trace(&self.target, summary);
        self.conn.query_drop(sql).await
    }

    /// [`execute_params`](Self::execute_params), returning the rows it changed (on a
    /// [`connect_row_writer`](Self::connect_row_writer) connection: the rows it matched).
    pub(crate) async fn execute_params_affected(
        &mut self,
        sql: &str,
        params: Vec<mysql_async::Value>,
    ) -> std::result::Result<u64, mysql_async::Error> {
        super::redact::trace(&self.target, sql);
        self.conn.exec_drop(sql, mysql_async::Params::Positional(params)).await?;
        Ok(self.conn.affected_rows())
    }

    /// This connection's processlist id.
    pub fn connection_id(&self) -> u64 {
        u64::from(self.conn.id())
    }

    fn query_err(&self, what: &str, source: mysql_async::Error) -> Error {
        Error::Query { what: what.into(), target: self.target.clone(), source }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// Whether a statement may go through a read path: it reads (`SELECT`, `SHOW`, `WITH`,
/// `EXPLAIN`, `DESCRIBE`) or changes only this connection's session (`SET SESSION`, `SET @var`,
/// `SET NAMES`, transaction control). Everything else changes the server and must go through the journaling
/// executor. Leading white space and comments are skipped.
pub fn is_read(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, after)| after.trim_start()).unwrap_or("");
        } else if rest.starts_with("-- ") || rest.starts_with('#') {
            rest = rest.split_once('\n').map(|(_, after)| after.trim_start()).unwrap_or("");
        } else {
            break;
        }
    }
    let words: Vec<String> = rest.split_whitespace().take(2).map(|w| w.to_ascii_uppercase()).collect();
    match words.first().map(String::as_str) {
        Some("SELECT" | "SHOW" | "WITH" | "EXPLAIN" | "DESCRIBE" | "DESC") => true,
        // Transaction control brackets writes made through the allowed write paths; by itself
        // it changes nothing.
        Some("START") => words.get(1).is_some_and(|w| w == "TRANSACTION"),
        Some("BEGIN" | "COMMIT" | "ROLLBACK") => true,
        Some("SET") => words.get(1).is_some_and(|w| {
            w == "SESSION" || w == "NAMES" || w.starts_with('@') && !w.starts_with("@@GLOBAL") && !w.starts_with("@@PERSIST")
        }),
        _ => false,
    }
}

fn must_read(what: &str, sql: &str) -> Result<()> {
    if is_read(sql) {
        return Ok(());
    }
    Err(Error::NotARead { what: what.to_string(), start: sql.chars().take(24).collect() })
}

/// Column `i` of a row as text (NULL and unreadable values as the empty string).
pub fn text(row: &Row, i: usize) -> String {
    opt_text(row, i).unwrap_or_default()
}

/// Column `i` of a row as text, `None` for NULL.
pub fn opt_text(row: &Row, i: usize) -> Option<String> {
    row.get_opt::<Option<String>, _>(i).and_then(|r| r.ok()).flatten()
}

/// Parses a `DEFINER` / `CURRENT_USER()` value: `user@host`, split at the last `@`. A bare name
/// (a MariaDB role definer) gets an empty host.
pub fn parse_definer(s: &str) -> Option<AccountName> {
    if s.is_empty() {
        return None;
    }
    Some(match s.rfind('@') {
        Some(i) => AccountName::new(&s[..i], &s[i + 1..]),
        None => AccountName::new(s, ""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definers() {
        assert_eq!(parse_definer("app@%"), Some(AccountName::new("app", "%")));
        assert_eq!(parse_definer("a@b@localhost"), Some(AccountName::new("a@b", "localhost")));
        assert_eq!(parse_definer("role1"), Some(AccountName::new("role1", "")));
        assert_eq!(parse_definer(""), None);
    }
}

#[cfg(test)]
mod read_tests {
    use super::is_read;

    #[test]
    fn reads_and_session_settings_only() {
        for sql in [
            "SELECT 1",
            " /* x */ select * from t",
            "SHOW GRANTS",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "SET SESSION sql_log_bin = 0",
            "SET @a = 1",
            "SET NAMES utf8mb4",
            "-- c\nSELECT 1",
        ] {
            assert!(is_read(sql), "{sql}");
        }
        for sql in [
            "GRANT SELECT ON *.* TO u",
            "SET GLOBAL userstat = 1",
            "SET @@GLOBAL.x = 1",
            "KILL 5",
            "INSERT INTO t VALUES (1)",
            "/* SELECT */ DROP TABLE t",
            "SET PERSIST read_only = 0",
            "SET @@PERSIST_ONLY.x = 1",
            "",
        ] {
            assert!(!is_read(sql), "{sql}");
        }
    }
}
