//! Statement history of live connections: `events_statements_history` (and `_history_long`)
//! joined with `threads` for the user. Statement text is parsed for references to the service
//! tables and dropped; only digests, tables and connection ids are cited.
//!
//! Completeness: when every statement the user ran since start (the account counters' total) is
//! still retained and attributable, the history saw everything, and seeing no service table is
//! NotSeen. Otherwise (statements of ended connections, older than the ring) it is Unknown.
//!
//! Sampling: history rows vanish with their connection, so reading every second over a window
//! attributes the statements of connections that end during it (a pool recycling connections,
//! a cron job), as long as each lived through one read. A window also gives a second, shorter
//! completeness check: the statements the user ran during the window (the totals' difference)
//! against the retained ones that started after it opened. That is what makes an account active
//! during the window NotSeen on MariaDB, whose history is only on while privfence samples; an
//! account idle during the window stays Unknown.

use super::super::clock::fmt;
use super::super::targets::Hit;
use super::super::{Collected, Ctx, Evidence, Usage};
use super::{num, short, State};
use crate::db::server::{opt_text, text};
use crate::db::Server;
use crate::model::ident::quote_str;
use chrono::NaiveDateTime;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SOURCE: &str = "performance_schema statement history of live connections (events_statements_history, _history_long, threads)";

/// How many cited rows an item keeps.
const MAX_ROWS: usize = 10;

/// What the history shows for one user name.
#[derive(Default)]
struct Seen {
    /// (thread, event) of every retained statement.
    events: BTreeSet<(u64, u64)>,
    /// Service-table references: (digest, hit) -> (latest time, connection id).
    hits: BTreeMap<(String, Hit), (NaiveDateTime, u64)>,
    oldest: Option<NaiveDateTime>,
    latest: Option<NaiveDateTime>,
    /// Statements without a reference whose text was cut at the length limit.
    truncated: u64,
    /// Retained statements that started after the sampling window opened.
    in_window: u64,
}

/// How often the history is read while sampling.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What sampling the history found, per user name.
pub(super) struct Sampled {
    seen: BTreeMap<String, Seen>,
    samples: u32,
    window: Duration,
    per_thread: String,
    max_text: usize,
    /// What `_history_long` holds, for the blind spots.
    ring: String,
    /// For a window: statements per user when it opened, and its start as a timer value.
    opened: Option<(BTreeMap<String, u64>, u64)>,
}

/// Reads the history of the candidates' live connections, every second for `window` (once when
/// it is zero), keeping each statement once. `Err` says why there is no history.
pub(super) async fn sample(server: &mut Server, ctx: &Ctx, state: &State, window: Duration) -> Result<Sampled, String> {
    let off: Vec<&str> = ["global_instrumentation", "thread_instrumentation", "events_statements_current"]
        .into_iter()
        .filter(|c| !state.consumer(c))
        .collect();
    let (hist, long) = (state.consumer("events_statements_history"), state.consumer("events_statements_history_long"));
    if !off.is_empty() || !(hist || long) {
        let mut why: Vec<&str> = off;
        if !hist {
            why.push("events_statements_history");
        }
        return Err(format!("no statement history is kept: consumer {} off (privfence can turn it on for a session)", why.join(", ")));
    }
    let limits: Option<(Option<String>, Option<String>)> = server
        .first(
            "reading history sizes",
            "SELECT @@performance_schema_max_sql_text_length, @@performance_schema_events_statements_history_size",
        )
        .await
        .ok()
        .flatten();
    let max_text: usize = limits.as_ref().and_then(|l| l.0.as_deref()?.parse().ok()).unwrap_or(1024);
    let per_thread = limits.as_ref().and_then(|l| l.1.clone()).unwrap_or_else(|| "10".into());
    let tables: Vec<&str> = [(hist, "events_statements_history"), (long, "events_statements_history_long")]
        .into_iter()
        .filter_map(|(on, t)| on.then_some(t))
        .collect();
    let opened = if window.is_zero() { None } else { open_window(server, ctx).await };
    let t0 = opened.as_ref().map(|(_, t)| *t);
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let deadline = Instant::now() + window;
    let mut samples = 0;
    loop {
        for table in &tables {
            let sql = format!(
                "SELECT t.PROCESSLIST_USER, t.PROCESSLIST_ID, h.THREAD_ID, h.EVENT_ID, h.CURRENT_SCHEMA, h.DIGEST, h.SQL_TEXT, \
                 h.DIGEST_TEXT, h.TIMER_START FROM performance_schema.{table} h \
                 JOIN performance_schema.threads t ON t.THREAD_ID = h.THREAD_ID WHERE t.PROCESSLIST_USER IN ({})",
                ctx.users.sql_list()
            );
            let rows = server.rows("reading statement history", &sql).await.map_err(|e| e.to_string())?;
            for r in &rows {
                record(seen.entry(text(r, 0)).or_default(), r, ctx, max_text, t0);
            }
        }
        samples += 1;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(SAMPLE_EVERY.min(deadline - now)).await;
    }
    let ring = if long { long_span(server, ctx).await } else { "events_statements_history_long is off".to_string() };
    Ok(Sampled { seen, samples, window, per_thread, max_text, ring, opened })
}

/// The statement totals per user, then this connection's own statement timer: a statement that
/// started at or after it started after the totals were read. `None` when either is unreadable
/// (privfence's own statements may not be instrumented).
async fn open_window(server: &mut Server, ctx: &Ctx) -> Option<(BTreeMap<String, u64>, u64)> {
    let totals = super::statements_per_user(server, ctx).await.ok()?;
    let sql = "SELECT TIMER_START FROM performance_schema.events_statements_current \
               WHERE THREAD_ID = (SELECT THREAD_ID FROM performance_schema.threads WHERE PROCESSLIST_ID = CONNECTION_ID())";
    let rows = server.rows("reading this connection's statement timer", sql).await.ok()?;
    let t0 = rows.first().map(|r| num(r, 0)).filter(|t| *t > 0)?;
    Some((totals, t0))
}

/// Turns the samples into one item per candidate. `totals` are the statements per user since
/// start, read *after* the last sample, so a retained count that reaches it proves completeness.
pub(super) fn judge(
    ctx: &Ctx,
    state: &State,
    sampled: Result<Sampled, String>,
    totals: Option<&BTreeMap<String, u64>>,
    out: &mut Collected,
) {
    let mut sampled = match sampled {
        Ok(s) => s,
        Err(why) => return out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, why)),
    };
    let ended = if sampled.samples > 1 {
        format!(
            "statements of connections that ended between two samples cannot be attributed (read {} times over {} s)",
            sampled.samples,
            sampled.window.as_secs()
        )
    } else {
        "statements of ended connections cannot be attributed (threads lists live connections only)".to_string()
    };
    for user in ctx.users.names() {
        let s = sampled.seen.remove(user).unwrap_or_default();
        let total = totals.and_then(|t| t.get(user).copied());
        if total == Some(0) && s.events.is_empty() {
            continue; // the account counters already say "no statement at all"
        }
        let mut blind = vec![
            ended.clone(),
            format!("events_statements_history keeps the last {} statements per connection", sampled.per_thread),
            sampled.ring.clone(),
        ];
        blind.extend(ctx.users.shared_name(user));
        let mut gaps: Vec<String> = state.actor_gap(user, true).into_iter().collect();
        if state.lost("nested_statement") > 0 {
            gaps.push(format!("Performance_schema_nested_statement_lost = {}", state.lost("nested_statement")));
        }
        if s.truncated > 0 {
            gaps.push(format!("{} statements' text was cut at {} bytes", s.truncated, sampled.max_text));
        }
        let complete = gaps.is_empty() && total.is_some_and(|t| s.events.len() as u64 >= t);
        // The user was active during the window and every statement it ran then was retained:
        // complete for the window. (An account idle during the window proves nothing.)
        let window = match (&sampled.opened, total) {
            (Some((before, t0)), Some(after)) if !complete && gaps.is_empty() => {
                let ran = after.saturating_sub(before.get(user).copied().unwrap_or(0));
                (ran > 0 && s.in_window >= ran).then(|| (ctx.clock.at_timer(*t0), ran))
            }
            _ => None,
        };
        blind.extend(gaps);
        if window.is_some() {
            blind.push("covers only the sampled window".into());
        }
        if let Some(t) = s.latest {
            for who in ctx.users.named(user) {
                out.saw(who, t, "statement history");
            }
        }
        let e = evidence(ctx, user, &s, total, Coverage { since_start: complete, window }, blind);
        for who in ctx.users.named(user) {
            out.add(who, e.clone());
        }
    }
}

fn record(s: &mut Seen, r: &mysql_async::Row, ctx: &Ctx, max_text: usize, t0: Option<u64>) {
    if !s.events.insert((num(r, 2), num(r, 3))) {
        return;
    }
    if t0.is_some_and(|t0| num(r, 8) >= t0) {
        s.in_window += 1;
    }
    let at = ctx.clock.at_timer(num(r, 8));
    s.oldest = Some(s.oldest.map_or(at, |o| o.min(at)));
    s.latest = Some(s.latest.map_or(at, |l| l.max(at)));
    let schema = text(r, 4);
    // The full text when there is one (the digest text is normalised and also cut).
    let sql = opt_text(r, 6).or_else(|| opt_text(r, 7)).unwrap_or_default();
    let hits = ctx.targets.hits(&sql, &schema);
    if hits.is_empty() && sql.len() + 3 >= max_text {
        s.truncated += 1;
    }
    let digest = opt_text(r, 5).map(|d| short(&d)).unwrap_or_else(|| "(none)".into());
    for h in hits {
        let slot = s.hits.entry((digest.clone(), h)).or_insert((at, num(r, 1)));
        if at > slot.0 {
            *slot = (at, num(r, 1));
        }
    }
}

/// What the retained statements cover completely.
struct Coverage {
    /// Every statement since server start.
    since_start: bool,
    /// Every statement since the window opened (its start, statements run meanwhile).
    window: Option<(NaiveDateTime, u64)>,
}

fn evidence(ctx: &Ctx, user: &str, s: &Seen, total: Option<u64>, cover: Coverage, blind: Vec<String>) -> Evidence {
    let span = match (cover.since_start, cover.window, s.oldest) {
        (true, _, _) => ctx.clock.since_start(),
        (false, Some((t0, _)), _) => format!("sampled window {} to {}", fmt(t0), fmt(ctx.clock.now)),
        (false, None, Some(o)) => format!("retained statements of live connections, {} to {}", fmt(o), fmt(ctx.clock.now)),
        (false, None, None) => format!("no retained statement at {}", fmt(ctx.clock.now)),
    };
    let of_total = total.map(|t| format!(" of {t} since server start")).unwrap_or_default();
    let (usage, rows) = if !s.hits.is_empty() {
        let mut rows: Vec<String> = s
            .hits
            .iter()
            .map(|((digest, hit), (at, conn))| format!("digest {digest} on {} at {} (connection {conn})", hit.describe(), fmt(*at)))
            .collect();
        super::super::cap(&mut rows, MAX_ROWS);
        (Usage::Used, rows)
    } else if let (false, Some((_, ran))) = (cover.since_start, cover.window) {
        let line = format!("all {ran} statements by user {} during the window retained: none names a service table", quote_str(user));
        (Usage::NotSeen, vec![line])
    } else {
        let line = format!("{} retained statements{of_total} by user {}: none names a service table", s.events.len(), quote_str(user));
        (if cover.since_start { Usage::NotSeen } else { Usage::Unknown }, vec![line])
    };
    Evidence { source: SOURCE.into(), span, blind_spots: blind, usage, rows }
}

/// `events_statements_history_long holds N statements of all connections, oldest at T`.
async fn long_span(server: &mut Server, ctx: &Ctx) -> String {
    let sql = "SELECT COUNT(*), MIN(TIMER_START), @@performance_schema_events_statements_history_long_size \
               FROM performance_schema.events_statements_history_long";
    match server.rows("reading history_long", sql).await {
        Ok(rows) if !rows.is_empty() => {
            let (n, oldest, size) = (num(&rows[0], 0), num(&rows[0], 1), num(&rows[0], 2));
            let full = if n >= size { " (full: older statements were dropped)" } else { "" };
            format!(
                "events_statements_history_long holds the last {size} statements of all connections: {n} now, oldest at {}{full}",
                fmt(ctx.clock.at_timer(oldest))
            )
        }
        _ => "events_statements_history_long could not be read".into(),
    }
}
