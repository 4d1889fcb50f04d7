//! Crash points, for the crash tests: `PRIVFENCE_CRASH_AT=N` makes the process SIGKILL itself at
//! the N-th durable point (after each journal fsync, and after each statement ran on a server
//! but before its outcome was written). `PRIVFENCE_CRASH_TRACE=1` prints every point passed to
//! stderr as `privfence crash point N: label`, so a test can count them.
//!
//! Unset (always, outside tests), a point costs one relaxed atomic increment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static PASSED: AtomicU64 = AtomicU64::new(0);

struct Config {
    at: Option<u64>,
    at_label: Option<String>,
    trace: bool,
}

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config {
        at: std::env::var("PRIVFENCE_CRASH_AT").ok().and_then(|v| v.parse().ok()),
        at_label: std::env::var("PRIVFENCE_CRASH_AT_LABEL").ok().filter(|v| !v.is_empty()),
        trace: std::env::var_os("PRIVFENCE_CRASH_TRACE").is_some(),
    })
}

/// Passes one crash point.
pub fn point(label: &str) {
    let n = PASSED.fetch_add(1, Ordering::Relaxed) + 1;
    let c = config();
    if c.trace {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "privfence crash point {n}: {label}");
    }
    if c.at == Some(n) || c.at_label.as_deref().is_some_and(|l| label.starts_with(l)) {
        // SAFETY: signalling our own process; SIGKILL cannot be caught, like a real crash.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
