//! `privfence session status`: the session's accounts and verdicts, from the journal alone.

use super::{journal_path, StatusArgs};
use crate::error::ExitCode;
use crate::journal::Journal;
use crate::output::{Format, Output};
use crate::report;
use std::time::Duration;

pub(super) fn status(a: StatusArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let path = journal_path(&a.service, &a.journal);
    let entries = Journal::read(&path)?;
    let state = crate::journal::State::fold(&entries);
    let r = report::session::build(&state, None);
    match if a.json { Format::Json } else { a.format.format } {
        Format::Json => out.data(&report::session::json(&r)?),
        Format::Tsv => out.data(&report::session::tsv(&r)),
        Format::Table => out.data(&report::session::table(&r)),
    }
    let running = std::fs::File::open(&path).map(|f| is_locked(&f)).unwrap_or(false);
    if let Some(t) = state.open_turn() {
        if let Some(f) = t.failsafe.as_ref().filter(|f| f.live()) {
            out.status(&failsafe_line(f, running, &entries));
        }
        if running {
            out.status(&format!("{} is in progress (a privfence process holds the journal)", t.account));
            return Ok(ExitCode::Ok);
        }
        out.status(&format!("{} was interrupted ({:?}): `privfence session resume` restores it exactly", t.account, t.status()));
        return Ok(ExitCode::JournalAttention);
    }
    if !state.settings_on.is_empty() {
        out.status("evidence settings are still on: `privfence session resume` turns them off");
        return Ok(ExitCode::JournalAttention);
    }
    Ok(ExitCode::Ok)
}

/// Whether a fail-safe is armed and when it would fire, from the journal alone.
fn failsafe_line(f: &crate::journal::FailsafeInfo, running: bool, entries: &[crate::journal::Entry]) -> String {
    let after = Duration::from_millis(f.after_ms());
    if f.fired.is_some() {
        return format!(
            "the server-side fail-safe {} fired (the server restored the account); `session resume` verifies and closes the turn",
            f.name
        );
    }
    if running {
        return format!(
            "a server-side fail-safe is armed on the primary: it restores the account {after:?} after privfence's heartbeat stops"
        );
    }
    let last = entries.last().map(|e| e.at).unwrap_or_else(chrono::Utc::now);
    let at = last + chrono::Duration::from_std(after).unwrap_or_default();
    format!(
        "a server-side fail-safe is armed on the primary and no privfence is running: it restores the account {after:?} after the last \
         heartbeat, which was at or after {} (so at {} at the earliest; already, if that has passed)",
        last.format("%H:%M:%S UTC"),
        at.format("%H:%M:%S UTC")
    )
}

fn is_locked(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open file descriptor. A successful probe is released at once.
    unsafe {
        if libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 {
            libc::flock(f.as_raw_fd(), libc::LOCK_UN);
            false
        } else {
            true
        }
    }
}
