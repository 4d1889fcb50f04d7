//! The `verify`, `backfill` and `readers` commands through the built binary, both flavours
//! (issue 15): `verify --watch` rounds until the servers converge, `verify --prom-file` written
//! atomically with its metric names, `backfill --dry-run` changing nothing, and `readers`.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
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

/// `items` with `n` rows on the source and `m` (the first ones) on the target, in `schema`.
async fn tables(flavour: Flavour, schema: &str, n: u64, m: u64) -> (&'static Sandbox, &'static Sandbox) {
    let (src, dst) = (sandbox(flavour), target(flavour));
    for (sb, rows) in [(src, n), (dst, m)] {
        let mut c = sb.primary.conn().await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {schema}.items (id BIGINT NOT NULL PRIMARY KEY, val VARCHAR(40), pad VARBINARY(20))"))
            .await
            .unwrap();
        if rows > 0 {
            let v: Vec<String> = (1..=rows).map(|i| format!("({i}, 'v{i}', X'0A0B')")).collect();
            c.query_drop(format!("INSERT INTO {schema}.items VALUES {}", v.join(", "))).await.unwrap();
        }
        c.disconnect().await.ok();
    }
    (src, dst)
}

fn policy(dir: &Path, schema: &str) -> String {
    let p = dir.join("policy.toml");
    std::fs::write(&p, format!("[service.vf]\ntables = [\"{schema}.*\"]\nowners = [\"'nobody'@'%'\"]\n")).unwrap();
    p.to_string_lossy().into_owned()
}

/// `privfence CMD` between the two servers, with reports under `dir`.
fn migration(cmd: &str, src: &Sandbox, dst: &Sandbox, dir: &Path, schema: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_privfence"));
    c.args([cmd, "--policy", &policy(dir, schema), "--service", "vf"])
        .args(["--from", &format!("127.0.0.1:{}", src.primary.port), "--to", &format!("127.0.0.1:{}", dst.primary.port)])
        .args(["--from-defaults-file", src.primary.client_cnf.to_str().unwrap()])
        .args(["--to-defaults-file", dst.primary.client_cnf.to_str().unwrap()])
        .args(["--chunk-rows", "50", "--recheck-delay", "100ms", "--out", dir.join("reports").to_str().unwrap()])
        .args(extra)
        .env_remove("MYSQL_PWD")
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const METRICS: [&str; 6] = [
    "privfence_verify_equal ",
    "privfence_verify_differing_keys ",
    "privfence_verify_round ",
    "privfence_verify_rows_source ",
    "privfence_verify_rows_target ",
    "privfence_verify_last_run_timestamp_seconds ",
];

async fn watch_until_converged(flavour: Flavour) {
    let schema = "vfc_watch";
    let (src, dst) = tables(flavour, schema, 300, 300).await;
    let mut d = dst.primary.conn().await.unwrap();
    d.query_drop(format!("UPDATE {schema}.items SET val = 'drift' WHERE id IN (7, 250)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("verify.prom");
    let child =
        migration("verify", src, dst, dir.path(), schema, &["--watch", "1s", "--rounds", "20", "--prom-file", prom.to_str().unwrap()])
            .spawn()
            .unwrap();
    // A scraper reading the file over and over: it sees a whole file every time, or none yet.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (stop, prom) = (stop.clone(), prom.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(t) = std::fs::read_to_string(&prom) {
                    assert!(METRICS.iter().all(|m| t.contains(m)) && t.ends_with('\n'), "a partial --prom-file: {t:?}");
                    reads += 1;
                }
            }
            reads
        })
    };
    // Wait for a round that found the drift, then repair the target.
    let started = Instant::now();
    loop {
        let t = std::fs::read_to_string(&prom).unwrap_or_default();
        if t.contains("privfence_verify_equal 0") {
            assert!(t.contains("privfence_verify_differing_keys 2"), "{t}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no round reported the drift");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.query_drop(format!("UPDATE {schema}.items SET val = CONCAT('v', id) WHERE id IN (7, 250)")).await.unwrap();
    let o = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let reads = scraper.join().expect("every read saw a whole file");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "converged: exit 0: {out}");
    assert!(out.contains("round 1: 2 keys differ in"), "{out}");
    assert!(out.contains("round 2: in 1s"), "{out}");
    let converged = out.lines().find(|l| l.starts_with("converged: equal in round")).unwrap_or_else(|| panic!("{out}"));
    assert!(converged.contains("(differed from round 1)"), "{converged}");
    let last = std::fs::read_to_string(&prom).unwrap();
    assert!(last.contains("privfence_verify_equal 1") && last.contains("privfence_verify_differing_keys 0"), "{last}");
    assert!(reads > 0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left: {leftovers:?}");
    // Keys are reported, never row data.
    assert!(!out.contains("drift"), "{out}");
    // --rounds bounds a watch that never converges: exit 1, said so.
    d.query_drop(format!("UPDATE {schema}.items SET val = 'drift' WHERE id = 9")).await.unwrap();
    let o = migration("verify", src, dst, dir.path(), schema, &["--watch", "200ms", "--rounds", "2"]).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("not converged: 1 keys still differ after 2 rounds"), "{out}");
}
both_flavours!(verify_watch_rounds_until_converged_and_writes_the_prom_file_atomically, watch_until_converged);

async fn dry_run_changes_nothing(flavour: Flavour) {
    let schema = "vfc_dry";
    let (src, dst) = tables(flavour, schema, 400, 100).await;
    let mut d = dst.primary.conn().await.unwrap();
    d.query_drop(format!("CREATE TABLE {schema}.items_tombstones (id BIGINT NOT NULL PRIMARY KEY)")).await.unwrap();
    d.query_drop(format!("INSERT INTO {schema}.items_tombstones VALUES (150), (151)")).await.unwrap();
    let sum = format!("CHECKSUM TABLE {schema}.items, {schema}.items_tombstones");
    let before: Vec<(String, Option<u64>)> = d.query(&sum).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("dry.journal");
    let args = ["--dry-run", "--tombstones", "{table}_tombstones", "--format", "json", "--journal", journal.to_str().unwrap()];
    let o = migration("backfill", src, dst, dir.path(), schema, &args).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((r["kind"].as_str(), r["rows_read"].as_u64()), (Some("backfill"), Some(400)), "{r}");
    assert_eq!((r["inserted"].as_u64(), r["present"].as_u64(), r["tombstoned"].as_u64()), (Some(298), Some(100), Some(2)), "{r}");
    assert!(r["verify"].is_null(), "a dry run does not verify: {r}");
    let after: Vec<(String, Option<u64>)> = d.query(&sum).await.unwrap();
    assert_eq!(before, after, "the target is unchanged");
    let n: u64 = d.query_first(format!("SELECT COUNT(*) FROM {schema}.items")).await.unwrap().unwrap();
    assert_eq!(n, 100);
    assert!(!journal.exists(), "a dry run writes no journal");
}
both_flavours!(backfill_dry_run_counts_and_changes_nothing, dry_run_changes_nothing);

async fn readers_cli(flavour: Flavour) {
    let schema = "vfc_readers";
    let (src, _) = tables(flavour, schema, 10, 0).await;
    let mut s = src.primary.conn().await.unwrap();
    for u in ["vfc_app", "vfc_idle"] {
        s.query_drop(format!("DROP USER IF EXISTS '{u}'@'%'")).await.unwrap();
        s.query_drop(format!("CREATE USER '{u}'@'%' IDENTIFIED BY 'Pw-{u}-1'")).await.unwrap();
        s.query_drop(format!("GRANT SELECT ON {schema}.items TO '{u}'@'%'")).await.unwrap();
    }
    let mut app = mysql_async::Conn::new(src.primary.opts_as("vfc_app", "Pw-vfc_app-1")).await.unwrap();
    let _: Vec<u64> = app.query(format!("SELECT id FROM {schema}.items")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_privfence"))
            .args(["readers", "--policy", &policy(dir.path(), schema), "--service", "vf"])
            .args(["--server", &format!("127.0.0.1:{}", src.primary.port), "--defaults-file", src.primary.client_cnf.to_str().unwrap()])
            .args(["--format", format])
            .env_remove("MYSQL_PWD")
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    };
    let o = run("table");
    let out = text(&o);
    let line =
        |u: &str| out.lines().find(|l| l.starts_with(&format!("'{u}'@'%'"))).unwrap_or_else(|| panic!("{u} listed: {out}")).to_string();
    assert!(line("vfc_idle").contains("can read: not seen"), "{out}");
    assert!(line("vfc_app").contains("can read:"), "{out}");
    assert!(!out.contains("SELECT id FROM"), "no statement text: {out}");
    let o = run("json");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!((r["format"].as_u64(), r["kind"].as_str()), (Some(1), Some("readers")), "{r}");
    let accounts = r["accounts"].as_array().unwrap();
    let app_entry = accounts.iter().find(|a| a["account"].to_string().contains("vfc_app")).unwrap_or_else(|| panic!("{r}"));
    assert_eq!(app_entry["can_read"], true);
    match flavour {
        // MySQL's statement history attributes the open connection's read: exit 1 (in use).
        Flavour::MySql => {
            assert!(line("vfc_app").contains("USED"), "{out}");
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        }
        // MariaDB's defaults have counters only: never claimed unused, exit 0 or 1.
        Flavour::MariaDb => {
            assert!(!line("vfc_app").contains("not seen"), "{out}");
            assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        }
    }
    app.disconnect().await.ok();
    for u in ["vfc_app", "vfc_idle"] {
        s.query_drop(format!("DROP USER IF EXISTS '{u}'@'%'")).await.unwrap();
    }
}
both_flavours!(readers_lists_accounts_as_table_and_json, readers_cli);
