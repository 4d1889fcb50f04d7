//! One table's chunk queries on two servers: its definition read and checked on both, the
//! chunking key, the boundary and sum queries (see the parent module for the how).

use super::{bound, choose_key, row_hash, ChunkSum, Column, IndexPart, KeyColumn, KeyKind, EMPTY_SHA256};
use crate::db::server::opt_text;
use crate::db::Server;
use crate::error::{Error, Result};
use crate::model::ident::{quote_ident, quote_str};
use crate::model::TableName;

/// One table's chunk queries, rendered once.
pub struct TableQueries {
    pub table: TableName,
    /// The chunking index (`PRIMARY`, or a unique index on NOT NULL columns).
    pub index: String,
    pub(crate) key: Vec<KeyColumn>,
    /// Every column, in order (a backfill copies them all).
    pub(crate) columns: Vec<Column>,
    /// `SELECT COUNT(*), BIT_XOR(hash) FROM t FORCE INDEX (i) WHERE `
    sum_head: String,
}

impl TableQueries {
    /// Reads the table on both servers: same columns, a usable key (chosen on `primary`, the side
    /// chunks are cut on). `label` names the other side in messages (`replica`, `target`).
    pub async fn read(primary: &mut Server, other: &mut Server, label: &str, table: &TableName) -> Result<TableQueries> {
        let (s, t) = (quote_str(&table.schema), quote_str(&table.name));
        let kind: Option<String> = primary
            .first(
                "reading the table's type",
                &format!("SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t}"),
            )
            .await?;
        match kind.as_deref() {
            None => return Err(Error::UnknownTable(table.to_string())),
            Some("BASE TABLE" | "SYSTEM VERSIONED") => {}
            Some(other) => return Err(Error::Definition(format!("{table} is a {other}, not a table; only tables can be compared"))),
        }
        let cols_sql = format!(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t} ORDER BY ORDINAL_POSITION"
        );
        let read = |rows: Vec<(String, String, String, String)>| -> Vec<Column> {
            rows.into_iter()
                .map(|(name, dt, ct, n)| Column {
                    name,
                    data_type: dt.to_ascii_lowercase(),
                    column_type: ct.to_ascii_lowercase(),
                    nullable: n == "YES",
                })
                .collect()
        };
        let columns = read(primary.rows_as("reading the table's columns", &cols_sql).await?);
        let on_replica = read(other.rows_as("reading the table's columns", &cols_sql).await?);
        if on_replica.is_empty() {
            return Err(Error::Definition(format!("{table} does not exist on the {label} {}", other.target)));
        }
        if on_replica != columns {
            return Err(Error::Definition(format!(
                "{table} has different columns on the {label} {} than on the {}; its data cannot be compared \
                 (fix the schema drift first)",
                other.target,
                if label == "replica" { "primary" } else { "source" }
            )));
        }
        let rows = primary
            .rows(
                "reading the table's unique keys",
                &format!(
                    "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
                     WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {t} AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX"
                ),
            )
            .await?;
        let parts: Vec<IndexPart> = rows
            .iter()
            .map(|r| IndexPart { index: opt_text(r, 0).unwrap_or_default(), column: opt_text(r, 1), prefix: opt_text(r, 2).is_some() })
            .collect();
        let (index, key) = choose_key(table, &columns, &parts)?;
        let sum_head =
            format!("SELECT COUNT(*), BIT_XOR({}) FROM {} FORCE INDEX ({}) WHERE ", row_hash(&columns), table.sql(), quote_ident(&index));
        Ok(TableQueries { table: table.clone(), index, key, columns, sum_head })
    }

    pub fn range(&self, lower: Option<&[String]>, upper: Option<&[String]>) -> Result<String> {
        let mut conds = Vec::new();
        if let Some(l) = lower {
            conds.push(bound(&self.table, &self.key, l, true)?);
        }
        if let Some(u) = upper {
            conds.push(bound(&self.table, &self.key, u, false)?);
        }
        Ok(if conds.is_empty() { "TRUE".into() } else { conds.join(" AND ") })
    }

    /// The key columns as `SELECT` expressions, read as text (binary ones in hex), qualified
    /// with `of` (the table itself, or its tombstone table, which has the same key columns).
    pub fn key_select(&self, of: &TableName) -> Vec<String> {
        self.key
            .iter()
            .map(|k| {
                let c = format!("{}.{}", of.sql(), quote_ident(&k.name));
                match k.kind {
                    KeyKind::Binary => format!("HEX({c})"),
                    _ => format!("CAST({c} AS CHAR)"),
                }
            })
            .collect()
    }

    /// The key column names.
    pub fn key_names(&self) -> Vec<String> {
        self.key.iter().map(|k| k.name.clone()).collect()
    }

    /// The keys of `of` (this table, or its tombstone table) in `(lower, upper]`, in key order.
    /// `suffix` is appended (`FOR UPDATE` inside a backfill's transaction).
    pub async fn keys_in(
        &self,
        server: &mut Server,
        of: &TableName,
        lower: Option<&[String]>,
        upper: Option<&[String]>,
        suffix: &str,
    ) -> Result<Vec<Vec<String>>> {
        let order: Vec<String> = self.key.iter().map(|k| quote_ident(&k.name)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {}{suffix}",
            self.key_select(of).join(", "),
            of.sql(),
            self.range(lower, upper)?,
            order.join(", ")
        );
        let rows = server.rows("reading keys", &sql).await?;
        Ok(rows.iter().map(|r| (0..self.key.len()).map(|i| opt_text(r, i).unwrap_or_default()).collect()).collect())
    }

    /// Each row's key and hash in `(lower, upper]` (with `extra`), for narrowing a differing
    /// chunk down to keys: reads keys and hashes only, never other row data.
    pub async fn row_hashes(
        &self,
        server: &mut Server,
        lower: Option<&[String]>,
        upper: Option<&[String]>,
        extra: &str,
    ) -> Result<Vec<(Vec<String>, String)>> {
        let sql = format!(
            "SELECT {}, {} FROM {} FORCE INDEX ({}) WHERE {}{extra}",
            self.key_select(&self.table).join(", "),
            row_hash(&self.columns),
            self.table.sql(),
            quote_ident(&self.index),
            self.range(lower, upper)?
        );
        let rows = server.rows("reading row hashes", &sql).await?;
        let n = self.key.len();
        Ok(rows
            .iter()
            .map(|r| ((0..n).map(|i| opt_text(r, i).unwrap_or_default()).collect(), opt_text(r, n).unwrap_or_default()))
            .collect())
    }

    /// `key = k` for one key (checked literals), to list keys in a predicate.
    pub fn key_equals(&self, of: &TableName, values: &[String]) -> Result<String> {
        if values.len() != self.key.len() {
            return Err(Error::Unexpected(format!(
                "{}: a key has {} values, the key {} columns",
                self.table,
                values.len(),
                self.key.len()
            )));
        }
        let mut terms = Vec::new();
        for (k, v) in self.key.iter().zip(values) {
            let lit = super::literal(k.kind, v).ok_or_else(|| Error::Unexpected(format!("{}: bad key value {v:?}", self.table)))?;
            terms.push(format!("{}.{} = {lit}", of.sql(), quote_ident(&k.name)));
        }
        Ok(format!("({})", terms.join(" AND ")))
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The key of one row after `lower`, in key order: the `skip`-th (0-based), or the last.
    pub async fn key_after(&self, server: &mut Server, lower: Option<&[String]>, skip: Option<u64>) -> Result<Option<Vec<String>>> {
        let select: Vec<String> = self
            .key
            .iter()
            .map(|k| if k.kind == KeyKind::Binary { format!("HEX({})", quote_ident(&k.name)) } else { quote_ident(&k.name) })
            .collect();
        let dir = if skip.is_some() { "" } else { " DESC" };
        let order: Vec<String> = self.key.iter().map(|k| format!("{}{dir}", quote_ident(&k.name))).collect();
        let sql = format!(
            "SELECT {} FROM {} FORCE INDEX ({}) WHERE {} ORDER BY {} LIMIT 1 OFFSET {}",
            select.join(", "),
            self.table.sql(),
            quote_ident(&self.index),
            self.range(lower, None)?,
            order.join(", "),
            skip.unwrap_or(0)
        );
        let rows = server.rows("finding a chunk boundary", &sql).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let values: Option<Vec<String>> = (0..self.key.len()).map(|i| opt_text(row, i)).collect();
        values.map(Some).ok_or_else(|| Error::Unexpected(format!("{}: a key column read as NULL", self.table)))
    }

    pub async fn sum(&self, server: &mut Server, lower: Option<&[String]>, upper: Option<&[String]>) -> Result<ChunkSum> {
        self.sum_where(server, lower, upper, "").await
    }

    /// [`TableQueries::sum`] with `extra` (` AND ...`, or empty) appended to the range predicate.
    pub async fn sum_where(
        &self,
        server: &mut Server,
        lower: Option<&[String]>,
        upper: Option<&[String]>,
        extra: &str,
    ) -> Result<ChunkSum> {
        let sql = format!("{}{}{extra}", self.sum_head, self.range(lower, upper)?);
        let (rows, xor): (u64, u64) = server.first("summing a chunk", &sql).await?.unwrap_or((0, 0));
        Ok(ChunkSum {
            table: self.table.clone(),
            lower: lower.map(<[String]>::to_vec),
            upper: upper.map(<[String]>::to_vec),
            rows,
            checksum: format!("{xor:016x}"),
        })
    }
}

/// Prepares a comparison's private connection: `TIMESTAMP` text in UTC, and a working `SHA2()`.
pub async fn open_session(s: &mut Server) -> Result<()> {
    // Session state of this private connection only: `TIMESTAMP` text in UTC on both sides.
    s.session("setting the session time zone", "SET SESSION time_zone = '+00:00'").await?;
    let h: Option<String> = s.first("checking SHA2()", "SELECT SHA2('', 256)").await?;
    if h.as_deref() != Some(EMPTY_SHA256) {
        return Err(Error::Setting {
            what: format!("{}: SHA2() does not work here ({h:?})", s.target),
            todo: "tables cannot be compared on this server (a build without SHA2, or FIPS mode)",
        });
    }
    Ok(())
}
