//! A turn's fail-safe in the session: armed on the primary before the cut (or the cut is
//! refused), watched while the cut is in force, read when it fired, disarmed when the turn
//! ends. Every statement goes through the journaling executor; the per-second heartbeat is
//! journaled once, in the `arming` record (see [`crate::engine::failsafe`]).

use super::Session;
use crate::engine::exec;
use crate::engine::failsafe::{self, Fired, Heartbeat, Spec};
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{FailsafeState, JournalStep, Phase, Record};
use crate::output::Output;
use serde_json::json;
use std::time::{Duration, Instant};

/// An armed fail-safe: its statements and its running heartbeat.
pub struct Armed {
    pub spec: Spec,
    pub heartbeat: Heartbeat,
}

/// What to tell the operator when the fail-safe cannot be armed.
const NO_FAILSAFE: &str = "or pass --no-failsafe to cut without it (then only this privfence process can restore the account)";

impl Session {
    /// Arms the fail-safe of turn `turn` on the primary before its cut. `Err(Refused)` when it
    /// cannot be armed; whatever was created is dropped again and nothing of the account changed.
    pub(super) async fn arm_failsafe(&mut self, turn: usize, user: &str, steps: &[JournalStep], out: &mut Output) -> Result<()> {
        let Some(after) = self.opts.failsafe else { return Ok(()) };
        let state = self.journal.state();
        let t = &state.turns[turn];
        let watermark = t.watermarks.get(&("primary".to_string(), "cut-begin".to_string())).map_or(0, |w| w.0);
        let seed = format!("{}\u{0}{}\u{0}{}\u{0}{}", state.service, turn, t.begun.to_rfc3339(), self.journal.path().display());
        let name = format!("t{:016x}", crate::plan::fingerprint::fnv1a64(seed.as_bytes()));
        let spec = Spec::for_turn(name.clone(), after, user, watermark, steps);
        let primary = self.topo.primary();
        let scheduler: Option<String> = primary.server.first("reading event_scheduler", "SELECT @@GLOBAL.event_scheduler").await?;
        match scheduler.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("ON") => {}
            Some("OFF") => {
                let on = "SET GLOBAL event_scheduler = ON";
                let r = exec::run_with_undo(
                    &mut self.journal,
                    primary,
                    Phase::Setting,
                    Some(crate::engine::shared::EVENT_SCHEDULER_STEP),
                    on,
                    Some("SET GLOBAL event_scheduler = OFF"),
                    &[],
                )
                .await;
                if let Err(e) = r {
                    return Err(Error::Refused(format!(
                        "the server-side fail-safe cannot be armed: event_scheduler is OFF on the primary and privfence may not turn it on \
                         ({e}); nothing was changed. Turn it on (SET GLOBAL event_scheduler = ON), give privfence's account \
                         SYSTEM_VARIABLES_ADMIN (MySQL) or SUPER, {NO_FAILSAFE}"
                    )));
                }
                out.status("turned event_scheduler on for the fail-safe (journaled; turned back off when the turn ends)");
            }
            other => {
                return Err(Error::Refused(format!(
                    "the server-side fail-safe cannot be armed: the primary's event_scheduler is {} (set at server start, it cannot \
                     change at runtime); nothing was changed. Restart the server with event_scheduler=ON (or OFF: privfence turns it \
                     on for a turn), {NO_FAILSAFE}",
                    other.unwrap_or("unknown")
                )));
            }
        }
        self.journal.append(Record::Failsafe {
            name: name.clone(),
            state: FailsafeState::Arming,
            detail: json!({
                "server": "primary", "schema": failsafe::SCHEMA, "event": spec.event(), "procedure": spec.procedure(),
                "after_ms": after.as_millis() as u64, "watermark": watermark, "heartbeat": spec.heartbeat_sql(),
            }),
        })?;
        match self.arm_statements(&spec).await {
            Ok(hb) => {
                self.armed = Some(Armed { heartbeat: Heartbeat::spawn(hb, spec.heartbeat_sql(), after), spec });
                self.journal.append(Record::Failsafe { name, state: FailsafeState::Armed, detail: json!({}) })?;
                out.status(&format!("fail-safe armed on the primary: the server restores the account after {after:?} without heartbeat"));
                Ok(())
            }
            Err(e) => {
                let undo = self.disarm_named(&name, None, out).await;
                let _ = self.settings_off(out).await;
                Err(Error::Refused(format!(
                    "the server-side fail-safe cannot be armed on the primary: {e}{}; nothing of the account was changed. privfence's \
                     account needs CREATE, INSERT, UPDATE, DELETE, CREATE ROUTINE, ALTER ROUTINE, EVENT on `{}`.* and the right to set \
                     sql_log_bin; grant them, {NO_FAILSAFE}",
                    undo.err().map(|u| format!(" (dropping what was created failed too: {u})")).unwrap_or_default(),
                    failsafe::SCHEMA
                )))
            }
        }
    }

    /// Creates the schema, procedure, heartbeat row and event; returns the heartbeat connection.
    async fn arm_statements(&mut self, spec: &Spec) -> Result<Node> {
        let mut hb = self.topo.primary().unlogged_companion().await?;
        let primary = self.topo.primary();
        for sql in Spec::schema_sql() {
            exec::run(&mut self.journal, primary, Phase::Failsafe, Some("failsafe-schema"), &sql, &[]).await?;
        }
        exec::run(&mut self.journal, primary, Phase::Failsafe, Some("failsafe-procedure"), &spec.procedure_sql(), &[]).await?;
        exec::run(&mut self.journal, &mut hb, Phase::Failsafe, Some("failsafe-heartbeat"), &spec.heartbeat_insert(), &[]).await?;
        exec::run(&mut self.journal, self.topo.primary(), Phase::Failsafe, Some("failsafe-event"), &spec.event_sql(), &[]).await?;
        Ok(hb)
    }

    /// The armed fail-safe fired, or may have (its heartbeat is silent).
    pub(super) fn failsafe_tripped(&self) -> bool {
        self.armed.as_ref().is_some_and(|a| a.heartbeat.maybe_fired())
    }

    /// The fail-safe's record on the primary, once its procedure finished (waits up to 10 s
    /// for a procedure still running); journaled once.
    pub(super) async fn failsafe_fired(&mut self, name: &str) -> Result<Option<Fired>> {
        let end = Instant::now() + Duration::from_secs(10);
        let fired = loop {
            let f = failsafe::read_fired(self.topo.primary(), name).await?;
            match f {
                Some(f) if f.done_at.is_none() && Instant::now() < end => tokio::time::sleep(Duration::from_millis(200)).await,
                other => break other,
            }
        };
        let journaled = self.journal.state().open_turn().and_then(|t| t.failsafe.as_ref()).is_some_and(|f| f.fired.is_some());
        if let (Some(f), false) = (&fired, journaled) {
            self.journal.append(Record::Failsafe { name: name.to_string(), state: FailsafeState::Fired, detail: f.json() })?;
        }
        Ok(fired)
    }

    /// Disarms the armed fail-safe (event first), and tells whether it fired before that.
    pub(super) async fn disarm_failsafe(&mut self, out: &mut Output) -> Result<Option<Fired>> {
        let Some(armed) = self.armed.take() else { return Ok(None) };
        let name = armed.spec.name.clone();
        exec::run(&mut self.journal, self.topo.primary(), Phase::Failsafe, Some("failsafe-disarm"), &armed.spec.drop_event_sql(), &[])
            .await?;
        let hb = armed.heartbeat.stop().await;
        let fired = self.failsafe_fired(&name).await?;
        self.disarm_named(&name, hb, out).await?;
        self.settings_off(out).await?;
        Ok(fired)
    }

    /// `resume`: disarms a fail-safe the open turn left armed (event first) and returns what it
    /// did if it fired (from the server, or from the journal when an earlier run read it).
    pub(super) async fn recover_failsafe(&mut self, out: &mut Output) -> Result<Option<Fired>> {
        let state = self.journal.state();
        let Some(f) = state.open_turn().and_then(|t| t.failsafe.clone()) else { return Ok(None) };
        if !f.live() {
            return Ok(f.fired.as_ref().map(Fired::from_json));
        }
        let spec = Spec::named(&f.name);
        if failsafe::schema_exists(self.topo.primary()).await? {
            exec::run(&mut self.journal, self.topo.primary(), Phase::Failsafe, Some("failsafe-disarm"), &spec.drop_event_sql(), &[])
                .await?;
        }
        let fired = match &f.fired {
            Some(v) => Some(Fired::from_json(v)),
            None if failsafe::schema_exists(self.topo.primary()).await? => self.failsafe_fired(&f.name).await?,
            None => None,
        };
        self.disarm_named(&f.name, None, out).await?;
        Ok(fired)
    }

    /// Drops event, heartbeat row (without binary logging: the replicas never had it) and
    /// procedure of fail-safe `name`; idempotent, for `resume` too.
    pub(super) async fn disarm_named(&mut self, name: &str, hb: Option<Node>, out: &mut Output) -> Result<()> {
        let spec = Spec::named(name);
        let primary = self.topo.primary();
        if !failsafe::schema_exists(primary).await? {
            self.journal.append(Record::Failsafe { name: name.into(), state: FailsafeState::Disarmed, detail: json!({}) })?;
            return Ok(());
        }
        exec::run(&mut self.journal, primary, Phase::Failsafe, Some("failsafe-disarm"), &spec.drop_event_sql(), &[]).await?;
        let hb = match hb {
            Some(n) => Some(n),
            None => unlogged(primary).await,
        };
        match hb {
            Some(mut n) => {
                exec::run(&mut self.journal, &mut n, Phase::Failsafe, Some("failsafe-disarm"), &spec.heartbeat_delete(), &[]).await?;
                n.server.close().await;
            }
            None => out.warn("the fail-safe's heartbeat row stays (sql_log_bin could not be turned off to delete it); it is inert"),
        }
        let primary = self.topo.primary();
        exec::run(&mut self.journal, primary, Phase::Failsafe, Some("failsafe-disarm"), &spec.drop_procedure_sql(), &[]).await?;
        self.journal.append(Record::Failsafe { name: name.into(), state: FailsafeState::Disarmed, detail: json!({}) })?;
        Ok(())
    }
}

/// A second connection to `node` whose session does not write the binary log.
async fn unlogged(node: &Node) -> Option<Node> {
    node.unlogged_companion().await.ok()
}

/// Resolves when the armed fail-safe fired or may have; never without one.
pub(super) async fn tripped(armed: Option<&Armed>) {
    match armed {
        Some(a) => a.heartbeat.wait().await,
        None => std::future::pending().await,
    }
}
