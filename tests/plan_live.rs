//! The revoke planner on real servers, both flavours: for a matrix of grant shapes (with names
//! that need quoting), applying the forward statements denies every privilege on the service's
//! tables and leaves every other object exactly as reachable as before, from a fresh connection
//! and from one whose default schema is the service's; applying the inverse restores the
//! canonical grants exactly.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::model::ident::quote_ident as qi;
use privfence::model::{AccountName, SchemaPattern, TableName};
use privfence::plan::{self, PlanOptions};
use std::net::Ipv4Addr;
use support::*;

struct World {
    service_schema: String,
    other_schema: String,
    tables: Vec<TableName>,
    service: Vec<TableName>,
}

fn world(tag: &str) -> World {
    let s = format!("pl{tag}_sh`op 'ü'");
    let o = format!("pl{tag}_shox");
    let tables = vec![
        TableName::new(&s, "media 'a'"),
        TableName::new(&s, "media_b"),
        TableName::new(&s, "orders"),
        TableName::new(&s, "odd `t`"),
        TableName::new(&o, "orders"),
    ];
    let service = tables[..2].to_vec();
    World { service_schema: s, other_schema: o, tables, service }
}

async fn apply(sb: &privfence::sandbox::Sandbox, stmts: &[String]) {
    admin_exec(sb, stmts).await;
}

async fn matrix(flavour: Flavour, tag: &str) {
    let sb = sandbox(flavour);
    let w = world(tag);
    let (s, o) = (qi(&w.service_schema), qi(&w.other_schema));
    let u = |x: &str| AccountName::new(format!("pl{tag}_{x}"), "%");
    let role = |x: &str| match flavour {
        Flavour::MariaDb => qi(&format!("pl{tag}_{x}")),
        Flavour::MySql => format!("{}@'%'", qi(&format!("pl{tag}_{x}"))),
    };
    prepare_probes(sb).await;
    let mut sql = vec![
        format!("CREATE DATABASE {s}"),
        format!("CREATE DATABASE {o}"),
        probe_procedure(&w.service_schema),
        probe_procedure(&w.other_schema),
    ];
    for t in &w.tables {
        sql.push(format!("CREATE TABLE {} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB", t.sql()));
    }
    let shapes = ["table", "column", "schema", "wild", "wild2", "wild3", "wildall", "global", "role", "roleshared", "roleshared2"];
    for x in shapes {
        sql.push(format!("CREATE USER {} IDENTIFIED BY 'pw-pl{tag}_{x}'", u(x).sql()));
    }
    let (media_a, media_b, orders) = (w.tables[0].sql(), w.tables[1].sql(), w.tables[2].sql());
    let exact = SchemaPattern::exact(&w.service_schema).sql();
    sql.extend([
        format!("GRANT SELECT, INSERT ON {media_a} TO {}", u("table").sql()),
        format!("GRANT SELECT ON {orders} TO {}", u("table").sql()),
        format!("GRANT SELECT (id), UPDATE (v) ON {media_b} TO {}", u("column").sql()),
        format!("GRANT SELECT (id) ON {orders} TO {}", u("column").sql()),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE VIEW, TRIGGER, EXECUTE, CREATE ROUTINE, LOCK TABLES, CREATE TEMPORARY TABLES ON {exact}.* TO {} WITH GRANT OPTION",
            u("schema").sql()
        ),
        // `_` unescaped: a wildcard matching the service schema and pl_shox.
        format!("GRANT SELECT, DELETE ON {}.* TO {}", qi(&format!("pl{tag}_sh%")), u("wild").sql()),
        format!("GRANT SELECT, UPDATE ON {}.* TO {}", qi(&format!("pl{tag}\\_sh%")), u("wild2").sql()),
        format!("GRANT INSERT ON {}.* TO {}", SchemaPattern::exact(&w.other_schema).sql(), u("wild2").sql()),
        // A wildcard row with privileges that cannot be granted per table: they must stay at
        // schema level on the service schema.
        format!("GRANT SELECT, CREATE TEMPORARY TABLES, LOCK TABLES ON {}.* TO {}", qi(&format!("pl{tag}\\_sh%")), u("wild3").sql()),
        // `%`: every schema on the server.
        format!("GRANT SELECT, EXECUTE ON `%`.* TO {}", u("wildall").sql()),
        format!("GRANT SELECT, INSERT, PROCESS ON *.* TO {}", u("global").sql()),
        format!("CREATE ROLE {}", role("r_own")),
        format!("GRANT SELECT ON {media_a} TO {}", role("r_own")),
        format!("GRANT SELECT ON {orders} TO {}", role("r_own")),
        format!("GRANT {} TO {}", role("r_own"), u("role").sql()),
        format!("CREATE ROLE {}", role("r_shared")),
        format!("GRANT SELECT, UPDATE ON {exact}.* TO {}", role("r_shared")),
        format!("GRANT {} TO {}", role("r_shared"), u("roleshared").sql()),
        format!("GRANT {} TO {}", role("r_shared"), u("roleshared2").sql()),
    ]);
    sql.push(match flavour {
        Flavour::MariaDb => format!("SET DEFAULT ROLE {} FOR {}", role("r_own"), u("role").sql()),
        Flavour::MySql => format!("SET DEFAULT ROLE {} TO {}", role("r_own"), u("role").sql()),
    });
    sql.push(match flavour {
        Flavour::MariaDb => format!("SET DEFAULT ROLE {} FOR {}", role("r_shared"), u("roleshared").sql()),
        Flavour::MySql => format!("SET DEFAULT ROLE {} TO {}", role("r_shared"), u("roleshared").sql()),
    });
    apply(sb, &sql).await;
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p.toml");
    let pattern = format!("{}.media*", qi(&w.service_schema));
    std::fs::write(&pol, format!("[service.media]\ntables = [{}]\nowners = [\"pl{tag}_owner\"]\n", toml_str(&pattern))).unwrap();
    let policy = privfence::policy::load(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()).unwrap();

    let mut failures = Vec::new();
    for (i, x) in ["table", "column", "schema", "wild", "wild2", "wild3", "wildall", "global", "role", "roleshared"].iter().enumerate() {
        let a = u(x);
        let ip = Ipv4Addr::new(127, 0, 1, 10 + i as u8);
        let (_, inv) = inventory(sb).await;
        let p = plan::build(&inv, &policy, "media", &a.sql(), &PlanOptions::default()).unwrap_or_else(|e| panic!("{flavour} {a}: {e}"));
        assert!(!p.is_empty(), "{flavour} {a}: a plan is needed");
        let who: Vec<AccountName> =
            inv.accounts.iter().map(|x| x.name.clone()).filter(|n| n.user.starts_with(&format!("pl{tag}_"))).collect();
        let grants_before = canonical(&inv, &who);
        let before = observe(sb, &a, ip, &w.service_schema, &w.tables).await;
        apply(sb, &p.forward()).await;
        let after = observe(sb, &a, ip, &w.service_schema, &w.tables).await;
        for ((name, b), (_, af)) in before.iter().zip(&after) {
            let on_service = w.service.iter().any(|t| name.ends_with(&t.to_string()));
            let is_table_probe = !name.contains("TEMPORARY") && !name.contains("LOCK TABLES") && !name.contains("EXECUTE");
            if on_service && is_table_probe && af.is_none() {
                failures.push(format!("{flavour} {a}: still allowed after the cut: {name}"));
            }
            if !on_service && b != af {
                failures.push(format!("{flavour} {a}: {name} changed from {b:?} to {af:?}"));
            }
        }
        apply(sb, &p.inverse()).await;
        let (_, inv2) = inventory(sb).await;
        let grants_after = canonical(&inv2, &who);
        if grants_before != grants_after {
            let gone: Vec<&String> = grants_before.difference(&grants_after).collect();
            let new: Vec<&String> = grants_after.difference(&grants_before).collect();
            failures.push(format!("{flavour} {a}: the inverse did not restore the grants exactly: lost {gone:?}, gained {new:?}"));
        }
        let restored = observe(sb, &a, ip, &w.service_schema, &w.tables).await;
        if restored != before {
            failures.push(format!("{flavour} {a}: probes after the inverse differ from before"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_plans_cut_exactly_and_undo_exactly() {
    matrix(Flavour::MariaDb, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_plans_cut_exactly_and_undo_exactly() {
    matrix(Flavour::MySql, "y").await;
}

/// Clear refusals: unknown service, unknown account, other host rows, definer objects; an
/// account without access gets an empty plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_empty_plans() {
    let sb = sandbox(Flavour::MariaDb);
    apply(
        sb,
        &[
            "CREATE DATABASE plr".into(),
            "CREATE TABLE plr.media (id INT PRIMARY KEY)".into(),
            "CREATE TABLE plr.other (id INT PRIMARY KEY)".into(),
            "CREATE USER 'plr_a'@'%' IDENTIFIED BY 'pw'".into(),
            "CREATE USER 'plr_a'@'localhost' IDENTIFIED BY 'pw'".into(),
            "GRANT SELECT ON plr.media TO 'plr_a'@'%'".into(),
            "GRANT SELECT ON plr.media TO 'plr_a'@'localhost'".into(),
            "CREATE USER 'plr_none'@'%' IDENTIFIED BY 'pw'".into(),
            "GRANT SELECT ON plr.other TO 'plr_none'@'%'".into(),
            "CREATE USER 'plr_def'@'%' IDENTIFIED BY 'pw'".into(),
            "GRANT SELECT ON plr.* TO 'plr_def'@'%'".into(),
            "CREATE DEFINER='plr_def'@'%' SQL SECURITY DEFINER VIEW plr.v AS SELECT id FROM plr.media".into(),
            "CREATE USER 'plr_viewer'@'%' IDENTIFIED BY 'pw-plr_viewer'".into(),
            "GRANT SELECT ON plr.* TO 'plr_viewer'@'%'".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p.toml");
    std::fs::write(&pol, "[service.media]\ntables = [\"plr.media\"]\nowners = [\"plr_owner\"]\n").unwrap();
    let policy = privfence::policy::load(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()).unwrap();
    let (_, inv) = inventory(sb).await;
    let o = PlanOptions::default();
    let e = plan::build(&inv, &policy, "nosuch", "'plr_a'@'%'", &o).unwrap_err().to_string();
    assert!(e.contains("no service \"nosuch\"") && e.contains("media"), "{e}");
    let e = plan::build(&inv, &policy, "media", "'plr_ghost'@'%'", &o).unwrap_err().to_string();
    assert!(e.contains("no account 'plr_ghost'@'%'"), "{e}");
    let e = plan::build(&inv, &policy, "media", "'plr_a'@'%'", &o).unwrap_err().to_string();
    assert!(e.contains("'plr_a'@'localhost'"), "other host rows are listed: {e}");
    let both = plan::build(&inv, &policy, "media", "plr_a", &o).unwrap();
    assert_eq!(both.accounts.len(), 2);
    assert_eq!(both.steps.len(), 2, "{:#?}", both.steps);
    assert!(plan::build(&inv, &policy, "media", "'plr_none'@'%'", &o).unwrap().is_empty());
    let e = plan::build(&inv, &policy, "media", "'plr_def'@'%'", &o).unwrap_err().to_string();
    assert!(e.contains("DEFINER") && e.contains("view `plr`.`v`"), "{e}");
    let ok = plan::build(&inv, &policy, "media", "'plr_def'@'%'", &PlanOptions { acknowledge_definer: true, ..o.clone() }).unwrap();
    assert!(!ok.is_empty());
    // A schema grant that also reaches the service table through a definer view: the rewrite
    // leaves the view out (declared), so the cut is complete.
    let p = plan::build(&inv, &policy, "media", "'plr_viewer'@'%'", &o).unwrap();
    assert!(p.changes.iter().any(|c| c.detail.contains("loses access to view `plr`.`v`")), "{:#?}", p.changes);
    admin_exec(sb, &p.forward()).await;
    let mut c = login_from(&sb.primary, "plr_viewer", "pw-plr_viewer", Ipv4Addr::new(127, 0, 3, 20)).await.unwrap();
    assert!(c.query_drop("SELECT * FROM plr.media").await.is_err(), "service table cut");
    assert!(c.query_drop("SELECT * FROM plr.v").await.is_err(), "the definer view that reaches it is cut too");
    c.query_drop("SELECT * FROM plr.other").await.expect("other tables stay");
    c.disconnect().await.ok();
    admin_exec(sb, &p.inverse()).await;
    // The CLI: exit 2 with the same messages.
    let cnf = sb.primary.client_cnf.to_string_lossy().into_owned();
    let plan_cli = |account: &str, extra: &[&str]| {
        let mut args = vec!["plan", "--policy", pol.to_str().unwrap(), "--service", "media", "--account", account, "--defaults-file", &cnf];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_privfence")).args(&args).output().unwrap()
    };
    let out = plan_cli("'plr_ghost'@'%'", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account 'plr_ghost'@'%'"));
    let out = plan_cli("plr_a", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["forward"].is_array() && v["inverse"].is_array() && v["changes"].is_array() && v["warnings"].is_array());
}

/// MySQL with partial_revokes=ON, a service that owns a whole schema, an account with global
/// privileges: the plan is a partial revoke, exact to undo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_partial_revoke_plan() {
    use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
    let opts = SandboxOptions { extra_args: vec!["--partial-revokes=ON".into()], ..SandboxOptions::new(Flavour::MySql, Topology::Single) };
    let sb = Sandbox::start(opts).await.expect("a MySQL sandbox with partial_revokes (run scripts/install-servers.sh mysql)");
    let sql: Vec<String> = vec![
        "CREATE DATABASE `pr_media`".into(),
        "CREATE TABLE `pr_media`.`files` (id INT PRIMARY KEY, v VARCHAR(20))".into(),
        "CREATE DATABASE `pr_other`".into(),
        "CREATE TABLE `pr_other`.`t` (id INT PRIMARY KEY, v VARCHAR(20))".into(),
        "CREATE USER 'pr_u'@'%' IDENTIFIED BY 'pw-pr_u'".into(),
        "GRANT SELECT, INSERT, PROCESS ON *.* TO 'pr_u'@'%'".into(),
    ];
    admin_exec(&sb, &sql).await;
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p.toml");
    std::fs::write(&pol, "[service.media]\ntables = [\"pr_media.*\"]\nowners = [\"pr_owner\"]\n").unwrap();
    let policy = privfence::policy::load(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()).unwrap();
    let (_, inv) = inventory(&sb).await;
    let a = AccountName::new("pr_u", "%");
    let p = plan::build(&inv, &policy, "media", "'pr_u'@'%'", &PlanOptions::default()).unwrap();
    assert_eq!(p.forward(), vec!["REVOKE INSERT, SELECT ON `pr_media`.* FROM `pr_u`@`%`".to_string()], "{:#?}", p.steps);
    let before = canonical(&inv, std::slice::from_ref(&a));
    let ip = Ipv4Addr::new(127, 0, 3, 10);
    admin_exec(&sb, &p.forward()).await;
    let mut c = login_from(&sb.primary, "pr_u", "pw-pr_u", ip).await.unwrap();
    let media = TableName::new("pr_media", "files");
    let other = TableName::new("pr_other", "t");
    let r = run_probes(&mut c, &table_probes(&media)).await;
    assert!(r.iter().all(|x| x.is_some()), "denied on the service table: {r:?}");
    let r = run_probes(&mut c, &table_probes(&other)).await;
    assert_eq!(r.iter().filter(|x| x.is_none()).count(), 4, "SELECT(id), SELECT(v), INSERT(id), INSERT(v) still allowed elsewhere: {r:?}");
    c.disconnect().await.ok();
    admin_exec(&sb, &p.inverse()).await;
    let (_, inv2) = inventory(&sb).await;
    assert_eq!(canonical(&inv2, &[a]), before, "the inverse removes the restriction exactly");
    sb.destroy().unwrap();
}
