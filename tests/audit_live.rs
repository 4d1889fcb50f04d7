//! `privfence audit` against real servers, both flavours: every finding kind produced by a real
//! grant, exit codes 0/1/2, drift against a baseline, replica divergence, a fleet with a stopped
//! server, bad policy files, and the notification fallback and `--exec` hook.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use privfence::db::Flavour;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

fn privfence(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(args)
        .env_remove("MYSQL_PWD")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run privfence")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn cnf(s: &privfence::sandbox::Server) -> String {
    s.client_cnf.to_string_lossy().into_owned()
}

fn audit(policy: &Path, out: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args =
        vec!["audit", "--policy", policy.to_str().unwrap(), "--out", out.to_str().unwrap(), "--format", "json", "--today", "2026-11-21"];
    args.extend_from_slice(extra);
    let o = privfence(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, v)
}

fn findings(v: &Value) -> Vec<&Value> {
    v["servers"].as_array().unwrap().iter().flat_map(|s| s["findings"].as_array().unwrap().iter()).collect()
}

fn has(v: &Value, kind: &str, user: &str) -> bool {
    findings(v).iter().any(|f| f["kind"] == kind && f["account"]["user"] == user)
}

/// Accounts every sandbox has that a real policy exempts (the DBAs, the server's own).
fn base_exemptions(flavour: Flavour) -> String {
    let mut s = String::from("[[service.media.exempt]]\naccount = \"root\"\nreason = \"DBA\"\n");
    if flavour == Flavour::MySql {
        s.push_str("[[service.media.exempt]]\naccount = \"'mysql.infoschema'@'localhost'\"\nreason = \"server-internal, locked\"\n");
        s.push_str("[[service.media.exempt]]\naccount = \"'mysql.session'@'localhost'\"\nreason = \"server-internal, locked\"\n");
    }
    s
}

async fn audit_flow(flavour: Flavour, tag: &str) {
    let sb = sandbox(flavour);
    let db = format!("pfa_{tag}");
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let policy = dir.path().join("media.toml");
    let mut sql: Vec<String> = vec![format!("CREATE DATABASE {db}")];
    for t in ["media_a", "media_b", "orders", "customers", "invoices"] {
        sql.push(format!("CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(20))"));
    }
    sql.push(format!("CREATE USER 'pfa_{tag}_media'@'%' IDENTIFIED BY 'pw'"));
    sql.push(format!("GRANT SELECT, INSERT ON {db}.media_a TO 'pfa_{tag}_media'@'%'"));
    admin_exec(sb, &sql).await;
    std::fs::write(
        &policy,
        format!("[service.media]\ntables = [\"{db}.media_*\"]\nowners = [\"'pfa_{tag}_media'@'%'\"]\n{}", base_exemptions(flavour)),
    )
    .unwrap();
    // Only the owner and exempt accounts can touch the tables: exit 0.
    let (o, v) = audit(&policy, &reports, &["--defaults-file", &cnf(&sb.primary)]);
    assert_eq!(o.status.code(), Some(0), "{flavour}: clean audit: {}", text(&o));
    assert!(findings(&v).is_empty());

    // Now every kind of drift, each from a real grant.
    let u = |s: &str| format!("pfa_{tag}_{s}");
    let mut sql = Vec::new();
    for name in ["snoop", "wild", "rolemember", "col", "narrowed", "esc", "expired", "backup", "viewer"] {
        sql.push(format!("CREATE USER '{}'@'%' IDENTIFIED BY 'pw'", u(name)));
    }
    sql.push(format!("GRANT SELECT ON {db}.* TO '{}'@'%'", u("snoop")));
    sql.push(format!("GRANT SELECT ON `{}%`.* TO '{}'@'%'", &db[..db.len() - 1], u("wild")));
    let role = match flavour {
        Flavour::MariaDb => format!("`{}`", u("reader")),
        Flavour::MySql => format!("`{}`@`%`", u("reader")),
    };
    sql.push(format!("CREATE ROLE {role}"));
    sql.push(format!("GRANT SELECT ON {db}.media_b TO {role}"));
    sql.push(format!("GRANT {role} TO '{}'@'%'", u("rolemember")));
    sql.push(format!("GRANT UPDATE (v) ON {db}.media_b TO '{}'@'%'", u("col")));
    sql.push(format!("GRANT SELECT ON {db}.orders TO '{}'@'%'", u("narrowed")));
    sql.push(format!("GRANT SELECT ON {db}.customers TO '{}'@'%'", u("narrowed")));
    sql.push(format!("GRANT CREATE USER ON *.* TO '{}'@'%'", u("esc")));
    sql.push(format!("GRANT SELECT ON {db}.media_a TO '{}'@'%'", u("expired")));
    sql.push(format!("GRANT SELECT ON {db}.media_a TO '{}'@'%'", u("backup")));
    sql.push("CREATE USER ''@'127.0.0.77'".to_string());
    sql.push(format!("GRANT SELECT ON {db}.media_b TO ''@'127.0.0.77'"));
    sql.push(format!("CREATE DEFINER='{}'@'%' SQL SECURITY DEFINER VIEW {db}.v AS SELECT id FROM {db}.media_a", u("media")));
    sql.push(format!("GRANT SELECT ON {db}.v TO '{}'@'%'", u("viewer")));
    if flavour == Flavour::MariaDb {
        sql.push(format!("GRANT DELETE ON {db}.media_a TO PUBLIC"));
    }
    admin_exec(sb, &sql).await;
    std::fs::write(
        &policy,
        format!(
            "[service.media]\ntables = [\"{db}.media_*\"]\nowners = [\"'pfa_{tag}_media'@'%'\", \"'pfa_{tag}_ghost'@'%'\"]\n{}\
             [[service.media.exempt]]\naccount = \"'{}'@'%'\"\nreason = \"backup\"\nexpires = 2027-01-31\n\
             [[service.media.exempt]]\naccount = \"'{}'@'%'\"\nreason = \"old report\"\nexpires = 2026-01-31\n",
            base_exemptions(flavour),
            u("backup"),
            u("expired")
        ),
    )
    .unwrap();
    let (o, v) = audit(&policy, &reports, &["--defaults-file", &cnf(&sb.primary)]);
    assert_eq!(o.status.code(), Some(1), "{flavour}: drift: {}", text(&o));
    for (kind, user) in [
        ("unexpected_access", u("snoop")),
        ("unexpected_access", u("wild")),
        ("unexpected_access", u("rolemember")),
        ("unexpected_access", u("col")),
        ("unexpected_access", u("expired")),
        ("unexpected_access", u("viewer")),
        ("anonymous_access", String::new()),
        ("uncovered_table", u("narrowed")),
        ("escalation", u("esc")),
        ("expired_exemption", u("expired")),
        ("missing_owner", u("ghost")),
    ] {
        assert!(
            has(&v, kind, &user),
            "{flavour}: expected a {kind} finding for {user:?}: {}",
            serde_json::to_string_pretty(&findings(&v)).unwrap()
        );
    }
    if flavour == Flavour::MariaDb {
        assert!(has(&v, "unexpected_access", "PUBLIC"), "PUBLIC's grant is drift");
    }
    assert!(
        !has(&v, "unexpected_access", &u("backup")) && !has(&v, "unexpected_access", &u("media")),
        "owners and exempt accounts are fine"
    );
    let wild = findings(&v).into_iter().find(|f| f["account"]["user"] == u("wild")).unwrap();
    assert_eq!(wild["via"]["kind"], "schema");
    assert_eq!(wild["via"]["wildcard"], true);
    assert!(wild["table"]["schema"] == db.as_str() && wild["privileges"][0] == "SELECT" && wild["service"] == "media");
    let reports_written: Vec<PathBuf> = std::fs::read_dir(&reports).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(reports_written.iter().any(|p| p.extension().is_some_and(|x| x == "md")));

    // Drift over time: revoke one grant, add another, compare with the last report.
    let last_json = newest(&reports, "json");
    admin_exec(
        sb,
        &[format!("REVOKE SELECT ON {db}.* FROM '{}'@'%'", u("snoop")), format!("GRANT INSERT ON {db}.media_b TO '{}'@'%'", u("narrowed"))],
    )
    .await;
    let (o, v) = audit(&policy, &reports, &["--defaults-file", &cnf(&sb.primary), "--baseline", last_json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let b = &v["baseline"];
    assert!(b["disappeared"].as_array().unwrap().iter().any(|f| f["account"]["user"] == u("snoop")), "{b}");
    assert!(
        b["appeared"].as_array().unwrap().iter().any(|f| f["account"]["user"] == u("narrowed") && f["kind"] == "unexpected_access"),
        "{b}"
    );

    // The notification falls back to a warning without a bus; --exec gets the report path.
    let hook_out = dir.path().join("hook.txt");
    let hook = format!("printf '%s %s' \"$1\" \"$PRIVFENCE_EXIT\" > {}", hook_out.display());
    let (o, _) = audit(&policy, &reports, &["--defaults-file", &cnf(&sb.primary), "--notify", "--exec", &hook]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no desktop notification"), "{}", text(&o));
    let got = std::fs::read_to_string(&hook_out).unwrap();
    assert!(got.ends_with(".md 1") && Path::new(got.split(' ').next().unwrap()).exists(), "{got}");

    // Exit 2: the server cannot be reached.
    let (o, v) = audit(&policy, &reports, &["-h", "127.0.0.1", "-P", "1", "-u", "nobody"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(v["servers"][0]["error"].as_str().unwrap().contains("cannot connect"));
}

fn newest(dir: &Path, ext: &str) -> PathBuf {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect();
    files.sort();
    files.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_audit_findings_exit_codes_and_baseline() {
    audit_flow(Flavour::MariaDb, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_audit_findings_exit_codes_and_baseline() {
    audit_flow(Flavour::MySql, "y").await;
}

/// A REVOKE run on the replica only shows as replica divergence.
async fn divergence(flavour: Flavour) {
    let sb = pair(flavour);
    admin_exec(
        sb,
        &[
            "CREATE DATABASE pfd".into(),
            "CREATE TABLE pfd.media_x (id INT PRIMARY KEY)".into(),
            "CREATE USER 'pfd_app'@'%' IDENTIFIED BY 'pw'".into(),
            "GRANT SELECT, INSERT ON pfd.media_x TO 'pfd_app'@'%'".into(),
        ],
    )
    .await;
    sb.wait_replica_caught_up(std::time::Duration::from_secs(30)).await.unwrap();
    let replica = sb.replica.as_ref().unwrap();
    let mut c = replica.conn().await.unwrap();
    use mysql_async::prelude::Queryable;
    c.query_drop("REVOKE INSERT ON pfd.media_x FROM 'pfd_app'@'%'").await.unwrap();
    c.disconnect().await.ok();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, format!("[service.media]\ntables = [\"pfd.media_*\"]\nowners = [\"pfd_app\"]\n{}", base_exemptions(flavour)))
        .unwrap();
    let replica_addr = format!("127.0.0.1:{}", replica.port);
    let (o, v) = audit(&policy, &dir.path().join("r"), &["--defaults-file", &cnf(&sb.primary), "--replica", &replica_addr]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f: Vec<&Value> = findings(&v).into_iter().filter(|f| f["kind"] == "replica_divergence").collect();
    assert!(f.iter().any(|f| f["account"]["user"] == "pfd_app" && f["detail"].as_str().unwrap().contains("INSERT")), "{f:#?}");
    assert_eq!(f.len(), 1, "{flavour}: only the replica-only revoke differs: {f:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_replica_divergence() {
    divergence(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_replica_divergence() {
    divergence(Flavour::MySql).await;
}

/// Three servers, one stopped: the stopped one is an error, the others are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_with_a_stopped_server() {
    let third = Sandbox::start(SandboxOptions::new(Flavour::MariaDb, Topology::Single)).await.expect("a third sandbox");
    third.stop().unwrap();
    let (m, y) = (sandbox(Flavour::MariaDb), sandbox(Flavour::MySql));
    let dir = tempfile::tempdir().unwrap();
    let servers = dir.path().join("servers.toml");
    std::fs::write(
        &servers,
        format!(
            "[[server]]\nname = \"maria\"\ndefaults_file = \"{}\"\n[[server]]\nname = \"my\"\ndefaults_file = \"{}\"\n[[server]]\nname = \"stopped\"\ndefaults_file = \"{}\"\n",
            cnf(&m.primary),
            cnf(&y.primary),
            cnf(&third.primary)
        ),
    )
    .unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[service.sys]\ntables = [\"mysql.db\"]\nowners = [\"root\"]\n").unwrap();
    let out = dir.path().join("reports");
    let (o, v) = audit(&policy, &out, &["--servers", servers.to_str().unwrap(), "--parallel", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let s = v["servers"].as_array().unwrap();
    assert_eq!(s.iter().map(|x| x["name"].as_str().unwrap()).collect::<Vec<_>>(), ["maria", "my", "stopped"]);
    assert!(s[0]["error"].is_null() && s[1]["error"].is_null(), "{v}");
    assert!(s[2]["error"].as_str().unwrap().contains("cannot connect"), "{v}");
    let md = std::fs::read_to_string(newest(&out, "md")).unwrap();
    for section in ["## maria", "## my", "## stopped"] {
        assert!(md.contains(section), "{md}");
    }
    assert!(md.contains("Not audited"));
    third.destroy().unwrap();
}

/// Bad policy files: each error located, nothing else happens (no connection, no report).
#[test]
fn bad_policy_files_are_located_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let cases: &[(&str, &str)] = &[
        ("[service.a]\ntables = [\"s.t\"\nowners = [\"a\"]\n", "p.toml:3:"),
        ("[service.a]\ntables = [\"s.t\"]\nowners = [\"a\"]\nownerz = 1\n", "p.toml:4:1: error: unknown field `ownerz`"),
        ("[service.a]\ntables = [\"s.t\"]\nowners = [\"'a'@\"]\n", "p.toml:3:11: error: owner"),
        ("[service.a]\ntables = [\"s t.x\"]\nowners = [\"a\"]\n", "p.toml:2:11: error: table pattern"),
        (
            "[service.a]\ntables = [\"s.*\"]\nowners = [\"a\"]\n[service.b]\ntables = [\"s.t\"]\nowners = [\"b\"]\n",
            "p.toml:5:11: error: table `s`.`t` of service \"b\" is also claimed",
        ),
        (
            "[service.a]\ntables = [\"s.t\"]\nowners = [\"a\"]\n[[service.a.exempt]]\naccount = \"x\"\nreason = \"\"\n",
            "p.toml:6:10: error: an exemption needs a reason",
        ),
    ];
    for (policy, expected) in cases {
        let p = dir.path().join("p.toml");
        std::fs::write(&p, policy).unwrap();
        let o = privfence(&["audit", "--policy", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-h", "127.0.0.1", "-P", "1"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(expected), "expected {expected:?} in:\n{}", text(&o));
        assert!(!text(&o).contains("cannot connect"), "nothing else happens: {}", text(&o));
        assert!(!out.exists(), "no report is written");
    }
    // An expired exemption is a warning with its location, not an error.
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[service.a]\ntables = [\"s.t\"]\nowners = [\"a\"]\n[[service.a.exempt]]\naccount = \"x\"\nreason = \"r\"\nexpires = 2020-01-01\n",
    )
    .unwrap();
    let o = privfence(&[
        "audit",
        "--policy",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-h",
        "127.0.0.1",
        "-P",
        "1",
        "--today",
        "2026-11-21",
    ]);
    assert!(text(&o).contains("p.toml:7:11: warning: the exemption of 'x'@'%' expired on 2020-01-01"), "{}", text(&o));
}

/// The example policies in policies/ load, and fit the demo's sample schema.
#[test]
fn example_policies_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let p = privfence::policy::load(&dir, today).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.service("media").is_some());
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

/// Issue 14: a typo in a table pattern fails the audit loudly (exit 2, naming the pattern and
/// the nearest tables), unless the service says its tables are yet to come.
async fn typo_fails_loudly(flavour: Flavour) {
    let sb = sandbox(flavour);
    let db = format!("pft_{}", flavour.name());
    admin_exec(sb, &[format!("CREATE DATABASE {db}"), format!("CREATE TABLE {db}.media_attachments (id INT PRIMARY KEY)")]).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("typo.toml");
    let body = |extra: &str| {
        format!("[service.media]\ntables = [\"{db}.medai_*\"]\nowners = [\"'pft_media'@'%'\"]\n{extra}{}", base_exemptions(flavour))
    };
    std::fs::write(&policy, body("")).unwrap();
    let (o, _) = audit(&policy, &dir.path().join("r"), &["--defaults-file", &cnf(&sb.primary)]);
    assert_eq!(o.status.code(), Some(2), "{flavour}: a pattern matching nothing is an error: {}", text(&o));
    assert!(text(&o).contains("matches no table") && text(&o).contains("typo.toml:2:"), "{flavour}: located: {}", text(&o));
    assert!(text(&o).contains(&format!("`{db}`.`media_attachments`")), "{flavour}: the nearest table is named: {}", text(&o));
    std::fs::write(&policy, body("allow_empty = true\n")).unwrap();
    let (o, _) = audit(&policy, &dir.path().join("r2"), &["--defaults-file", &cnf(&sb.primary)]);
    assert_ne!(o.status.code(), Some(2), "{flavour}: allow_empty makes it a warning: {}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_policy_fails_the_audit() {
    for flavour in FLAVOURS {
        typo_fails_loudly(flavour).await;
    }
}

/// Issue 14: `--quiet` prints nothing on success; `--prom-file` writes node_exporter textfile
/// metrics, and a failed run keeps the last success time.
async fn quiet_and_metrics(flavour: Flavour) {
    // A server of its own: the other tests of this binary leave findings on the shared one.
    let own = privfence::sandbox::Sandbox::start(privfence::sandbox::SandboxOptions::new(flavour, privfence::sandbox::Topology::Single))
        .await
        .expect("a sandbox of its own");
    let sb = &own;
    let db = format!("pfq_{}", flavour.name());
    admin_exec(sb, &[format!("CREATE DATABASE {db}"), format!("CREATE TABLE {db}.media_a (id INT PRIMARY KEY)")]).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    let prom = dir.path().join("privfence.prom");
    let write = |pattern: &str| {
        std::fs::write(
            &policy,
            format!("[service.media]\ntables = [\"{db}.{pattern}\"]\nowners = [\"root\"]\n{}", base_exemptions(flavour)),
        )
        .unwrap()
    };
    write("media_*");
    let args = ["audit", "--policy", policy.to_str().unwrap(), "--out", dir.path().to_str().unwrap(), "--quiet", "--prom-file"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.push(prom.to_str().unwrap());
        a.extend_from_slice(extra);
        privfence(&a)
    };
    let cnf = cnf(&sb.primary);
    let o = run(&["--defaults-file", &cnf]);
    assert_eq!(o.status.code(), Some(0), "{flavour}: {}", text(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{flavour}: --quiet prints nothing on success: {}", text(&o));
    let m = std::fs::read_to_string(&prom).unwrap();
    assert!(m.contains("privfence_audit_exit_code 0") && m.contains("privfence_audit_servers{outcome=\"audited\"} 1"), "{flavour}: {m}");
    let success = m.lines().find(|l| l.starts_with("privfence_audit_last_success_timestamp_seconds ")).unwrap().to_string();
    write("medai_*");
    let o = run(&["--defaults-file", &cnf]);
    assert_eq!(o.status.code(), Some(2), "{flavour}: {}", text(&o));
    assert!(!o.stderr.is_empty() || !o.stdout.is_empty(), "{flavour}: a failure is printed even with --quiet");
    let m = std::fs::read_to_string(&prom).unwrap();
    assert!(m.contains("privfence_audit_exit_code 2") && m.contains(&success), "{flavour}: the last success is kept: {m}");
    own.destroy().expect("destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_audits_and_prometheus_metrics() {
    for flavour in FLAVOURS {
        quiet_and_metrics(flavour).await;
    }
}
