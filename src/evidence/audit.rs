//! MariaDB's `server_audit` log: per-user, per-table access lines, the best usage evidence
//! MariaDB has.
//!
//! Format (file output), one event per line:
//! `timestamp,serverhost,user,host,connectionid,queryid,operation,database,object,retcode`,
//! for example `20261122 01:39:20,vm,shop,localhost,14,46,READ,main,users,` (a TABLE event:
//! READ, WRITE, CREATE, ALTER, RENAME, DROP) or
//! `20261122 01:39:20,vm,shop,localhost,14,46,QUERY,main,'SELECT ...',0` (the text quoted with
//! backslash escapes, cut at `server_audit_query_log_limit`). TABLE events are used as they are;
//! QUERY texts are parsed for table names and never cited. The file and its rotations
//! (`file.1` ... `file.9`) are read when they are on this machine.

use super::clock::fmt;
use super::{Collected, Ctx, Evidence, Usage};
use crate::db::server::text;
use crate::db::{Flavour, Server};
use crate::model::ident::quote_str;
use crate::model::TableName;
use chrono::NaiveDateTime;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

const SOURCE: &str = "server_audit log";

/// One parsed line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub at: NaiveDateTime,
    pub user: String,
    pub host: String,
    pub connection: u64,
    pub query_id: u64,
    /// `CONNECT`, `DISCONNECT`, `QUERY`, `READ`, `WRITE`, `CREATE`, `ALTER`, `RENAME`, `DROP`, ...
    pub op: String,
    pub db: String,
    /// The table for TABLE events, the unquoted statement text for QUERY events.
    pub object: String,
    /// The error code (`0` success; empty for TABLE events).
    pub retcode: String,
}

/// Parses one line; `None` for lines that do not have the format. A user or schema name
/// containing a comma cannot be told apart from the separators; such lines parse wrongly.
pub fn parse_line(line: &str) -> Option<AuditLine> {
    let mut head = line.splitn(9, ',');
    let at = NaiveDateTime::parse_from_str(head.next()?, "%Y%m%d %H:%M:%S").ok()?;
    let _server_host = head.next()?;
    let user = head.next()?.to_string();
    let host = head.next()?.to_string();
    let connection = head.next()?.parse().ok()?;
    let query_id = head.next()?.parse().ok()?;
    let op = head.next()?.to_string();
    let db = head.next()?.to_string();
    let rest = head.next()?;
    // The return code follows the last comma; the object may contain commas.
    let (object, retcode) = rest.rsplit_once(',')?;
    Some(AuditLine { at, user, host, connection, query_id, op, db, object: unquote(object), retcode: retcode.to_string() })
}

/// Removes the quotes and backslash escapes of a QUERY text; bare names stay as they are.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) else { return s.to_string() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(n) => out.push(n),
                None => {}
            },
            _ => out.push(c),
        }
    }
    out
}

/// What the files hold for the candidates' users.
#[derive(Default)]
struct Read {
    files: Vec<PathBuf>,
    lines: u64,
    first: Option<NaiveDateTime>,
    last: Option<NaiveDateTime>,
    /// Lines of the candidates' users.
    mine: Vec<AuditLine>,
}

/// Reads the log and its rotations, keeping only `users`' lines.
fn read_files(path: &Path, users: &BTreeSet<String>) -> std::io::Result<Read> {
    let mut out = Read::default();
    let mut paths = vec![path.to_path_buf()];
    paths.extend((1..=9).map(|n| PathBuf::from(format!("{}.{n}", path.display()))).filter(|p| p.exists()));
    for p in paths {
        let file = std::fs::File::open(&p)?;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line?;
            let Some(l) = parse_line(String::from_utf8_lossy(&line).trim_end()) else { continue };
            out.lines += 1;
            out.first = Some(out.first.map_or(l.at, |f| f.min(l.at)));
            out.last = Some(out.last.map_or(l.at, |x| x.max(l.at)));
            if users.contains(&l.user) {
                out.mine.push(l);
            }
        }
        out.files.push(p);
    }
    Ok(out)
}

/// The plugin's state: status and its variables.
struct Plugin {
    active: bool,
    vars: BTreeMap<String, String>,
}

async fn plugin(server: &mut Server) -> Plugin {
    let status = server
        .rows("reading plugin status", "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'SERVER_AUDIT'")
        .await
        .unwrap_or_default();
    let active = status.first().is_some_and(|r| text(r, 0) == "ACTIVE");
    let vars = if active {
        let rows =
            server.rows("reading server_audit variables", "SHOW GLOBAL VARIABLES LIKE 'server\\_audit\\_%'").await.unwrap_or_default();
        rows.iter().map(|r| (text(r, 0), text(r, 1))).collect()
    } else {
        BTreeMap::new()
    };
    Plugin { active, vars }
}

impl Plugin {
    fn var(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or("")
    }

    /// Events logged now: TABLE (per table), QUERY (text to parse); empty means all.
    fn logs(&self, what: &str) -> bool {
        let events = self.var("server_audit_events");
        events.is_empty() || events.split(',').any(|e| e.trim().eq_ignore_ascii_case(what))
    }

    /// Why `user` is filtered out, if it is.
    fn filtered(&self, user: &str) -> Option<String> {
        let list = |v: &str| self.var(v).split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect::<Vec<_>>();
        let (incl, excl) = (list("server_audit_incl_users"), list("server_audit_excl_users"));
        if !incl.is_empty() && !incl.iter().any(|u| u == user) {
            return Some(format!("server_audit_incl_users leaves out user {}", quote_str(user)));
        }
        excl.iter().any(|u| u == user).then(|| format!("server_audit_excl_users leaves out user {}", quote_str(user)))
    }
}

pub(crate) async fn gather(server: &mut Server, ctx: &Ctx, path: Option<&Path>, out: &mut Collected) {
    if ctx.flavour != Flavour::MariaDb {
        if let Some(p) = path {
            let why = format!("{}: only MariaDB's server_audit format is read", p.display());
            out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, why));
        }
        return;
    }
    let plugin = plugin(server).await;
    let Some(path) = path else {
        let why = if plugin.active {
            format!(
                "server_audit logs to {} (relative names are in the datadir); pass the file to read it",
                plugin.var("server_audit_file_path")
            )
        } else {
            "server_audit is not installed (INSTALL SONAME 'server_audit' with server_audit_events=TABLE logs each table access)".into()
        };
        return out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, why));
    };
    let users: BTreeSet<String> = ctx.users.names().cloned().collect();
    let owned = path.to_path_buf();
    let read = match tokio::task::spawn_blocking(move || read_files(&owned, &users)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, format!("{}: {e}", path.display()))),
        Err(e) => return out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, format!("reading {}: {e}", path.display()))),
    };
    let span = match (read.first, read.last) {
        (Some(f), Some(l)) => format!("{} to {} ({} lines in {} files)", fmt(f), fmt(l), read.lines, read.files.len()),
        _ => format!("no event in {}", path.display()),
    };
    let mut common = vec![
        "only the current server_audit settings are known, not those in force over the span".to_string(),
        "older rotated files are gone".to_string(),
    ];
    if !plugin.active {
        common.push("server_audit is not active now: the file ends when it stopped".into());
    } else if plugin.var("server_audit_logging") != "ON" {
        common.push("server_audit_logging is OFF now: the file ends when it was turned off".into());
    }
    let per_table = plugin.active && plugin.logs("TABLE");
    if plugin.active && !per_table {
        common.push(format!(
            "server_audit_events = '{}' has no TABLE events: QUERY texts are parsed (cut at server_audit_query_log_limit = {})",
            plugin.var("server_audit_events"),
            plugin.var("server_audit_query_log_limit")
        ));
    }
    let complete_setup = plugin.active && (per_table || plugin.logs("QUERY")) && read.lines > 0;
    for user in ctx.users.names() {
        let mut blind = common.clone();
        blind.extend(ctx.users.shared_name(user));
        let filtered = plugin.filtered(user);
        blind.extend(filtered.clone());
        let lines: Vec<&AuditLine> = read.mine.iter().filter(|l| &l.user == user).collect();
        let (cited, last) = cite(ctx, &lines);
        let usage = if !cited.is_empty() {
            Usage::Used
        } else if complete_setup && filtered.is_none() {
            Usage::NotSeen
        } else {
            Usage::Unknown
        };
        let rows = if cited.is_empty() {
            vec![format!("{} events of user {}: none on a service table", lines.len(), quote_str(user))]
        } else {
            cited
        };
        let e = Evidence { source: format!("{SOURCE} ({})", path.display()), span: span.clone(), blind_spots: blind, usage, rows };
        for who in ctx.users.named(user) {
            out.add(who, e.clone());
            if let Some(t) = last {
                out.saw(who, t, "audit log");
            }
        }
    }
}

/// Rows citing the service-table accesses of one user's lines, and the user's latest event.
fn cite(ctx: &Ctx, lines: &[&AuditLine]) -> (Vec<String>, Option<NaiveDateTime>) {
    // (operation, table) -> (count, latest, connection)
    let mut seen: BTreeMap<(String, String), (u64, NaiveDateTime, u64)> = BTreeMap::new();
    let is_table_event = |l: &AuditLine| !matches!(l.op.as_str(), "QUERY" | "CONNECT" | "DISCONNECT" | "FAILED_CONNECT" | "CHANGEUSER");
    // Statements whose tables were logged as TABLE events: their QUERY line adds nothing.
    let with_tables: BTreeSet<(u64, u64)> = lines.iter().filter(|l| is_table_event(l)).map(|l| (l.connection, l.query_id)).collect();
    for l in lines {
        let hits = if is_table_event(l) {
            ctx.targets.hits_of(&TableName::new(l.db.clone(), l.object.clone()))
        } else if l.op == "QUERY" && !with_tables.contains(&(l.connection, l.query_id)) {
            ctx.targets.hits(&l.object, &l.db).into_iter().collect()
        } else {
            vec![]
        };
        for h in hits {
            let op = match (l.op.as_str(), l.retcode.as_str()) {
                ("QUERY", "0") => "statement naming".to_string(),
                ("QUERY", code) => format!("failed statement (error {code}) naming"),
                (op, _) => op.to_string(),
            };
            let slot = seen.entry((op, h.describe())).or_insert((0, l.at, l.connection));
            slot.0 += 1;
            if l.at >= slot.1 {
                slot.1 = l.at;
                slot.2 = l.connection;
            }
        }
    }
    let rows = seen
        .into_iter()
        .map(|((op, t), (n, at, conn))| format!("{op} {t}: {}, last {} (connection {conn})", super::times(n), fmt(at)))
        .collect();
    (rows, lines.iter().map(|l| l.at).max())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_each_kind() {
        let l = parse_line("20261122 01:39:20,vm,ex_used,localhost,14,46,READ,ex,users,").unwrap();
        assert_eq!((l.user.as_str(), l.op.as_str(), l.db.as_str(), l.object.as_str()), ("ex_used", "READ", "ex", "users"));
        assert_eq!((l.connection, l.query_id), (14, 46));
        assert_eq!(fmt(l.at), "2026-11-22 01:39:20");
        let q = parse_line(r"20261122 01:39:20,vm,ex_used,localhost,14,45,QUERY,ex,'SELECT * FROM users WHERE name=\'a,b\'',0").unwrap();
        assert_eq!((q.object.as_str(), q.retcode.as_str()), ("SELECT * FROM users WHERE name='a,b'", "0"));
        let c = parse_line("20261122 01:39:20,vm,root,localhost,13,0,DISCONNECT,,,0").unwrap();
        assert_eq!((c.op.as_str(), c.db.as_str(), c.object.as_str()), ("DISCONNECT", "", ""));
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("").is_none());
    }
}
