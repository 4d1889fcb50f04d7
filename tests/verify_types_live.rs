//! The backfill's text `INSERT`s write back exactly what the source holds, every common type,
//! both flavours (issue 15): quotes, backslashes, NUL and control bytes, non-ASCII and 4-byte
//! characters, a latin1 column, binary and BLOB columns, `BIT`, `NULL` next to `''`, `FLOAT` and
//! `DOUBLE` extremes, `DECIMAL`, dates, times with fractions, negative `TIME`, `TIMESTAMP` and
//! `ENUM`/`SET`. After the copy, each column's bytes (`HEX`) are equal on both servers and
//! `verify` finds the tables equal.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::{Flavour, Server};
use privfence::model::TableName;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use privfence::verify::backfill::{backfill, BackfillOptions};
use privfence::verify::VerifyOptions;
use std::sync::OnceLock;
use std::time::Duration;
use support::*;

/// The second, independent server of this binary for `flavour` (the first is `sandbox()`).
fn target(flavour: Flavour) -> &'static Sandbox {
    static CELLS: [OnceLock<Sandbox>; 2] = [const { OnceLock::new() }; 2];
    CELLS[flavour as usize].get_or_init(|| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(Sandbox::start(SandboxOptions::new(flavour, Topology::Single))).expect("a second sandbox")
        })
        .join()
        .expect("sandbox thread")
    })
}

const COLUMNS: &str = "id INT PRIMARY KEY, l1 VARCHAR(20) CHARACTER SET latin1, u8 VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
     ch CHAR(5), tx TEXT, vb VARBINARY(20), bn BINARY(4), bl BLOB, bi BIT(10), fl FLOAT, db DOUBLE, de DECIMAL(20,6), \
     bu BIGINT UNSIGNED, ti TINYINT, d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), y YEAR, en ENUM('a','b c'), \
     st SET('x','y','z')";

/// Rows whose values need every kind of escaping; `NULL` and `''` side by side.
fn rows() -> Vec<String> {
    vec![
        "(1, 'café', 'it''s \\\\ a \\0 nul\\n\\r\\Z ü😀#', 'ab', 'x\\ty', X'00275C0A', X'00FF0027', X'00FF10', b'1010101010', \
         0.1, 0.1, -12345678901234.123456, 18446744073709551615, -128, '2024-12-31', '2024-02-29 13:14:15.123456', \
         '2024-01-01 00:00:00.5', '-838:59:59.00', 2024, 'b c', 'x,z')"
            .into(),
        "(2, '', '', '', '', X'', X'00000000', X'', b'0', 3.4e38, 1e300, 0, 0, 0, '1000-01-01', '9999-12-31 23:59:59.999999', \
         '2038-01-19 03:14:07.999', '838:59:58.99', 1901, 'a', '')"
            .into(),
        "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            .into(),
        "(4, '\\'', '\"', ' ', '\\\\', X'5C', X'27272727', X'', b'1', -1.17549435e-38, -2.2250738585072014e-308, 0.000001, 1, 127, \
         '2000-02-29', '2000-01-01 00:00:00', NULL, '00:00:00.01', 2155, 'a', 'x,y,z')"
            .into(),
    ]
}

/// Each column's bytes per row (`HEX`; `FLOAT` and `DOUBLE` as their shortest round-trip text,
/// which differs for any two different values), in key order.
async fn dump(c: &mut mysql_async::Conn, schema: &str) -> Vec<Vec<Option<String>>> {
    let cols = ["l1", "u8", "ch", "tx", "vb", "bn", "bl", "bi", "fl", "db", "de", "bu", "ti", "d", "dt", "ts", "tm", "y", "en", "st"];
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| match *c {
            "fl" | "db" => format!("HEX(CAST(`{c}` AS CHAR))"),
            _ => format!("HEX(CAST(`{c}` AS BINARY))"),
        })
        .collect();
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let sql = format!("SELECT id, {} FROM {schema}.t ORDER BY id", exprs.join(", "));
    let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
    rows.into_iter()
        .map(|r| {
            let n = r.len();
            let mut r = r;
            (0..n).map(|i| r.take::<Option<String>, _>(i).flatten()).collect()
        })
        .collect()
}

async fn every_type_round_trips(flavour: Flavour) {
    let (src, dst) = (sandbox(flavour), target(flavour));
    let schema = "vf_types";
    for (sb, data) in [(src, true), (dst, false)] {
        let mut c = sb.primary.conn().await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}")).await.unwrap();
        c.query_drop("SET NAMES utf8mb4, time_zone = '+00:00'").await.unwrap();
        c.query_drop(format!("CREATE TABLE {schema}.t ({COLUMNS}) DEFAULT CHARSET=utf8mb4")).await.unwrap();
        if data {
            let sql = format!("INSERT INTO {schema}.t VALUES {}", rows().join(", "));
            c.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        c.disconnect().await.ok();
    }
    let (from, to) = (Server::connect(&admin_spec(&src.primary)).await.unwrap(), Server::connect(&admin_spec(&dst.primary)).await.unwrap());
    let table = TableName::new(schema, "t");
    let verify = VerifyOptions { chunk_rows: 2, recheck_delay: Duration::from_millis(100), ..VerifyOptions::default() };
    let opts = BackfillOptions { chunk_rows: 3, max_threads_running: 1000, verify, ..BackfillOptions::default() };
    let r = backfill(&from, &to, std::slice::from_ref(&table), None, None, &opts, &mut |_| {}).await.unwrap();
    assert_eq!((r.rows_read, r.inserted), (4, 4), "{flavour}: {r:?}");
    let v = r.verify.expect("a backfill ends with a verify");
    assert!(v.is_equal(), "{flavour}: {v:?}");
    assert_eq!(v.rows_target, 4, "{flavour}: {v:?}");
    let (mut s, mut d) = (src.primary.conn().await.unwrap(), dst.primary.conn().await.unwrap());
    let (a, b) = (dump(&mut s, schema).await, dump(&mut d, schema).await);
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "{flavour}: every column's bytes are the same on the target");
    // `NULL` stayed `NULL` and `''` stayed `''`.
    assert_eq!(a[2][1], None, "{flavour}");
    assert_eq!(a[1][1].as_deref(), Some(""), "{flavour}");
    for c in [&mut s, &mut d] {
        c.query_drop(format!("DROP DATABASE {schema}")).await.unwrap();
    }
}

both_flavours!(every_type_is_copied_byte_for_byte, every_type_round_trips);
