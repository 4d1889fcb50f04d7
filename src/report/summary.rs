//! `--summary`: one row per account instead of one per path. For `access`: the tables it
//! reaches, the union of its privileges, the kinds of path (global, schema, role > schema, ...)
//! and its escalation capabilities. For `audit`: per server, the findings of each account by
//! kind, with the same columns. JSON documents: `access_summary` and `audit_summary`
//! (docs/formats.md, docs/schemas/).

use super::filter::AccountFilter;
use super::tsv::Tsv;
use crate::access::{AccessReport, Via};
use crate::audit::AuditReport;
use crate::model::{AccountName, Privilege, TableName};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the summary documents.
pub const SUMMARY_FORMAT: u32 = 1;

/// The kind of a path in words: `global`, `schema`, `schema wildcard`, `table`, `column`,
/// `role > schema`, `PUBLIC > table`, `mandatory role > global`, `proxy > ...`,
/// `definer view`, `unresolved definer procedure`, `event scheduler`, `foreign key`.
pub fn path_kind(v: &Via) -> String {
    match v {
        Via::Global => "global".into(),
        Via::Schema { wildcard: true, .. } => "schema wildcard".into(),
        Via::Schema { .. } => "schema".into(),
        Via::Table => "table".into(),
        Via::Column { .. } => "column".into(),
        Via::Role { grant, .. } => format!("role > {}", path_kind(grant)),
        Via::Public { grant } => format!("PUBLIC > {}", path_kind(grant)),
        Via::Mandatory { grant, .. } => format!("mandatory role > {}", path_kind(grant)),
        Via::Proxy { grant, .. } => format!("proxy > {}", path_kind(grant)),
        Via::Definer { object_kind, .. } => format!("definer {}", object_kind.to_lowercase()),
        Via::UnresolvedDefiner { object_kind, .. } => format!("unresolved definer {}", object_kind.to_lowercase()),
        Via::Scheduler => "event scheduler".into(),
        Via::ForeignKey { .. } => "foreign key".into(),
    }
}

/// One account in an access summary.
#[derive(Debug, Clone, Serialize)]
pub struct AccountRow {
    pub account: AccountName,
    pub locked: bool,
    /// How many of the asked tables it reaches.
    pub tables: usize,
    pub privileges: BTreeSet<Privilege>,
    /// Kinds of path, see [`path_kind`].
    pub paths: BTreeSet<String>,
    /// Escalation capabilities (`create_user`, `super`, ...).
    pub escalations: BTreeSet<String>,
}

impl AccountRow {
    fn new(account: &AccountName) -> AccountRow {
        AccountRow {
            account: account.clone(),
            locked: false,
            tables: 0,
            privileges: BTreeSet::new(),
            paths: BTreeSet::new(),
            escalations: BTreeSet::new(),
        }
    }
}

/// The `access_summary` document.
#[derive(Debug, Clone, Serialize)]
pub struct AccessSummary {
    pub format: u32,
    pub kind: &'static str,
    pub tables: Vec<TableName>,
    pub accounts: Vec<AccountRow>,
}

/// One row per account that reaches a table or holds an escalation capability.
pub fn access(r: &AccessReport) -> AccessSummary {
    let mut by: BTreeMap<&AccountName, (AccountRow, BTreeSet<&TableName>)> = BTreeMap::new();
    for e in &r.entries {
        let (row, tables) = by.entry(&e.account).or_insert_with(|| (AccountRow::new(&e.account), BTreeSet::new()));
        row.locked |= e.locked;
        row.privileges.extend(e.privileges.iter().cloned());
        row.paths.insert(path_kind(&e.via));
        tables.insert(&e.table);
    }
    for x in &r.escalations {
        let (row, _) = by.entry(&x.account).or_insert_with(|| (AccountRow::new(&x.account), BTreeSet::new()));
        row.escalations.insert(x.capability.clone());
    }
    let accounts = by.into_values().map(|(mut row, t)| {
        row.tables = t.len();
        row
    });
    AccessSummary { format: SUMMARY_FORMAT, kind: "access_summary", tables: r.tables.clone(), accounts: accounts.collect() }
}

fn join<T: std::fmt::Display>(xs: impl IntoIterator<Item = T>) -> String {
    xs.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// The access summary as a table.
pub fn access_table(s: &AccessSummary) -> String {
    let mut t = super::new_table(&["account", "tables", "privileges", "paths", "escalation"]);
    for r in &s.accounts {
        let locked = if r.locked { " (locked)" } else { "" };
        t.add_row(vec![
            format!("{}{locked}", r.account.sql()),
            format!("{}/{}", r.tables, s.tables.len()),
            join(&r.privileges),
            join(&r.paths),
            join(&r.escalations),
        ]);
    }
    format!("{t}\n{} account(s) over {} table(s)\n", s.accounts.len(), s.tables.len())
}

/// The access summary as TSV.
pub fn access_tsv(s: &AccessSummary) -> String {
    let mut t = Tsv::new(&["user", "host", "locked", "tables", "privileges", "paths", "escalations"]);
    for r in &s.accounts {
        t.row(vec![
            r.account.user.clone(),
            r.account.host.clone(),
            r.locked.to_string(),
            r.tables.to_string(),
            join(&r.privileges),
            join(&r.paths),
            join(&r.escalations),
        ]);
    }
    t.finish()
}

/// One account's findings on one server.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FindingRow {
    /// `None` for findings about no account (replica divergence, a missing owner).
    pub account: Option<AccountName>,
    pub findings: usize,
    /// Finding kinds and how many of each.
    pub kinds: BTreeMap<String, usize>,
    pub services: BTreeSet<String>,
    pub tables: usize,
    pub privileges: BTreeSet<Privilege>,
    pub paths: BTreeSet<String>,
}

/// One server of an audit summary.
#[derive(Debug, Clone, Serialize)]
pub struct ServerRows {
    pub name: String,
    pub target: String,
    pub error: Option<String>,
    pub accounts: Vec<FindingRow>,
}

/// The `audit_summary` document.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    pub format: u32,
    pub kind: &'static str,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// The exit code of the whole audit (the filter does not change it).
    pub exit_code: u8,
    pub servers: Vec<ServerRows>,
}

/// One row per account per server, for the findings `filter` shows.
pub fn audit(r: &AuditReport, filter: &AccountFilter) -> AuditSummary {
    let servers = r
        .servers
        .iter()
        .map(|srv| {
            let mut by: BTreeMap<Option<&AccountName>, (FindingRow, BTreeSet<&TableName>)> = BTreeMap::new();
            for f in super::audit::shown(&srv.findings, filter) {
                let (row, tables) = by
                    .entry(f.account.as_ref())
                    .or_insert_with(|| (FindingRow { account: f.account.clone(), ..Default::default() }, BTreeSet::new()));
                row.findings += 1;
                *row.kinds.entry(f.kind.name().to_string()).or_default() += 1;
                row.services.insert(f.service.clone());
                row.privileges.extend(f.privileges.iter().cloned());
                if let Some(v) = &f.via {
                    row.paths.insert(path_kind(v));
                }
                tables.extend(f.table.as_ref());
            }
            let accounts = by.into_values().map(|(mut row, t)| {
                row.tables = t.len();
                row
            });
            ServerRows { name: srv.name.clone(), target: srv.target.clone(), error: srv.error.clone(), accounts: accounts.collect() }
        })
        .collect();
    AuditSummary { format: SUMMARY_FORMAT, kind: "audit_summary", generated_at: r.generated_at, exit_code: r.exit_code, servers }
}

fn kinds(k: &BTreeMap<String, usize>) -> String {
    join(k.iter().map(|(k, n)| format!("{n} {k}")))
}

/// The audit summary as a table, one per server.
pub fn audit_table(s: &AuditSummary) -> String {
    let mut out = String::new();
    for srv in &s.servers {
        out.push_str(&format!("== {} ({})\n", srv.name, srv.target));
        if let Some(e) = &srv.error {
            out.push_str(&format!("NOT AUDITED: {e}\n\n"));
            continue;
        }
        let mut t = super::new_table(&["account", "findings", "services", "tables", "privileges", "paths"]);
        for r in &srv.accounts {
            let account = r.account.as_ref().map(|a| a.sql()).unwrap_or_else(|| "(no account)".into());
            t.add_row(vec![account, kinds(&r.kinds), join(&r.services), r.tables.to_string(), join(&r.privileges), join(&r.paths)]);
        }
        out.push_str(&format!("{t}\n\n"));
    }
    out
}

/// The audit summary as TSV (a `server` column first).
pub fn audit_tsv(s: &AuditSummary) -> String {
    let mut t = Tsv::new(&["server", "user", "host", "findings", "kinds", "services", "tables", "privileges", "paths", "error"]);
    for srv in &s.servers {
        if let Some(e) = &srv.error {
            t.row(vec![
                srv.name.clone(),
                String::new(),
                String::new(),
                "0".into(),
                String::new(),
                String::new(),
                "0".into(),
                String::new(),
                String::new(),
                e.clone(),
            ]);
        }
        for r in &srv.accounts {
            let (u, h) = r.account.as_ref().map(|a| (a.user.clone(), a.host.clone())).unwrap_or_default();
            t.row(vec![
                srv.name.clone(),
                u,
                h,
                r.findings.to_string(),
                kinds(&r.kinds),
                join(&r.services),
                r.tables.to_string(),
                join(&r.privileges),
                join(&r.paths),
                String::new(),
            ]);
        }
    }
    t.finish()
}
