//! Indirect use through `SQL SECURITY DEFINER` objects (views, routines, triggers, events),
//! from the paths [`crate::access::analyse`] finds, with how often each object ran since start
//! (performance_schema: `events_statements_summary_by_program` for stored programs, digests
//! naming the view for views).
//!
//! A candidate that is the DEFINER of an object reaching the service's tables lends its
//! privileges to everyone who uses the object: if the object ran, cutting the candidate breaks
//! it (mysql-facts §4, collateral damage), so the candidate counts as Used. A candidate that may
//! only *call* such an object is Used when its own statements show it (statement history, audit
//! log); here, an object that never ran rules the path out.

use super::perfschema::Facts;
use super::{Collected, Ctx, Evidence, Usage};
use crate::access::index::Index;
use crate::access::{self, Via};
use crate::model::ident::quote_ident;
use crate::model::{AccountName, Inventory, TableName};
use std::collections::{BTreeMap, BTreeSet};

const SOURCE: &str = "definer objects (access paths; events_statements_summary_by_program, statement digests)";

/// One definer object on a candidate's path.
#[derive(Default)]
struct Path {
    /// The candidate is its DEFINER (otherwise it may use it).
    defines: bool,
    definer: Option<AccountName>,
    tables: BTreeSet<TableName>,
    /// Set when the body could not be resolved.
    unresolved: bool,
}

pub(crate) fn gather(ix: &Index, tables: &[TableName], ctx: &Ctx, facts: &Facts, out: &mut Collected) {
    let inv = ix.inv;
    // Only the paths through definer objects matter here (the same entries `analyse` reports
    // with those vias, without its per-account, per-table lookups of every other path).
    let entries = access::definer_paths_with(ix, tables);
    let runs = Runs::new(inv, facts);
    for who in ctx.users.all() {
        // (kind, object) -> path
        let mut paths: BTreeMap<(String, String), Path> = BTreeMap::new();
        for e in &entries {
            let (kind, object, definer, unresolved) = match &e.via {
                Via::Definer { object_kind, object, definer, .. } => (object_kind, object, definer, false),
                Via::UnresolvedDefiner { object_kind, object, definer, .. } => (object_kind, object, definer, true),
                _ => continue,
            };
            let defines = definer.as_ref() == Some(who);
            if !defines && &e.account != who {
                continue;
            }
            let p = paths.entry((kind.clone(), object.clone())).or_default();
            p.defines |= defines;
            p.definer = definer.clone();
            p.unresolved |= unresolved;
            p.tables.insert(e.table.clone());
        }
        if !paths.is_empty() {
            out.add(who, evidence(ctx, &paths, &runs));
        }
    }
}

fn evidence(ctx: &Ctx, paths: &BTreeMap<(String, String), Path>, runs: &Runs) -> Evidence {
    let mut rows = Vec::new();
    let (mut used, mut all_idle) = (false, true);
    for ((kind, object), p) in paths {
        let n = runs.get(kind, object);
        let reached: Vec<String> = p.tables.iter().map(|t| t.to_string()).collect();
        let role = if p.defines {
            "DEFINER of".to_string()
        } else {
            format!("may use (DEFINER={})", p.definer.as_ref().map(|d| d.sql()).unwrap_or_else(|| "?".into()))
        };
        let ran = match n {
            Some(0) => "never ran since server start".to_string(),
            Some(n) => format!("ran {} since server start (any account)", super::times(n)),
            None => "runs not counted".to_string(),
        };
        let what = if p.unresolved { "may reach (body not fully resolved)" } else { "reaches" };
        rows.push(format!("{role} {kind} {object}, {what} {}: {ran}", reached.join(", ")));
        used |= p.defines && n.is_some_and(|n| n > 0);
        all_idle &= n == Some(0);
    }
    let usage = if used {
        Usage::Used
    } else if all_idle {
        Usage::NotSeen
    } else {
        Usage::Unknown
    };
    let blind_spots = vec![
        "counters restart when the server restarts or the summary tables are truncated".to_string(),
        "a view's runs are counted from statement digests, which miss statements inside stored programs".to_string(),
        "runs are counted per object from any account: a caller's own use shows in its statement history or audit log".to_string(),
    ];
    Evidence { source: SOURCE.into(), span: ctx.clock.since_start(), blind_spots, usage, rows }
}

/// Runs per object, keyed by the labels [`crate::access`] gives objects.
struct Runs {
    counts: BTreeMap<(String, String), Option<u64>>,
}

impl Runs {
    fn new(inv: &Inventory, facts: &Facts) -> Runs {
        let mut counts = BTreeMap::new();
        let program = |ty: &str, schema: &str, name: &str| -> Option<u64> {
            let p = facts.programs.as_ref()?;
            Some(p.get(&(ty.to_string(), schema.to_string(), name.to_string())).copied().unwrap_or(0))
        };
        let label = |schema: &str, name: &str| format!("{}.{}", quote_ident(schema), quote_ident(name));
        for r in &inv.objects.routines {
            let kind = r.kind.sql().to_lowercase();
            counts.insert((kind, label(&r.schema, &r.name)), program(&r.kind.sql().to_uppercase(), &r.schema, &r.name));
        }
        for t in &inv.objects.triggers {
            let object = format!("{} on {}", quote_ident(&t.name), t.table.sql());
            counts.insert(("trigger".into(), object), program("TRIGGER", &t.schema, &t.name));
        }
        for e in &inv.objects.events {
            counts.insert(("event".into(), label(&e.schema, &e.name)), program("EVENT", &e.schema, &e.name));
        }
        for v in &inv.objects.views {
            let n = facts.views.as_ref().map(|views| views.get(&v.name).copied().unwrap_or(0));
            counts.insert(("view".into(), v.name.sql()), n);
        }
        Runs { counts }
    }

    fn get(&self, kind: &str, object: &str) -> Option<u64> {
        self.counts.get(&(kind.to_string(), object.to_string())).copied().flatten()
    }
}
