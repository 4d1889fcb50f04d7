//! Access analysis: for each named table, every account that can touch it, with which
//! privileges, and through which path (global, schema pattern, table, column, role chain,
//! PUBLIC, mandatory role, proxy, definer object, foreign-key cascade). Also escalation paths
//! (accounts that could give themselves access) and anonymous accounts that shadow named ones.
//!
//! Pure: works on an [`Inventory`]; the answers are checked against real servers in
//! `tests/access_*.rs` by logging in as each account and trying each privilege.

pub mod definer;
pub mod escalation;
pub mod index;
pub mod sqlrefs;
pub mod via;

use crate::error::{Error, Result};
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::{AccountName, Inventory, TableName, TablePattern};
use definer::{dml, Definers, Reach, Unresolved};
pub use escalation::{Escalation, Shadowing};
use index::Index;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
pub use via::Via;

/// Version of the access JSON format (docs/formats.md).
pub const ACCESS_FORMAT: u32 = 1;

/// One way one account touches one table.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub account: AccountName,
    pub table: TableName,
    pub privileges: Vec<Privilege>,
    pub via: Via,
    /// The account is locked (no new logins); its access still matters for definer objects,
    /// existing sessions and a later unlock.
    pub locked: bool,
}

/// The answer of `privfence access`.
#[derive(Debug, Clone, Serialize)]
pub struct AccessReport {
    pub format: u32,
    pub tables: Vec<TableName>,
    pub entries: Vec<Entry>,
    pub escalations: Vec<Escalation>,
    pub shadowing: Vec<Shadowing>,
}

/// Resolves user-written table patterns against the inventory's tables. A pattern that matches
/// nothing is an error, so a typo never yields an empty, reassuring answer.
pub fn resolve_tables(inv: &Inventory, patterns: &[String]) -> Result<Vec<TableName>> {
    let ci = inv.server.lower_case_table_names != 0;
    let mut out: Vec<TableName> = Vec::new();
    for p in patterns {
        let pat = TablePattern::parse(p).map_err(|e| Error::BadInput(format!("table pattern {p:?}: {e}")))?;
        let found: Vec<&TableName> = inv.objects.tables.iter().map(|t| &t.name).filter(|t| pat.matches(t, ci)).collect();
        if found.is_empty() {
            return Err(Error::UnknownTable(p.clone()));
        }
        for t in found {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
    }
    Ok(out)
}

/// Who can touch `tables`, and how.
pub fn analyse(inv: &Inventory, tables: &[TableName]) -> AccessReport {
    analyse_with(&Index::new(inv), tables)
}

/// [`analyse`] on an [`Index`] already built (a command that needs one more than once builds
/// it once: 100,000 table grants take a noticeable time to index).
pub fn analyse_with(ix: &Index, tables: &[TableName]) -> AccessReport {
    AccessReport {
        format: ACCESS_FORMAT,
        tables: tables.to_vec(),
        entries: entries_with(ix, tables),
        escalations: escalation::escalations(ix, tables),
        shadowing: escalation::shadowing(ix.inv),
    }
}

/// The entries of [`analyse_with`] alone (who can touch `tables`, and how), without the
/// escalation and shadowing checks: for callers that need only the paths (the plan, the
/// session's candidates).
pub fn entries_with(ix: &Index, tables: &[TableName]) -> Vec<Entry> {
    let definers = Definers::new(ix);
    let callers = callers(ix);
    let mut memo: BTreeMap<TableName, Vec<Entry>> = BTreeMap::new();
    let definer_entries = definer_entries(ix, &definers, &callers, tables);
    let mut entries = Vec::new();
    for t in tables {
        let mut stack = HashSet::new();
        entries.extend(entries_for(ix, &callers, t, &mut memo, &mut stack));
        entries.extend(definer_entries.iter().filter(|e| ix.same_table(&e.table, t)).cloned());
    }
    entries.sort_by(|a, b| (&a.table, &a.account).cmp(&(&b.table, &b.account)));
    entries
}

/// Everyone who may use an object: login accounts, plus the holders every account inherits
/// (PUBLIC, mandatory roles), each with a wrapper for its paths.
/// The entries of [`analyse`] that run through a definer object (`Via::Definer` and
/// `Via::UnresolvedDefiner`), without the rest of the analysis: evidence of indirect use needs
/// only these, and every other path costs a lookup per account and table.
pub fn definer_paths(inv: &Inventory, tables: &[TableName]) -> Vec<Entry> {
    definer_paths_with(&Index::new(inv), tables)
}

/// [`definer_paths`] on an [`Index`] already built.
pub fn definer_paths_with(ix: &Index, tables: &[TableName]) -> Vec<Entry> {
    let definers = Definers::new(ix);
    let callers = callers(ix);
    let definer_entries = definer_entries(ix, &definers, &callers, tables);
    let mut entries = Vec::new();
    for t in tables {
        entries.extend(definer_entries.iter().filter(|e| ix.same_table(&e.table, t)).cloned());
    }
    entries.sort_by(|a, b| (&a.table, &a.account).cmp(&(&b.table, &b.account)));
    entries
}

struct Caller {
    account: AccountName,
    locked: bool,
    /// `Some(true)` PUBLIC, `Some(false)` a mandatory role, `None` a real account.
    everyone: Option<bool>,
    /// [`Index::reaches_any`], asked once (the callers are walked once per table).
    reaches_any: bool,
}

impl Caller {
    fn new(ix: &Index, account: AccountName, locked: bool, everyone: Option<bool>) -> Caller {
        let reaches_any = ix.reaches_any(&account);
        Caller { account, locked, everyone, reaches_any }
    }
}

fn callers(ix: &Index) -> Vec<Caller> {
    let mut out: Vec<Caller> = ix.inv.login_accounts().map(|a| Caller::new(ix, a.name.clone(), a.locked, None)).collect();
    out.extend(ix.everyone().into_iter().map(|(account, public)| Caller::new(ix, account, false, Some(public))));
    out
}

fn wrap_everyone(ix: &Index, c: &Caller, via: Via) -> Via {
    match c.everyone {
        Some(true) => Via::Public { grant: Box::new(via) },
        Some(false) => Via::Mandatory { role: c.account.clone(), active_at_login: ix.mandatory_active(), grant: Box::new(via) },
        None => via,
    }
}

/// Could [`caller_paths`] find anything for `c` on the table of `reach`? PUBLIC and mandatory
/// roles are always asked; an account is ruled out when [`index::Reach::admits`] says it holds
/// nothing that could reach the table (an account with a proxy grant is always admitted).
fn may_call(reach: &index::Reach, c: &Caller) -> bool {
    c.everyone.is_some() || reach.admits_given(&c.account, c.reaches_any)
}

/// Paths of a caller on a table: its own and its roles', and those of accounts it may proxy as.
fn caller_paths(ix: &Index, c: &Caller, t: &TableName) -> Vec<(Via, PrivSet)> {
    let paths = if c.everyone.is_some() { ix.holder_paths(&c.account, t) } else { ix.own_paths(&c.account, t) };
    let mut out: Vec<(Via, PrivSet)> = paths.into_iter().map(|(v, s)| (wrap_everyone(ix, c, v), s)).collect();
    if c.everyone.is_none() {
        for p in ix.inv.proxies.iter().filter(|p| p.grantee == c.account && !p.proxied.user.is_empty() && p.proxied != c.account) {
            for (v, s) in ix.own_paths(&p.proxied, t) {
                out.push((Via::Proxy { proxied: p.proxied.clone(), grant: Box::new(v) }, s));
            }
        }
    }
    out.retain(|(_, s)| !s.is_empty());
    out
}

/// Direct and foreign-key entries for one table (definer entries are added by the caller).
fn entries_for(
    ix: &Index,
    callers: &[Caller],
    t: &TableName,
    memo: &mut BTreeMap<TableName, Vec<Entry>>,
    stack: &mut HashSet<TableName>,
) -> Vec<Entry> {
    if let Some(e) = memo.get(t) {
        return e.clone();
    }
    if !stack.insert(t.clone()) {
        return vec![];
    }
    let mut out = Vec::new();
    let reach = ix.reach(t);
    for c in callers.iter().filter(|c| may_call(&reach, c)) {
        for (via, set) in caller_paths(ix, c, t) {
            out.push(Entry { account: c.account.clone(), table: t.clone(), privileges: set.into_iter().collect(), via, locked: c.locked });
        }
    }
    for fk in ix.inv.objects.foreign_keys.iter().filter(|fk| ix.same_table(&fk.child, t)) {
        let mut map: Vec<(&str, &str, &str)> = Vec::new(); // (parent privilege, child privilege, rule)
        match fk.on_delete.as_str() {
            "CASCADE" => map.push(("DELETE", "DELETE", "ON DELETE CASCADE")),
            "SET NULL" => map.push(("DELETE", "UPDATE", "ON DELETE SET NULL")),
            "SET DEFAULT" => map.push(("DELETE", "UPDATE", "ON DELETE SET DEFAULT")),
            _ => {}
        }
        if matches!(fk.on_update.as_str(), "CASCADE" | "SET NULL" | "SET DEFAULT") {
            map.push(("UPDATE", "UPDATE", if fk.on_update == "CASCADE" { "ON UPDATE CASCADE" } else { "ON UPDATE SET NULL" }));
        }
        if map.is_empty() || ix.same_table(&fk.parent, t) {
            continue;
        }
        let parent_entries = entries_for(ix, callers, &fk.parent, memo, stack);
        for pe in parent_entries {
            for (pp, cp, rule) in &map {
                if pe.privileges.iter().any(|p| p.as_str() == *pp) {
                    out.push(Entry {
                        account: pe.account.clone(),
                        table: t.clone(),
                        privileges: vec![Privilege::known(cp)],
                        via: Via::ForeignKey {
                            constraint: fk.name.clone(),
                            parent: fk.parent.clone(),
                            rule: rule.to_string(),
                            parent_via: Box::new(pe.via.clone()),
                        },
                        locked: pe.locked,
                    });
                }
            }
        }
    }
    stack.remove(t);
    memo.insert(t.clone(), out.clone());
    out
}

/// Entries for every definer object (view, routine, trigger, event) that reaches one of
/// `tables`, for every caller that may use it.
fn definer_entries(ix: &Index, d: &Definers, callers: &[Caller], tables: &[TableName]) -> Vec<Entry> {
    let mut out = Vec::new();
    view_entries(ix, d, callers, tables, &mut out);
    routine_entries(ix, d, callers, tables, &mut out);
    trigger_entries(ix, d, callers, tables, &mut out);
    event_entries(ix, d, tables, &mut out);
    out
}

/// Definer views that reach `tables`, for each caller that may select through them.
fn view_entries(ix: &Index, d: &Definers, callers: &[Caller], tables: &[TableName], out: &mut Vec<Entry>) {
    let wanted = |t: &TableName| tables.iter().any(|w| ix.same_table(w, t));
    let objects = &ix.inv.objects;
    for v in objects.views.iter().filter(|v| v.security == crate::model::Security::Definer) {
        let anyone = AccountName::new("", "");
        let (reach, unresolved) = d.reach_view(v, &anyone, &dml(), &[], &mut HashSet::new());
        if !reach.iter().any(|r| wanted(&r.table)) && unresolved.is_empty() {
            continue;
        }
        let through = ix.reach(&v.name);
        for c in callers.iter().filter(|c| may_call(&through, c)) {
            for (via, set) in caller_paths(ix, c, &v.name) {
                let uses: PrivSet = set.intersection(&dml()).cloned().collect();
                let object = ("view", v.name.sql(), v.definer.clone());
                push_reach(out, ix, c, &object, &via, &uses, &reach, &unresolved, tables, true);
            }
        }
    }
}

/// Definer routines that reach `tables`, for each caller that may execute them.
fn routine_entries(ix: &Index, d: &Definers, callers: &[Caller], tables: &[TableName], out: &mut Vec<Entry>) {
    let wanted = |t: &TableName| tables.iter().any(|w| ix.same_table(w, t));
    let objects = &ix.inv.objects;
    for r in objects.routines.iter().filter(|r| r.security == crate::model::Security::Definer) {
        let Some(definer) = &r.definer else { continue };
        let (reach, unresolved) = d.reach_routine(r, definer, &[], &mut HashSet::new());
        if !reach.iter().any(|x| wanted(&x.table)) && unresolved.is_empty() {
            continue;
        }
        for c in callers {
            let mut paths = if c.everyone.is_some() {
                ix.direct_routine_as_role(&c.account, &r.schema, &r.name)
            } else {
                ix.direct_routine(&c.account, &r.schema, &r.name)
            };
            paths.extend(ix.via_roles(&c.account, |h| ix.direct_routine_as_role(h, &r.schema, &r.name)));
            for (via, set) in paths.into_iter().filter(|(_, s)| s.contains(&Privilege::known("EXECUTE"))) {
                let uses: PrivSet = [Privilege::known("EXECUTE")].into();
                let via = wrap_everyone(ix, c, via);
                let _ = set;
                let object = (
                    r.kind.sql().to_lowercase().leak() as &str,
                    format!("{}.{}", crate::model::ident::quote_ident(&r.schema), crate::model::ident::quote_ident(&r.name)),
                    r.definer.clone(),
                );
                push_reach(out, ix, c, &object, &via, &uses, &reach, &unresolved, tables, false);
            }
        }
    }
}

/// Triggers that reach `tables`, for each caller whose writes fire them.
fn trigger_entries(ix: &Index, d: &Definers, callers: &[Caller], tables: &[TableName], out: &mut Vec<Entry>) {
    let wanted = |t: &TableName| tables.iter().any(|w| ix.same_table(w, t));
    let objects = &ix.inv.objects;
    for trg in &objects.triggers {
        let Some(definer) = &trg.definer else { continue };
        // A trigger runs only while its definer holds TRIGGER on the table.
        if !ix.all_privileges(definer, &trg.table).contains(&Privilege::known("TRIGGER")) {
            continue;
        }
        let label = format!("trigger {}.{}", crate::model::ident::quote_ident(&trg.schema), crate::model::ident::quote_ident(&trg.name));
        let (reach, unresolved) = d.reach_body(&trg.body, &trg.schema, definer, label, &[], &mut HashSet::new());
        if !reach.iter().any(|x| wanted(&x.table)) && unresolved.is_empty() {
            continue;
        }
        let fires = Privilege::new(&trg.event, ix.inv.server.flavour);
        let on = ix.reach(&trg.table);
        for c in callers.iter().filter(|c| may_call(&on, c)) {
            for (via, set) in caller_paths(ix, c, &trg.table).into_iter().filter(|(_, s)| s.contains(&fires)) {
                let _ = set;
                let uses: PrivSet = [fires.clone()].into();
                let object =
                    ("trigger", format!("{} on {}", crate::model::ident::quote_ident(&trg.name), trg.table.sql()), trg.definer.clone());
                push_reach(out, ix, c, &object, &via, &uses, &reach, &unresolved, tables, false);
            }
        }
    }
}

/// Events that reach `tables`: the scheduler runs them as their definer.
fn event_entries(ix: &Index, d: &Definers, tables: &[TableName], out: &mut Vec<Entry>) {
    let objects = &ix.inv.objects;
    for ev in &objects.events {
        let Some(definer) = &ev.definer else { continue };
        // The scheduler runs an event only while its definer holds EVENT on the event's schema
        // (seen on both flavours: "Access denied ... to database" otherwise).
        if !ix.all_schema_privileges(definer, &ev.schema).contains(&Privilege::known("EVENT")) {
            continue;
        }
        let label = format!("event {}.{}", crate::model::ident::quote_ident(&ev.schema), crate::model::ident::quote_ident(&ev.name));
        let (reach, unresolved) = d.reach_body(&ev.body, &ev.schema, definer, label, &[], &mut HashSet::new());
        let locked = ix.inv.account(definer).is_some_and(|a| a.locked);
        let c = Caller::new(ix, definer.clone(), locked, None);
        let object = (
            "event",
            format!("{}.{}", crate::model::ident::quote_ident(&ev.schema), crate::model::ident::quote_ident(&ev.name)),
            ev.definer.clone(),
        );
        let uses: PrivSet = PrivSet::new();
        push_reach(out, ix, &c, &object, &Via::Scheduler, &uses, &reach, &unresolved, tables, false);
    }
}

/// Turns an object's reach into entries for one caller path.
#[allow(clippy::too_many_arguments)]
fn push_reach(
    out: &mut Vec<Entry>,
    ix: &Index,
    c: &Caller,
    object: &(&str, String, Option<AccountName>),
    entry_via: &Via,
    uses: &PrivSet,
    reach: &[Reach],
    unresolved: &[Unresolved],
    tables: &[TableName],
    view: bool,
) {
    let (kind, name, definer) = object;
    if uses.is_empty() && *kind != "event" {
        return;
    }
    for r in reach.iter().filter(|r| tables.iter().any(|t| ix.same_table(t, &r.table))) {
        // Through a view, the caller's own operations pass on; other bodies do what they do.
        let privileges: PrivSet = if view { r.privileges.intersection(uses).cloned().collect() } else { r.privileges.clone() };
        if privileges.is_empty() {
            continue;
        }
        out.push(Entry {
            account: c.account.clone(),
            table: r.table.clone(),
            privileges: privileges.into_iter().collect(),
            via: Via::Definer {
                object_kind: kind.to_string(),
                object: name.clone(),
                definer: definer.clone(),
                chain: r.chain.clone(),
                entry: Box::new(entry_via.clone()),
                entry_privileges: uses.clone(),
            },
            locked: c.locked,
        });
    }
    for u in unresolved {
        let Some(ctx) = &u.context else { continue };
        for t in tables {
            let can = ix.all_privileges(ctx, t);
            if can.is_empty() {
                continue;
            }
            out.push(Entry {
                account: c.account.clone(),
                table: t.clone(),
                privileges: can.into_iter().collect(),
                via: Via::UnresolvedDefiner {
                    object_kind: kind.to_string(),
                    object: name.clone(),
                    definer: definer.clone(),
                    reason: format!("{} (in {})", u.reason, u.chain.join(" -> ")),
                },
                locked: c.locked,
            });
        }
    }
}
