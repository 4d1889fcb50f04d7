//! A whole promotion on real servers, both flavours: the service writes a numbered sequence
//! through its own account (retrying, and switching servers when the writes hook says so) while
//! another account writes the monolith's tables on the primary; privfence runs every step.
//! Every number the service saw acknowledged is on the new server exactly once, the old
//! primary has no service write the new server lacks, the other writes never stop, and the
//! service's write unavailability is measured.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints the run's measurements (docs/benchmarks.md)

mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::journal::{Journal, Record, JOURNAL_FORMAT};
use privfence::model::{AccountName, TableName};
use privfence::output::Output;
use privfence::promote::run::{self, Hooks, Options, Service};
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

#[derive(Default)]
struct Seq {
    acked: Vec<(u64, Instant, String)>,
}

/// The service: inserts 1, 2, 3... into svc_db.seq every ~10 ms on the server named in
/// `target` (a file the writes hook rewrites), retrying each number until acknowledged.
fn service_writer(
    sb: &Sandbox,
    target: PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Seq>>, tokio::task::JoinHandle<()>) {
    let seq = Arc::new(Mutex::new(Seq::default()));
    let primary = sb.primary.opts_as("svc_owner", "pw-owner");
    let replica = sb.replica.as_ref().unwrap().opts_as("svc_owner", "pw-owner");
    let s2 = seq.clone();
    let h = tokio::spawn(async move {
        let mut n = 1u64;
        let mut conn: Option<(String, mysql_async::Conn)> = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let want = std::fs::read_to_string(&target).unwrap_or_default().trim().to_string();
            if conn.as_ref().is_none_or(|(t, _)| t != &want) {
                let opts = if want == "replica" { replica.clone() } else { primary.clone() };
                conn = mysql_async::Conn::new(opts).await.ok().map(|c| (want.clone(), c));
            }
            let ok = match conn.as_mut() {
                Some((_, c)) => match c.exec_drop("INSERT INTO svc_db.seq (n) VALUES (?)", (n,)).await {
                    Ok(()) => true,
                    Err(mysql_async::Error::Server(e)) if e.code == 1062 => true, // committed before a lost ack
                    Err(_) => {
                        conn = None;
                        false
                    }
                },
                None => false,
            };
            if ok {
                s2.lock().unwrap().acked.push((n, Instant::now(), want));
                n += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (seq, h)
}

/// Another application writing the monolith on the primary throughout; returns the longest gap
/// between its successful writes.
fn other_writer(sb: &Sandbox, stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<(u64, Duration)> {
    let opts = sb.primary.opts_as("other_app", "pw-other");
    tokio::spawn(async move {
        let pool = mysql_async::Pool::new(opts);
        let (mut ok, mut last, mut gap) = (0u64, Instant::now(), Duration::ZERO);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut c) = pool.get_conn().await {
                if c.query_drop("INSERT INTO main_db.other (v) VALUES (1)").await.is_ok() {
                    ok += 1;
                    gap = gap.max(last.elapsed());
                    last = Instant::now();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pool.disconnect().await.ok();
        (ok, gap)
    })
}

/// The test service's policy: `svc_db.*` owned by `'svc_owner'@'%'`, root and the server's
/// internal accounts exempt.
/// A fresh primary and replica holding the service (`svc_db.seq`, owned by `'svc_owner'@'%'`)
/// and `extra` statements, caught up, and a folder with the service's policy (`p.toml`).
async fn pair_with_service(flavour: Flavour, extra: &[&str]) -> (Sandbox, tempfile::TempDir) {
    let sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await.expect("pair");
    let mut sql: Vec<String> = [
        "CREATE DATABASE svc_db",
        "CREATE TABLE svc_db.seq (n BIGINT PRIMARY KEY)",
        "CREATE USER 'svc_owner'@'%' IDENTIFIED BY 'pw-owner'",
        "GRANT SELECT, INSERT ON svc_db.seq TO 'svc_owner'@'%'",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sql.extend(extra.iter().map(|s| s.to_string()));
    admin_exec(&sb, &sql).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    support::write_service_policy(&dir.path().join("p.toml"), flavour);
    (sb, dir)
}

/// The policy written by [`pair_with_service`].
fn load_policy(dir: &tempfile::TempDir) -> privfence::policy::Policy {
    privfence::policy::load(&dir.path().join("p.toml"), chrono::Local::now().date_naive()).expect("policy")
}

fn service(policy: &privfence::policy::Policy, tool: AccountName) -> Service<'_> {
    Service {
        policy,
        name: "svc",
        tables: vec![TableName::new("svc_db", "seq")],
        owners: vec![AccountName::new("svc_owner", "%")],
        today: chrono::Local::now().date_naive(),
        tool,
    }
}

fn new_journal(path: &std::path::Path) -> Journal {
    let header =
        Record::Header { format: JOURNAL_FORMAT, tool_version: "t".into(), service: "svc".into(), policy: "p".into(), tables: vec![] };
    Journal::open_or_create(path, header).unwrap()
}

async fn ids(s: &privfence::sandbox::Server, sql: &str) -> Vec<u64> {
    let mut c = s.conn().await.unwrap();
    let v: Vec<u64> = c.query(sql).await.unwrap();
    c.disconnect().await.ok();
    v
}

async fn full_run(flavour: Flavour) {
    let (sb, dir) = pair_with_service(
        flavour,
        &[
            "CREATE DATABASE main_db",
            "CREATE TABLE main_db.other (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
            "CREATE USER 'other_app'@'%' IDENTIFIED BY 'pw-other'",
            "GRANT SELECT, INSERT ON main_db.other TO 'other_app'@'%'",
        ],
    )
    .await;
    let replica = sb.replica.as_ref().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "primary").unwrap();
    support::write_service_policy(&dir.path().join("p.toml"), flavour);
    let policy = load_policy(&dir);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seq, svc_task) = service_writer(&sb, target.clone(), stop.clone());
    let other = other_writer(&sb, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (server, inv) = inventory(&sb).await;
    let tool = server.current_user.clone();
    server.close().await;
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let jpath = dir.path().join("svc.promote.journal");
    let mut j = new_journal(&jpath);
    let svc = service(&policy, tool);
    let opts = Options {
        hooks: Hooks {
            reads: Some("true".into()),
            reads_back: None,
            writes: Some(format!("echo replica > '{}'", target.display())),
            go_file: None,
            go_command: None,
        },
        yes: true,
        smoke_as: Some(privfence::db::ConnectSpec {
            user: "svc_owner".into(),
            password: Some(privfence::db::Secret::new("pw-owner")),
            ..admin_spec(replica)
        }),
        archive_watch: Duration::from_millis(300),
        ..Options::default()
    };
    let said = Captured::default();
    let mut out = Output::new(Box::new(std::io::sink()), Box::new(said.clone()));
    let fence_at = Instant::now();
    run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &opts, &mut out)
        .await
        .unwrap_or_else(|e| panic!("promotion: {e}\n{}", said.text()));
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if seq.lock().unwrap().acked.iter().any(|(_, _, t)| t == "replica") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "the service writes on the new server");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    svc_task.await.unwrap();
    let (other_ok, other_gap) = other.await.unwrap();
    let acked = std::mem::take(&mut seq.lock().unwrap().acked);
    // Every acknowledged number is on the new server exactly once (the key makes "once" hold;
    // the count shows nothing was lost).
    let on_new: BTreeSet<u64> = ids(replica, "SELECT n FROM svc_db.seq").await.into_iter().collect();
    let missing: Vec<u64> = acked.iter().map(|a| a.0).filter(|n| !on_new.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged numbers missing on the new server: {missing:?}");
    // The old primary has nothing the new server lacks (no service write after the fence).
    let on_old: BTreeSet<u64> = ids(&sb.primary, "SELECT n FROM svc_db._seq_pf_archived").await.into_iter().collect();
    assert!(on_old.is_subset(&on_new), "the old primary committed service writes after the fence");
    // Rate and unavailability.
    let last_old = acked.iter().filter(|a| a.2 == "primary").map(|a| a.1).max().unwrap();
    let first_new = acked.iter().filter(|a| a.2 == "replica").map(|a| a.1).min().unwrap();
    let span = acked.last().unwrap().1.duration_since(acked[0].1).as_secs_f64();
    let rate = acked.len() as f64 / span.max(0.001);
    let unavailable = first_new.duration_since(last_old);
    let state = run::PromoteState::fold(&Journal::read(&jpath).unwrap());
    assert!(state.finished() && state.point_of_no_return);
    println!(
        "{flavour}: {} writes acknowledged at {rate:.0}/s; unavailable {} ms (last write on the old primary to the first on the new one); other app: {other_ok} writes, longest gap {} ms; whole run {} ms",
        acked.len(),
        unavailable.as_millis(),
        other_gap.as_millis(),
        fence_at.elapsed().as_millis()
    );
    assert!(rate >= 50.0, "the service wrote at least 50 times a second ({rate:.0}/s)");
    assert!(other_gap < Duration::from_secs(1), "the other application's writes never stopped (longest gap {other_gap:?})");
    assert!(unavailable <= Duration::from_secs(2), "write unavailability at most 2 s (was {unavailable:?})");
    let d = state.detail("writes");
    assert_eq!(d["smoke_write"].as_array().map(|a| a.len()), Some(1), "the smoke write ran: {d}");
    // Cleanup: only with the service's name typed back; then the archive goes on the old side,
    // the other services' tables on the new side, and the service's table stays.
    let tables = [TableName::new("svc_db", "seq")];
    let e = run::cleanup(&mut j, &mut primary, &mut rep, "svc", "yes", &tables, &mut out).await.unwrap_err();
    assert!(e.to_string().contains("--confirm svc"), "{e}");
    let dropped = run::cleanup(&mut j, &mut primary, &mut rep, "svc", "svc", &tables, &mut out).await.expect("cleanup");
    assert!(dropped.iter().any(|d| d.contains("_seq_pf_archived")) && dropped.iter().any(|d| d.contains("main_db")), "{dropped:?}");
    assert_eq!(ids(replica, "SELECT COUNT(*) FROM svc_db.seq").await[0], on_new.len() as u64);
    assert_eq!(ids(replica, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'main_db'").await, vec![0]);
    assert_eq!(ids(&sb.primary, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '_seq_pf_archived'").await, vec![0]);
    assert!(ids(&sb.primary, "SELECT COUNT(*) FROM main_db.other").await[0] > 0, "the monolith keeps its own tables");
    primary.server.close().await;
    rep.server.close().await;
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_promotion_under_load_mariadb() {
    full_run(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_promotion_under_load_mysql() {
    full_run(Flavour::MySql).await;
}

/// `abort` after every step before the point of no return restores the original topology and
/// grants: the replica still replicates from the primary and is read-only, the owner writes on
/// the primary with its old grants, and the service's tables are where they were.
async fn abort_everywhere(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour, &[]).await;
    let replica = sb.replica.as_ref().unwrap();
    let policy = load_policy(&dir);
    let owner = AccountName::new("svc_owner", "%");
    for (k, until) in run::STEPS[..8].iter().enumerate() {
        let (server, inv) = inventory(&sb).await;
        let tool = server.current_user.clone();
        server.close().await;
        let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
        let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
        let before = privfence::engine::snapshot::read(&mut primary.server, std::slice::from_ref(&owner)).await.unwrap();
        let mut j = new_journal(&dir.path().join(format!("a{k}.journal")));
        let svc = service(&policy, tool);
        let opts = Options { yes: true, until: Some(until.to_string()), ..Options::default() };
        let mut out = Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
        run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &opts, &mut out).await.unwrap_or_else(|e| panic!("run until {until}: {e}"));
        run::abort(&mut j, &mut primary, &mut rep, &opts, &mut out).await.unwrap_or_else(|e| panic!("abort after {until}: {e}"));
        assert_eq!(
            privfence::engine::snapshot::read(&mut primary.server, std::slice::from_ref(&owner)).await.unwrap(),
            before,
            "grants after abort at {until}"
        );
        let mut c = mysql_async::Conn::new(sb.primary.opts_as("svc_owner", "pw-owner"))
            .await
            .unwrap_or_else(|e| panic!("the owner logs in after abort at {until}: {e}"));
        c.exec_drop("INSERT INTO svc_db.seq (n) VALUES (?)", (k as u64 + 1,))
            .await
            .unwrap_or_else(|e| panic!("the owner writes after abort at {until}: {e}"));
        c.disconnect().await.ok();
        let h = rep.replica_health().await.unwrap().expect("still a replica");
        assert!(h.io_running && h.sql_running, "replication runs after abort at {until}");
        let p = primary.position().await.unwrap();
        assert!(rep.wait_for(&p, Duration::from_secs(30)).await.unwrap(), "the replica follows after abort at {until}");
        let n: Vec<u64> = {
            let mut c = replica.conn().await.unwrap();
            let v = c.query("SELECT @@GLOBAL.read_only").await.unwrap();
            c.disconnect().await.ok();
            v
        };
        assert_eq!(n, vec![1], "the replica stays read-only after abort at {until}");
        primary.server.close().await;
        rep.server.close().await;
    }
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_at_every_step_restores_topology_and_grants_mariadb() {
    abort_everywhere(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_at_every_step_restores_topology_and_grants_mysql() {
    abort_everywhere(Flavour::MySql).await;
}

/// SIGKILL of `privfence promote run` at the start of every step (and in the middle of the
/// fence and of the promotion), then `promote resume`: the promotion completes correctly.
async fn crash_every_step(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    let mut points: Vec<String> = run::STEPS.iter().map(|s| format!("step {s} begun")).collect();
    points.push("intent Fence lock".into());
    points.push("intent Promote read-write".into());
    points.push("intent Promote archive".into());
    for point in points {
        let (sb, dir) = pair_with_service(flavour, &["INSERT INTO svc_db.seq VALUES (1), (2), (3)"]).await;
        let replica = sb.replica.as_ref().unwrap();
        let args = |verb: &str| -> Vec<String> {
            vec![
                "promote".into(),
                verb.into(),
                "--policy".into(),
                dir.path().join("p.toml").display().to_string(),
                "--service".into(),
                "svc".into(),
                "--primary".into(),
                format!("{}:{}", sb.primary.host, sb.primary.port),
                "--replica".into(),
                format!("{}:{}", replica.host, replica.port),
                "--journal".into(),
                dir.path().join("svc.promote.journal").display().to_string(),
                "--yes".into(),
                "--archive-watch".into(),
                "200ms".into(),
                "--defaults-file".into(),
                sb.primary.client_cnf.display().to_string(),
            ]
        };
        let bin = env!("CARGO_BIN_EXE_privfence");
        let o = std::process::Command::new(bin).args(args("run")).env("PRIVFENCE_CRASH_AT_LABEL", &point).output().unwrap();
        let text = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.signal(), Some(9), "killed at {point}: {}", text(&o));
        // resume and status need only the service and the journal: the policy and the servers
        // come from the journal (and the servers are checked to be the same ones).
        let only = |verb: &str, rest: &[String]| -> Vec<String> {
            let mut v = vec!["promote".into(), verb.into(), "--service".into(), "svc".into(), "--journal".into()];
            v.push(dir.path().join("svc.promote.journal").display().to_string());
            v.extend(rest.iter().cloned());
            v
        };
        let conn = ["--yes", "--archive-watch", "200ms", "--defaults-file"].map(String::from);
        let mut rest = conn.to_vec();
        rest.push(sb.primary.client_cnf.display().to_string());
        let r = std::process::Command::new(bin).args(only("resume", &rest)).output().unwrap();
        assert_eq!(r.status.code(), Some(0), "resume after a kill at {point}: {}", text(&r));
        let s = std::process::Command::new(bin).args(only("status", &[])).output().unwrap();
        assert_eq!(s.status.code(), Some(0), "status from the journal alone: {}", text(&s));
        assert!(String::from_utf8_lossy(&s.stdout).contains("past the point of no return"), "{}", text(&s));
        let mut swapped = rest.clone();
        swapped.extend(["--primary".to_string(), format!("{}:{}", replica.host, replica.port)]);
        let w = std::process::Command::new(bin).args(only("resume", &swapped)).output().unwrap();
        assert_eq!(w.status.code(), Some(2), "another server than the journal's is refused: {}", text(&w));
        assert!(text(&w).contains("is not the server this promotion's journal ran on"), "{}", text(&w));
        let st = run::PromoteState::fold(&Journal::read(&dir.path().join("svc.promote.journal")).unwrap());
        assert!(st.finished(), "finished after a kill at {point}");
        let mut c = mysql_async::Conn::new(replica.opts_as("svc_owner", "pw-owner"))
            .await
            .unwrap_or_else(|e| panic!("owner login on the new server after {point}: {e}"));
        c.query_drop("INSERT INTO svc_db.seq VALUES (4)")
            .await
            .unwrap_or_else(|e| panic!("owner writes on the new server after {point}: {e}"));
        c.disconnect().await.ok();
        assert_eq!(
            ids(&sb.primary, "SELECT n FROM svc_db._seq_pf_archived").await,
            vec![1, 2, 3],
            "archived on the old primary after {point}"
        );
        sb.destroy().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_then_resume_completes_mariadb() {
    crash_every_step(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_then_resume_completes_mysql() {
    crash_every_step(Flavour::MySql).await;
}

/// Step 6 waits for the operator's go (a command that succeeds), and a stop there can be
/// aborted.
async fn waits_for_go(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour, &[]).await;
    let replica = sb.replica.as_ref().unwrap();
    let policy = load_policy(&dir);
    let (server, inv) = inventory(&sb).await;
    let tool = server.current_user.clone();
    server.close().await;
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let mut j = new_journal(&dir.path().join("g.journal"));
    let svc = service(&policy, tool);
    let go = dir.path().join("go");
    let hooks = Hooks { go_command: Some(format!("test -e '{}'", go.display())), ..Hooks::default() };
    let opts = Options { hooks, yes: false, until: Some("ready".into()), ..Options::default() };
    let mut out = Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let reads_opts = Options { yes: true, until: Some("compare".into()), ..Options::default() };
    run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &reads_opts, &mut out).await.expect("up to compare");
    let go2 = go.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        std::fs::write(go2, "").unwrap();
    });
    let t = Instant::now();
    run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &opts, &mut out).await.expect("ready");
    assert!(t.elapsed() >= Duration::from_millis(1400), "waited for the go");
    let st = run::PromoteState::fold(j.entries());
    assert_eq!(st.state("ready"), Some(privfence::journal::StepState::Done));
    assert_eq!(st.state("fence"), None, "stopped after ready");
    run::abort(&mut j, &mut primary, &mut rep, &opts, &mut out).await.expect("abort");
    primary.server.close().await;
    rep.server.close().await;
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_operators_go_mariadb() {
    waits_for_go(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_operators_go_mysql() {
    waits_for_go(Flavour::MySql).await;
}
