//! MariaDB's sql_errlog file: one record per failed statement, followed as it grows.
//!
//! The plugin writes `DATE TIME USER ERROR N: MESSAGE : QUERY` (with
//! `sql_error_log_with_db_and_thread_info=ON`: `DATE TIME THREAD USER DB ERROR N: ...`), where
//! USER is the server's `user[priv_user] @ host [ip]`. Seen on 10.11:
//!
//! ```text
//! 2026-11-22  1:36:09 svc[svc] @ localhost [127.0.0.1] ERROR 1044: Access denied for user 'svc'@'%' to database 'x2' : (null)
//! 2026-11-22  1:36:10 oth[oth] @ % [%] ERROR 1142: SELECT command denied to user 'oth'@'%' for table `x1`.`t` : select * from x1.vo
//! 2026-11-22  1:36:10 svc[svc] @ localhost [127.0.0.1] ERROR 1356: View 'x1.vo' references invalid table(s) ... : select * from x1.vo
//! ```
//!
//! The hour is space-padded. `(null)` is the query of a `COM_INIT_DB` (a client's `USE`). A
//! line whose ip is not an address (`[%]`) was written inside a definer's security context:
//! it names the definer, and the caller's own error follows with the same query, so the two
//! are folded into one sighting. A query with newlines continues on the following lines.

use super::errors::{error_name, Sighting, LOGIN_ERRORS, PRIVILEGE_ERRORS};
use super::tail::{Line, Tail};
use regex::Regex;
use std::net::IpAddr;
use std::path::Path;
use std::sync::LazyLock;

/// The source name of sql_errlog alarms.
pub const SOURCE: &str = "sql_errlog";

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The login user; empty for a failed login, whose attempted user is in `priv_user`.
    pub user: String,
    pub priv_user: String,
    pub host: String,
    pub ip: String,
    pub code: u32,
    pub message: String,
    /// The query text (`None` for `(null)`), possibly spanning several lines.
    pub query: Option<String>,
    /// Line number of the record's first line, when known.
    pub line: Option<u64>,
}

impl Record {
    /// Written inside a definer's security context (see the module docs).
    pub fn definer_context(&self) -> bool {
        !self.ip.is_empty() && self.ip.parse::<IpAddr>().is_err()
    }
}

static RECORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^\d{4}-\d{2}-\d{2} [ \d]\d:\d{2}:\d{2} (?:\d+ )?",
        r"(?P<user>.*?)\[(?P<priv>.*?)\] @ (?P<host>.*?) \[(?P<ip>.*?)\]",
        r"(?: (?:`(?:[^`]|``)*`|NULL))? (?:ERROR|WARNING) (?P<code>\d+): (?P<rest>.*)$",
    ))
    .expect("valid regex")
});

/// Parses a record's first line (`None` for a continuation line).
pub fn parse_line(text: &str) -> Option<Record> {
    let c = RECORD.captures(text)?;
    let rest = &c["rest"];
    let (message, query) = match rest.split_once(" : ") {
        Some((m, q)) => (m.to_string(), Some(q.trim_end().to_string())),
        None => (rest.to_string(), None),
    };
    Some(Record {
        user: c["user"].to_string(),
        priv_user: c["priv"].to_string(),
        host: c["host"].to_string(),
        ip: c["ip"].to_string(),
        code: c["code"].parse().ok()?,
        message,
        query: query.filter(|q| q != "(null)"),
        line: None,
    })
}

/// Groups lines into records: continuation lines are appended to the record before them.
pub fn records(lines: Vec<Line>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for l in lines {
        match parse_line(&l.text) {
            Some(mut r) => {
                r.line = l.number;
                out.push(r);
            }
            None => {
                if let Some(q) = out.last_mut().and_then(|r| r.query.as_mut()) {
                    q.push('\n');
                    q.push_str(&l.text);
                }
            }
        }
    }
    out
}

/// Turns records into sightings of watched errors, folding a definer-context record into the
/// caller's record that follows it with the same query. Refused logins are sightings too
/// (`login`), under the attempted user.
pub fn sightings(records: Vec<Record>, file: &str) -> Vec<Sighting> {
    let mut out: Vec<Sighting> = Vec::new();
    let mut inner: Option<Record> = None;
    for mut r in records {
        if LOGIN_ERRORS.contains(&r.code) {
            // Seen: `[svc] @ localhost [127.0.0.1] ERROR 1045: ...` (no login user yet) and
            // `svc[svc] @ localhost [127.0.0.1] ERROR 1959: Invalid role specification ...`.
            if r.user.is_empty() {
                r.user = r.priv_user.clone();
            }
            let mut s = sighting(r, None, file);
            s.login = true;
            out.push(s);
            continue;
        }
        if !PRIVILEGE_ERRORS.contains(&r.code) {
            continue;
        }
        if r.definer_context() {
            if let Some(prev) = inner.replace(r) {
                out.push(sighting(prev, None, file));
            }
            continue;
        }
        if r.code == 1044 && r.query.is_none() && !r.definer_context() {
            // A default database refused without a statement: the handshake's database (or a
            // client's COM_INIT_DB), the way a pool fails after a cut of its default schema.
            let mut s = sighting(r, None, file);
            s.login = true;
            out.push(s);
            continue;
        }
        let folded = inner.take();
        match folded {
            Some(i) if i.query == r.query => out.push(sighting(r, Some(i), file)),
            Some(i) => {
                out.push(sighting(i, None, file));
                out.push(sighting(r, None, file));
            }
            None => out.push(sighting(r, None, file)),
        }
    }
    if let Some(i) = inner {
        out.push(sighting(i, None, file));
    }
    out
}

fn sighting(r: Record, inner: Option<Record>, file: &str) -> Sighting {
    let at = r.line.map(|n| format!("{file} line {n}")).unwrap_or_else(|| file.to_string());
    let mut cited = format!("{SOURCE} ({at}): {}@{} [{}] ERROR {} {}: {}", r.user, r.host, r.ip, r.code, error_name(r.code), r.message);
    if let Some(i) = &inner {
        cited.push_str(&format!(" (inside the definer context of {}@{}: ERROR {}: {})", i.user, i.host, i.code, i.message));
    }
    let definer_context = r.definer_context();
    Sighting {
        source: SOURCE.into(),
        user: Some(r.user),
        host: Some(r.host),
        code: r.code,
        message: r.message,
        definer_context,
        inner: inner.map(|i| vec![(i.code, i.message)]).unwrap_or_default(),
        resolved: None,
        digest: None,
        statement: r.query,
        cited,
        login: false,
    }
}

/// The followed sql_errlog file.
#[derive(Debug)]
pub struct Errlog {
    tail: Tail,
}

impl Errlog {
    /// Starts at the file's current end.
    pub fn open(path: &Path) -> std::io::Result<Errlog> {
        Ok(Errlog { tail: Tail::at_end(path)? })
    }

    /// New sightings since the previous read.
    pub fn read(&mut self) -> std::io::Result<Vec<Sighting>> {
        let lines = self.tail.read_lines()?;
        let file = self.tail.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(sightings(records(lines), &file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Line> {
        text.lines().enumerate().map(|(i, t)| Line { text: t.into(), number: Some(i as u64 + 1), offset: 0 }).collect()
    }

    #[test]
    fn parses_records() {
        let r = parse_line(
            "2026-11-22  1:36:09 svc[svc] @ localhost [127.0.0.1] ERROR 1044: Access denied for user 'svc'@'%' to database 'x2' : (null)",
        )
        .unwrap();
        assert_eq!((r.user.as_str(), r.host.as_str(), r.code, r.query.as_deref()), ("svc", "localhost", 1044, None));
        assert!(!r.definer_context());
        let r = parse_line("2026-11-22 13:36:10 oth[oth] @ % [%] ERROR 1142: SELECT command denied to user 'oth'@'%' for table `x1`.`t` : select * from x1.vo").unwrap();
        assert!(r.definer_context());
        assert_eq!(r.message, "SELECT command denied to user 'oth'@'%' for table `x1`.`t`");
        let r = parse_line("2026-11-22 13:36:10 77 svc[svc] @ localhost [] `x1` ERROR 1142: SELECT command denied : select 1 ").unwrap();
        assert_eq!((r.ip.as_str(), r.query.as_deref()), ("", Some("select 1")));
        assert!(!r.definer_context());
        assert!(parse_line("b' from x1.t").is_none());
    }

    #[test]
    fn folds_definer_context_and_continuations() {
        let text = "\
2026-11-22  1:36:10 svc[svc] @ % [%] ERROR 1142: SELECT command denied to user 'svc'@'%' for table `x1`.`t` : select * from x1.v
2026-11-22  1:36:10 oth[oth] @ localhost [127.0.0.1] ERROR 1356: View 'x1.v' references invalid table(s) : select * from x1.v
2026-11-22  1:36:11 svc[svc] @ localhost [127.0.0.1] ERROR 1142: SELECT command denied to user 'svc'@'localhost' for table `x1`.`t` : select 'a
b' from x1.t
2026-11-22  1:36:12 [svc] @ localhost [127.0.0.1] ERROR 1045: Access denied for user 'svc'@'localhost' (using password: YES) : (null)
2026-11-22  1:36:12 root[root] @ localhost [127.0.0.1] ERROR 1064: You have an error : selec";
        let s = sightings(records(lines(text)), "sql_errors.log");
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].user.as_deref(), s[0].code, s[0].inner.len()), (Some("oth"), 1356, 1));
        assert!(s[0].cited.contains("sql_errors.log line 2") && s[0].cited.contains("definer context of svc@%"));
        assert!(!s[0].cited.contains("select *"), "no statement text in the citation");
        assert_eq!(s[1].statement.as_deref(), Some("select 'a\nb' from x1.t"));
        assert!(s[2].login && s[2].code == 1045 && s[2].user.as_deref() == Some("svc"), "{:?}", s[2]);
    }
}
