//! The session as a journal tells it: a pure fold over its entries.

use super::{Entry, FailsafeState, JournalStep, Phase, Record, ServerRef, Verdict};
use crate::model::{AccountName, TableName};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One journaled statement and, if it was written, its outcome.
#[derive(Debug, Clone)]
pub struct Op {
    pub op: u64,
    pub server: String,
    pub phase: Phase,
    pub step: Option<String>,
    pub sql: String,
    pub undo: Option<String>,
    pub at: DateTime<Utc>,
    /// `None`: the process died between running it and writing the outcome (or before running it).
    pub outcome: Option<(bool, Option<String>)>,
}

/// Where an account's turn stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Begun, nothing sent to a server yet.
    Planned,
    /// Cut statements sent (maybe not all), cut not yet in force everywhere.
    Cutting,
    /// The cut is in force; the watch may have begun.
    Watching,
    /// A restore has begun and not finished.
    Restoring,
    /// The turn has its verdict.
    Done(Verdict),
}

/// One account's turn.
#[derive(Debug, Clone)]
pub struct AccountState {
    pub turn: usize,
    pub account: String,
    pub accounts: Vec<AccountName>,
    pub grantees: Vec<AccountName>,
    pub fingerprint: String,
    pub steps: Vec<JournalStep>,
    pub snapshot: Vec<String>,
    pub evidence: Vec<String>,
    pub begun: DateTime<Utc>,
    pub ops: Vec<Op>,
    /// (server, purpose) → (id, boot).
    pub watermarks: BTreeMap<(String, String), (u64, i64)>,
    pub cut_done: Option<(DateTime<Utc>, Vec<String>)>,
    pub watch_begun: Option<(DateTime<Utc>, u64)>,
    pub restore_begun: Option<(DateTime<Utc>, String)>,
    pub restore_done: Option<(DateTime<Utc>, bool, Vec<String>)>,
    pub verdict: Option<VerdictRecord>,
    /// A verdict later replaced by a rollback.
    pub earlier_verdicts: Vec<VerdictRecord>,
    /// The turn's server-side fail-safe, once arming began.
    pub failsafe: Option<FailsafeInfo>,
}

/// A fail-safe as the journal tells it.
#[derive(Debug, Clone)]
pub struct FailsafeInfo {
    pub name: String,
    pub state: FailsafeState,
    /// The `arming` record's detail (server, schema, event, procedure, after_ms, heartbeat).
    pub plan: serde_json::Value,
    /// When it was armed (the heartbeat began).
    pub armed_at: Option<DateTime<Utc>>,
    /// The `fired` record's detail.
    pub fired: Option<serde_json::Value>,
}

impl FailsafeInfo {
    /// Event or procedure may exist on the server.
    pub fn live(&self) -> bool {
        self.state != FailsafeState::Disarmed
    }

    pub fn after_ms(&self) -> u64 {
        self.plan["after_ms"].as_u64().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct VerdictRecord {
    pub verdict: Verdict,
    pub reason: String,
    pub evidence: Vec<String>,
    pub activity: u64,
    pub at: DateTime<Utc>,
}

impl AccountState {
    pub fn status(&self) -> AccountStatus {
        if let Some(v) = &self.verdict {
            return AccountStatus::Done(v.verdict);
        }
        if self.restore_begun.is_some() && self.restore_done.is_none() {
            return AccountStatus::Restoring;
        }
        if self.cut_done.is_some() {
            return AccountStatus::Watching;
        }
        if self.ops.iter().any(|o| o.phase == Phase::Cut) {
            return AccountStatus::Cutting;
        }
        AccountStatus::Planned
    }

    /// The grants are (or may be) changed by this turn and not restored.
    pub fn is_cut(&self) -> bool {
        match self.status() {
            AccountStatus::Planned => false,
            AccountStatus::Done(v) => v == Verdict::Passed || (v == Verdict::Inconclusive && self.restore_done.is_none()),
            _ => true,
        }
    }

    /// Ids of the cut steps whose statement may have run.
    pub fn sent_steps(&self) -> Vec<String> {
        self.ops.iter().filter(|o| o.phase == Phase::Cut).filter_map(|o| o.step.clone()).collect()
    }

    pub fn failed_ops(&self) -> Vec<&Op> {
        self.ops.iter().filter(|o| matches!(o.outcome, Some((false, _)))).collect()
    }
}

/// The whole session.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub service: String,
    pub policy: String,
    pub tables: Vec<TableName>,
    pub created: Option<DateTime<Utc>>,
    pub topologies: Vec<Vec<ServerRef>>,
    pub notes: Vec<(DateTime<Utc>, Option<String>, String)>,
    pub turns: Vec<AccountState>,
    /// Settings turned on and not yet off: (server, name, undo statement).
    pub settings_on: Vec<(String, String, String)>,
}

impl State {
    pub fn fold(entries: &[Entry]) -> State {
        let mut f = Folder::default();
        for e in entries {
            f.entry(e);
        }
        f.s
    }

    /// The turn that has no verdict yet (at most one: a session cuts one account at a time).
    pub fn open_turn(&self) -> Option<&AccountState> {
        self.turns.iter().find(|t| t.verdict.is_none())
    }

    /// The latest turn of each account, by the name the operator used.
    pub fn latest_turns(&self) -> Vec<&AccountState> {
        let mut by: BTreeMap<&str, &AccountState> = BTreeMap::new();
        for t in &self.turns {
            by.insert(&t.account, t);
        }
        let mut v: Vec<&AccountState> = by.into_values().collect();
        v.sort_by_key(|t| t.turn);
        v
    }
}

/// The fold's running state: the session so far, the turn records apply to, and the setting
/// statements by op id (their outcomes turn a setting off).
#[derive(Default)]
struct Folder {
    s: State,
    current: Option<usize>,
    /// op → (server, setting name, undo); `undo` is `None` for a statement that turns it off.
    setting_ops: BTreeMap<u64, (String, String, Option<String>)>,
}

impl Folder {
    fn turn(&mut self) -> Option<&mut AccountState> {
        self.current.and_then(|i| self.s.turns.get_mut(i))
    }

    fn entry(&mut self, e: &Entry) {
        let s = &mut self.s;
        match &e.record {
            Record::Header { service, policy, tables, .. } => {
                s.service = service.clone();
                s.policy = policy.clone();
                s.tables = tables.clone();
                s.created = Some(e.at);
            }
            Record::Topology { servers } => s.topologies.push(servers.clone()),
            Record::Note { account, text } => s.notes.push((e.at, account.clone(), text.clone())),
            Record::AccountBegin { .. } => {
                if let Some(t) = AccountState::begun(s.turns.len(), e) {
                    s.turns.push(t);
                    self.current = Some(s.turns.len() - 1);
                }
            }
            Record::Reopen { turn } => {
                if let Some(t) = s.turns.get_mut(*turn) {
                    if let Some(v) = t.verdict.take() {
                        t.earlier_verdicts.push(v);
                    }
                    t.restore_begun = None;
                    t.restore_done = None;
                    self.current = Some(*turn);
                }
            }
            Record::Intent { .. } => self.intent(e),
            Record::Outcome { op, ok, error } => {
                if let Some((server, name, undo)) = self.setting_ops.get(op) {
                    // A successful "off" clears the setting.
                    if undo.is_none() && *ok {
                        s.settings_on.retain(|(sv, n, _)| !(sv == server && n == name));
                    }
                    return;
                }
                if let Some(o) = self.turn().and_then(|t| t.ops.iter_mut().rev().find(|o| o.op == *op)) {
                    o.outcome = Some((*ok, error.clone()));
                }
            }
            Record::Step { .. } | Record::PointOfNoReturn { .. } => {}
            Record::Verdict { verdict, reason, evidence, activity } => {
                if let Some(t) = self.turn() {
                    t.verdict = Some(VerdictRecord {
                        verdict: *verdict,
                        reason: reason.clone(),
                        evidence: evidence.clone(),
                        activity: *activity,
                        at: e.at,
                    });
                }
                self.current = None;
            }
            Record::Watermark { .. }
            | Record::CutDone { .. }
            | Record::WatchBegin { .. }
            | Record::RestoreBegin { .. }
            | Record::RestoreDone { .. }
            | Record::Failsafe { .. } => {
                if let Some(t) = self.turn() {
                    t.record(e);
                }
            }
        }
    }

    /// A statement's intent: a setting's (session-wide) or the current turn's.
    fn intent(&mut self, e: &Entry) {
        let Record::Intent { op, server, phase, step, sql, undo } = &e.record else { return };
        if *phase == Phase::Setting {
            self.setting_ops.insert(*op, (server.clone(), step.clone().unwrap_or_default(), undo.clone()));
            // Turning on: counts as on from the intent (it may have run).
            if let Some(u) = undo {
                self.s.settings_on.push((server.clone(), step.clone().unwrap_or_default(), u.clone()));
            }
            return;
        }
        let o = Op {
            op: *op,
            server: server.clone(),
            phase: *phase,
            step: step.clone(),
            sql: sql.clone(),
            undo: undo.clone(),
            at: e.at,
            outcome: None,
        };
        if let Some(t) = self.turn() {
            t.ops.push(o);
        }
    }
}

impl AccountState {
    /// A new turn from its `account_begin` entry.
    fn begun(turn: usize, e: &Entry) -> Option<AccountState> {
        let Record::AccountBegin { account, accounts, grantees, fingerprint, steps, snapshot, evidence } = &e.record else {
            return None;
        };
        Some(AccountState {
            turn,
            account: account.clone(),
            accounts: accounts.clone(),
            grantees: grantees.clone(),
            fingerprint: fingerprint.clone(),
            steps: steps.clone(),
            snapshot: snapshot.clone(),
            evidence: evidence.clone(),
            begun: e.at,
            ops: Vec::new(),
            watermarks: BTreeMap::new(),
            cut_done: None,
            watch_begun: None,
            restore_begun: None,
            restore_done: None,
            verdict: None,
            earlier_verdicts: Vec::new(),
            failsafe: None,
        })
    }

    /// A record that belongs to this turn alone (watermarks, cut, watch, restore, fail-safe).
    fn record(&mut self, e: &Entry) {
        match &e.record {
            Record::Watermark { server, purpose, id, boot } => {
                self.watermarks.insert((server.clone(), purpose.clone()), (*id, *boot));
            }
            Record::CutDone { after } => self.cut_done = Some((e.at, after.clone())),
            Record::WatchBegin { window_ms, .. } => self.watch_begun = Some((e.at, *window_ms)),
            Record::RestoreBegin { reason } if self.restore_begun.is_none() || self.restore_done.is_some() => {
                self.restore_begun = Some((e.at, reason.clone()));
                self.restore_done = None;
            }
            Record::RestoreDone { exact, conflicts } => self.restore_done = Some((e.at, *exact, conflicts.clone())),
            Record::Failsafe { name, state, detail } => {
                let f = self.failsafe.get_or_insert_with(|| FailsafeInfo {
                    name: name.clone(),
                    state: *state,
                    plan: serde_json::Value::Null,
                    armed_at: None,
                    fired: None,
                });
                f.state = *state;
                match state {
                    FailsafeState::Arming => f.plan = detail.clone(),
                    FailsafeState::Armed => f.armed_at = Some(e.at),
                    FailsafeState::Fired => f.fired = Some(detail.clone()),
                    FailsafeState::Disarmed => {}
                }
            }
            _ => {}
        }
    }
}
