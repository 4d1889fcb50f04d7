//! Private MariaDB 10.11 and MySQL 9 servers on loopback, for the tests, the demo and the
//! benchmarks.
//!
//! Start one with [`Sandbox::start`]; integration tests call [`shared()`], which starts one
//! sandbox per flavour and topology per test binary and stops it when the binary exits.
//!
//! # Layout
//!
//! - [`install`]: finds (or installs, via `scripts/install-servers.sh`) the programs: MariaDB
//!   from Debian, MySQL unpacked from Debian unstable into a private root and run through its
//!   own dynamic loader ([`Binaries`]).
//! - [`template`]: a set-up datadir per flavour and version, built once and cached under
//!   `${PRIVFENCE_CACHE:-$HOME/.cache/privfence}/templates/`, copied for each instance.
//! - [`server`]: one instance: file layout, server arguments, start and readiness, client
//!   commands ([`Server`]).
//! - [`lifecycle`]: a sandbox of one or two servers: start, stop, restart, destroy, status
//!   ([`Sandbox`]).
//! - [`replication`]: GTID replication set-up and catch-up waits.
//! - [`shared`](mod@shared): the per-test-binary sandboxes.
//! - `process`: spawning servers under a watchdog, stopping them, free ports.
//! - `relay`: a loopback TCP relay giving MariaDB's client a chosen source address.
//! - `state`: `sandbox.json`; `optfile`: 0600 `[client]` option files; `folder`: folders.
//! - [`error`]: the error type, [`SandboxError`].
//!
//! # Server configuration
//!
//! Every instance: `--no-defaults`, loopback only, its own port, datadir, socket, pid file and
//! error log; `performance_schema=ON`; binary log and a distinct `server_id` (so even a single
//! server has GTIDs); `log_bin_trust_function_creators=1`. MySQL adds GTID mode and
//! `--secure-file-priv=`; MariaDB adds `userstat=1` and the `sql_errlog` plugin writing to
//! [`Server::sql_errlog`]. A replica runs with `read_only=ON` (not `super_read_only`). Redo
//! logs are small and commits are not flushed, for speed; durability does not matter here.
//! [`SandboxOptions::extra_args`] come last, so they override any of these.
#![allow(clippy::disallowed_methods)] // private servers: set-up, replication, templates (clippy.toml)

pub mod error;
mod folder;
pub mod install;
pub mod lifecycle;
mod optfile;
mod process;
pub(crate) mod relay;
pub mod replication;
pub mod server;
pub mod shared;
mod state;
pub mod template;

pub use error::SandboxError;
pub use install::{ensure_installed, Binaries};
pub use lifecycle::{Sandbox, ServerStatus};
pub use replication::ReplicationState;
pub use server::Server;
pub use shared::shared;

use crate::db::Flavour;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which servers a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// One server (the primary).
    Single,
    /// A primary and a GTID replica of it.
    PrimaryReplica,
}

/// A server's place in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The writable server.
    Primary,
    /// The read-only replica of the primary.
    Replica,
}

impl Role {
    /// `primary` or `replica`: the server's folder name and its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }

    /// The `--server-id` of this role (replication needs them distinct).
    pub fn server_id(self) -> u32 {
        match self {
            Role::Primary => 1,
            Role::Replica => 2,
        }
    }
}

/// What [`Sandbox::start`] should start.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// MySQL or MariaDB.
    pub flavour: Flavour,
    /// One server, or a primary and a replica.
    pub topology: Topology,
    /// Where to put the sandbox. `None`: a fresh folder in the temporary directory, removed
    /// when the sandbox is destroyed or dropped, or when the watched process ends.
    pub dir: Option<PathBuf>,
    /// Stop the servers when this process ends (tests pass their own pid). A supervisor polls
    /// it twice a second; `PR_SET_PDEATHSIG` cannot do this, as it fires when the spawning
    /// *thread* ends. `None`: the servers outlive the process that started them.
    pub watch_pid: Option<u32>,
    /// More server arguments, appended last (so they override the defaults).
    pub extra_args: Vec<String>,
}

impl SandboxOptions {
    /// A temporary sandbox that dies with this process, with default server arguments.
    pub fn new(flavour: Flavour, topology: Topology) -> SandboxOptions {
        SandboxOptions { flavour, topology, dir: None, watch_pid: Some(std::process::id()), extra_args: Vec::new() }
    }
}

/// `${PRIVFENCE_CACHE:-$HOME/.cache/privfence}`: the unpacked MySQL and the templates.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PRIVFENCE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache/privfence"),
        None => std::env::temp_dir().join("privfence-cache"),
    }
}

/// Reports slow one-time work (installing, building a template) on stderr. The harness runs
/// inside tests and benchmarks, where no output object exists, and a minute of silence would
/// look like a hang.
#[allow(clippy::print_stderr)]
pub(crate) fn note(msg: &str) {
    eprintln!("privfence sandbox: {msg}");
}
