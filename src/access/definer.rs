//! Reach through `SQL SECURITY DEFINER` objects: views, routines, triggers and events that read
//! or write a table with their definer's privileges, transitively.
//!
//! For each object, the body is parsed ([`super::sqlrefs`]) into the tables it touches and the
//! routines it calls. A base table is reached with the operations the body performs there,
//! intersected with what the security context (the definer, or the caller for `INVOKER`
//! objects nested inside a definer object) may do on it. Nested views and routines are followed
//! with the context they run in. What cannot be resolved is kept as [`Unresolved`], never
//! dropped.

use super::index::Index;
use super::sqlrefs;
use crate::model::inventory::{Routine, Security, View};
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::{AccountName, TableName};
use std::collections::{HashMap, HashSet};

/// A base table reached through an object, with the privileges in effect there.
#[derive(Debug, Clone)]
pub struct Reach {
    pub table: TableName,
    pub privileges: PrivSet,
    /// Nested objects from the outermost one, as `kind name`.
    pub chain: Vec<String>,
}

/// A part of an object privfence could not resolve.
#[derive(Debug, Clone)]
pub struct Unresolved {
    pub reason: String,
    /// The security context in which the unresolved part runs: it can touch whatever this
    /// account can.
    pub context: Option<AccountName>,
    pub chain: Vec<String>,
}

/// DML privileges that pass from a view to its base tables.
pub fn dml() -> PrivSet {
    ["SELECT", "INSERT", "UPDATE", "DELETE"].into_iter().map(Privilege::known).collect()
}

/// Resolves what definer objects reach.
pub struct Definers<'a> {
    ix: &'a Index<'a>,
    views: HashMap<(String, String), &'a View>,
    routines: HashMap<(String, String), Vec<&'a Routine>>,
}

impl<'a> Definers<'a> {
    pub fn new(ix: &'a Index<'a>) -> Definers<'a> {
        let objects = &ix.inv.objects;
        let views = objects.views.iter().map(|v| ((ix.fold(&v.name.schema), ix.fold(&v.name.name)), v)).collect();
        let mut routines: HashMap<(String, String), Vec<&Routine>> = HashMap::new();
        for r in &objects.routines {
            routines.entry((ix.fold(&r.schema), r.name.to_lowercase())).or_default().push(r);
        }
        Definers { ix, views, routines }
    }

    pub fn view(&self, t: &TableName) -> Option<&'a View> {
        self.views.get(&(self.ix.fold(&t.schema), self.ix.fold(&t.name))).copied()
    }

    /// What a view reaches when used with `ops` by a caller whose context is `caller`.
    pub fn reach_view(
        &self,
        view: &View,
        caller: &AccountName,
        ops: &PrivSet,
        chain: &[String],
        seen: &mut HashSet<String>,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        let ctx = match (view.security, &view.definer) {
            (Security::Definer, Some(d)) => d.clone(),
            _ => caller.clone(),
        };
        let label = format!("view {}", view.name.sql());
        // Through a view, the caller's own operations pass on to every table it reads.
        self.reach_text(&view.definition, &view.name.schema, &ctx, label, chain, seen, &|_| ops.clone())
    }

    /// A table reference inside an object running as `ctx`: a base table, or a nested view.
    fn reach_table(
        &self,
        name: &TableName,
        ctx: &AccountName,
        ops: &PrivSet,
        chain: &[String],
        seen: &mut HashSet<String>,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        let allowed: PrivSet = ops.intersection(&self.ix.all_privileges(ctx, name)).cloned().collect();
        if allowed.is_empty() {
            return (vec![], vec![]);
        }
        match self.view(name) {
            Some(v) => {
                let dml_ops: PrivSet = allowed.intersection(&dml()).cloned().collect();
                self.reach_view(v, ctx, &dml_ops, chain, seen)
            }
            None => (vec![Reach { table: name.clone(), privileges: allowed, chain: chain.to_vec() }], vec![]),
        }
    }

    fn reach_routine_by_name(
        &self,
        schema: &str,
        name: &str,
        ctx: &AccountName,
        chain: &[String],
        seen: &mut HashSet<String>,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        let key = (self.ix.fold(schema), name.to_lowercase());
        let Some(found) = self.routines.get(&key) else { return (vec![], vec![]) };
        let mut reach = Vec::new();
        let mut unresolved = Vec::new();
        for r in found.clone() {
            if !self.ix.all_routine_privileges(ctx, &r.schema, &r.name).contains(&Privilege::known("EXECUTE")) {
                continue;
            }
            let (rr, u) = self.reach_routine(r, ctx, chain, seen);
            reach.extend(rr);
            unresolved.extend(u);
        }
        (reach, unresolved)
    }

    /// What a routine reaches when called from context `caller`.
    /// A `DEFINER` routine runs only if its definer also holds EXECUTE on it (seen on both
    /// flavours: error 1370 names the definer otherwise).
    pub fn reach_routine(
        &self,
        r: &Routine,
        caller: &AccountName,
        chain: &[String],
        seen: &mut HashSet<String>,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        let ctx = match (r.security, &r.definer) {
            (Security::Definer, Some(d)) => d.clone(),
            _ => caller.clone(),
        };
        if r.security == Security::Definer
            && !self.ix.all_routine_privileges(&ctx, &r.schema, &r.name).contains(&Privilege::known("EXECUTE"))
        {
            return (vec![], vec![]);
        }
        let label = format!(
            "{} {}.{}",
            r.kind.sql().to_lowercase(),
            crate::model::ident::quote_ident(&r.schema),
            crate::model::ident::quote_ident(&r.name)
        );
        self.reach_body(&r.body, &r.schema, &ctx, label, chain, seen)
    }

    /// What a body (routine, trigger or event) running as `ctx` reaches: what it does to each
    /// table.
    pub fn reach_body(
        &self,
        body: &str,
        schema: &str,
        ctx: &AccountName,
        label: String,
        chain: &[String],
        seen: &mut HashSet<String>,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        self.reach_text(body, schema, ctx, label, chain, seen, &|t| t.ops.iter().map(|op| Privilege::known(op.privilege())).collect())
    }

    /// The walk shared by views and bodies: guard against cycles, parse, follow every table
    /// (with the operations `ops_of` gives it) and every routine, keep what is unresolved.
    #[allow(clippy::too_many_arguments)]
    fn reach_text(
        &self,
        text: &str,
        schema: &str,
        ctx: &AccountName,
        label: String,
        chain: &[String],
        seen: &mut HashSet<String>,
        ops_of: &dyn Fn(&sqlrefs::TableRef) -> PrivSet,
    ) -> (Vec<Reach>, Vec<Unresolved>) {
        let mut chain = chain.to_vec();
        chain.push(label.clone());
        if !seen.insert(label) {
            return (vec![], vec![]);
        }
        let refs = sqlrefs::extract(text, schema);
        let mut reach = Vec::new();
        let mut unresolved: Vec<Unresolved> =
            refs.unresolved.iter().map(|r| Unresolved { reason: r.clone(), context: Some(ctx.clone()), chain: chain.clone() }).collect();
        for t in &refs.tables {
            let name = TableName::new(t.schema.clone(), t.name.clone());
            let (r, u) = self.reach_table(&name, ctx, &ops_of(t), &chain, seen);
            reach.extend(r);
            unresolved.extend(u);
        }
        for r in &refs.routines {
            let (rr, u) = self.reach_routine_by_name(&r.schema, &r.name, ctx, &chain, seen);
            reach.extend(rr);
            unresolved.extend(u);
        }
        (reach, unresolved)
    }
}
