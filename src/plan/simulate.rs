//! The plan's self-check: apply the steps' effects to a copy of the model and compare every
//! affected account's effective privileges before and after. Anything but the service's tables
//! that would change (a privilege lost on another table or schema, or gained) makes the plan
//! refuse, listing the differences: the servers' matching rules (first-match order, MySQL's
//! role-session map) can make a rewrite shadow rows in ways a local rule does not see.

use crate::access::index::Index;
use crate::access::Via;
use crate::model::privilege::{table_relevant, PrivSet};
use crate::model::{AccountName, DefaultRole, Grant, GrantObject, Inventory, RoleGrant, TableName};
use std::collections::BTreeSet;

/// What one forward statement does to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Grant { grantee: AccountName, object: GrantObject, privileges: PrivSet, option: bool },
    Revoke { grantee: AccountName, object: GrantObject, privileges: PrivSet, option: bool },
    GrantRole { grantee: AccountName, role: AccountName },
    RevokeRole { grantee: AccountName, role: AccountName },
    NotDefault { grantee: AccountName, role: AccountName },
}

/// The model after `effects`, for the self-check: its `objects` and `warnings` are left empty
/// (no effect changes them, the access [`Index`] never reads them, and [`differences`] takes
/// the objects from the model before), so 100,000 tables are not copied for nothing.
pub fn apply(inv: &Inventory, effects: &[&Effect]) -> Inventory {
    let mut out = Inventory {
        format: inv.format,
        server: inv.server.clone(),
        taken_at: inv.taken_at,
        accounts: inv.accounts.clone(),
        grants: inv.grants.clone(),
        partial_revokes: inv.partial_revokes.clone(),
        role_grants: inv.role_grants.clone(),
        default_roles: inv.default_roles.clone(),
        mandatory_roles: inv.mandatory_roles.clone(),
        activate_all_roles_on_login: inv.activate_all_roles_on_login,
        activate_mandatory_roles: inv.activate_mandatory_roles,
        proxies: inv.proxies.clone(),
        levels: inv.levels.clone(),
        objects: Default::default(),
        warnings: Vec::new(),
    };
    for e in effects {
        match e {
            Effect::Grant { grantee, object, privileges, option } => {
                let row = out.grants.iter_mut().find(|g| {
                    &g.grantee == grantee
                        && &g.object == object
                        && !(g.object == GrantObject::Global && g.privileges.iter().any(|p| p.is_dynamic()))
                });
                match row {
                    Some(g) => {
                        g.privileges.extend(privileges.iter().cloned());
                        g.grant_option |= option;
                    }
                    None => out.grants.push(Grant {
                        grantee: grantee.clone(),
                        object: object.clone(),
                        privileges: privileges.clone(),
                        grant_option: *option,
                    }),
                }
            }
            Effect::Revoke { grantee, object, privileges, option } => revoke(&mut out, grantee, object, privileges, *option),
            Effect::GrantRole { grantee, role } => {
                out.role_grants.push(RoleGrant { role: role.clone(), grantee: grantee.clone(), admin: false })
            }
            Effect::RevokeRole { grantee, role } => {
                out.role_grants.retain(|r| !(&r.grantee == grantee && &r.role == role));
                out.default_roles.retain(|d| !(&d.account == grantee && &d.role == role));
            }
            Effect::NotDefault { grantee, role } => out.default_roles.retain(|d: &DefaultRole| !(&d.account == grantee && &d.role == role)),
        }
    }
    out
}

/// A REVOKE's effect on the simulated model.
fn revoke(out: &mut Inventory, grantee: &AccountName, object: &GrantObject, privileges: &PrivSet, option: bool) {
    // MySQL partial revokes: a schema-level REVOKE of privileges held globally and not
    // by a schema row becomes a restriction.
    if let (true, GrantObject::Schema { pattern }) = (out.server.partial_revokes, object) {
        let in_row: PrivSet =
            out.grants.iter().filter(|g| &g.grantee == grantee && &g.object == object).flat_map(|g| g.privileges.iter().cloned()).collect();
        let global: PrivSet = out
            .grants
            .iter()
            .filter(|g| &g.grantee == grantee && g.object == GrantObject::Global)
            .flat_map(|g| g.privileges.iter().cloned())
            .collect();
        let restricted: PrivSet = privileges.iter().filter(|p| !in_row.contains(*p) && global.contains(*p)).cloned().collect();
        if !restricted.is_empty() {
            out.partial_revokes.push(crate::model::PartialRevoke {
                account: grantee.clone(),
                schema: crate::model::ident::unescape(&pattern.0),
                privileges: restricted,
            });
        }
    }
    for g in out.grants.iter_mut().filter(|g| &g.grantee == grantee) {
        let same = &g.object == object;
        // A table-level REVOKE also drops that privilege's column grants (both flavours).
        let columns = matches!((&g.object, object), (GrantObject::Column { table: a, .. }, GrantObject::Table { table: b }) if a == b);
        if same || columns {
            g.privileges.retain(|p| !privileges.contains(p));
            if same && option {
                g.grant_option = false;
            }
        }
    }
    out.grants.retain(|g| !g.privileges.is_empty() || g.grant_option);
}

/// Privileges an account has at login on a table (paths usable without SET ROLE).
fn at_login(ix: &Index, a: &AccountName, t: &TableName) -> PrivSet {
    let usable = |v: &Via| !matches!(v, Via::Role { active_at_login: false, .. });
    let mut set: PrivSet = ix.own_paths(a, t).into_iter().filter(|(v, _)| usable(v)).flat_map(|(_, s)| s).collect();
    for holder in ix.everyone_at_login() {
        set.extend(ix.holder_paths(&holder, t).into_iter().filter(|(v, _)| usable(v)).flat_map(|(_, s)| s));
    }
    set
}

/// Schema-level privileges at login (global and the applying schema rows, own and of active roles).
fn schema_at_login(ix: &Index, a: &AccountName, schema: &str) -> PrivSet {
    let mut set = ix.global_all(a);
    for g in ix.effective_schema_rows(a, schema, &|_| false) {
        set.extend(Index::with_option(g));
    }
    if !ix.uses_role_map(a) {
        for c in ix.active_chains(a) {
            let r = c.last().expect("non-empty");
            set.extend(ix.global_all(r));
            for g in ix.schema_rows(r, schema) {
                set.extend(Index::with_option(g));
            }
        }
    }
    set
}

/// Differences between the model before and after the plan, for `accounts`: service tables
/// must end with nothing for the planned accounts (and never gain for others); every other
/// table and every schema must stay exactly as it was, except the definer views `left_out` on
/// purpose (gains are allowed when `gains_declared`).
pub fn differences(
    b: &Index,
    after: &Inventory,
    planned: &[AccountName],
    others: &[AccountName],
    service: &[TableName],
    left_out: &BTreeSet<TableName>,
    gains_declared: bool,
) -> Vec<String> {
    let (before, a) = (b.inv, Index::new(after));
    let mut out = Vec::new();
    let schemas: BTreeSet<&str> = service.iter().map(|t| t.schema.as_str()).collect();
    for acct in planned.iter().chain(others) {
        let is_planned = planned.contains(acct);
        for t in before.objects.tables.iter().map(|t| &t.name) {
            let (x, y) = (at_login(b, acct, t), at_login(&a, acct, t));
            if service.contains(t) {
                // Only the account's own and role paths: PUBLIC and mandatory roles are
                // reported, not planned, unless asked for.
                let own = |ix: &Index| -> PrivSet {
                    ix.own_paths(acct, t)
                        .into_iter()
                        .filter(|(v, _)| !matches!(v, Via::Role { active_at_login: false, .. }))
                        .flat_map(|(_, s)| s)
                        .collect()
                };
                let (x, y) = (own(b), own(&a));
                // GRANT OPTION alone passes nothing on: a grantor can only grant what it holds.
                let mut left: PrivSet = table_relevant(&y);
                if left.iter().all(|p| p.is_grant_option()) {
                    left.clear();
                }
                let grew = y.iter().any(|p| !x.contains(p));
                if (is_planned && !left.is_empty()) || grew {
                    out.push(format!("{} would keep {} on {}", acct.sql(), join(&left), t.sql()));
                }
            } else if x != y {
                let mut lost: PrivSet = x.difference(&y).cloned().collect();
                if left_out.contains(t) {
                    lost.clear(); // declared: a definer view that reaches the service's tables
                }
                let gained: PrivSet = y.difference(&x).cloned().collect();
                if !lost.is_empty() || (!gained.is_empty() && !gains_declared) {
                    out.push(format!("{} on {}: would lose [{}], gain [{}]", acct.sql(), t.sql(), join(&lost), join(&gained)));
                }
            }
        }
        for s in &before.objects.schemas {
            let (x, y) = (schema_at_login(b, acct, s), schema_at_login(&a, acct, s));
            let keep = |set: &PrivSet| -> PrivSet {
                if schemas.contains(s.as_str()) {
                    set.iter().filter(|p| !crate::model::privilege::TABLE_PRIVILEGES.contains(&p.as_str())).cloned().collect()
                } else {
                    set.clone()
                }
            };
            let (x, y) = (keep(&x), keep(&y));
            let lost: PrivSet = x.difference(&y).cloned().collect();
            let gained: PrivSet = y.difference(&x).cloned().collect();
            if !lost.is_empty() || (!gained.is_empty() && !gains_declared) {
                out.push(format!("{} on schema `{s}`: would lose [{}], gain [{}]", acct.sql(), join(&lost), join(&gained)));
            }
        }
    }
    out
}

fn join(s: &PrivSet) -> String {
    s.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}
