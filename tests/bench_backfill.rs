//! The backfill and verify benchmark (issue 15), run by `scripts/bench-backfill.sh` (ignored in
//! a plain `cargo test`). Two independent sandbox servers per flavour; `PRIVFENCE_BENCH_ROWS`
//! rows of about 100 bytes on the source (default 1,000,000). Measures, with peak RSS from
//! `/usr/bin/time`:
//!
//! - `privfence backfill` into an empty target (in all, and its copy alone: the report's
//!   `copy_ms`, before the verify it ends with), against `mysqldump --no-create-info
//!   --insert-ignore | mysql` of the same table into an empty target;
//! - `privfence verify` of the two equal tables, against reading both tables in full with the
//!   client (in parallel, output discarded).
//!
//! `PRIVFENCE_BENCH_CHUNK` sets `--chunk-rows` (to compare chunk sizes).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)]

mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::sandbox::{Sandbox, SandboxOptions, Server, Topology};
use std::process::{Command, Stdio};
use std::time::Instant;

const SCHEMA: &str = "vf_bench";

fn rows() -> u64 {
    std::env::var("PRIVFENCE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

async fn sql(s: &Server, stmts: &[String]) {
    let mut c = s.conn().await.unwrap();
    for q in stmts {
        c.query_drop(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    c.disconnect().await.ok();
}

fn ddl() -> String {
    format!("CREATE TABLE {SCHEMA}.items (id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL, c DATETIME NOT NULL) ENGINE=InnoDB")
}

async fn fresh_target(t: &Server) {
    sql(
        t,
        &[
            format!("DROP DATABASE IF EXISTS {SCHEMA}"),
            format!("CREATE DATABASE {SCHEMA}"),
            ddl(),
            format!("CREATE TABLE {SCHEMA}.items_tombstones (id BIGINT NOT NULL PRIMARY KEY)"),
        ],
    )
    .await;
}

async fn load_source(s: &Server, n: u64) {
    sql(s, &[format!("DROP DATABASE IF EXISTS {SCHEMA}"), format!("CREATE DATABASE {SCHEMA}"), ddl()]).await;
    let mut c = s.conn().await.unwrap();
    let mut have = 0u64;
    while have < n {
        let batch: Vec<String> = (have + 1..=(have + 5000).min(n))
            .map(|i| {
                format!(
                    "({i}, {}, '{}', '2026-01-01 00:00:00' + INTERVAL {} SECOND)",
                    i * 7 % 100_000,
                    format!("{i:064x}").get(0..60).unwrap_or(""),
                    i % 86_400
                )
            })
            .collect();
        c.query_drop(format!("INSERT INTO {SCHEMA}.items VALUES {}", batch.join(", "))).await.unwrap();
        have = (have + 5000).min(n);
    }
    c.disconnect().await.ok();
}

/// Runs `argv` under `/usr/bin/time`: (seconds, peak RSS in MB, exit status, stderr, stdout).
fn timed_out(argv: &[String]) -> (f64, f64, i32, String, String) {
    let started = Instant::now();
    let o = Command::new("/usr/bin/time").arg("-f").arg("CPU %U %S\nPEAKRSS %M").args(argv).stdout(Stdio::piped()).output().unwrap();
    let took = started.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let kb: f64 = err.lines().rev().find_map(|l| l.strip_prefix("PEAKRSS ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0);
    (took, kb / 1024.0, o.status.code().unwrap_or(-1), err, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// [`timed_out`] without the output.
fn timed(argv: &[String]) -> (f64, f64, i32, String) {
    let (t, rss, code, err, _) = timed_out(argv);
    (t, rss, code, err)
}

fn privfence(cmd: &str, src: &Server, dst: &Server, dir: &std::path::Path) -> Vec<String> {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, format!("[service.bench]\ntables = [\"{SCHEMA}.*\"]\nowners = [\"'nobody'@'%'\"]\n")).unwrap();
    let mut v: Vec<String> = vec![env!("CARGO_BIN_EXE_privfence").into(), cmd.into()];
    for a in [
        "--policy",
        policy.to_str().unwrap(),
        "--service",
        "bench",
        "--from",
        &format!("127.0.0.1:{}", src.port),
        "--to",
        &format!("127.0.0.1:{}", dst.port),
        "--from-defaults-file",
        src.client_cnf.to_str().unwrap(),
        "--to-defaults-file",
        dst.client_cnf.to_str().unwrap(),
        "--tombstones",
        "{table}_tombstones",
        "--out",
        dir.join("reports").to_str().unwrap(),
    ] {
        v.push(a.to_string());
    }
    if let Ok(rows) = std::env::var("PRIVFENCE_BENCH_CHUNK") {
        v.extend(["--chunk-rows".to_string(), rows]);
    }
    if cmd == "backfill" {
        v.extend(["--format".to_string(), "json".to_string()]);
        v.extend([
            "--journal".to_string(),
            dir.join(format!("j-{}", std::process::id())).to_string_lossy().into_owned(),
            "--restart".into(),
        ]);
    }
    v
}

fn shell_argv(s: &Server, program: &str) -> String {
    let dir = s.binaries.client.parent().unwrap();
    let argv = s.binaries.argv(&dir.join(program));
    argv.iter().map(|a| format!("'{}'", a.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

async fn bench(flavour: Flavour) {
    let n = rows();
    let src = support::sandbox(flavour);
    let dst = Sandbox::start(SandboxOptions::new(flavour, Topology::Single)).await.unwrap();
    let (s, d) = (&src.primary, &dst.primary);
    load_source(s, n).await;
    let dir = tempfile::tempdir().unwrap();

    fresh_target(d).await;
    let (bt, brss, code, err, json) = timed_out(&privfence("backfill", s, d, dir.path()));
    assert_eq!(code, 0, "backfill: {err}");
    // The copy alone: the backfill's own clock up to the verify it ends with.
    let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let copy = report["copy_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    // The client's own CPU (user, system): how much of the time is privfence, not the servers.
    let cpu = err.lines().rev().find_map(|l| l.strip_prefix("CPU ")).unwrap_or("?").to_string();
    let (vt, vrss, code, err) = timed(&privfence("verify", s, d, dir.path()));
    assert_eq!(code, 0, "verify: {err}");

    let dump = if flavour == Flavour::MariaDb { "mariadb-dump" } else { "mysqldump" };
    let client = if flavour == Flavour::MariaDb { "mariadb" } else { "mysql" };
    fresh_target(d).await;
    let pipe = format!(
        "{} --defaults-file={} --no-create-info --insert-ignore --single-transaction {SCHEMA} items | {} --defaults-file={} {SCHEMA}",
        shell_argv(s, dump),
        s.client_cnf.display(),
        shell_argv(d, client),
        d.client_cnf.display()
    );
    let (dt, drss, code, err) = timed(&["sh".into(), "-c".into(), pipe]);
    assert_eq!(code, 0, "dump | load: {err}");
    let read = format!(
        "{0} --defaults-file={1} -N -e 'SELECT * FROM {SCHEMA}.items' > /dev/null & {2} --defaults-file={3} -N -e 'SELECT * FROM {SCHEMA}.items' > /dev/null; wait",
        shell_argv(s, client),
        s.client_cnf.display(),
        shell_argv(d, client),
        d.client_cnf.display()
    );
    let (rt, _, code, err) = timed(&["sh".into(), "-c".into(), read]);
    assert_eq!(code, 0, "full read: {err}");
    println!(
        "BENCH {flavour}: rows {n}; backfill {bt:.2} s copy {copy:.2} s peak {brss:.0} MB; dump|load {dt:.2} s peak {drss:.0} MB; verify {vt:.2} s peak {vrss:.0} MB; full read {rt:.2} s"
    );
    println!("CPU {flavour}: privfence backfill user/system seconds {cpu}");
    dst.destroy().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-backfill.sh"]
async fn backfill_and_verify_benchmark_mariadb() {
    bench(Flavour::MariaDb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-backfill.sh"]
async fn backfill_and_verify_benchmark_mysql() {
    bench(Flavour::MySql).await
}
