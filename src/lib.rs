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
//!   cross-checks the model against `SHOW GRANTS`.
//! - [`access`]: who can touch a table, with which privileges, through which path.
//! - [`report`]: table and JSON renderers.
//! - [`sandbox`]: private MariaDB and MySQL servers on loopback for the demo, tests and benchmarks.

pub mod access;
pub mod audit;
pub mod capability;
pub mod cli;
pub mod db;
pub mod demo;
pub mod error;
pub mod inventory;
pub mod model;
pub mod notify;
pub mod output;
pub mod plan;
pub mod policy;
pub mod report;
pub mod sandbox;
