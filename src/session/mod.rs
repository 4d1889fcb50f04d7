//! Guided revoke sessions: cut one account off a service's tables, make the cut effective for
//! open connections, watch every signal source, and restore at once on any abnormality. Every
//! change goes through the journaling executor ([`exec`]) so that a crash at any point can be
//! recovered (`resume`, `rollback`) from the journal alone.
//!
//! One turn per account:
//!
//! ```text
//! AccountBegin (plan + snapshot) → watermark cut-begin → monitors' baseline
//!   → forward statements (intent, run, outcome) → replicas applied (GTID)
//!   → watermark cut → pre-cut connections killed or recycled → CutDone
//!   → WatchBegin → poll every source (≥ 1/s) until the window ends or an alarm
//!   → Verdict passed | restored | inconclusive
//! restore: RestoreBegin → re-grants → replicas applied → kill the account's cut-era
//!   connections → remove what the cut added → replicas applied → verify == snapshot → RestoreDone
//! ```

mod armed;
pub mod guide;
mod restore;
mod watch;

use crate::engine::{exec, interrupt, snapshot};

use crate::db::ConnectSpec;
use crate::engine::node::{Node, Topology};
use crate::error::{Error, Result};
use crate::journal::{Journal, JournalStep, Phase, Record, Verdict};
use crate::model::{AccountName, TableName};
use crate::output::Output;
use crate::plan::Plan;
use crate::signals::Monitor;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use watch::WatchEnd;

/// How a session behaves; the CLI fills it from flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// The watch window.
    pub window: Duration,
    /// Time between polls of every signal source.
    pub poll: Duration,
    /// Kill the account's pre-cut connections instead of waiting for them to recycle.
    pub kill_connections: bool,
    /// How long to wait for pre-cut connections to recycle before restoring.
    pub recycle_deadline: Duration,
    /// How long replicas may take to apply a change.
    pub replica_timeout: Duration,
    /// How long a restore keeps trying to reach a server that is down.
    pub restore_deadline: Duration,
    /// Keep an inconclusive cut instead of restoring it.
    pub keep_inconclusive: bool,
    /// A command run every `check_every`; a non-zero exit is an abnormality.
    pub check: Option<String>,
    pub check_every: Duration,
    /// MariaDB's sql_errlog file, when readable here.
    pub sql_errlog: Option<PathBuf>,
    /// Application logs and the pattern that means trouble.
    pub app_logs: Vec<(PathBuf, regex::Regex)>,
    /// Desktop notifications on verdicts and restores.
    pub notify: bool,
    /// Turn on, for the turn, the settings the watch needs to see (performance_schema statement
    /// consumers, MariaDB's `userstat`), journaled and turned back off when the turn ends.
    pub watch_settings: bool,
    /// Cut although a server has no source that sees refused logins and the plan takes away a
    /// default database (an application that can no longer log in would go unseen there).
    pub accept_login_blind_spot: bool,
    /// SIGINT/SIGTERM/SIGHUP received; looked at between statements.
    pub interrupts: interrupt::Interrupts,
    /// Arm a server-side fail-safe before each cut that restores the account after this much
    /// silence from privfence (`None`: `--no-failsafe`).
    pub failsafe: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window: Duration::from_secs(15 * 60),
            poll: Duration::from_millis(100),
            kill_connections: false,
            recycle_deadline: Duration::from_secs(600),
            replica_timeout: Duration::from_secs(60),
            restore_deadline: Duration::from_secs(300),
            keep_inconclusive: false,
            check: None,
            check_every: Duration::from_secs(5),
            sql_errlog: None,
            app_logs: Vec::new(),
            notify: true,
            watch_settings: true,
            accept_login_blind_spot: false,
            interrupts: interrupt::Interrupts::default(),
            failsafe: None,
        }
    }
}

/// The end of a turn, for the caller.
#[derive(Debug, Clone)]
pub struct TurnResult {
    pub account: String,
    pub verdict: Verdict,
    pub reason: String,
    pub evidence: Vec<String>,
    /// Lines shown on screen only (statement texts behind an alarm).
    pub screen_only: Vec<String>,
    pub restore: Option<RestoreResult>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreResult {
    pub exact: bool,
    pub conflicts: Vec<String>,
    /// Differences left between the snapshot (plus conflicts) and the grants now.
    pub left: Vec<String>,
    pub killed: usize,
    pub took: Duration,
}

/// An open session: the journal, the servers, and the server-side lock.
pub struct Session {
    pub journal: Journal,
    pub topo: Topology,
    lock: crate::db::Server,
    pub opts: Options,
    /// The current turn's fail-safe, while armed.
    armed: Option<armed::Armed>,
}

/// What a watched cut ended with: the verdict, its reason, the evidence cited (reports), what is
/// shown on screen only (statement texts), and the post-cut table statements seen.
type Watched = (Verdict, String, Vec<String>, Vec<String>, u64);

/// Two boot times (seconds since the epoch, from uptime) of one server run.
fn same_boot(a: i64, b: i64) -> bool {
    (a - b).abs() <= 2
}

impl Session {
    /// Connects to the primary and replicas, takes the service's lock on the primary (so two
    /// operators cannot run at once), opens or creates the journal, and checks that the
    /// servers are those the journal knows.
    pub async fn open(
        journal_path: &std::path::Path,
        header: Record,
        primary: &ConnectSpec,
        replicas: &[ConnectSpec],
        opts: Options,
    ) -> Result<Session> {
        let Record::Header { service, .. } = &header else { panic!("open() takes a Header record") };
        let mut nodes = vec![Node::connect(primary, "primary").await?];
        for (i, r) in replicas.iter().enumerate() {
            nodes.push(Node::connect(r, &format!("replica{}", i + 1)).await?);
        }
        // A lock whose holder was just killed lingers until the server notices the dropped
        // connection: wait a few seconds for it rather than refuse at once.
        let mut lock = nodes[0].server.another().await?;
        let name = exec::lock_name("privfence:", service);
        if !exec::lock(&mut lock, "taking the session lock", &name, 5).await? {
            let holder: Option<u64> = lock
                .first("finding the lock holder", &format!("SELECT IS_USED_LOCK({})", crate::model::ident::quote_str(&name)))
                .await
                .ok()
                .flatten();
            return Err(Error::JournalState {
                what: format!(
                    "another privfence session for service {service:?} is running on {} (it holds the lock {name:?}{})",
                    nodes[0].server.target,
                    holder.map(|h| format!(" on connection {h}")).unwrap_or_default()
                ),
                todo: "wait for it to finish",
            });
        }
        let mut journal = Journal::open_or_create(journal_path, header)?;
        let topo = Topology { nodes };
        let refs = topo.references();
        if let Some(known) = journal.state().topologies.first() {
            if let Some(p) = known.iter().find(|s| s.name == "primary") {
                if p.identity != refs[0].identity {
                    return Err(Error::WrongServer {
                        what: format!(
                            "this journal's primary is {} ({}), but {} is {}",
                            p.target, p.identity, refs[0].target, refs[0].identity
                        ),
                        todo: "connect to the journal's servers",
                    });
                }
            }
            let open_cut = journal.state().turns.iter().any(|t| t.is_cut());
            let known_replicas: BTreeSet<&str> = known.iter().filter(|s| s.name != "primary").map(|s| s.identity.as_str()).collect();
            let given: BTreeSet<&str> = refs.iter().skip(1).map(|s| s.identity.as_str()).collect();
            if open_cut && !known_replicas.is_subset(&given) {
                return Err(Error::WrongServer {
                    what: format!("the journal knows {} replica(s) that were not given", known_replicas.difference(&given).count()),
                    todo: "give every one with --replica: a restore must reach every server the cut reached",
                });
            }
        }
        journal.append(Record::Topology { servers: refs })?;
        Ok(Session { journal, topo, lock, opts, armed: None })
    }

    /// Releases the lock and closes every connection.
    pub async fn close(self) {
        let mut lock = self.lock;
        let _ = lock.first::<i64>("releasing the session lock", "SELECT RELEASE_ALL_LOCKS()").await;
        lock.close().await;
        for n in self.topo.nodes {
            n.server.close().await;
        }
    }

    /// Replicas that are stopped, delayed, or missing from the list (replicas attached to the
    /// primary beyond those given): the operator must acknowledge them before a cut.
    pub async fn replica_problems(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let given = self.topo.nodes.len() as u64 - 1;
        let attached = self.topo.primary().attached_replicas().await?;
        if attached > given {
            out.push(format!(
                "{attached} replica(s) are attached to the primary but {given} were given (--replica): grants replicate, and an \
                 application reading from an unlisted replica would not be watched"
            ));
        }
        for r in self.topo.replicas() {
            match r.replica_health().await? {
                None => out.push(format!("{} ({}) is not a replica", r.name, r.server.target)),
                Some(h) => {
                    if let Some(p) = h.problem() {
                        out.push(format!("{} ({}): {p}", r.name, r.server.target));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Cuts the account off the service's tables with `plan`, watches, and ends the turn with
    /// a verdict (restoring when it is not a pass).
    pub async fn cut_and_watch(
        &mut self,
        plan: &Plan,
        account: &str,
        tables: &[TableName],
        dependents: &[TableName],
        evidence: Vec<String>,
        out: &mut Output,
    ) -> Result<TurnResult> {
        let (turn, user, grantees) = self.begin_turn(plan, account, evidence, out).await?;
        let monitors = self.start_monitors(&user, tables, dependents).await;
        // The monitors hold their own watch slots now (begin_turn took one per server).
        self.hold_watch_slots(false).await;
        let mut monitors = monitors?;
        // Refusals that change nothing first (a login blind spot), then the fail-safe is armed.
        let steps = self.journal.state().turns[turn].steps.clone();
        let ready = match self.login_blind_spots(plan, &monitors, out) {
            Ok(()) => self.arm_failsafe(turn, &user, &steps, out).await,
            Err(e) => Err(e),
        };
        if let Err(e) = ready {
            for m in monitors {
                m.close().await;
            }
            self.abandon(e.to_string())?;
            self.settings_off(out).await?;
            return Err(e);
        }
        let result = self.cut_watch_inner(plan, &user, &grantees, &mut monitors, out).await;
        for m in monitors {
            m.close().await;
        }
        let watched = match result {
            Ok(v) => v,
            Err(e) => {
                // Anything unexpected (a lost connection, a failed statement): restore.
                out.warn(&format!("{e}"));
                (Verdict::Restored, format!("the cut could not proceed: {e}"), Vec::new(), Vec::new(), 0)
            }
        };
        self.end_turn(turn, account, watched, out).await
    }

    /// Opens the turn: the plan and the grants' snapshot journaled (`AccountBegin`), each
    /// server's `cut-begin` watermark, the watch's settings. Returns the turn's index, the
    /// account's user name and the plan's grantees.
    async fn begin_turn(
        &mut self,
        plan: &Plan,
        account: &str,
        evidence: Vec<String>,
        out: &mut Output,
    ) -> Result<(usize, String, Vec<AccountName>)> {
        if let Some(t) = self.journal.state().open_turn() {
            return Err(Error::JournalState {
                what: format!("the turn of {} is still open", t.account),
                todo: "run `privfence session resume` or `session rollback` first",
            });
        }
        let user = plan.accounts.first().map(|a| a.user.clone()).ok_or_else(|| Error::Unexpected("the plan names no account".into()))?;
        // From here on a signal restores (between statements) instead of ending the process.
        self.opts.interrupts.guard();
        let grantees = grantees_of(plan);
        let before = snapshot::read(&mut self.topo.primary().server, &grantees).await?;
        self.journal.append(Record::AccountBegin {
            account: account.to_string(),
            accounts: plan.accounts.clone(),
            grantees: grantees.clone(),
            fingerprint: plan.fingerprint.clone(),
            steps: plan
                .steps
                .iter()
                .map(|s| JournalStep { id: s.id.clone(), kind: s.kind, forward: s.forward.clone(), inverse: s.inverse.clone() })
                .collect(),
            snapshot: before.into_iter().collect(),
            evidence,
        })?;
        let turn = self.journal.state().turns.len() - 1;
        for n in &mut self.topo.nodes {
            let (id, boot) = (n.watermark().await?, n.boot().await?);
            self.journal.append(Record::Watermark { server: n.name.clone(), purpose: "cut-begin".into(), id, boot })?;
        }
        // From before the settings are read until the monitors start, another privfence process
        // ending must not turn off a setting this turn found on (engine::shared).
        self.hold_watch_slots(true).await;
        if self.opts.watch_settings {
            self.watch_settings_on(out).await?;
        }
        Ok((turn, user, grantees))
    }

    /// Closes a turn that changed nothing.
    fn abandon(&mut self, reason: String) -> Result<()> {
        self.journal.append(Record::Verdict { verdict: Verdict::Abandoned, reason, evidence: Vec::new(), activity: 0 })?;
        Ok(())
    }

    /// Ends a watched turn: reads or disarms the fail-safe, restores when the verdict says so,
    /// journals the verdict and turns the watch's settings back off.
    async fn end_turn(&mut self, turn: usize, account: &str, watched: Watched, out: &mut Output) -> Result<TurnResult> {
        let (mut verdict, mut reason, cited, screen, activity) = watched;
        let keep = verdict == Verdict::Passed
            || verdict == Verdict::Abandoned
            || (verdict == Verdict::Inconclusive && self.opts.keep_inconclusive);
        // A cut that stays is disarmed first, and stays only if the fail-safe had not fired; a
        // fail-safe that fired is read and cited, and the grants verified by a restore.
        let fired = match (&self.armed, keep) {
            (None, _) => None,
            (Some(_), true) => self.disarm_failsafe(out).await?,
            (Some(a), false) => {
                let name = a.spec.name.clone();
                if a.heartbeat.maybe_fired() {
                    self.failsafe_fired(&name).await?
                } else {
                    None
                }
            }
        };
        if let Some(f) = &fired {
            out.warn(&format!("the server restored {account} by itself: {}", f.reason()));
            if verdict != Verdict::Abandoned || self.journal.state().turns[turn].ops.iter().any(|o| o.phase == Phase::Cut) {
                verdict = Verdict::Restored;
                reason = f.reason();
            }
        }
        let needs_restore = verdict == Verdict::Restored || (verdict == Verdict::Inconclusive && !self.opts.keep_inconclusive);
        let restore = if !needs_restore {
            None
        } else {
            out.status(&format!("restoring {account}: {reason}"));
            Some(self.restore(turn, &reason, out).await?)
        };
        if self.armed.is_some() {
            if let Some(f) = self.disarm_failsafe(out).await? {
                if fired.is_none() {
                    reason = format!("{reason}; meanwhile the {}", f.reason());
                }
            }
        }
        self.journal.append(Record::Verdict { verdict, reason: reason.clone(), evidence: cited.clone(), activity })?;
        self.settings_off(out).await?;
        Ok(TurnResult { account: account.to_string(), verdict, reason, evidence: cited, screen_only: screen, restore })
    }

    async fn cut_watch_inner(
        &mut self,
        plan: &Plan,
        user: &str,
        grantees: &[AccountName],
        monitors: &mut [Monitor],
        out: &mut Output,
    ) -> Result<Watched> {
        let started = Instant::now();
        for (i, s) in plan.steps.iter().enumerate() {
            if self.opts.interrupts.any() {
                return Ok(self.interrupted(i == 0));
            }
            if self.failsafe_tripped() {
                return Ok(tripped_verdict());
            }
            exec::run(&mut self.journal, self.topo.primary(), Phase::Cut, Some(&s.id), &s.forward, &[]).await?;
        }
        out.status(&format!("cut applied on the primary ({} statements, {} ms)", plan.steps.len(), started.elapsed().as_millis()));
        let sig = self.opts.interrupts.clone();
        let late = tokio::select! {
            late = self.topo.wait_replicas(self.opts.replica_timeout) => Some(late?),
            _ = sig.wait_beyond(0) => None,
            _ = armed::tripped(self.armed.as_ref()) => return Ok(tripped_verdict()),
        };
        let Some(late) = late else { return Ok(self.interrupted(false)) };
        if !late.is_empty() {
            return Ok((
                Verdict::Restored,
                format!("{} did not apply the cut within {:?}", late.join(", "), self.opts.replica_timeout),
                Vec::new(),
                Vec::new(),
                0,
            ));
        }
        let mut marks = Vec::new();
        for (n, m) in self.topo.nodes.iter_mut().zip(monitors.iter_mut()) {
            let (id, boot) = (n.watermark().await?, n.boot().await?);
            self.journal.append(Record::Watermark { server: n.name.clone(), purpose: "cut".into(), id, boot })?;
            m.set_since_connection(id);
            marks.push(id);
        }
        if let Some(end) = self.make_effective(user, &marks, monitors, out).await? {
            return Ok(end);
        }
        let after = snapshot::read(&mut self.topo.primary().server, grantees).await?;
        self.journal.append(Record::CutDone { after: after.into_iter().collect() })?;
        let sources: Vec<String> = monitors.iter().flat_map(|m| m.sources().iter().map(|s| format!("{}: {}", m.name(), s.name))).collect();
        self.journal.append(Record::WatchBegin { window_ms: self.opts.window.as_millis() as u64, sources })?;
        let sig = self.opts.interrupts.clone();
        let end = tokio::select! {
            end = watch::run(monitors, &self.opts, user, out) => Some(end),
            _ = sig.wait_beyond(0) => None,
            _ = armed::tripped(self.armed.as_ref()) => return Ok(tripped_verdict()),
        };
        Ok(match end {
            Some(end) => end.into_parts(),
            None => self.interrupted(false),
        })
    }

    /// Makes the cut effective: pre-cut connections keep cached privileges (schema grants on
    /// their default schema), so the cut is in force only when none is left (killed with
    /// `--kill-connections`, else recycled by the application before the deadline). The
    /// monitors are polled meanwhile; `Some` ends the turn early with that verdict.
    async fn make_effective(&mut self, user: &str, marks: &[u64], monitors: &mut [Monitor], out: &mut Output) -> Result<Option<Watched>> {
        let deadline = Instant::now() + self.opts.recycle_deadline;
        let mut last_note = Instant::now() - Duration::from_secs(10);
        loop {
            let mut left = Vec::new();
            for (i, n) in self.topo.nodes.iter_mut().enumerate() {
                for id in n.connections_of(user, 0, marks[i]).await? {
                    left.push((i, id));
                }
            }
            if left.is_empty() {
                break;
            }
            if self.opts.interrupts.any() {
                return Ok(Some(self.interrupted(false)));
            }
            if self.failsafe_tripped() {
                return Ok(Some(tripped_verdict()));
            }
            if self.opts.kill_connections {
                for (i, id) in &left {
                    let node = &mut self.topo.nodes[*i];
                    exec::run(&mut self.journal, node, Phase::Kill, None, &format!("KILL CONNECTION {id}"), exec::NO_SUCH_THREAD).await?;
                }
                out.status(&format!("killed {} pre-cut connection(s) of {user}", left.len()));
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(Some((
                    Verdict::Restored,
                    format!("{} pre-cut connection(s) of {user} did not recycle within {:?}", left.len(), self.opts.recycle_deadline),
                    Vec::new(),
                    Vec::new(),
                    0,
                )));
            }
            if last_note.elapsed() >= Duration::from_secs(5) {
                out.progress(&format!("waiting for {} pre-cut connection(s) of {user} to recycle ...", left.len()));
                last_note = Instant::now();
            }
            if let Some(end) = watch::poll_once(monitors).await {
                return Ok(Some(end.into_parts()));
            }
            tokio::time::sleep(self.opts.poll).await;
        }
        Ok(None)
    }

    /// The verdict of a turn a signal ended: restored (or abandoned when nothing was sent yet).
    fn interrupted(&self, nothing_sent: bool) -> Watched {
        let reason = self.opts.interrupts.reason();
        if nothing_sent {
            return (Verdict::Abandoned, format!("{reason} before the first statement: nothing was changed"), Vec::new(), Vec::new(), 0);
        }
        (Verdict::Restored, reason, Vec::new(), Vec::new(), 0)
    }

    /// Err when a SIGINT arrived after `seen` (a second Ctrl-C during a restore): the restore
    /// stops between statements and the journal keeps the rest for `session resume`.
    fn stop_requested(&self, seen: u32) -> Result<()> {
        stop_requested(&self.opts.interrupts, seen)
    }
}

/// The verdict when the fail-safe's heartbeat found it fired (or went silent too long): the
/// turn is restored (the fired record, when there is one, gives the final reason).
fn tripped_verdict() -> Watched {
    (Verdict::Restored, "the fail-safe's heartbeat stopped: the server may have restored the account".into(), Vec::new(), Vec::new(), 0)
}

/// Err when a SIGINT arrived after `seen` (a second Ctrl-C during a restore): the restore
/// stops between statements and the journal keeps the rest for `session resume`.
fn stop_requested(interrupts: &interrupt::Interrupts, seen: u32) -> Result<()> {
    if interrupts.sigints() > seen {
        return Err(Error::Interrupted(
            "interrupted (SIGINT) during the restore: stopped between two statements; the journal keeps the state and \
             `privfence session resume` finishes the restore"
                .into(),
        ));
    }
    Ok(())
}

/// Every grantee whose grants the plan changes.
pub fn grantees_of(plan: &Plan) -> Vec<AccountName> {
    let mut v: Vec<AccountName> = plan.accounts.clone();
    for s in &plan.steps {
        if !v.contains(&s.account) {
            v.push(s.account.clone());
        }
    }
    v
}
