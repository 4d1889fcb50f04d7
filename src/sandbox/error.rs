//! What can go wrong while provisioning or running sandbox servers.
//!
//! Every message ends with what to do next, because the person reading it is usually looking at a
//! failed test run, not at this code.

use crate::db::Flavour;
use std::path::PathBuf;

/// An error from the sandbox harness.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The server binaries are missing and `scripts/install-servers.sh` could not provide them.
    #[error("{} could not be provisioned: {detail}; run `scripts/install-servers.sh {}` ({})",
        server_name(*flavour), flavour.name(), install_hint(*flavour))]
    NotInstalled {
        /// Which server family is missing.
        flavour: Flavour,
        /// What was tried and what failed (the script's last lines of output, or the missing file).
        detail: String,
    },

    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing, with the path or program involved.
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// Initialising or setting up the cached template datadir failed.
    #[error("building the {flavour} template datadir failed: {detail}; delete {} and retry, \
             or look at the log lines above", dir.display())]
    Template {
        /// Which server family.
        flavour: Flavour,
        /// The template folder (or its build folder) to delete before retrying.
        dir: PathBuf,
        /// What failed, with the tail of the server's log when there is one.
        detail: String,
    },

    /// A server process did not come up (exited, or never accepted a login before the deadline).
    #[error("the {flavour} {role} server did not start: {detail}\n--- last lines of {} ---\n{log_tail}\n\
             --- end --- (the whole log and datadir are kept in that folder)", log.display())]
    Start {
        /// Which server family.
        flavour: Flavour,
        /// `primary` or `replica`.
        role: &'static str,
        /// What was observed (exit status, timeout, last connection error).
        detail: String,
        /// The server's error log.
        log: PathBuf,
        /// The last lines of that log, which usually name the cause.
        log_tail: String,
    },

    /// A statement the harness runs to set a server up failed.
    #[error("{what} on the {flavour} server at 127.0.0.1:{port} failed: {source}")]
    Sql {
        /// The step, e.g. `configuring replication`.
        what: String,
        /// Which server family.
        flavour: Flavour,
        /// The server's TCP port, to tell primary and replica apart.
        port: u16,
        #[source]
        source: mysql_async::Error,
    },

    /// Replication did not reach the expected state in time.
    #[error("replication on the {flavour} sandbox: {detail}; the replica's error log is {}",
        log.display())]
    Replication {
        /// Which server family.
        flavour: Flavour,
        /// The replica's own status fields (thread states, last errors) or the wait that failed.
        detail: String,
        /// The replica's error log.
        log: PathBuf,
    },

    /// The sandbox folder or its `sandbox.json` is unusable.
    #[error("sandbox state in {}: {detail}", dir.display())]
    State {
        /// The sandbox folder.
        dir: PathBuf,
        /// What is wrong and what to do (e.g. "no sandbox.json: start one first").
        detail: String,
    },

    /// A server did not stop after SIGTERM and SIGKILL.
    #[error("the {flavour} {role} server (pid {pid}) did not stop; kill it by hand: kill -9 {pid}")]
    Stop {
        /// Which server family.
        flavour: Flavour,
        /// `primary` or `replica`.
        role: &'static str,
        /// The process that is still there.
        pid: u32,
    },
}

impl SandboxError {
    /// Wraps an I/O error with what the harness was doing.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        SandboxError::Io { what: what.into(), source }
    }
}

fn server_name(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::MySql => "MySQL 9",
        Flavour::MariaDb => "MariaDB 10.11",
    }
}

fn install_hint(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::MySql => "needs Debian sid packages from the machine's own Debian archive (its apt sources)",
        Flavour::MariaDb => "needs apt and the Debian archive",
    }
}
