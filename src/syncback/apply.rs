//! Applying the new server's row changes to the old primary's copy: each batch of source
//! transactions in one target transaction together with the new position, so a kill at any
//! point leaves the copy and the position consistent (nothing lost, nothing applied twice).
//!
//! Rows are written from the binary log's full images, each exactly once (the position is in
//! the same transaction): an insert is a plain `INSERT` of the whole row, an update an
//! `UPDATE` of every column found by the before image's primary key, a delete a `DELETE` by
//! that key. Every statement's row count is checked (found rows, so an update to identical
//! values counts): a duplicate key on insert, or no row for an update or delete, means the
//! copy diverged from the new server; the transaction is rolled back and sync-back stops,
//! naming the table and the key. Never `REPLACE`: on a clash with a secondary unique key it
//! silently deletes another row (gh-ost #1633). Before a table's first change is applied, the
//! table map's column count and types are checked against the target's columns; a mismatch
//! stops sync-back without writing.
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

/// One target table: its columns and primary key, and the statements that write it.
#[derive(Debug, Clone)]
pub struct TargetTable {
    pub name: TableName,
    /// (name, data type) in order.
    pub columns: Vec<(String, String)>,
    /// Indexes of the primary key's columns.
    pub key: Vec<usize>,
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
            return Err(Error::Definition(format!("{name} does not exist on the old primary ({})", target.target)));
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
            return Err(Error::Definition(format!("{name} has no primary key: sync-back applies changes by primary key")));
        }
        let key: Vec<usize> = pk.iter().filter_map(|k| columns.iter().position(|(c, _)| c == k)).collect();
        Ok(TargetTable { name: name.clone(), columns, key })
    }

    /// Refuses a change whose table map no longer matches this table's columns.
    pub fn check(&self, c: &Change) -> Result<()> {
        if c.types.len() != self.columns.len() {
            return Err(Error::Definition(format!(
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
                    return Err(Error::Definition(format!(
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

    /// `key_col <=> ? AND ...`: one key.
    fn key_cond(&self) -> String {
        self.key.iter().map(|&i| format!("{} <=> ?", quote_ident(&self.columns[i].0))).collect::<Vec<_>>().join(" AND ")
    }

    /// A plain `INSERT` of `n` whole rows (never `REPLACE`: a row already there is a
    /// divergence, which must stop sync-back, not be overwritten; gh-ost #1633).
    fn insert_rows(&self, n: usize) -> String {
        let list = self.columns.iter().map(|(c, _)| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let one = format!("({})", vec!["?"; self.columns.len()].join(", "));
        format!("INSERT INTO {} ({list}) VALUES {}", self.name.sql(), vec![one; n].join(", "))
    }

    /// `UPDATE` of one row to its whole after image, found by its before image's key.
    fn update_row(&self) -> String {
        let set = self.columns.iter().map(|(c, _)| format!("{} = ?", quote_ident(c))).collect::<Vec<_>>().join(", ");
        format!("UPDATE {} SET {set} WHERE {}", self.name.sql(), self.key_cond())
    }

    /// `DELETE` of `n` keys.
    fn delete_keys(&self, n: usize) -> String {
        format!("DELETE FROM {} WHERE {}", self.name.sql(), vec![format!("({})", self.key_cond()); n].join(" OR "))
    }

    /// `(a, b) = (1, 'x')`: the key's columns and values, for a divergence message (the key
    /// only, never other columns of the row).
    fn describe_key(&self, key: &[Value]) -> String {
        let cols = self.key.iter().map(|&i| self.columns[i].0.clone()).collect::<Vec<_>>().join(", ");
        let vals = key.iter().map(|v| v.as_sql(false)).collect::<Vec<_>>().join(", ");
        format!("({cols}) = ({vals})")
    }
}

/// Rows per statement, at most.
const STATEMENT_ROWS: usize = 200;

/// What one change does to the copy.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// The whole after image; the row must not exist.
    Insert,
    /// Key of the before image, then the whole after image; exactly one row must match.
    Update,
    /// The before image's key; exactly one row must go.
    Delete,
}

/// One operation: its table, its kind and its parameters.
#[derive(Debug, Clone)]
struct Op {
    table: TableName,
    kind: Kind,
    /// Insert: the row; update: the after image then the before key; delete: the key.
    params: Vec<Value>,
    /// The key the operation is about (the before image's for an update), for messages.
    key: Vec<Value>,
}

/// The changes as operations, in order.
fn ops(tables: &BTreeMap<TableName, TargetTable>, changes: &[Change]) -> Vec<Op> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let t = &tables[&c.table];
        let table = c.table.clone();
        match (&c.before, &c.after) {
            (None, Some(a)) => out.push(Op { table, kind: Kind::Insert, params: a.clone(), key: t.key_of(a) }),
            (Some(b), Some(a)) => {
                let key = t.key_of(b);
                let params = a.iter().cloned().chain(key.iter().cloned()).collect();
                out.push(Op { table, kind: Kind::Update, params, key })
            }
            (Some(b), None) => out.push(Op { table, kind: Kind::Delete, params: t.key_of(b), key: t.key_of(b) }),
            (None, None) => {}
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
    /// A [`Server::connect_row_writer`] connection: every statement's row count is checked.
    pub server: Server,
    pub service: String,
    /// New server's table → the old primary's copy of it.
    pub tables: BTreeMap<TableName, TargetTable>,
}

/// Why a batch could not be applied.
enum Failed {
    /// The copy is not what the new server's history says it is.
    Diverged(String),
    /// Anything else (connection lost, ...).
    Other(Error),
}

impl Target {
    /// Applies `changes` and stores `end` (and the counts) in one transaction. A change that
    /// does not find the copy as the new server had it (an insert whose key is there, an
    /// update or delete of a row that is not) rolls the whole transaction back and stops
    /// sync-back, naming the table and the key.
    pub async fn apply(&mut self, changes: &[Change], txns: u64, end: &Position) -> Result<()> {
        for c in changes {
            let t = self.tables.get(&c.table).ok_or_else(|| Error::Unexpected(format!("{}: not a table sync-back copies", c.table)))?;
            t.check(c)?;
        }
        let ops = ops(&self.tables, changes);
        // Grouped statements first; when one of them finds the copy diverged, the batch is
        // rolled back and run again one row per statement, which names the row (and, should
        // the grouped check have been wrong, applies the batch).
        let mut diverged = None;
        for grouped in [true, false] {
            self.server.session("starting sync-back's transaction", "START TRANSACTION").await?;
            match self.write(&ops, grouped, changes.len() as u64, txns, end).await {
                Ok(()) => return self.server.session("committing sync-back's transaction", "COMMIT").await,
                Err(f) => {
                    let _ = self.server.session("rolling back sync-back's transaction", "ROLLBACK").await;
                    match f {
                        Failed::Other(e) => return Err(e),
                        Failed::Diverged(m) => diverged = Some(m),
                    }
                }
            }
        }
        Err(Error::Diverged(format!(
            "sync-back stopped: the old copy has diverged from the new server: {}. Nothing of this batch was applied (its \
             transaction was rolled back) and sync-back's position did not move. Something other than sync-back changed the \
             copy: verify it against the new server (privfence verify), then resync it (copy the tables again and start \
             sync-back from a fresh position) before starting sync-back again",
            diverged.unwrap_or_default()
        )))
    }

    async fn write(&mut self, ops: &[Op], grouped: bool, rows: u64, txns: u64, end: &Position) -> std::result::Result<(), Failed> {
        let target = self.server.target.clone();
        let fail = |what: &str, e: mysql_async::Error| Failed::Other(Error::SyncBack(format!("{target}: {what}: {e}")));
        let mut i = 0;
        while i < ops.len() {
            // Consecutive inserts (or deletes) of one table go in one statement; an update is
            // its own statement (its key decides which row). Order is kept.
            let (table, kind) = (&ops[i].table, &ops[i].kind);
            let mut j = i + 1;
            if grouped && *kind != Kind::Update {
                while j < ops.len() && j - i < STATEMENT_ROWS && &ops[j].table == table && &ops[j].kind == kind {
                    j += 1;
                }
            }
            let t = &self.tables[table];
            let group: Vec<Value> = ops[i..j].iter().flat_map(|o| o.params.iter().cloned()).collect();
            let sql = match kind {
                Kind::Insert => t.insert_rows(j - i),
                Kind::Update => t.update_row(),
                Kind::Delete => t.delete_keys(j - i),
            };
            let n = (j - i) as u64;
            let what = match kind {
                Kind::Insert => "an insert found a row with the same key (primary or unique) already there",
                Kind::Update => "an update found no row with its key",
                Kind::Delete => "a delete found no row with its key",
            };
            let diverged = || {
                let key = if j - i == 1 { format!(" {}", t.describe_key(&ops[i].key)) } else { format!(" ({n} rows)") };
                Failed::Diverged(format!("{} (copy of {table}): {what}; key{key}", t.name))
            };
            match self.server.execute_params_affected(&sql, group).await {
                Ok(got) if got == n => {}
                Ok(_) => return Err(diverged()),
                Err(mysql_async::Error::Server(e)) if e.code == 1062 => return Err(diverged()),
                Err(e) => return Err(fail(&format!("writing {}", t.name), e)),
            }
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
            Value::from(rows),
            Value::from(self.service.clone()),
        ];
        match self.server.execute_params_affected(&sql, params).await {
            Ok(1) => Ok(()),
            Ok(n) => Err(Failed::Other(Error::Diverged(format!(
                "{target}: sync-back's position row of {} matched {n} rows instead of 1: nothing of this batch was applied",
                self.service
            )))),
            Err(e) => Err(fail("storing the position", e)),
        }
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

    fn table() -> TargetTable {
        TargetTable { name: TableName::new("s", "t"), columns: vec![("id".into(), "int".into()), ("v".into(), "int".into())], key: vec![0] }
    }

    #[test]
    fn statements() {
        let t = table();
        assert_eq!(t.insert_rows(2), "INSERT INTO `s`.`t` (`id`, `v`) VALUES (?, ?), (?, ?)");
        assert_eq!(t.update_row(), "UPDATE `s`.`t` SET `id` = ?, `v` = ? WHERE `id` <=> ?");
        assert_eq!(t.delete_keys(2), "DELETE FROM `s`.`t` WHERE (`id` <=> ?) OR (`id` <=> ?)");
        assert_eq!(t.describe_key(&[Value::Int(7)]), "(id) = (7)");
    }

    #[test]
    fn changes_become_inserts_updates_deletes() {
        let mut tables = BTreeMap::new();
        tables.insert(TableName::new("s", "t"), table());
        let row = |id: i64, v: i64| Some(vec![Value::Int(id), Value::Int(v)]);
        let c = |before, after| Change { table: TableName::new("s", "t"), before, after, types: vec![None, None] };
        let got = ops(&tables, &[c(None, row(1, 1)), c(row(1, 1), row(2, 5)), c(row(2, 5), None)]);
        let kinds: Vec<&Kind> = got.iter().map(|o| &o.kind).collect();
        assert_eq!(kinds, vec![&Kind::Insert, &Kind::Update, &Kind::Delete]);
        // The update: the whole after image, then the before image's key (a key change too).
        assert_eq!(got[1].params, vec![Value::Int(2), Value::Int(5), Value::Int(1)]);
        assert_eq!(got[2].params, vec![Value::Int(2)]);
    }

    #[test]
    fn first_position() {
        let p = Position { file: "binlog.000002".into(), pos: 157, gtid: None };
        assert!(position_insert_sql("svc", &p).contains("('svc', 'binlog.000002', 157, NULL, NOW(6))"));
    }
}
