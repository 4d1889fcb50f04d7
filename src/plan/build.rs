//! Building a plan: resolve the service and the account(s), analyse their access, and rewrite
//! every path the account's own grants (or its roles) give it to the service's tables.

use super::rewrite::Ops;
use super::roles::{members, roles, After};
use super::simulate::Effect;
use super::{fingerprint, Change, Plan, Step, StepKind, PLAN_FORMAT};
use crate::access::{self, index::Index, Entry, Via};
use crate::db::Flavour;
use crate::model::{AccountName, GrantObject, Inventory, TableName};
use crate::policy::Policy;
use std::collections::BTreeSet;

/// Choices the operator makes when building a plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The account is the DEFINER of objects that touch the service's tables; cutting it breaks
    /// every account that uses them. Without this, such a plan is refused.
    pub acknowledge_definer: bool,
    /// Include the server-wide change to MariaDB's PUBLIC or MySQL's mandatory roles (their
    /// blast radius is every account).
    pub include_everyone: bool,
    /// Plan an account the policy exempts (an exemption says the account may keep its access;
    /// cutting it is a deliberate override).
    pub even_if_exempt: bool,
    /// The day exemptions are judged on (`None`: today, local time).
    pub today: Option<chrono::NaiveDate>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The policy has no such service.
    #[error("no service {0:?} in the policy (services: {1})")]
    UnknownService(String, String),
    /// The service's patterns match no table on this server.
    #[error("service {0:?} matches no table on this server")]
    NoTables(String),
    /// No such account.
    #[error("no account {0} on this server; `privfence inventory` lists the accounts")]
    UnknownAccount(String),
    /// The account name is malformed.
    #[error("{0}")]
    BadAccount(String),
    /// Other host rows of the same user also reach the service's tables.
    #[error("other host rows of {user:?} also reach the service's tables: {rows}; plan them too by naming the bare user ({user}), or one at a time")]
    OtherHostRows { user: String, rows: String },
    /// Simulating the plan shows it would change more than the service's tables.
    #[error("no safe plan: applied to a copy of the grants, the rewrite would change more than the service's tables:\n  {}\nThe servers' row-matching rules (first match; MySQL's role-session map) make these grants interact; change them by hand, or plan another account first", details.join("\n  "))]
    WouldChange { details: Vec<String> },
    /// The account is the DEFINER of objects that touch the service's tables.
    #[error("{account} is the DEFINER of {objects}, which touch the service's tables: cutting it breaks every account that uses them. Re-run with --acknowledge-definer to plan it anyway")]
    DefinerObjects { account: String, objects: String },
    /// The account is one of the service's owners: cutting it off its own tables is never meant.
    #[error(
        "{account} is an owner of service {service:?}: privfence never cuts a service's own account off its tables; nothing was changed"
    )]
    Owner { account: String, service: String },
    /// The policy exempts the account.
    #[error("{account} is exempt in service {service:?} ({reason}); nothing was changed. Re-run with --even-if-exempt to cut it anyway")]
    Exempt { account: String, service: String, reason: String },
}

/// Resolves `'u'@'h'` or a bare user name (all its host rows) to existing accounts.
fn accounts(inv: &Inventory, spec: &str) -> Result<(Vec<AccountName>, bool), PlanError> {
    let bare = !spec.contains('@');
    let parsed = AccountName::parse(spec).map_err(|e| PlanError::BadAccount(format!("account {spec:?}: {e}")))?;
    let found: Vec<AccountName> = if bare {
        inv.login_accounts().filter(|a| a.name.user == parsed.user).map(|a| a.name.clone()).collect()
    } else {
        inv.login_accounts().filter(|a| a.name == parsed).map(|a| a.name.clone()).collect()
    };
    if found.is_empty() {
        return Err(PlanError::UnknownAccount(if bare { format!("named {:?}", parsed.user) } else { parsed.sql() }));
    }
    Ok((found, bare))
}

/// Builds the plan that cuts `account` off `service`'s tables.
pub fn build(inv: &Inventory, policy: &Policy, service: &str, account: &str, opts: &PlanOptions) -> Result<Plan, PlanError> {
    build_with(&Index::new(inv), policy, service, account, opts)
}

/// [`build`] on an [`Index`] of the inventory already built: the access analysis, the rewrite
/// and the self-check share it (and the caller may pass it on to
/// [`super::grantor_problems_with`]).
pub fn build_with(ix: &Index, policy: &Policy, service: &str, account: &str, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let inv = ix.inv;
    let svc = policy.service(service).ok_or_else(|| {
        PlanError::UnknownService(service.into(), policy.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "))
    })?;
    let ci = inv.server.lower_case_table_names != 0;
    let tables = svc.matching(inv.objects.tables.iter().map(|t| &t.name), ci);
    if tables.is_empty() {
        return Err(PlanError::NoTables(service.into()));
    }
    let (accts, bare) = accounts(inv, account)?;
    // Only the paths: the escalation checks play no part in a plan.
    let all_entries = access::entries_with(ix, &tables);
    may_cut(svc, service, &accts, bare, &all_entries, opts)?;
    let mut plan = Plan {
        format: PLAN_FORMAT,
        service: service.into(),
        accounts: accts.clone(),
        tables: tables.clone(),
        fingerprint: String::new(),
        steps: vec![],
        changes: vec![],
        warnings: vec![],
        alternatives: vec![],
    };
    let mut grants: Vec<Step> = Vec::new();
    let mut revokes: Vec<Step> = Vec::new();
    let mut roles_involved: BTreeSet<AccountName> = BTreeSet::new();
    // Every grantee's grants after the plan, for the default-database check.
    let mut after: After = Vec::new();
    let partial = inv.server.flavour == Flavour::MySql && inv.server.partial_revokes;
    // Definer views that reach the service's tables are not re-granted by a rewrite.
    let leave_out = definer_views(inv, &all_entries);
    for a in &accts {
        let entries: Vec<&Entry> = all_entries.iter().filter(|e| &e.account == a).collect();
        let mut ops = Ops::new(ix, a.clone());
        ops.leave_out = leave_out.clone();
        ops.table_grants(&tables);
        ops.schema_rows(&tables);
        ops.global(&tables, partial);
        objects_used(ix, &mut ops, &entries, &mut plan.warnings);
        after.extend(ops.after().into_iter().map(|(o, p)| (a.clone(), o, p)));
        let (g, r) = ops.steps();
        grants.extend(g);
        revokes.extend(r);
        plan.changes.extend(ops.changes);
        plan.warnings.extend(ops.warnings);
        for e in &entries {
            if let Via::Role { chain, .. } = &e.via {
                roles_involved.extend(chain.iter().cloned());
            }
        }
        roles(ix, a, &entries, &all_entries, &tables, &mut grants, &mut revokes, &mut plan, &mut after);
    }
    default_database(ix, &accts, &all_entries, &tables, &after, &mut plan);
    everyone(ix, &all_entries, &tables, opts, &mut grants, &mut revokes, &mut plan);
    plan.steps = number(grants.into_iter().chain(revokes).collect());
    plan.fingerprint = fingerprint::of(inv, &accts, &roles_involved, &tables);
    self_check(ix, &plan, &accts, &tables, &leave_out)?;
    Ok(plan)
}

/// Refuses to plan a cut of an owner, of an exempt account (unless asked), of one host row
/// of a user whose other rows reach the tables too, or of a definer (unless asked).
fn may_cut(
    svc: &crate::policy::Service,
    service: &str,
    accts: &[AccountName],
    bare: bool,
    entries: &[Entry],
    opts: &PlanOptions,
) -> Result<(), PlanError> {
    let today = opts.today.unwrap_or_else(|| chrono::Local::now().date_naive());
    for a in accts {
        if svc.is_owner(a) {
            return Err(PlanError::Owner { account: a.sql(), service: service.into() });
        }
        if let (Some(e), false) = (svc.exemption(a, today), opts.even_if_exempt) {
            return Err(PlanError::Exempt { account: a.sql(), service: service.into(), reason: e.reason.clone() });
        }
    }
    if !bare {
        let user = &accts[0].user;
        let others: BTreeSet<String> =
            entries.iter().filter(|e| &e.account.user == user && !accts.contains(&e.account)).map(|e| e.account.sql()).collect();
        if !others.is_empty() {
            return Err(PlanError::OtherHostRows { user: user.clone(), rows: others.into_iter().collect::<Vec<_>>().join(", ") });
        }
    }
    check_definer(entries, accts, opts)
}

/// The views whose definer's access reaches the service's tables.
fn definer_views(inv: &Inventory, entries: &[Entry]) -> BTreeSet<TableName> {
    entries
        .iter()
        .filter_map(|e| match &e.via {
            Via::Definer { object_kind, object, .. } if object_kind == "view" => {
                inv.objects.tables.iter().map(|t| &t.name).find(|t| &t.sql() == object).cloned()
            }
            _ => None,
        })
        .collect()
}

/// Applies the plan to a copy of the model and refuses it if anything but the service's
/// tables would change for the planned accounts or the members of an edited role.
fn self_check(
    ix: &Index,
    plan: &Plan,
    accts: &[AccountName],
    tables: &[TableName],
    left_out: &BTreeSet<TableName>,
) -> Result<(), PlanError> {
    let effects: Vec<&Effect> = plan.steps.iter().filter_map(|s| s.effect.as_ref()).collect();
    let after = super::simulate::apply(ix.inv, &effects);
    let edited: BTreeSet<AccountName> =
        plan.steps.iter().map(|s| s.account.clone()).filter(|g| !accts.contains(g) && g.user != "PUBLIC").collect();
    let mut others: Vec<AccountName> = Vec::new();
    for r in &edited {
        for m in members(ix, r) {
            if !accts.contains(&m) && !others.contains(&m) {
                others.push(m);
            }
        }
    }
    let gains = plan.changes.iter().any(|c| c.detail.contains("active at every login"));
    let details = super::simulate::differences(ix, &after, accts, &others, tables, left_out, gains);
    after.drop_aside();
    if details.is_empty() {
        Ok(())
    } else {
        Err(PlanError::WouldChange { details: details.into_iter().take(20).collect() })
    }
}

pub(super) fn number(mut steps: Vec<Step>) -> Vec<Step> {
    for (i, s) in steps.iter_mut().enumerate() {
        s.id = format!("{:02}-{}", i + 1, if s.kind == StepKind::Grant { "grant" } else { "revoke" });
    }
    steps
}

fn check_definer(entries: &[Entry], accts: &[AccountName], opts: &PlanOptions) -> Result<(), PlanError> {
    let mut objects: BTreeSet<String> = BTreeSet::new();
    for e in entries {
        match &e.via {
            Via::Definer { object_kind, object, definer: Some(d), .. }
            | Via::UnresolvedDefiner { object_kind, object, definer: Some(d), .. }
                if accts.contains(d) =>
            {
                objects.insert(format!("{object_kind} {object}"));
            }
            _ => {}
        }
    }
    if objects.is_empty() || opts.acknowledge_definer {
        return Ok(());
    }
    Err(PlanError::DefinerObjects {
        account: accts.iter().map(|a| a.sql()).collect::<Vec<_>>().join(", "),
        objects: objects.into_iter().collect::<Vec<_>>().join(", "),
    })
}

/// Paths through other objects: a definer view or routine the account may use is taken away
/// (its grant on the object is revoked); the rest are warnings.
fn objects_used(ix: &Index, ops: &mut Ops, entries: &[&Entry], warnings: &mut Vec<String>) {
    for e in entries {
        match &e.via {
            Via::Definer { object_kind, object, entry, .. } if matches!(**entry, Via::Table | Via::Column { .. }) => {
                let target = ix.inv.grants.iter().find(|g| {
                    g.grantee == e.account
                        && match (&g.object, object_kind.as_str()) {
                            (GrantObject::Table { table } | GrantObject::Column { table, .. }, "view") => &table.sql() == object,
                            // Routine names are case-insensitive (procs_priv keeps the GRANT's case).
                            (GrantObject::Routine { schema, name, .. }, "procedure" | "function") => {
                                format!("{}.{}", crate::model::ident::quote_ident(schema), crate::model::ident::quote_ident(name))
                                    .to_lowercase()
                                    == object.to_lowercase()
                            }
                            _ => false,
                        }
                });
                match target {
                    Some(g) => {
                        ops.revoke_row(
                            g,
                            format!("its grant on {object_kind} {object}, a definer object that reaches the service's tables"),
                        );
                        ops.change(format!("loses access to {object_kind} {object} entirely (it also reaches the service's tables)"));
                    }
                    None => warnings.push(format!(
                        "{} reaches {} through {object_kind} {object}; {}",
                        e.account.sql(),
                        e.table.sql(),
                        e.via.describe()
                    )),
                }
            }
            Via::Definer { object_kind, entry, .. } if object_kind == "view" && matches!(**entry, Via::Schema { .. } | Via::Global) => {}
            Via::Definer { .. } | Via::UnresolvedDefiner { .. } | Via::ForeignKey { .. } | Via::Proxy { .. } => {
                warnings.push(format!(
                    "{} also reaches {} by a path this plan does not cut: {}",
                    e.account.sql(),
                    e.table.sql(),
                    e.via.describe()
                ));
            }
            _ => {}
        }
    }
}

/// Declares the accounts that will no longer be able to `USE` a service schema: nothing left
/// there (own grants or those of a role active at login; PUBLIC's do not count on MariaDB).
fn default_database(
    ix: &Index,
    accts: &[AccountName],
    entries: &[Entry],
    tables: &[TableName],
    after: &[(AccountName, GrantObject, crate::model::PrivSet)],
    plan: &mut Plan,
) {
    let ci = ix.inv.server.lower_case_table_names != 0;
    for a in accts.iter().filter(|a| entries.iter().any(|e| &e.account == *a)) {
        let mut holders = vec![a.clone()];
        holders
            .extend(ix.role_chains(a).into_iter().filter(|c| ix.active_at_login(a, c[0])).map(|c| (*c.last().expect("non-empty")).clone()));
        for schema in tables.iter().map(|t| t.schema.as_str()).collect::<BTreeSet<_>>() {
            let in_schema = |o: &GrantObject| match o {
                GrantObject::Table { table } | GrantObject::Column { table, .. } => ix.fold(&table.schema) == ix.fold(schema),
                GrantObject::Routine { schema: s, .. } => ix.fold(s) == ix.fold(schema),
                GrantObject::Schema { pattern } => pattern.matches(schema, ci, ix.inv.server.partial_revokes),
                GrantObject::Global => true,
            };
            let current = |h: &AccountName| -> Vec<(GrantObject, crate::model::PrivSet)> {
                let planned: Vec<(GrantObject, crate::model::PrivSet)> =
                    after.iter().filter(|(g, _, _)| g == h).map(|(_, o, p)| (o.clone(), p.clone())).collect();
                if planned.is_empty() {
                    ix.inv.grants.iter().filter(|g| &g.grantee == h).map(|g| (g.object.clone(), g.privileges.clone())).collect()
                } else {
                    planned
                }
            };
            let keeps = holders.iter().any(|h| {
                current(h).iter().any(|(o, set)| {
                    in_schema(o) && set.iter().any(|p| if *o == GrantObject::Global { ix.inv.levels.schema.contains(p) } else { true })
                })
            });
            if !keeps {
                plan.changes.push(Change {
                    account: a.clone(),
                    detail: format!("can no longer connect with `{schema}` as its default database (USE fails with error 1044): it keeps no privilege there"),
                });
            }
        }
    }
}

/// PUBLIC (MariaDB) and mandatory roles (MySQL): every account's access. Reported always;
/// planned only with `include_everyone`.
fn everyone(
    ix: &Index,
    entries: &[Entry],
    tables: &[TableName],
    opts: &PlanOptions,
    grants: &mut Vec<Step>,
    revokes: &mut Vec<Step>,
    plan: &mut Plan,
) {
    let holders: BTreeSet<AccountName> =
        entries.iter().filter(|e| matches!(e.via, Via::Public { .. } | Via::Mandatory { .. })).map(|e| e.account.clone()).collect();
    let partial = ix.inv.server.flavour == Flavour::MySql && ix.inv.server.partial_revokes;
    for h in holders {
        let kind = if h.user == "PUBLIC" && h.host.is_empty() { "PUBLIC" } else { "mandatory role" };
        if !opts.include_everyone {
            plan.warnings.push(format!(
                "{kind} {} gives every account access to the service's tables; this plan does not change it (blast radius: all {} accounts). Re-run with --include-everyone to plan it",
                h.sql(),
                ix.inv.login_accounts().count()
            ));
            continue;
        }
        let mut ops = Ops::new(ix, h.clone());
        ops.table_grants(tables);
        ops.schema_rows(tables);
        ops.global(tables, partial);
        let (g, r) = ops.steps();
        grants.extend(g);
        revokes.extend(r);
        plan.changes.extend(ops.changes);
        plan.changes.push(Change { account: h.clone(), detail: format!("{kind}: the change applies to every account on the server") });
    }
}
