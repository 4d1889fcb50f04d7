//! Who can reach the tables on either server, and objects crossing the service boundary.

use super::*;

pub(super) fn describe_reach(r: &Reach) -> String {
    format!(
        "{}{} ({} table(s), via {})",
        r.account.sql(),
        if r.locked { " [locked]" } else { "" },
        r.tables,
        list(r.paths.iter().cloned(), 3)
    )
}

/// `rinv`: the replica's inventory, or why it could not be read.
pub(super) fn isolation(
    pinv: &Inventory,
    rinv: std::result::Result<&Inventory, String>,
    svc: &Service,
    tables: &[TableName],
    today: NaiveDate,
) -> Check {
    if tables.is_empty() {
        return Check::new(
            ISOLATION,
            Status::Fail,
            format!("the service {:?} matches no table on the primary; check the policy", svc.name),
        );
    }
    let mut f = Vec::new();
    let on_primary = guide::remaining(pinv, svc, tables, today);
    if !on_primary.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "on the primary, accounts besides the owners can touch the service's tables: {}; cut them first (privfence session)",
                list(on_primary.iter().map(describe_reach), 8)
            ),
        ));
    }
    let on_replica: Vec<Reach> = match rinv {
        Ok(rinv) => {
            let rtables = guide::service_tables(rinv, svc);
            guide::remaining(rinv, svc, &rtables, today)
                .into_iter()
                .filter(|r| !on_primary.iter().any(|p| p.account == r.account))
                .collect()
        }
        Err(e) => {
            f.push((Status::Fail, format!("could not read the replica's accounts: {e}")));
            Vec::new()
        }
    };
    if !on_replica.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "on the replica only (created there without the binary log), accounts besides the owners can touch the service's \
                 tables: {}; after promotion they would keep that access; drop or revoke them there",
                list(on_replica.iter().map(describe_reach), 8)
            ),
        ));
    }
    let exempt: Vec<String> = svc.exempt.iter().filter(|e| !e.expired(today)).map(|e| written(&e.account, e.any_host)).collect();
    Check::from_findings(
        ISOLATION,
        f,
        format!(
            "on both servers only the owners ({}){} can touch the {} service tables ({})",
            list(svc.owners.iter().zip(&svc.owner_any_host).map(|(o, any)| written(o, *any)), 4),
            if exempt.is_empty() { String::new() } else { format!(" and exempt accounts ({})", list(exempt, 4)) },
            tables.len(),
            names(&tables.iter().collect::<Vec<_>>())
        ),
    )
}

/// An account as the policy wrote it: a bare user name covers every host.
pub(super) fn written(a: &AccountName, any_host: bool) -> String {
    if any_host {
        format!("{} (any host)", quote_str(&a.user))
    } else {
        a.sql()
    }
}

pub(super) const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Follows views and routines named in bodies, through the crate's body analysis
/// ([`sqlrefs::extract`]), to every table an object reaches.
pub(super) struct Reacher<'a> {
    pub(super) ci: bool,
    pub(super) views: HashMap<(String, String), &'a crate::model::inventory::View>,
    pub(super) routines: HashMap<(String, String), Vec<&'a crate::model::inventory::Routine>>,
}

impl<'a> Reacher<'a> {
    fn new(inv: &'a Inventory) -> Reacher<'a> {
        let ci = inv.server.lower_case_table_names != 0;
        let views = inv.objects.views.iter().map(|v| ((fold(&v.name.schema, ci), fold(&v.name.name, ci)), v)).collect();
        let mut routines: HashMap<(String, String), Vec<&crate::model::inventory::Routine>> = HashMap::new();
        for r in &inv.objects.routines {
            routines.entry((fold(&r.schema, ci), r.name.to_lowercase())).or_default().push(r);
        }
        Reacher { ci, views, routines }
    }

    fn reach(&self, body: &str, schema: &str, seen: &mut HashSet<String>, out: &mut BTreeSet<TableName>, unresolved: &mut Vec<String>) {
        let refs = sqlrefs::extract(body, schema);
        unresolved.extend(refs.unresolved.iter().cloned());
        for t in &refs.tables {
            let name = t.table();
            let key = (fold(&name.schema, self.ci), fold(&name.name, self.ci));
            out.insert(name);
            if let Some(v) = self.views.get(&key) {
                if seen.insert(format!("view {key:?}")) {
                    self.reach(&v.definition, &v.name.schema, seen, out, unresolved);
                }
            }
        }
        for r in &refs.routines {
            for found in self.routines.get(&(fold(&r.schema, self.ci), r.name.to_lowercase())).into_iter().flatten() {
                if seen.insert(format!("routine {}.{}", found.schema, found.name)) {
                    self.reach(&found.body, &found.schema, seen, out, unresolved);
                }
            }
        }
    }
}

pub(super) fn boundary(inv: &Inventory, tables: &[TableName]) -> Check {
    let ci = inv.server.lower_case_table_names != 0;
    let key = |t: &TableName| (fold(&t.schema, ci), fold(&t.name, ci));
    let service: HashSet<(String, String)> = tables.iter().map(key).collect();
    let existing: HashSet<(String, String)> = inv.objects.tables.iter().map(|t| key(&t.name)).collect();
    let is_other = |t: &TableName| {
        let k = key(t);
        !service.contains(&k) && existing.contains(&k) && !SYSTEM_SCHEMAS.contains(&k.0.as_str())
    };
    let mut f: Vec<(Status, String)> = Vec::new();
    for fk in &inv.objects.foreign_keys {
        let (c, p) = (service.contains(&key(&fk.child)), service.contains(&key(&fk.parent)));
        if c != p {
            f.push((
                Status::Fail,
                format!(
                    "foreign key {} of {} references {} (ON DELETE {}, ON UPDATE {}): one side stays behind",
                    crate::model::ident::quote_ident(&fk.name),
                    fk.child.sql(),
                    fk.parent.sql(),
                    fk.on_delete,
                    fk.on_update
                ),
            ));
        }
    }
    let reacher = Reacher::new(inv);
    let o = &inv.objects;
    let q = crate::model::ident::quote_ident;
    // (label, the object's own table, body, default schema)
    let mut objects: Vec<(String, Option<&TableName>, &str, &str)> = Vec::new();
    objects
        .extend(o.views.iter().map(|v| (format!("view {}", v.name.sql()), Some(&v.name), v.definition.as_str(), v.name.schema.as_str())));
    objects.extend(
        o.routines.iter().map(|r| {
            (format!("{} {}.{}", r.kind.sql().to_lowercase(), q(&r.schema), q(&r.name)), None, r.body.as_str(), r.schema.as_str())
        }),
    );
    objects.extend(o.triggers.iter().map(|t| {
        (format!("trigger {}.{} on {}", q(&t.schema), q(&t.name), t.table.sql()), Some(&t.table), t.body.as_str(), t.schema.as_str())
    }));
    objects.extend(o.events.iter().map(|e| (format!("event {}.{}", q(&e.schema), q(&e.name)), None, e.body.as_str(), e.schema.as_str())));
    for (label, own, body, schema) in objects {
        let mut reached = BTreeSet::new();
        let mut unresolved = Vec::new();
        reacher.reach(body, schema, &mut HashSet::new(), &mut reached, &mut unresolved);
        reached.extend(own.cloned());
        let svc: Vec<&TableName> = reached.iter().filter(|t| service.contains(&key(t))).collect();
        let other: Vec<&TableName> = reached.iter().filter(|t| is_other(t)).collect();
        if !svc.is_empty() && !other.is_empty() {
            f.push((Status::Fail, format!("{label} joins service tables ({}) and others ({})", names(&svc), names(&other))));
        } else if !svc.is_empty() && !unresolved.is_empty() {
            f.push((
                Status::Warn,
                format!("{label} touches {} and has parts privfence cannot follow: {}", names(&svc), list(unresolved, 2)),
            ));
        }
    }
    let counted = format!(
        "{} foreign keys, {} views, {} routines, {} triggers, {} events",
        o.foreign_keys.len(),
        o.views.len(),
        o.routines.len(),
        o.triggers.len(),
        o.events.len()
    );
    let mut check = Check::from_findings(BOUNDARY, f, format!("nothing crosses the service boundary ({counted} examined)"));
    if check.status == Status::Fail {
        check.detail.push_str("; the moved tables would break these (or they would break the split): move or drop them first");
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Transactions and metadata locks on the primary
