//! The journaling executor: the only code that changes a server. Each statement's intent is
//! fsynced before it runs and its outcome after; between the two is a crash point, so the crash
//! tests can die "after the statement ran, before its outcome was written".
#![allow(clippy::disallowed_methods)] // the journaling executor: the only caller of Server::execute (clippy.toml)

use super::node::Node;
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

/// Runs one statement on `node`, journaled. Errors whose code is in `tolerate` count as done
/// (and are journaled as such, with the server's message).
pub async fn run(j: &mut Journal, node: &mut Node, phase: Phase, step: Option<&str>, sql: &str, tolerate: &[u16]) -> Result<()> {
    run_with_undo(j, node, phase, step, sql, None, tolerate).await
}

/// [`run`] for a statement that carries a credential (a password hash copied between servers):
/// the journal gets `journaled` (the statement with its credential clause redacted), never `sql`.
pub async fn run_redacted(j: &mut Journal, node: &mut Node, phase: Phase, step: Option<&str>, sql: &str, journaled: &str) -> Result<()> {
    let op = j.next_op();
    j.append(Record::Intent {
        op,
        server: node.name.clone(),
        phase,
        step: step.map(str::to_string),
        sql: journaled.to_string(),
        undo: None,
    })?;
    let result = node.server.execute(sql).await;
    crash::point(&format!("executed op {op}"));
    match result {
        Ok(()) => {
            j.append(Record::Outcome { op, ok: true, error: None })?;
            Ok(())
        }
        Err(e) => {
            // Server messages quote the statement rarely, but never risk it: the code only.
            let code = match &e {
                mysql_async::Error::Server(se) => format!("server error {}", se.code),
                _ => "the connection failed: the statement may or may not have run".to_string(),
            };
            j.append(Record::Outcome { op, ok: false, error: Some(code.clone()) })?;
            Err(Error::Session(format!("{}: {journaled}: {code}", node.name)))
        }
    }
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
    let op = j.next_op();
    j.append(Record::Intent {
        op,
        server: node.name.clone(),
        phase,
        step: step.map(str::to_string),
        sql: sql.to_string(),
        undo: undo.map(str::to_string),
    })?;
    let result = node.server.execute(sql).await;
    crash::point(&format!("executed op {op}"));
    match result {
        Ok(()) => {
            j.append(Record::Outcome { op, ok: true, error: None })?;
            Ok(())
        }
        Err(mysql_async::Error::Server(se)) if tolerate.contains(&se.code) => {
            j.append(Record::Outcome { op, ok: true, error: Some(format!("tolerated {}: {}", se.code, se.message)) })?;
            Ok(())
        }
        Err(e) => {
            let known = matches!(e, mysql_async::Error::Server(_));
            let text = if known { e.to_string() } else { format!("{e} (the connection failed: the statement may or may not have run)") };
            j.append(Record::Outcome { op, ok: false, error: Some(text) })?;
            Err(Error::Statement { server: node.name.clone(), sql: sql.to_string(), source: e })
        }
    }
}
