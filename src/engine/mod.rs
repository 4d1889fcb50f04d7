//! The engine: the only code that changes servers, shared by every workflow (guided sessions,
//! promotion, the fail-safe, backfill, sync-back).
//!
//! - [`exec`]: the journaling executor, one intent → execute → outcome path (redaction and undo
//!   are options of it), statements run with binary logging off, the named server lock.
//! - [`node`]: the servers a workflow changes, their identities and replication positions.
//! - [`snapshot`]: an account's exact grants, read before a change and compared after a restore.
//! - [`failsafe`]: the server-side undo that fires when privfence dies or hangs.
//! - [`interrupt`]: signals turned into restores.
//! - [`shared`]: global settings two privfence processes rely on, turned off by the last one.
//! - [`command`]: the one runner of external commands (hooks, checks, go commands, notification
//!   commands), with a timeout and a process-group kill.
//!
//! Workflows (`session`, `promote`, `verify`, `syncback`) depend on the engine; the engine
//! depends only on `db`, `journal` and `model`.

pub mod command;
pub mod exec;
pub mod failsafe;
pub mod interrupt;
pub mod node;
pub mod shared;
pub mod snapshot;
