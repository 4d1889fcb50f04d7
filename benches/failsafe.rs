//! The server-side fail-safe (issue 13): from privfence's death (`kill -9` in the middle of a
//! watch) to the account restored by the server alone, over many runs, per flavour.
//!
//!     cargo bench --bench failsafe -- [--flavour mariadb|mysql|both] [--runs N] [--after S]
//!
//! Each run: a fresh schema with a service table and a monolith table, an app account holding
//! `SELECT` on the whole schema, a primary and a replica; `privfence session start` (the binary,
//! as an operator runs it) cuts the account with `--failsafe-after S` (default 5); once the
//! watch has begun privfence is killed with SIGKILL. The clock runs from the kill to the first
//! moment the account's grants on the primary equal the snapshot again (polled every 20 ms),
//! and to the same on the replica. `session resume` then closes the turn (it must exit 3 and
//! cite the fail-safe). Prints one Markdown block per flavour (scripts/bench-failsafe.sh puts
//! it in docs/benchmarks.md) and exits 1 when the target (max at most S + 2 s) is missed.
#![allow(clippy::disallowed_methods)] // a benchmark sets up its servers and plays the application
#![allow(clippy::print_stdout)] // a benchmark prints its results

use mysql_async::prelude::Queryable;
use privfence::db::Flavour;
use privfence::engine::snapshot;
use privfence::model::AccountName;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    flavours: Vec<Flavour>,
    runs: usize,
    after: u64,
}

fn args() -> Args {
    let mut a = Args { flavours: vec![Flavour::MariaDb, Flavour::MySql], runs: 10, after: 5 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--flavour" => {
                a.flavours = match v.as_str() {
                    "mariadb" => vec![Flavour::MariaDb],
                    "mysql" => vec![Flavour::MySql],
                    _ => vec![Flavour::MariaDb, Flavour::MySql],
                };
                i += 1;
            }
            "--runs" => {
                a.runs = v.parse().expect("--runs N");
                i += 1;
            }
            "--after" => {
                a.after = v.parse().expect("--after SECONDS");
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

async fn grants(s: &mut privfence::db::Server, who: &AccountName) -> BTreeSet<String> {
    snapshot::read(s, std::slice::from_ref(who)).await.expect("snapshot")
}

/// One run: (kill → primary restored, kill → replica restored).
async fn one_run(sb: &Sandbox, n: usize, after: u64, work: &std::path::Path) -> (Duration, Duration) {
    let replica = sb.replica.as_ref().expect("a replica");
    let schema = format!("pff_{n}");
    let user = format!("pff_{n}");
    let mut admin = sb.primary.conn().await.expect("admin");
    for sql in [
        format!("CREATE DATABASE {schema}"),
        format!("CREATE TABLE {schema}.svc_items (id INT PRIMARY KEY)"),
        format!("CREATE TABLE {schema}.orders (id INT PRIMARY KEY)"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'"),
        format!("GRANT SELECT ON {schema}.* TO '{user}'@'%'"),
    ] {
        admin.query_drop(&sql).await.expect("setup");
    }
    admin.disconnect().await.ok();
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let service = format!("f{n}");
    let policy = work.join(format!("p{n}.toml"));
    std::fs::write(&policy, format!("[service.{service}]\ntables = [\"{schema}.svc_*\"]\nowners = [\"'root'@'localhost'\"]\n")).unwrap();
    let journal = work.join(format!("j{n}.journal"));
    let who = AccountName::new(user.clone(), "%");
    let mut watch_p = privfence::db::Server::connect(&sb.primary.connect_spec()).await.expect("connect");
    let mut watch_r = privfence::db::Server::connect(&replica.connect_spec()).await.expect("connect");
    let before = grants(&mut watch_p, &who).await;
    let common: Vec<String> = vec![
        "--policy".into(),
        policy.display().to_string(),
        "--service".into(),
        service.clone(),
        "--journal".into(),
        journal.display().to_string(),
        "--reports".into(),
        work.join("reports").display().to_string(),
        "--no-notify".into(),
        "--defaults-file".into(),
        sb.primary.client_cnf.display().to_string(),
        "--replica".into(),
        format!("{}:{}", replica.host, replica.port),
    ];
    let mut start = vec!["session".to_string(), "start".into()];
    start.extend(common.iter().cloned());
    let account = format!("'{user}'@'%'");
    start.extend(
        ["--account", &account, "--yes", "--kill-connections", "--window", "300s", "--failsafe-after", &format!("{after}s")]
            .map(String::from),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(&start)
        .env("HOME", "/nonexistent")
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn privfence");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&journal).unwrap_or_default().contains("\"type\":\"watch_begin\"") {
        assert!(Instant::now() < deadline, "run {n}: the watch did not begin");
        assert!(child.try_wait().unwrap().is_none(), "run {n}: privfence ended before the watch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment into the watch, as in real life (the heartbeat has beaten).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_ne!(grants(&mut watch_p, &who).await, before, "run {n}: the cut is in force");
    child.kill().expect("kill -9");
    let killed = Instant::now();
    let _ = child.wait();
    let limit = Duration::from_secs(after + 30);
    let mut primary_at = None;
    let mut replica_at = None;
    while (primary_at.is_none() || replica_at.is_none()) && killed.elapsed() < limit {
        if primary_at.is_none() && grants(&mut watch_p, &who).await == before {
            primary_at = Some(killed.elapsed());
        }
        if replica_at.is_none() && grants(&mut watch_r, &who).await == before {
            replica_at = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch_p.close().await;
    watch_r.close().await;
    let (p, r) = (primary_at.expect("the server restored the primary"), replica_at.expect("the restore reached the replica"));
    let mut resume = vec!["session".to_string(), "resume".into()];
    resume.extend(common);
    let o = Command::new(env!("CARGO_BIN_EXE_privfence")).args(&resume).env("HOME", "/nonexistent").output().expect("resume");
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "run {n}: resume closes the turn as restored: {said}");
    assert!(said.contains("server-side fail-safe after"), "run {n}: resume cites the fail-safe: {said}");
    (p, r)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2], *v.last().unwrap())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let mut failed = false;
    for flavour in &a.flavours {
        let sb = Sandbox::start(SandboxOptions::new(*flavour, Topology::PrimaryReplica)).await.expect("sandbox");
        let work = tempfile::tempdir().expect("tempdir");
        let mut runs = Vec::new();
        for n in 0..a.runs {
            runs.push(one_run(&sb, n, a.after, work.path()).await);
        }
        let version = {
            let mut c = sb.primary.conn().await.expect("admin");
            let v: Option<String> = c.query_first("SELECT @@version").await.expect("version");
            c.disconnect().await.ok();
            v.unwrap_or_default()
        };
        sb.destroy().expect("destroy");
        let (pmin, pmed, pmax) = stats(runs.iter().map(|r| r.0).collect());
        let (rmin, rmed, rmax) = stats(runs.iter().map(|r| r.1).collect());
        let target = Duration::from_secs(a.after + 2);
        let ok = pmax <= target;
        failed |= !ok;
        println!("<!-- bench-failsafe {} -->", flavour.name());
        println!(
            "**{flavour} {version}**, primary + replica, {} runs, `--failsafe-after {}s`, {} (machine: {} cores, `{}`):\n",
            runs.len(),
            a.after,
            chrono::Utc::now().format("%Y-%m-%d"),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
                .unwrap_or_default()
        );
        println!("| measure | min | median | max |\n| --- | --- | --- | --- |");
        println!("| `kill -9` → grants equal the snapshot on the primary | {:.0} ms | {:.0} ms | {:.0} ms |", ms(pmin), ms(pmed), ms(pmax));
        println!("| `kill -9` → grants equal the snapshot on the replica | {:.0} ms | {:.0} ms | {:.0} ms |", ms(rmin), ms(rmed), ms(rmax));
        println!("\nTarget max ≤ failsafe-after + 2 s = {} s: **{}**.", a.after + 2, if ok { "met" } else { "MISSED" });
        println!("<!-- /bench-failsafe {} -->\n", flavour.name());
    }
    std::process::exit(if failed { 1 } else { 0 });
}
