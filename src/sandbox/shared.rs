//! One sandbox per flavour and topology per test binary, started on first use.
//!
//! Tests share these servers to stay fast on small machines, so each test works in its own
//! schema and accounts. The servers watch the test process and stop (their temporary folders
//! removed) when it exits; nothing else tears them down, since statics are never dropped.

use super::{Sandbox, SandboxError, SandboxOptions, Topology};
use crate::db::Flavour;
use std::sync::OnceLock;

/// The shared sandbox for `flavour` and `topology`, started on the first call (which blocks
/// until the servers accept logins). Safe to call from any thread or async test.
///
/// # Panics
/// When the servers cannot be provisioned, with a message naming what to install. Tests that
/// need a server must fail, never skip, when it is missing.
pub fn shared(flavour: Flavour, topology: Topology) -> &'static Sandbox {
    // The Err keeps the first failure, so later tests fail fast instead of retrying.
    static CELLS: [OnceLock<Result<Sandbox, String>>; 4] = [const { OnceLock::new() }; 4];
    let index = flavour as usize * 2 + topology as usize;
    match CELLS[index].get_or_init(|| start(flavour, topology)) {
        Ok(sandbox) => sandbox,
        Err(msg) => panic!("{msg}"),
    }
}

/// Starts the sandbox on a dedicated thread and runtime: the caller may be inside an async
/// test, where blocking on another runtime is not allowed. The sandbox holds no connections,
/// so it outlives that runtime unharmed.
fn start(flavour: Flavour, topology: Topology) -> Result<Sandbox, String> {
    let opts = SandboxOptions::new(flavour, topology);
    let joined = std::thread::Builder::new()
        .name(format!("sandbox-{}", flavour.name()))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SandboxError::io("building a tokio runtime", e))?;
            rt.block_on(Sandbox::start(opts))
        })
        .map_err(|e| format!("spawning the sandbox thread: {e}"))?
        .join();
    match joined {
        Ok(Ok(sandbox)) => Ok(sandbox),
        Ok(Err(e @ SandboxError::NotInstalled { .. })) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("the shared {flavour} sandbox could not be started: {e}")),
        Err(_) => Err(format!("the thread starting the shared {flavour} sandbox panicked")),
    }
}
