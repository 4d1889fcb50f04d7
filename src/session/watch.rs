//! The watch: poll every monitor at the session's rate, show its progress (a bar over the
//! window on a terminal, a status line every 5 s elsewhere), and stop at the first abnormality
//! (an alarm, a blind monitor, a failing check command) or at the end of the window. Restore
//! decisions follow mysql-facts §5: one privilege error is enough, a blind monitor is an
//! abnormality, and a window without table activity is inconclusive.

use super::{Options, Session};
use crate::engine::exec;
use crate::error::{Error, Result};
use crate::journal::Phase;
use crate::journal::Verdict;
use crate::model::TableName;
use crate::output::{BarStyle, Output};
use crate::plan::Plan;
use crate::signals;
use crate::signals::{Activity, Alarm, Monitor};
use std::time::{Duration, Instant};

/// Consecutive failed polls of one server after which the monitor is blind.
const BLIND_AFTER: u32 = 3;

/// Why a watch ended.
#[derive(Debug)]
pub enum WatchEnd {
    Alarm(Vec<Alarm>),
    Blind(String),
    CheckFailed(String),
    Ended(Activity),
}

impl WatchEnd {
    /// Verdict, reason, cited rows, screen-only lines, activity.
    pub fn into_parts(self) -> (Verdict, String, Vec<String>, Vec<String>, u64) {
        match self {
            WatchEnd::Alarm(alarms) => {
                let first = &alarms[0];
                let reason = format!(
                    "{} on {}{}{}",
                    first.kind.describe(),
                    first.server,
                    first.account.as_deref().map(|a| format!(" from {a}")).unwrap_or_default(),
                    match (&first.error, &first.object) {
                        (Some(e), Some(o)) => format!(": error {e} on {o}"),
                        (Some(e), None) => format!(": error {e}"),
                        (None, Some(o)) => format!(": {o}"),
                        (None, None) => String::new(),
                    }
                );
                let mut cited: Vec<String> = Vec::new();
                for a in &alarms {
                    let c = format!("{}: {}", a.server, a.cited);
                    if !cited.contains(&c) {
                        cited.push(c);
                    }
                }
                if cited.len() > 6 {
                    let more = cited.len() - 6;
                    cited.truncate(6);
                    cited.push(format!("... and {more} more signal rows"));
                }
                let mut screen: Vec<String> = Vec::new();
                for st in alarms.iter().filter_map(|a| a.statement.clone()) {
                    if !screen.contains(&st) {
                        screen.push(st);
                    }
                }
                (Verdict::Restored, reason, cited, screen, 0)
            }
            WatchEnd::Blind(why) => (Verdict::Restored, format!("blind monitor: {why}"), vec![why], Vec::new(), 0),
            WatchEnd::CheckFailed(why) => (Verdict::Restored, format!("check command failed: {why}"), vec![why], Vec::new(), 0),
            WatchEnd::Ended(a) if a.statements > 0 => (
                Verdict::Passed,
                format!("{} table statement(s) from post-cut connections, no privilege error", a.statements),
                a.cited.clone(),
                Vec::new(),
                a.statements,
            ),
            WatchEnd::Ended(a) if a.unattributed > 0 => (
                Verdict::Inconclusive,
                format!(
                    "no statement history row shows a post-cut connection using a table; counters show {} unattributed statement(s), which housekeeping (SHOW, information_schema) can explain: no evidence either way",
                    a.unattributed
                ),
                a.unattributed_cited.iter().chain(&a.cited).cloned().collect(),
                Vec::new(),
                0,
            ),
            WatchEnd::Ended(a) => (
                Verdict::Inconclusive,
                "no statement touching a table from a post-cut connection in the window: no evidence either way".into(),
                a.cited.clone(),
                Vec::new(),
                0,
            ),
        }
    }
}

/// One poll of every monitor; `Some` on an alarm (used while waiting for pre-cut connections).
pub async fn poll_once(monitors: &mut [Monitor]) -> Option<WatchEnd> {
    let mut alarms = Vec::new();
    for m in monitors.iter_mut() {
        if let Ok(p) = m.poll().await {
            alarms.extend(p.alarms);
        }
    }
    (!alarms.is_empty()).then_some(WatchEnd::Alarm(alarms))
}

/// Watches until the window ends or something is wrong.
pub async fn run(monitors: &mut [Monitor], opts: &Options, user: &str, out: &mut Output) -> WatchEnd {
    let start = Instant::now();
    let end = start + opts.window;
    let mut failures = vec![0u32; monitors.len()];
    let mut activity;
    let mut last_status = start - Duration::from_secs(10);
    // On a terminal, a bar over the window's seconds with the counters as its message (cleared
    // when the watch ends); elsewhere the status line below, every 5 s.
    let bar = out.bar_styled(opts.window.as_secs(), &format!("watching {user}"), BarStyle::Seconds);
    let status_every = if out.is_live() { Duration::from_millis(250) } else { Duration::from_secs(5) };
    let mut check: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let mut last_check = start;
    loop {
        let tick = Instant::now();
        activity = match poll_all(monitors, &mut failures).await {
            Ok(a) => a,
            Err(end) => return end,
        };
        if let Some(h) = &check {
            if h.is_finished() {
                let h = check.take().expect("checked");
                if let Ok(Err(why)) = h.await {
                    return WatchEnd::CheckFailed(why);
                }
            }
        }
        if let (Some(cmd), None) = (&opts.check, &check) {
            if last_check.elapsed() >= opts.check_every || tick == start {
                last_check = Instant::now();
                let cmd = cmd.clone();
                let limit = opts.check_every.max(Duration::from_secs(1));
                check = Some(tokio::spawn(async move { run_check(&cmd, limit).await }));
            }
        }
        let now = Instant::now();
        if now >= end {
            if let Some(h) = check.take() {
                if let Ok(Err(why)) = h.await {
                    return WatchEnd::CheckFailed(why);
                }
            }
            return window_end(activity, monitors, user);
        }
        if now.duration_since(last_status) >= status_every {
            last_status = now;
            let seen = format!(
                "table statements {} (unattributed {}) · privilege errors {} · refused logins {} · connections {}",
                activity.statements, activity.unattributed, activity.errors, activity.failed_logins, activity.connections
            );
            if bar.is_drawn() {
                bar.set(now.duration_since(start).as_secs());
                bar.set_message(&seen);
            } else {
                out.progress(&format!("watching {user}: {}s left · {seen}", end.duration_since(now).as_secs()));
            }
        }
        let spent = tick.elapsed();
        if spent < opts.poll {
            tokio::time::sleep(opts.poll - spent).await;
        }
    }
}

/// Polls every monitor once: their activity summed, or how the watch ends (an alarm, or a
/// monitor that failed [`BLIND_AFTER`] polls in a row).
async fn poll_all(monitors: &mut [Monitor], failures: &mut [u32]) -> Result<Activity, WatchEnd> {
    let mut alarms = Vec::new();
    let mut total = Activity::default();
    for (i, m) in monitors.iter_mut().enumerate() {
        match m.poll().await {
            Ok(p) => {
                failures[i] = 0;
                alarms.extend(p.alarms);
                total.statements += p.activity.statements;
                total.errors += p.activity.errors;
                total.failed_logins += p.activity.failed_logins;
                total.connections += p.activity.connections;
                total.cited.extend(p.activity.cited.iter().cloned());
                total.unattributed += p.activity.unattributed;
                total.unattributed_cited.extend(p.activity.unattributed_cited.iter().cloned());
            }
            Err(e) => {
                failures[i] += 1;
                if failures[i] >= BLIND_AFTER {
                    return Err(WatchEnd::Blind(format!("{} failed polls in a row on {}: {e}", failures[i], m.name())));
                }
            }
        }
    }
    if alarms.is_empty() {
        Ok(total)
    } else {
        Err(WatchEnd::Alarm(alarms))
    }
}

/// The end of a window with no alarm: what was seen, or (for an inconclusive verdict) what was
/// watched and saw nothing.
fn window_end(mut activity: Activity, monitors: &[Monitor], user: &str) -> WatchEnd {
    activity.cited.truncate(8);
    activity.unattributed_cited.truncate(8);
    if activity.statements == 0 && activity.unattributed == 0 {
        activity.cited = monitors
            .iter()
            .flat_map(|m| {
                m.sources()
                    .iter()
                    .filter(|s| s.available && s.name != "Uptime" && !s.logins)
                    .map(move |s| format!("{}: {}: no table statement from a post-cut connection of {user}", m.name(), s.name))
            })
            .collect();
    }
    WatchEnd::Ended(activity)
}

/// Runs the operator's check command (the engine's command runner); a non-zero exit or a
/// timeout is a failure.
async fn run_check(cmd: &str, limit: Duration) -> Result<(), String> {
    crate::engine::command::Command::shell(cmd).stdout(crate::engine::command::Stdout::Null).check(limit).await
}

/// The session's side of the watch: its monitors, its settings, its blind spots.
impl Session {
    /// One monitor per server, started before the first statement so nothing the cut causes is
    /// missed (activity counts only from connections opened after the cut). A monitor that
    /// cannot start, or a server with no readable privilege-error source, abandons the turn
    /// before anything changed.
    pub(super) async fn start_monitors(&mut self, user: &str, tables: &[TableName], dependents: &[TableName]) -> Result<Vec<Monitor>> {
        let mut monitors: Vec<Monitor> = Vec::new();
        let mut local = Vec::new();
        for n in &mut self.topo.nodes {
            local.push(signals::logins::discover_files(&mut n.server).await.unwrap_or_default());
        }
        let mut failure = None;
        for (n, found) in self.topo.nodes.iter().zip(local) {
            let target = signals::WatchTarget {
                user: user.to_string(),
                tables: tables.to_vec(),
                dependents: dependents.to_vec(),
                since_connection: u64::MAX,
            };
            let given = if n.name == "primary" { self.opts.sql_errlog.clone() } else { None };
            let files = signals::SignalFiles {
                sql_errlog: given.or(found.sql_errlog),
                audit_log: found.audit_log,
                error_log: found.error_log,
                app_logs: if n.name == "primary" { self.opts.app_logs.clone() } else { Vec::new() },
            };
            let m = match Monitor::start(n.spec(), &n.name, target, files).await {
                Ok(m) => m,
                Err(e) => {
                    failure = Some((format!("the monitor of {} could not start: {e}", n.name), e));
                    break;
                }
            };
            let blind = !m.sources().iter().any(|s| s.available && signals::reports_errors(s));
            monitors.push(m);
            if blind {
                let e = Error::Setting {
                    what: format!(
                        "{} ({}) has no privilege-error source privfence can read (performance_schema off, no userstat, no \
                         sql_errlog given): nothing was changed",
                        n.name, n.server.target
                    ),
                    todo: "`privfence doctor` lists the sources and how to turn one on",
                };
                failure =
                    Some((format!("{} has no privilege-error source privfence can read: a cut there could not be watched", n.name), e));
                break;
            }
        }
        let Some((reason, e)) = failure else { return Ok(monitors) };
        // Nothing was changed yet: close the turn so the next start is not blocked.
        for m in monitors {
            m.close().await;
        }
        self.abandon(reason)?;
        Err(e)
    }

    /// Takes (`hold`) or gives back a watch slot on every server's session connection
    /// ([`crate::engine::shared`]). Best effort: a connection that cannot take one fails the
    /// statements that follow anyway.
    pub(super) async fn hold_watch_slots(&mut self, hold: bool) {
        for n in &mut self.topo.nodes {
            let _ = if hold {
                crate::engine::shared::take_watch_slot(&mut n.server).await.map(|_| ())
            } else {
                crate::engine::shared::release_watch_slot(&mut n.server).await
            };
        }
    }

    /// Turns on, on every server, what the watch needs to see: statement history (the only
    /// proof that a post-cut connection used a table) and MariaDB's `userstat` (refused
    /// logins). Journaled; turned back off when the turn ends or by `resume`. A server that
    /// refuses (no privilege) is watched with what it has: its sources say what is missing.
    pub(super) async fn watch_settings_on(&mut self, out: &mut Output) -> Result<()> {
        for n in &mut self.topo.nodes {
            for w in signals::wanted_settings(&mut n.server).await? {
                let step = format!("watch: {}", w.name());
                let (on, off) = (w.enable_sql(), w.disable_sql());
                match exec::run_with_undo(&mut self.journal, n, Phase::Setting, Some(&step), &on, Some(&off), &[]).await {
                    Ok(()) => out.status(&format!("turned on {} on {} for the watch ({})", w.name(), n.name, w.why)),
                    Err(e) => out.warn(&format!("could not turn on {} on {}: {e}; the watch sees less there", w.name(), n.name)),
                }
            }
        }
        Ok(())
    }

    /// States, before the cut, every server where no source sees refused logins; refuses the
    /// cut when the plan takes away a default database (the likeliest way a cut breaks logins)
    /// unless the operator accepted the blind spot.
    pub(super) fn login_blind_spots(&self, plan: &Plan, monitors: &[Monitor], out: &mut Output) -> Result<()> {
        let lost: Vec<&crate::plan::Change> = plan.changes.iter().filter(|c| c.loses_default_database()).collect();
        for c in &lost {
            out.warn(&format!(
                "{}: {}. A pool that connects with it fails at login, not at a statement: the watch reads every source of refused logins",
                c.account.sql(),
                c.detail
            ));
        }
        let blind: Vec<String> = monitors
            .iter()
            .filter(|m| !m.sources().iter().any(signals::reports_logins))
            .map(|m| {
                let what = match m.flavour() {
                    crate::db::Flavour::MariaDb => {
                        "SET GLOBAL userstat = 1, or the sql_errlog or server_audit plugin with its file readable here"
                    }
                    crate::db::Flavour::MySql => "performance_schema with the `error` instrument, or log_error_verbosity = 3",
                };
                format!("{}: no source sees refused logins of the account (it needs {what})", m.name())
            })
            .collect();
        if blind.is_empty() {
            return Ok(());
        }
        for b in &blind {
            out.warn(&format!("blind spot: {b}; an application that can no longer log in there runs no statement, so its window can be inconclusive at best"));
        }
        if !lost.is_empty() && !self.opts.accept_login_blind_spot {
            return Err(Error::Setting {
                what: format!("nothing was changed: the plan takes away a default database and {}", blind.join("; ")),
                todo: "enable one of those sources, or accept the blind spot with --accept-login-blind-spot",
            });
        }
        Ok(())
    }
}
