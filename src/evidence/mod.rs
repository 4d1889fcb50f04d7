//! Evidence of non-use: which account to cut next from a service's tables.
//!
//! For each candidate account (one that can touch the service's tables, per [`crate::access`]),
//! [`gather`] reads what the server can tell about its use of those tables and returns a list of
//! [`Evidence`] items, each naming its source, the time span it covers and its blind spots.
//! A source claims [`Usage::NotSeen`] only when it would have seen a use within its span (a
//! complete count, a complete log); anything partial says [`Usage::Unknown`]. **No evidence
//! means Unknown, never unused.** [`rank`] orders candidates for the next cut.
//!
//! Cited rows name digests, tables, objects and connection ids, never statement text: a
//! statement's literals can hold personal data. Statement text is parsed in memory
//! ([`crate::access::sqlrefs`]) and dropped.
//!
//! # Sources
//!
//! Both flavours (performance_schema needs `performance_schema=ON` at start):
//!
//! | source | per | covers | says |
//! | --- | --- | --- | --- |
//! | `events_statements_summary_by_account_by_event_name`, `accounts` | user name | since start | no statement at all: NotSeen; else Unknown |
//! | `events_statements_history(_long)` joined with `threads`, sampled ([`gather_sampled`]) | live connection | retained events | a statement on a service table (or a view over one): Used; NotSeen only when every statement the user ran since start (or, sampled, during the window while active) is retained |
//! | `table_io_waits_summary_by_table` | table, anyone | since start | no row I/O on any service table: NotSeen for all |
//! | `events_statements_summary_by_digest` | digest, anyone | since start | digests naming the tables, last seen; always Unknown (routine bodies are not digested) |
//! | `information_schema.PROCESSLIST` | live connection | now | running a statement on a service table: Used; default schema, idle time |
//! | definer objects ([`crate::access`]) with `events_statements_summary_by_program` and digests | object | since start | the candidate is DEFINER of an object that reaches the tables and ran: Used |
//!
//! MariaDB adds:
//!
//! | source | per | covers | says |
//! | --- | --- | --- | --- |
//! | `information_schema.USER_STATISTICS` (`userstat=1`) | user name | since userstat was turned on or flushed | no connection: NotSeen; else Unknown |
//! | `information_schema.TABLE_STATISTICS` | table, anyone | same | rows read and changed; always Unknown (a read finding no row leaves no trace) |
//! | `server_audit` log file (TABLE events, QUERY events as fallback) | user name | first to last line read | a READ/WRITE of a service table: Used; none: NotSeen |
//!
//! # Blind spots (stated on every item they affect)
//!
//! - performance_schema and userstat count per **user name** and client host, not per account:
//!   `'app'@'%'` and `'app'@'10.%'` are one user. The audit log also logs user names.
//! - Counters restart with the server and with `TRUNCATE`/`FLUSH`; when userstat was turned on
//!   is not recorded anywhere.
//! - Statement history is attributable only while the connection lives (`threads` lists live
//!   threads); history holds 10 statements per thread, `history_long` a bounded ring. MySQL
//!   enables `history` but not `history_long`; MariaDB enables no statement consumer at all
//!   (`events_statements_current` gates the others). [`wanted_settings`] proposes enabling them.
//! - Statement text in performance_schema is cut at `performance_schema_max_sql_text_length`.
//! - `setup_actors`/`setup_objects`/`setup_instruments` can exclude users and tables.
//! - Row counters (TABLE_STATISTICS) miss reads that return no rows.
//! - MySQL has no last-login column and MySQL Community no audit log plugin; MariaDB's
//!   server_audit must be installed (`INSTALL SONAME 'server_audit'`) and its file readable here.
//!
//! # What the servers give (tests/evidence_live.rs)
//!
//! MySQL 9.7 with its defaults (`events_statements_history` on): an account reading a service
//! table on a live connection is Used; one that read other tables on a live connection whose
//! statements are all retained is NotSeen; one that never connected is NotSeen; one whose
//! connection ended is Unknown (sampling while it lives makes it Used). MariaDB 10.11 with its
//! defaults (no statement consumer): only counters, so readers are Unknown and accounts that
//! never connected NotSeen; with [`wanted_settings`] applied it matches MySQL, and with
//! server_audit logging TABLE events even ended connections are attributed. On both, the DEFINER
//! of a view over a service table that someone queried is Used.
//!
//! # Layout
//!
//! - `clock`: server time, start time, performance_schema timers to wall time.
//! - `targets`: the service's tables and the views reaching them; matching statement text.
//! - `perfschema`: the performance_schema sources.
//! - `userstat`: MariaDB's USER_STATISTICS and TABLE_STATISTICS.
//! - `audit`: MariaDB's server_audit log.
//! - `connections`: current connections.
//! - `indirect`: definer objects.
//! - `settings`: [`wanted_settings`].

mod audit;
mod clock;
mod connections;
mod indirect;
mod perfschema;
mod settings;
mod targets;
mod userstat;

use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::{AccountName, Inventory, TableName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use audit::{parse_line, AuditLine};
pub use settings::wanted_settings;

/// What the evidence says about the use of the service's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// Seen using the tables (directly, through a view, or as the definer of an object that ran).
    Used,
    /// A complete source for its span saw no use.
    NotSeen,
    /// Nothing conclusive.
    Unknown,
}

/// One item of evidence about one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Where it comes from (`performance_schema.table_io_waits_summary_by_table`).
    pub source: String,
    /// The time it covers, in server time (`since server start 2026-11-22 01:38:21 (up 2 h)`).
    pub span: String,
    /// What this source cannot see, for this candidate.
    pub blind_spots: Vec<String>,
    pub usage: Usage,
    /// Cited rows: digests, table and object names, counts, connection ids. Never statement text.
    pub rows: Vec<String>,
}

/// A candidate account with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub account: AccountName,
    /// Used if any item saw use; NotSeen if no item did and at least one complete source saw
    /// nothing; Unknown otherwise.
    pub usage: Usage,
    pub evidence: Vec<Evidence>,
    /// The latest activity of the account seen by any source, with the source
    /// (`2026-11-22 01:39:20 (statement history)`); `None` when no source has a timestamp.
    pub last_activity: Option<String>,
}

impl Candidate {
    /// Blind spots of the strongest NotSeen item (the one with the fewest); `usize::MAX` when
    /// no item says NotSeen. Used by [`rank`].
    pub fn not_seen_blind_spots(&self) -> usize {
        self.evidence.iter().filter(|e| e.usage == Usage::NotSeen).map(|e| e.blind_spots.len()).min().unwrap_or(usize::MAX)
    }
}

pub use crate::model::setting::Setting;

/// Reads every source about `candidates`' use of `tables`. `audit_log` is MariaDB's server_audit
/// file, when readable on this machine. A source that cannot be read becomes an Unknown item
/// saying why; only the server clock is required.
pub async fn gather(
    server: &mut Server,
    inv: &Inventory,
    tables: &[TableName],
    candidates: &[AccountName],
    audit_log: Option<&Path>,
) -> Result<Vec<Candidate>> {
    gather_sampled(server, inv, tables, candidates, audit_log, Duration::ZERO).await
}

/// [`gather`], reading the statement history every second for `window` first, so statements of
/// connections that end meanwhile are still attributed to their account.
pub async fn gather_sampled(
    server: &mut Server,
    inv: &Inventory,
    tables: &[TableName],
    candidates: &[AccountName],
    audit_log: Option<&Path>,
    window: Duration,
) -> Result<Vec<Candidate>> {
    gather_sampled_with(server, &crate::access::index::Index::new(inv), tables, candidates, audit_log, window).await
}

/// [`gather_sampled`] on an access index already built (`session start` builds one for the
/// candidates, the evidence and the plan).
pub async fn gather_sampled_with(
    server: &mut Server,
    ix: &crate::access::index::Index<'_>,
    tables: &[TableName],
    candidates: &[AccountName],
    audit_log: Option<&Path>,
    window: Duration,
) -> Result<Vec<Candidate>> {
    let inv = ix.inv;
    let clock = clock::Clock::read(server).await?;
    let targets = targets::Targets::new(inv, tables);
    let mut ctx = Ctx { clock, targets, users: Users::new(inv, candidates), flavour: server.info.flavour };
    let mut out = Collected::default();
    let ps = perfschema::gather(server, &ctx, window, &mut out).await;
    if !window.is_zero() {
        // "now" for the sources read after the samples.
        ctx.clock = clock::Clock::read(server).await?;
    }
    let sees_all = connections::sees_all(server, ix).await;
    connections::gather(server, &ctx, sees_all, &mut out).await;
    if ctx.flavour == Flavour::MariaDb {
        userstat::gather(server, &ctx, &mut out).await;
    }
    audit::gather(server, &ctx, audit_log, &mut out).await;
    indirect::gather(ix, tables, &ctx, &ps, &mut out);
    Ok(out.into_candidates(candidates))
}

/// Orders candidates for the next cut: NotSeen first (fewest blind spots on the strongest
/// NotSeen item first), then Unknown, then Used; ties by account name.
pub fn rank(cands: &mut [Candidate]) {
    cands.sort_by(|a, b| {
        let key = |c: &Candidate| {
            let class = match c.usage {
                Usage::NotSeen => 0,
                Usage::Unknown => 1,
                Usage::Used => 2,
            };
            (class, if c.usage == Usage::NotSeen { c.not_seen_blind_spots() } else { 0 })
        };
        key(a).cmp(&key(b)).then_with(|| a.account.cmp(&b.account))
    });
}

/// What every source needs.
pub(crate) struct Ctx {
    pub clock: clock::Clock,
    pub targets: targets::Targets,
    pub users: Users,
    pub flavour: Flavour,
}

/// Candidates by user name: the sources that count per user name speak for all of them.
pub(crate) struct Users {
    by_name: BTreeMap<String, Vec<AccountName>>,
    /// Other login accounts sharing a candidate's user name, for the blind spot.
    namesakes: BTreeMap<String, Vec<AccountName>>,
}

impl Users {
    fn new(inv: &Inventory, candidates: &[AccountName]) -> Users {
        let mut by_name: BTreeMap<String, Vec<AccountName>> = BTreeMap::new();
        for c in candidates {
            by_name.entry(c.user.clone()).or_default().push(c.clone());
        }
        // One pass over the login accounts (not one per candidate name: thousands of each).
        let mut namesakes: BTreeMap<String, Vec<AccountName>> = by_name.keys().map(|u| (u.clone(), Vec::new())).collect();
        for a in inv.login_accounts() {
            if let Some(list) = namesakes.get_mut(&a.name.user) {
                list.push(a.name.clone());
            }
        }
        Users { by_name, namesakes }
    }

    /// The distinct user names of the candidates.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }

    /// Every candidate.
    pub fn all(&self) -> impl Iterator<Item = &AccountName> {
        self.by_name.values().flatten()
    }

    /// The candidates with user name `user`.
    pub fn named(&self, user: &str) -> &[AccountName] {
        self.by_name.get(user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The blind spot of a per-user-name source for `user`, if other accounts share the name.
    pub fn shared_name(&self, user: &str) -> Option<String> {
        let all = self.namesakes.get(user)?;
        (all.len() > 1).then(|| {
            let names: Vec<String> = all.iter().map(|a| a.sql()).collect();
            format!("counted per user name: {} share it", names.join(", "))
        })
    }

    /// `user IN (...)` list for SQL.
    pub fn sql_list(&self) -> String {
        let quoted: Vec<String> = self.by_name.keys().map(|u| crate::model::ident::quote_str(u)).collect();
        if quoted.is_empty() {
            "NULL".into()
        } else {
            quoted.join(", ")
        }
    }
}

/// Evidence items and activity times per candidate, as the sources add them.
#[derive(Default)]
pub(crate) struct Collected {
    items: BTreeMap<AccountName, Vec<Evidence>>,
    last: BTreeMap<AccountName, (chrono::NaiveDateTime, String)>,
}

impl Collected {
    pub fn add(&mut self, who: &AccountName, e: Evidence) {
        self.items.entry(who.clone()).or_default().push(e);
    }

    /// The same item for every candidate of `users`.
    pub fn add_all(&mut self, users: &Users, e: &Evidence) {
        for who in users.all() {
            self.add(who, e.clone());
        }
    }

    /// Records activity of `who` at `at` seen by `source`, keeping the latest.
    pub fn saw(&mut self, who: &AccountName, at: chrono::NaiveDateTime, source: &str) {
        let slot = self.last.entry(who.clone()).or_insert_with(|| (at, source.to_string()));
        if at > slot.0 {
            *slot = (at, source.to_string());
        }
    }

    /// The candidates in the order given, their evidence moved out, not copied (thousands of
    /// candidates hold the same items); an account listed twice gets the same answer twice.
    fn into_candidates(mut self, candidates: &[AccountName]) -> Vec<Candidate> {
        let mut done: Vec<Candidate> = Vec::with_capacity(candidates.len());
        let mut first: std::collections::HashMap<&AccountName, usize> = std::collections::HashMap::new();
        for who in candidates {
            if let Some(&i) = first.get(who) {
                done.push(done[i].clone());
                continue;
            }
            first.insert(who, done.len());
            let evidence = self.items.remove(who).unwrap_or_default();
            let usage = overall(&evidence);
            let last_activity = self.last.remove(who).map(|(t, s)| format!("{} ({s})", clock::fmt(t)));
            done.push(Candidate { account: who.clone(), usage, evidence, last_activity });
        }
        done
    }
}

/// Used beats NotSeen beats Unknown; no item at all is Unknown.
fn overall(evidence: &[Evidence]) -> Usage {
    if evidence.iter().any(|e| e.usage == Usage::Used) {
        Usage::Used
    } else if evidence.iter().any(|e| e.usage == Usage::NotSeen) {
        Usage::NotSeen
    } else {
        Usage::Unknown
    }
}

/// `1 time`, `3 times`.
pub(crate) fn times(n: u64) -> String {
    if n == 1 {
        "1 time".into()
    } else {
        format!("{n} times")
    }
}

/// Keeps the first `max` rows and says how many were left out.
pub(crate) fn cap(rows: &mut Vec<String>, max: usize) {
    if rows.len() > max {
        let more = rows.len() - max;
        rows.truncate(max);
        rows.push(format!("... and {more} more"));
    }
}

impl Evidence {
    /// An item for a source that could not be read.
    pub(crate) fn unreadable(source: &str, why: String) -> Evidence {
        Evidence { source: source.into(), span: "none".into(), blind_spots: vec![why], usage: Usage::Unknown, rows: vec![] }
    }
}

#[cfg(test)]
mod tests;
