//! Live tests of the sandbox harness itself, on real MariaDB 10.11 and MySQL 9 servers.
//!
//! Single-server checks use the shared sandboxes (`sandbox::shared`); the replication tests
//! start their own primary+replica pair, since they restart servers.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

use mysql_async::prelude::Queryable;
use privfence::db::Flavour;
use privfence::sandbox::{self, Role, Sandbox, SandboxOptions, Server, Topology};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a client command and returns its stdout, failing the test with stderr otherwise.
fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("running the client");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn scalar(server: &Server, sql: &str) -> String {
    let mut conn = server.conn().await.expect("admin login");
    let v: Option<String> = conn.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.disconnect().await.unwrap();
    v.unwrap_or_default()
}

/// Version, performance_schema, binary log and GTIDs on a single server.
async fn check_single(flavour: Flavour) {
    let sb = sandbox::shared(flavour, Topology::Single);
    let p = &sb.primary;
    let version = scalar(p, "SELECT @@version").await;
    match flavour {
        Flavour::MariaDb => assert!(version.starts_with("10.11.") && version.contains("MariaDB"), "{version}"),
        Flavour::MySql => assert!(version.starts_with("9.") && !version.contains("MariaDB"), "{version}"),
    }
    assert_eq!(scalar(p, "SELECT @@performance_schema").await, "1");
    assert_eq!(scalar(p, "SELECT @@log_bin").await, "1");
    assert_eq!(scalar(p, "SELECT @@server_id").await, "1");
    assert_eq!(scalar(p, "SELECT @@log_bin_trust_function_creators").await, "1");
    if flavour == Flavour::MySql {
        assert_eq!(scalar(p, "SELECT @@gtid_mode").await, "ON");
    }
    // No anonymous accounts; the admin and replication accounts exist for 127.0.0.1.
    let accounts = scalar(p, "SELECT GROUP_CONCAT(CONCAT(user, '@', host) ORDER BY user, host) FROM mysql.user").await;
    assert!(!accounts.split(',').any(|a| a.starts_with('@')), "{accounts}");
    assert!(accounts.contains("root@127.0.0.1") && accounts.contains("repl@127.0.0.1"), "{accounts}");
}

#[tokio::test]
async fn mariadb_single_server() {
    check_single(Flavour::MariaDb).await;
}

#[tokio::test]
async fn mysql_single_server() {
    check_single(Flavour::MySql).await;
}

#[tokio::test]
async fn mariadb_userstat_and_sql_errlog() {
    let p = &sandbox::shared(Flavour::MariaDb, Topology::Single).primary;
    assert_eq!(scalar(p, "SELECT @@userstat").await, "1");
    let log = p.sql_errlog.clone().expect("MariaDB has an sql_errlog file");
    let mut conn = p.conn().await.unwrap();
    let err = conn.query_drop("SELECT * FROM no_such_schema_for_errlog.t").await.unwrap_err();
    assert!(err.to_string().contains("1146") || err.to_string().contains("doesn't exist"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().any(|l| l.contains("ERROR 1146") && l.contains("no_such_schema_for_errlog")) {
            break;
        }
        assert!(Instant::now() < deadline, "no line in {}:\n{text}", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let denied = scalar(p, "SELECT COUNT(*) FROM information_schema.USER_STATISTICS").await;
    assert_ne!(denied, "0", "USER_STATISTICS stays empty although userstat=1");
}

/// The CLI clients: admin option file, another account's option file with an awkward password,
/// and a source address other than 127.0.0.1.
fn check_clients(flavour: Flavour) {
    let sb = sandbox::shared(flavour, Topology::Single);
    let p = &sb.primary;
    assert_eq!(std::fs::metadata(&p.client_cnf).unwrap().permissions().mode() & 0o777, 0o600);
    let mut cmd = p.client_command();
    cmd.args(["-N", "-e", "SELECT CURRENT_USER()"]);
    let me = run(cmd);
    assert!(me == "root@localhost" || me == "root@127.0.0.1", "{me}");

    let user = format!("t_cli_{}", flavour.name());
    let password = r#"p"a\ss #x'y"#;
    let sql_pw = password.replace('\\', "\\\\").replace('\'', "''");
    let mut cmd = p.client_command();
    cmd.arg("-e").arg(format!("DROP USER IF EXISTS '{user}'@'127.0.0.2'; CREATE USER '{user}'@'127.0.0.2' IDENTIFIED BY '{sql_pw}'"));
    run(cmd);
    let mut cmd = p.client_command_as(&user, password, Some("127.0.0.2"));
    cmd.args(["-N", "-e", "SELECT CURRENT_USER()"]);
    assert_eq!(run(cmd), format!("{user}@127.0.0.2"));
    let argv = format!("{:?}", p.client_command_as(&user, password, None));
    assert!(!argv.contains("#x"), "the password leaked onto the command line: {argv}");

    // State file: no password; load() reads the sandbox back.
    let json = std::fs::read_to_string(sb.dir.join("sandbox.json")).unwrap();
    assert!(!json.contains(&p.admin_password), "sandbox.json holds the admin password");
    let loaded = Sandbox::load(&sb.dir).unwrap();
    assert_eq!((loaded.primary.port, loaded.primary.pid), (p.port, p.pid));
    assert_eq!(loaded.primary.admin_password, p.admin_password);
    assert!(sb.connect_help().contains("--defaults-file="));
}

#[test]
fn mariadb_clients_and_state() {
    check_clients(Flavour::MariaDb);
}

#[test]
fn mysql_clients_and_state() {
    check_clients(Flavour::MySql);
}

/// Primary+replica: read_only replica, a write replicates, a restart of each side resumes.
async fn check_replication(flavour: Flavour) {
    let mut sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await.unwrap();
    let (p, r) = (&sb.primary, sb.replica.as_ref().unwrap());
    assert_ne!(p.port, r.port);
    assert_eq!(scalar(r, "SELECT @@read_only").await, "1");
    assert_eq!(scalar(r, "SELECT @@server_id").await, "2");
    if flavour == Flavour::MySql {
        assert_ne!(scalar(p, "SELECT @@server_uuid").await, scalar(r, "SELECT @@server_uuid").await);
        assert_eq!(scalar(r, "SELECT @@super_read_only").await, "0");
    }
    let mut conn = p.conn().await.unwrap();
    conn.query_drop("CREATE DATABASE repl_check").await.unwrap();
    conn.query_drop("CREATE TABLE repl_check.t (id INT PRIMARY KEY)").await.unwrap();
    conn.query_drop("INSERT INTO repl_check.t VALUES (1), (2), (3)").await.unwrap();
    conn.disconnect().await.unwrap();
    sb.wait_replica_caught_up(Duration::from_secs(20)).await.unwrap();
    assert_eq!(scalar(r, "SELECT COUNT(*) FROM repl_check.t").await, "3");

    sb.restart_server(Role::Primary).await.unwrap();
    let mut conn = sb.primary.conn().await.unwrap();
    conn.query_drop("INSERT INTO repl_check.t VALUES (4)").await.unwrap();
    conn.disconnect().await.unwrap();
    sb.wait_replica_caught_up(Duration::from_secs(20)).await.unwrap();
    let r = sb.replica.as_ref().unwrap();
    assert_eq!(scalar(r, "SELECT COUNT(*) FROM repl_check.t").await, "4");

    let status = sb.status().await;
    assert!(status.iter().all(|s| s.up), "{status:?}");
    assert!(status[1].replication.as_ref().is_some_and(|s| s.is_running()), "{status:?}");
    let dir = sb.dir.clone();
    sb.destroy().unwrap();
    assert!(!dir.exists(), "destroy left {}", dir.display());
}

#[tokio::test]
async fn mariadb_primary_replica() {
    check_replication(Flavour::MariaDb).await;
}

#[tokio::test]
async fn mysql_primary_replica() {
    check_replication(Flavour::MySql).await;
}
