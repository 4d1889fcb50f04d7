//! The `verify`, `backfill` and `readers` commands through the built binary, both flavours
//! (issue 15): `verify --watch` rounds until the servers converge, `verify --prom-file` written
//! atomically with its metric names, `backfill --dry-run` changing nothing, `readers`, and
//! `backfill --lag-by heartbeat` holding the copy while a replica of the target stops applying
//! (its progress lines and brake reason, plain off a terminal), and the progress bar drawn on a
//! terminal only (`script` gives the command a pseudo-terminal), never with `--format json`;
//! `--cleanup-tombstones` reporting its verify and then the tombstones counted and deleted.
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
    tables_on(sandbox(flavour), target(flavour), schema, n, m).await
}

/// [`tables`] between two given sandboxes.
async fn tables_on(src: &'static Sandbox, dst: &'static Sandbox, schema: &str, n: u64, m: u64) -> (&'static Sandbox, &'static Sandbox) {
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

/// Polls `child` until it exits or `limit` passes (then kills it and panics).
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the backfill did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn heartbeat_cli(flavour: Flavour) {
    // The target is the primary of a pair (an independent server from the source); its replica
    // stops applying while the backfill runs.
    let schema = "vfc_heartbeat";
    let dst = pair(flavour);
    let (src, dst) = tables_on(sandbox(flavour), dst, schema, 3000, 0).await;
    let mut d = dst.primary.conn().await.unwrap();
    // The heartbeat table is this run's to create (through its journal).
    d.query_drop("DROP DATABASE IF EXISTS privfence").await.unwrap();
    dst.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let mut rc = replica(dst).conn().await.unwrap();
    rc.query_drop("STOP REPLICA SQL_THREAD").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("hb.journal");
    let args = ["--max-lag", "300ms", "--lag-by", "heartbeat", "--max-rate", "3000", "--journal", journal.to_str().unwrap()];
    let mut child = migration("backfill", src, dst, dir.path(), schema, &args).spawn().unwrap();
    let err = Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (err, mut pipe) = (err.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buf) {
                err.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let replica_port = replica(dst).port;
    let started = Instant::now();
    while !err.lock().unwrap().contains("behind the target") {
        assert!(child.try_wait().unwrap().is_none(), "the backfill ended without waiting: {}", err.lock().unwrap());
        assert!(started.elapsed() < Duration::from_secs(60), "no wait for the stopped replica: {}", err.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Held: nothing more is copied while the SQL thread stays stopped.
    let count = format!("SELECT COUNT(*) FROM {schema}.items");
    let before: u64 = d.query_first(&count).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after: u64 = d.query_first(&count).await.unwrap().unwrap();
    assert!(child.try_wait().unwrap().is_none(), "still waiting: {}", err.lock().unwrap());
    assert_eq!(before, after, "rows copied while the replica was stopped");
    assert!(after < 3000, "{after} rows copied before the wait");
    rc.query_drop("START REPLICA SQL_THREAD").await.unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(120));
    reader.join().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let err = err.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "finished once the replica applied again: {stdout}{err}");
    let n: u64 = d.query_first(&count).await.unwrap().unwrap();
    assert_eq!(n, 3000);
    // The brake's reason names the replica and the limit; progress lines carry the rate; off a
    // terminal there is no bar (no carriage return, no escape sequence).
    let held = err.lines().find(|l| l.contains("behind the target")).unwrap();
    assert!(held.contains(&format!(":{replica_port} is ")) && held.contains("(more than --max-lag 300ms): waiting"), "{held}");
    assert!(err.lines().any(|l| l.contains(" rows read, ") && l.contains(" copied, ") && l.contains(" rows/s, ETA ")), "{err}");
    assert!(err.contains("backfill: about ") && err.contains("verify: about "), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "no bar off a terminal: {err:?}");
    // The heartbeat's table and row were created through the journal, before the copy's chunks.
    let entries = privfence::journal::Journal::read(&journal).unwrap();
    let first_chunk = entries.iter().position(|e| matches!(&e.record, privfence::journal::Record::Step { name, .. } if name == "chunk"));
    let intents: Vec<(usize, &str)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.record {
            privfence::journal::Record::Intent { sql, .. } if sql.contains("backfill_heartbeat") => Some((i, sql.as_str())),
            _ => None,
        })
        .collect();
    assert!(intents.iter().any(|(_, s)| s.starts_with("CREATE TABLE IF NOT EXISTS `privfence`.`backfill_heartbeat`")), "{intents:?}");
    assert!(intents.iter().any(|(_, s)| s.starts_with("INSERT INTO `privfence`.`backfill_heartbeat`")), "{intents:?}");
    assert!(intents.iter().all(|(i, _)| Some(*i) < first_chunk), "{intents:?} before chunk {first_chunk:?}");
    let beats: u64 = d.query_first("SELECT MAX(seq) FROM privfence.backfill_heartbeat").await.unwrap().unwrap();
    assert!(beats >= 3000 / 50, "a beat per chunk: {beats}");
    dst.wait_replica_caught_up(Duration::from_secs(60)).await.unwrap();
}
both_flavours!(backfill_lag_by_heartbeat_waits_for_a_stopped_replica_then_finishes, heartbeat_cli);

/// Runs `cmd` on a pseudo-terminal (util-linux `script`): what a person at a terminal would see,
/// stdout and stderr together, and the exit code.
fn on_a_terminal(cmd: &Command) -> (Option<i32>, String) {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(quote).collect();
    let o = Command::new("script")
        .args(["-qefc", &line.join(" "), "/dev/null"])
        .env_remove("MYSQL_PWD")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script (a pseudo-terminal for the command)");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
}

async fn bar_on_a_terminal(flavour: Flavour) {
    let schema = "vfc_bar";
    let (src, dst) = tables(flavour, schema, 2000, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("bar.journal");
    // --max-rate makes the copy last about two seconds, long enough for the bar to be drawn.
    let args = ["--max-rate", "1000", "--journal", journal.to_str().unwrap()];
    let (code, screen) = on_a_terminal(&migration("backfill", src, dst, dir.path(), schema, &args));
    assert_eq!(code, Some(0), "{screen}");
    // The bar: rows done of the estimate, the rate and the time left; the table as its message.
    let bar = screen.split('\r').find(|l| l.contains("copied [") && l.contains(" rows (")).unwrap_or_else(|| panic!("{screen:?}"));
    let counts = bar.split("] ").nth(1).and_then(|t| t.split(" rows (").next()).unwrap_or_default();
    assert!(counts.contains('/') && bar.contains("`vfc_bar`.`items`: "), "done/estimate: {bar:?}");
    assert!(bar.contains("/s, ") && bar.contains(" left)"), "rate and time left: {bar:?}");
    // No plain progress lines where the bar is drawn.
    assert!(!screen.contains(" rows/s, ETA "), "{screen:?}");
    // With --format json: no bar on the terminal either, and the document is whole.
    let mut d = dst.primary.conn().await.unwrap();
    d.query_drop(format!("DELETE FROM {schema}.items WHERE id > 1000")).await.unwrap();
    let args = ["--max-rate", "1000", "--restart", "--format", "json", "--journal", journal.to_str().unwrap()];
    let (code, screen) = on_a_terminal(&migration("backfill", src, dst, dir.path(), schema, &args));
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains(" rows (") && !screen.contains("] "), "no bar with --format json: {screen:?}");
    assert!(screen.contains("\"kind\": \"backfill\"") || screen.contains("\"kind\":\"backfill\""), "{screen:?}");
}
both_flavours!(backfill_draws_its_bar_on_a_terminal_only_and_never_with_json, bar_on_a_terminal);

async fn cleanup_cli(flavour: Flavour) {
    let schema = "vfc_clean";
    let (src, dst) = tables(flavour, schema, 300, 0).await;
    let mut d = dst.primary.conn().await.unwrap();
    d.query_drop(format!("CREATE TABLE {schema}.items_tombstones (id BIGINT NOT NULL PRIMARY KEY)")).await.unwrap();
    // The application deleted rows 5 and 6 (their tombstones); the source still has them.
    d.query_drop(format!("INSERT INTO {schema}.items_tombstones VALUES (5), (6)")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("clean.journal");
    let args = ["--tombstones", "{table}_tombstones", "--journal", journal.to_str().unwrap()];
    let o = migration("backfill", src, dst, dir.path(), schema, &args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let args = ["--tombstones", "{table}_tombstones", "--cleanup-tombstones", "--journal", journal.to_str().unwrap()];
    let o = migration("backfill", src, dst, dir.path(), schema, &args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Its progress, plain off a terminal: the verify first, then the tombstones counted and deleted.
    let verify = err.find("verify: about ").unwrap_or_else(|| panic!("{err}"));
    let cleanup = err.find("tombstone cleanup: about 2 rows").unwrap_or_else(|| panic!("{err}"));
    assert!(verify < cleanup, "{err}");
    assert!(err.contains(&format!("`{schema}`.`items_tombstones`: deleting tombstones in batches of 1000")), "{err}");
    assert!(err.contains(&format!("`{schema}`.`items_tombstones`: 2 tombstones deleted")), "{err}");
    assert!(err.contains("tombstones deleted in 1 batches"), "{err}");
    let left: u64 = d.query_first(format!("SELECT COUNT(*) FROM {schema}.items_tombstones")).await.unwrap().unwrap();
    assert_eq!(left, 0);
}
both_flavours!(cleanup_tombstones_reports_its_progress_and_empties_the_tombstones, cleanup_cli);
