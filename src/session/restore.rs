//! Restoring a turn (the one restore path: after an abnormality, a signal, a fired fail-safe,
//! a crash, or a rollback), recovering an interrupted session, and the evidence settings that
//! a session turns on and back off.

use super::{same_boot, stop_requested, RestoreResult, Session, TurnResult};
use crate::engine::{exec, snapshot};
use crate::error::{Error, Result};
use crate::journal::{AccountState, JournalStep, Phase, Record, Verdict};
use crate::output::Output;
use std::collections::BTreeSet;
use std::time::Instant;

impl Session {
    /// Restores turn `turn`: re-grants, waits for replicas, ends the account's connections
    /// opened during the cut, removes what the cut added, and verifies the grants equal the
    /// snapshot on every server. Safe to run again after a crash at any point.
    pub async fn restore(&mut self, turn: usize, reason: &str, out: &mut Output) -> Result<RestoreResult> {
        let started = Instant::now();
        let seen = self.opts.interrupts.sigints();
        let state = self.journal.state();
        let t = state
            .turns
            .get(turn)
            .ok_or_else(|| Error::JournalState {
                what: format!("no turn {turn} in the journal"),
                todo: "`privfence session status` lists the turns it has",
            })?
            .clone();
        if t.restore_begun.is_none() || t.restore_done.is_some() {
            self.journal.append(Record::RestoreBegin { reason: reason.to_string() })?;
        }
        let deadline = Instant::now() + self.opts.restore_deadline;
        for n in &mut self.topo.nodes {
            if n.server.first::<i64>("checking the connection", "SELECT 1").await.is_err() {
                let mut say = |m: &str| out.progress(m);
                n.reconnect_until(deadline, &mut say).await?;
            }
        }
        let user = t.accounts.first().map(|a| a.user.clone()).unwrap_or_default();
        let current = snapshot::read(&mut self.topo.primary().server, &t.grantees).await?;
        let conflicts = conflicts(&t, &current);
        if !conflicts.is_empty() {
            out.warn(&format!(
                "the grants of {} changed since the cut, not by this session; only the session's own changes are undone:\n  {}",
                t.account,
                conflicts.join("\n  ")
            ));
        }
        let inverses = sent_inverses(&t);
        let first_removal = inverses.iter().position(|s| s.inverse.starts_with("REVOKE ")).unwrap_or(inverses.len());
        for s in &inverses[..first_removal] {
            self.stop_requested(seen)?;
            exec::run(&mut self.journal, self.topo.primary(), Phase::Restore, Some(&format!("{}-undo", s.id)), &s.inverse, &[]).await?;
        }
        let sig = self.opts.interrupts.clone();
        let late = tokio::select! {
            late = self.topo.wait_replicas(self.opts.restore_deadline.min(self.opts.replica_timeout)) => late?,
            _ = sig.wait_sigint_beyond(seen) => Vec::new(),
        };
        self.stop_requested(seen)?;
        if !late.is_empty() {
            out.warn(&format!("{} did not apply the re-grants in time; continuing, the verification will tell", late.join(", ")));
        }
        let killed = self.end_cut_era_connections(&t, &user, seen).await?;
        for s in &inverses[first_removal..] {
            self.stop_requested(seen)?;
            exec::run(
                &mut self.journal,
                self.topo.primary(),
                Phase::Restore,
                Some(&format!("{}-undo", s.id)),
                &s.inverse,
                exec::NOTHING_TO_REVOKE,
            )
            .await?;
        }
        let left = self.left_to_restore(&t, &conflicts).await?;
        let exact = left.is_empty();
        self.journal.append(Record::RestoreDone { exact, conflicts: conflicts.clone() })?;
        Ok(RestoreResult { exact, conflicts, left, killed, took: started.elapsed() })
    }

    /// Connections opened while the cut was in force cached the narrower schema privileges
    /// (mysql-facts §3): they are ended after the re-grant, before the additions are removed.
    async fn end_cut_era_connections(&mut self, t: &AccountState, user: &str, seen: u32) -> Result<usize> {
        let mut killed = 0;
        for n in &mut self.topo.nodes {
            let (now_id, boot) = (n.watermark().await?, n.boot().await?);
            let above = match t.watermarks.get(&(n.name.clone(), "cut-begin".to_string())) {
                Some((id, b)) if same_boot(*b, boot) => *id,
                _ => 0,
            };
            for id in n.connections_of(user, above, now_id).await? {
                stop_requested(&self.opts.interrupts, seen)?;
                exec::run(&mut self.journal, n, Phase::Kill, None, &format!("KILL CONNECTION {id}"), exec::NO_SUCH_THREAD).await?;
                killed += 1;
            }
        }
        Ok(killed)
    }

    /// What still differs from the snapshot (with others' changes kept) on the primary, and
    /// between the primary and each replica, once the replicas applied the restore.
    async fn left_to_restore(&mut self, t: &AccountState, conflicts: &[String]) -> Result<Vec<String>> {
        let late = self.topo.wait_replicas(self.opts.replica_timeout).await?;
        let now = snapshot::read(&mut self.topo.primary().server, &t.grantees).await?;
        let mut expected: BTreeSet<String> = t.snapshot.iter().cloned().collect();
        for c in conflicts {
            if let Some(a) = c.strip_prefix("+ ") {
                expected.insert(a.to_string());
            } else if let Some(a) = c.strip_prefix("- ") {
                expected.remove(a);
            }
        }
        let mut left = snapshot::diff(&expected, &now);
        for name in &late {
            left.push(format!("{name} did not apply the restore within {:?}", self.opts.replica_timeout));
        }
        for r in self.topo.replicas() {
            if late.contains(&r.name) {
                continue;
            }
            let theirs = snapshot::read(&mut r.server, &t.grantees).await?;
            left.extend(snapshot::diff(&now, &theirs).into_iter().map(|d| format!("{}: {d}", r.name)));
        }
        Ok(left)
    }

    /// After a crash: finishes an interrupted restore, restores a turn that was cut but has no
    /// verdict, closes a turn that changed nothing, and turns evidence settings back off.
    pub async fn recover(&mut self, out: &mut Output) -> Result<Option<TurnResult>> {
        let fired = self.recover_failsafe(out).await?;
        self.settings_off(out).await?;
        let state = self.journal.state();
        let Some(t) = state.open_turn().cloned() else { return Ok(None) };
        let status = t.status();
        if status == crate::journal::AccountStatus::Planned {
            self.journal.append(Record::Verdict {
                verdict: Verdict::Abandoned,
                reason: "the session stopped before the first statement".into(),
                evidence: Vec::new(),
                activity: 0,
            })?;
            return Ok(Some(TurnResult {
                account: t.account,
                verdict: Verdict::Abandoned,
                reason: "nothing was changed".into(),
                evidence: Vec::new(),
                screen_only: Vec::new(),
                restore: None,
            }));
        }
        let reason = match (&fired, &t.restore_begun) {
            (Some(f), _) => f.reason(),
            (None, Some((_, r))) => format!("{r} (restore resumed after an interruption)"),
            (None, None) => "the session was interrupted before a verdict; an unfinished watch proves nothing".to_string(),
        };
        if let Some(f) = &fired {
            out.status(&format!("the server restored {} by itself ({}); verifying the grants on every server", t.account, f.reason()));
        }
        out.status(&format!("restoring {}: {reason}", t.account));
        let r = self.restore(t.turn, &reason, out).await?;
        self.journal.append(Record::Verdict { verdict: Verdict::Restored, reason: reason.clone(), evidence: Vec::new(), activity: 0 })?;
        Ok(Some(TurnResult {
            account: t.account,
            verdict: Verdict::Restored,
            reason,
            evidence: Vec::new(),
            screen_only: Vec::new(),
            restore: Some(r),
        }))
    }

    /// Rolls back the cut of `account` (whose turn passed, or was kept inconclusive); without an
    /// account, every cut of the session, newest first.
    pub async fn rollback(&mut self, account: Option<&str>, out: &mut Output) -> Result<Vec<TurnResult>> {
        let mut results = Vec::new();
        if let Some(r) = self.recover(out).await? {
            results.push(r);
        }
        let state = self.journal.state();
        let mut turns: Vec<_> = state.latest_turns().into_iter().filter(|t| t.is_cut()).cloned().collect();
        if let Some(a) = account {
            turns.retain(|t| t.account == a || t.accounts.iter().any(|x| x.sql() == a || x.user == a));
            if turns.is_empty() && results.is_empty() {
                return Err(Error::JournalState {
                    what: format!("{a} has no cut in force in this journal"),
                    todo: "`privfence session status` lists the accounts and their verdicts",
                });
            }
        }
        turns.reverse();
        for t in turns {
            self.journal.append(Record::Reopen { turn: t.turn })?;
            let reason = "rolled back by the operator".to_string();
            out.status(&format!("rolling back {} ...", t.account));
            let r = self.restore(t.turn, &reason, out).await?;
            self.journal.append(Record::Verdict {
                verdict: Verdict::RolledBack,
                reason: reason.clone(),
                evidence: Vec::new(),
                activity: 0,
            })?;
            results.push(TurnResult {
                account: t.account,
                verdict: Verdict::RolledBack,
                reason,
                evidence: Vec::new(),
                screen_only: Vec::new(),
                restore: Some(r),
            });
        }
        Ok(results)
    }

    /// Turns on settings that improve evidence, journaled with their undo.
    pub async fn settings_on(&mut self, settings: &[crate::model::setting::Setting]) -> Result<()> {
        for w in settings {
            let (name, on, off) = (w.name(), w.enable_sql(), w.disable_sql());
            exec::run_with_undo(&mut self.journal, self.topo.primary(), Phase::Setting, Some(&name), &on, Some(&off), &[]).await?;
        }
        Ok(())
    }

    /// Turns every setting the journal says is on back off.
    pub async fn settings_off(&mut self, out: &mut Output) -> Result<()> {
        // In reverse order: a setting may depend on one turned on before it.
        for (server, name, undo) in self.journal.state().settings_on.into_iter().rev() {
            let Some(node) = self.topo.nodes.iter_mut().find(|n| n.name == server) else { continue };
            // Another privfence process may rely on it (engine::shared): left on, still journaled
            // as on, so the next turn's end or `session resume` tries again.
            if let Some(why) = crate::engine::shared::still_needed(&mut node.server, &name).await? {
                out.warn(&format!("left {name} on on {server}: {why}; `privfence session resume` turns it off once it is not"));
                continue;
            }
            exec::run(&mut self.journal, node, Phase::Setting, Some(&name), &undo, &[]).await?;
            out.status(&format!("turned {name} back off on {server}"));
        }
        Ok(())
    }
}

/// Someone else's changes: the differences from the grants right after the cut, as long as no
/// restore statement of ours has run yet (after an interrupted restore, the differences are
/// partly ours: the final check against the snapshot tells).
fn conflicts(t: &AccountState, current: &BTreeSet<String>) -> Vec<String> {
    let restarted = t.ops.iter().any(|o| o.phase == Phase::Restore) || t.failsafe.as_ref().is_some_and(|f| f.fired.is_some());
    match (&t.cut_done, restarted) {
        (Some((_, after)), false) => snapshot::diff(&after.iter().cloned().collect(), current),
        _ => Vec::new(),
    }
}

/// The inverses of the cut steps whose statement may have run, last first: an intent without
/// an outcome counts, a statement the server refused does not.
fn sent_inverses(t: &AccountState) -> Vec<&JournalStep> {
    let sent: BTreeSet<&str> = t
        .ops
        .iter()
        .filter(|o| o.phase == Phase::Cut)
        .filter(|o| !matches!(&o.outcome, Some((false, Some(e))) if !e.contains("may or may not have run")))
        .filter_map(|o| o.step.as_deref())
        .collect();
    t.steps.iter().rev().filter(|s| sent.contains(s.id.as_str())).collect()
}
