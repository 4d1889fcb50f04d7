//! The inventory against real servers: the SHOW GRANTS cross-check catches a corrupted model;
//! anonymous shadowing, proxy grants, MySQL partial revokes and mandatory roles are read and
//! analysed as the server applies them (checked by logging in).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use privfence::access::{self, Via};
use privfence::db::{Flavour, Server};
use privfence::model::{AccountName, GrantObject, Privilege, SchemaPattern, TableName};
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use std::net::Ipv4Addr;
use support::*;

async fn corruption_is_caught(flavour: Flavour) {
    let sb = sandbox(flavour);
    admin_exec(
        sb,
        &[
            "CREATE DATABASE pfc_main_db".into(),
            "CREATE TABLE pfc_main_db.t (id INT PRIMARY KEY, v VARCHAR(20))".into(),
            "CREATE USER 'pfc_a'@'%' IDENTIFIED BY 'pw'".into(),
            "GRANT SELECT, INSERT ON pfc_main_db.t TO 'pfc_a'@'%'".into(),
            "CREATE USER 'pfc_b'@'%' IDENTIFIED BY 'pw'".into(),
            r"GRANT SELECT ON `pfc\_main\_db`.* TO 'pfc_b'@'%'".into(),
        ],
    )
    .await;
    let (mut server, mut inv) = inventory(sb).await;
    let clean = privfence::inventory::verify::verify_where(&mut server, &inv, |a| a.user.starts_with("pfc_")).await.unwrap();
    assert!(clean.is_empty(), "{flavour}: clean model must verify: {clean:#?}");
    // Drop one privilege from pfc_a's table grant, unescape pfc_b's schema pattern.
    let a = AccountName::new("pfc_a", "%");
    let b = AccountName::new("pfc_b", "%");
    for g in &mut inv.grants {
        if g.grantee == a && matches!(g.object, GrantObject::Table { .. }) {
            assert!(g.privileges.remove(&Privilege::known("INSERT")));
        }
        if g.grantee == b {
            if let GrantObject::Schema { pattern } = &mut g.object {
                *pattern = SchemaPattern(pattern.0.replace('\\', ""));
            }
        }
    }
    let m = privfence::inventory::verify::verify_where(&mut server, &inv, |a| a.user.starts_with("pfc_")).await.unwrap();
    let accounts: Vec<&AccountName> = m.iter().map(|x| &x.account).collect();
    assert_eq!(accounts, vec![&a, &b], "{flavour}: exactly the corrupted accounts fail: {m:#?}");
    assert_eq!(m[0].only_on_server, vec!["`pfc_main_db`.`t` INSERT".to_string()]);
    assert_eq!(m[1].only_on_server, vec![r"`pfc\_main\_db`.* SELECT".to_string()]);
    assert_eq!(m[1].only_in_model, vec!["`pfc_main_db`.* SELECT".to_string()]);
    server.close().await;
}

/// `--verify` on several connections finds the same mismatches as on one, in the inventory's
/// account order, whichever connection answered first.
async fn concurrent_verify_keeps_order(flavour: Flavour) {
    let sb = sandbox(flavour);
    let mut stmts = vec!["CREATE DATABASE pfv_db".to_string(), "CREATE TABLE pfv_db.t (id INT PRIMARY KEY)".to_string()];
    for i in 0..40 {
        stmts.push(format!("CREATE USER 'pfv_{i:02}'@'%' IDENTIFIED BY 'pw'"));
        stmts.push(format!("GRANT SELECT, INSERT ON pfv_db.t TO 'pfv_{i:02}'@'%'"));
    }
    admin_exec(sb, &stmts).await;
    let (mut server, mut inv) = inventory(sb).await;
    let mine = |a: &AccountName| a.user.starts_with("pfv_");
    for n in [1, 4, 8] {
        let clean = privfence::inventory::verify::verify_where_on(&mut server, &inv, mine, n).await.unwrap();
        assert!(clean.is_empty(), "{flavour}: clean model on {n} connection(s): {clean:#?}");
    }
    let corrupt = ["pfv_05", "pfv_17", "pfv_33", "pfv_39"];
    for g in &mut inv.grants {
        if corrupt.contains(&g.grantee.user.as_str()) && matches!(g.object, GrantObject::Table { .. }) {
            assert!(g.privileges.remove(&Privilege::known("INSERT")));
        }
    }
    let serial = privfence::inventory::verify::verify_where_on(&mut server, &inv, mine, 1).await.unwrap();
    let users: Vec<&str> = serial.iter().map(|m| m.account.user.as_str()).collect();
    assert_eq!(users, corrupt, "{flavour}: one connection");
    for n in [4, 8] {
        let m = privfence::inventory::verify::verify_where_on(&mut server, &inv, mine, n).await.unwrap();
        assert_eq!(m, serial, "{flavour}: {n} connections find the same mismatches in the same order");
    }
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_concurrent_verify_keeps_order() {
    concurrent_verify_keeps_order(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_concurrent_verify_keeps_order() {
    concurrent_verify_keeps_order(Flavour::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cross_check_catches_a_corrupted_model() {
    corruption_is_caught(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_cross_check_catches_a_corrupted_model() {
    corruption_is_caught(Flavour::MySql).await;
}

/// An anonymous account more specific than a named one takes over its logins.
async fn anonymous_shadowing(flavour: Flavour) {
    let sb = sandbox(flavour);
    admin_exec(
        sb,
        &[
            "CREATE DATABASE pfs".into(),
            "CREATE TABLE pfs.t (id INT PRIMARY KEY, v VARCHAR(20))".into(),
            "CREATE USER ''@'127.0.0.99'".into(),
            "GRANT SELECT ON pfs.t TO ''@'127.0.0.99'".into(),
            "CREATE USER 'pfs_victim'@'%' IDENTIFIED BY 'pw-victim'".into(),
            "CREATE USER 'pfs_proxy'@'%' IDENTIFIED BY 'pw'".into(),
            "GRANT PROXY ON 'pfs_victim'@'%' TO 'pfs_proxy'@'%'".into(),
            "GRANT UPDATE ON pfs.t TO 'pfs_victim'@'%'".into(),
        ],
    )
    .await;
    let (mut server, inv) = inventory(sb).await;
    assert!(privfence::inventory::verify::verify_where(&mut server, &inv, |a| a.user.starts_with("pfs_") || a.user.is_empty())
        .await
        .unwrap()
        .is_empty());
    let t = TableName::new("pfs", "t");
    let report = access::analyse(&inv, std::slice::from_ref(&t));
    let anon = AccountName::new("", "127.0.0.99");
    let victim = AccountName::new("pfs_victim", "%");
    assert!(
        report.shadowing.iter().any(|s| s.anonymous == anon && s.shadowed == victim),
        "{flavour}: shadowing reported: {:#?}",
        report.shadowing
    );
    assert!(
        report.entries.iter().any(|e| e.account == anon && matches!(e.via, Via::Table)),
        "the anonymous account's own access is listed"
    );
    assert!(
        report.entries.iter().any(|e| e.account.user == "pfs_proxy" && matches!(&e.via, Via::Proxy { proxied, .. } if *proxied == victim)),
        "{flavour}: proxy path listed"
    );
    // The server agrees: from .99 the victim's password is refused, an empty one logs in as
    // the anonymous account; from .98 the victim logs in as itself.
    let shadowed = login_from(&sb.primary, "pfs_victim", "pw-victim", Ipv4Addr::new(127, 0, 0, 99)).await;
    assert!(matches!(shadowed, Err(mysql_async::Error::Server(ref e)) if e.code == 1045), "{flavour}: {shadowed:?}");
    let mut c = login_from(&sb.primary, "pfs_victim", "", Ipv4Addr::new(127, 0, 0, 99)).await.expect("anonymous login");
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("@127.0.0.99"));
    c.disconnect().await.ok();
    let mut c = login_from(&sb.primary, "pfs_victim", "pw-victim", Ipv4Addr::new(127, 0, 0, 98)).await.expect("victim login");
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("pfs_victim@%"));
    c.disconnect().await.ok();
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_anonymous_shadowing_and_proxy() {
    anonymous_shadowing(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_anonymous_shadowing_and_proxy() {
    anonymous_shadowing(Flavour::MySql).await;
}

/// MySQL with `partial_revokes=ON` (its own server: the setting changes how every grant's
/// schema name is read) and mandatory roles active at login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_partial_revokes_and_mandatory_roles() {
    let opts = SandboxOptions { extra_args: vec!["--partial-revokes=ON".into()], ..SandboxOptions::new(Flavour::MySql, Topology::Single) };
    let sb = Sandbox::start(opts).await.expect("a MySQL sandbox with partial_revokes (run scripts/install-servers.sh mysql)");
    admin_exec(
        &sb,
        &[
            "CREATE DATABASE pfp_secret".into(),
            "CREATE TABLE pfp_secret.t (id INT PRIMARY KEY, v VARCHAR(20))".into(),
            "CREATE DATABASE pfp_open".into(),
            "CREATE TABLE pfp_open.t (id INT PRIMARY KEY, v VARCHAR(20))".into(),
            "CREATE DATABASE pfpXopen".into(),
            "CREATE TABLE pfpXopen.t (id INT PRIMARY KEY, v VARCHAR(20))".into(),
            "CREATE USER 'pfp_u'@'%' IDENTIFIED BY 'pw-pfp_u'".into(),
            "GRANT SELECT, INSERT ON *.* TO 'pfp_u'@'%'".into(),
            "REVOKE SELECT, INSERT ON pfp_secret.* FROM 'pfp_u'@'%'".into(),
            // With partial_revokes=ON, `_` is literal: this does not reach pfpXopen.
            "CREATE USER 'pfp_w'@'%' IDENTIFIED BY 'pw-pfp_w'".into(),
            "GRANT DELETE ON `pfp_open`.* TO 'pfp_w'@'%'".into(),
            "CREATE ROLE 'pfp_mand'".into(),
            "GRANT UPDATE ON pfp_open.t TO 'pfp_mand'".into(),
            "SET GLOBAL mandatory_roles = 'pfp_mand@%'".into(),
            "SET GLOBAL activate_all_roles_on_login = ON".into(),
        ],
    )
    .await;
    let mut server = Server::connect(&admin_spec(&sb.primary)).await.unwrap();
    let inv = privfence::inventory::take(&mut server).await.unwrap();
    assert!(inv.server.partial_revokes);
    let u = AccountName::new("pfp_u", "%");
    assert!(
        inv.partial_revokes.iter().any(|r| r.account == u && r.schema == "pfp_secret" && r.privileges.len() == 2),
        "{:#?}",
        inv.partial_revokes
    );
    assert!(inv.mandatory_roles.contains(&AccountName::new("pfp_mand", "%")));
    let m = privfence::inventory::verify::verify_where(&mut server, &inv, |a| a.user.starts_with("pfp_")).await.unwrap();
    assert!(m.is_empty(), "cross-check with partial revokes: {m:#?}");
    let tables = vec![TableName::new("pfp_secret", "t"), TableName::new("pfp_open", "t"), TableName::new("pfpXopen", "t")];
    let report = access::analyse(&inv, &tables);
    assert!(report
        .entries
        .iter()
        .any(|e| e.account.user == "pfp_mand" && matches!(e.via, Via::Mandatory { .. }) && e.table.schema == "pfp_open"));
    // Probe as both accounts: the model (with mandatory roles active at login) equals the server.
    let mand = AccountName::new("pfp_mand", "%");
    let mut wrong = Vec::new();
    for (user, ip) in [("pfp_u", 30), ("pfp_w", 31)] {
        let account = AccountName::new(user, "%");
        let mut conn = login_from(&sb.primary, user, &format!("pw-{user}"), Ipv4Addr::new(127, 0, 0, ip)).await.unwrap();
        for t in &tables {
            let probes = table_probes(t);
            let results = run_probes(&mut conn, &probes).await;
            let (mut tl, cols) = model_direct(&report, &account, t);
            for e in report.entries.iter().filter(|e| e.account == mand && &e.table == t) {
                tl.extend(e.privileges.iter().map(|p| p.to_string()));
            }
            for (p, denied) in probes.iter().zip(results) {
                if model_allows(p, &tl, &cols) != denied.is_none() {
                    wrong.push(format!("{user} {} on {t}: server {denied:?}", p.name));
                }
            }
        }
        conn.disconnect().await.ok();
    }
    assert!(wrong.is_empty(), "model and server disagree:\n{}", wrong.join("\n"));
    server.close().await;
    sb.destroy().unwrap();
}
