//! The chunked table comparison of a promotion (issue 6, steps 5 and 8) on a primary and its
//! replica, both flavours: identical tables compare equal (several chunks, composite, binary and
//! hostile keys, NULL vs ''); a replica-only change is found in its chunk, including changes that
//! `BIT_XOR(CRC32(CONCAT_WS(...)))` cannot see; concurrent writes with replica lag end equal or
//! dirty and the delta after the writes stop is clean; the delta sees new and replica-only rows;
//! keyless tables and schema drift are refused; the same data sums the same on both flavours.
//! `throughput` prints rows/s on 100k rows (run it alone for the benchmark notes).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use mysql_async::Conn;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::model::ident::quote_ident as qi;
use privfence::model::TableName;
use privfence::promote::compare::{self, ChunkSum, Comparison};
use privfence::sandbox::Sandbox;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{admin_exec, pair, replica};

async fn nodes(sb: &Sandbox) -> (Node, Node) {
    let p = Node::connect(&sb.primary.connect_spec(), "primary").await.expect("primary");
    let r = Node::connect(&replica(sb).connect_spec(), "replica1").await.expect("replica");
    (p, r)
}

async fn caught_up(sb: &Sandbox) {
    sb.wait_replica_caught_up(Duration::from_secs(120)).await.expect("replica caught up");
}

/// Runs statements on the replica only: `sql_log_bin = 0` (no errant GTID). The admin account
/// bypasses `read_only` (SUPER / READ_ONLY ADMIN), so the global setting is left alone.
async fn replica_exec(sb: &Sandbox, stmts: &[String]) {
    let mut c = replica(sb).conn().await.expect("replica connection");
    c.query_drop("SET SESSION sql_log_bin = 0").await.unwrap();
    for s in stmts {
        c.query_drop(s).await.unwrap_or_else(|e| panic!("replica SQL failed: {s}\n{e}"));
    }
    c.disconnect().await.ok();
}

/// A fresh schema for one test, with a digits table `d` (0..9) for generating rows.
async fn schema(sb: &Sandbox, name: &str) -> String {
    let s = qi(name);
    admin_exec(
        sb,
        &[
            format!("DROP DATABASE IF EXISTS {s}"),
            format!("CREATE DATABASE {s}"),
            format!("CREATE TABLE {s}.d (i INT PRIMARY KEY)"),
            format!("INSERT INTO {s}.d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"),
        ],
    )
    .await;
    s
}

/// `FROM d a, d b, ...`: `n` digit tables whose `a.i + 10*b.i + ...` runs over 0..10^n.
fn digits(s: &str, n: usize) -> (String, String) {
    let names: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let from = names.iter().map(|d| format!("{s}.d {d}")).collect::<Vec<_>>().join(", ");
    let num = names.iter().enumerate().map(|(i, d)| format!("{d}.i * {}", 10u64.pow(i as u32))).collect::<Vec<_>>().join(" + ");
    (from, num)
}

async fn run(p: &mut Node, r: &mut Node, tables: &[TableName], chunk_rows: u64) -> Comparison {
    run_logged(p, r, tables, chunk_rows).await.0
}

/// The comparison and its progress lines.
async fn run_logged(p: &mut Node, r: &mut Node, tables: &[TableName], chunk_rows: u64) -> (Comparison, Vec<String>) {
    let mut lines = Vec::new();
    let c = compare::compare(p, r, tables, chunk_rows, &mut |l: &str| lines.push(l.to_string()))
        .await
        .unwrap_or_else(|e| panic!("compare: {e}"));
    assert!(lines.iter().any(|l| l.contains("comparing by key")), "{lines:?}");
    (c, lines)
}

fn chunks_of<'a>(c: &'a Comparison, t: &TableName) -> Vec<&'a ChunkSum> {
    c.chunks.iter().filter(|x| &x.table == t).collect()
}

/// Chunks of a table are contiguous from the start of the key.
fn assert_contiguous(c: &Comparison, t: &TableName) {
    let ch = chunks_of(c, t);
    for (i, x) in ch.iter().enumerate() {
        let expected = if i == 0 { None } else { ch[i - 1].upper.clone() };
        assert_eq!(x.lower, expected, "chunk {i} of {t} starts where the previous ended");
        assert!(x.upper.is_some(), "compare bounds every chunk");
    }
}

async fn identical_tables(flavour: Flavour) {
    let sb = pair(flavour);
    let s = schema(sb, &format!("pfc_eq_{}", flavour.name())).await;
    let hostile_schema = format!("pfc h`ö'st \"{}", flavour.name());
    let hs = qi(&hostile_schema);
    let (from4, num4) = digits(&s, 4);
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.items (id INT PRIMARY KEY, v VARCHAR(40), n INT NULL)"),
            format!("INSERT INTO {s}.items SELECT {num4} + 1, CONCAT('v', {num4}), IF(d0.i = 3, NULL, d1.i) FROM {from4} WHERE {num4} < 3500"),
            format!(
                "CREATE TABLE {s}.composite (tenant VARCHAR(10) NOT NULL, created DATETIME(6) NOT NULL, seq INT NOT NULL, \
                 payload TEXT NULL, PRIMARY KEY (tenant, created, seq))"
            ),
            format!(
                "INSERT INTO {s}.composite SELECT ELT(d0.i % 3 + 1, 'a', 'b b', 'ç'), \
                 TIMESTAMPADD(MICROSECOND, {num4} * 1001, '2024-01-01'), {num4} % 5, IF(d1.i = 0, NULL, REPEAT('p', d2.i)) \
                 FROM {from4} WHERE {num4} < 2500"
            ),
            format!("CREATE TABLE {s}.bin (k VARBINARY(16) PRIMARY KEY, v INT)"),
            format!("INSERT INTO {s}.bin SELECT UNHEX(LPAD(HEX(({num4} * 2654435761) % 4294967296), 8, '0')), {num4} FROM {from4} WHERE {num4} < 1000"),
            format!("INSERT INTO {s}.bin VALUES (X'', 1), (X'00', 2), (X'27', 3), (X'5C', 4), (X'FF', 5), (X'0027', 6)"),
            format!("CREATE TABLE {s}.empty (id INT PRIMARY KEY)"),
            format!("CREATE TABLE {s}.huge (id BIGINT UNSIGNED PRIMARY KEY)"),
            format!("INSERT INTO {s}.huge SELECT 9007199254740992 + i FROM {s}.d"),
            format!("INSERT INTO {s}.huge VALUES (18446744073709551615), (18446744073709551614)"),
            format!("DROP DATABASE IF EXISTS {hs}"),
            format!("CREATE DATABASE {hs}"),
            format!("CREATE TABLE {hs}.`t``a b'c\"ü` (`i``d` INT PRIMARY KEY, `n ame` VARCHAR(20) CHARACTER SET utf8mb4 NULL, `ç\"3` VARBINARY(10) NULL, `#` CHAR(3) NULL)"),
            format!(
                "INSERT INTO {hs}.`t``a b'c\"ü` VALUES (1, NULL, '', NULL), (2, '', NULL, NULL), (3, NULL, NULL, NULL), \
                 (4, '', '', ''), (5, 'a#', 'b', NULL), (6, 'a', '#b', NULL), (7, '#', '#', '#'), (8, 'x`y''z', X'00FF', '#a'), \
                 (9, 'ü😀', X'5C27', ' ')"
            ),
        ],
    )
    .await;
    caught_up(sb).await;
    let (mut p, mut r) = nodes(sb).await;
    let t = |name: &str| TableName::new(format!("pfc_eq_{}", flavour.name()), name);
    let hostile = TableName::new(&hostile_schema, "t`a b'c\"ü");
    let tables = vec![t("items"), t("composite"), t("bin"), t("empty"), hostile.clone()];
    let c = run(&mut p, &mut r, &tables, 700).await;
    assert!(c.dirty.is_empty(), "identical tables: {:?}", c.dirty);
    assert_eq!(c.equal_chunks, c.chunks.len());
    for (table, chunks, rows) in
        [(t("items"), 5, 3500), (t("composite"), 4, 2500), (t("bin"), 2, 1006), (t("empty"), 0, 0), (hostile.clone(), 1, 9)]
    {
        let ch = chunks_of(&c, &table);
        assert_eq!(ch.len(), chunks, "{table}: {ch:?}");
        assert_eq!(ch.iter().map(|x| x.rows).sum::<u64>(), rows, "{table}");
        assert_contiguous(&c, &table);
    }
    assert_eq!(c.rows, 3500 + 2500 + 1006 + 9);
    let last = chunks_of(&c, &t("items")).last().unwrap().upper.clone();
    assert_eq!(last, Some(vec!["3500".to_string()]), "the last chunk ends at the highest key");
    assert_eq!(chunks_of(&c, &t("composite"))[0].upper.as_ref().map(Vec::len), Some(3), "composite bounds carry every key column");
    assert!(chunks_of(&c, &t("bin"))[0].upper.as_ref().unwrap()[0].bytes().all(|b| b.is_ascii_hexdigit()), "binary bounds in hex");
    // Keys above 2^53, where DOUBLE is inexact, bound chunks exactly.
    let huge = run(&mut p, &mut r, &[t("huge")], 3).await;
    assert_eq!(huge.chunks.iter().map(|x| x.rows).collect::<Vec<_>>(), vec![3, 3, 3, 3], "{huge:?}");
    assert_eq!(huge.chunks[3].upper, Some(vec!["18446744073709551615".to_string()]));
    // Nothing changed since: the delta is clean and reads only the (empty) tails.
    let d = compare::delta(&mut p, &mut r, &c).await.expect("delta");
    assert!(d.is_clean(), "{d:?}");
    assert_eq!((d.checked_chunks, d.rows_primary, d.rows_replica), (tables.len(), 0, 0), "{d:?}");
    admin_exec(sb, &[format!("DROP DATABASE {s}"), format!("DROP DATABASE {hs}")]).await;
}

both_flavours!(identical_tables_compare_equal, identical_tables);

/// `BIT_XOR(CRC32(CONCAT_WS('#', cols..., ISNULL flags)))` (pt-table-checksum's default) of a range.
async fn crc32_sum(c: &mut Conn, table: &str, cols: &[&str], range: &str) -> (u64, u64) {
    let flags: Vec<String> = cols.iter().map(|c| format!("ISNULL({c})")).collect();
    let sql = format!(
        "SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', {}, CONCAT({})))) FROM {table} WHERE {range}",
        cols.join(", "),
        flags.join(", ")
    );
    c.query_first(sql).await.unwrap().unwrap()
}

async fn replica_only_change(flavour: Flavour) {
    let sb = pair(flavour);
    let name = format!("pfc_ro_{}", flavour.name());
    let s = schema(sb, &name).await;
    let (from4, num4) = digits(&s, 4);
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.t (id INT PRIMARY KEY, a VARCHAR(20) NULL, b VARCHAR(20) NULL, x INT NULL, y INT NULL)"),
            format!(
                "INSERT INTO {s}.t SELECT {num4} + 1, CONCAT('v', ({num4} + 1) % 7), IF(({num4} + 1) % 3 = 0, NULL, CONCAT('w', {num4} + 1)), \
                 d0.i, d1.i FROM {from4} WHERE {num4} < 6000"
            ),
            format!("UPDATE {s}.t SET a = 'x#', b = 'y' WHERE id = 3501"),
            format!("UPDATE {s}.t SET x = NULL, y = 7 WHERE id = 2500"),
        ],
    )
    .await;
    caught_up(sb).await;
    // Chunk 1: two equal-length values swap rows. Chunk 2: NULL becomes ''. Chunk 3: a NULL
    // moves between two numeric columns. Chunk 4: a '#' moves across the column boundary.
    // Chunk 5: a row is missing. Chunk 6 is untouched.
    replica_exec(
        sb,
        &[
            format!("UPDATE {s}.t SET a = 'v4' WHERE id = 10"),
            format!("UPDATE {s}.t SET a = 'v3' WHERE id = 11"),
            format!("UPDATE {s}.t SET b = '' WHERE id = 1500"),
            format!("UPDATE {s}.t SET x = 7, y = NULL WHERE id = 2500"),
            format!("UPDATE {s}.t SET a = 'x', b = '#y' WHERE id = 3501"),
            format!("DELETE FROM {s}.t WHERE id = 4999"),
        ],
    )
    .await;
    // What the CRC32 variant would have said: the swap and the '#' move are invisible to it.
    let (mut pc, mut rc) = (sb.primary.conn().await.unwrap(), replica(sb).conn().await.unwrap());
    for range in ["id <= 1000", "id > 3000 AND id <= 4000"] {
        let table = format!("{s}.t");
        let cols = ["id", "a", "b", "x", "y"];
        let (pp, rr) = (crc32_sum(&mut pc, &table, &cols, range).await, crc32_sum(&mut rc, &table, &cols, range).await);
        assert_eq!(pp, rr, "BIT_XOR(CRC32) misses the change in {range}");
    }
    pc.disconnect().await.ok();
    rc.disconnect().await.ok();

    let (mut p, mut r) = nodes(sb).await;
    let table = TableName::new(&name, "t");
    let c = run(&mut p, &mut r, std::slice::from_ref(&table), 1000).await;
    assert_eq!(c.chunks.len(), 6);
    let contains = |x: &ChunkSum, id: u64| {
        let lo = x.lower.as_ref().map_or(0, |v| v[0].parse::<u64>().unwrap());
        let hi = x.upper.as_ref().unwrap()[0].parse::<u64>().unwrap();
        lo < id && id <= hi
    };
    for id in [10, 1500, 2500, 3501, 4999] {
        assert!(c.dirty.iter().any(|x| contains(x, id)), "the change at id {id} is found in its chunk: {:?}", c.dirty);
    }
    assert_eq!(c.dirty.len(), 5, "{:?}", c.dirty);
    assert_eq!(c.equal_chunks, 1);
    assert!(!c.dirty.iter().any(|x| contains(x, 5500)), "the untouched chunk is equal");
    // After the fence the delta still sees them (and nothing else).
    let d = compare::delta(&mut p, &mut r, &c).await.expect("delta");
    assert_eq!(d.differing, c.dirty, "{d:?}");
    assert_eq!(d.differing_replica.iter().map(|x| x.rows).sum::<u64>() + 1, d.differing.iter().map(|x| x.rows).sum::<u64>());
    assert_eq!(d.rows_primary, d.rows_replica + 1);
    admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
}

both_flavours!(a_replica_only_change_is_found_in_its_chunk, replica_only_change);

/// Writes on the primary until stopped: inserts, updates spread over the whole key, deletes.
fn writer(sb: &Sandbox, s: &str, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let opts = sb.primary.opts();
    let s = s.to_string();
    tokio::spawn(async move {
        let mut c = Conn::new(opts).await.expect("writer connection");
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let id = (i * 7919) % 20_000 + 1;
            c.query_drop(format!("INSERT INTO {s}.w (v) VALUES ('new {i}')")).await.unwrap();
            c.query_drop(format!("UPDATE {s}.w SET n = n + 1, v = CONCAT('u', n) WHERE id = {id}")).await.unwrap();
            // A hot row: its chunk may change between every two reads.
            c.query_drop(format!("UPDATE {s}.w SET n = n + 1 WHERE id = 1")).await.unwrap();
            if i.is_multiple_of(10) {
                c.query_drop(format!("DELETE FROM {s}.w WHERE id = {}", (i * 104_729) % 20_000 + 1)).await.unwrap();
            }
            count.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c.disconnect().await.ok();
    })
}

async fn concurrent_writes(flavour: Flavour) {
    let sb = pair(flavour);
    let name = format!("pfc_cw_{}", flavour.name());
    let s = schema(sb, &name).await;
    let (from5, num5) = digits(&s, 5);
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.w (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), n INT NOT NULL DEFAULT 0)"),
            format!("INSERT INTO {s}.w (id, v) SELECT {num5} + 1, CONCAT('r', {num5}) FROM {from5} WHERE {num5} < 20000"),
        ],
    )
    .await;
    caught_up(sb).await;
    let (stop, count) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let w = writer(sb, &s, stop.clone(), count.clone());
    // Replica lag for the first second of the comparison: the applier stops, then resumes.
    let mut rc = replica(sb).conn().await.unwrap();
    rc.query_drop("STOP REPLICA SQL_THREAD").await.unwrap();
    let resume = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        rc.query_drop("START REPLICA SQL_THREAD").await.unwrap();
        rc.disconnect().await.ok();
    });
    let (mut p, mut r) = nodes(sb).await;
    let table = TableName::new(&name, "w");
    let (c, lines) = run_logged(&mut p, &mut r, std::slice::from_ref(&table), 1000).await;
    resume.await.unwrap();
    // The service goes on writing until the fence.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    w.await.unwrap();
    let writes = count.load(Ordering::Relaxed);
    caught_up(sb).await;
    assert!(writes > 50, "the writer ran during the comparison ({writes} iterations)");
    assert_eq!(c.equal_chunks + c.dirty.len(), c.chunks.len());
    assert!(c.rechecked >= 1, "the lagging replica made chunks differ at first sight: {c:?}");
    let d = compare::delta(&mut p, &mut r, &c).await.expect("delta");
    assert!(d.is_clean(), "no chunk differs once the writes stopped: {d:?}");
    assert_eq!(d.rows_primary, d.rows_replica);
    assert!(d.checked_chunks > c.dirty.len() && d.rows_primary > 0, "the tail with the new rows was checked too: {d:?}");
    // And the whole table really is the same now.
    let again = run(&mut p, &mut r, &[table], 1000).await;
    assert!(again.dirty.is_empty(), "{:?}", again.dirty);
    note(&format!(
        "{flavour}: {writes} write iterations during the compare; {} chunks, {} rechecked, {} dirty; delta checked {} chunks ({} rows)",
        c.chunks.len(),
        c.rechecked,
        c.dirty.len(),
        d.checked_chunks,
        d.rows_primary
    ));
    for l in lines.iter().filter(|l| l.contains("left for the delta")) {
        note(&format!("{flavour}: {l}"));
    }
    admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
}

both_flavours!(concurrent_writes_end_equal_or_dirty_and_the_delta_is_clean, concurrent_writes);

#[allow(clippy::print_stderr)] // figures for people and for the benchmark notes
fn note(line: &str) {
    eprintln!("{line}");
}

async fn delta_tail(flavour: Flavour) {
    let sb = pair(flavour);
    let name = format!("pfc_dt_{}", flavour.name());
    let s = schema(sb, &name).await;
    let (from4, num4) = digits(&s, 4);
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.t (id INT PRIMARY KEY, v VARCHAR(20))"),
            format!("INSERT INTO {s}.t SELECT {num4} + 1, 'old' FROM {from4} WHERE {num4} < 3000"),
            format!("CREATE TABLE {s}.later (id INT PRIMARY KEY)"),
        ],
    )
    .await;
    caught_up(sb).await;
    let (mut p, mut r) = nodes(sb).await;
    let tables = [TableName::new(&name, "t"), TableName::new(&name, "later")];
    let c = run(&mut p, &mut r, &tables, 1000).await;
    assert_eq!((c.chunks.len(), c.dirty.len()), (3, 0));
    // The service keeps writing, then the fence drains it.
    admin_exec(
        sb,
        &[
            format!("INSERT INTO {s}.t SELECT {num4} + 3001, 'new' FROM {from4} WHERE {num4} < 1500"),
            format!("UPDATE {s}.t SET v = 'changed' WHERE id = 5"),
            format!("INSERT INTO {s}.later VALUES (1), (2), (3)"),
        ],
    )
    .await;
    caught_up(sb).await;
    let d = compare::delta(&mut p, &mut r, &c).await.expect("delta");
    assert!(d.is_clean(), "{d:?}");
    assert_eq!((d.rows_primary, d.rows_replica), (1503, 1503), "the new rows are the delta: {d:?}");
    assert_eq!(d.checked_chunks, 3, "(3000, 4000], (4000, end) and the whole of `later`: {d:?}");
    // A row the replica alone has, past the primary's highest key, is in the open last chunk.
    replica_exec(sb, &[format!("INSERT INTO {s}.t VALUES (99999, 'errant')")]).await;
    let d = compare::delta(&mut p, &mut r, &c).await.expect("delta");
    assert_eq!(d.differing.len(), 1, "{d:?}");
    assert_eq!(d.differing[0].upper, None);
    assert_eq!(d.differing_replica[0].rows, d.differing[0].rows + 1);
    // A comparison made with another checksum is refused.
    let mut old = c.clone();
    old.algorithm = "crc32-xor/v0".into();
    let e = compare::delta(&mut p, &mut r, &old).await.unwrap_err().to_string();
    assert!(e.contains("compare the tables again"), "{e}");
    admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
}

both_flavours!(the_delta_checks_new_rows_and_finds_nothing_else, delta_tail);

async fn refused(p: &mut Node, r: &mut Node, table: TableName) -> String {
    compare::compare(p, r, &[table], 100, &mut |_: &str| {}).await.unwrap_err().to_string()
}

async fn refusals(flavour: Flavour) {
    let sb = pair(flavour);
    let name = format!("pfc_rf_{}", flavour.name());
    let s = schema(sb, &name).await;
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.nokey (a INT, b INT)"),
            format!("CREATE TABLE {s}.nullable (a INT NULL, UNIQUE KEY (a))"),
            format!("CREATE TABLE {s}.floaty (x DOUBLE PRIMARY KEY)"),
            format!("CREATE TABLE {s}.uniq (a INT NOT NULL, b VARCHAR(10), UNIQUE KEY `u k` (a))"),
            format!("INSERT INTO {s}.uniq VALUES (1, 'x'), (2, NULL), (3, '')"),
            format!("CREATE TABLE {s}.drift (id INT PRIMARY KEY)"),
            format!("CREATE VIEW {s}.v AS SELECT a FROM {s}.uniq"),
        ],
    )
    .await;
    caught_up(sb).await;
    replica_exec(sb, &[format!("ALTER TABLE {s}.drift ADD COLUMN extra INT")]).await;
    let (mut p, mut r) = nodes(sb).await;
    let t = |n: &str| TableName::new(&name, n);
    for table in ["nokey", "nullable"] {
        let e = refused(&mut p, &mut r, t(table)).await;
        assert!(e.contains("no primary key and no unique key on NOT NULL columns"), "{table}: {e}");
    }
    assert!(refused(&mut p, &mut r, t("floaty")).await.contains("x (double)"));
    assert!(refused(&mut p, &mut r, t("v")).await.contains("not a table"));
    assert!(refused(&mut p, &mut r, t("missing")).await.contains("no table matches"));
    assert!(refused(&mut p, &mut r, t("drift")).await.contains("different columns on the replica"));
    // A unique key on NOT NULL columns is enough.
    let c = run(&mut p, &mut r, &[t("uniq")], 100).await;
    assert_eq!((c.chunks.len(), c.rows, c.dirty.len()), (1, 3, 0));
    admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
}

both_flavours!(tables_without_a_usable_key_and_drifted_schemas_are_refused, refusals);

/// The same rows (every common type but JSON) sum the same on MariaDB and MySQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_data_sums_the_same_on_both_flavours() {
    let mut sums = Vec::new();
    for flavour in [Flavour::MariaDb, Flavour::MySql] {
        let sb = pair(flavour);
        let s = schema(sb, "pfc_types").await;
        admin_exec(
            sb,
            &[
                "SET SESSION time_zone = '+00:00'".to_string(),
                format!(
                    "CREATE TABLE {s}.ty (id INT PRIMARY KEY, dt DATETIME(6), de DECIMAL(12,4), ts TIMESTAMP(3) NULL, d DATE, \
                     tm TIME(2), y YEAR, bi BIT(10), en ENUM('a','b c'), st SET('x','y','z'), bl BLOB, \
                     l1 VARCHAR(20) CHARACTER SET latin1, u8 VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
                     db DOUBLE, fl FLOAT, bu BIGINT UNSIGNED, ti TINYINT, ch CHAR(5), tx TEXT)"
                ),
                format!(
                    "INSERT INTO {s}.ty VALUES (1, '2024-02-29 13:14:15.123456', -12345678.1234, '2024-01-01 00:00:00.5', \
                     '2024-12-31', '-838:59:59.00', 2024, b'1010101010', 'b c', 'x,z', X'00FF10', 'café', 'ü😀#x', 0.1, 0.1, \
                     18446744073709551615, -128, 'ab', 'a#b'), (3, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, '', '', '', '', \
                     1e300, 3.4e38, 0, 0, '', '')"
                ),
                format!("INSERT INTO {s}.ty (id) VALUES (2), (4), (5)"),
            ],
        )
        .await;
        caught_up(sb).await;
        let (mut p, mut r) = nodes(sb).await;
        let c = run(&mut p, &mut r, &[TableName::new("pfc_types", "ty")], 2).await;
        assert!(c.dirty.is_empty(), "{flavour}: {:?}", c.dirty);
        sums.push(c.chunks.iter().map(|x| (x.rows, x.checksum.clone())).collect::<Vec<_>>());
        admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
    }
    assert_eq!(sums[0], sums[1], "MariaDB and MySQL sum the same rows the same");
    // Pinned: a change to the row encoding must come with a new `compare::ALGORITHM` (journaled
    // comparisons are checked against it), and then with new values here.
    assert_eq!(compare::ALGORITHM, "sha256-xor64/v2");
    let pinned = [(2, "96eb5b21e3666f64"), (2, "073f4ca4c8d2e5f4"), (1, "aa897b64a26605e3")];
    assert_eq!(sums[0], pinned.map(|(n, c)| (n, c.to_string())).to_vec());
}

async fn throughput(flavour: Flavour) {
    let sb = pair(flavour);
    let name = format!("pfc_tp_{}", flavour.name());
    let s = schema(sb, &name).await;
    let (from5, num5) = digits(&s, 5);
    admin_exec(
        sb,
        &[
            format!("CREATE TABLE {s}.big (id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2), created DATETIME, note VARCHAR(100) NULL)"),
            format!(
                "INSERT INTO {s}.big SELECT {num5} + 1, CONCAT('customer-', {num5} % 997), {num5} / 7, \
                 TIMESTAMPADD(SECOND, {num5}, '2024-01-01'), IF(d0.i = 0, NULL, REPEAT('n', d1.i * 10)) FROM {from5}"
            ),
        ],
    )
    .await;
    caught_up(sb).await;
    let (mut p, mut r) = nodes(sb).await;
    let table = TableName::new(&name, "big");
    for chunk in [1000, 5000] {
        let t = Instant::now();
        let c = run(&mut p, &mut r, std::slice::from_ref(&table), chunk).await;
        let took = t.elapsed();
        assert_eq!((c.rows, c.dirty.len()), (100_000, 0));
        note(&format!(
            "throughput {flavour}: 100000 rows, chunks of {chunk}: {:.2} s, {:.0} rows/s",
            took.as_secs_f64(),
            100_000.0 / took.as_secs_f64()
        ));
    }
    admin_exec(sb, &[format!("DROP DATABASE {s}")]).await;
}

both_flavours!(throughput_on_100k_rows, throughput);
