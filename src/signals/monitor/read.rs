//! The per-source readers of a poll (error counters, detail sources, status counters) and the
//! alarms they turn into: methods of [`Monitor`], kept apart from its lifecycle.

use super::{Monitor, Rise, KNOWN_CLOSED_MAX, MARIADB_DENIED_CODES};
use crate::db::Flavour;
use crate::error::{Error, Result};
use crate::model::AccountName;
use crate::signals::errors::{alarm, error_name, whose, Sighting, Whose, LOGIN_ERRORS, PRIVILEGE_ERRORS};
use crate::signals::tally::CounterKey;
use crate::signals::{errors, logins, pfs, userstat, Alarm, AlarmKind};
use std::collections::{BTreeMap, HashSet};

impl Monitor {
    /// MySQL's error summary: rises of the user's privilege errors go to the tally, failed
    /// logins to the activity; a decrease is a counter reset (someone truncated the table; a
    /// truncation while the user's rows were all zero loses nothing and goes unnoticed).
    pub(super) async fn read_error_summary(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        let user = self.target.user.clone();
        let now = summary_map(pfs::error_summary(self.conn(), &user).await?);
        let dropped: Vec<String> = self
            .errsum
            .iter()
            .filter(|(k, v)| now.get(*k).map_or(0, |n| n.0 + n.1) < v.0 + v.1)
            .map(|((u, h, c), v)| format!("{} {c} went down from {}", AccountName::new(u, h).sql(), v.0 + v.1))
            .collect();
        if !dropped.is_empty() {
            let cited = format!("{}: {}", pfs::ERROR_SUMMARY, dropped.join("; "));
            alarms.push(self.alarm(AlarmKind::CounterReset, pfs::ERROR_SUMMARY, cited));
        }
        for ((u, h, code), (raised, handled)) in &now {
            let (r0, h0) = self.errsum.get(&(u.clone(), h.clone(), *code)).copied().unwrap_or((0, 0));
            // After a reset the counters start again from zero: all they show is new.
            let reset = raised + handled < r0 + h0;
            let (dr, dh) = if reset { (*raised, *handled) } else { (raised.saturating_sub(r0), handled.saturating_sub(h0)) };
            if dr + dh == 0 {
                continue;
            }
            if PRIVILEGE_ERRORS.contains(code) || LOGIN_ERRORS.contains(code) {
                self.login_seen |= errors::is_login_error(*code);
                self.tally.rise(CounterKey { user: u.clone(), host: None, codes: vec![*code] }, dr + dh);
                let text = format!("{} {code} {} raised +{dr}, handled +{dh}", AccountName::new(u, h).sql(), error_name(*code));
                self.rises.push(Rise { code: Some(*code), host: Some(h.clone()), text });
            }
        }
        self.errsum = now;
        Ok(())
    }

    /// The detail sources: sql_errlog lines and statement history rows.
    pub(super) async fn read_details(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        let mut found = Vec::new();
        if let Some(log) = self.errlog.as_mut() {
            found.extend(log.read().map_err(|source| Error::Io { what: "reading the sql_errlog file".into(), source })?);
        }
        for log in &mut self.login_logs {
            let what = format!("reading the {} file {}", log.source(), log.path().display());
            found.extend(log.read().map_err(|source| Error::Io { what, source })?);
        }
        if let Some(after) = self.error_log_after.clone() {
            let (rows, last) = logins::error_log_rows(self.conn(), &after).await?;
            found.extend(rows);
            self.error_log_after = last.or(Some(after));
        }
        for s in found {
            self.sighting(s, alarms);
        }
        let Some(table) = self.caps.history else { return Ok(()) };
        // `_long` keeps the rows of closed connections: ask for the post-cut ones seen before.
        let closed: Vec<u64> = if table.ends_with("_long") { self.known.keys().copied().collect() } else { Vec::new() };
        let (own, since, user) = (self.own_thread, self.activity.since(), self.target.user.clone());
        let rows = pfs::history(self.conn(), table, own, &user, since, &closed).await?;
        let source = format!("performance_schema.{table}");
        let keys: HashSet<(u64, u64)> = rows.iter().map(|r| (r.thread_id, r.event_id)).collect();
        let new: Vec<pfs::HistoryRow> = rows.into_iter().filter(|r| !self.seen.contains(&(r.thread_id, r.event_id))).collect();
        for mut row in new {
            if let (None, Some((pid, host))) = (&row.user, self.known.get(&row.thread_id)) {
                (row.processlist_id, row.user, row.host) = (Some(*pid), Some(user.clone()), Some(host.clone()));
            }
            if PRIVILEGE_ERRORS.contains(&row.errno) {
                self.sighting(errors::from_history(&row, &source), alarms);
            } else if row.user.as_deref() == Some(user.as_str()) && row.processlist_id.is_some_and(|p| p >= since) {
                self.activity.history_row(&row, &self.target.dependents, &source);
            }
        }
        // A row still listed was processed now or before; one gone never comes back.
        self.seen = keys;
        Ok(())
    }

    /// One detail sighting: the user's own error (once, see `tally`), or collateral damage.
    fn sighting(&mut self, s: Sighting, alarms: &mut Vec<Alarm>) {
        match whose(&s, &self.target) {
            Whose::Own => {
                self.login_seen |= s.login;
                let user = s.user.clone().unwrap_or_default();
                if !self.tally.covers(&user, s.host.as_deref(), s.code) {
                    self.extra_errors += 1;
                }
                if self.tally.detail(&user, s.host.as_deref(), s.code) {
                    alarms.push(alarm(s, AlarmKind::PrivilegeError, &self.name));
                }
            }
            Whose::Collateral => alarms.push(alarm(s, AlarmKind::Collateral, &self.name)),
            Whose::Unrelated => {}
        }
    }

    /// Connections and activity counters; MariaDB's denied-access counter.
    pub(super) async fn read_status(&mut self, alarms: &mut Vec<Alarm>) -> Result<()> {
        let user = self.target.user.clone();
        let since = self.activity.since();
        let row = match self.caps.denied_connections {
            true => Some(userstat::user_row(self.conn(), &user).await?),
            false => None,
        };
        if let Some(row) = row {
            self.denied_logins_counter(row.map_or(0, |r| r.denied_connections), alarms);
        }
        if !self.caps.pfs {
            let conns = userstat::connections(self.conn(), &user).await?;
            self.connections = conns.len() as u32;
            if let (true, Some(row)) = (self.caps.userstat, row) {
                self.denied_counter(row.map_or(0, |r| r.access_denied), userstat::USER_STATISTICS, alarms);
                self.activity.user_statistics(row, conns.iter().any(|(id, _)| *id < since), &user, self.login_seen);
            }
            return Ok(());
        }
        let snap = pfs::status(self.conn(), &user).await?;
        self.connections = snap.threads.len() as u32;
        // MariaDB adds a connection's denied statements to DENIED_CONNECTIONS again when its
        // statistics are flushed (at disconnect too): with such a connection about, that
        // counter's rise says nothing about logins.
        // The flush lands after the client has gone, so the counter stays suspect for a while.
        if snap.threads.values().any(|t| t.counts.denied > 0) {
            self.denials_seen_at = Some(std::time::Instant::now());
        }
        self.denied_logins_untrusted = self.denials_seen_at.is_some_and(|t| t.elapsed() < super::DENIALS_SUSPECT);
        self.note_uninstrumented(&snap);
        for (tid, t) in snap.threads.iter().filter(|(_, t)| t.processlist_id >= since) {
            self.known.insert(*tid, (t.processlist_id, t.host.clone()));
        }
        while self.known.len() > KNOWN_CLOSED_MAX + snap.threads.len() {
            let Some(oldest) = self.known.keys().copied().find(|k| !snap.threads.contains_key(k)) else { break };
            self.known.remove(&oldest);
        }
        if self.caps.flavour == Flavour::MariaDb {
            self.denied_counter(snap.total().denied, pfs::STATUS, alarms);
        }
        self.activity.status(&snap, self.caps.history.is_some(), &user, self.login_seen);
        Ok(())
    }

    /// A reading of MariaDB's `DENIED_CONNECTIONS` of the user (all hosts). Seen on 10.11: a
    /// refused login adds 1, a denied table statement adds 1 or 2, a denied `USE` nothing; so
    /// its rise is kept aside and alarms only when nothing else explained the poll
    /// ([`Monitor::denied_logins_alarm`]).
    fn denied_logins_counter(&mut self, now: u64, alarms: &mut Vec<Alarm>) {
        match self.denied_logins.replace(now) {
            None => {}
            Some(before) if now < before => {
                let cited = format!("{}: {}'s counter went down from {before} to {now}", logins::DENIED_CONNECTIONS, self.target.user);
                alarms.push(self.alarm(AlarmKind::CounterReset, logins::DENIED_CONNECTIONS, cited));
            }
            Some(before) if now > before => self.denied_logins_rise += now - before,
            Some(_) => {}
        }
    }

    /// Alarms for a rise of `DENIED_CONNECTIONS` that no other source explained in this poll:
    /// a refused connection attempt only this counter saw.
    pub(super) fn denied_logins_alarm(&mut self, alarms: &mut Vec<Alarm>) {
        let rise = std::mem::take(&mut self.denied_logins_rise);
        let explained =
            alarms.iter().any(|a| matches!(a.kind, AlarmKind::PrivilegeError | AlarmKind::LoginDenied | AlarmKind::CounterReset));
        if rise == 0 || explained || std::mem::take(&mut self.denied_logins_untrusted) {
            return;
        }
        self.login_seen = true;
        let cited = format!(
            "{}: {}'s refused connection attempts +{rise} (MariaDB also counts some denied statements here; no statement source saw one)",
            logins::DENIED_CONNECTIONS,
            self.target.user
        );
        let mut a = self.alarm(AlarmKind::LoginDenied, logins::DENIED_CONNECTIONS, cited);
        a.account = Some(crate::model::ident::quote_str(&self.target.user));
        a.count = rise;
        alarms.push(a);
    }

    /// A reading of MariaDB's denied-access counter of the user (all hosts).
    fn denied_counter(&mut self, now: u64, source: &str, alarms: &mut Vec<Alarm>) {
        let key = CounterKey { user: self.target.user.clone(), host: None, codes: MARIADB_DENIED_CODES.to_vec() };
        match self.denied.replace(now) {
            None => {}
            Some(before) if now < before => {
                let cited = format!("{source}: {}'s denied accesses went down from {before} to {now}", self.target.user);
                alarms.push(self.alarm(AlarmKind::CounterReset, source, cited));
                self.tally.rise(key, now);
            }
            Some(before) if now > before => {
                let text = format!("{}'s denied accesses +{}", self.target.user, now - before);
                self.rises.push(Rise { code: None, host: None, text });
                self.tally.rise(key, now - before);
            }
            Some(_) => {}
        }
    }

    /// Connections of the user that performance_schema does not fully instrument are a blind
    /// spot of the error summary and the history (noted once per connection).
    fn note_uninstrumented(&mut self, snap: &pfs::StatusSnapshot) {
        let history = self.caps.history.is_some();
        for t in snap.threads.values().filter(|t| !t.instrumented || (history && !t.history)) {
            let what = if t.instrumented { "history" } else { "instrumentation" };
            let note = format!("connection {} of {} has no {what} (setup_actors)", t.processlist_id, self.target.user);
            for s in self.sources.iter_mut().filter(|s| s.name.starts_with("performance_schema.events_")) {
                if !s.blind_spots.contains(&note) {
                    s.blind_spots.push(note.clone());
                }
            }
        }
    }

    /// The alarm for errors a counter saw and no detail source explained.
    pub(super) fn counter_alarm(&self, key: &CounterKey, n: u64) -> Alarm {
        // A 1044 no statement source explains had no statement behind it: the default database
        // of a connection attempt (a `USE` leaves a history row when the history is on).
        let login = key.codes.iter().any(|c| LOGIN_ERRORS.contains(c)) || key.codes == [1044];
        let source = match (self.caps.flavour, self.caps.pfs) {
            (Flavour::MySql, _) => pfs::ERROR_SUMMARY,
            (Flavour::MariaDb, true) => pfs::STATUS,
            (Flavour::MariaDb, false) => userstat::USER_STATISTICS,
        };
        let kind = if login { AlarmKind::LoginDenied } else { AlarmKind::PrivilegeError };
        let mine = |r: &&Rise| match r.code {
            Some(c) => key.codes.contains(&c),
            // MariaDB's per-user counters: the login counter's rises name refused attempts.
            None => r.text.contains("refused connection") == login,
        };
        let rises: Vec<&Rise> = self.rises.iter().filter(mine).collect();
        let text = match rises.is_empty() {
            true => format!("{} +{n}", key.user),
            false => rises.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("; "),
        };
        let mut a = self.alarm(kind, source, format!("{source}: {text}"));
        let hosts: HashSet<&str> = rises.iter().filter_map(|r| r.host.as_deref()).collect();
        a.account = Some(match (hosts.len(), hosts.iter().next()) {
            (1, Some(h)) => AccountName::new(&key.user, *h).sql(),
            _ => crate::model::ident::quote_str(&key.user),
        });
        a.error = (key.codes.len() == 1).then(|| key.codes[0]);
        a.count = n;
        a
    }

    /// An alarm with only a source and a citation.
    pub(super) fn alarm(&self, kind: AlarmKind, source: &str, cited: String) -> Alarm {
        Alarm {
            kind,
            server: self.name.clone(),
            source: source.to_string(),
            account: None,
            error: None,
            object: None,
            digest: None,
            statement: None,
            cited,
            count: 1,
        }
    }
}

/// MySQL's error summary rows by (user, host, code): (raised, handled).
pub(super) fn summary_map(rows: Vec<pfs::ErrorRow>) -> BTreeMap<(String, String, u32), (u64, u64)> {
    rows.into_iter().map(|r| ((r.user, r.host, r.code), (r.raised, r.handled))).collect()
}
