//! `verify` and `backfill` between two independent sandbox servers, both flavours (issue 15):
//! a backfill under live dual writes with tombstones, `kill -9` of the backfill at random points
//! and reruns, verify under dual writes (no false mismatch; a one-side change found by key),
//! tombstoned keys counted as deleted, every refusal, checkpoints that carry both servers'
//! positions and a journal refused against another target, and `--max-lag` (by GTID, then by
//! heartbeat) holding the copy while a replica of the target stops applying.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use mysql_async::Conn;
use privfence::db::{Flavour, Server};
use privfence::journal::{Journal, Record, StepState, JOURNAL_FORMAT};
use privfence::model::TableName;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use privfence::verify::backfill::{backfill, cleanup_tombstones, BackfillOptions};
use privfence::verify::throttle::{LagBy, LagOptions};
use privfence::verify::{verify, DiffKind, VerifyOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use support::*;

const TOMB: &str = "{table}_tombstones";

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

struct Pair {
    src: &'static Sandbox,
    dst: &'static Sandbox,
    schema: String,
}

impl Pair {
    async fn new(flavour: Flavour, name: &str) -> Pair {
        let p = Pair { src: sandbox(flavour), dst: target(flavour), schema: format!("vf_{name}") };
        for sb in [p.src, p.dst] {
            let mut c = sb.primary.conn().await.unwrap();
            c.query_drop(format!("DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}", p.schema)).await.unwrap();
            c.disconnect().await.ok();
        }
        p
    }

    fn table(&self) -> TableName {
        TableName::new(&self.schema, "items")
    }

    async fn conns(&self) -> (Conn, Conn) {
        (self.src.primary.conn().await.unwrap(), self.dst.primary.conn().await.unwrap())
    }

    async fn servers(&self) -> (Server, Server) {
        (Server::connect(&admin_spec(&self.src.primary)).await.unwrap(), Server::connect(&admin_spec(&self.dst.primary)).await.unwrap())
    }

    /// `items` on both sides (`n` rows on the source), its tombstone table on the target.
    async fn create(&self, n: u64) {
        let ddl = format!(
            "CREATE TABLE {}.items (id BIGINT NOT NULL PRIMARY KEY, val VARCHAR(40) COLLATE utf8mb4_general_ci, pad VARBINARY(100), \
             at DATETIME(6) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            self.schema
        );
        let (mut s, mut d) = self.conns().await;
        s.query_drop(&ddl).await.unwrap();
        d.query_drop(&ddl).await.unwrap();
        d.query_drop(format!("CREATE TABLE {}.items_tombstones (id BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB", self.schema))
            .await
            .unwrap();
        let mut id = 1;
        while id <= n {
            let rows: Vec<String> = (id..(id + 500).min(n + 1))
                .map(|i| format!("({i}, 'v{i}', REPEAT(X'AB', {}), '2026-01-01 00:00:00.{i:06}')", i % 100))
                .collect();
            s.query_drop(format!("INSERT INTO {}.items VALUES {}", self.schema, rows.join(", "))).await.unwrap();
            id += 500;
        }
    }

    async fn ids(&self, c: &mut Conn, table: &str) -> BTreeSet<u64> {
        c.query::<u64, _>(format!("SELECT id FROM {}.{table}", self.schema)).await.unwrap().into_iter().collect()
    }
}

fn fast() -> VerifyOptions {
    VerifyOptions { chunk_rows: 200, recheck_delay: Duration::from_millis(300), ..VerifyOptions::default() }
}

fn bopts() -> BackfillOptions {
    BackfillOptions {
        chunk_rows: 200,
        adaptive: false,
        max_rate: None,
        max_threads_running: 1000,
        dry_run: false,
        lag: None,
        verify: fast(),
    }
}

fn header(t: &TableName) -> Record {
    Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "test".into(),
        service: "vf".into(),
        policy: "-".into(),
        tables: vec![t.clone()],
    }
}

/// A tiny deterministic random generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What the dual-writing application did: keys it deleted, the last value it wrote per key.
#[derive(Default)]
struct AppLog {
    deleted: BTreeSet<u64>,
    last: BTreeMap<u64, String>,
}

/// The application: inserts new keys, updates (full-row upsert on the target) and deletes (with
/// the tombstone, in one transaction on the target) on both servers until `stop`.
async fn dual_writer(p: &Pair, stop: Arc<AtomicBool>, seed: u64, n: u64) -> AppLog {
    let (mut s, mut d) = p.conns().await;
    let (mut rng, mut log, mut next) = (Rng(seed), AppLog::default(), n + 1);
    let sc = p.schema.clone();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        match rng.next(3) {
            0 => {
                let v = format!("new{i}");
                s.query_drop(format!("INSERT INTO {sc}.items VALUES ({next}, '{v}', X'01', NULL)")).await.unwrap();
                d.query_drop(format!("INSERT INTO {sc}.items VALUES ({next}, '{v}', X'01', NULL) ON DUPLICATE KEY UPDATE val = VALUES(val), pad = VALUES(pad), at = VALUES(at)")).await.unwrap();
                log.last.insert(next, v);
                next += 1;
            }
            1 => {
                let k = 1 + rng.next(next - 1);
                if log.deleted.contains(&k) {
                    continue;
                }
                let v = format!("upd{i}");
                s.query_drop(format!("UPDATE {sc}.items SET val = '{v}', at = NULL WHERE id = {k}")).await.unwrap();
                // The full new row, as an upsert: the application's write is the newest version.
                let row: Option<(u64, String, Vec<u8>)> =
                    s.query_first(format!("SELECT id, val, pad FROM {sc}.items WHERE id = {k}")).await.unwrap();
                if let Some((_, val, pad)) = row {
                    d.exec_drop(
                        format!("INSERT INTO {sc}.items VALUES (?, ?, ?, NULL) ON DUPLICATE KEY UPDATE val = VALUES(val), pad = VALUES(pad), at = VALUES(at)"),
                        (k, val, pad),
                    )
                    .await
                    .unwrap();
                    log.last.insert(k, v);
                }
            }
            _ => {
                let k = 1 + rng.next(next - 1);
                s.query_drop(format!("DELETE FROM {sc}.items WHERE id = {k}")).await.unwrap();
                loop {
                    let r = async {
                        d.query_drop("START TRANSACTION").await?;
                        d.query_drop(format!("DELETE FROM {sc}.items WHERE id = {k}")).await?;
                        d.query_drop(format!("INSERT IGNORE INTO {sc}.items_tombstones VALUES ({k})")).await?;
                        d.query_drop("COMMIT").await
                    }
                    .await;
                    match r {
                        Ok(()) => break,
                        // A deadlock with the backfill's chunk: the application retries, as it must.
                        Err(mysql_async::Error::Server(e)) if e.code == 1213 || e.code == 1205 => {
                            d.query_drop("ROLLBACK").await.ok();
                        }
                        Err(e) => panic!("app delete: {e}"),
                    }
                }
                log.deleted.insert(k);
                log.last.remove(&k);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    log
}

/// After a backfill under dual writes: equal, no deleted key back, every row the app's last write.
async fn check_outcome(p: &Pair, log: &AppLog) {
    let (mut s, mut d) = p.conns().await;
    let on_target = p.ids(&mut d, "items").await;
    let back: Vec<&u64> = log.deleted.iter().filter(|k| on_target.contains(k)).collect();
    assert!(back.is_empty(), "deleted rows came back: {back:?}");
    for (k, v) in &log.last {
        let got: Option<String> = d.query_first(format!("SELECT val FROM {}.items WHERE id = {k}", p.schema)).await.unwrap();
        assert_eq!(got.as_deref(), Some(v.as_str()), "key {k} holds an older version than the app wrote");
    }
    let tombs = p.ids(&mut d, "items_tombstones").await;
    let on_source: BTreeSet<u64> = p.ids(&mut s, "items").await.difference(&tombs).copied().collect();
    assert_eq!(on_source, on_target, "same keys on both sides, tombstoned ones deleted");
}

async fn backfill_under_dual_writes(flavour: Flavour) {
    let p = Pair::new(flavour, "dual").await;
    p.create(3000).await;
    // The target starts with part of the rows (dual writes began later) and one newer version.
    let (mut s, mut d) = p.conns().await;
    let _ = &mut s;
    d.query_drop(format!(
        "INSERT INTO {0}.items VALUES (5, 'newer on target', X'00', NULL), (2500, 'v2500', REPEAT(X'AB', 0), '2026-01-01 00:00:00.002500')",
        p.schema
    ))
    .await
    .unwrap();
    s.query_drop(format!("UPDATE {}.items SET val = 'newer on target', pad = X'00', at = NULL WHERE id = 5", p.schema)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let app = {
        let (stop, p2) = (stop.clone(), Pair { src: p.src, dst: p.dst, schema: p.schema.clone() });
        tokio::spawn(async move { dual_writer(&p2, stop, 7, 3000).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (from, to) = p.servers().await;
    let t = p.table();
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open_or_create(&dir.path().join("b.journal"), header(&t)).unwrap();
    let slow = BackfillOptions { max_rate: Some(4000.0), ..bopts() };
    let r = backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), Some(&mut j), &slow, &mut |_| {}).await.expect("backfill");
    stop.store(true, Ordering::Relaxed);
    let log = app.await.unwrap();
    assert!(r.inserted > 2000, "{r:?}");
    assert!(!log.deleted.is_empty() && !log.last.is_empty(), "the app wrote during the backfill");
    let v = verify(&from, &to, std::slice::from_ref(&t), Some(TOMB), &fast(), &mut |_| {}).await.unwrap();
    assert!(v.is_equal(), "{v:#?}");
    check_outcome(&p, &log).await;
    let newer: Option<String> = d.query_first(format!("SELECT val FROM {}.items WHERE id = 5", p.schema)).await.unwrap();
    let app_touched = log.last.contains_key(&5) || log.deleted.contains(&5);
    assert!(newer.as_deref() == Some("newer on target") || app_touched, "a present row is never overwritten: {newer:?}");
    acknowledged_once(j.entries());
}
both_flavours!(a_backfill_under_dual_writes_loses_nothing_and_resurrects_nothing, backfill_under_dual_writes);

/// Every chunk (table, lower) is acknowledged at most once in a journal.
fn acknowledged_once(entries: &[privfence::journal::Entry]) -> usize {
    let mut seen = BTreeSet::new();
    for e in entries {
        if let Record::Step { name, state: StepState::Done, detail } = &e.record {
            if name == "chunk" {
                let key = (detail["table"].to_string(), detail["lower"].to_string());
                assert!(seen.insert(key.clone()), "chunk acknowledged twice: {key:?}");
            }
        }
    }
    seen.len()
}

async fn tombstones_count_as_deleted(flavour: Flavour) {
    let p = Pair::new(flavour, "tomb").await;
    p.create(500).await;
    let (from, to) = p.servers().await;
    let t = p.table();
    let (_, mut d) = p.conns().await;
    d.query_drop(format!("INSERT INTO {0}.items_tombstones VALUES (3), (250), (499)", p.schema)).await.unwrap();
    let r = backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), None, &bopts(), &mut |_| {}).await.unwrap();
    assert_eq!((r.inserted, r.tombstoned), (497, 3), "{r:?}");
    assert!(r.verify.as_ref().unwrap().is_equal(), "tombstoned keys count as deleted: {r:#?}");
    let ids = p.ids(&mut d, "items").await;
    assert!(!ids.contains(&3) && !ids.contains(&250) && ids.len() == 497);
    // Without the tombstones, the same servers differ by exactly those keys.
    let v = verify(&from, &to, std::slice::from_ref(&t), None, &fast(), &mut |_| {}).await.unwrap();
    let keys: Vec<(String, DiffKind)> = v.keys.iter().map(|k| (k.key.join(","), k.kind)).collect();
    assert_eq!(
        keys,
        [("3", DiffKind::MissingOnTarget), ("250", DiffKind::MissingOnTarget), ("499", DiffKind::MissingOnTarget)]
            .map(|(a, b)| (a.to_string(), b))
    );
    // Cleanup after a passed verify.
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open_or_create(&dir.path().join("c.journal"), header(&t)).unwrap();
    let (v, batches) = cleanup_tombstones(&from, &to, std::slice::from_ref(&t), TOMB, &mut j, &fast(), &mut |_| {}).await.unwrap();
    assert!(v.is_equal() && batches == 1);
    assert!(p.ids(&mut d, "items_tombstones").await.is_empty());
}
both_flavours!(tombstoned_keys_count_as_deleted_and_are_never_copied, tombstones_count_as_deleted);

async fn verify_under_dual_writes(flavour: Flavour) {
    let p = Pair::new(flavour, "live").await;
    p.create(2000).await;
    let (from, to) = p.servers().await;
    let t = p.table();
    backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), None, &bopts(), &mut |_| {}).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let app = {
        let (stop, p2) = (stop.clone(), Pair { src: p.src, dst: p.dst, schema: p.schema.clone() });
        tokio::spawn(async move { dual_writer(&p2, stop, 11, 2000).await })
    };
    for round in 0..2 {
        let v = verify(&from, &to, std::slice::from_ref(&t), Some(TOMB), &fast(), &mut |_| {}).await.unwrap();
        assert!(v.is_equal(), "round {round}: a false mismatch under dual writes: {v:#?}");
    }
    // A change on one side only (the target) is reported by key.
    let (_, mut d) = p.conns().await;
    let k: u64 = d.query_first(format!("SELECT MIN(id) FROM {}.items WHERE id > 1000", p.schema)).await.unwrap().unwrap();
    d.query_drop(format!("UPDATE {}.items SET pad = X'FFFF' WHERE id = {k}", p.schema)).await.unwrap();
    let mut found = false;
    for _ in 0..2 {
        let v = verify(&from, &to, std::slice::from_ref(&t), Some(TOMB), &fast(), &mut |_| {}).await.unwrap();
        if v.keys.iter().any(|x| x.key == [k.to_string()] && x.kind == DiffKind::Differs) {
            assert_eq!(v.keys.len(), 1, "only the changed key: {v:#?}");
            found = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    app.await.unwrap();
    assert!(found, "the one-side change was reported by key within two rounds");
}
both_flavours!(verify_under_dual_writes_has_no_false_mismatch_and_finds_a_one_side_change, verify_under_dual_writes);

async fn refused(from: &Server, to: &Server, t: &TableName, tomb: Option<&str>) -> String {
    let e = backfill(from, to, std::slice::from_ref(t), tomb, None, &bopts(), &mut |_| {}).await.expect_err("refused").to_string();
    let v = verify(from, to, std::slice::from_ref(t), tomb, &fast(), &mut |_| {}).await;
    assert!(v.is_err() || tomb.is_none(), "verify refuses too: {v:?}");
    e
}

async fn refusals(flavour: Flavour) {
    let p = Pair::new(flavour, "refuse").await;
    let (mut s, mut d) = p.conns().await;
    let sc = &p.schema;
    for c in [&mut s, &mut d] {
        c.query_drop(format!("CREATE TABLE {sc}.nokey (a INT, b INT)")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {sc}.items_tombstones (x INT PRIMARY KEY)")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {sc}.onlyhere (id INT PRIMARY KEY)")).await.unwrap();
    }
    s.query_drop(format!("INSERT INTO {sc}.nokey VALUES (1, 1)")).await.unwrap();
    s.query_drop(format!("CREATE TABLE {sc}.src_only (id INT PRIMARY KEY)")).await.unwrap();
    s.query_drop(format!("CREATE TABLE {sc}.coll (id INT PRIMARY KEY, v VARCHAR(10) COLLATE utf8mb4_bin)")).await.unwrap();
    d.query_drop(format!("CREATE TABLE {sc}.coll (id INT PRIMARY KEY, v VARCHAR(10) COLLATE utf8mb4_general_ci)")).await.unwrap();
    s.query_drop(format!("CREATE TABLE {sc}.items (id INT PRIMARY KEY, v INT)")).await.unwrap();
    d.query_drop(format!("CREATE TABLE {sc}.items (id INT PRIMARY KEY, v INT)")).await.unwrap();
    s.query_drop(format!("INSERT INTO {sc}.items VALUES (1, 1)")).await.unwrap();
    let (from, to) = p.servers().await;
    let t = |n: &str| TableName::new(sc, n);
    let e = refused(&from, &to, &t("nokey"), None).await;
    assert!(e.contains("no primary key and no unique key on NOT NULL columns"), "{e}");
    let e = refused(&from, &to, &t("src_only"), None).await;
    assert!(e.contains("missing on the target"), "{e}");
    let e = refused(&from, &to, &t("coll"), None).await;
    assert!(e.contains("different definition") && e.contains("utf8mb4_bin"), "{e}");
    let e = refused(&from, &to, &t("items"), Some(TOMB)).await;
    assert!(e.contains("tombstone table") && e.contains("primary key (x)"), "{e}");
    let e = refused(&from, &to, &t("items"), Some("{table}_graves")).await;
    assert!(e.contains("does not exist on the target"), "{e}");
    // Nothing was changed on the target.
    let n: u64 = d.query_first(format!("SELECT COUNT(*) FROM {sc}.items")).await.unwrap().unwrap();
    let m: u64 = d.query_first(format!("SELECT COUNT(*) FROM {sc}.nokey")).await.unwrap().unwrap();
    assert_eq!((n, m), (0, 0));
    // A replica of the source: refused, saying to use promotion or verify.
    let pair = pair(flavour);
    let mut pc = pair.primary.conn().await.unwrap();
    pc.query_drop(format!("DROP DATABASE IF EXISTS {sc}; CREATE DATABASE {sc}; CREATE TABLE {sc}.items (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    pair.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let pf = Server::connect(&admin_spec(&pair.primary)).await.unwrap();
    let rf = Server::connect(&admin_spec(replica(pair))).await.unwrap();
    let e = backfill(&pf, &rf, &[t("items")], None, None, &bopts(), &mut |_| {}).await.expect_err("refused").to_string();
    assert!(e.contains("is a replica of") && e.contains("privfence promote") && e.contains("verify"), "{e}");
}
both_flavours!(every_refusal_changes_nothing, refusals);

/// `privfence backfill` through the binary, killed with SIGKILL after `after` (or run to the end).
fn backfill_cli(p: &Pair, dir: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, format!("[service.vf]\ntables = [\"{}.*\"]\nowners = [\"'nobody'@'%'\"]\n", p.schema)).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"));
    c.args(["backfill", "--policy", policy.to_str().unwrap(), "--service", "vf"])
        .args(["--from", &format!("127.0.0.1:{}", p.src.primary.port), "--to", &format!("127.0.0.1:{}", p.dst.primary.port)])
        .args(["--from-defaults-file", p.src.primary.client_cnf.to_str().unwrap()])
        .args(["--to-defaults-file", p.dst.primary.client_cnf.to_str().unwrap()])
        .args(["--tombstones", TOMB, "--chunk-rows", "100", "--recheck-delay", "300ms"])
        .args(["--journal", dir.join("backfill.journal").to_str().unwrap(), "--out", dir.join("reports").to_str().unwrap()])
        .args(extra)
        .env_remove("MYSQL_PWD")
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

async fn killed_and_rerun(flavour: Flavour) {
    let p = Pair::new(flavour, "kill").await;
    p.create(6000).await;
    let (_, mut d) = p.conns().await;
    d.query_drop(format!("INSERT INTO {}.items_tombstones VALUES (10), (4242), (5999)", p.schema)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let app = {
        let (stop, p2) = (stop.clone(), Pair { src: p.src, dst: p.dst, schema: p.schema.clone() });
        tokio::spawn(async move { dual_writer(&p2, stop, 23, 6000).await })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(99 + flavour as u64);
    let mut killed = 0;
    let journal = dir.path().join("backfill.journal");
    let begun = || std::fs::read_to_string(&journal).map(|t| t.matches("\"begun\"").count()).unwrap_or(0);
    for _ in 0..10 {
        let before = begun();
        let mut child = backfill_cli(&p, dir.path(), &["--max-rate", "2000"]).spawn().unwrap();
        // Killed at a random moment after this run began its first chunk (however long its
        // start takes on a busy machine), so the kill lands while it copies.
        let started = std::time::Instant::now();
        while begun() == before && child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.next(400))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    let o = backfill_cli(&p, dir.path(), &["--format", "json"]).output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let log = app.await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "the rerun ends with a passing verify: {text}");
    assert!(killed >= 5, "most runs were killed mid-way ({killed})");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["kind"], "backfill");
    assert!(report["chunks_before"].as_u64().unwrap() > 0, "the rerun resumed: {report}");
    let entries = Journal::read(&dir.path().join("backfill.journal")).unwrap();
    let acked = acknowledged_once(&entries);
    assert!(acked >= 60, "{acked} chunks acknowledged");
    let (from, to) = p.servers().await;
    let v = verify(&from, &to, &[p.table()], Some(TOMB), &fast(), &mut |_| {}).await.unwrap();
    assert!(v.is_equal(), "{v:#?}");
    check_outcome(&p, &log).await;
    let ids = p.ids(&mut d, "items").await;
    assert!(!ids.contains(&10) && !ids.contains(&4242) && !ids.contains(&5999), "tombstoned keys stay deleted");
}
both_flavours!(kill_9_at_random_points_then_a_rerun_gives_the_same_result, killed_and_rerun);

async fn readers_with_evidence(flavour: Flavour) {
    let p = Pair::new(flavour, "readers").await;
    p.create(10).await;
    let (mut s, _) = p.conns().await;
    let sc = &p.schema;
    for u in ["vf_rd_app", "vf_rd_idle", "vf_rd_writer"] {
        s.query_drop(format!("DROP USER IF EXISTS '{u}'@'%'")).await.unwrap();
        s.query_drop(format!("CREATE USER '{u}'@'%' IDENTIFIED BY 'Pw-{u}-1'")).await.unwrap();
    }
    s.query_drop(format!("GRANT SELECT ON {sc}.items TO 'vf_rd_app'@'%', 'vf_rd_idle'@'%'")).await.unwrap();
    s.query_drop(format!("GRANT INSERT, UPDATE ON {sc}.items TO 'vf_rd_writer'@'%'")).await.unwrap();
    // The reader keeps its connection open after reading (as a pool does).
    let mut app = Conn::new(p.src.primary.opts_as("vf_rd_app", "Pw-vf_rd_app-1")).await.unwrap();
    let _: Vec<u64> = app.query(format!("SELECT id FROM {sc}.items")).await.unwrap();
    let (mut server, inv) = inventory(p.src).await;
    let found = privfence::verify::readers::readers(&mut server, &inv, &[p.table()], None).await.unwrap();
    let get = |u: &str| found.iter().find(|r| r.account.user == u).unwrap_or_else(|| panic!("{u} listed: {found:#?}"));
    use privfence::evidence::Usage;
    let (a, idle, w) = (get("vf_rd_app"), get("vf_rd_idle"), get("vf_rd_writer"));
    assert!(a.can_read && !a.can_write && w.can_write && !w.can_read);
    assert_eq!(idle.usage, Usage::NotSeen, "{idle:#?}");
    match flavour {
        // MySQL's statement history (on by default) attributes the live connection's read.
        Flavour::MySql => assert_eq!(a.usage, Usage::Used, "{a:#?}"),
        // MariaDB's defaults have only counters: a reader is never claimed unused.
        Flavour::MariaDb => assert_ne!(a.usage, Usage::NotSeen, "{a:#?}"),
    }
    assert!(a.evidence.iter().all(|e| e.rows.iter().all(|r| !r.contains("SELECT id FROM"))), "no statement text");
    app.disconnect().await.ok();
}
both_flavours!(readers_lists_who_can_read_or_write_with_evidence, readers_with_evidence);

async fn journal_tied_to_target(flavour: Flavour) {
    let p = Pair::new(flavour, "tied").await;
    p.create(1000).await;
    let (from, to) = p.servers().await;
    let t = p.table();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.journal");
    let mut j = Journal::open_or_create(&path, header(&t)).unwrap();
    let r = backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), Some(&mut j), &bopts(), &mut |_| {}).await.unwrap();
    assert_eq!(r.inserted, 1000);
    // Every acknowledged chunk carries both servers' GTID positions.
    let mut done = 0;
    for e in j.entries() {
        if let Record::Step { name, state: StepState::Done, detail } = &e.record {
            if name == "chunk" {
                done += 1;
                for side in ["source_position", "target_position"] {
                    let g = detail[side]["gtid"].as_str().unwrap_or_default();
                    assert!(!g.is_empty(), "{side} in {detail}");
                }
            } else if name == "servers" {
                assert_eq!(detail["target"]["port"].as_u64(), Some(u64::from(p.dst.primary.port)), "{detail}");
            }
        }
    }
    assert_eq!(done, 5);
    drop(j);
    // The same journal against another server (the same schema and rows, a different server):
    // refused before anything is read or written.
    let other = pair(flavour);
    let mut oc = other.primary.conn().await.unwrap();
    oc.query_drop(format!("DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}", p.schema)).await.unwrap();
    let (_, mut d) = p.conns().await;
    let ddl: (String, String) = d.query_first(format!("SHOW CREATE TABLE {}.items", p.schema)).await.unwrap().unwrap();
    oc.query_drop(ddl.1.replace("CREATE TABLE `items`", &format!("CREATE TABLE {}.items", p.schema))).await.unwrap();
    oc.query_drop(format!("CREATE TABLE {}.items_tombstones (id BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB", p.schema)).await.unwrap();
    let elsewhere = Server::connect(&admin_spec(&other.primary)).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut j = Journal::open(&path).unwrap();
    let e = backfill(&from, &elsewhere, std::slice::from_ref(&t), Some(TOMB), Some(&mut j), &bopts(), &mut |_| {})
        .await
        .expect_err("another target is refused")
        .to_string();
    assert!(e.contains("belongs to another target") && e.contains("nothing was changed"), "{e}");
    assert!(e.contains(&format!(":{}", p.dst.primary.port)) && e.contains(&format!(":{}", other.primary.port)), "both named: {e}");
    let n: u64 = oc.query_first(format!("SELECT COUNT(*) FROM {}.items", p.schema)).await.unwrap().unwrap();
    assert_eq!(n, 0, "nothing copied to the other server");
    drop(j);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the journal is unchanged");
    // The right target resumes: every chunk was acknowledged, nothing left to copy.
    let mut j = Journal::open(&path).unwrap();
    let r = backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), Some(&mut j), &bopts(), &mut |_| {}).await.unwrap();
    assert_eq!((r.chunks_before, r.inserted), (5, 0), "{r:?}");
    oc.query_drop(format!("DROP DATABASE IF EXISTS {}", p.schema)).await.unwrap();
    other.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
}
both_flavours!(checkpoints_carry_both_positions_and_the_journal_is_tied_to_its_target, journal_tied_to_target);

async fn max_lag_holds_the_copy(flavour: Flavour) {
    // One after the other: both stop the same replica.
    lag_holds(flavour, LagBy::Gtid).await;
    lag_holds(flavour, LagBy::Heartbeat).await;
}

async fn lag_holds(flavour: Flavour, by: LagBy) {
    // The target is the primary of a pair; its replica stops applying for a while.
    let p = Pair { src: sandbox(flavour), dst: pair(flavour), schema: format!("vf_lag_{by:?}").to_lowercase() };
    for sb in [p.src, p.dst] {
        let mut c = sb.primary.conn().await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}", p.schema)).await.unwrap();
        c.disconnect().await.ok();
    }
    p.create(3000).await;
    p.dst.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let mut rc = replica(p.dst).conn().await.unwrap();
    rc.query_drop("STOP REPLICA SQL_THREAD").await.unwrap();
    let (from, to) = p.servers().await;
    let t = p.table();
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open_or_create(&dir.path().join("j"), header(&t)).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let task = {
        let (seen, t) = (seen.clone(), t.clone());
        let lag = LagOptions { max: Duration::from_millis(300), replicas: Vec::new(), by };
        let opts = BackfillOptions { max_rate: Some(3000.0), lag: Some(lag), ..bopts() };
        tokio::spawn(async move {
            let mut log = |p: &privfence::verify::Progress| seen.lock().unwrap().push(p.to_string());
            let r = backfill(&from, &to, std::slice::from_ref(&t), Some(TOMB), Some(&mut j), &opts, &mut log).await;
            (r, j)
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = !task.is_finished();
    let waiting = seen.lock().unwrap().iter().any(|l| l.contains("behind the target") && l.contains("--max-lag"));
    let copied_while_stopped = {
        let (_, mut d) = p.conns().await;
        d.query_first::<u64, _>(format!("SELECT COUNT(*) FROM {}.items", p.schema)).await.unwrap().unwrap()
    };
    rc.query_drop("START REPLICA SQL_THREAD").await.unwrap();
    let (r, j) = task.await.unwrap();
    let r = r.expect("the backfill finishes once the replica catches up");
    assert!(held && waiting, "{by:?}: the copy waited for the stopped replica: {:?}", seen.lock().unwrap().last());
    assert!(copied_while_stopped < 3000, "{by:?}: {copied_while_stopped} rows copied while the replica was stopped");
    assert!(r.lag_waits >= 1 && r.replicas.len() == 1, "{by:?}: {r:?}");
    assert_eq!(r.inserted, 3000);
    assert!(r.verify.as_ref().unwrap().is_equal());
    p.dst.wait_replica_caught_up(Duration::from_secs(60)).await.unwrap();
    if by == LagBy::Heartbeat {
        // The heartbeat table and row were created through the journal; each chunk carries its beat.
        let intents =
            j.entries().iter().filter(|e| matches!(&e.record, Record::Intent { sql, .. } if sql.contains("backfill_heartbeat"))).count();
        assert!(intents >= 1, "the heartbeat's setup is journaled");
        let (_, mut d) = p.conns().await;
        let beats: u64 = d.query_first("SELECT MAX(seq) FROM privfence.backfill_heartbeat").await.unwrap().unwrap();
        assert!(beats >= r.chunks as u64, "{beats} beats for {} chunks", r.chunks);
    }
}
both_flavours!(max_lag_holds_the_copy_while_a_replica_of_the_target_is_behind, max_lag_holds_the_copy);
