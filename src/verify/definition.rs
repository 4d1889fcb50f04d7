//! Before any row is read: the checks that make `verify` and `backfill` refuse (exit 2, nothing
//! changed). A table missing on one side, definitions that differ (columns, types, collations,
//! primary key), a table without a key to walk, a tombstone table whose key does not match, and
//! a target that replicates from the source.

use crate::compare::TableQueries;
use crate::db::server::opt_text;
use crate::db::{Flavour, Server};
use crate::error::{Error, Result};
use crate::model::ident::quote_str;
use crate::model::TableName;

/// One table ready to compare or copy: its queries and its tombstone table on the target.
pub struct Prepared {
    pub queries: TableQueries,
    /// `None` without `--tombstones`.
    pub tombstones: Option<TableName>,
}

/// The tombstone table of `table` under `pattern` (`{table}` is replaced by the table's name;
/// a `schema.` prefix is allowed, else the table's schema).
pub fn tombstone_table(pattern: &str, table: &TableName) -> TableName {
    let name = pattern.replace("{table}", &table.name).replace("{schema}", &table.schema);
    match name.split_once('.') {
        Some((s, n)) => TableName::new(s, n),
        None => TableName::new(&table.schema, &name),
    }
}

/// Leaves out the tables that are tombstone tables of other tables in the list.
pub fn without_tombstone_tables(tables: &[TableName], pattern: Option<&str>) -> Vec<TableName> {
    let Some(p) = pattern else { return tables.to_vec() };
    let tombs: Vec<TableName> = tables.iter().map(|t| tombstone_table(p, t)).collect();
    tables.iter().filter(|t| !tombs.contains(t)).cloned().collect()
}

type ColumnDef = (String, String, String, String);

async fn columns(s: &mut Server, t: &TableName) -> Result<Vec<ColumnDef>> {
    s.rows_as(
        "reading the table's definition",
        &format!(
            "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), IFNULL(COLLATION_NAME, ''), IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            quote_str(&t.schema),
            quote_str(&t.name)
        ),
    )
    .await
}

async fn primary_key(s: &mut Server, t: &TableName) -> Result<Vec<String>> {
    let rows = s
        .rows(
            "reading the table's primary key",
            &format!(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} \
                 AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
                quote_str(&t.schema),
                quote_str(&t.name)
            ),
        )
        .await?;
    Ok(rows.iter().map(|r| opt_text(r, 0).unwrap_or_default()).collect())
}

fn first_difference(a: &[ColumnDef], b: &[ColumnDef]) -> String {
    let show = |c: Option<&ColumnDef>| {
        c.map_or("no column".to_string(), |(n, ty, coll, null)| {
            format!(
                "{n} {ty}{}{}",
                if coll.is_empty() { String::new() } else { format!(" COLLATE {coll}") },
                if null == "YES" { " NULL" } else { " NOT NULL" }
            )
        })
    };
    for i in 0..a.len().max(b.len()) {
        if a.get(i) != b.get(i) {
            return format!("column {}: {} on the source, {} on the target", i + 1, show(a.get(i)), show(b.get(i)));
        }
    }
    String::new()
}

/// Refuses a target that replicates from the source: a promotion's job, or a plain verify.
pub async fn refuse_replica_of_source(from: &mut Server, to: &mut Server, what: &str) -> Result<()> {
    let source_id: Option<u64> = from.first("reading server_id", "SELECT @@server_id").await?;
    let sql = match to.info.flavour {
        Flavour::MySql => "SHOW REPLICA STATUS",
        Flavour::MariaDb => "SHOW ALL SLAVES STATUS",
    };
    for row in to.rows("reading the target's replication status", sql).await? {
        let col = |names: &[&str]| {
            names.iter().find_map(|n| row.columns_ref().iter().position(|c| c.name_str() == *n)).and_then(|i| opt_text(&row, i))
        };
        let id = col(&["Source_Server_Id", "Master_Server_Id"]).and_then(|v| v.parse::<u64>().ok());
        if id.is_some() && id == source_id {
            return Err(Error::BadInput(format!(
                "{} is a replica of {} (it replicates from server_id {}): {what} between a primary and its own replica \
                 would fight replication; use `privfence promote` to move the tables, or `privfence verify` only",
                to.target,
                from.target,
                id.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Checks every table's definition on both sides (all of them before any row is read), then
/// its key and its tombstone table.
pub async fn prepare(from: &mut Server, to: &mut Server, tables: &[TableName], tombstones: Option<&str>) -> Result<Vec<Prepared>> {
    let mut problems = Vec::new();
    for t in tables {
        let (a, b) = (columns(from, t).await?, columns(to, t).await?);
        if a.is_empty() || b.is_empty() {
            let (side, server) = if a.is_empty() { ("source", &from.target) } else { ("target", &to.target) };
            problems.push(format!("{t} is missing on the {side} {server}"));
        } else if a != b {
            problems.push(format!("{t} has a different definition: {}", first_difference(&a, &b)));
        } else {
            let (ka, kb) = (primary_key(from, t).await?, primary_key(to, t).await?);
            if ka != kb {
                problems.push(format!(
                    "{t} has a different primary key: ({}) on the source, ({}) on the target",
                    ka.join(", "),
                    kb.join(", ")
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Definition(format!(
            "the tables differ between the servers, so nothing was compared or copied: {}; make the definitions equal first",
            problems.join("; ")
        )));
    }
    let mut out = Vec::new();
    for t in tables {
        let queries = TableQueries::read(from, to, "target", t).await?;
        let tomb = match tombstones {
            Some(p) => Some(check_tombstones(to, &queries, &tombstone_table(p, t)).await?),
            None => None,
        };
        out.push(Prepared { queries, tombstones: tomb });
    }
    Ok(out)
}

/// The tombstone table must exist on the target with the table's key columns as its primary key.
async fn check_tombstones(to: &mut Server, q: &TableQueries, tomb: &TableName) -> Result<TableName> {
    let key = q.key_names();
    let tk = primary_key(to, tomb).await?;
    if columns(to, tomb).await?.is_empty() {
        return Err(Error::Definition(format!(
            "{}: its tombstone table {tomb} does not exist on the target {}; create it with the table's key columns ({}) \
             as its primary key (docs/migrations.md)",
            q.table,
            to.target,
            key.join(", ")
        )));
    }
    let same_types = {
        let (tc, cc) = (columns(to, tomb).await?, columns(to, &q.table).await?);
        key.iter().all(|k| {
            let ty = |cs: &[ColumnDef]| cs.iter().find(|c| c.0.eq_ignore_ascii_case(k)).map(|c| (c.1.clone(), c.2.clone()));
            ty(&tc).is_some() && ty(&tc) == ty(&cc)
        })
    };
    let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
    if lower(&tk) != lower(&key) || !same_types {
        return Err(Error::Definition(format!(
            "{}: its tombstone table {tomb} has primary key ({}) but the table's key is ({}) (same names, types and \
             collations needed); fix the tombstone table (docs/migrations.md)",
            q.table,
            tk.join(", "),
            key.join(", ")
        )));
    }
    Ok(tomb.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstone_tables_follow_the_pattern_and_are_left_out() {
        let t = TableName::new("svc", "orders");
        assert_eq!(tombstone_table("{table}_tombstones", &t), TableName::new("svc", "orders_tombstones"));
        assert_eq!(tombstone_table("tomb.{schema}_{table}", &t), TableName::new("tomb", "svc_orders"));
        let all = vec![t.clone(), TableName::new("svc", "orders_tombstones")];
        assert_eq!(without_tombstone_tables(&all, Some("{table}_tombstones")), vec![t]);
        assert_eq!(without_tombstone_tables(&all, None).len(), 2);
    }
}
