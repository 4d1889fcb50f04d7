//! The promotion's fail-safe (steps 7-8): the same server-side dead man's switch as a cut's
//! ([`crate::engine::failsafe`]), armed before the write fence with the fence's exact undo
//! (re-grant the owner's writes, unlock it) and disarmed just before the point of no return.
//! If privfence disappears in between, the primary gives the service its writes back by
//! itself. Everything here runs without binary logging, like the fence: the replica (the
//! service's next server) never sees the fence, its undo, or the fail-safe's objects.

use crate::engine::exec;
use crate::engine::failsafe::{self, Fired, Heartbeat, Spec};
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Entry, FailsafeState, Journal, Phase, Record};
use crate::output::Output;
use serde_json::json;
use std::time::Duration;

/// An armed fence fail-safe and its heartbeat.
pub struct Guard {
    name: String,
    heartbeat: Heartbeat,
}

impl Guard {
    /// The heartbeat found it fired, or has been silent too long.
    pub fn maybe_fired(&self) -> bool {
        self.heartbeat.maybe_fired()
    }
}

async fn unlogged(primary: &Node) -> Result<Node> {
    primary.unlogged_companion().await
}

/// Arms the fail-safe with `undos` (run in this order when it fires). `Err(Refused)` when it
/// cannot be armed; nothing of the fence has run then.
pub async fn arm(j: &mut Journal, primary: &mut Node, after: Duration, undos: Vec<String>, out: &mut Output) -> Result<Guard> {
    let seed = format!("{}\u{0}{}", j.path().display(), chrono::Utc::now().to_rfc3339());
    let name = format!("f{:016x}", crate::plan::fingerprint::fnv1a64(seed.as_bytes()));
    let spec = Spec { after, regrants: undos, kill: false, unlogged: true, ..Spec::named(&name) };
    let scheduler: Option<String> = primary.server.first("reading event_scheduler", "SELECT @@GLOBAL.event_scheduler").await?;
    let no = "or pass --no-failsafe (then only this privfence process can take the fence down)";
    match scheduler.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("ON") => {}
        Some("OFF") => {
            let (on, off) = ("SET GLOBAL event_scheduler = ON", "SET GLOBAL event_scheduler = OFF");
            exec::run_with_undo(j, primary, Phase::Setting, Some(crate::engine::shared::EVENT_SCHEDULER_STEP), on, Some(off), &[]).await.map_err(|e| {
                Error::Refused(format!("the fence's fail-safe cannot be armed: event_scheduler is OFF and cannot be turned on ({e}); nothing was changed; {no}"))
            })?;
        }
        other => {
            return Err(Error::Refused(format!(
            "the fence's fail-safe cannot be armed: the primary's event_scheduler is {} (set at start); nothing was changed; restart it \
                 with event_scheduler=ON, {no}",
            other.unwrap_or("unknown")
        )))
        }
    }
    j.append(Record::Failsafe {
        name: name.clone(),
        state: FailsafeState::Arming,
        detail: json!({ "server": "primary", "event": spec.event(), "procedure": spec.procedure(), "after_ms": after.as_millis() as u64,
                        "heartbeat": spec.heartbeat_sql(), "purpose": "fence" }),
    })?;
    let armed = async {
        let mut hb = unlogged(primary).await?;
        for sql in Spec::schema_sql() {
            exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-schema"), &sql, &[]).await?;
        }
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-procedure"), &spec.procedure_sql(), &[]).await?;
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-heartbeat"), &spec.heartbeat_insert(), &[]).await?;
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-event"), &spec.event_sql(), &[]).await?;
        Ok::<Node, Error>(hb)
    }
    .await;
    match armed {
        Ok(hb) => {
            j.append(Record::Failsafe { name: name.clone(), state: FailsafeState::Armed, detail: json!({}) })?;
            out.status(&format!("  fail-safe armed: the primary takes the fence down by itself after {after:?} without heartbeat"));
            Ok(Guard { heartbeat: Heartbeat::spawn(hb, spec.heartbeat_sql(), after), name })
        }
        Err(e) => {
            let _ = disarm_named(j, primary, &name).await;
            let _ = settings_off(j, primary).await;
            Err(Error::Refused(format!("the fence's fail-safe cannot be armed on the primary: {e}; nothing was changed; {no}")))
        }
    }
}

/// Disarms (event first) and tells whether it fired.
pub async fn disarm(j: &mut Journal, primary: &mut Node, guard: Guard) -> Result<Option<Fired>> {
    let mut hb = unlogged(primary).await?;
    exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-disarm"), &Spec::named(&guard.name).drop_event_sql(), &[]).await?;
    hb.server.close().await;
    if let Some(n) = guard.heartbeat.stop().await {
        n.server.close().await;
    }
    disarm_named(j, primary, &guard.name).await
}

/// [`disarm`] without waiting for the heartbeat's next beat (up to a second): for a disarm
/// inside the service's write gap (the revert's, just before its point of no return).
pub async fn disarm_now(j: &mut Journal, primary: &mut Node, guard: Guard) -> Result<Option<Fired>> {
    let mut hb = unlogged(primary).await?;
    exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-disarm"), &Spec::named(&guard.name).drop_event_sql(), &[]).await?;
    hb.server.close().await;
    guard.heartbeat.stop_now();
    disarm_named(j, primary, &guard.name).await
}

/// Disarms fail-safe `name` (idempotent, also after a crash) and returns its fired record.
pub async fn disarm_named(j: &mut Journal, primary: &mut Node, name: &str) -> Result<Option<Fired>> {
    let spec = Spec::named(name);
    let mut fired = None;
    if failsafe::schema_exists(primary).await? {
        let mut hb = unlogged(primary).await?;
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-disarm"), &spec.drop_event_sql(), &[]).await?;
        fired = failsafe::read_fired(primary, name).await?;
        if let Some(f) = &fired {
            j.append(Record::Failsafe { name: name.into(), state: FailsafeState::Fired, detail: f.json() })?;
        }
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-disarm"), &spec.heartbeat_delete(), &[]).await?;
        exec::run(j, &mut hb, Phase::Failsafe, Some("failsafe-disarm"), &spec.drop_procedure_sql(), &[]).await?;
        hb.server.close().await;
    }
    j.append(Record::Failsafe { name: name.into(), state: FailsafeState::Disarmed, detail: json!({}) })?;
    settings_off(j, primary).await?;
    Ok(fired)
}

/// Turns back off what arming turned on (event_scheduler).
async fn settings_off(j: &mut Journal, primary: &mut Node) -> Result<()> {
    for (_, name, undo) in crate::journal::State::fold(j.entries()).settings_on.into_iter().rev() {
        // Another privfence run's fail-safe may still need it (engine::shared): left on, still
        // journaled as on.
        if crate::engine::shared::still_needed(&mut primary.server, &name).await?.is_some() {
            continue;
        }
        exec::run(j, primary, Phase::Setting, Some(&name), &undo, &[]).await?;
    }
    Ok(())
}

/// The fail-safe a crashed run left armed, by name.
pub fn live(entries: &[Entry]) -> Option<String> {
    let mut last: Option<(String, FailsafeState)> = None;
    for e in entries {
        if let Record::Failsafe { name, state, .. } = &e.record {
            last = Some((name.clone(), *state));
        }
    }
    last.filter(|(_, s)| *s != FailsafeState::Disarmed).map(|(n, _)| n)
}
