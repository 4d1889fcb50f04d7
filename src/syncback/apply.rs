//! Applying the new server's row changes to the old primary's copy: each batch of source
//! transactions in one target transaction together with the new position, so a kill at any
//! point leaves the copy and the position consistent (nothing lost, nothing applied twice).
//!
//! Rows are written from the binary log's full images: an insert or the after image of an
//! update is a `REPLACE` of the whole row, a delete (or the old key of an update that changed
//! its key) is a `DELETE` by primary key; each is idempotent on its own too. Before a table's
//! first change is applied, the table map's column count and types are checked against the
//! target's columns; a mismatch stops sync-back without writing.
//!
//! These writes are application rows, which journals never hold: the unit of intent and
//! acknowledgement is the position row written in the same transaction (docs/syncback.md).
#![allow(clippy::disallowed_methods)] // sync-back's row writer: rows and its position, in one target transaction (docs/ARCHITECTURE.md)

use super::position::Position;
use super::stream::Change;
use crate::db::Server;
use crate::error::{Error, Result};
use crate::model::ident::{quote_ident, quote_str};
use crate::model::TableName;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use std::collections::BTreeMap;

/// The table that holds each service's sync-back position on the old primary.
pub const POSITION_TABLE: &str = "`privfence`.`syncback_position`";

/// The statements that create [`POSITION_TABLE`] (run through the journaling executor).
pub fn position_table_sql() -> Vec<String> {
    vec![
        "CREATE DATABASE IF NOT EXISTS `privfence`".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (service VARCHAR(64) NOT NULL PRIMARY KEY, file VARCHAR(255) NOT NULL, \
             pos BIGINT UNSIGNED NOT NULL, gtid TEXT NULL, transactions BIGINT UNSIGNED NOT NULL DEFAULT 0, \
             rows_applied BIGINT UNSIGNED NOT NULL DEFAULT 0, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
        ),
    ]
}

/// The first position row of a service (journaled by the caller; `INSERT IGNORE` keeps a
/// position already there).
pub fn position_insert_sql(service: &str, p: &Position) -> String {
    format!(
        "INSERT IGNORE INTO {POSITION_TABLE} (service, file, pos, gtid, updated_at) VALUES ({}, {}, {}, {}, NOW(6))",
        quote_str(service),
        quote_str(&p.file),
        p.pos,
        p.gtid.as_deref().map(quote_str).unwrap_or_else(|| "NULL".into())
    )
}

/// Reads the stored position of `service` (`None`: sync-back never started there).
pub async fn stored_position(target: &mut Server, service: &str) -> Result<Option<Position>> {
    let exists: Option<u64> = target
        .first(
            "looking for sync-back's position table",
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'privfence' AND TABLE_NAME = 'syncback_position'",
        )
        .await?;
    if exists.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT file, pos, gtid FROM {POSITION_TABLE} WHERE service = {}", quote_str(service));
    let row: Option<(String, u64, Option<String>)> = target.first("reading sync-back's position", &sql).await?;
    Ok(row.map(|(file, pos, gtid)| Position { file, pos, gtid }))
}

/// One target table: its columns and primary key, and the two statements that write it.
#[derive(Debug, Clone)]
pub struct TargetTable {
    pub name: TableName,
    /// (name, data type) in order.
    pub columns: Vec<(String, String)>,
    /// Indexes of the primary key's columns.
    pub key: Vec<usize>,
    replace_sql: String,
    delete_sql: String,
}

impl TargetTable {
    /// Reads the table on the target; refuses one without a primary key.
    pub async fn read(target: &mut Server, name: &TableName) -> Result<TargetTable> {
        let (s, t) = (quote_str(&name.schema), quote_str(&name.name));
        let columns: Vec<(String, String)> = target
            .rows_as(
                "reading the target table's columns",
                &format!(
                    "SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t} \
                     ORDER BY ORDINAL_POSITION"
                ),
            )
            .await?;
        if columns.is_empty() {
            return Err(Error::Session(format!("{name} does not exist on the old primary ({})", target.target)));
        }
        let pk: Vec<String> = target
            .rows_as(
                "reading the target table's primary key",
                &format!(
                    "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t} \
                     AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX"
                ),
            )
            .await?;
        if pk.is_empty() {
            return Err(Error::Session(format!("{name} has no primary key: sync-back applies changes by primary key")));
        }
        let key: Vec<usize> = pk.iter().filter_map(|k| columns.iter().position(|(c, _)| c == k)).collect();
        let list = columns.iter().map(|(c, _)| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let marks = vec!["?"; columns.len()].join(", ");
        let replace_sql = format!("REPLACE INTO {} ({list}) VALUES ({marks})", name.sql());
        let cond = key.iter().map(|&i| format!("{} <=> ?", quote_ident(&columns[i].0))).collect::<Vec<_>>().join(" AND ");
        let delete_sql = format!("DELETE FROM {} WHERE {cond}", name.sql());
        Ok(TargetTable { name: name.clone(), columns, key, replace_sql, delete_sql })
    }

    /// Refuses a change whose table map no longer matches this table's columns.
    pub fn check(&self, c: &Change) -> Result<()> {
        if c.types.len() != self.columns.len() {
            return Err(Error::Session(format!(
                "{} has {} column(s) on the new server but {} has {} on the old primary: sync-back stops without applying \
                 (change the old copy's definition to match, then start sync-back again)",
                c.table,
                c.types.len(),
                self.name,
                self.columns.len()
            )));
        }
        for (i, ((col, dt), ty)) in self.columns.iter().zip(&c.types).enumerate() {
            if let Some(ty) = ty {
                if !compatible(dt, *ty) {
                    return Err(Error::Session(format!(
                        "{}: column {} ({col}) is {dt} on the old primary but {ty:?} in the new server's binary log: sync-back stops \
                         without applying",
                        self.name,
                        i + 1
                    )));
                }
            }
        }
        Ok(())
    }

    fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.key.iter().map(|&i| row[i].clone()).collect()
    }

    /// `REPLACE` of `n` whole rows.
    fn replace_rows(&self, n: usize) -> String {
        let one = format!("({})", vec!["?"; self.columns.len()].join(", "));
        let head = self.replace_sql.split_once(" VALUES ").map(|x| x.0).unwrap_or_default();
        format!("{head} VALUES {}", vec![one; n].join(", "))
    }

    /// `DELETE` of `n` keys.
    fn delete_keys(&self, n: usize) -> String {
        let cond = self.delete_sql.split_once(" WHERE ").map(|x| x.1).unwrap_or_default();
        let head = self.delete_sql.split_once(" WHERE ").map(|x| x.0).unwrap_or_default();
        format!("{head} WHERE {}", vec![format!("({cond})"); n].join(" OR "))
    }
}

/// Rows per statement, at most.
const STATEMENT_ROWS: usize = 200;

/// The changes as operations: (table, replace?, values: the whole row, or the key).
fn ops(tables: &BTreeMap<TableName, TargetTable>, changes: &[Change]) -> Vec<(TableName, bool, Vec<Value>)> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let t = &tables[&c.table];
        if let Some(b) = &c.before {
            if c.after.as_ref().is_none_or(|a| t.key_of(a) != t.key_of(b)) {
                out.push((c.table.clone(), false, t.key_of(b)));
            }
        }
        if let Some(a) = &c.after {
            out.push((c.table.clone(), true, a.clone()));
        }
    }
    out
}

/// Whether a binary log column type can hold a target column's data type.
pub fn compatible(data_type: &str, ty: ColumnType) -> bool {
    use ColumnType::*;
    let ok: &[ColumnType] = match data_type {
        "tinyint" | "bool" | "boolean" => &[MYSQL_TYPE_TINY],
        "smallint" => &[MYSQL_TYPE_SHORT],
        "mediumint" => &[MYSQL_TYPE_INT24],
        "int" | "integer" => &[MYSQL_TYPE_LONG],
        "bigint" => &[MYSQL_TYPE_LONGLONG],
        "decimal" | "numeric" => &[MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_DECIMAL],
        "float" => &[MYSQL_TYPE_FLOAT],
        "double" | "real" => &[MYSQL_TYPE_DOUBLE],
        "varchar" | "varbinary" => &[MYSQL_TYPE_VARCHAR, MYSQL_TYPE_VAR_STRING],
        "char" | "binary" | "enum" | "set" => &[MYSQL_TYPE_STRING, MYSQL_TYPE_ENUM, MYSQL_TYPE_SET],
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            &[MYSQL_TYPE_BLOB, MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB]
        }
        "datetime" => &[MYSQL_TYPE_DATETIME, MYSQL_TYPE_DATETIME2],
        "timestamp" => &[MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_TIMESTAMP2],
        "time" => &[MYSQL_TYPE_TIME, MYSQL_TYPE_TIME2],
        "date" => &[MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE],
        "year" => &[MYSQL_TYPE_YEAR],
        "bit" => &[MYSQL_TYPE_BIT],
        // MariaDB stores JSON as LONGTEXT.
        "json" => &[MYSQL_TYPE_JSON, MYSQL_TYPE_BLOB],
        // Types this check does not know (geometry, vector, UUID...): the column count decides.
        _ => return true,
    };
    ok.contains(&ty)
}

/// The old primary's copy: one connection, the tables by their name on the new server.
pub struct Target {
    pub server: Server,
    pub service: String,
    /// New server's table → the old primary's copy of it.
    pub tables: BTreeMap<TableName, TargetTable>,
}

impl Target {
    /// Applies `changes` and stores `end` (and the counts) in one transaction.
    pub async fn apply(&mut self, changes: &[Change], txns: u64, end: &Position) -> Result<()> {
        for c in changes {
            let t = self.tables.get(&c.table).ok_or_else(|| Error::Session(format!("{}: not a table sync-back copies", c.table)))?;
            t.check(c)?;
        }
        self.server.session("starting sync-back's transaction", "START TRANSACTION").await?;
        let r = self.write(changes, txns, end).await;
        match r {
            Ok(()) => self.server.session("committing sync-back's transaction", "COMMIT").await,
            Err(e) => {
                let _ = self.server.session("rolling back sync-back's transaction", "ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn write(&mut self, changes: &[Change], txns: u64, end: &Position) -> Result<()> {
        let target = self.server.target.clone();
        let fail = |what: &str, e: mysql_async::Error| Error::Session(format!("{target}: {what}: {e}"));
        let ops = ops(&self.tables, changes);
        // Consecutive operations of one kind on one table go in one statement (in order, so
        // the last image of a key wins, as it did on the new server).
        let mut i = 0;
        while i < ops.len() {
            let (table, kind) = (&ops[i].0, ops[i].1);
            let mut j = i;
            while j < ops.len() && j - i < STATEMENT_ROWS && &ops[j].0 == table && ops[j].1 == kind {
                j += 1;
            }
            let t = &self.tables[table];
            let group: Vec<Value> = ops[i..j].iter().flat_map(|o| o.2.iter().cloned()).collect();
            let sql = if kind { t.replace_rows(j - i) } else { t.delete_keys(j - i) };
            self.server.execute_params(&sql, group).await.map_err(|e| fail(&format!("writing {}", t.name), e))?;
            i = j;
        }
        crate::journal::crash::point("syncback rows written");
        let sql = format!(
            "UPDATE {POSITION_TABLE} SET file = ?, pos = ?, gtid = ?, transactions = transactions + ?, rows_applied = rows_applied + ?, \
             updated_at = NOW(6) WHERE service = ?"
        );
        let params = vec![
            Value::from(end.file.clone()),
            Value::from(end.pos),
            end.gtid.clone().map(Value::from).unwrap_or(Value::NULL),
            Value::from(txns),
            Value::from(changes.len() as u64),
            Value::from(self.service.clone()),
        ];
        self.server.execute_params(&sql, params).await.map_err(|e| fail("storing the position", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert!(compatible("bigint", ColumnType::MYSQL_TYPE_LONGLONG));
        assert!(!compatible("int", ColumnType::MYSQL_TYPE_LONGLONG));
        assert!(compatible("varchar", ColumnType::MYSQL_TYPE_VARCHAR));
        assert!(compatible("geometry", ColumnType::MYSQL_TYPE_GEOMETRY));
    }

    #[test]
    fn grouped_statements() {
        let t = TargetTable {
            name: TableName::new("s", "t"),
            columns: vec![("id".into(), "int".into()), ("v".into(), "int".into())],
            key: vec![0],
            replace_sql: "REPLACE INTO `s`.`t` (`id`, `v`) VALUES (?, ?)".into(),
            delete_sql: "DELETE FROM `s`.`t` WHERE `id` <=> ?".into(),
        };
        assert_eq!(t.replace_rows(2), "REPLACE INTO `s`.`t` (`id`, `v`) VALUES (?, ?), (?, ?)");
        assert_eq!(t.delete_keys(2), "DELETE FROM `s`.`t` WHERE (`id` <=> ?) OR (`id` <=> ?)");
    }

    #[test]
    fn first_position() {
        let p = Position { file: "binlog.000002".into(), pos: 157, gtid: None };
        assert!(position_insert_sql("svc", &p).contains("('svc', 'binlog.000002', 157, NULL, NOW(6))"));
    }
}
