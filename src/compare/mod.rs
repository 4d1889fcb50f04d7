//! Chunked, order-independent comparison of one table on two servers: the parts shared by the
//! promotion's comparison ([`crate::promote::compare`]) and `verify`/`backfill` ([`crate::verify`]).
//!
//! Both walk a table's key in contiguous, half-open chunks `(lower, upper]` and read `COUNT(*)`
//! and a checksum of every chunk on both servers with the same range predicate.
//!
//!
//! # The checksum ([`ALGORITHM`])
//!
//! Per row, `SHA2(CONCAT_WS('#', ...), 256)` over every column: numbers and temporal values as
//! their text (no `#` in it), every other value as `LENGTH(c), CAST(c AS BINARY)` (length-prefixed
//! bytes: `('a#', 'b')` and `('a', '#b')` differ), then one `ISNULL` flag per nullable column
//! (`NULL` and `''` differ; a NOT NULL column's flag would be a constant, and both sides'
//! definitions, nullability included, are checked equal before any sum is read). The first 64
//! bits of each row hash are XORed over the chunk (`BIT_XOR`, order-independent). Why not
//! `BIT_XOR(CRC32(...))` (pt-table-checksum's): CRC32 is affine over GF(2), so the XOR of
//! several rows' CRCs does not change when equal-length values swap between rows (the live
//! tests show it; on a cross-product table it is 0). MD5 and SHA1 are gone in MySQL 9.7; SHA2
//! exists on both flavours. 64 bits, not 128: a second lane costs a second conversion per row
//! for a miss chance already 2^-64 per differing chunk. Casting to `BINARY` sidesteps collation
//! mixing errors in `CONCAT_WS` and hashes the stored bytes, not collated text (Vitess #7296),
//! and the comparison sessions use `time_zone = '+00:00'` so `TIMESTAMP` text does not depend
//! on a server's zone. The same data gives the same sum on MariaDB and MySQL for every type but
//! `JSON` (MySQL normalises it).
//!
//! Where the time goes (1,000,000 rows of the benchmark's table, both flavours, 2026-12-06):
//! not in `SHA2` itself (hashing the encoded row adds 5 to 15 % to building it) but in building
//! the row's text (`CONCAT_WS` and each value's conversion: on MySQL 2 to 3 times the scan) and
//! in reading 16 hex digits back as a number (`CONV`, 20 to 40 % of the rest). `v2` left out
//! the constant flags of NOT NULL columns (`v1` had one per column): 20 to 30 % less per row.
//! `CRC32(SHA2(...))` would save the `CONV` but keep only 32 bits.
//!
//! # Range predicates
//!
//! Both servers scan the whole index for a row constructor `(a, b) > (x, y)` (no range access:
//! 85,448 index reads instead of 999 for one 1000-row chunk of a 100k-row table, both flavours),
//! so bounds are written expanded: `a >= x AND (a > x OR (a = x AND b > y))`. Numbers are written
//! bare (exact without relying on the server converting a quoted constant to the column's type;
//! keys above 2^53 are tested), binary keys as `X'..'` (their values are stored in hex),
//! everything else quoted and compared in the column's collation, as `ORDER BY` sorts it.

pub mod table;

use crate::error::{Error, Result};
use crate::model::ident::{quote_ident, quote_str};
use crate::model::TableName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use table::{open_session, TableQueries};

/// Names the checksum; stored with a [`Comparison`] so a delta never compares sums made another way.
pub const ALGORITHM: &str = "sha256-xor64/v2";
/// `SHA2('', 256)`: checked on both servers before trusting their sums.
pub(crate) const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Row count and checksum of one chunk on one server. Holds key values at the chunk's bounds,
/// never other row data (the journal stores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSum {
    pub table: TableName,
    /// Exclusive lower bound: the key of the previous chunk's last row; `None` from the start.
    /// Values as the server prints them, binary key columns in hex.
    pub lower: Option<Vec<String>>,
    /// Inclusive upper bound; `None` to the end of the table (a delta's last chunk only).
    pub upper: Option<Vec<String>>,
    pub rows: u64,
    /// 16 hex digits ([`ALGORITHM`]).
    pub checksum: String,
}

impl ChunkSum {
    pub fn matches(&self, other: &ChunkSum) -> bool {
        self.rows == other.rows && self.checksum == other.checksum
    }

    /// `` `s`.`t` (1, 1000] `` for messages.
    pub fn describe(&self) -> String {
        let b = |v: &Option<Vec<String>>, open: &str| v.as_ref().map_or(open.to_string(), |v| v.join(", "));
        format!("{} ({}, {}]", self.table, b(&self.lower, "start"), b(&self.upper, "end"))
    }
}

/// How a key column's bound values are read and written back into SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Integers, DECIMAL, YEAR: written bare, checked to be a plain decimal number.
    Number,
    /// Binary strings: read with `HEX()`, written as `X'..'`.
    Binary,
    /// Character strings and temporal values: quoted, compared in the column's collation.
    Text,
}

pub(crate) fn key_kind(data_type: &str) -> Option<KeyKind> {
    Some(match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "numeric" | "year" => KeyKind::Number,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => KeyKind::Binary,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "date" | "datetime" | "timestamp" | "time" | "inet4"
        | "inet6" | "uuid" => KeyKind::Text,
        // FLOAT/DOUBLE text does not round-trip exactly; ENUM/SET sort by number but compare as
        // strings; BIT compares as a number: chunks could overlap or skip rows.
        _ => return None,
    })
}

/// Types whose text has a fixed vocabulary without `#`: no length prefix needed.
const PLAIN_TEXT: &str =
    "tinyint smallint mediumint int integer bigint decimal numeric float double real date datetime timestamp time year";

/// A column as `information_schema.COLUMNS` describes it; the whole list must be equal on both
/// servers (`column_type` catches a changed length, precision or signedness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) data_type: String,
    pub(crate) column_type: String,
    pub(crate) nullable: bool,
}

/// One column of a unique index, from `information_schema.STATISTICS`.
#[derive(Debug, Clone)]
pub(crate) struct IndexPart {
    pub(crate) index: String,
    /// `None` for a functional key part (MySQL).
    pub(crate) column: Option<String>,
    pub(crate) prefix: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyColumn {
    pub(crate) name: String,
    pub(crate) kind: KeyKind,
}

/// Picks the chunking key: `PRIMARY`, else the unique index on NOT NULL columns with the fewest
/// columns. Refuses a table with neither, or whose keys have types that cannot bound a range.
pub(crate) fn choose_key(table: &TableName, columns: &[Column], parts: &[IndexPart]) -> Result<(String, Vec<KeyColumn>)> {
    let mut indexes: BTreeMap<&str, Vec<&IndexPart>> = BTreeMap::new();
    for p in parts {
        indexes.entry(&p.index).or_default().push(p);
    }
    let mut usable = Vec::new();
    let mut unsupported = Vec::new();
    for (name, parts) in &indexes {
        let cols: Option<Vec<&Column>> = parts
            .iter()
            .map(|p| {
                let c = columns.iter().find(|c| p.column.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&c.name)))?;
                (!p.prefix && !c.nullable).then_some(c)
            })
            .collect();
        let Some(cols) = cols else { continue };
        let key: Option<Vec<KeyColumn>> =
            cols.iter().map(|c| key_kind(&c.data_type).map(|kind| KeyColumn { name: c.name.clone(), kind })).collect();
        match key {
            Some(key) => usable.push((*name != "PRIMARY", key.len(), name.to_string(), key)),
            None => unsupported
                .extend(cols.iter().filter(|c| key_kind(&c.data_type).is_none()).map(|c| format!("{} ({})", c.name, c.data_type))),
        }
    }
    usable.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    if let Some((_, _, name, key)) = usable.into_iter().next() {
        return Ok((name, key));
    }
    if !unsupported.is_empty() {
        return Err(Error::Definition(format!(
            "{table}: its keys use column types that cannot bound a chunk exactly: {}; give it a primary key on integer, \
             decimal, string or temporal columns, or leave it out of the comparison",
            unsupported.join(", ")
        )));
    }
    Err(Error::Definition(format!(
        "{table} has no primary key and no unique key on NOT NULL columns, so its rows cannot be matched between the \
         servers and it cannot be compared in chunks; add a primary key (row-based replication needs one anyway) \
         or leave the table out of the service"
    )))
}

/// A bound value as an SQL literal, checked so a journaled value cannot inject SQL.
pub(crate) fn literal(kind: KeyKind, value: &str) -> Option<String> {
    match kind {
        KeyKind::Number => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
            let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (ok(int) && ok(frac)).then(|| value.to_string())
        }
        KeyKind::Binary => (value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("X'{value}'")),
        KeyKind::Text => Some(quote_str(value)),
    }
}

/// `key > values` (`lower`) or `key <= values`, expanded so both servers use a range scan.
pub(crate) fn bound(table: &TableName, key: &[KeyColumn], values: &[String], lower: bool) -> Result<String> {
    if values.len() != key.len() {
        return Err(Error::Definition(format!(
            "{table}: a chunk bound has {} values but the key has {} columns; the table changed since the comparison, compare it again",
            values.len(),
            key.len()
        )));
    }
    let mut lits = Vec::with_capacity(key.len());
    for (k, v) in key.iter().zip(values) {
        lits.push(
            literal(k.kind, v).ok_or_else(|| Error::Unexpected(format!("{table}: bad chunk bound {v:?} for key column {}", k.name)))?,
        );
    }
    let q: Vec<String> = key.iter().map(|k| quote_ident(&k.name)).collect();
    let (strict, last) = if lower { (">", ">") } else { ("<", "<=") };
    let terms: Vec<String> = (0..key.len())
        .map(|i| {
            let mut t: Vec<String> = (0..i).map(|j| format!("{} = {}", q[j], lits[j])).collect();
            t.push(format!("{} {} {}", q[i], if i + 1 == key.len() { last } else { strict }, lits[i]));
            t.join(" AND ")
        })
        .collect();
    if key.len() == 1 {
        return Ok(terms.into_iter().next().unwrap_or_default());
    }
    let lead = format!("{} {}= {}", q[0], if lower { ">" } else { "<" }, lits[0]);
    Ok(format!("{lead} AND ({})", terms.iter().map(|t| format!("({t})")).collect::<Vec<_>>().join(" OR ")))
}

/// The per-row hash expression over all columns ([`ALGORITHM`]).
pub(crate) fn row_hash(columns: &[Column]) -> String {
    let mut parts = Vec::new();
    for c in columns {
        let q = quote_ident(&c.name);
        if PLAIN_TEXT.split(' ').any(|t| t == c.data_type) {
            parts.push(q);
        } else {
            parts.push(format!("LENGTH({q})"));
            parts.push(format!("CAST({q} AS BINARY)"));
        }
    }
    // A NOT NULL column's flag would always be 0: both servers' definitions are checked equal
    // (nullability included) before any sum is read, so only nullable columns need one.
    let flags: Vec<String> = columns.iter().filter(|c| c.nullable).map(|c| format!("ISNULL({})", quote_ident(&c.name))).collect();
    if !flags.is_empty() {
        parts.push(format!("CONCAT({})", flags.join(", ")));
    }
    format!("CAST(CONV(LEFT(SHA2(CONCAT_WS('#', {}), 256), 16), 16, 10) AS UNSIGNED)", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str, nullable: bool) -> Column {
        Column { name: name.into(), data_type: data_type.into(), column_type: data_type.into(), nullable }
    }

    fn part(index: &str, column: &str) -> IndexPart {
        IndexPart { index: index.into(), column: Some(column.into()), prefix: false }
    }

    fn t() -> TableName {
        TableName::new("s", "t")
    }

    #[test]
    fn the_primary_key_wins_then_the_narrowest_unique_not_null_key() {
        let cols = [col("a", "int", false), col("b", "varchar", false), col("c", "int", true), col("d", "bigint", false)];
        let parts = [part("PRIMARY", "a"), part("PRIMARY", "b"), part("u_d", "d")];
        assert_eq!(choose_key(&t(), &cols, &parts).unwrap().0, "PRIMARY");
        let (name, key) = choose_key(&t(), &cols, &parts[2..]).unwrap();
        assert_eq!((name.as_str(), key), ("u_d", vec![KeyColumn { name: "d".into(), kind: KeyKind::Number }]));
        // A unique key on a nullable column, a prefix or a functional part does not identify rows.
        let err = choose_key(&t(), &cols, &[part("u_c", "c")]).unwrap_err().to_string();
        assert!(err.contains("no primary key and no unique key on NOT NULL columns"), "{err}");
        let prefix = IndexPart { prefix: true, ..part("PRIMARY", "b") };
        assert!(choose_key(&t(), &cols, &[prefix]).is_err());
        let functional = IndexPart { column: None, ..part("f", "a") };
        assert!(choose_key(&t(), &cols, &[functional]).is_err());
        let err = choose_key(&t(), &[col("x", "double", false)], &[part("PRIMARY", "x")]).unwrap_err().to_string();
        assert!(err.contains("x (double)"), "{err}");
    }

    #[test]
    fn bounds_are_expanded_and_literals_checked() {
        let key = vec![KeyColumn { name: "a`b".into(), kind: KeyKind::Number }, KeyColumn { name: "c d".into(), kind: KeyKind::Text }];
        let v = vec!["-12.5".to_string(), "it's".to_string()];
        assert_eq!(bound(&t(), &key, &v, true).unwrap(), "`a``b` >= -12.5 AND ((`a``b` > -12.5) OR (`a``b` = -12.5 AND `c d` > 'it\\'s'))");
        assert_eq!(
            bound(&t(), &key, &v, false).unwrap(),
            "`a``b` <= -12.5 AND ((`a``b` < -12.5) OR (`a``b` = -12.5 AND `c d` <= 'it\\'s'))"
        );
        let one = &key[..1];
        assert_eq!(bound(&t(), one, &v[..1], true).unwrap(), "`a``b` > -12.5");
        for bad in ["1 OR 1=1", "", "1.", "0x10", "1e5"] {
            assert!(bound(&t(), one, &[bad.to_string()], true).is_err(), "{bad}");
        }
        assert!(bound(&t(), one, &v, true).is_err(), "arity is checked");
        let bin = [KeyColumn { name: "k".into(), kind: KeyKind::Binary }];
        assert_eq!(bound(&t(), &bin, &["00FF".into()], true).unwrap(), "`k` > X'00FF'");
        assert_eq!(bound(&t(), &bin, &["".into()], false).unwrap(), "`k` <= X''");
        assert!(bound(&t(), &bin, &["0'".into()], true).is_err());
    }

    #[test]
    fn the_row_hash_prefixes_lengths_of_strings_and_flags_every_column() {
        let h = row_hash(&[col("id", "int", false), col("n`x", "varchar", true), col("d", "datetime", true)]);
        assert_eq!(
            h,
            "CAST(CONV(LEFT(SHA2(CONCAT_WS('#', `id`, LENGTH(`n``x`), CAST(`n``x` AS BINARY), `d`, \
             CONCAT(ISNULL(`n``x`), ISNULL(`d`))), 256), 16), 16, 10) AS UNSIGNED)"
        );
        // No nullable column, no flags.
        assert_eq!(
            row_hash(&[col("id", "int", false), col("b", "blob", false)]),
            "CAST(CONV(LEFT(SHA2(CONCAT_WS('#', `id`, LENGTH(`b`), CAST(`b` AS BINARY)), 256), 16), 16, 10) AS UNSIGNED)"
        );
    }

    #[test]
    fn chunk_sums_round_trip_through_json() {
        let c =
            ChunkSum { table: t(), lower: None, upper: Some(vec!["7".into(), "x".into()]), rows: 3, checksum: "00ff00ff00ff00ff".into() };
        let back: ChunkSum = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.describe(), "`s`.`t` (start, 7, x]");
    }
}
