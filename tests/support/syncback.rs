//! Helpers of the sync-back and revert live tests (`tests/syncback_live.rs`,
//! `tests/revert_live.rs`): a promoted pair with the service `svc_db.items`, sync-back's own
//! account, the `privfence sync-back` command line.
#![allow(dead_code)]

use super::support;
use super::support::*;
use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::journal::{Journal, Record, JOURNAL_FORMAT};
use privfence::model::{AccountName, TableName};
use privfence::output::Output;
use privfence::promote::run::{self, Options, Service};
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn write_policy(path: &Path, flavour: Flavour) {
    let mut policy = String::from(
        "[service.svc]\ntables = [\"svc_db.*\"]\nowners = [\"'svc_owner'@'%'\"]\n[[service.svc.exempt]]\naccount = \"root\"\nreason = \"DBA\"\n",
    );
    if flavour == Flavour::MySql {
        for a in ["mysql.infoschema", "mysql.session"] {
            policy.push_str(&format!("[[service.svc.exempt]]\naccount = \"'{a}'@'localhost'\"\nreason = \"internal\"\n"));
        }
    }
    std::fs::write(path, policy).unwrap();
}

/// A fresh primary and replica (ROW binary logs) holding the service `svc_db.items`.
pub async fn pair_with_service(flavour: Flavour) -> (Sandbox, tempfile::TempDir) {
    let mut o = SandboxOptions::new(flavour, Topology::PrimaryReplica);
    o.extra_args = vec!["--binlog-format=ROW".into()];
    let sb = Sandbox::start(o).await.expect("pair");
    let mut sql: Vec<String> = vec![
        "CREATE DATABASE svc_db".into(),
        "CREATE TABLE svc_db.items (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT NOT NULL, at DATETIME(6))".into(),
        "CREATE USER 'svc_owner'@'%' IDENTIFIED BY 'pw-owner'".into(),
        "GRANT SELECT, INSERT, UPDATE, DELETE ON svc_db.items TO 'svc_owner'@'%'".into(),
    ];
    for i in 0..100 {
        sql.push(format!("INSERT INTO svc_db.items VALUES ({i}, 'start', 1, NOW(6))"));
    }
    admin_exec(&sb, &sql).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_policy(&dir.path().join("p.toml"), flavour);
    (sb, dir)
}

pub fn new_journal(path: &Path) -> Journal {
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "t".into(),
        service: "svc".into(),
        policy: "p".into(),
        tables: vec![TableName::new("svc_db", "items")],
    };
    Journal::open_or_create(path, header).unwrap()
}

/// Promotes the replica with the workload writing on the primary; returns the promotion's journal.
pub async fn promote(sb: &Sandbox, dir: &Path, opts: Options) -> Result<PathBuf, privfence::error::Error> {
    let replica = support::replica(sb);
    let policy = privfence::policy::load(&dir.join("p.toml"), chrono::Local::now().date_naive()).unwrap();
    let (server, inv) = inventory(sb).await;
    let tool = server.current_user.clone();
    server.close().await;
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let jpath = dir.join("svc.promote.journal");
    let mut j = new_journal(&jpath);
    let svc = Service {
        policy: &policy,
        name: "svc",
        tables: vec![TableName::new("svc_db", "items")],
        owners: vec![AccountName::new("svc_owner", "%")],
        today: chrono::Local::now().date_naive(),
        tool,
    };
    let said = support::Captured::default();
    let mut out = Output::new(Box::new(std::io::sink()), Box::new(said.clone()));
    let r = run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &opts, &mut out).await;
    if r.is_err() {
        // Shown with the failing test's output: which check refused, and why.
        println!("the promotion said:\n{}", said.text());
    }
    primary.server.close().await;
    rep.server.close().await;
    r.map(|_| jpath)
}

/// Sync-back's own account on the old primary: writes the archived copy and its position only
/// (created without binary logging, like the fence's changes).
pub async fn syncback_account(sb: &Sandbox, dir: &Path) -> PathBuf {
    admin_exec(
        sb,
        &[
            "SET SESSION sql_log_bin = 0".into(),
            "CREATE DATABASE IF NOT EXISTS privfence".into(),
            "CREATE USER 'pf_syncback'@'%' IDENTIFIED BY 'pw-sb'".into(),
            "GRANT SELECT, INSERT, UPDATE, DELETE ON svc_db._items_pf_archived TO 'pf_syncback'@'%'".into(),
            "GRANT CREATE, SELECT, INSERT, UPDATE ON privfence.syncback_position TO 'pf_syncback'@'%'".into(),
            // To check that nobody else may write the copy.
            "GRANT SELECT ON mysql.tables_priv TO 'pf_syncback'@'%'".into(),
            "GRANT SELECT ON mysql.db TO 'pf_syncback'@'%'".into(),
        ],
    )
    .await;
    let cnf = dir.join("sb.cnf");
    std::fs::write(&cnf, "[client]\nuser=pf_syncback\npassword=pw-sb\n").unwrap();
    std::fs::set_permissions(&cnf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    cnf
}

pub fn syncback_cmd(sb: &Sandbox, dir: &Path, cnf: &Path, extra: &[&str]) -> std::process::Command {
    syncback_cmd_journal(sb, dir, cnf, &dir.join("svc.syncback.journal"), extra)
}

/// [`syncback_cmd`] with its own journal (a second sync-back, as from another machine).
pub fn syncback_cmd_journal(sb: &Sandbox, dir: &Path, cnf: &Path, journal: &Path, extra: &[&str]) -> std::process::Command {
    let replica = support::replica(sb);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"));
    c.args(["sync-back", "--policy"])
        .arg(dir.join("p.toml"))
        .args(["--service", "svc", "--from", &format!("{}:{}", replica.host, replica.port)])
        .args(["--to", &format!("{}:{}", sb.primary.host, sb.primary.port)])
        .arg("--from-defaults-file")
        .arg(&replica.client_cnf)
        .arg("--to-defaults-file")
        .arg(cnf)
        .arg("--promote-journal")
        .arg(dir.join("svc.promote.journal"))
        .arg("--journal")
        .arg(journal)
        .args(extra)
        .stdin(std::process::Stdio::null());
    c
}

pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub async fn rows(s: &privfence::sandbox::Server, sql: &str) -> Vec<String> {
    let mut c = s.conn().await.unwrap();
    let v: Vec<String> = c.query(sql).await.unwrap();
    c.disconnect().await.ok();
    v
}

/// `privfence promote revert` for the pair, as the admin.
pub fn revert_args(sb: &Sandbox, dir: &Path) -> Vec<String> {
    let replica = support::replica(sb);
    vec![
        "promote".into(),
        "revert".into(),
        "--policy".into(),
        dir.join("p.toml").display().to_string(),
        "--service".into(),
        "svc".into(),
        "--primary".into(),
        format!("{}:{}", sb.primary.host, sb.primary.port),
        "--replica".into(),
        format!("{}:{}", replica.host, replica.port),
        "--journal".into(),
        dir.join("svc.promote.journal").display().to_string(),
        "--defaults-file".into(),
        sb.primary.client_cnf.display().to_string(),
    ]
}
