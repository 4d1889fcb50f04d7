//! `promote revert`: give the service back to the old primary after a promotion, with
//! sync-back running. Steps, each journaled begun/done in the revert's own journal:
//!
//! 1. `fence`: the same write fence as a promotion's (`fence::fence`: lock the owner, revoke
//!    its writes, kill its connections, drain), on the **new** server.
//! 2. `synced`: wait until sync-back's stored position on the old primary holds everything the
//!    new server wrote up to the fence.
//!    Then sync-back is ended: the connection holding its lock ([`crate::syncback::lock_name`])
//!    is killed (journaled) and the revert takes the lock, so no sync-back writes the copy
//!    once its tables are renamed back (a resume takes it again before any later step).
//! 3. **point of no return** (journaled first), then `rename-back`: `RENAME TABLE
//!    _t_pf_archived TO t` on the old primary.
//! 4. `owner-back`: the old primary's fence undone from the promotion's journal (its exact
//!    inverse statements), then the owner's grants compared with the promotion's snapshot.
//! 5. `writes-back`: the hook, and a smoke write through the owner's account on the old primary.
//! 6. `read-only`: the new server is left read-only, its data kept.
//!
//! `abort` before the point of no return undoes the fence on the new server.
//!
//! The fence has the promotion's server-side fail-safe ([`super::guard`]): armed on the new
//! server before the fence with the fence's exact undo, disarmed just before the point of no
//! return (or by `abort`). If privfence disappears in between, the new server gives the owner
//! its writes back by itself; a resume finds it fired and fences (and waits for sync-back)
//! again.

use super::fence;
use super::guard::{self, Guard};
use super::run::PromoteState;
use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Journal, Phase, Record, StepState};
use crate::model::{AccountName, TableName};
use crate::output::Output;
use crate::syncback::position::{GtidSet, Position};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The revert's steps, in order.
pub const STEPS: [&str; 5] = ["fence", "synced", "rename-back", "owner-back", "writes-back"];
/// Index of the first step after the point of no return.
const PONR: usize = 2;

/// What a revert needs.
pub struct Revert<'a> {
    pub service: &'a str,
    pub tables: Vec<TableName>,
    pub owners: Vec<AccountName>,
    /// The promotion's journal entries (its fence on the old primary, the owner's snapshot).
    pub promotion: &'a [crate::journal::Entry],
    pub lock_wait: Duration,
    /// How long to wait for sync-back to apply everything up to the fence.
    pub sync_timeout: Duration,
    pub writes_back_hook: Option<String>,
    /// Bound on the writes-back hook; its process group is killed after it.
    pub hook_timeout: Duration,
    /// The owner's credentials on the old primary, for the smoke write.
    pub smoke_as: Option<crate::db::ConnectSpec>,
    /// The fence's server-side fail-safe on the new server: silence after which that server
    /// takes the fence down by itself (`None`: `--no-failsafe`).
    pub failsafe: Option<Duration>,
}

fn step(j: &mut Journal, name: &str, state: StepState, detail: Value) -> Result<()> {
    j.append(Record::Step { name: name.into(), state, detail }).map(|_| ())
}

/// Runs (or resumes) the revert. `new` is the promoted server, `old` the old primary.
pub async fn revert(j: &mut Journal, new: &mut Node, old: &mut Node, r: &Revert<'_>, out: &mut Output) -> Result<Value> {
    let mut gap_from = None;
    let mut stopped = false;
    let mut guard = resume_guard(j, new, r, out).await?;
    for (i, name) in STEPS.iter().enumerate() {
        let st = PromoteState::fold(j.entries());
        if st.state(name) == Some(StepState::Done) {
            continue;
        }
        if i > STEPS.iter().position(|s| *s == "synced").unwrap_or(1) && !stopped {
            // A resume past `synced`: sync-back stays stopped (a restarted one is ended again).
            stop_sync_back(j, old, r.service).await?;
            stopped = true;
        }
        if st.state(name) == Some(StepState::Undone) {
            return Err(Error::JournalState { what: "this revert was aborted".into(), todo: "start a new one with a new journal" });
        }
        if i == PONR && !st.point_of_no_return {
            if let Some(g) = guard.take() {
                disarm(j, new, g).await?;
            }
            let gtid = st.detail("fence")["gtid"].as_str().map(str::to_string);
            let gtid = gtid.ok_or_else(|| Error::Unexpected("the revert's journal holds no fence GTID set".into()))?;
            j.append(Record::PointOfNoReturn { gtid })?;
        }
        if *name == "fence" && st.state(name) == Some(StepState::Begun) {
            // A crash in the middle of the fence: undo what the journal says it did, fence again.
            let f = fence::from_journal(j.entries());
            fence::unfence(j, new, &f).await?;
        }
        if *name == "fence" && guard.is_none() {
            if let Some(after) = r.failsafe {
                guard = Some(arm(j, new, r, after, out).await?);
            }
        }
        step(j, name, StepState::Begun, Value::Null)?;
        out.status(&format!("revert {}/{}: {name} ...", i + 1, STEPS.len()));
        let started = Instant::now();
        let mut detail = match *name {
            "fence" => {
                gap_from = Some(Instant::now());
                match fence_new(j, new, r).await {
                    Ok(v) => v,
                    Err(e) => {
                        // The fence was undone: its fail-safe goes too.
                        if let Some(g) = guard.take() {
                            guard::disarm(j, new, g).await?;
                        }
                        return Err(e);
                    }
                }
            }
            "synced" => {
                let mut d = wait_synced(old, r, &st.detail("fence")).await?;
                d["sync_back"] = stop_sync_back(j, old, r.service).await?;
                stopped = true;
                d
            }
            "rename-back" => rename_back(j, old, &r.tables).await?,
            "owner-back" => owner_back(j, old, r).await?,
            _ => writes_back(j, new, old, r, out).await?,
        };
        detail["took_ms"] = json!(started.elapsed().as_millis() as u64);
        step(j, name, StepState::Done, detail)?;
    }
    Ok(json!({ "fence_to_end_ms": gap_from.map(|t| t.elapsed().as_millis() as u64) }))
}

/// Arms the fence's fail-safe on the new server with the fence's exact undo.
async fn arm(j: &mut Journal, new: &mut Node, r: &Revert<'_>, after: Duration, out: &mut Output) -> Result<Guard> {
    let inv = crate::inventory::grants::read(&mut new.server).await?;
    let (changes, _) = fence::changes(&inv, &r.owners, &r.tables, new.flavour());
    let undos = changes.into_iter().rev().map(|c| c.undo).collect();
    guard::arm(j, new, after, undos, out).await
}

/// Disarms before the point of no return; if it fired meanwhile, the fence is down: nothing is
/// renamed, and the fence (and the wait for sync-back) is done again on resume.
async fn disarm(j: &mut Journal, new: &mut Node, g: Guard) -> Result<()> {
    if let Some(f) = guard::disarm_now(j, new, g).await? {
        refence(j, &f.reason())?;
        return Err(Error::Interrupted(format!(
            "the new server took the revert's fence down by itself ({}); nothing was renamed: `promote revert` fences again",
            f.reason()
        )));
    }
    Ok(())
}

/// Marks the fence and the wait for sync-back to be done again.
fn refence(j: &mut Journal, why: &str) -> Result<()> {
    let st = PromoteState::fold(j.entries());
    for name in ["fence", "synced"] {
        if matches!(st.state(name), Some(StepState::Begun) | Some(StepState::Done)) {
            step(j, name, StepState::Begun, json!({ "undone": why }))?;
        }
    }
    Ok(())
}

/// On resume: a fail-safe a crashed run left armed is disarmed; if it fired, the fence is
/// done again; if not, and a whole fence is up before the point of no return, a new one
/// guards it (a fence begun but not done is undone and redone by the loop, armed afresh).
async fn resume_guard(j: &mut Journal, new: &mut Node, r: &Revert<'_>, out: &mut Output) -> Result<Option<Guard>> {
    let Some(name) = guard::live(j.entries()) else { return Ok(None) };
    let fired = guard::disarm_named(j, new, &name).await?;
    let st = PromoteState::fold(j.entries());
    if st.point_of_no_return {
        return Ok(None);
    }
    if let Some(f) = fired {
        out.warn(&format!("the new server took the revert's fence down by itself ({}): the fence is done again", f.reason()));
        refence(j, &f.reason())?;
        return Ok(None);
    }
    match (r.failsafe, st.state("fence")) {
        (Some(after), Some(StepState::Done)) => {
            let undos = fence::from_journal(j.entries()).revoked.into_iter().rev().map(|(_, undo)| undo).collect();
            Ok(Some(guard::arm(j, new, after, undos, out).await?))
        }
        _ => Ok(None),
    }
}

async fn fence_new(j: &mut Journal, new: &mut Node, r: &Revert<'_>) -> Result<Value> {
    let inv = crate::inventory::grants::read(&mut new.server).await?;
    let (f, res) = fence::fence(j, new, &inv, &r.owners, &r.tables, r.lock_wait).await;
    if let Err(e) = res {
        fence::unfence(j, new, &f).await?;
        return Err(e);
    }
    let at = crate::syncback::check::current_position(&mut new.server).await?;
    let mut v = serde_json::to_value(&f).unwrap_or(Value::Null);
    v["binlog"] = json!(at);
    Ok(v)
}

/// Whether sync-back's stored position holds `at` (GTID containment; else file and offset).
pub fn holds(stored: &Position, at: &Position) -> bool {
    match (&stored.gtid, &at.gtid) {
        (Some(s), Some(a)) => matches!((GtidSet::parse(s), GtidSet::parse(a)), (Ok(s), Ok(a)) if s.contains_set(&a)),
        _ => (stored.file.as_str(), stored.pos) >= (at.file.as_str(), at.pos),
    }
}

async fn wait_synced(old: &mut Node, r: &Revert<'_>, fence: &Value) -> Result<Value> {
    let at: Position = serde_json::from_value(fence["binlog"].clone())
        .map_err(|_| Error::Unexpected("the revert's journal holds no fence position".into()))?;
    let deadline = Instant::now() + r.sync_timeout;
    loop {
        let stored = crate::syncback::apply::stored_position(&mut old.server, r.service).await?;
        if stored.as_ref().is_some_and(|s| holds(s, &at)) {
            return Ok(json!({ "at": at, "stored": stored }));
        }
        if Instant::now() >= deadline {
            return Err(Error::SyncBack(format!(
                "sync-back did not apply the new server's writes up to the fence ({at}) within {:?} (stored: {}); is it running? \
                 `promote revert --abort` takes the fence down",
                r.sync_timeout,
                stored.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends a running sync-back of `service` (the connection that holds its lock is killed,
/// journaled) and takes its lock on the revert's connection to the old primary, held until the
/// revert ends: no sync-back writes the copy after it caught up with the fence.
async fn stop_sync_back(j: &mut Journal, old: &mut Node, service: &str) -> Result<Value> {
    let name = crate::syncback::lock_name(service);
    let sql = format!("SELECT IS_USED_LOCK({})", crate::model::ident::quote_str(&name));
    let holder: Option<Option<u64>> = old.server.first("looking for a running sync-back", &sql).await?;
    let me = old.server.connection_id();
    let mut killed = None;
    if let Some(id) = holder.flatten().filter(|id| *id != me) {
        exec::run(j, old, Phase::Kill, Some("stop-sync-back"), &format!("KILL CONNECTION {id}"), exec::NO_SUCH_THREAD).await?;
        killed = Some(id);
    }
    if !exec::lock(&mut old.server, "taking sync-back's lock", &name, 10).await? {
        return Err(Error::SyncBack(format!(
            "sync-back's lock {name} on the old primary is still held after its connection was ended; stop that sync-back, then \
             resume the revert"
        )));
    }
    Ok(json!({ "killed_connection": killed, "lock": name }))
}

async fn rename_back(j: &mut Journal, old: &mut Node, tables: &[TableName]) -> Result<Value> {
    let mut renamed = Vec::new();
    for t in tables {
        let archived = TableName::new(&t.schema, format!("_{}_pf_archived", t.name));
        let sql = format!("RENAME TABLE {} TO {}", archived.sql(), t.sql());
        // Already renamed back (a resume): the archived name no longer exists.
        exec::run(j, old, Phase::Promote, Some("rename-back"), &sql, &[1146]).await?;
        renamed.push(t.to_string());
    }
    Ok(json!({ "renamed": renamed }))
}

async fn owner_back(j: &mut Journal, old: &mut Node, r: &Revert<'_>) -> Result<Value> {
    let f = fence::from_journal(r.promotion);
    exec::unlogged(j, old, Phase::Promote, async |j: &mut Journal, old: &mut Node| {
        for (_, inverse) in f.revoked.iter().rev() {
            // On a resume a re-grant that ran already is harmless; an unlock too.
            exec::run(j, old, Phase::Promote, Some("owner-back"), inverse, &[]).await?;
        }
        Ok(())
    })
    .await?;
    let want: BTreeSet<String> = PromoteState::fold(r.promotion).record::<super::run::OwnerRecord>("owner")?.snapshot;
    let now = crate::engine::snapshot::read(&mut old.server, &r.owners).await?;
    if now != want {
        return Err(Error::Diverged(format!(
            "the owner's grants on the old primary differ from the promotion's snapshot after the re-grant: missing {:?}, extra {:?}",
            want.difference(&now).collect::<Vec<_>>(),
            now.difference(&want).collect::<Vec<_>>()
        )));
    }
    Ok(json!({ "regranted": f.revoked.len(), "snapshot_equal": true }))
}

async fn writes_back(j: &mut Journal, new: &mut Node, old: &mut Node, r: &Revert<'_>, out: &mut Output) -> Result<Value> {
    if let Some(cmd) = &r.writes_back_hook {
        let c = crate::engine::command::Command::shell(cmd).env("PRIVFENCE_OLD_SERVER", format!("{}:{}", old.spec().host, old.spec().port));
        c.check(r.hook_timeout).await.map_err(|e| Error::External {
            what: format!("the writes-back hook failed: {e}"),
            todo: "fix the hook (--hook-timeout bounds it), then run `promote revert` again to resume",
        })?;
    }
    let mut smoked = Vec::new();
    if let Some(spec) = &r.smoke_as {
        let mut node = Node::connect(spec, "smoke").await?;
        for t in &r.tables {
            let sql = format!("INSERT INTO {} SELECT * FROM {} WHERE FALSE", t.sql(), t.sql());
            exec::run(j, &mut node, Phase::Promote, Some("smoke-write"), &sql, &[]).await?;
            smoked.push(t.to_string());
        }
        node.server.close().await;
        out.status(&format!("  smoke write through {} on the old primary: ok", spec.target()));
    }
    let ro = match new.flavour() {
        crate::db::Flavour::MySql => "SET PERSIST read_only = ON",
        crate::db::Flavour::MariaDb => "SET GLOBAL read_only = ON",
    };
    exec::run(j, new, Phase::Promote, Some("read-only"), ro, &[]).await?;
    Ok(json!({ "hook": r.writes_back_hook, "smoke_write": smoked, "new_server_read_only": true }))
}

/// Undoes the revert's fence on the new server (refused after the point of no return).
pub async fn abort(j: &mut Journal, new: &mut Node, out: &mut Output) -> Result<()> {
    let st = PromoteState::fold(j.entries());
    if st.point_of_no_return {
        return Err(Error::JournalState {
            what: "the revert passed its point of no return (tables renamed back)".into(),
            todo: "resume it instead",
        });
    }
    if let Some(name) = guard::live(j.entries()) {
        guard::disarm_named(j, new, &name).await?;
    }
    if matches!(st.state("fence"), Some(StepState::Begun) | Some(StepState::Done)) {
        let f = fence::from_journal(j.entries());
        fence::unfence(j, new, &f).await?;
    }
    for name in STEPS[..PONR].iter().rev() {
        if st.state(name).is_some() {
            step(j, name, StepState::Undone, json!({}))?;
            out.status(&format!("undone: {name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_held() {
        let p = |f: &str, n: u64| Position { file: f.into(), pos: n, gtid: None };
        assert!(holds(&p("b.000002", 10), &p("b.000002", 10)));
        assert!(holds(&p("b.000003", 4), &p("b.000002", 900)));
        assert!(!holds(&p("b.000002", 9), &p("b.000002", 10)));
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let g = |s: &str| Position { file: "x".into(), pos: 0, gtid: Some(s.into()) };
        assert!(holds(&g(&format!("{u}:1-10")), &g(&format!("{u}:1-9"))));
        assert!(!holds(&g(&format!("{u}:1-8")), &g(&format!("{u}:1-9"))));
    }
}
