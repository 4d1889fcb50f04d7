//! The revert's fence has the promotion's server-side fail-safe (issue 16), through the
//! binary, both flavours: `kill -9` of `promote revert` between its fence on the new server and
//! its point of no return leaves the new server to take the fence down by itself: the owner
//! writes there again within `--failsafe-after` + 10 s, with exactly the grants it had. A resume
//! (sync-back running) then finds the fail-safe fired, fences again and completes.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints how long the fail-safe took

#[macro_use]
mod support;
#[path = "support/syncback.rs"]
mod common;

use common::*;
use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::model::AccountName;
use privfence::promote::run::Options;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use support::*;

async fn owner_grants(s: &privfence::sandbox::Server) -> BTreeSet<String> {
    let mut c = privfence::db::Server::connect(&admin_spec(s)).await.unwrap();
    let g = privfence::engine::snapshot::read(&mut c, &[AccountName::new("svc_owner", "%")]).await.unwrap();
    c.close().await;
    g
}

/// One write through the owner on `s`: true once acknowledged.
async fn owner_writes(s: &privfence::sandbox::Server, id: u64) -> bool {
    let Ok(mut c) = mysql_async::Conn::new(s.opts_as("svc_owner", "pw-owner")).await else { return false };
    let ok = c.exec_drop("INSERT INTO svc_db.items VALUES (?, 'failsafe', 1, NOW(6))", (id,)).await.is_ok();
    c.disconnect().await.ok();
    ok
}

async fn failsafe_takes_the_fence_down(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    let before = owner_grants(replica).await;
    assert!(owner_writes(replica, 7000).await, "{flavour}: the owner writes on the new server before the revert");
    let mut args = revert_args(&sb, dir.path());
    args.extend(["--failsafe-after".to_string(), "4s".to_string()]);
    let bin = env!("CARGO_BIN_EXE_privfence");
    // No sync-back runs: killed between the fence and the wait for sync-back.
    let o = std::process::Command::new(bin).args(&args).env("PRIVFENCE_CRASH_AT_LABEL", "step synced begun").output().unwrap();
    assert_eq!(o.status.signal(), Some(9), "{flavour}: killed with the fence up: {}", text(&o));
    let killed = Instant::now();
    assert!(!owner_writes(replica, 7001).await, "{flavour}: the fence is up right after the kill");
    let mut took = None;
    while killed.elapsed() < Duration::from_secs(14) {
        if owner_writes(replica, 7002).await {
            took = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = took.unwrap_or_else(|| panic!("{flavour}: the owner writes on the new server again within failsafe-after + 10 s"));
    println!("{flavour}: the new server took the revert's fence down {} ms after the kill", took.as_millis());
    assert_eq!(owner_grants(replica).await, before, "{flavour}: the owner's exact grants are back");
    // The resume finds the fail-safe fired, fences again and completes (sync-back running).
    let cnf = syncback_account(&sb, dir.path()).await;
    let mut sync =
        syncback_cmd(&sb, dir.path(), &cnf, &[]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let o = std::process::Command::new(bin).args(&args).output().unwrap();
    let _ = sync.kill();
    let _ = sync.wait();
    assert_eq!(o.status.code(), Some(0), "{flavour}: the revert resumes after the fail-safe fired: {}", text(&o));
    assert!(text(&o).contains("took the revert's fence down by itself"), "{flavour}: the resume says the fail-safe fired: {}", text(&o));
    assert!(owner_writes(&sb.primary, 7003).await, "{flavour}: the owner writes on the old primary after the revert");
    let got = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db.items WHERE id IN (7000, 7002) ORDER BY id").await;
    assert_eq!(got, vec!["7000".to_string(), "7002".to_string()], "{flavour}: the new server's writes came back");
    let events = rows(
        replica,
        "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'privfence' AND EVENT_NAME LIKE 'failsafe_%'",
    )
    .await;
    assert_eq!(events, vec!["0".to_string()], "{flavour}: no fail-safe left on the new server");
    sb.destroy().unwrap();
}

both_flavours!(revert_failsafe_takes_the_fence_down_after_kill_9, failsafe_takes_the_fence_down);
