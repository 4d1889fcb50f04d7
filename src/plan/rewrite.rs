//! The rewrite of one grantee's grants so they no longer reach a set of tables, as desired
//! rows and revokes, turned into steps that add only what is missing (so each inverse removes
//! exactly what the plan added).

use super::simulate::Effect;
use super::{Change, Step, StepKind};
use crate::access::index::Index;
use crate::model::privilege::{PrivSet, Privilege, TABLE_PRIVILEGES};
use crate::model::sql::grantee_sql;
use crate::model::{AccountName, Grant, GrantObject, SchemaPattern, TableName};
use std::collections::{BTreeMap, BTreeSet};

/// Privileges with grant option, as one value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privs {
    pub set: PrivSet,
    pub option: bool,
}

impl Privs {
    pub fn of(rows: &[&Grant]) -> Privs {
        Privs { set: rows.iter().flat_map(|g| g.privileges.iter().cloned()).collect(), option: rows.iter().any(|g| g.grant_option) }
    }
    pub fn union(&mut self, o: &Privs) {
        self.set.extend(o.set.iter().cloned());
        self.option |= o.option;
    }
}

/// Schemas that cannot be granted on, or only partly.
const NOT_GRANTABLE: &[&str] = &["information_schema"];
/// What `performance_schema` accepts at schema level.
const PERFORMANCE_SCHEMA_OK: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "LOCK TABLES"];

fn is_table_privilege(p: &Privilege) -> bool {
    TABLE_PRIVILEGES.contains(&p.as_str()) && !p.is_grant_option()
}

/// Statements being assembled for one grantee.
pub struct Ops<'a> {
    ix: &'a Index<'a>,
    pub grantee: AccountName,
    /// Rows the grantee should hold after the plan, by object (merged from every rule).
    desired: BTreeMap<GrantObject, Privs>,
    /// Revokes: (object, privileges, grant option), in the order they were decided.
    revokes: Vec<(GrantObject, PrivSet, bool, String)>,
    why: BTreeMap<GrantObject, String>,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    /// Views whose definer reaches the service's tables: a rewrite does not re-grant them.
    pub leave_out: BTreeSet<TableName>,
}

impl<'a> Ops<'a> {
    pub fn new(ix: &'a Index<'a>, grantee: AccountName) -> Ops<'a> {
        Ops {
            ix,
            grantee,
            desired: BTreeMap::new(),
            revokes: Vec::new(),
            why: BTreeMap::new(),
            changes: Vec::new(),
            warnings: Vec::new(),
            leave_out: BTreeSet::new(),
        }
    }

    fn own(&self) -> impl Iterator<Item = &'a Grant> + '_ {
        let g = self.grantee.clone();
        self.ix.inv.grants.iter().filter(move |x| x.grantee == g)
    }

    /// Asks for `object` to hold at least `privs` after the plan.
    pub fn desire(&mut self, object: GrantObject, privs: Privs, why: String) {
        if privs.set.is_empty() && !privs.option {
            return;
        }
        self.desired.entry(object.clone()).or_default().union(&privs);
        self.why.entry(object).or_insert(why);
    }

    pub fn change(&mut self, detail: String) {
        let c = Change { account: self.grantee.clone(), detail };
        if !self.changes.contains(&c) {
            self.changes.push(c);
        }
    }

    /// Revokes one whole row (used for grants on objects that lead to the tables).
    pub fn revoke_row(&mut self, g: &Grant, why: String) {
        self.revokes.push((g.object.clone(), g.privileges.clone(), g.grant_option, why));
    }

    /// Table and column grants on the service's tables: revoked, columns first (MySQL's
    /// table-level REVOKE also removes the same privilege's column grants, and a later column
    /// REVOKE would then fail with 1147).
    pub fn table_grants(&mut self, service: &[TableName]) {
        let mut hits: Vec<&Grant> = self
            .own()
            .filter(|g| matches!(&g.object, GrantObject::Table { table } | GrantObject::Column { table, .. } if service.iter().any(|t| self.ix.same_table(t, table))))
            .collect();
        hits.sort_by_key(|g| !matches!(g.object, GrantObject::Column { .. }));
        for g in hits {
            let why = match &g.object {
                GrantObject::Column { .. } => "column grant on a service table",
                _ => "table grant on a service table",
            };
            self.revokes.push((g.object.clone(), g.privileges.clone(), g.grant_option, why.into()));
        }
    }

    /// Schema rows that reach the service's schemas: revoked; the schemas they still covered
    /// get exact rows with the privileges they had; the service schemas get per-table grants on
    /// their other tables and keep their non-table privileges at schema level.
    pub fn schema_rows(&mut self, service: &[TableName]) {
        let schemas: BTreeSet<&str> = service.iter().map(|t| t.schema.as_str()).collect();
        let inv = self.ix.inv;
        let literal = inv.server.partial_revokes;
        let ci = inv.server.lower_case_table_names != 0;
        let remove: Vec<&Grant> = self
            .own()
            .filter(|g| matches!(&g.object, GrantObject::Schema { pattern } if schemas.iter().any(|s| pattern.matches(s, ci, literal))))
            .filter(|g| g.privileges.iter().any(is_table_privilege))
            .collect();
        if remove.is_empty() {
            return;
        }
        let (ix, grantee) = (self.ix, self.grantee.clone());
        let removed = |g: &Grant| remove.iter().any(|r| std::ptr::eq(*r, g));
        let effective =
            |schema: &str, after: bool| -> Privs { Privs::of(&ix.effective_schema_rows(&grantee, schema, &|g| after && removed(g))) };
        for x in inv.objects.schemas.iter().filter(|x| !schemas.contains(x.as_str()) && !NOT_GRANTABLE.contains(&x.as_str())) {
            if !remove.iter().any(|r| matches!(&r.object, GrantObject::Schema { pattern } if pattern.matches(x, ci, literal))) {
                continue;
            }
            let (before, after) = (effective(x, false), effective(x, true));
            if before != after {
                self.desire(
                    GrantObject::Schema { pattern: SchemaPattern::exact(x) },
                    before,
                    format!("keeps `{x}` as it was: a rewritten wildcard grant covered it"),
                );
            }
        }
        for s in &schemas {
            let (before, after) = (effective(s, false), effective(s, true));
            let non_table: PrivSet = before.set.iter().filter(|p| !is_table_privilege(p)).cloned().collect();
            let exact = SchemaPattern::exact(s);
            let exact_removed =
                remove.iter().find(|r| matches!(&r.object, GrantObject::Schema { pattern } if pattern.literal().as_deref() == Some(*s)));
            if !non_table.is_empty() && after.set != non_table && exact_removed.is_none() {
                self.desire(
                    GrantObject::Schema { pattern: exact.clone() },
                    Privs { set: non_table.clone(), option: before.option },
                    format!("keeps the privileges on `{s}`.* that cannot be granted per table"),
                );
            }
            let keeps_exact = exact_removed.is_some_and(|r| r.privileges.iter().any(|p| !is_table_privilege(p)));
            let gained: Vec<&str> = after.set.iter().filter(|p| !before.set.contains(*p)).map(|p| p.as_str()).collect();
            if !gained.is_empty() && !keeps_exact {
                self.warnings.push(format!(
                    "{}: once its rows on `{s}` are rewritten, a lower-priority schema row gives it {} on `{s}`",
                    self.grantee.sql(),
                    gained.join(", ")
                ));
            }
            self.per_table(
                s,
                service,
                &Privs { set: before.set.iter().filter(|p| is_table_privilege(p)).cloned().collect(), option: before.option },
                "its schema grant on",
            );
            if before.set.contains(&Privilege::known("CREATE")) {
                self.change(format!("can no longer create new tables in `{s}` (CREATE on `{s}`.* becomes per-table CREATE)"));
            }
            if before.set.iter().any(is_table_privilege) {
                self.change(format!(
                    "tables created in `{s}` from now on are not covered (the schema grant on `{s}` becomes per-table grants)"
                ));
            }
        }
        self.revoke_schema_rows(&remove, &schemas);
    }

    /// Revokes the schema rows that reach a service schema: an exact row keeps its non-table
    /// privileges (only the table ones are revoked), a wildcard row goes.
    fn revoke_schema_rows(&mut self, remove: &[&Grant], schemas: &BTreeSet<&str>) {
        for r in remove {
            let GrantObject::Schema { pattern } = &r.object else { continue };
            let exact_service = pattern.literal().is_some_and(|l| schemas.contains(l.as_str()));
            if exact_service {
                // Keep the row with its non-table privileges: revoke only the table ones.
                let table: PrivSet = r.privileges.iter().filter(|p| is_table_privilege(p)).cloned().collect();
                let keeps_rest = r.privileges.len() > table.len();
                self.revokes.push((r.object.clone(), table, r.grant_option && !keeps_rest, "schema grant on a service schema".into()));
            } else {
                self.revokes.push((
                    r.object.clone(),
                    r.privileges.clone(),
                    r.grant_option,
                    format!("wildcard schema grant `{pattern}` matches a service schema"),
                ));
                self.change(format!("schemas created later that match `{pattern}` are not covered"));
            }
        }
    }

    /// Per-table grants on a service schema's other tables (base tables and views).
    fn per_table(&mut self, schema: &str, service: &[TableName], privs: &Privs, what: &str) {
        let grantable = &self.ix.inv.levels.table;
        let set: PrivSet = privs.set.iter().filter(|p| grantable.contains(*p)).cloned().collect();
        if set.is_empty() && !privs.option {
            return;
        }
        let others: Vec<TableName> = self
            .ix
            .inv
            .objects
            .tables
            .iter()
            .map(|t| t.name.clone())
            .filter(|t| self.ix.fold(&t.schema) == self.ix.fold(schema) && !service.iter().any(|s| self.ix.same_table(s, t)))
            .collect();
        for t in others {
            if self.leave_out.contains(&t) {
                self.change(format!("loses access to view {} (its definer reaches the service's tables)", t.sql()));
                continue;
            }
            let why = format!("replaces {what} `{schema}` on this table");
            self.desire(GrantObject::Table { table: t }, Privs { set: set.clone(), option: privs.option }, why);
        }
    }

    /// Global privileges that reach the service's tables: moved to exact rows for every other
    /// schema and per-table grants in the service schemas (or, with MySQL partial revokes and a
    /// service that owns whole schemas, partial revokes).
    pub fn global(&mut self, service: &[TableName], partial: bool) {
        let inv = self.ix.inv;
        let statics: Vec<&Grant> =
            self.own().filter(|g| g.object == GrantObject::Global && !g.privileges.iter().all(|p| p.is_dynamic())).collect();
        let moving: PrivSet = statics.iter().flat_map(|g| g.privileges.iter()).filter(|p| is_table_privilege(p)).cloned().collect();
        if moving.is_empty() {
            return;
        }
        let schemas: BTreeSet<&str> = service.iter().map(|t| t.schema.as_str()).collect();
        let whole = schemas.iter().all(|s| inv.objects.tables.iter().filter(|t| t.name.schema == *s).all(|t| service.contains(&t.name)));
        if partial && whole {
            for s in &schemas {
                self.revokes.push((
                    GrantObject::Schema { pattern: SchemaPattern(s.to_string()) },
                    moving.clone(),
                    false,
                    "partial revoke of global privileges on a service schema".into(),
                ));
            }
            self.change("global privileges now exclude the service schemas (MySQL partial revokes)".into());
            return;
        }
        for x in inv.objects.schemas.iter().filter(|x| !schemas.contains(x.as_str()) && !NOT_GRANTABLE.contains(&x.as_str())) {
            let mut set = moving.clone();
            if x == "performance_schema" {
                set.retain(|p| PERFORMANCE_SCHEMA_OK.contains(&p.as_str()));
            }
            // A new exact row shadows wildcard rows: carry what they gave.
            let exact_exists = self
                .own()
                .any(|g| matches!(&g.object, GrantObject::Schema { pattern } if pattern.literal().as_deref() == Some(x.as_str())));
            let mut privs = Privs { set, option: false };
            if !exact_exists {
                privs.union(&Privs::of(&self.ix.schema_rows(&self.grantee, x)));
            }
            self.desire(GrantObject::Schema { pattern: SchemaPattern::exact(x) }, privs, format!("keeps the global privileges on `{x}`"));
        }
        for s in &schemas {
            self.per_table(s, service, &Privs { set: moving.clone(), option: false }, "its global grant, on schema");
        }
        self.revokes.push((GrantObject::Global, moving.clone(), false, "global privileges reach the service tables".into()));
        self.change(format!(
            "{} no longer global: schemas created later are not covered",
            moving.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }

    /// The grants this grantee holds after the plan, as (object, privileges) for the objects
    /// it touches: existing rows minus revokes, plus desired rows.
    pub fn after(&self) -> Vec<(GrantObject, PrivSet)> {
        let mut out: Vec<(GrantObject, PrivSet)> = Vec::new();
        for g in self.own() {
            let mut set = g.privileges.clone();
            for (o, revoked, _, _) in &self.revokes {
                if o == &g.object {
                    set.retain(|p| !revoked.contains(p));
                }
            }
            out.push((g.object.clone(), set));
        }
        out.extend(self.desired.iter().map(|(o, p)| (o.clone(), p.set.clone())));
        out
    }

    /// Turns desired rows and revokes into steps: grants first (only what is missing), then
    /// revokes in the order decided.
    pub fn steps(&self) -> (Vec<Step>, Vec<Step>) {
        let flavour = self.ix.inv.server.flavour;
        let who = grantee_sql(&self.grantee, flavour);
        let mut grants = Vec::new();
        for (object, want) in &self.desired {
            let have = self.own().find(|g| &g.object == object);
            let missing: PrivSet = want.set.iter().filter(|p| !have.is_some_and(|h| h.privileges.contains(*p))).cloned().collect();
            let option = want.option && !have.is_some_and(|h| h.grant_option);
            if missing.is_empty() && !option {
                continue;
            }
            let list = if missing.is_empty() { "USAGE".to_string() } else { join(&missing) };
            let mut forward = format!("GRANT {list} ON {} TO {who}", object.sql_target());
            let mut inv_list: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
            if option {
                forward.push_str(" WITH GRANT OPTION");
                inv_list.push("GRANT OPTION".into());
            }
            let inverse = format!("REVOKE {} ON {} FROM {who}", inv_list.join(", "), object.sql_target());
            if let GrantObject::Table { table } = object {
                // Both servers drop a table's column grants of a privilege revoked at table
                // level: the inverse must put them back after its REVOKE.
                for c in self.own().filter(|g| matches!(&g.object, GrantObject::Column { table: t, .. } if t == table)) {
                    let overlap: PrivSet = c.privileges.intersection(&missing).cloned().collect();
                    if let (GrantObject::Column { column, .. }, false) = (&c.object, overlap.is_empty()) {
                        let col = crate::model::ident::quote_ident(column);
                        let list = overlap.iter().map(|p| format!("{p} ({col})")).collect::<Vec<_>>().join(", ");
                        let keep = format!("GRANT {list} ON {} TO {who}", table.sql());
                        grants.push(self.step(
                            StepKind::Grant,
                            keep.clone(),
                            keep,
                            format!("keeps column grants on {col} that the inverse's table-level REVOKE would drop"),
                            None,
                        ));
                    }
                }
            }
            let effect = Effect::Grant { grantee: self.grantee.clone(), object: object.clone(), privileges: missing.clone(), option };
            grants.push(self.step(StepKind::Grant, forward, inverse, self.why.get(object).cloned().unwrap_or_default(), Some(effect)));
        }
        let mut revokes = Vec::new();
        for (object, set, option, why) in &self.revokes {
            if set.is_empty() && !option {
                continue;
            }
            let (forward, inverse) = revoke_pair(object, set, *option, &who);
            let effect = Effect::Revoke { grantee: self.grantee.clone(), object: object.clone(), privileges: set.clone(), option: *option };
            revokes.push(self.step(StepKind::Revoke, forward, inverse, why.clone(), Some(effect)));
        }
        (grants, revokes)
    }

    fn step(&self, kind: StepKind, forward: String, inverse: String, why: String, effect: Option<Effect>) -> Step {
        Step { id: String::new(), account: self.grantee.clone(), kind, forward, inverse, why, effect }
    }
}

fn join(set: &PrivSet) -> String {
    set.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

/// `REVOKE` of some privileges of one row, and the `GRANT` that restores them.
fn revoke_pair(object: &GrantObject, set: &PrivSet, option: bool, who: &str) -> (String, String) {
    let (privs, target) = match object {
        GrantObject::Column { table, column } => {
            let col = crate::model::ident::quote_ident(column);
            (set.iter().map(|p| format!("{p} ({col})")).collect::<Vec<_>>(), table.sql())
        }
        _ => (set.iter().map(|p| p.to_string()).collect::<Vec<_>>(), object.sql_target()),
    };
    let mut revoke_list = privs.clone();
    if option {
        revoke_list.push("GRANT OPTION".into());
    }
    let grant_list = if privs.is_empty() { "USAGE".to_string() } else { privs.join(", ") };
    let forward = format!("REVOKE {} ON {target} FROM {who}", revoke_list.join(", "));
    let mut inverse = format!("GRANT {grant_list} ON {target} TO {who}");
    if option {
        inverse.push_str(" WITH GRANT OPTION");
    }
    (forward, inverse)
}
