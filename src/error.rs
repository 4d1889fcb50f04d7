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
    #[error("cannot connect to {target}: {source}")]
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
    /// every change goes through the journaling executor, `session::exec`).
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

    /// A guided session cannot go on as asked; the message says why and what to do.
    #[error("{0}")]
    Session(String),

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
