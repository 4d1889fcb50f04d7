//! privfence: make a service's tables private to its own account inside a shared MySQL or
//! MariaDB database, one account at a time, without ever losing a grant.
//!
//! # Layout
//!
//! - [`cli`]: argument structs (clap) and one thin function per command; no logic.
//! - [`output`]: the one output object; data to stdout, status to stderr.
//! - [`error`]: typed errors of the core and the documented exit codes.
//! - [`model`]: pure types: names and quoting, privileges, grants, the inventory.
//! - [`db`]: connection options (option files, URL, environment, prompt, TLS), flavour detection.
//! - [`inventory`]: reads the grant tables and objects of a server into the model; `--verify`
//!   cross-checks the model against the privilege views and `SHOW GRANTS`.
//! - [`access`]: who can touch a table, with which privileges, through which path.
//! - [`capability`]: what privfence's own account may do; signal sources (`doctor`).
//! - [`policy`]: policy files (which service owns which tables), located diagnostics.
//! - [`audit`]: findings of servers against policies, fleets, baselines.
//! - [`plan`]: the rewrite that cuts one account off a service's tables, with its inverse and
//!   a self-check that simulates it.
//! - [`evidence`]: evidence of non-use per candidate account, with sources, spans and blind spots.
//! - [`journal`]: the session journal (write-ahead, fsynced, versioned) and crash points.
//! - [`session`]: guided revoke sessions: cut, watch, restore, recover; the only writer to servers.
//! - [`signals`]: one monitor per server: privilege errors, collateral errors, activity, restarts.
//! - [`workload`]: a simulated application (a pool with a default schema), for the demo and tests.
//! - [`compare`]: chunked, order-independent checksums of one table on two servers (promotion,
//!   verify and backfill share it).
//! - [`verify`]: `verify` and `backfill` between two independent servers, with tombstones.
//! - [`promote`]: replica promotion: preflight, comparison, write fence, promotion, orchestration.
//! - [`syncback`]: after a promotion, the new server's row changes copied back to the old primary's copy.
//! - [`notify`]: desktop notifications and command hooks.
//! - [`report`]: table, JSON and Markdown renderers.
//! - [`sandbox`]: private MariaDB and MySQL servers on loopback for the demo, tests and benchmarks.
//! - [`demo`]: the demo's sample monolith, its apps and session.

pub mod access;
pub mod audit;
pub mod capability;
pub mod cli;
pub mod compare;
pub mod db;
pub mod demo;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod inventory;
pub mod journal;
pub mod model;
pub mod notify;
pub mod output;
pub mod plan;
pub mod policy;
pub mod promote;
pub mod report;
pub mod sandbox;
pub mod session;
pub mod signals;
pub mod syncback;
pub mod verify;
pub mod workload;
