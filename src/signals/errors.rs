//! Privilege errors: which error numbers count, what their messages name, and whose error a
//! sighting is (the watched account's own, collateral damage to another account, or neither).
//!
//! Messages as the servers word them (seen on MariaDB 10.11 and MySQL 9.7):
//!
//! ```text
//! 1142 SELECT command denied to user 'svc'@'localhost' for table `x1`.`t`      (MariaDB)
//! 1142 SELECT command denied to user 'svc'@'localhost' for table 't'           (MySQL: no schema)
//! 1143 SELECT command denied to user 'svc'@'localhost' for column 'secret' in table 'c'
//! 1044 Access denied for user 'svc'@'%' to database 'x2'
//! 1370 execute command denied to user 'svc'@'%' for routine 'x1.f'
//! 1356 View 'x1.v' references invalid table(s) or column(s) or function(s) or definer/invoker of view lack rights to use them
//! 1449 The user specified as a definer ('svc'@'%') does not exist
//! ```

use super::pfs::HistoryRow;
use super::{Alarm, AlarmKind, WatchTarget};
use regex::Regex;
use std::sync::LazyLock;

pub use super::codes::{error_name, is_login_error, LOGIN_ERRORS, PRIVILEGE_ERRORS};

/// What kind of object a message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    Database,
    Routine,
    View,
}

/// An object named by a message: schema when the message gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub kind: ObjectKind,
    pub schema: Option<String>,
    pub name: String,
}

impl ObjectName {
    /// `` `schema`.`name` `` or `` `name` ``.
    pub fn display(&self) -> String {
        let q = crate::model::ident::quote_ident;
        match &self.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.name)),
            None => q(&self.name),
        }
    }
}

/// What an error message names: an account and an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub account: Option<(String, String)>,
    pub object: Option<ObjectName>,
}

static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"'((?:[^'\\]|\\.)*)'@'((?:[^'\\]|\\.)*)'").expect("valid regex"));
static OBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:for table|in table|to database|for routine|^View) ((?:`(?:[^`]|``)*`(?:\.`(?:[^`]|``)*`)?)|'[^']*')")
        .expect("valid regex")
});

/// Reads the account and the object out of a message of one of the watched errors.
pub fn parse_message(code: u32, message: &str) -> Named {
    let account = ACCOUNT.captures(message).map(|c| (c[1].to_string(), c[2].to_string()));
    let kind = match code {
        1044 => ObjectKind::Database,
        1370 => ObjectKind::Routine,
        1356 => ObjectKind::View,
        _ => ObjectKind::Table,
    };
    let object = OBJECT.captures(message).and_then(|c| {
        let (schema, name) = split_object(&c[1], kind)?;
        Some(ObjectName { kind, schema, name })
    });
    Named { account, object }
}

/// `` `s`.`t` `` or `'s.t'` / `'t'` into parts. Schema and table names cannot contain a dot,
/// so a quoted `'s.t'` splits at its dot; a database name is never split.
fn split_object(quoted: &str, kind: ObjectKind) -> Option<(Option<String>, String)> {
    if let Some(inner) = quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
        if kind == ObjectKind::Database {
            return Some((None, inner.to_string()));
        }
        return Some(match inner.split_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (None, inner.to_string()),
        });
    }
    let parts: Vec<String> = backtick_parts(quoted);
    match parts.as_slice() {
        [n] => Some((None, n.clone())),
        [s, n] => Some((Some(s.clone()), n.clone())),
        _ => None,
    }
}

/// The identifiers of a `` `a`.`b` `` text, unquoted.
fn backtick_parts(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, inside) {
            ('`', true) if chars.peek() == Some(&'`') => {
                cur.push('`');
                chars.next();
            }
            ('`', true) => {
                inside = false;
                out.push(std::mem::take(&mut cur));
            }
            ('`', false) => inside = true,
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// One error as a detail source saw it (a history row, an sql_errlog line).
#[derive(Debug, Clone, Default)]
pub struct Sighting {
    /// The source's name (see [`super::SourceInfo::name`]).
    pub source: String,
    /// The connection's user and client host, when the source knows them.
    pub user: Option<String>,
    pub host: Option<String>,
    pub code: u32,
    pub message: String,
    /// The line was written inside a definer's security context: `user`/`host` are the
    /// definer's, not the caller's (MariaDB's sql_errlog).
    pub definer_context: bool,
    /// Inner errors folded into this one (the definer-context line before a caller's 1356).
    pub inner: Vec<(u32, String)>,
    /// A better object name than the message's (MySQL names a table without its schema; the
    /// digest says which).
    pub resolved: Option<ObjectName>,
    pub digest: Option<String>,
    /// Statement text, for the screen only.
    pub statement: Option<String>,
    /// The evidence row without statement text.
    pub cited: String,
    /// A connection attempt was refused (or started without its default role): the error came
    /// with the login, not with a statement.
    pub login: bool,
}

/// Whose error a sighting is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The watched account's own statement failed.
    Own,
    /// Another account's error that names the watched account, a cut table or a dependent.
    Collateral,
    /// Nothing to do with the cut.
    Unrelated,
}

/// Decides whose error a sighting is. A line in the watched account's definer context is
/// collateral: someone else ran an object the account defines.
pub fn whose(s: &Sighting, target: &WatchTarget) -> Whose {
    if s.login {
        // A refused login is the account's own, whichever source names it.
        let named = parse_message(s.code, &s.message);
        let mine = s.user.as_deref() == Some(target.user.as_str()) || named.account.is_some_and(|(u, _)| u == target.user);
        return if mine { Whose::Own } else { Whose::Unrelated };
    }
    if !PRIVILEGE_ERRORS.contains(&s.code) {
        return Whose::Unrelated;
    }
    if s.user.as_deref() == Some(target.user.as_str()) && !s.definer_context {
        return Whose::Own;
    }
    let messages = std::iter::once((s.code, s.message.as_str())).chain(s.inner.iter().map(|(c, m)| (*c, m.as_str())));
    for (i, (code, message)) in messages.enumerate() {
        let named = parse_message(code, message);
        if named.account.as_ref().is_some_and(|(u, _)| *u == target.user) {
            return Whose::Collateral;
        }
        let object = if i == 0 { s.resolved.as_ref().or(named.object.as_ref()) } else { named.object.as_ref() };
        if object.is_some_and(|o| names_target(o, target)) {
            return Whose::Collateral;
        }
    }
    if s.definer_context && s.user.as_deref() == Some(target.user.as_str()) {
        return Whose::Collateral;
    }
    Whose::Unrelated
}

/// Does the object name a cut table or a dependent? Compared without case (a false match
/// only makes the session restore sooner); a schema-less name matches any schema.
fn names_target(o: &ObjectName, target: &WatchTarget) -> bool {
    if o.kind == ObjectKind::Database {
        return false;
    }
    target
        .tables
        .iter()
        .chain(&target.dependents)
        .any(|t| t.name.eq_ignore_ascii_case(&o.name) && o.schema.as_ref().is_none_or(|s| s.eq_ignore_ascii_case(&t.schema)))
}

/// A sighting from a statement history row with a watched error. MySQL's 1142 names the table
/// without its schema; when the statement's digest names exactly one table of that name, the
/// object is given with its schema.
pub fn from_history(row: &HistoryRow, source: &str) -> Sighting {
    let message = row.message.clone().unwrap_or_default();
    let named = parse_message(row.errno, &message);
    let resolved = named.object.as_ref().filter(|o| o.schema.is_none() && o.kind == ObjectKind::Table).and_then(|o| {
        let text = row.digest_text.as_deref().or(row.sql_text.as_deref())?;
        let refs = crate::access::sqlrefs::extract(text, row.schema.as_deref().unwrap_or(""));
        let mut same = refs.tables.iter().filter(|t| t.name.eq_ignore_ascii_case(&o.name));
        match (same.next(), same.next()) {
            (Some(t), None) if !t.schema.is_empty() => {
                Some(ObjectName { kind: o.kind, schema: Some(t.schema.clone()), name: t.name.clone() })
            }
            _ => None,
        }
    });
    let who = match (&row.user, &row.host) {
        (Some(u), Some(h)) => format!("{} ", crate::model::AccountName::new(u, h).sql()),
        _ => String::new(),
    };
    let conn = row.processlist_id.map(|p| format!("connection {p} ")).unwrap_or_default();
    let digest = row.digest.as_deref().map(|d| format!(" digest {}", &d[..d.len().min(16)])).unwrap_or_default();
    let cited = format!("{source}: {who}{conn}ERROR {} {}{digest}: {message}", row.errno, error_name(row.errno));
    Sighting {
        source: source.to_string(),
        user: row.user.clone().or_else(|| named.account.as_ref().map(|a| a.0.clone())),
        // A host read from the message may be the grant's pattern, not the client's host.
        host: row.user.as_ref().and(row.host.clone()),
        code: row.errno,
        message,
        definer_context: false,
        inner: Vec::new(),
        resolved,
        digest: row.digest.clone(),
        statement: row.sql_text.clone(),
        cited,
        login: false,
    }
}

/// The alarm for a sighting of the given kind.
pub fn alarm(s: Sighting, kind: AlarmKind, server: &str) -> Alarm {
    let kind = if s.login && kind == AlarmKind::PrivilegeError { AlarmKind::LoginDenied } else { kind };
    let named = parse_message(s.code, &s.message);
    let account = match (&s.user, &s.host) {
        (Some(u), Some(h)) => Some(crate::model::AccountName::new(u, h).sql()),
        _ => named.account.as_ref().map(|(u, h)| crate::model::AccountName::new(u, h).sql()),
    };
    let object = s.resolved.as_ref().or(named.object.as_ref()).map(ObjectName::display);
    Alarm {
        kind,
        server: server.to_string(),
        source: s.source,
        account,
        error: Some(s.code),
        object,
        digest: s.digest,
        statement: s.statement,
        cited: s.cited,
        count: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableName;

    fn target() -> WatchTarget {
        WatchTarget {
            user: "svc".into(),
            tables: vec![TableName::new("x1", "t")],
            dependents: vec![TableName::new("x1", "v"), TableName::new("x1", "f")],
            since_connection: 0,
        }
    }

    #[test]
    fn messages_name_accounts_and_objects() {
        let n = parse_message(1142, "SELECT command denied to user 'svc'@'localhost' for table `x1`.`t`");
        assert_eq!(n.account, Some(("svc".into(), "localhost".into())));
        assert_eq!(n.object.unwrap().display(), "`x1`.`t`");
        let n = parse_message(1142, "SELECT command denied to user 'svc'@'localhost' for table 't'");
        assert_eq!(n.object, Some(ObjectName { kind: ObjectKind::Table, schema: None, name: "t".into() }));
        let n = parse_message(1143, "SELECT command denied to user 'svc'@'localhost' for column 'secret' in table 'c'");
        assert_eq!(n.object.unwrap().name, "c");
        let n = parse_message(1044, "Access denied for user 'svc'@'%' to database 'x.2'");
        assert_eq!(n.object.unwrap().display(), "`x.2`");
        let n = parse_message(1370, "execute command denied to user 'svc'@'%' for routine 'x1.f'");
        assert_eq!(n.object.unwrap().display(), "`x1`.`f`");
        let n = parse_message(
            1356,
            "View 'x1.v' references invalid table(s) or column(s) or function(s) or definer/invoker of view lack rights to use them",
        );
        assert_eq!((n.account, n.object.unwrap().display()), (None, "`x1`.`v`".into()));
        let n = parse_message(1449, "The user specified as a definer ('svc'@'%') does not exist");
        assert_eq!(n.account, Some(("svc".into(), "%".into())));
        let n = parse_message(1142, "SELECT command denied to user 'a'@'h' for table `we``ird`.`t`");
        assert_eq!(n.object.unwrap().schema.as_deref(), Some("we`ird"));
    }

    #[test]
    fn whose_error() {
        let t = target();
        let s = |user: &str, code, msg: &str| Sighting { user: Some(user.into()), code, message: msg.into(), ..Default::default() };
        assert_eq!(whose(&s("svc", 1142, "... for table 'zz'"), &t), Whose::Own);
        assert_eq!(whose(&s("svc", 1064, "syntax"), &t), Whose::Unrelated);
        assert_eq!(whose(&s("oth", 1356, "View 'x1.v' references invalid table(s)"), &t), Whose::Collateral);
        assert_eq!(whose(&s("oth", 1370, "execute command denied to user 'svc'@'%' for routine 'x1.p'"), &t), Whose::Collateral);
        assert_eq!(whose(&s("oth", 1142, "SELECT command denied to user 'oth'@'h' for table 'T'"), &t), Whose::Collateral);
        assert_eq!(whose(&s("oth", 1142, "SELECT command denied to user 'oth'@'h' for table `x2`.`t`"), &t), Whose::Unrelated);
        assert_eq!(whose(&s("oth", 1044, "Access denied for user 'oth'@'%' to database 't'"), &t), Whose::Unrelated);
        let mut elsewhere = s("oth", 1142, "SELECT command denied to user 'oth'@'h' for table 't'");
        elsewhere.resolved = Some(ObjectName { kind: ObjectKind::Table, schema: Some("x2".into()), name: "t".into() });
        assert_eq!(whose(&elsewhere, &t), Whose::Unrelated, "the digest says which schema");
        let mut d = s("svc", 1142, "SELECT command denied to user 'svc'@'%' for table `x9`.`q`");
        d.definer_context = true;
        assert_eq!(whose(&d, &t), Whose::Collateral);
        let mut folded = s("oth", 1356, "View 'x9.w' references invalid table(s)");
        folded.inner.push((1142, "SELECT command denied to user 'svc'@'%' for table `x9`.`q`".into()));
        assert_eq!(whose(&folded, &t), Whose::Collateral);
    }
}
