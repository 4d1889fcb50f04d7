//! Global settings shared by privfence processes on one server: turned back off only when no
//! other privfence process still relies on them.
//!
//! Two privfence processes on one server (two services' sessions, a session and a promotion)
//! share its global settings. The first to turn one on journals its undo; the other finds it on,
//! relies on it and journals nothing. The first to end must not pull it from under the other:
//!
//! - `event_scheduler` runs every fail-safe. It stays on while any fail-safe event
//!   (`privfence`.`failsafe_*`, enabled) remains, whether the process that armed it is alive or
//!   dead: a dead process's fail-safe is the one that must still fire.
//! - The watch's settings (statement consumers, MariaDB's `userstat`) stay on while another
//!   privfence watch runs there: each monitor holds one of [`WATCH_SLOTS`] user-level locks on
//!   its connection while it watches, so a watch that ended (or died) holds none.
//!
//! A setting left on stays on in the journal: the next turn's end, or `session resume`, tries
//! again. A watch that still loses a setting (an operator turned it off) sees it at its next poll
//! (`signals::monitor`, `AlarmKind::SettingOff`).

use crate::db::server::opt_text;
use crate::db::Server;
use crate::error::Result;
use crate::model::ident::quote_str;

/// The journal step of `event_scheduler` turned on for a fail-safe (sessions and promotions).
pub const EVENT_SCHEDULER_STEP: &str = "event_scheduler";

/// How many privfence watches one server can tell apart; more still watch, unseen by the others.
pub const WATCH_SLOTS: usize = 16;

fn slot(i: usize) -> String {
    format!("privfence:watch:{i}")
}

/// Takes a free watch slot on this connection (held until it closes). `None` when all are taken.
pub async fn take_watch_slot(server: &mut Server) -> Result<Option<usize>> {
    for i in 0..WATCH_SLOTS {
        let got: Option<u64> = server.first("taking a watch slot", &format!("SELECT GET_LOCK({}, 0)", quote_str(&slot(i)))).await?;
        if got == Some(1) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Gives back the watch slot this connection holds, if any.
pub async fn release_watch_slot(server: &mut Server) -> Result<()> {
    let cols: Vec<String> = (0..WATCH_SLOTS)
        .map(|i| format!("IF(IS_USED_LOCK({n}) = CONNECTION_ID(), RELEASE_LOCK({n}), 0)", n = quote_str(&slot(i))))
        .collect();
    server.rows("giving back the watch slot", &format!("SELECT {}", cols.join(", "))).await?;
    Ok(())
}

/// The connection ids of the privfence watches running on the server.
pub async fn watches(server: &mut Server) -> Result<Vec<u64>> {
    let cols: Vec<String> = (0..WATCH_SLOTS).map(|i| format!("IS_USED_LOCK({})", quote_str(&slot(i)))).collect();
    let rows = server.rows("reading the watch slots", &format!("SELECT {}", cols.join(", "))).await?;
    Ok(rows.first().map(|r| (0..WATCH_SLOTS).filter_map(|i| opt_text(r, i)?.parse().ok()).collect()).unwrap_or_default())
}

/// Why the setting journaled as `step` must stay on, if another privfence process still relies
/// on it; `None` when it may be turned off.
pub async fn still_needed(server: &mut Server, step: &str) -> Result<Option<String>> {
    if step == EVENT_SCHEDULER_STEP {
        let n: u64 = server
            .first(
                "counting armed fail-safes",
                "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'privfence' AND EVENT_NAME LIKE 'failsafe\\_%' AND STATUS = 'ENABLED'",
            )
            .await?
            .unwrap_or(0);
        return Ok((n > 0).then(|| format!("{n} fail-safe event(s) of other privfence runs are still armed there and need it")));
    }
    let others = watches(server).await?;
    Ok((!others.is_empty()).then(|| {
        let ids: Vec<String> = others.iter().map(u64::to_string).collect();
        format!("another privfence watch is running there (connection {}) and relies on it", ids.join(", "))
    }))
}
