//! Typed errors of the core, and the documented exit codes.
//!
//! Core functions return [`Error`]; the CLI wraps them in `anyhow` with context and maps them to
//! an [`ExitCode`]. Messages say what went wrong and what to do next. None of them ever carries
//! a password or a password hash: connection targets are rendered without credentials.

use std::path::PathBuf;

/// Process exit codes. They are part of the CLI contract (see README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success; for checks, nothing found.
    Ok = 0,
    /// The command ran and found something: drift, a `--verify` mismatch.
    Found = 1,
    /// The command could not do its job (bad input, unreachable server, missing privilege).
    Error = 2,
    /// A guided session restored an account.
    RolledBack = 3,
    /// A journal needs attention: a restore could not finish, or was not exact.
    JournalAttention = 4,
    /// A watch window ended without evidence either way.
    Inconclusive = 5,
}

/// Errors of the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {source}{}", connect_hint(source))]
    Connect {
        /// `user@host:port` or `user@socket`, never with a password.
        target: String,
        #[source]
        source: mysql_async::Error,
    },

    /// A read query failed.
    #[error("{what} failed on {target}: {source}")]
    Query {
        what: String,
        target: String,
        #[source]
        source: mysql_async::Error,
    },

    /// A statement that changes a server was sent through a read path (a bug in privfence:
    /// every change goes through the journaling executor, `engine::exec`).
    #[error("{what}: refused to send a statement that is not a read through a read path ({start}...); changes to a server go through the journaling executor")]
    NotARead { what: String, start: String },

    /// privfence's own account lacks a privilege it needs to give a truthful answer.
    #[error("{target}: privfence's account {account} cannot {what}: it needs {needed}. {hint}")]
    MissingPrivilege { target: String, account: String, what: String, needed: String, hint: String },

    /// An option file could not be read or parsed.
    #[error("{}:{line}: {message}", path.display())]
    OptionFile { path: PathBuf, line: usize, message: String },

    /// A command-line argument, URL or name is malformed.
    #[error("{0}")]
    BadInput(String),

    /// A named table does not exist (or matches nothing).
    #[error("no table matches {0}; check the name (schema.table, `*` as wildcard) and lower_case_table_names")]
    UnknownTable(String),

    /// A named account does not exist.
    #[error("no account {0} on this server; `privfence inventory` lists the accounts")]
    UnknownAccount(String),

    /// A statement that changes the server failed (the journal has its intent and outcome).
    #[error("{server}: {sql}: {source}")]
    Statement {
        server: String,
        sql: String,
        #[source]
        source: mysql_async::Error,
    },

    /// A statement carrying a credential failed; only the server's error code is kept, since
    /// its message may quote the statement.
    #[error("{server}: {sql}: {outcome}")]
    RedactedStatement { server: String, sql: String, outcome: String },

    /// A table cannot be compared, copied or synced as it is defined: no usable key, a column
    /// type that cannot bound a chunk, definitions that differ between the servers, a tombstone
    /// table that does not match, a view where a table was named. Nothing was read or changed;
    /// the message says what to change. Exit 2.
    #[error("{0}")]
    Definition(String),

    /// Two copies that must agree do not: sync-back's copy changed behind its back, servers
    /// that differ where a cleanup needs them equal. Nothing of the failing batch was applied;
    /// the message says how to resync. Exit 2.
    #[error("{0}")]
    Diverged(String),

    /// Sync-back stopped or cannot keep up: a DDL on a service table, its lock lost to a revert,
    /// the stream ended, a statement on the copy failed, or it did not reach a position in
    /// time. What it applied is stored with its position; the message says how to go on. Exit 2.
    #[error("{0}")]
    SyncBack(String),

    /// The new server's binary log could not be read or decoded (a purged position, an event
    /// without its table map or without the full row image). Exit 2.
    #[error("{0}")]
    Binlog(String),

    /// The journal and what was asked disagree: another run holds the service's lock, a turn is
    /// still open, the promotion was aborted or is past the point of no return, a record a step
    /// needs is missing. This command changed nothing; `todo` names what resolves it. Exit 2.
    #[error("{what}; {todo}")]
    JournalState { what: String, todo: &'static str },

    /// A server is not the one the journal names (another `server_uuid`), or a server the journal
    /// needs was not given. Nothing was changed on it. Exit 2.
    #[error("{what}; {todo}")]
    WrongServer { what: String, todo: &'static str },

    /// A replica is not ready for the step: it did not apply a position within the limit, or its
    /// replication settings could not be read. The journal keeps the step; exit 2 (4 when a
    /// promotion step was left begun).
    #[error("{what}; {todo}")]
    ReplicaNotReady { what: String, todo: &'static str },

    /// Two servers (or a server and the journal's snapshot) differ where they must agree: an
    /// account's grants, the tables after the fence. Exit 2 (4 when a promotion step was left
    /// begun).
    #[error("{what}; {todo}")]
    Mismatch { what: String, todo: &'static str },

    /// An external command (a hook, the go command) or the smoke write failed or timed out.
    /// Exit 2 (4 when a promotion step was left begun).
    #[error("{what}; {todo}")]
    External { what: String, todo: &'static str },

    /// The work waits for the operator: a step that needs a decision or an option that was not
    /// given. Exit 2 (4 when a promotion step was left begun).
    #[error("{what}; {todo}")]
    NeedsOperator { what: String, todo: &'static str },

    /// A server setting leaves privfence unable to do the job safely (no privilege-error source
    /// to watch a cut with). Nothing was changed. Exit 2.
    #[error("{what}; {todo}")]
    Setting { what: String, todo: &'static str },

    /// privfence met a value it cannot interpret (a grant it cannot normalise, a step name it
    /// does not know): a bug or an unsupported server. Exit 2.
    #[error("{0}; please report this (with `privfence --version` and the server's version)")]
    Unexpected(String),

    /// Refused before anything changed (a preflight that failed, a fail-safe that cannot be
    /// armed); the message says why and what to do. Exit code 2.
    #[error("{0}")]
    Refused(String),

    /// A signal stopped the work between two statements; the journal keeps the state (exit 4).
    #[error("{0}")]
    Interrupted(String),

    /// Local I/O failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about a failed connection, by its cause.
fn connect_hint(e: &mysql_async::Error) -> &'static str {
    match e {
        mysql_async::Error::Server(se) if matches!(se.code, 1045 | 1698) => {
            " (check the user and its password: privfence reads it from option files, MYSQL_PWD or --password with no value, which prompts)"
        }
        mysql_async::Error::Server(se) if matches!(se.code, 3118 | 4151) => " (the account is locked: ALTER USER ... ACCOUNT UNLOCK)",
        mysql_async::Error::Server(se) if se.code == 1130 => {
            " (the server has no account for this client host; check the user's host part)"
        }
        mysql_async::Error::Io(_) => " (is the server running and listening on that host and port? `--connect-timeout` bounds the wait)",
        _ => "",
    }
}

/// An error and its causes as one line, each cause once: a wrapper whose message already quotes
/// its source (ours do, so that `to_string()` alone is complete; the driver's errors nest the same
/// message two or three deep) does not get it repeated, and a segment repeated back to back
/// (`Input/output error: Input/output error: ...`) is kept once.
pub fn chain_text<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    for cause in chain {
        let m = cause.to_string();
        if text.contains(&m) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&m);
    }
    let mut segments: Vec<&str> = Vec::new();
    for s in text.split(": ") {
        if segments.last() != Some(&s) {
            segments.push(s);
        }
    }
    segments.join(": ")
}

#[cfg(test)]
mod tests {
    use super::chain_text;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Leaf(String);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to u@h:1: {source}")]
    struct Outer {
        #[source]
        source: Leaf,
    }

    #[test]
    fn each_cause_once() {
        let leaf = "ERROR 1045 (28000): Access denied for user 'u'@'localhost' (using password: YES)";
        let e = anyhow::Error::new(Outer { source: Leaf(leaf.into()) }).context("reading the inventory");
        assert_eq!(chain_text(e.chain()), format!("reading the inventory: cannot connect to u@h:1: {leaf}"));
        let io = Leaf("Input/output error: Input/output error: Connection refused (os error 111)".into());
        assert_eq!(
            chain_text(std::iter::once(&io as &(dyn std::error::Error + 'static))),
            "Input/output error: Connection refused (os error 111)"
        );
    }
}
