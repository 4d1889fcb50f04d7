//! Crash points, for the crash tests: `PRIVFENCE_CRASH_AT=N` makes the process SIGKILL itself at
//! the N-th durable point (after each journal fsync, and after each statement ran on a server
//! but before its outcome was written). `PRIVFENCE_CRASH_TRACE=1` prints every point passed to
//! stderr as `privfence crash point N: label`, so a test can count them.
//!
//! `PRIVFENCE_STALL_AT_LABEL=LABEL:MS` makes the process sleep MS milliseconds at the first point
//! whose label starts with LABEL (the signal tests use it to be sure a signal arrives in the
//! middle of a restore).
//!
//! Unset (always, outside tests), a point costs one relaxed atomic increment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static PASSED: AtomicU64 = AtomicU64::new(0);

struct Config {
    at: Option<u64>,
    at_label: Option<String>,
    trace: bool,
    stall: Option<(String, u64)>,
}

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config {
        at: std::env::var("PRIVFENCE_CRASH_AT").ok().and_then(|v| v.parse().ok()),
        at_label: std::env::var("PRIVFENCE_CRASH_AT_LABEL").ok().filter(|v| !v.is_empty()),
        trace: std::env::var_os("PRIVFENCE_CRASH_TRACE").is_some(),
        stall: std::env::var("PRIVFENCE_STALL_AT_LABEL").ok().and_then(|v| {
            let (label, ms) = v.rsplit_once(':')?;
            Some((label.to_string(), ms.parse().ok()?))
        }),
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
    if let Some((l, ms)) = &c.stall {
        static STALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if label.starts_with(l.as_str()) && !STALLED.swap(true, Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(*ms));
        }
    }
    if c.at == Some(n) || c.at_label.as_deref().is_some_and(|l| label.starts_with(l)) {
        // SAFETY: signalling our own process; SIGKILL cannot be caught, like a real crash.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
