//! What counts as touching the service's tables: the tables themselves, and views whose
//! definitions reach them (directly or through other views, whatever their SQL SECURITY), since a
//! statement names the view, not its base tables. Routines need no expansion here: the
//! statements inside a routine or trigger are recorded as statements of their own (nested
//! events in performance_schema, TABLE events in the audit log).

use crate::access::sqlrefs;
use crate::model::{Inventory, TableName};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A reference to a service table found in a statement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hit {
    pub table: TableName,
    /// The view named in the statement, when the table was reached through one.
    pub view: Option<TableName>,
}

impl Hit {
    /// `` `s`.`t` `` or `` `s`.`t` (through view `s`.`v`) ``.
    pub fn describe(&self) -> String {
        match &self.view {
            Some(v) => format!("{} (through view {})", self.table, v),
            None => self.table.to_string(),
        }
    }
}

/// The service's tables and the views reaching them, with name folding per
/// `lower_case_table_names`.
pub(crate) struct Targets {
    ci: bool,
    tables: Vec<TableName>,
    /// Folded view name -> (view, service tables it reaches).
    views: BTreeMap<(String, String), (TableName, BTreeSet<TableName>)>,
}

impl Targets {
    pub fn new(inv: &Inventory, tables: &[TableName]) -> Targets {
        let ci = inv.server.lower_case_table_names != 0;
        let mut t = Targets { ci, tables: tables.to_vec(), views: BTreeMap::new() };
        let defs: BTreeMap<(String, String), (&TableName, &str)> =
            inv.objects.views.iter().map(|v| (t.key(&v.name), (&v.name, v.definition.as_str()))).collect();
        // Only views whose text could name a service table, or a view that could, are parsed.
        let maybe = may_name(&defs, tables);
        for (key, (name, _)) in defs.iter().filter(|(k, _)| maybe.contains(*k)) {
            let reached = t.reach(key, &defs, &mut HashSet::new());
            if !reached.is_empty() {
                t.views.insert(key.clone(), ((*name).clone(), reached));
            }
        }
        t
    }

    fn key(&self, t: &TableName) -> (String, String) {
        if self.ci {
            (t.schema.to_lowercase(), t.name.to_lowercase())
        } else {
            (t.schema.clone(), t.name.clone())
        }
    }

    /// Service tables a view reaches, through nested views.
    fn reach(
        &self,
        key: &(String, String),
        defs: &BTreeMap<(String, String), (&TableName, &str)>,
        seen: &mut HashSet<(String, String)>,
    ) -> BTreeSet<TableName> {
        let mut out = BTreeSet::new();
        let Some((name, def)) = defs.get(key) else { return out };
        if !seen.insert(key.clone()) {
            return out;
        }
        for r in sqlrefs::extract(def, &name.schema).tables {
            let t = r.table();
            match self.service_table(&t) {
                Some(s) => {
                    out.insert(s.clone());
                }
                None => out.extend(self.reach(&self.key(&t), defs, seen)),
            }
        }
        out
    }

    /// The service table `t` names, if any.
    pub fn service_table(&self, t: &TableName) -> Option<&TableName> {
        let k = self.key(t);
        self.tables.iter().find(|s| self.key(s) == k)
    }

    /// The service tables.
    pub fn tables(&self) -> &[TableName] {
        &self.tables
    }

    /// Service-table references of a table name as a statement used it.
    pub fn hits_of(&self, t: &TableName) -> Vec<Hit> {
        if let Some(s) = self.service_table(t) {
            return vec![Hit { table: s.clone(), view: None }];
        }
        match self.views.get(&self.key(t)) {
            Some((v, reached)) => reached.iter().map(|r| Hit { table: r.clone(), view: Some(v.clone()) }).collect(),
            None => vec![],
        }
    }

    /// Service-table references in a statement's text. `default_schema` resolves unqualified
    /// names (empty when the session had none).
    pub fn hits(&self, sql: &str, default_schema: &str) -> BTreeSet<Hit> {
        sqlrefs::extract(sql, default_schema).tables.iter().flat_map(|r| self.hits_of(&r.table())).collect()
    }

    /// Names to pre-filter text with (`LIKE '%name%'`): service tables and reaching views.
    pub fn names(&self) -> BTreeSet<String> {
        self.tables.iter().map(|t| t.name.clone()).chain(self.views.values().map(|(v, _)| v.name.clone())).collect()
    }
}

/// The views whose definition might name a service table, directly or through other such views:
/// a pre-filter on the text, so that the parser runs on those only. A definition names a table
/// in its text (quoted or not), so one that contains none of the names, compared without case,
/// cannot reach it. A name holding a quote or backslash is written escaped: it matches every view.
fn may_name(defs: &BTreeMap<(String, String), (&TableName, &str)>, tables: &[TableName]) -> HashSet<(String, String)> {
    let mut names: Vec<String> = tables.iter().map(|t| t.name.to_lowercase()).collect();
    if names.iter().any(|n| n.contains(['`', '"', '\\'])) {
        return defs.keys().cloned().collect();
    }
    let lower: Vec<((String, String), String)> = defs.iter().map(|(k, (_, d))| (k.clone(), d.to_lowercase())).collect();
    let mut out: HashSet<(String, String)> = HashSet::new();
    let mut from = 0;
    // Each round adds the views naming a name found so far; a view's own name joins the names.
    while from < names.len() {
        let fresh = names[from..].to_vec();
        from = names.len();
        for (key, text) in &lower {
            if !out.contains(key) && fresh.iter().any(|n| text.contains(n.as_str())) {
                out.insert(key.clone());
                let (view, _) = defs[key];
                if view.name.contains(['`', '"', '\\']) {
                    return defs.keys().cloned().collect();
                }
                names.push(view.name.to_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inventory::{Security, View};

    #[test]
    fn tables_and_views_reaching_them() {
        let mut inv = crate::evidence::tests::inventory();
        let view = |name: &str, def: &str| View {
            name: TableName::new("shop", name),
            definer: None,
            security: Security::Invoker,
            definition: def.into(),
        };
        inv.objects.views = vec![
            view("v_users", "select `shop`.`users`.`id` AS `id` from `shop`.`users`"),
            view("v_nested", "select `id` from `shop`.`v_users`"),
            view("v_other", "select 1 AS `x` from `shop`.`other`"),
        ];
        let t = Targets::new(&inv, &[TableName::new("shop", "users")]);
        let hits = t.hits("SELECT * FROM users u JOIN other o ON o.id = u.id", "shop");
        assert_eq!(hits.iter().map(Hit::describe).collect::<Vec<_>>(), ["`shop`.`users`"]);
        let hits = t.hits("select count(*) from `shop` . `v_nested` where x = ?", "");
        assert_eq!(hits.iter().map(Hit::describe).collect::<Vec<_>>(), ["`shop`.`users` (through view `shop`.`v_nested`)"]);
        assert!(t.hits("SELECT * FROM v_other", "shop").is_empty());
        assert!(t.hits("SELECT * FROM users", "").is_empty(), "no default schema, no match");
        assert_eq!(t.names().into_iter().collect::<Vec<_>>(), ["users", "v_nested", "v_users"]);
    }

    #[test]
    fn only_views_that_could_name_a_service_table_are_parsed() {
        let t = |n: &str| TableName::new("shop", n);
        let (a, b, c, d) = (t("v_a"), t("v_b"), t("v_c"), t("V`q"));
        let mut defs = BTreeMap::new();
        defs.insert(("shop".to_string(), "v_a".to_string()), (&a, "select 1 from `shop`.`USERS`"));
        defs.insert(("shop".to_string(), "v_b".to_string()), (&b, "select 1 from `shop`.`v_a`"));
        defs.insert(("shop".to_string(), "v_c".to_string()), (&c, "select 1 from `shop`.`other`"));
        let got = may_name(&defs, &[t("users")]);
        let mut got: Vec<&str> = got.iter().map(|k| k.1.as_str()).collect();
        got.sort();
        assert_eq!(got, ["v_a", "v_b"], "through case and a nested view; v_c names no service table");
        assert_eq!(may_name(&defs, &[t("us`ers")]).len(), 3, "a quoted name may be written escaped: every view");
        defs.insert(("shop".to_string(), "v`q".to_string()), (&d, "select 1 from `shop`.`users`"));
        assert_eq!(may_name(&defs, &[t("users")]).len(), 4, "a view named with a quote reaches: every view");
    }
}
