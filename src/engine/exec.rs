//! The journaling executor: the only code that changes a server. Each statement's intent is
//! fsynced before it runs and its outcome after; between the two is a crash point, so the crash
//! tests can die "after the statement ran, before its outcome was written".
//!
//! One path, [`execute`], for every statement: [`Stmt`] says what to journal instead of the
//! statement when it carries a credential, the statement that undoes it, and the errors that count
//! as done. [`unlogged`] runs a block of statements with binary logging off; [`lock`] takes a
//! named server lock.
#![allow(clippy::disallowed_methods)] // the journaling executor: the only caller of Server::execute (clippy.toml)

use super::node::Node;
use crate::db::Server;
use crate::error::{Error, Result};
use crate::journal::{crash, Journal, Phase, Record};

/// Errors a restore statement may meet when the statement it undoes never ran (the process died
/// between intent and execution): "there is no such grant". Anything else is a real failure.
pub const NOTHING_TO_REVOKE: &[u16] = &[
    1141, // ER_NONEXISTING_GRANT
    1147, // ER_NONEXISTING_TABLE_GRANT
    1403, // ER_NONEXISTING_PROC_GRANT
];

/// `KILL` of a connection that has already gone.
pub const NO_SUCH_THREAD: &[u16] = &[1094];

/// One statement for [`execute`].
#[derive(Debug, Clone, Copy)]
pub struct Stmt<'a> {
    pub phase: Phase,
    /// The workflow's name for the step (`revoke-writes`, `no-binlog`...), journaled with it.
    pub step: Option<&'a str>,
    pub sql: &'a str,
    /// Journaled instead of `sql` when the statement carries a credential (a password hash copied
    /// between servers). Errors then carry the server's error code only, never its message, which
    /// may quote the statement.
    pub redacted: Option<&'a str>,
    /// The statement that undoes this one (a setting turned back off), journaled with it.
    pub undo: Option<&'a str>,
    /// Server error codes that count as done (journaled as tolerated, with the server's message).
    pub tolerate: &'a [u16],
}

impl<'a> Stmt<'a> {
    pub fn new(phase: Phase, step: Option<&'a str>, sql: &'a str) -> Stmt<'a> {
        Stmt { phase, step, sql, redacted: None, undo: None, tolerate: &[] }
    }
}

/// Runs one statement on `node`: intent (fsynced) → execute → crash point → outcome (fsynced).
pub async fn execute(j: &mut Journal, node: &mut Node, s: Stmt<'_>) -> Result<()> {
    let journaled = s.redacted.unwrap_or(s.sql);
    let op = j.next_op();
    j.append(Record::Intent {
        op,
        server: node.name.clone(),
        phase: s.phase,
        step: s.step.map(str::to_string),
        sql: journaled.to_string(),
        undo: s.undo.map(str::to_string),
    })?;
    let result = node.server.execute(s.sql).await;
    // `executed PHASE STEP op N`: a test can crash right after a named statement ran.
    crash::point(&format!("executed {:?} {} op {op}", s.phase, s.step.unwrap_or("-")));
    let e = match result {
        Ok(()) => {
            j.append(Record::Outcome { op, ok: true, error: None })?;
            return Ok(());
        }
        Err(e) => e,
    };
    let code = match &e {
        mysql_async::Error::Server(se) => Some(se.code),
        _ => None,
    };
    if let (Some(c), None) = (code, s.redacted) {
        if s.tolerate.contains(&c) {
            j.append(Record::Outcome { op, ok: true, error: Some(format!("tolerated {c}: {e}")) })?;
            return Ok(());
        }
    }
    let unknown = "the connection failed: the statement may or may not have run";
    let text = match (code, s.redacted) {
        (Some(c), Some(_)) => format!("server error {c}"),
        (None, Some(_)) => unknown.to_string(),
        (Some(_), None) => e.to_string(),
        (None, None) => format!("{e} ({unknown})"),
    };
    j.append(Record::Outcome { op, ok: false, error: Some(text.clone()) })?;
    Err(match s.redacted {
        Some(_) => Error::RedactedStatement { server: node.name.clone(), sql: journaled.to_string(), outcome: text },
        None => Error::Statement { server: node.name.clone(), sql: s.sql.to_string(), source: e },
    })
}

/// Runs one statement on `node`, journaled. Errors whose code is in `tolerate` count as done
/// (and are journaled as such, with the server's message).
pub async fn run(j: &mut Journal, node: &mut Node, phase: Phase, step: Option<&str>, sql: &str, tolerate: &[u16]) -> Result<()> {
    execute(j, node, Stmt { tolerate, ..Stmt::new(phase, step, sql) }).await
}

/// [`run`] for a statement that carries a credential: the journal gets `journaled` (the statement
/// with its credential clause redacted), never `sql`.
pub async fn run_redacted(j: &mut Journal, node: &mut Node, phase: Phase, step: Option<&str>, sql: &str, journaled: &str) -> Result<()> {
    execute(j, node, Stmt { redacted: Some(journaled), ..Stmt::new(phase, step, sql) }).await
}

/// [`run`] for a setting, journaling the statement that turns it back off.
pub async fn run_with_undo(
    j: &mut Journal,
    node: &mut Node,
    phase: Phase,
    step: Option<&str>,
    sql: &str,
    undo: Option<&str>,
    tolerate: &[u16],
) -> Result<()> {
    execute(j, node, Stmt { undo, tolerate, ..Stmt::new(phase, step, sql) }).await
}

/// Runs `body` on `node` with binary logging off for its session (`sql_log_bin = 0`, journaled
/// as step `no-binlog`), and turns it back on (`binlog`) whatever `body` returned: changes that
/// must not replicate (a fence on the primary, an account created on a replica) and must leave
/// the connection logging again. The first error wins.
pub async fn unlogged<T>(
    j: &mut Journal,
    node: &mut Node,
    phase: Phase,
    body: impl AsyncFnOnce(&mut Journal, &mut Node) -> Result<T>,
) -> Result<T> {
    run(j, node, phase, Some("no-binlog"), "SET SESSION sql_log_bin = 0", &[]).await?;
    let result = body(j, node).await;
    let back = run(j, node, phase, Some("binlog"), "SET SESSION sql_log_bin = 1", &[]).await;
    match (result, back) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// The longest name `GET_LOCK` takes (MySQL refuses longer names; MariaDB takes them, so the
/// two flavours would disagree about a long service name).
pub const LOCK_NAME_MAX: usize = 64;

/// A lock name for `GET_LOCK` from `prefix` and a free-form `key` (a service name): the key as
/// is when it fits, else its head and a hash of the whole, so two long names never share a lock.
pub fn lock_name(prefix: &str, key: &str) -> String {
    let full = format!("{prefix}{key}");
    if full.chars().count() <= LOCK_NAME_MAX {
        return full;
    }
    let hash = fnv1a(key.as_bytes());
    let room = LOCK_NAME_MAX - prefix.chars().count() - 17;
    let head: String = key.chars().take(room).collect();
    format!("{prefix}{head}#{hash:016x}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Takes the named server lock `name` on `server`'s connection (held until that connection
/// closes; a read, so it needs no journal). Waits up to `wait_s` seconds; false when someone
/// else holds it.
pub async fn lock(server: &mut Server, what: &str, name: &str, wait_s: u32) -> Result<bool> {
    let sql = format!("SELECT GET_LOCK({}, {wait_s})", crate::model::ident::quote_str(name));
    let got: Option<Option<i64>> = server.first(what, &sql).await?;
    Ok(got.flatten() == Some(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_and_stay_distinct() {
        assert_eq!(lock_name("privfence.session.", "shop"), "privfence.session.shop");
        let long_a = "a".repeat(100) + "x";
        let long_b = "a".repeat(100) + "y";
        let (a, b) = (lock_name("privfence.session.", &long_a), lock_name("privfence.session.", &long_b));
        assert!(a.chars().count() <= LOCK_NAME_MAX && b.chars().count() <= LOCK_NAME_MAX);
        assert_ne!(a, b);
        let uni = "ü".repeat(80);
        assert!(lock_name("p.", &uni).chars().count() <= LOCK_NAME_MAX);
    }
}
