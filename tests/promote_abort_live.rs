//! `promote abort` after a SIGKILL inside the owner step, both flavours: the service's owner
//! exists on the primary only (created with binary logging off), so step 3 creates it on the
//! replica. The process is killed right after the `CREATE USER` ran (before its outcome was
//! journaled), and again after it was journaled but before the owner's grants and the step's
//! record: in both cases `promote abort` finds the account in the journal's intents and drops
//! it from the replica, and leaves the primary's alone.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::journal::{Journal, Record};
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::time::Duration;
use support::*;

async fn owners_on(s: &privfence::sandbox::Server) -> i64 {
    let mut c = s.conn().await.unwrap();
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM mysql.user WHERE User = 'svc_owner'").await.unwrap();
    c.disconnect().await.ok();
    n.unwrap_or(0)
}

async fn abort_drops_a_half_created_owner(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    for point in ["executed Promote create-owner", "intent Promote grant-owner"] {
        let sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await.expect("pair");
        let replica = sb.replica.as_ref().unwrap();
        admin_exec(&sb, &["CREATE DATABASE svc_db".into(), "CREATE TABLE svc_db.seq (n BIGINT PRIMARY KEY)".into()]).await;
        sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
        // The owner on the primary only: binary logging off for these statements.
        let mut c = sb.primary.conn().await.unwrap();
        c.query_drop("SET SESSION sql_log_bin = 0").await.unwrap();
        c.query_drop("CREATE USER 'svc_owner'@'%' IDENTIFIED BY 'pw-owner'").await.unwrap();
        c.query_drop("GRANT SELECT, INSERT ON svc_db.seq TO 'svc_owner'@'%'").await.unwrap();
        c.disconnect().await.ok();
        assert_eq!(owners_on(replica).await, 0, "the owner is not on the replica before the promotion");
        let dir = tempfile::tempdir().unwrap();
        support::write_service_policy(&dir.path().join("p.toml"), flavour);
        let journal = dir.path().join("svc.promote.journal");
        let mut args: Vec<String> = ["promote", "run", "--service", "svc", "--policy"].map(String::from).to_vec();
        args.push(dir.path().join("p.toml").display().to_string());
        args.extend(["--primary".into(), format!("{}:{}", sb.primary.host, sb.primary.port)]);
        args.extend(["--replica".into(), format!("{}:{}", replica.host, replica.port)]);
        args.extend(["--journal".into(), journal.display().to_string(), "--yes".into(), "--until".into(), "owner".into()]);
        args.extend(["--defaults-file".into(), sb.primary.client_cnf.display().to_string()]);
        let bin = env!("CARGO_BIN_EXE_privfence");
        let text = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        let o = std::process::Command::new(bin).args(&args).env("PRIVFENCE_CRASH_AT_LABEL", point).output().unwrap();
        assert_eq!(o.status.signal(), Some(9), "killed at {point}: {}", text(&o));
        assert_eq!(owners_on(replica).await, 1, "the owner step created the account before the kill at {point}");
        let abort: Vec<String> = vec![
            "promote".into(),
            "abort".into(),
            "--service".into(),
            "svc".into(),
            "--journal".into(),
            journal.display().to_string(),
            "--defaults-file".into(),
            sb.primary.client_cnf.display().to_string(),
        ];
        let a = std::process::Command::new(bin).args(&abort).output().unwrap();
        assert_eq!(a.status.code(), Some(0), "abort after a kill at {point}: {}", text(&a));
        assert!(text(&a).contains("dropped 'svc_owner'@'%' on the replica"), "abort says what it dropped: {}", text(&a));
        assert_eq!(owners_on(replica).await, 0, "abort dropped the owner it created on the replica (kill at {point})");
        assert_eq!(owners_on(&sb.primary).await, 1, "the primary keeps its owner (kill at {point})");
        let entries = Journal::read(&journal).unwrap();
        let dropped = entries.iter().any(|e| matches!(&e.record, Record::Intent { step: Some(s), .. } if s == "drop-owner"));
        assert!(dropped, "the drop is journaled (kill at {point})");
        let h = {
            let mut n = privfence::engine::node::Node::connect(&admin_spec(replica), "replica").await.unwrap();
            let h = n.replica_health().await.unwrap().expect("still a replica");
            n.server.close().await;
            h
        };
        assert!(h.io_running && h.sql_running, "replication runs after the abort (kill at {point})");
        sb.destroy().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_drops_an_owner_created_before_a_kill_mariadb() {
    abort_drops_a_half_created_owner(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_drops_an_owner_created_before_a_kill_mysql() {
    abort_drops_a_half_created_owner(Flavour::MySql).await;
}
