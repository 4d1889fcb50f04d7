//! `promote revert` on real servers, both flavours: under load with sync-back running (every
//! acknowledged write on the old primary, the write gap measured, sync-back ended by the revert
//! and refusing to start again afterwards), SIGKILL at three points then
//! a rerun, and `--abort` before its point of no return.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints the run's measurements

#[macro_use]
mod support;
#[path = "support/syncback.rs"]
mod common;

use common::*;
use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::journal::Journal;
use privfence::model::{AccountName, TableName};
use privfence::output::Output;
use privfence::promote::run::Options;
use privfence::sandbox::Sandbox;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::*;

/// The service: inserts 100000, 100001... into svc_db.items on the server named in `target`
/// (rewritten by the writes-back hook), retrying each number until acknowledged.
fn sequence_writer(
    sb: &Sandbox,
    target: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(u64, Instant, String)>> {
    let old = sb.primary.opts_as("svc_owner", "pw-owner");
    let new = support::replica(sb).opts_as("svc_owner", "pw-owner");
    tokio::spawn(async move {
        let (mut n, mut acked, mut conn) = (100_000u64, Vec::new(), None::<(String, mysql_async::Conn)>);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let want = std::fs::read_to_string(&target).unwrap_or_default().trim().to_string();
            if conn.as_ref().is_none_or(|(t, _)| t != &want) {
                let opts = if want == "old" { old.clone() } else { new.clone() };
                conn = mysql_async::Conn::new(opts).await.ok().map(|c| (want.clone(), c));
            }
            let ok = match conn.as_mut() {
                Some((_, c)) => match c.exec_drop("INSERT INTO svc_db.items VALUES (?, 'seq', 1, NOW(6))", (n,)).await {
                    Ok(()) => true,
                    Err(mysql_async::Error::Server(e)) if e.code == 1062 => true,
                    Err(_) => {
                        conn = None;
                        false
                    }
                },
                None => false,
            };
            if ok {
                acked.push((n, Instant::now(), want));
                n += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        acked
    })
}

/// A revert under load: sync-back runs, the service writes a sequence on the new server; the
/// revert fences it, waits for sync-back, renames back, gives the owner its grants back, and the
/// writes-back hook moves the service: every acknowledged number is on the old primary, the new
/// server is read-only, and the write gap is measured.
async fn revert_under_load(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    let ppath = promote(&sb, dir.path(), opts).await.expect("promotion");
    let cnf = syncback_account(&sb, dir.path()).await;
    let sync_err = std::fs::File::create(dir.path().join("sync.err")).unwrap();
    let mut sync = syncback_cmd(&sb, dir.path(), &cnf, &[]).stdout(std::process::Stdio::null()).stderr(sync_err).spawn().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "new").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = sequence_writer(&sb, target.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A second sync-back of the service (its own journal, as on another machine) refuses: the
    // first holds its lock on the old primary.
    let second = dir.path().join("second.syncback.journal");
    let o = syncback_cmd_journal(&sb, dir.path(), &cnf, &second, &["--exit-when-idle", "1s"]).output().unwrap();
    assert!(o.status.code() == Some(2) && text(&o).contains("is held"), "{flavour}: a second sync-back refuses: {}", text(&o));
    let promotion = Journal::read(&ppath).unwrap();
    let mut j = new_journal(&dir.path().join("svc.revert.journal"));
    let mut new = Node::connect(&admin_spec(replica), "new-server").await.unwrap();
    let mut old = Node::connect(&admin_spec(&sb.primary), "old-primary").await.unwrap();
    let owner_spec = privfence::db::ConnectSpec {
        user: "svc_owner".into(),
        password: Some(privfence::db::Secret::new("pw-owner")),
        ..admin_spec(&sb.primary)
    };
    let r = privfence::promote::revert::Revert {
        service: "svc",
        tables: vec![TableName::new("svc_db", "items")],
        owners: vec![AccountName::new("svc_owner", "%")],
        promotion: &promotion,
        lock_wait: Duration::from_secs(3),
        sync_timeout: Duration::from_secs(30),
        writes_back_hook: Some(format!("echo old > '{}'", target.display())),
        hook_timeout: Duration::from_secs(60),
        smoke_as: Some(owner_spec),
        failsafe: Some(Duration::from_secs(30)),
    };
    let mut out = Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let v = privfence::promote::revert::revert(&mut j, &mut new, &mut old, &r, &mut out).await.expect("revert");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if writer.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let acked = writer.await.unwrap();
    // The revert ended sync-back (its connection killed, journaled) once it caught up.
    let t0 = Instant::now();
    while sync.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = sync.try_wait().unwrap();
    let said = std::fs::read_to_string(dir.path().join("sync.err")).unwrap_or_default();
    if ended.is_none() {
        let _ = sync.kill();
        let _ = sync.wait();
    }
    assert!(ended.is_some_and(|s| s.code() == Some(2)), "{flavour}: the revert stopped sync-back: {ended:?} {said}");
    println!("{flavour}: sync-back said when the revert stopped it: {}", said.lines().last().unwrap_or_default());
    let killed = &privfence::promote::run::PromoteState::fold(j.entries()).detail("synced")["sync_back"]["killed_connection"];
    assert!(killed.is_u64(), "{flavour}: the revert journaled the kill of sync-back's connection: {killed}");
    // A sync-back started after the revert refuses: the revert's journal says so; without it,
    // the copy is gone (renamed back).
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "1s"]).output().unwrap();
    assert!(o.status.code() == Some(2) && text(&o).contains("point of no return"), "{flavour}: after a revert: {}", text(&o));
    drop(j);
    std::fs::rename(dir.path().join("svc.revert.journal"), dir.path().join("moved.journal")).unwrap();
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "1s"]).output().unwrap();
    assert!(o.status.code() == Some(2) && text(&o).contains("after a revert"), "{flavour}: sync-back after a revert refuses: {}", text(&o));
    let on_old: std::collections::BTreeSet<u64> = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db.items WHERE id >= 100000")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let missing: Vec<u64> = acked.iter().map(|a| a.0).filter(|n| !on_old.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged numbers missing on the old primary: {missing:?}");
    let last_new = acked.iter().filter(|a| a.2 == "new").map(|a| a.1).max().expect("writes on the new server");
    let first_old = acked.iter().filter(|a| a.2 == "old").map(|a| a.1).min().expect("writes on the old primary after the revert");
    let gap = first_old.duration_since(last_new);
    println!(
        "{flavour}: revert under load: {} writes acknowledged, write gap {} ms (last on the new server to the first on the old primary); {v}",
        acked.len(),
        gap.as_millis()
    );
    let ro = rows(replica, "SELECT CAST(@@GLOBAL.read_only AS CHAR)").await;
    assert!(ro == ["1"] || ro == ["ON"], "the new server is read-only: {ro:?}");
    assert_equal_tables(&sb).await;
    new.server.close().await;
    old.server.close().await;
    sb.destroy().unwrap();
}

/// After a revert, every row of the new server is on the old primary (which has the writes
/// made after the revert besides).
async fn assert_equal_tables(sb: &Sandbox) {
    let row = "SELECT CONCAT_WS('|', id, v, n, at) FROM svc_db.items ORDER BY id";
    let old: std::collections::BTreeSet<String> = rows(&sb.primary, row).await.into_iter().collect();
    let missing: Vec<String> = rows(support::replica(sb), row).await.into_iter().filter(|r| !old.contains(r)).take(5).collect();
    assert!(missing.is_empty(), "rows of the new server missing on the old primary after the revert: {missing:?}");
}

both_flavours!(revert_under_load_loses_nothing, revert_under_load);

/// SIGKILL of `privfence promote revert` at a step (before and after its point of no return),
/// then the same command again: the revert completes, the owner writes on the old primary, the
/// new server is read-only and every row of the new server is on the old primary.
async fn revert_killed(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    for point in ["step synced begun", "intent Promote rename-back", "step writes-back begun"] {
        let (sb, dir) = pair_with_service(flavour).await;
        let replica = support::replica(&sb);
        let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
        promote(&sb, dir.path(), opts).await.expect("promotion");
        let cnf = syncback_account(&sb, dir.path()).await;
        let mut sync = syncback_cmd(&sb, dir.path(), &cnf, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut c = replica.conn().await.unwrap();
        c.query_drop("INSERT INTO svc_db.items VALUES (5000, 'on-new', 1, NOW(6))").await.unwrap();
        c.disconnect().await.ok();
        let args: Vec<String> = revert_args(&sb, dir.path());
        let bin = env!("CARGO_BIN_EXE_privfence");
        let o = std::process::Command::new(bin).args(&args).env("PRIVFENCE_CRASH_AT_LABEL", point).output().unwrap();
        assert_eq!(o.status.signal(), Some(9), "killed at {point}: {}", text(&o));
        let o = std::process::Command::new(bin).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "the revert resumes after a kill at {point}: {}", text(&o));
        let _ = sync.kill();
        let _ = sync.wait();
        let mut w = mysql_async::Conn::new(sb.primary.opts_as("svc_owner", "pw-owner"))
            .await
            .unwrap_or_else(|e| panic!("owner login after {point}: {e}"));
        w.query_drop("INSERT INTO svc_db.items VALUES (5001, 'on-old', 1, NOW(6))")
            .await
            .unwrap_or_else(|e| panic!("owner writes on the old primary after {point}: {e}"));
        w.disconnect().await.ok();
        let ro = rows(replica, "SELECT CAST(@@GLOBAL.read_only AS CHAR)").await;
        assert!(ro == ["1"] || ro == ["ON"], "the new server is read-only after {point}: {ro:?}");
        assert_equal_tables(&sb).await;
        sb.destroy().unwrap();
    }
}

both_flavours!(revert_killed_then_resumed_completes, revert_killed);

/// Every durable point of a revert, in order: each step's begin and end, a statement of each
/// step, the kill of sync-back's connection and the point of no return.
const EVERY_POINT: [&str; 16] = [
    "step fence begun",
    "intent Fence",
    "step fence done",
    "step synced begun",
    "intent Kill stop-sync-back",
    "step synced done",
    "point_of_no_return",
    "step rename-back begun",
    "intent Promote rename-back",
    "step rename-back done",
    "step owner-back begun",
    "intent Promote owner-back",
    "step owner-back done",
    "step writes-back begun",
    "intent Promote read-only",
    "step writes-back done",
];

/// `kill -9` at every point of a revert under load, each resume killed at the next point, then a
/// last resume: it completes, every acknowledged number is on the old primary exactly once
/// (and every row of the new server), the new server is read-only.
async fn revert_killed_everywhere(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    let cnf = syncback_account(&sb, dir.path()).await;
    let mut sync =
        syncback_cmd(&sb, dir.path(), &cnf, &[]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "new").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = sequence_writer(&sb, target.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut args = revert_args(&sb, dir.path());
    args.extend(["--failsafe-after".into(), "60s".into(), "--writes-back-hook".into(), format!("echo old > '{}'", target.display())]);
    let bin = env!("CARGO_BIN_EXE_privfence");
    for point in EVERY_POINT {
        let o = std::process::Command::new(bin).args(&args).env("PRIVFENCE_CRASH_AT_LABEL", point).output().unwrap();
        assert_eq!(o.status.signal(), Some(9), "{flavour}: killed at {point}: {}", text(&o));
    }
    let o = std::process::Command::new(bin).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{flavour}: the revert completes after {} kills: {}", EVERY_POINT.len(), text(&o));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    let _ = sync.kill();
    let _ = sync.wait();
    let on_old: Vec<u64> = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db.items WHERE id >= 100000 ORDER BY id")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let missing: Vec<u64> = acked.iter().map(|a| a.0).filter(|n| on_old.binary_search(n).is_err()).collect();
    assert!(missing.is_empty(), "{flavour}: acknowledged numbers missing on the old primary: {missing:?}");
    assert!(acked.iter().any(|a| a.2 == "new") && acked.iter().any(|a| a.2 == "old"), "{flavour}: writes on both sides");
    let dups = rows(&sb.primary, "SELECT CAST(COUNT(*) - COUNT(DISTINCT id) AS CHAR) FROM svc_db.items").await;
    assert_eq!(dups, vec!["0".to_string()], "{flavour}: each number once");
    let ro = rows(replica, "SELECT CAST(@@GLOBAL.read_only AS CHAR)").await;
    assert!(ro == ["1"] || ro == ["ON"], "{flavour}: the new server is read-only: {ro:?}");
    assert_equal_tables(&sb).await;
    println!("{flavour}: {} kills, {} writes acknowledged, all on the old primary", EVERY_POINT.len(), acked.len());
    sb.destroy().unwrap();
}

both_flavours!(revert_killed_at_every_point_then_resumed_loses_nothing, revert_killed_everywhere);

/// `promote revert --abort` before its point of no return (killed while waiting for sync-back):
/// the new server's fence comes down, the owner writes there again, the old copy stays archived.
async fn revert_aborted(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    let args = revert_args(&sb, dir.path());
    let bin = env!("CARGO_BIN_EXE_privfence");
    let o = std::process::Command::new(bin).args(&args).env("PRIVFENCE_CRASH_AT_LABEL", "step synced begun").output().unwrap();
    assert_eq!(o.status.signal(), Some(9), "killed: {}", text(&o));
    let mut abort = args.clone();
    abort.push("--abort".into());
    let o = std::process::Command::new(bin).args(&abort).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "abort: {}", text(&o));
    let mut w = mysql_async::Conn::new(replica.opts_as("svc_owner", "pw-owner")).await.expect("the owner logs in on the new server again");
    w.query_drop("INSERT INTO svc_db.items VALUES (6000, 'after-abort', 1, NOW(6))")
        .await
        .expect("the owner writes on the new server again");
    w.disconnect().await.ok();
    let archived =
        rows(&sb.primary, "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.TABLES WHERE TABLE_NAME = '_items_pf_archived'").await;
    assert_eq!(archived, vec!["1".to_string()], "the old copy stays archived");
    sb.destroy().unwrap();
}

both_flavours!(revert_abort_before_its_point_of_no_return, revert_aborted);
