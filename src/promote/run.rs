//! The promotion's orchestration: the steps of docs/promotion.md, each journaled as begun and
//! done (with what it saw), resumable after a crash, and undoable before the point of no return.

use super::guard::{self, Guard};
use super::{account, compare, fence, preflight, promotion};
use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Entry, Journal, Phase, Record, StepState};
use crate::model::{AccountName, Inventory, TableName};
use crate::output::Output;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The steps, in order.
pub const STEPS: [&str; 11] =
    ["preflight", "zero-lag", "owner", "reads", "compare", "ready", "fence", "catch-up", "promote", "writes", "archive"];

/// Step 3's record: the owners, what was found or created on the replica, and their grants'
/// canonical snapshot (compared on the new server after the promotion, and by a revert).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OwnerRecord {
    pub owners: Vec<AccountName>,
    pub on_replica: Vec<account::OnReplica>,
    pub snapshot: BTreeSet<String>,
}

/// Step 11's record: the archived tables, and writes seen on them while they were watched.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ArchiveRecord {
    pub archived: Vec<String>,
    pub written_meanwhile: Vec<String>,
    pub watched_ms: u64,
}

/// Index of the first step after the point of no return.
const PONR: usize = 8;

/// Commands run at the hand-over points (through `sh -c`; `PRIVFENCE_NEW_SERVER` holds the
/// replica's `host:port`).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub reads: Option<String>,
    pub reads_back: Option<String>,
    pub writes: Option<String>,
    /// Step 6 waits until this file exists (the operator's go); without it, `--yes` goes on.
    pub go_file: Option<PathBuf>,
    /// Step 6 runs this command every second until it exits 0 (the operator's go).
    pub go_command: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub lock_wait: Duration,
    pub lag_timeout: Duration,
    pub chunk_rows: u64,
    pub hooks: Hooks,
    pub yes: bool,
    /// Stop after this step (for `promote run --until STEP`, and the abort tests).
    pub until: Option<String>,
    /// The service's own credentials on the new server, for step 10's smoke write.
    pub smoke_as: Option<crate::db::ConnectSpec>,
    /// How long step 11 watches the archived tables for writes.
    pub archive_watch: Duration,
    /// SIGINT/SIGTERM/SIGHUP received: looked at between steps and in the waits.
    pub interrupts: crate::engine::interrupt::Interrupts,
    /// Bound on each hook and each run of the go command; its process group is killed after.
    pub hook_timeout: Duration,
    /// Arm a server-side fail-safe before the fence that takes it down after this much silence
    /// from privfence, until the point of no return (`None`: `--no-failsafe`).
    pub failsafe: Option<Duration>,
    /// `--sync-back`: sync-back's own account on the primary; the preflight proves that
    /// sync-back can start after the promotion (`syncback::check::before_promotion`).
    pub sync_back: Option<crate::db::ConnectSpec>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_wait: Duration::from_secs(3),
            lag_timeout: Duration::from_secs(60),
            chunk_rows: 1000,
            hooks: Hooks::default(),
            yes: false,
            until: None,
            smoke_as: None,
            archive_watch: Duration::from_secs(2),
            interrupts: Default::default(),
            failsafe: None,
            hook_timeout: Duration::from_secs(300),
            sync_back: None,
        }
    }
}

/// What a promotion needs to know about the service.
pub struct Service<'a> {
    pub policy: &'a crate::policy::Policy,
    pub name: &'a str,
    pub tables: Vec<TableName>,
    pub owners: Vec<AccountName>,
    pub today: chrono::NaiveDate,
    pub tool: AccountName,
}

/// Where each step stands, from the journal.
#[derive(Debug, Clone, Default)]
pub struct PromoteState {
    pub steps: BTreeMap<String, (StepState, Value)>,
    pub point_of_no_return: bool,
}

impl PromoteState {
    pub fn fold(entries: &[Entry]) -> PromoteState {
        let mut s = PromoteState::default();
        for e in entries {
            match &e.record {
                Record::Step { name, state, detail } => {
                    s.steps.insert(name.clone(), (*state, detail.clone()));
                }
                Record::PointOfNoReturn { .. } => s.point_of_no_return = true,
                _ => {}
            }
        }
        s
    }

    pub fn state(&self, step: &str) -> Option<StepState> {
        self.steps.get(step).map(|x| x.0)
    }

    pub fn detail(&self, step: &str) -> Value {
        self.steps.get(step).map(|x| x.1.clone()).unwrap_or(Value::Null)
    }

    /// A done step's detail record, typed: a missing or renamed field is an error naming the
    /// step, never an empty value.
    pub fn record<T: serde::de::DeserializeOwned>(&self, step: &str) -> Result<T> {
        let detail = self.steps.get(step).filter(|x| x.0 == StepState::Done).map(|x| x.1.clone());
        let Some(detail) = detail else {
            return Err(Error::Session(format!("the journal has no finished {step:?} step to read")));
        };
        serde_json::from_value(detail).map_err(|e| Error::Session(format!("the journal's {step:?} step record is unreadable: {e}")))
    }

    pub fn finished(&self) -> bool {
        self.state(STEPS[STEPS.len() - 1]) == Some(StepState::Done)
    }
}

/// A signal arrived: before the point of no return a fence that is up is undone (the fence
/// step goes back to `begun`, so `promote resume` fences again and `promote abort` undoes the
/// rest); after it nothing is undone. Either way the promotion stops, resumable.
async fn interrupted(j: &mut Journal, primary: &mut Node, opts: &Options, guard: &mut Option<Guard>, out: &mut Output) -> Error {
    let st = PromoteState::fold(j.entries());
    let why = opts.interrupts.reason();
    let fence_up = matches!(st.state("fence"), Some(StepState::Begun) | Some(StepState::Done));
    if !st.point_of_no_return && fence_up {
        out.warn(&format!("{why}: undoing the fence"));
        let f = fence::from_journal(j.entries());
        if let Err(e) = fence::unfence(j, primary, &f).await {
            return Error::Interrupted(format!(
                "{why}: undoing the fence failed ({e}); the journal keeps the state: `privfence promote abort` undoes it"
            ));
        }
        if let Some(g) = guard.take() {
            if let Err(e) = guard::disarm(j, primary, g).await {
                return e;
            }
        }
        if let Err(e) = refence(j, &why) {
            return e;
        }
        return Error::Interrupted(format!(
            "{why}: the fence is undone (the service writes on the primary again); `privfence promote resume` goes on, \
             `promote abort` undoes the rest"
        ));
    }
    let where_ = if st.point_of_no_return { "after the point of no return" } else { "before the fence" };
    Error::Interrupted(format!("{why} {where_}: stopped between two steps; `privfence promote resume` goes on"))
}

/// The fence is down (undone by a signal's handling or by the fail-safe): its steps go back to
/// `begun`, so `promote resume` fences again (and catches up again) on a fresh inventory.
fn refence(j: &mut Journal, why: &str) -> Result<()> {
    let st = PromoteState::fold(j.entries());
    for name in ["fence", "catch-up"] {
        if matches!(st.state(name), Some(StepState::Begun) | Some(StepState::Done)) {
            step(j, name, StepState::Begun, json!({ "undone": why }))?;
        }
    }
    Ok(())
}

/// On resume: a fail-safe a crashed run left armed is disarmed; if it fired, the fence is down
/// and is done again; if not, and the fence is up before the point of no return, a new one
/// guards it.
async fn resume_guard(j: &mut Journal, primary: &mut Node, opts: &Options, out: &mut Output) -> Result<Option<Guard>> {
    let Some(name) = guard::live(j.entries()) else { return Ok(None) };
    let fired = guard::disarm_named(j, primary, &name).await?;
    let st = PromoteState::fold(j.entries());
    if st.point_of_no_return {
        return Ok(None);
    }
    if let Some(f) = fired {
        out.warn(&format!("the primary took the fence down by itself ({}): the fence is done again", f.reason()));
        refence(j, &f.reason())?;
        return Ok(None);
    }
    let fence_up = matches!(st.state("fence"), Some(StepState::Begun) | Some(StepState::Done));
    match (opts.failsafe, fence_up) {
        (Some(after), true) => {
            let undos = fence::from_journal(j.entries()).revoked.into_iter().rev().map(|(_, undo)| undo).collect();
            Ok(Some(guard::arm(j, primary, after, undos, out).await?))
        }
        _ => Ok(None),
    }
}

/// `Err(Interrupted)` once a signal arrived (checked in the long waits of a step).
fn check(opts: &Options) -> Result<()> {
    if opts.interrupts.any() {
        return Err(Error::Interrupted(opts.interrupts.reason()));
    }
    Ok(())
}

fn step(j: &mut Journal, name: &str, state: StepState, detail: Value) -> Result<()> {
    j.append(Record::Step { name: name.into(), state, detail }).map(|_| ())
}

async fn hook(cmd: &str, replica: &Node, limit: Duration, out: &mut Output) -> Result<()> {
    let server = format!("{}:{}", replica.spec().host, replica.spec().port);
    let c = crate::engine::command::Command::shell(cmd).env("PRIVFENCE_NEW_SERVER", server);
    c.check(limit).await.map_err(|e| Error::Session(format!("the hook failed (--hook-timeout bounds it): {e}")))?;
    out.status(&format!("hook `{cmd}`: ok"));
    Ok(())
}

/// Runs (or resumes) the promotion up to the end. `inv` is the primary's inventory.
pub async fn run(
    j: &mut Journal,
    primary: &mut Node,
    replica: &mut Node,
    inv: &Inventory,
    svc: &Service<'_>,
    opts: &Options,
    out: &mut Output,
) -> Result<()> {
    let mut guard = resume_guard(j, primary, opts, out).await?;
    for (i, name) in STEPS.iter().enumerate() {
        let st = PromoteState::fold(j.entries());
        if st.state(name) == Some(StepState::Done) {
            continue;
        }
        if opts.interrupts.any() {
            return Err(interrupted(j, primary, opts, &mut guard, out).await);
        }
        if st.state(name) == Some(StepState::Undone) {
            return Err(Error::Session("this promotion was aborted; start a new one with a new journal".into()));
        }
        if i == PONR && !st.point_of_no_return {
            if let Some(g) = guard.take() {
                // Disarmed before the point of no return; a fail-safe that fired meanwhile took
                // the fence down, so the replica must not be promoted on this fence.
                if let Some(f) = guard::disarm(j, primary, g).await? {
                    refence(j, &f.reason())?;
                    return Err(Error::Interrupted(format!(
                        "the primary took the fence down by itself ({}); nothing was promoted: `privfence promote resume` fences again",
                        f.reason()
                    )));
                }
            }
            let gtid = st.record::<fence::Fenced>("fence")?.gtid;
            j.append(Record::PointOfNoReturn { gtid })?;
        }
        if *name == "preflight" {
            // The preflight reads only: a refusal journals nothing and leaves nothing to resume.
            out.status(&format!("step {}/{}: {name} ...", i + 1, STEPS.len()));
            let started = Instant::now();
            let mut detail = run_step(name, j, primary, replica, inv, svc, opts, &st, out).await?;
            detail["took_ms"] = json!(started.elapsed().as_millis() as u64);
            step(j, name, StepState::Begun, Value::Null)?;
            step(j, name, StepState::Done, detail)?;
            if opts.until.as_deref() == Some(*name) {
                out.status(&format!("stopped after {name} (--until); `promote resume` goes on"));
                return Ok(());
            }
            continue;
        }
        if *name == "fence" && guard.is_none() {
            if let Some(after) = opts.failsafe {
                let (changes, _) = fence::changes(inv, &svc.owners, &svc.tables, primary.flavour());
                let undos = changes.into_iter().rev().map(|c| c.undo).collect();
                guard = Some(guard::arm(j, primary, after, undos, out).await?);
            }
        }
        step(j, name, StepState::Begun, Value::Null)?;
        out.status(&format!("step {}/{}: {name} ...", i + 1, STEPS.len()));
        let started = Instant::now();
        let detail = match run_step(name, j, primary, replica, inv, svc, opts, &st, out).await {
            Ok(d) => d,
            Err(Error::Interrupted(_)) => return Err(interrupted(j, primary, opts, &mut guard, out).await),
            Err(e) if i < PONR && (name == &"fence" || name == &"catch-up") => {
                // Anything that blocks the fence or the catch-up undoes the fence at once.
                out.warn(&format!("{name} failed ({e}); undoing the fence"));
                let f = fence::from_journal(j.entries());
                fence::unfence(j, primary, &f).await?;
                if let Some(g) = guard.take() {
                    guard::disarm(j, primary, g).await?;
                }
                step(j, "fence", StepState::Undone, json!({"reason": e.to_string()}))?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let mut detail = detail;
        detail["took_ms"] = json!(started.elapsed().as_millis() as u64);
        step(j, name, StepState::Done, detail)?;
        if opts.until.as_deref() == Some(*name) {
            out.status(&format!("stopped after {name} (--until); `promote resume` goes on, `promote abort` undoes"));
            return Ok(());
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    name: &str,
    j: &mut Journal,
    primary: &mut Node,
    replica: &mut Node,
    inv: &Inventory,
    svc: &Service<'_>,
    opts: &Options,
    st: &PromoteState,
    out: &mut Output,
) -> Result<Value> {
    match name {
        "preflight" => {
            let input =
                preflight::Input { policy: svc.policy, service: svc.name, today: svc.today, lock_wait_max: Duration::from_secs(10) };
            let checks = preflight::run(primary, replica, inv, &input).await?;
            for c in &checks {
                out.status(&format!("  {:?} {}: {}", c.status, c.name, c.detail));
            }
            if let Some(spec) = &opts.sync_back {
                let sb = crate::syncback::check::promotion(&mut replica.server, spec, &svc.tables, out).await?;
                if crate::syncback::check::refuses(&sb) {
                    let why = crate::syncback::check::failures(&sb);
                    return Err(Error::Refused(format!("sync-back could not start after the promotion ({why}); nothing was changed")));
                }
            }
            if preflight::refuses(&checks) {
                return Err(Error::Refused("preflight refused (the failed checks are above); nothing was changed".into()));
            }
            Ok(json!({ "checks": checks }))
        }
        "zero-lag" => {
            let deadline = Instant::now() + opts.lag_timeout;
            loop {
                let pos = primary.position().await?;
                if replica.wait_for(&pos, Duration::from_secs(1)).await? {
                    return Ok(json!({ "position": pos }));
                }
                check(opts)?;
                if Instant::now() >= deadline {
                    return Err(Error::Session(format!("the replica did not reach {pos} within {:?}", opts.lag_timeout)));
                }
                out.progress(&format!("waiting for the replica to contain {pos} ..."));
            }
        }
        "owner" => {
            let r = account::ensure(j, primary, replica, &svc.owners).await?;
            let snapshot = crate::engine::snapshot::read(&mut primary.server, &svc.owners).await?;
            Ok(serde_json::to_value(OwnerRecord { owners: svc.owners.clone(), on_replica: r, snapshot }).unwrap_or(Value::Null))
        }
        "reads" => {
            match &opts.hooks.reads {
                Some(cmd) => hook(cmd, replica, opts.hook_timeout, out).await?,
                None if opts.yes => out.status("  no reads hook: the service's reads are assumed moved (--yes)"),
                None if out.is_live() && out.ask("Have the service's reads been moved to the replica") => {}
                None => {
                    return Err(Error::Session(
                        "move the service's reads to the replica, then resume with --yes (or give --reads-hook)".into(),
                    ))
                }
            }
            Ok(json!({ "hook": opts.hooks.reads }))
        }
        "compare" => {
            let mut say = |m: &str| out.progress(m);
            let c = compare::compare(primary, replica, &svc.tables, opts.chunk_rows, &mut say).await?;
            out.status(&format!("  {} chunk(s) equal, {} dirty", c.equal_chunks, c.dirty.len()));
            Ok(serde_json::to_value(&c).unwrap_or(Value::Null))
        }
        "ready" => {
            let mut waited = 0u64;
            loop {
                let go = match (&opts.hooks.go_file, &opts.hooks.go_command) {
                    (Some(f), _) if f.exists() => true,
                    (_, Some(cmd)) => {
                        let c = crate::engine::command::Command::shell(cmd).stdout(crate::engine::command::Stdout::Null);
                        let st = c.run(opts.hook_timeout).await.map_err(|e| Error::Session(format!("the go command: {e}")))?;
                        st.success()
                    }
                    (Some(_), None) => false,
                    (None, None) if opts.yes => true,
                    (None, None) if out.is_live() => out.ask("Ready: the fence stops the service's writes. Go"),
                    (None, None) => return Err(Error::Session("ready: give --go-file or --go-command, or --yes to go on at once".into())),
                };
                if go {
                    return Ok(json!({ "waited_s": waited }));
                }
                check(opts)?;
                let pos = primary.position().await?;
                let behind = !replica.wait_for(&pos, Duration::from_millis(200)).await?;
                out.progress(&format!("ready: waiting for the go ({waited} s; replica {})", if behind { "lagging" } else { "caught up" }));
                tokio::time::sleep(Duration::from_secs(1)).await;
                waited += 1;
            }
        }
        "fence" => {
            let (f, r) = fence::fence(j, primary, inv, &svc.owners, &svc.tables, opts.lock_wait).await;
            r?;
            out.status(&format!("  fenced: GTID set {} (drained in {} ms)", f.gtid, f.drained_in.as_millis()));
            Ok(serde_json::to_value(&f).unwrap_or(Value::Null))
        }
        "catch-up" => {
            let gtid = st.record::<fence::Fenced>("fence")?.gtid;
            let waited = tokio::select! {
                w = replica.wait_for(&gtid, opts.lag_timeout) => w?,
                _ = opts.interrupts.wait_beyond(0) => return Err(Error::Interrupted(opts.interrupts.reason())),
            };
            if !waited {
                return Err(Error::Session(format!("the replica did not reach the fence's GTID set {gtid} in time")));
            }
            let earlier: compare::Comparison = st.record("compare")?;
            let d = compare::delta(primary, replica, &earlier).await?;
            if !d.is_clean() {
                return Err(Error::Session(format!(
                    "the tables differ after the fence: {} chunk(s)",
                    d.differing.len() + d.differing_replica.len()
                )));
            }
            let mut detail = serde_json::to_value(&d).unwrap_or(Value::Null);
            // Where sync-back starts: the new server's binary log while the service is fenced
            // (nothing of the service's can be after it yet, nothing before it is missing).
            // Without a binary log there (or the privilege to read its position) there is no
            // sync-back; the promotion itself does not need it.
            detail["sync_back_from"] = match crate::syncback::check::current_position(&mut replica.server).await {
                Ok(p) => json!(p),
                Err(e) => {
                    out.warn(&format!("no sync-back start position recorded: {e}"));
                    Value::Null
                }
            };
            Ok(detail)
        }
        "promote" => {
            let snapshot = st.record::<OwnerRecord>("owner")?.snapshot;
            let mut s = replica.server.another().await?;
            let rinv = crate::inventory::grants::read(&mut s).await?;
            s.close().await;
            let mut rinv = rinv;
            rinv.objects = inv.objects.clone();
            let svc_def = svc.policy.service(svc.name).ok_or_else(|| Error::Session(format!("no service {:?}", svc.name)))?;
            let exempt = |a: &AccountName| svc_def.exemption(a, svc.today).is_some();
            let keep = promotion::Keep { owners: &svc.owners, exempt: &exempt, tool: &svc.tool };
            let p = promotion::promote(j, replica, &rinv, &svc.tables, &keep, &snapshot).await?;
            Ok(serde_json::to_value(&p).unwrap_or(Value::Null))
        }
        "writes" => {
            if let Some(cmd) = &opts.hooks.writes {
                hook(cmd, replica, opts.hook_timeout, out).await?;
            }
            // A write through the service's own account that changes nothing: it needs the
            // privileges and a writable server, and inserts no row.
            let mut smoked = Vec::new();
            if let Some(spec) = &opts.smoke_as {
                // Journaled like every statement, although it changes no row.
                let mut node = crate::engine::node::Node::connect(spec, "smoke").await?;
                for t in &svc.tables {
                    let sql = format!("INSERT INTO {} SELECT * FROM {} WHERE FALSE", t.sql(), t.sql());
                    exec::run(j, &mut node, Phase::Promote, Some("smoke-write"), &sql, &[])
                        .await
                        .map_err(|e| Error::Session(format!("the smoke write through {} failed on the new server: {e}", spec.target())))?;
                    smoked.push(t.to_string());
                }
                node.server.close().await;
                out.status(&format!("  smoke write through {} on the new server: ok", spec.target()));
            }
            Ok(json!({ "hook": opts.hooks.writes, "smoke_write": smoked }))
        }
        "archive" => {
            let mut renamed = Vec::new();
            for t in &svc.tables {
                let archived = TableName::new(&t.schema, format!("_{}_pf_archived", t.name));
                let sql = format!("RENAME TABLE {} TO {}", t.sql(), archived.sql());
                // Already renamed (a resume): the source no longer exists.
                exec::run(j, primary, Phase::Promote, Some("archive"), &sql, &[1146]).await?;
                renamed.push(archived);
            }
            // Nobody should write the archived tables: watch their write counters for a while.
            let before = archive_writes(primary, &renamed).await;
            tokio::time::sleep(opts.archive_watch).await;
            let after = archive_writes(primary, &renamed).await;
            let written: Vec<String> = renamed
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (b, a))| a > b)
                .map(|(t, (b, a))| format!("{t}: {} write(s)", a - b))
                .collect();
            for w in &written {
                out.warn(&format!("the archived table was written on the old primary: {w}"));
            }
            let archived = renamed.iter().map(|t| t.to_string()).collect();
            let r = ArchiveRecord { archived, written_meanwhile: written, watched_ms: opts.archive_watch.as_millis() as u64 };
            Ok(serde_json::to_value(r).unwrap_or(Value::Null))
        }
        other => Err(Error::Session(format!("unknown step {other}"))),
    }
}

/// Undoes every step done so far, newest first. Refused after the point of no return.
pub async fn abort(j: &mut Journal, primary: &mut Node, replica: &mut Node, opts: &Options, out: &mut Output) -> Result<()> {
    let st = PromoteState::fold(j.entries());
    if st.point_of_no_return {
        return Err(Error::Session(
            "the promotion passed the point of no return: the replica is the service's server now; abort cannot undo that".into(),
        ));
    }
    if let Some(name) = guard::live(j.entries()) {
        guard::disarm_named(j, primary, &name).await?;
    }
    for name in STEPS[..PONR].iter().rev() {
        match st.state(name) {
            Some(StepState::Done) | Some(StepState::Begun) => {}
            _ => continue,
        }
        match *name {
            "fence" | "catch-up" => {
                let f = fence::from_journal(j.entries());
                fence::unfence(j, primary, &f).await?;
            }
            "owner" => {
                // Begun but not done (a crash inside it): nothing recorded, nothing created to drop
                // but what the journal's own statements say, which the drop tolerates.
                let r = st.record::<OwnerRecord>("owner").ok();
                let created: Vec<&AccountName> = r
                    .iter()
                    .flat_map(|r| r.owners.iter().zip(&r.on_replica))
                    .filter(|(_, o)| **o == account::OnReplica::Created)
                    .map(|(a, _)| a)
                    .collect();
                if !created.is_empty() {
                    let flavour = replica.flavour();
                    exec::unlogged(j, replica, Phase::Abort, async |j: &mut Journal, replica: &mut Node| {
                        for a in created {
                            let sql = format!("DROP USER IF EXISTS {}", crate::model::sql::grantee_sql(a, flavour));
                            exec::run(j, replica, Phase::Abort, Some("drop-owner"), &sql, &[]).await?;
                        }
                        Ok(())
                    })
                    .await?;
                }
            }
            "reads" => {
                if let Some(cmd) = &opts.hooks.reads_back {
                    hook(cmd, replica, opts.hook_timeout, out).await?;
                }
            }
            _ => {}
        }
        step(j, name, StepState::Undone, json!({}))?;
        out.status(&format!("undone: {name}"));
    }
    Ok(())
}

/// Write counters of tables (performance_schema's table I/O summary; 0 where unavailable).
async fn archive_writes(node: &mut Node, tables: &[TableName]) -> Vec<u64> {
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT COUNT_WRITE FROM performance_schema.table_io_waits_summary_by_table WHERE OBJECT_SCHEMA = {} AND OBJECT_NAME = {}",
            crate::model::ident::quote_str(&t.schema),
            crate::model::ident::quote_str(&t.name)
        );
        out.push(node.server.first::<u64>("reading table write counters", &sql).await.ok().flatten().unwrap_or(0));
    }
    out
}

/// `promote cleanup`: drops the archived tables on the old primary and every other service's
/// tables on the new server. Separate from the run, and only with the service's name typed back.
pub async fn cleanup(
    j: &mut Journal,
    primary: &mut Node,
    replica: &mut Node,
    service: &str,
    confirm: &str,
    tables: &[TableName],
    out: &mut Output,
) -> Result<Vec<String>> {
    if confirm != service {
        return Err(Error::BadInput(format!("cleanup drops tables: confirm with --confirm {service} (the service's name)")));
    }
    let st = PromoteState::fold(j.entries());
    if !st.finished() {
        return Err(Error::Session("the promotion has not finished: nothing to clean up".into()));
    }
    let mut dropped = Vec::new();
    let archived = st.record::<ArchiveRecord>("archive")?.archived;
    for t in tables {
        let a = TableName::new(&t.schema, format!("_{}_pf_archived", t.name));
        if archived.contains(&a.to_string()) {
            exec::run(j, primary, Phase::Promote, Some("cleanup-old"), &format!("DROP TABLE IF EXISTS {}", a.sql()), &[]).await?;
            dropped.push(format!("old primary: {a}"));
        }
    }
    // On the new server: every base table outside the service's tables and the system schemas.
    let rows: Vec<(String, String)> = replica
        .server
        .rows_as(
            "listing tables",
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')",
        )
        .await?;
    for (schema, name) in rows {
        let t = TableName::new(&schema, &name);
        if tables.contains(&t) {
            continue;
        }
        exec::run(j, replica, Phase::Promote, Some("cleanup-new"), &format!("DROP TABLE IF EXISTS {}", t.sql()), &[]).await?;
        dropped.push(format!("new server: {t}"));
    }
    for d in &dropped {
        out.status(&format!("dropped {d}"));
    }
    j.append(Record::Step { name: "cleanup".into(), state: StepState::Done, detail: json!({ "dropped": dropped }) })?;
    Ok(dropped)
}
