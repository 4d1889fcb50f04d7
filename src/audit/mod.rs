//! Audits: a server's grants checked against a policy, finding by finding, each with its
//! evidence. Pure functions over an [`Inventory`]; `fleet` does the I/O.
//!
//! Finding kinds (the JSON contract is in docs/formats.md):
//! - `unexpected_access`: an account that is neither owner nor exempt can touch a service table;
//! - `anonymous_access`: the same, by an anonymous account;
//! - `uncovered_table`: an account holds per-table grants on most of a service schema's other
//!   tables (the shape a schema-wide grant takes after it was narrowed) but not on some of
//!   them: tables created since the rewrite, which it cannot use, to nobody's knowledge;
//! - `expired_exemption`, `missing_owner`;
//! - `escalation`: an account that could give itself access;
//! - `replica_divergence`: grants that differ between a primary and a replica.

pub mod baseline;
pub mod fleet;

use crate::access::{self, Via};
use crate::inventory::showgrants::atoms;
use crate::model::sql::ByGrantee;
use crate::model::{AccountName, GrantObject, Inventory, Privilege, TableName};
use crate::policy::{Policy, Service};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the audit report format.
pub const AUDIT_FORMAT: u32 = 1;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    UnexpectedAccess,
    AnonymousAccess,
    UncoveredTable,
    ExpiredExemption,
    MissingOwner,
    Escalation,
    ReplicaDivergence,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::UnexpectedAccess => "unexpected_access",
            Kind::AnonymousAccess => "anonymous_access",
            Kind::UncoveredTable => "uncovered_table",
            Kind::ExpiredExemption => "expired_exemption",
            Kind::MissingOwner => "missing_owner",
            Kind::Escalation => "escalation",
            Kind::ReplicaDivergence => "replica_divergence",
        }
    }
}

/// One finding, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// The service whose policy it breaks (`*` for server-wide findings: replica divergence).
    pub service: String,
    pub account: Option<AccountName>,
    pub table: Option<TableName>,
    pub privileges: Vec<Privilege>,
    pub via: Option<Via>,
    /// The evidence in words.
    pub detail: String,
}

impl Finding {
    /// A stable identity for comparing reports over time.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.kind.name(),
            self.service,
            self.account.as_ref().map(|a| a.sql()).unwrap_or_default(),
            self.table.as_ref().map(|t| t.sql()).unwrap_or_default(),
            self.privileges.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(","),
            self.via.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()).unwrap_or_else(|| self.detail.clone())
        )
    }
}

/// The audit of one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerAudit {
    /// The name from the servers file, or the connection target.
    pub name: String,
    /// `user@host:port`, never a password.
    pub target: String,
    pub flavour: Option<crate::db::Flavour>,
    pub version: Option<String>,
    /// Why this server could not be audited (then `findings` is empty and the run exits 2).
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
    /// Replicas compared with this server.
    pub replicas: Vec<String>,
}

/// A whole audit run: one section per server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    pub format: u32,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub policy: Vec<std::path::PathBuf>,
    pub servers: Vec<ServerAudit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::BaselineDiff>,
    /// The exit code of the run: 0 no drift, 1 drift, 2 a server could not be audited.
    pub exit_code: u8,
}

impl AuditReport {
    /// 2 if any server was not audited, else 1 if anything was found, else 0.
    pub fn compute_exit_code(&self) -> u8 {
        if self.servers.iter().any(|s| s.error.is_some()) {
            2
        } else if self.servers.iter().any(|s| !s.findings.is_empty()) {
            1
        } else {
            0
        }
    }
}

/// Findings of one server against a policy; `today` decides which exemptions have expired.
pub fn findings(inv: &Inventory, policy: &Policy, today: NaiveDate) -> Vec<Finding> {
    let ci = inv.server.lower_case_table_names != 0;
    let all: Vec<&TableName> = inv.objects.tables.iter().map(|t| &t.name).collect();
    let mut out = Vec::new();
    for s in &policy.services {
        let tables = s.matching(all.iter().copied(), ci);
        out.extend(policy_findings(inv, s, today));
        if tables.is_empty() {
            continue;
        }
        let report = access::analyse(inv, &tables);
        let allowed = |a: &AccountName| s.is_owner(a) || s.exemption(a, today).is_some();
        for e in report.entries.iter().filter(|e| !allowed(&e.account)) {
            let kind = if e.account.is_anonymous() { Kind::AnonymousAccess } else { Kind::UnexpectedAccess };
            out.push(Finding {
                kind,
                service: s.name.clone(),
                account: Some(e.account.clone()),
                table: Some(e.table.clone()),
                privileges: e.privileges.clone(),
                detail: format!("{}{}", e.via.describe(), if e.locked { " (account locked)" } else { "" }),
                via: Some(e.via.clone()),
            });
        }
        let mut escalations: BTreeMap<&AccountName, Vec<&str>> = BTreeMap::new();
        for x in report.escalations.iter().filter(|x| !allowed(&x.account)) {
            escalations.entry(&x.account).or_default().push(&x.detail);
        }
        for (account, details) in escalations {
            out.push(Finding {
                kind: Kind::Escalation,
                service: s.name.clone(),
                account: Some(account.clone()),
                table: None,
                privileges: vec![],
                via: None,
                detail: details.join("; "),
            });
        }
        out.extend(uncovered_tables(inv, s, &tables));
    }
    out
}

/// Expired exemptions and owners that do not exist.
fn policy_findings(inv: &Inventory, s: &Service, today: NaiveDate) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in s.exempt.iter().filter(|e| e.expired(today)) {
        out.push(Finding {
            kind: Kind::ExpiredExemption,
            service: s.name.clone(),
            account: Some(e.account.clone()),
            table: None,
            privileges: vec![],
            via: None,
            detail: format!(
                "exemption ({}) expired on {} ({})",
                e.reason,
                e.expires.map(|d| d.to_string()).unwrap_or_default(),
                e.location
            ),
        });
    }
    for (o, any) in s.owners.iter().zip(&s.owner_any_host) {
        let exists = inv.accounts.iter().any(|a| if *any { a.name.user == o.user } else { &a.name == o });
        if !exists {
            out.push(Finding {
                kind: Kind::MissingOwner,
                service: s.name.clone(),
                account: Some(o.clone()),
                table: None,
                privileges: vec![],
                via: None,
                detail: "the policy names this owner, but no such account exists on the server".into(),
            });
        }
    }
    out
}

/// Accounts with per-table grants on at least two other tables of a service's schema, none on
/// the schema itself, and none on some of its remaining tables.
fn uncovered_tables(inv: &Inventory, s: &Service, service_tables: &[TableName]) -> Vec<Finding> {
    let schemas: BTreeSet<&str> = service_tables.iter().map(|t| t.schema.as_str()).collect();
    let mut out = Vec::new();
    let service: BTreeSet<&TableName> = service_tables.iter().collect();
    // Accounts with a table or column grant on a service table (one pass over the grants).
    let on_service: BTreeSet<&AccountName> = inv
        .grants
        .iter()
        .filter(|g| matches!(&g.object, GrantObject::Table { table } | GrantObject::Column { table, .. } if service.contains(table)))
        .map(|g| &g.grantee)
        .collect();
    for schema in schemas {
        let others: BTreeSet<&TableName> =
            inv.objects.tables.iter().map(|t| &t.name).filter(|t| t.schema == schema && !service.contains(t)).collect();
        let mut per_account: BTreeMap<&AccountName, BTreeSet<&TableName>> = BTreeMap::new();
        let mut schema_wide: BTreeSet<&AccountName> = BTreeSet::new();
        for g in &inv.grants {
            match &g.object {
                GrantObject::Table { table } if table.schema == schema && others.contains(&table) => {
                    per_account.entry(&g.grantee).or_default().insert(table);
                }
                GrantObject::Schema { pattern } if pattern.matches(schema, false, inv.server.partial_revokes) => {
                    schema_wide.insert(&g.grantee);
                }
                _ => {}
            }
        }
        for (account, covered) in per_account {
            // The shape of a narrowed schema grant: most other tables covered table by table,
            // no schema grant, and no grant left on the service's own tables there.
            if covered.len() < 2
                || covered.len() * 2 < others.len()
                || on_service.contains(account)
                || schema_wide.contains(account)
                || s.is_owner(account)
            {
                continue;
            }
            for t in others.iter().filter(|t| !covered.contains(*t)) {
                out.push(Finding {
                    kind: Kind::UncoveredTable,
                    service: s.name.clone(),
                    account: Some(account.clone()),
                    table: Some((*t).clone()),
                    privileges: vec![],
                    via: None,
                    detail: format!(
                        "{account} has per-table grants on {} other table(s) of `{schema}` but none on this one (created after a schema grant was narrowed?); new tables in `{schema}` are not covered either",
                        covered.len()
                    ),
                });
            }
        }
    }
    out
}

/// Grants that differ between a primary and a replica, account by account, as normalised
/// atoms (a REVOKE run on one server only, an account created on one side).
pub fn divergence(primary: &Inventory, replica: &Inventory, replica_name: &str) -> Vec<Finding> {
    let names: BTreeSet<&AccountName> = primary.accounts.iter().chain(&replica.accounts).map(|a| &a.name).collect();
    let (bp, br) = (ByGrantee::new(primary), ByGrantee::new(replica));
    let atoms_of = |inv: &Inventory, a: &AccountName| -> Option<BTreeSet<String>> {
        inv.account(a)?;
        let by = if std::ptr::eq(inv, primary) { &bp } else { &br };
        let mut set = BTreeSet::new();
        for line in by.sql(a) {
            set.extend(atoms(&line, inv.server.flavour, &inv.levels, a).unwrap_or_default());
        }
        Some(set)
    };
    let mut out = Vec::new();
    for a in names {
        let (p, r) = (atoms_of(primary, a), atoms_of(replica, a));
        let diffs: Vec<String> = match (&p, &r) {
            (Some(_), None) => vec![format!("the account exists on the primary but not on replica {replica_name}")],
            (None, Some(_)) => vec![format!("the account exists on replica {replica_name} but not on the primary")],
            (Some(p), Some(r)) => p
                .difference(r)
                .map(|x| format!("primary has `{x}`, replica {replica_name} does not"))
                .chain(r.difference(p).map(|x| format!("replica {replica_name} has `{x}`, the primary does not")))
                .collect(),
            (None, None) => vec![],
        };
        for detail in diffs {
            out.push(Finding {
                kind: Kind::ReplicaDivergence,
                service: "*".into(),
                account: Some(a.clone()),
                table: None,
                privileges: vec![],
                via: None,
                detail,
            });
        }
    }
    out
}
