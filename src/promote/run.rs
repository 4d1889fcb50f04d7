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
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod records;
mod steps;
pub use records::*;
use steps::run_step;

/// The steps, in order.
pub const STEPS: [&str; 11] =
    ["preflight", "zero-lag", "owner", "reads", "compare", "ready", "fence", "catch-up", "promote", "writes", "archive"];

/// A step of the promotion; its name is what the journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Preflight,
    ZeroLag,
    Owner,
    Reads,
    Compare,
    Ready,
    Fence,
    CatchUp,
    Promote,
    Writes,
    Archive,
}

impl Step {
    /// Every step, in order (the order of [`STEPS`]).
    pub const ALL: [Step; 11] = [
        Step::Preflight,
        Step::ZeroLag,
        Step::Owner,
        Step::Reads,
        Step::Compare,
        Step::Ready,
        Step::Fence,
        Step::CatchUp,
        Step::Promote,
        Step::Writes,
        Step::Archive,
    ];

    /// Its name in the journal and on the command line.
    pub fn name(self) -> &'static str {
        STEPS[Step::ALL.iter().position(|s| *s == self).expect("every step is in ALL")]
    }

    pub fn parse(name: &str) -> Option<Step> {
        STEPS.iter().position(|s| *s == name).map(|i| Step::ALL[i])
    }
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
            return Err(Error::JournalState {
                what: format!("the journal has no finished {step:?} step to read"),
                todo: "the journal is incomplete or was edited: `privfence promote status` shows its steps",
            });
        };
        serde_json::from_value(detail).map_err(|e| Error::JournalState {
            what: format!("the journal's {step:?} step record is unreadable: {e}"),
            todo: "it was written by another privfence version or edited: finish the promotion with the version that started it",
        })
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
    c.check(limit).await.map_err(|e| Error::External {
        what: format!("the hook failed: {e}"),
        todo: "fix the hook (--hook-timeout bounds it), then `privfence promote resume`",
    })?;
    out.status(&format!("hook `{cmd}`: ok"));
    Ok(())
}

/// Crosses the point of no return: the fail-safe is disarmed first; one that fired meanwhile
/// took the fence down, so the replica must not be promoted on this fence.
async fn point_of_no_return(j: &mut Journal, primary: &mut Node, st: &PromoteState, guard: &mut Option<guard::Guard>) -> Result<()> {
    if let Some(g) = guard.take() {
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
    Ok(())
}

/// The fence or the catch-up failed with `e`: the fence comes down, the fail-safe is disarmed.
async fn unfence_after(j: &mut Journal, primary: &mut Node, guard: &mut Option<guard::Guard>, e: &Error) -> Result<()> {
    let f = fence::from_journal(j.entries());
    fence::unfence(j, primary, &f).await?;
    if let Some(g) = guard.take() {
        guard::disarm(j, primary, g).await?;
    }
    step(j, "fence", StepState::Undone, json!({"reason": e.to_string()}))
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
            return Err(Error::JournalState { what: "this promotion was aborted".into(), todo: "start a new one with a new journal" });
        }
        if i == PONR && !st.point_of_no_return {
            point_of_no_return(j, primary, &st, &mut guard).await?;
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
                unfence_after(j, primary, &mut guard, &e).await?;
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

/// Undoes every step done so far, newest first. Refused after the point of no return.
pub async fn abort(j: &mut Journal, primary: &mut Node, replica: &mut Node, opts: &Options, out: &mut Output) -> Result<()> {
    let st = PromoteState::fold(j.entries());
    if st.point_of_no_return {
        return Err(Error::JournalState {
            what: "the promotion passed the point of no return: the replica is the service's server now".into(),
            todo: "abort cannot undo that: `privfence promote resume` finishes it, `promote revert` moves the service back",
        });
    }
    if let Some(name) = guard::live(j.entries()) {
        guard::disarm_named(j, primary, &name).await?;
    }
    for name in STEPS[..PONR].iter().rev() {
        match st.state(name) {
            Some(StepState::Done) | Some(StepState::Begun) => {}
            _ => continue,
        }
        match Step::parse(name) {
            Some(Step::Fence | Step::CatchUp) => {
                let f = fence::from_journal(j.entries());
                fence::unfence(j, primary, &f).await?;
            }
            Some(Step::Owner) => {
                // The owners the step created, from its record and from its journaled
                // `create-owner` intents (a crash inside the step leaves no record).
                let mut created = account::created(j.entries());
                if let Ok(r) = st.record::<OwnerRecord>("owner") {
                    for (a, o) in r.owners.iter().zip(&r.on_replica) {
                        if *o == account::OnReplica::Created && !created.contains(a) {
                            created.push(a.clone());
                        }
                    }
                }
                for a in account::drop_created(j, replica, &created).await? {
                    out.status(&format!("dropped {} on the replica (the promotion created it)", a.sql()));
                }
            }
            Some(Step::Reads) => {
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
        return Err(Error::JournalState {
            what: "the promotion has not finished: nothing to clean up".into(),
            todo: "`privfence promote resume` finishes it first",
        });
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
