//! Replication and binary-log filters that could drop the service's tables or the grant tables.

use super::*;

/// The grant tables: an account statement the replica drops leaves the moved service with
/// other grants on its new server.
pub(super) fn grant_tables(flavour: Flavour) -> Vec<TableName> {
    let names: &[&str] = match flavour {
        Flavour::MySql => &["user", "db", "tables_priv", "columns_priv", "procs_priv", "global_grants", "role_edges", "default_roles"],
        Flavour::MariaDb => &["user", "global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "roles_mapping"],
    };
    names.iter().map(|n| TableName::new("mysql", *n)).collect()
}

pub(super) fn fold(s: &str, ci: bool) -> String {
    if ci {
        s.to_lowercase()
    } else {
        s.to_string()
    }
}

pub(super) fn schemas_of(tables: &[TableName], ci: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tables {
        if !out.iter().any(|s| fold(s, ci) == fold(&t.schema, ci)) {
            out.push(t.schema.clone());
        }
    }
    out
}

pub(super) fn in_list(list: &[String], name: &str, ci: bool) -> bool {
    list.iter().any(|x| fold(x, ci) == fold(name, ci))
}

/// `db.table` of a `Replicate_Do_Table` entry, or the `db_pattern.table_pattern` (LIKE) of a
/// `Replicate_Wild_*` one.
pub(super) fn table_rule_matches(rule: &str, t: &TableName, wild: bool, ci: bool) -> bool {
    let Some((db, tb)) = rule.split_once('.') else { return false };
    if wild {
        SchemaPattern(db.to_string()).matches(&t.schema, ci, false) && SchemaPattern(tb.to_string()).matches(&t.name, ci, false)
    } else {
        fold(db, ci) == fold(&t.schema, ci) && fold(tb, ci) == fold(&t.name, ci)
    }
}

pub(super) fn names(tables: &[&TableName]) -> String {
    list(tables.iter().map(|t| t.sql()), 6)
}

/// A list for messages: the first `max` items, then how many more.
pub(super) fn list(items: impl IntoIterator<Item = String>, max: usize) -> String {
    let all: Vec<String> = items.into_iter().collect();
    if all.len() <= max {
        return all.join(", ");
    }
    format!("{} and {} more", all[..max].join(", "), all.len() - max)
}

/// What a channel's filters do to the service's tables and the grant tables (`targets`).
pub(super) fn filter_findings(
    f: &Filters,
    service: &[TableName],
    targets: &[TableName],
    primary_id: &str,
    ci: bool,
) -> Vec<(Status, String)> {
    let mut out = db_findings(f, &schemas_of(targets, ci), ci);
    out.extend(table_findings(f, targets, ci));
    out.extend(other_findings(f, &schemas_of(service, ci), primary_id, ci));
    out
}

/// The database filters: `Replicate_Do_DB`, `Replicate_Ignore_DB`.
fn db_findings(f: &Filters, schemas: &[String], ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !f.do_db.is_empty() {
        let missing: Vec<&String> = schemas.iter().filter(|s| !in_list(&f.do_db, s, ci)).collect();
        out.push((
            Status::Fail,
            format!(
                "Replicate_Do_DB ({}) keeps only statements whose default database is listed (GRANT, CREATE USER and DDL are \
                 statements): grants run from any other default database never reach the replica{}; remove the filter",
                f.do_db.join(", "),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(", and schemas {} are not listed at all", list(missing.iter().map(|s| s.to_string()), 6))
                }
            ),
        ));
    }
    if !f.ignore_db.is_empty() {
        let hit: Vec<&String> = schemas.iter().filter(|s| in_list(&f.ignore_db, s, ci)).collect();
        if hit.is_empty() {
            out.push((
                Status::Warn,
                format!(
                    "Replicate_Ignore_DB ({}) drops statements run from those default databases, even when they change the service's \
                     tables or grants; make sure nobody does that",
                    f.ignore_db.join(", ")
                ),
            ));
        } else {
            out.push((
                Status::Fail,
                format!("Replicate_Ignore_DB drops schemas {}; remove the filter", list(hit.iter().map(|s| s.to_string()), 6)),
            ));
        }
    }
    out
}

/// The table filters: `Replicate_(Wild_)Do_Table`, `Replicate_(Wild_)Ignore_Table`.
fn table_findings(f: &Filters, targets: &[TableName], ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !f.do_table.is_empty() || !f.wild_do.is_empty() {
        let dropped: Vec<&TableName> = targets
            .iter()
            .filter(|t| {
                !f.do_table.iter().any(|r| table_rule_matches(r, t, false, ci))
                    && !f.wild_do.iter().any(|r| table_rule_matches(r, t, true, ci))
            })
            .collect();
        if !dropped.is_empty() {
            out.push((
                Status::Fail,
                format!(
                    "Replicate_Do_Table ({}) / Replicate_Wild_Do_Table ({}) replicate nothing else, so changes to {} are dropped; \
                     add them (mysql.% for grants) or remove the filter",
                    f.do_table.join(", "),
                    f.wild_do.join(", "),
                    names(&dropped)
                ),
            ));
        }
    }
    for (label, rules, wild) in [("Replicate_Ignore_Table", &f.ignore_table, false), ("Replicate_Wild_Ignore_Table", &f.wild_ignore, true)]
    {
        for r in rules.iter() {
            let dropped: Vec<&TableName> = targets.iter().filter(|t| table_rule_matches(r, t, wild, ci)).collect();
            if !dropped.is_empty() {
                out.push((Status::Fail, format!("{label} {r:?} drops changes to {}; remove that rule", names(&dropped))));
            }
        }
    }
    out
}

/// Schema rewrites, GTID domain filters, ignored server ids.
fn other_findings(f: &Filters, service_schemas: &[String], primary_id: &str, ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    for r in &f.rewrite_db {
        let words: Vec<&str> = r.split(['(', ')', '-', '>', ' ', ',']).filter(|w| !w.is_empty()).collect();
        let hits =
            service_schemas.iter().chain(std::iter::once(&"mysql".to_string())).any(|s| words.iter().any(|w| fold(w, ci) == fold(s, ci)));
        let status = if hits { Status::Fail } else { Status::Warn };
        out.push((status, format!("Replicate_Rewrite_DB {r:?} applies changes under another schema name on the replica")));
    }
    if !f.do_domains.is_empty() || !f.ignore_domains.is_empty() {
        out.push((
            Status::Warn,
            format!(
                "GTID domain filters (do {:?}, ignore {:?}) drop whole domains; make sure the service's writes and grants stay in a replicated one",
                f.do_domains, f.ignore_domains
            ),
        ));
    }
    if in_list(&f.ignore_server_ids, primary_id, false) {
        out.push((Status::Fail, format!("Replicate_Ignore_Server_Ids ignores the primary's server_id {primary_id}")));
    } else if !f.ignore_server_ids.is_empty() {
        out.push((
            Status::Warn,
            format!("Replicate_Ignore_Server_Ids ({}) drops events from those servers", f.ignore_server_ids.join(", ")),
        ));
    }
    out
}

pub(super) fn replica_filters(link: Option<&Link>, links: &[Link], tables: &[TableName], pv: &Vars, inv: &Inventory) -> Check {
    let Some(link) = link else {
        let why = if links.is_empty() { "the replica replicates from nobody" } else { "the replica does not replicate from this primary" };
        return Check::new(REPLICA_FILTERS, Status::Fail, format!("not checked: {why}"));
    };
    let ci = inv.server.lower_case_table_names != 0;
    let mut targets = tables.to_vec();
    targets.extend(grant_tables(inv.server.flavour));
    let findings = filter_findings(&link.filters, tables, &targets, &pv.server_id, ci);
    let others = links.len() - 1;
    Check::from_findings(
        REPLICA_FILTERS,
        findings.into_iter().map(|(s, t)| (s, format!("{}: {t}", link.describe()))).collect(),
        format!(
            "no replication filter on {} (Replicate_Do/Ignore_DB, _Table, Wild_*, Rewrite_DB{}){}",
            link.describe(),
            if inv.server.flavour == Flavour::MySql {
                ", performance_schema.replication_applier_filters"
            } else {
                ", domain and server-id filters"
            },
            if others > 0 { format!("; {others} other channel(s) not examined") } else { String::new() }
        ),
    )
}

/// `binlog_do_db` / `binlog_ignore_db` on the primary against the service's and the grant
/// tables' schemas.
pub(super) fn binlog_findings(do_db: &[String], ignore_db: &[String], schemas: &[String], ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !do_db.is_empty() {
        out.push((
            Status::Fail,
            format!(
                "binlog_do_db ({}) logs only statements whose default database is listed: grants and changes run from any other default \
                 database never reach the binary log, so never reach the replica; remove the option (it needs a restart)",
                do_db.join(", ")
            ),
        ));
    }
    if !ignore_db.is_empty() {
        let hit: Vec<String> = schemas.iter().filter(|s| in_list(ignore_db, s, ci)).cloned().collect();
        if hit.is_empty() {
            out.push((
                Status::Warn,
                format!(
                    "binlog_ignore_db ({}) leaves out statements run from those default databases, even on the service's tables or grants",
                    ignore_db.join(", ")
                ),
            ));
        } else {
            out.push((
                Status::Fail,
                format!("binlog_ignore_db leaves schemas {} out of the binary log; remove the option (it needs a restart)", hit.join(", ")),
            ));
        }
    }
    out
}

pub(super) async fn binlog_filters(primary: &mut Node, tables: &[TableName], inv: &Inventory) -> Result<Check> {
    let info = &primary.server.info;
    let sql = if info.flavour == Flavour::MySql && info.version >= crate::db::Version::new(8, 2, 0) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    };
    let rows = primary.server.rows("reading the binary log status", sql).await?;
    let Some(row) = rows.first() else {
        return Ok(Check::new(BINLOG_FILTERS, Status::Fail, format!("{sql} is empty: the primary writes no binary log")));
    };
    let do_db = split_list(&col(row, &["Binlog_Do_DB"]));
    let ignore_db = split_list(&col(row, &["Binlog_Ignore_DB"]));
    let ci = inv.server.lower_case_table_names != 0;
    let mut targets = tables.to_vec();
    targets.extend(grant_tables(inv.server.flavour));
    let at = format!("{}:{}", col(row, &["File"]), col(row, &["Position"]));
    Ok(Check::from_findings(
        BINLOG_FILTERS,
        binlog_findings(&do_db, &ignore_db, &schemas_of(&targets, ci), ci),
        format!("no binlog_do_db / binlog_ignore_db on the primary ({sql} at {at})"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Isolation and the service boundary
