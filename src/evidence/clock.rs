//! Server time: now, when the server started, and performance_schema timers as wall time.
//!
//! performance_schema timers (`TIMER_START`, picoseconds) count from its initialisation at
//! server start (seen on both flavours: a statement's own `TIMER_START` was within a second of
//! `Uptime`), so an event happened at `start + TIMER_START`, to about a second. Times are the
//! server's local time, as `NOW()` gives it.

use crate::db::server::text;
use crate::db::Server;
use crate::error::Result;
use chrono::{Duration, NaiveDateTime};

const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The server's clock at the time evidence was gathered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub now: NaiveDateTime,
    /// Seconds since the server started (`Uptime`).
    pub uptime: u64,
}

impl Clock {
    pub async fn read(server: &mut Server) -> Result<Clock> {
        let rows = server.rows("reading the server clock", "SELECT CAST(NOW() AS CHAR)").await?;
        let now = rows.first().and_then(|r| parse(&text(r, 0))).unwrap_or_else(|| chrono::Local::now().naive_local());
        let status = server.rows("reading Uptime", "SHOW GLOBAL STATUS LIKE 'Uptime'").await?;
        let uptime = status.first().and_then(|r| text(r, 1).parse().ok()).unwrap_or(0);
        Ok(Clock { now, uptime })
    }

    pub fn started(&self) -> NaiveDateTime {
        self.now - Duration::seconds(self.uptime as i64)
    }

    /// Wall time of a performance_schema timer value.
    pub fn at_timer(&self, picoseconds: u64) -> NaiveDateTime {
        self.started() + Duration::milliseconds((picoseconds / 1_000_000_000) as i64)
    }

    /// `since server start <time> (up <duration>)`.
    pub fn since_start(&self) -> String {
        format!("since server start {} (up {})", fmt(self.started()), human(self.uptime))
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub(crate) fn parse(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}

pub(crate) fn fmt(t: NaiveDateTime) -> String {
    t.format(FORMAT).to_string()
}

/// `45 s`, `12 min`, `3 h 5 min`, `4 d 2 h`.
pub(crate) fn human(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_and_spans() {
        let now = parse("2026-11-22 10:00:00").unwrap();
        let c = Clock { now, uptime: 3600 };
        assert_eq!(fmt(c.started()), "2026-11-22 09:00:00");
        assert_eq!(fmt(c.at_timer(90 * 1_000_000_000_000)), "2026-11-22 09:01:30");
        assert_eq!(c.since_start(), "since server start 2026-11-22 09:00:00 (up 1 h 0 min)");
        assert_eq!(parse("2026-11-22 01:39:14.456801").map(fmt).as_deref(), Some("2026-11-22 01:39:14"));
        assert_eq!(human(59), "59 s");
        assert_eq!(human(200_000), "2 d 7 h");
    }
}
