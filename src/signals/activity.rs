//! How much the watched account worked through post-cut connections: the difference between
//! a passed window and an inconclusive one.
//!
//! Only one measure can pass a window: **statement history rows** of connections that logged
//! in after the cut. A statement counts when it is one the client sent (not nested in a
//! routine), succeeded, and its digest names a table outside the system schemas, or calls a
//! procedure or a dependent function. Cited by digest and table names. A history row exists
//! only for a statement that ran, so a failed login never counts.
//!
//! The counters below are **unattributed** activity: reported, never a pass. Measured on both
//! flavours, they cannot tell a table statement from a client's housekeeping: on MySQL 9.7 a
//! `SELECT COUNT(*)` of an InnoDB table makes no handler read at all while `SHOW VARIABLES`
//! makes hundreds (data-dictionary reads) and an information_schema query dozens; on MariaDB
//! 10.11 an information_schema query or `SHOW VARIABLES` reads a temporary table
//! (`Handler_read_rnd_next`) like a table scan.
//!
//! - **Status counters** for connections the history does not cover (consumers off,
//!   `HISTORY=NO`): per connection `min(Δ Questions, Δ handler calls)`, counted only once the
//!   connection is past its login (`PROCESSLIST_COMMAND` other than `Connect`); for connections
//!   that closed between two polls, the same on the account totals minus the live connections,
//!   unless a pre-cut connection closed in that interval too, or a refused login of the account
//!   was seen in it.
//! - **`USER_STATISTICS`** (MariaDB without performance_schema): per user
//!   `min(Δ commands, Δ rows)`, only while no pre-cut connection is open and no refused login
//!   was seen in the interval.

use super::pfs::{Counts, HistoryRow, StatusSnapshot, ThreadStat};
use super::userstat::UserRow;
use super::CITED_MAX;
use crate::access::sqlrefs;
use crate::model::{RoutineKind, TableName};

/// Schemas whose tables do not count as the service's work.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// The tables (and called routines) a history row touched, when it counts as activity.
pub fn touched(row: &HistoryRow, dependents: &[TableName]) -> Option<Vec<String>> {
    if !row.top_level || row.errno != 0 || !row.event_name.starts_with("statement/sql/") {
        return None;
    }
    let text = row.digest_text.as_deref().or(row.sql_text.as_deref())?;
    let refs = sqlrefs::extract(text, row.schema.as_deref().unwrap_or(""));
    let mut names: Vec<String> = refs
        .tables
        .iter()
        .filter(|t| !t.name.eq_ignore_ascii_case("dual") && !SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(&t.schema)))
        .map(|t| t.table().sql())
        .collect();
    for r in &refs.routines {
        let is_dependent = dependents.iter().any(|d| d.schema.eq_ignore_ascii_case(&r.schema) && d.name.eq_ignore_ascii_case(&r.name));
        if r.kind == RoutineKind::Procedure || is_dependent {
            names.push(TableName::new(&r.schema, &r.name).sql());
        }
    }
    (!names.is_empty()).then_some(names)
}

/// The running count.
#[derive(Debug, Default)]
pub struct Tracker {
    /// First processlist id of a post-cut connection.
    since: u64,
    statements: u64,
    cited: Vec<String>,
    /// Counter-based activity (see the module docs): never a pass.
    unattributed: u64,
    unattributed_cited: Vec<String>,
    prev: Option<StatusSnapshot>,
    /// Closed connections' questions and handler calls not attributed yet; only debts are kept (a
    /// connection can be in both the account totals and the live list for a moment).
    debt: (i64, i64),
    prev_user: Option<UserRow>,
    precut_before: bool,
}

impl Tracker {
    pub fn new(since: u64) -> Tracker {
        Tracker { since, ..Default::default() }
    }

    /// The first processlist id of a post-cut connection.
    pub fn since(&self) -> u64 {
        self.since
    }

    /// After a restart every connection is new (and ids start again from 1): all count.
    /// Sets the first processlist id of a post-cut connection.
    pub fn set_since(&mut self, since: u64) {
        self.since = since;
    }

    /// The counters started again from zero, so the next reading counts in full.
    pub fn restarted(&mut self) {
        self.since = 0;
        self.prev = Some(StatusSnapshot::default());
        self.prev_user = Some(UserRow::default());
        self.precut_before = false;
        self.debt = (0, 0);
    }

    pub fn statements(&self) -> u64 {
        self.statements
    }

    pub fn cited(&self) -> &[String] {
        &self.cited
    }

    pub fn unattributed(&self) -> u64 {
        self.unattributed
    }

    pub fn unattributed_cited(&self) -> &[String] {
        &self.unattributed_cited
    }

    fn cite(&mut self, s: String) {
        if self.cited.len() < CITED_MAX && !self.cited.contains(&s) {
            self.cited.push(s);
        }
    }

    fn weak(&mut self, n: u64, s: String) {
        self.unattributed += n;
        if self.unattributed_cited.len() < CITED_MAX && !self.unattributed_cited.contains(&s) {
            self.unattributed_cited.push(s);
        }
    }

    /// A new history row of a post-cut connection of the user.
    pub fn history_row(&mut self, row: &HistoryRow, dependents: &[TableName], source: &str) {
        let Some(names) = touched(row, dependents) else { return };
        self.statements += 1;
        let who = match (&row.user, &row.host) {
            (Some(u), Some(h)) => format!("{} ", crate::model::AccountName::new(u, h).sql()),
            _ => String::new(),
        };
        let conn = row.processlist_id.map(|p| format!("connection {p} ")).unwrap_or_default();
        let digest = row.digest.as_deref().map(|d| format!(" digest {}", &d[..d.len().min(16)])).unwrap_or_default();
        self.cite(format!("{source}: {who}{conn}{}{digest} touched {}", row.event_name, names.join(", ")));
    }

    /// A status snapshot. `history_on`: the statement history is read, so connections it covers
    /// are counted from their rows, not from their counters. `login_refused`: a refused login
    /// of the account was seen in this interval.
    pub fn status(&mut self, snap: &StatusSnapshot, history_on: bool, user: &str, login_refused: bool) {
        let Some(prev) = self.prev.replace(snap.clone()) else { return };
        let (mut live_q, mut live_o) = (0i64, 0i64);
        for (tid, t) in &snap.threads {
            let before = prev.threads.get(tid).map(|p| p.counts).unwrap_or_default();
            let (dq, dh) = delta(before, t.counts);
            live_q += dq;
            live_o += dh;
            let covered = history_on && t.instrumented && t.history;
            let n = dq.min(dh);
            if t.processlist_id >= self.since && !covered && t.logged_in() && n > 0 {
                let who = crate::model::AccountName::new(user, &t.host).sql();
                self.weak(
                    n as u64,
                    format!(
                        "performance_schema.status_by_thread: {who} connection {}: +{dq} statements, +{dh} handler calls (unattributed)",
                        t.processlist_id
                    ),
                );
            }
        }
        let closed: Vec<&ThreadStat> = prev.threads.iter().filter(|(tid, _)| !snap.threads.contains_key(tid)).map(|(_, t)| t).collect();
        let precut_closed = closed.iter().any(|p| p.processlist_id < self.since);
        let unlogged_closed = closed.iter().any(|p| !p.logged_in());
        let (a0, a1) = (prev.total(), snap.total());
        if precut_closed || unlogged_closed || login_refused || a1.questions < a0.questions || a1.handler < a0.handler {
            self.debt = (0, 0);
            return;
        }
        let (dq, dh) = delta(a0, a1);
        let eq = self.debt.0 + dq - live_q;
        let eo = self.debt.1 + dh - live_o;
        if eq > 0 && eo > 0 {
            let n = eq.min(eo);
            self.weak(
                n as u64,
                format!(
                    "performance_schema.status_by_account: {user}: connections that closed since the previous poll ran +{eq} statements, +{eo} handler calls (unattributed)"
                ),
            );
        }
        self.debt = (eq.min(0), eo.min(0));
    }

    /// The user's `USER_STATISTICS` row, whether a pre-cut connection is open now, and whether
    /// a refused login of the account was seen in this interval.
    pub fn user_statistics(&mut self, row: Option<UserRow>, precut_open: bool, user: &str, login_refused: bool) {
        let row = row.unwrap_or_default();
        let before = std::mem::replace(&mut self.precut_before, precut_open);
        let Some(prev) = self.prev_user.replace(row) else { return };
        if precut_open || before || login_refused || row.rows < prev.rows || row.commands < prev.commands {
            return;
        }
        let (dr, dc) = (row.rows - prev.rows, row.commands - prev.commands);
        let n = dr.min(dc);
        if n > 0 {
            self.weak(
                n,
                format!(
                    "information_schema.USER_STATISTICS: {user}: +{dc} SELECT/UPDATE commands, +{dr} rows read or written (unattributed)"
                ),
            );
        }
    }
}

/// Rises of questions and handler calls (a counter that went down counts as zero).
fn delta(a: Counts, b: Counts) -> (i64, i64) {
    ((b.questions as i64 - a.questions as i64).max(0), (b.handler as i64 - a.handler as i64).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::pfs::ThreadStat;

    fn row(digest_text: &str, schema: Option<&str>) -> HistoryRow {
        HistoryRow {
            event_name: "statement/sql/select".into(),
            digest_text: Some(digest_text.into()),
            schema: schema.map(String::from),
            top_level: true,
            ..Default::default()
        }
    }

    #[test]
    fn what_touches_tables() {
        let deps = [TableName::new("x1", "f")];
        assert_eq!(touched(&row("SELECT * FROM `x1` . `t`", None), &deps), Some(vec!["`x1`.`t`".into()]));
        assert_eq!(touched(&row("SELECT * FROM `t` WHERE `id` = ?", Some("x1")), &deps), Some(vec!["`x1`.`t`".into()]));
        assert_eq!(touched(&row("INSERT INTO `t` ( `a` ) VALUES (...)", Some("x1")), &deps), Some(vec!["`x1`.`t`".into()]));
        assert_eq!(touched(&row("SELECT ?", Some("x1")), &deps), None);
        assert_eq!(touched(&row("SELECT ? FROM DUAL", Some("x1")), &deps), None);
        assert_eq!(touched(&row("SELECT @@`version_comment` LIMIT ?", None), &deps), None);
        assert_eq!(touched(&row("SELECT * FROM `information_schema` . `TABLES`", None), &deps), None);
        assert_eq!(touched(&row("SELECT `x1` . `f` ( )", None), &deps), Some(vec!["`x1`.`f`".into()]));
        let mut set = row("SET @? = ?", None);
        set.event_name = "statement/sql/set_option".into();
        assert_eq!(touched(&set, &deps), None);
        let mut failed = row("SELECT * FROM `x1` . `t`", None);
        failed.errno = 1142;
        assert_eq!(touched(&failed, &deps), None);
    }

    fn snap(threads: &[(u64, u64, u64, u64)], account: (u64, u64)) -> StatusSnapshot {
        let mut s = StatusSnapshot::default();
        for &(tid, pid, q, o) in threads {
            let counts = Counts { questions: q, handler: o, denied: 0 };
            let command = "Sleep".to_string();
            s.threads
                .insert(tid, ThreadStat { processlist_id: pid, host: "h".into(), command, instrumented: true, history: false, counts });
        }
        s.accounts.insert("h".into(), Counts { questions: account.0, handler: account.1, denied: 0 });
        s
    }

    #[test]
    fn counters_count_post_cut_work_only_and_never_pass() {
        let mut t = Tracker::new(100);
        // A pre-cut connection (pid 50) and a post-cut one (pid 120).
        t.status(&snap(&[(1, 50, 10, 10), (2, 120, 1, 0)], (11, 10)), false, "svc", false);
        // Pings on the post-cut connection, reads on the pre-cut one: nothing counts.
        t.status(&snap(&[(1, 50, 15, 15), (2, 120, 4, 0)], (19, 15)), false, "svc", false);
        assert_eq!(t.unattributed(), 0);
        // The post-cut connection reads two tables in one statement, then a short-lived
        // connection runs two reads and closes.
        t.status(&snap(&[(1, 50, 15, 15), (2, 120, 5, 2)], (22, 19)), false, "svc", false);
        assert_eq!(t.unattributed(), 1 + 2);
        // The pre-cut connection closes: that interval's closed-connection work is dropped.
        t.status(&snap(&[(2, 120, 5, 2)], (25, 22)), false, "svc", false);
        assert_eq!(t.unattributed(), 3);
        assert_eq!(t.unattributed_cited().len(), 2);
        assert_eq!(t.statements(), 0, "counters never prove a table statement");
    }

    #[test]
    fn failed_logins_are_no_activity() {
        let mut t = Tracker::new(100);
        t.status(&snap(&[(2, 120, 1, 0)], (1, 0)), false, "svc", false);
        // A thread still in its handshake (`Connect`) shows counters: not counted, and when it
        // closes its share of the account totals is not counted either.
        let mut handshake = snap(&[(2, 120, 1, 0), (3, 130, 1, 2)], (2, 2));
        handshake.threads.get_mut(&3).unwrap().command = "Connect".into();
        t.status(&handshake, false, "svc", false);
        t.status(&snap(&[(2, 120, 1, 0)], (3, 4)), false, "svc", false);
        assert_eq!(t.unattributed(), 0);
        // A refused login seen in an interval drops that interval's closed-connection work.
        t.status(&snap(&[(2, 120, 1, 0)], (5, 6)), false, "svc", true);
        assert_eq!(t.unattributed(), 0);
    }

    #[test]
    fn user_statistics_wait_for_pre_cut_connections() {
        let mut t = Tracker::new(100);
        let r = |rows, commands| Some(UserRow { access_denied: 0, rows, commands, denied_connections: 0 });
        t.user_statistics(r(10, 10), true, "svc", false);
        t.user_statistics(r(20, 12), false, "svc", false);
        assert_eq!(t.unattributed(), 0, "a pre-cut connection was open at the start of the interval");
        t.user_statistics(r(20, 15), false, "svc", false);
        assert_eq!(t.unattributed(), 0, "pings read no rows");
        t.user_statistics(r(25, 16), false, "svc", true);
        assert_eq!(t.unattributed(), 0, "a refused login in the interval");
        t.user_statistics(r(30, 17), false, "svc", false);
        assert_eq!(t.unattributed(), 1);
        assert_eq!(t.statements(), 0);
    }
}
