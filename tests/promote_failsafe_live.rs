//! A promotion's fail-safe and refusals (issue 13), through the binary, both flavours: `kill -9`
//! between the fence and the point of no return leaves the primary to take the fence down by
//! itself (the owner writes again with its exact grants); a SIGINT with the fence up undoes it
//! and stops resumably (exit 4); a preflight refusal exits 2 and changes nothing.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::journal::{Journal, Record};
use privfence::model::AccountName;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A fresh primary and replica holding `svc_db.seq`, owned by `'svc_owner'@'%'`, and a folder
/// with the service's policy.
async fn pair_with_service(flavour: Flavour, extra: &[&str]) -> (Sandbox, tempfile::TempDir) {
    let sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await.expect("pair");
    let mut sql: Vec<String> = [
        "CREATE DATABASE svc_db",
        "CREATE TABLE svc_db.seq (n BIGINT PRIMARY KEY)",
        "INSERT INTO svc_db.seq VALUES (1)",
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
    let mut policy = String::from(
        "[service.svc]\ntables = [\"svc_db.*\"]\nowners = [\"'svc_owner'@'%'\"]\n[[service.svc.exempt]]\naccount = \"root\"\nreason = \"DBA\"\n",
    );
    if flavour == Flavour::MySql {
        for a in ["mysql.infoschema", "mysql.session"] {
            policy.push_str(&format!("[[service.svc.exempt]]\naccount = \"'{a}'@'localhost'\"\nreason = \"internal\"\n"));
        }
    }
    std::fs::write(dir.path().join("p.toml"), policy).unwrap();
    (sb, dir)
}

fn args(sb: &Sandbox, dir: &tempfile::TempDir, verb: &str, extra: &[&str]) -> Vec<String> {
    let replica = sb.replica.as_ref().unwrap();
    let mut a: Vec<String> = vec![
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
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

async fn owner_grants(sb: &Sandbox) -> BTreeSet<String> {
    let mut s = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.unwrap();
    let c = privfence::engine::snapshot::read(&mut s, &[AccountName::new("svc_owner", "%")]).await.unwrap();
    s.close().await;
    c
}

/// The owner logs in on the primary and writes a row.
async fn owner_writes(sb: &Sandbox, n: u64) -> Result<(), String> {
    let mut c = mysql_async::Conn::new(sb.primary.opts_as("svc_owner", "pw-owner")).await.map_err(|e| e.to_string())?;
    let r = c.exec_drop("INSERT INTO svc_db.seq (n) VALUES (?)", (n,)).await.map_err(|e| e.to_string());
    c.disconnect().await.ok();
    r
}

async fn wait_owner_writes(sb: &Sandbox, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut n = 100;
    while t.elapsed() < timeout {
        n += 1;
        if owner_writes(sb, n).await.is_ok() {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// `kill -9` between the fence and the point of no return: within `--failsafe-after` + 10 s
/// the owner writes on the primary again, with exactly its grants; `promote abort` then
/// finishes cleanly.
async fn kill9_after_fence(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    let (sb, dir) = pair_with_service(flavour, &[]).await;
    let before = owner_grants(&sb).await;
    let bin = env!("CARGO_BIN_EXE_privfence");
    let o = Command::new(bin)
        .args(args(&sb, &dir, "run", &["--failsafe-after", "4s"]))
        .env("PRIVFENCE_CRASH_AT_LABEL", "step catch-up begun")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "killed after the fence: {}", text(&o));
    assert!(owner_writes(&sb, 2).await.is_err(), "the fence is up: the owner cannot write");
    let took = wait_owner_writes(&sb, Duration::from_secs(14)).await;
    assert!(took.is_some(), "the owner writes again within failsafe-after + 10 s");
    assert_eq!(owner_grants(&sb).await, before, "with exactly its grants");
    let entries = Journal::read(&dir.path().join("svc.promote.journal")).unwrap();
    assert!(!entries.iter().any(|e| matches!(e.record, Record::PointOfNoReturn { .. })), "never past the point of no return");
    let r = Command::new(bin).args(args(&sb, &dir, "abort", &[])).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "abort after the fail-safe: {}", text(&r));
    assert_eq!(owner_grants(&sb).await, before);
    let mut c = sb.primary.conn().await.unwrap();
    let events: Option<i64> =
        c.query_first("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'privfence'").await.unwrap();
    c.disconnect().await.ok();
    assert_eq!(events, Some(0), "disarmed");
    let mut c = sb.replica.as_ref().unwrap().conn().await.unwrap();
    let schemas: Option<i64> =
        c.query_first("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'privfence'").await.unwrap();
    c.disconnect().await.ok();
    assert_eq!(schemas, Some(0), "the fence's fail-safe never reached the replica");
    sb.destroy().unwrap();
}

both_flavours!(kill9_between_fence_and_point_of_no_return, kill9_after_fence);

/// SIGINT while the fence is up: the fence comes down at once (the owner writes again) and the
/// promotion stops resumably (exit 4); `promote resume` then completes it.
async fn sigint_with_fence_up(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour, &[]).await;
    let before = owner_grants(&sb).await;
    let bin = env!("CARGO_BIN_EXE_privfence");
    let err = std::fs::File::create(dir.path().join("run.err")).unwrap();
    let mut child = Command::new(bin)
        .args(args(&sb, &dir, "run", &["--failsafe-after", "30s"]))
        .env("PRIVFENCE_STALL_AT_LABEL", "step catch-up begun:3000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let journal = dir.path().join("svc.promote.journal");
    let end = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&journal).unwrap_or_default().contains("\"name\":\"catch-up\"") {
        assert!(Instant::now() < end && child.try_wait().unwrap().is_none(), "no catch-up step");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(owner_writes(&sb, 2).await.is_err(), "the fence is up");
    // SAFETY: signalling the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let t = Instant::now();
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "privfence stops after SIGINT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let said = std::fs::read_to_string(dir.path().join("run.err")).unwrap();
    assert_eq!(st.code(), Some(4), "stopped resumably: {said}");
    assert!(said.contains("promote resume"), "{said}");
    assert!(owner_writes(&sb, 3).await.is_ok(), "the fence came down: the owner writes on the primary");
    assert_eq!(owner_grants(&sb).await, before);
    let r = Command::new(bin).args(args(&sb, &dir, "resume", &[])).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "resume completes the promotion: {}", text(&r));
    let mut c = mysql_async::Conn::new(sb.replica.as_ref().unwrap().opts_as("svc_owner", "pw-owner")).await.unwrap();
    c.query_drop("INSERT INTO svc_db.seq VALUES (10)").await.expect("the owner writes on the new server");
    c.disconnect().await.ok();
    sb.destroy().unwrap();
}

both_flavours!(sigint_with_the_fence_up_undoes_it_and_stops_resumably, sigint_with_fence_up);

/// A preflight that refuses exits 2, says nothing was changed, and journals no step.
async fn preflight_refusal(flavour: Flavour) {
    let (sb, dir) =
        pair_with_service(flavour, &["CREATE USER 'intruder'@'%' IDENTIFIED BY 'pw-i'", "GRANT SELECT ON svc_db.seq TO 'intruder'@'%'"])
            .await;
    let before = owner_grants(&sb).await;
    let o = Command::new(env!("CARGO_BIN_EXE_privfence")).args(args(&sb, &dir, "run", &[])).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "a refusal exits 2: {}", text(&o));
    assert!(text(&o).contains("nothing was changed"), "{}", text(&o));
    assert!(!text(&o).contains("needs attention"), "{}", text(&o));
    let entries = Journal::read(&dir.path().join("svc.promote.journal")).unwrap_or_default();
    assert!(!entries.iter().any(|e| matches!(e.record, Record::Step { .. })), "no step journaled");
    assert_eq!(owner_grants(&sb).await, before);
    assert!(owner_writes(&sb, 2).await.is_ok());
    sb.destroy().unwrap();
}

both_flavours!(a_preflight_refusal_exits_2, preflight_refusal);

/// A hook that hangs is bounded by `--hook-timeout`: its whole process group is killed and the
/// promotion stops at that step (resumable), long before the hook would have ended.
async fn hook_timeout(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour, &[]).await;
    let pgid_file = dir.path().join("pgid");
    let hook = format!("echo $$ > '{}'; sleep 60 & sleep 60", pgid_file.display());
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(args(&sb, &dir, "run", &["--reads-hook", &hook, "--hook-timeout", "2s"]))
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(4), "the reads step stops, resumable: {}", text(&o));
    assert!(text(&o).contains("--hook-timeout"), "{}", text(&o));
    assert!(took < Duration::from_secs(30), "bounded ({took:?})");
    let pgid: i32 = std::fs::read_to_string(&pgid_file).unwrap().trim().parse().unwrap();
    // Killed processes linger as zombies until their new parent reaps them: allow a moment.
    let t = Instant::now();
    // SAFETY: probing (signal 0) a process group this test's child created.
    while unsafe { libc::kill(-pgid, 0) } == 0 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: as above.
    let alive = unsafe { libc::kill(-pgid, 0) } == 0;
    assert!(!alive, "the hook's process group (sleep children included) was killed");
    sb.destroy().unwrap();
}

both_flavours!(a_hanging_hook_is_killed_after_hook_timeout, hook_timeout);
