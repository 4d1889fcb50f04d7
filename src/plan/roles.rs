//! Roles in a plan: an account that reaches the service's tables through a role either gets
//! the role edited (when it is the role's only member that depends on it) or loses the role and
//! gets the role's other privileges directly. Both are computed; one is proposed.

use super::build::number;
use super::rewrite::{Ops, Privs};
use super::simulate::Effect;
use super::{Alternative, Change, Plan, Step, StepKind};
use crate::access::{index::Index, Entry, Via};
use crate::db::Flavour;
use crate::model::sql::grantee_sql;
use crate::model::{AccountName, GrantObject, PrivSet, TableName};
use std::collections::BTreeSet;

/// A grantee's grants after the plan: (grantee, object, privileges).
pub(super) type After = Vec<(AccountName, GrantObject, PrivSet)>;

/// Members of a role (accounts that hold it directly or through other roles).
pub(super) fn members(ix: &Index, role: &AccountName) -> Vec<AccountName> {
    ix.inv.login_accounts().filter(|a| ix.role_chains(&a.name).iter().any(|c| c.contains(&role))).map(|a| a.name.clone()).collect()
}

/// Does editing `role` change `member`'s access to a service table? Only if something it
/// gets there through the role is not also reachable another way (MariaDB makes a role's
/// creator a member; an administrator with global privileges loses nothing).
fn depends_on(all: &[Entry], member: &AccountName, role: &AccountName) -> bool {
    let through = |e: &Entry| matches!(&e.via, Via::Role { chain, .. } if chain.contains(role));
    all.iter().filter(|e| &e.account == member && through(e)).any(|e| {
        e.privileges.iter().any(|p| {
            !all.iter().any(|o| {
                &o.account == member
                    && o.table == e.table
                    && !through(o)
                    && o.privileges.contains(p)
                    && !matches!(o.via, Via::Definer { .. } | Via::ForeignKey { .. } | Via::UnresolvedDefiner { .. })
            })
        })
    })
}

/// Roles that reach the service's tables: either edit the role, or take it away from the
/// account and give it the role's other privileges directly.
#[allow(clippy::too_many_arguments)]
pub(super) fn roles(
    ix: &Index,
    a: &AccountName,
    entries: &[&Entry],
    all: &[Entry],
    tables: &[TableName],
    grants: &mut Vec<Step>,
    revokes: &mut Vec<Step>,
    plan: &mut Plan,
    after: &mut After,
) {
    let mut top: BTreeSet<AccountName> = BTreeSet::new();
    let mut holders: BTreeSet<AccountName> = BTreeSet::new();
    for e in entries {
        if let Via::Role { chain, .. } = &e.via {
            top.insert(chain[0].clone());
            holders.insert(chain.last().expect("non-empty").clone());
        }
    }
    for d in top {
        let (edit, edit_after) = edit_role(ix, a, &d, &holders, all, tables);
        // Option 2: revoke d from the account; give it d's other privileges directly.
        let (take_steps, take_changes) = take_role(ix, a, &d, tables);
        let take = Alternative {
            name: format!("take role {} from {}", d.sql(), a.sql()),
            proposed: !edit.proposed,
            description: format!(
                "Revoke {} from {} and grant it the role's other privileges directly; the role and its other members are untouched",
                d.sql(),
                a.sql()
            ),
            steps: number(take_steps.0.iter().chain(&take_steps.1).cloned().collect()),
            changes: take_changes,
        };
        if edit.proposed {
            after.extend(edit_after);
        } else {
            // The account no longer holds the role: record it as holding nothing through it.
            after.push((d.clone(), GrantObject::Global, PrivSet::new()));
        }
        let (chosen, other) = if edit.proposed { (edit, take) } else { (take, edit) };
        plan.warnings.push(format!(
            "{} reaches the service's tables through role {}: proposed: {}; alternative: {}",
            a.sql(),
            d.sql(),
            chosen.name,
            other.name
        ));
        let (g, r): (Vec<Step>, Vec<Step>) = chosen.steps.iter().cloned().partition(|s| s.kind == StepKind::Grant);
        grants.extend(g);
        revokes.extend(r);
        plan.changes.extend(chosen.changes.clone());
        plan.alternatives.push(chosen);
        plan.alternatives.push(other);
    }
}

/// Option 1: edit every role of `d`'s closure that holds service-table privileges; proposed
/// when `a` is the only member that depends on them. Also returns the roles' grants after it.
fn edit_role(
    ix: &Index,
    a: &AccountName,
    d: &AccountName,
    holders: &BTreeSet<AccountName>,
    all: &[Entry],
    tables: &[TableName],
) -> (Alternative, After) {
    let partial = ix.inv.server.flavour == Flavour::MySql && ix.inv.server.partial_revokes;
    let mut edit_steps = (Vec::new(), Vec::new());
    let mut edit_changes = Vec::new();
    let mut affected: BTreeSet<AccountName> = BTreeSet::new();
    let mut edit_after = Vec::new();
    for h in holders.iter().filter(|h| *h == d || ix.role_chains(d).iter().any(|c| c.last() == Some(h))) {
        let mut ops = Ops::new(ix, h.clone());
        ops.table_grants(tables);
        ops.schema_rows(tables);
        ops.global(tables, partial);
        let (g, r) = ops.steps();
        edit_steps.0.extend(g);
        edit_steps.1.extend(r);
        edit_after.extend(ops.after().into_iter().map(|(o, p)| (h.clone(), o, p)));
        edit_changes.extend(ops.changes);
        affected.extend(members(ix, h).into_iter().filter(|m| depends_on(all, m, h)));
    }
    let others: Vec<AccountName> = affected.iter().filter(|m| *m != a).cloned().collect();
    let edit = Alternative {
        name: format!("edit role {}", d.sql()),
        proposed: others.is_empty(),
        description: if others.is_empty() {
            format!("Rewrite the role's grants; {} is its only member", a.sql())
        } else {
            format!(
                "Rewrite the role's grants; this also cuts its other members: {}",
                others.iter().map(|m| m.sql()).collect::<Vec<_>>().join(", ")
            )
        },
        steps: number(edit_steps.0.iter().chain(&edit_steps.1).cloned().collect()),
        changes: edit_changes,
    };
    (edit, edit_after)
}

/// Steps that revoke role `d` from `a` and grant `a` directly what `d` (and the roles under it)
/// gave on everything but the service's tables. Sub-roles that do not reach the tables are
/// granted directly; default-role status is restored by the inverse.
fn take_role(ix: &Index, a: &AccountName, d: &AccountName, tables: &[TableName]) -> ((Vec<Step>, Vec<Step>), Vec<Change>) {
    let flavour = ix.inv.server.flavour;
    let (ops, direct_roles) = role_closure(ix, a, d, tables);
    let (mut grants, mut revokes) = ops.steps();
    let who = grantee_sql(a, flavour);
    for r in direct_roles {
        let role = grantee_sql(&r, flavour);
        grants.push(Step {
            id: String::new(),
            account: a.clone(),
            kind: StepKind::Grant,
            forward: format!("GRANT {role} TO {who}"),
            inverse: format!("REVOKE {role} FROM {who}"),
            why: format!("keeps role {} that {} gave", r.sql(), d.sql()),
            effect: Some(Effect::GrantRole { grantee: a.clone(), role: r.clone() }),
        });
    }
    let admin = ix.inv.role_grants.iter().any(|x| &x.grantee == a && &x.role == d && x.admin);
    let role = grantee_sql(d, flavour);
    revokes.extend(not_default(ix, a, d));
    let inverse = format!("GRANT {role} TO {who}{}", if admin { " WITH ADMIN OPTION" } else { "" });
    revokes.push(Step {
        id: String::new(),
        account: a.clone(),
        kind: StepKind::Revoke,
        forward: format!("REVOKE {role} FROM {who}"),
        inverse,
        why: format!("role {} reaches the service's tables", d.sql()),
        effect: Some(Effect::RevokeRole { grantee: a.clone(), role: d.clone() }),
    });
    let mut changes = ops.changes.clone();
    changes.push(Change {
        account: a.clone(),
        detail: format!("no longer holds role {}: later changes to the role do not reach it", d.sql()),
    });
    if !ix.active_at_login(a, d) {
        changes.push(Change {
            account: a.clone(),
            detail: format!("what role {} gave only after SET ROLE is granted directly: active at every login", d.sql()),
        });
    }
    ((grants, revokes), changes)
}

/// The grants of `d` and of the roles under it that reach the service's tables, copied to `a`
/// (minus those tables), and the sub-roles that do not reach them (granted to `a` as roles).
fn role_closure<'a>(ix: &'a Index<'a>, a: &AccountName, d: &AccountName, tables: &[TableName]) -> (Ops<'a>, Vec<AccountName>) {
    let mut ops = Ops::new(ix, a.clone());
    let mut direct_roles: Vec<AccountName> = Vec::new();
    let reaches = |r: &AccountName| {
        tables.iter().any(|t| !ix.direct_as_role(r, t).is_empty() || ix.via_roles(r, |x| ix.direct_as_role(x, t)).iter().any(|_| true))
    };
    let mut queue = vec![d.clone()];
    let mut seen = BTreeSet::new();
    while let Some(r) = queue.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        for g in ix.inv.grants.iter().filter(|g| g.grantee == r) {
            copy_grant(ix, &mut ops, g, tables);
        }
        for child in ix.inv.role_grants.iter().filter(|x| x.grantee == r) {
            if reaches(&child.role) {
                queue.push(child.role.clone());
            } else if !direct_roles.contains(&child.role) {
                direct_roles.push(child.role.clone());
            }
        }
    }
    (ops, direct_roles)
}

/// When `d` is one of `a`'s default roles: its own step, before the role is revoked, so that
/// the inverse re-grants the role first and makes it a default role again after.
fn not_default(ix: &Index, a: &AccountName, d: &AccountName) -> Option<Step> {
    let flavour = ix.inv.server.flavour;
    let defaults: Vec<&AccountName> = ix.inv.default_roles.iter().filter(|x| &x.account == a).map(|x| &x.role).collect();
    if !defaults.contains(&d) {
        return None;
    }
    let (who, role) = (grantee_sql(a, flavour), grantee_sql(d, flavour));
    let list = |rs: &[&AccountName]| {
        if rs.is_empty() {
            "NONE".to_string()
        } else {
            rs.iter().map(|r| grantee_sql(r, flavour)).collect::<Vec<_>>().join(", ")
        }
    };
    let rest: Vec<&AccountName> = defaults.iter().copied().filter(|r| *r != d).collect();
    let (forward, inverse) = match flavour {
        Flavour::MariaDb => (format!("SET DEFAULT ROLE NONE FOR {who}"), format!("SET DEFAULT ROLE {role} FOR {who}")),
        Flavour::MySql => {
            (format!("ALTER USER {who} DEFAULT ROLE {}", list(&rest)), format!("ALTER USER {who} DEFAULT ROLE {}", list(&defaults)))
        }
    };
    Some(Step {
        id: String::new(),
        account: a.clone(),
        kind: StepKind::Revoke,
        forward,
        inverse,
        why: format!("{} is a default role", d.sql()),
        effect: Some(Effect::NotDefault { grantee: a.clone(), role: d.clone() }),
    })
}

/// Copies one of a role's grants to the account, minus the service's tables: exact rows for
/// every schema a schema-level or global table privilege covered, per-table grants in the
/// service schemas.
fn copy_grant(ix: &Index, ops: &mut Ops, g: &crate::model::Grant, tables: &[TableName]) {
    let inv = ix.inv;
    let ci = inv.server.lower_case_table_names != 0;
    let privs = Privs { set: g.privileges.clone(), option: g.grant_option };
    match &g.object {
        GrantObject::Table { table } | GrantObject::Column { table, .. } if tables.iter().any(|t| ix.same_table(t, table)) => {}
        GrantObject::Table { .. } | GrantObject::Column { .. } | GrantObject::Routine { .. } => {
            ops.desire(g.object.clone(), privs, format!("given by role {}", g.grantee.sql()))
        }
        GrantObject::Global | GrantObject::Schema { .. } => {
            let service_schemas: BTreeSet<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
            let table_privs: PrivSet =
                g.privileges.iter().filter(|p| crate::model::privilege::TABLE_PRIVILEGES.contains(&p.as_str())).cloned().collect();
            let rest = Privs { set: g.privileges.iter().filter(|p| !table_privs.contains(*p)).cloned().collect(), option: g.grant_option };
            if g.object == GrantObject::Global {
                ops.desire(GrantObject::Global, rest, format!("given by role {}", g.grantee.sql()));
            }
            let matches = |x: &str| match &g.object {
                GrantObject::Schema { pattern } => pattern.matches(x, ci, inv.server.partial_revokes),
                _ => true,
            };
            for x in inv.objects.schemas.iter().filter(|x| matches(x) && *x != "information_schema") {
                if service_schemas.contains(x.as_str()) {
                    for t in inv.objects.tables.iter().filter(|t| &t.name.schema == x && !tables.contains(&t.name)) {
                        let set = table_privs.iter().filter(|p| inv.levels.table.contains(*p)).cloned().collect();
                        ops.desire(
                            GrantObject::Table { table: t.name.clone() },
                            Privs { set, option: g.grant_option },
                            format!("given by role {} on `{x}`", g.grantee.sql()),
                        );
                    }
                } else {
                    let mut want = Privs {
                        set: if g.object == GrantObject::Global { table_privs.clone() } else { g.privileges.clone() },
                        option: g.grant_option,
                    };
                    // The new exact row shadows the account's own wildcard rows: carry them.
                    want.union(&Privs::of(&ix.schema_rows(&ops.grantee, x)));
                    ops.desire(
                        GrantObject::Schema { pattern: crate::model::SchemaPattern::exact(x) },
                        want,
                        format!("given by role {}", g.grantee.sql()),
                    );
                }
            }
        }
    }
}
