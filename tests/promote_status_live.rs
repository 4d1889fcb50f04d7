//! `promote status --format json` on a real promotion's journal, both flavours: a run stopped
//! after step 2 (`--until zero-lag`) is reported step by step, and the document validates
//! against docs/schemas/promote-status.json; the table format still prints the steps.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use privfence::db::Flavour;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::time::Duration;
use support::*;

async fn status_json(flavour: Flavour) {
    let sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await.expect("pair");
    let replica = sb.replica.as_ref().unwrap();
    admin_exec(
        &sb,
        &[
            "CREATE DATABASE svc_db".into(),
            "CREATE TABLE svc_db.seq (n BIGINT PRIMARY KEY)".into(),
            "CREATE USER 'svc_owner'@'%' IDENTIFIED BY 'pw-owner'".into(),
            "GRANT SELECT, INSERT ON svc_db.seq TO 'svc_owner'@'%'".into(),
        ],
    )
    .await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    support::write_service_policy(&dir.path().join("p.toml"), flavour);
    let journal = dir.path().join("svc.promote.journal");
    let bin = env!("CARGO_BIN_EXE_privfence");
    let text = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let mut args: Vec<String> = ["promote", "run", "--service", "svc", "--policy"].map(String::from).to_vec();
    args.push(dir.path().join("p.toml").display().to_string());
    args.extend(["--primary".into(), format!("{}:{}", sb.primary.host, sb.primary.port)]);
    args.extend(["--replica".into(), format!("{}:{}", replica.host, replica.port)]);
    args.extend(["--journal".into(), journal.display().to_string(), "--yes".into(), "--until".into(), "zero-lag".into()]);
    args.extend(["--defaults-file".into(), sb.primary.client_cnf.display().to_string()]);
    let o = std::process::Command::new(bin).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "run --until zero-lag: {}", text(&o));
    let status = |format: &str| {
        let a: Vec<String> = ["promote", "status", "--service", "svc", "--journal", &journal.display().to_string(), "--format", format]
            .map(String::from)
            .to_vec();
        std::process::Command::new(bin).args(&a).output().unwrap()
    };
    let o = status("json");
    assert_eq!(o.status.code(), Some(0), "status --format json: {}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o)));
    validate("promote-status.json", &doc);
    assert_eq!(doc["service"], "svc");
    assert_eq!(doc["point_of_no_return"], false);
    assert_eq!(doc["finished"], false);
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "preflight");
    assert_eq!(steps[0]["state"], "done", "{doc:#}");
    assert_eq!(steps[1]["state"], "done", "{doc:#}");
    assert!(steps[1]["took_ms"].is_u64(), "a done step says how long it took: {doc:#}");
    assert!(steps[2..].iter().all(|s| s["state"].is_null()), "nothing after zero-lag began: {doc:#}");
    let t = status("table");
    assert_eq!(t.status.code(), Some(0), "status: {}", text(&t));
    let table = String::from_utf8_lossy(&t.stdout);
    assert!(table.contains("zero-lag") && table.contains("before the point of no return"), "{table}");
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_validates_mariadb() {
    status_json(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_validates_mysql() {
    status_json(Flavour::MySql).await;
}
