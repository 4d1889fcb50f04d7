//! Issue 11, "Who can touch what: six wrong answers": each answer checked against a real login
//! as the account trying the privilege, on the flavour(s) where the feature exists.
//!
//! Cases 3 and 4 change server-wide settings (`mandatory_roles`, an anonymous `mysql.db` row),
//! so the tests of this binary take [`SERIAL`] and run one at a time.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use privfence::access::{self, Via};
use privfence::db::Flavour;
use privfence::model::{AccountName, GrantObject, Inventory, RoutineKind, TableName};
use std::net::Ipv4Addr;
use support::*;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn user(name: &str) -> AccountName {
    AccountName::new(name, "%")
}

fn create(a: &AccountName) -> String {
    format!("CREATE USER {} IDENTIFIED BY 'pw-{}'", a.sql(), a.user)
}

/// Probes every table as every account (a fresh login from its own address) and returns
/// where the model's answer for a plain login differs from the server's.
async fn disagreements(flavour: Flavour, inv: &Inventory, tables: &[TableName], accounts: &[(AccountName, u8)]) -> Vec<String> {
    let sb = sandbox(flavour);
    let report = access::analyse(inv, tables);
    let mut wrong = Vec::new();
    for (a, ip) in accounts {
        let mut conn = login_from(&sb.primary, &a.user, &format!("pw-{}", a.user), Ipv4Addr::new(127, 0, 11, *ip))
            .await
            .unwrap_or_else(|e| panic!("{flavour}: login as {a}: {e}"));
        for t in tables {
            let probes = table_probes(t);
            let results = run_probes(&mut conn, &probes).await;
            let (tl, cols) = model_direct(&report, a, t);
            for (p, denied) in probes.iter().zip(results) {
                if model_allows(p, &tl, &cols) != denied.is_none() {
                    wrong.push(format!("{flavour}: {a} {} on {t}: model {tl:?}, server {denied:?}", p.name));
                }
            }
        }
        conn.disconnect().await.ok();
    }
    wrong
}

fn table(schema: &str) -> (String, TableName) {
    let t = TableName::new(schema, "t");
    (format!("CREATE DATABASE {schema}; CREATE TABLE {} (id INT PRIMARY KEY, v VARCHAR(20))", t.sql()), t)
}

fn stmts(s: &str) -> Vec<String> {
    s.split("; ").map(String::from).collect()
}

/// Case 1, MySQL: an account granted to another as a role still logs in with its own privileges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_account_granted_as_a_role_keeps_its_own_paths() {
    let _g = SERIAL.lock().await;
    let sb = sandbox(Flavour::MySql);
    prepare_probes(sb).await;
    let (ddl, t) = table("pf11_one");
    let (r1, u1) = (user("pf11_r1"), user("pf11_u1"));
    let mut sql = stmts(&ddl);
    sql.extend([create(&r1), create(&u1)]);
    sql.push(format!("GRANT SELECT ON {} TO {}", t.sql(), r1.sql()));
    sql.push(format!("GRANT {} TO {}", r1.sql(), u1.sql()));
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    assert!(inv.account(&r1).unwrap().is_role, "r1 is used as a role");
    assert!(inv.login_accounts().any(|a| a.name == r1), "and still a login account");
    let report = access::analyse(&inv, std::slice::from_ref(&t));
    assert!(report.entries.iter().any(|e| e.account == r1 && e.via == Via::Table), "r1's own table path: {:#?}", report.entries);
    let wrong = disagreements(Flavour::MySql, &inv, std::slice::from_ref(&t), &[(r1.clone(), 1), (u1.clone(), 2)]).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(privfence::inventory::verify::verify(&mut server, &inv).await.unwrap().is_empty());
    server.close().await;
}

/// Case 2, MariaDB: a role granted to PUBLIC is active at login for every account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_role_granted_to_public_is_active_at_login() {
    let _g = SERIAL.lock().await;
    let sb = sandbox(Flavour::MariaDb);
    prepare_probes(sb).await;
    let (ddl, t) = table("pf11_two");
    let u = user("pf11_pub_u");
    let mut sql = stmts(&ddl);
    sql.extend([create(&u), "CREATE ROLE pf11_pub_r".into(), "GRANT SELECT ON pf11_two.* TO pf11_pub_r".into()]);
    sql.push("GRANT pf11_pub_r TO PUBLIC".into());
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    let report = access::analyse(&inv, std::slice::from_ref(&t));
    assert!(
        report
            .entries
            .iter()
            .any(|e| matches!(&e.via, Via::Public { grant } if matches!(**grant, Via::Role { active_at_login: true, .. }))),
        "PUBLIC's role is active at login: {:#?}",
        report.entries
    );
    let wrong = disagreements(Flavour::MariaDb, &inv, std::slice::from_ref(&t), &[(u.clone(), 3)]).await;
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    admin_exec(sb, &["REVOKE pf11_pub_r FROM PUBLIC".into()]).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(m.is_empty(), "{m:#?}");
    server.close().await;
}

/// Cases 3 and 4, MySQL: an anonymous schema row applies only to a login with no active role (a
/// default or a mandatory one); mandatory roles are active at login only while
/// `activate_mandatory_roles` is ON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_anonymous_rows_and_mandatory_roles() {
    let _g = SERIAL.lock().await;
    let sb = sandbox(Flavour::MySql);
    prepare_probes(sb).await;
    let (ddl3, t3) = table("pf11_anon");
    let (ddl4, t4) = table("pf11_mand");
    let (u2, u3, u4) = (user("pf11_u2"), user("pf11_u3"), user("pf11_u4"));
    let mut sql = stmts(&ddl3);
    sql.extend(stmts(&ddl4));
    sql.extend([create(&u2), create(&u3), create(&u4)]);
    // The row MySQL's own test suite uses: user '', host '%', a literal schema.
    sql.push("INSERT INTO mysql.db (Host, Db, User, Select_priv) VALUES ('%', 'pf11_anon', '', 'Y')".into());
    sql.push("FLUSH PRIVILEGES".into());
    sql.extend(stmts("CREATE ROLE pf11_r2; CREATE ROLE pf11_hr; GRANT SELECT ON pf11_mand.* TO pf11_hr"));
    sql.push(format!("GRANT pf11_r2 TO {}", u2.sql()));
    sql.push(format!("SET DEFAULT ROLE pf11_r2 TO {}", u2.sql()));
    sql.push("SET GLOBAL mandatory_roles = 'pf11_hr', activate_mandatory_roles = OFF".into());
    admin_exec(sb, &sql).await;
    let tables = [t3.clone(), t4.clone()];
    let accounts = [(u2.clone(), 4), (u3.clone(), 5), (u4.clone(), 6)];

    let (server, inv) = inventory(sb).await;
    assert!(!inv.activate_mandatory_roles, "the inventory reads activate_mandatory_roles=OFF");
    let report = access::analyse(&inv, &tables);
    assert!(report.entries.iter().any(|e| matches!(e.via, Via::Mandatory { active_at_login: false, .. })));
    // u2 (default role active) is denied on pf11_anon; u3 reads it through the anonymous row.
    let off = disagreements(Flavour::MySql, &inv, &tables, &accounts).await;
    server.close().await;

    admin_exec(sb, &["SET GLOBAL activate_mandatory_roles = ON".into()]).await;
    let (mut server, inv) = inventory(sb).await;
    assert!(inv.activate_mandatory_roles);
    // Now every login has a role active: nobody reads pf11_anon, everyone reads pf11_mand.
    let on = disagreements(Flavour::MySql, &inv, &tables, &accounts).await;
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    server.close().await;
    admin_exec(
        sb,
        &[
            "SET GLOBAL mandatory_roles = '', activate_mandatory_roles = ON".into(),
            "DELETE FROM mysql.db WHERE User = '' AND Db = 'pf11_anon'".into(),
            "FLUSH PRIVILEGES".into(),
        ],
    )
    .await;
    assert!(off.is_empty(), "activate_mandatory_roles=OFF:\n{}", off.join("\n"));
    assert!(on.is_empty(), "activate_mandatory_roles=ON:\n{}", on.join("\n"));
    assert!(m.is_empty(), "{m:#?}");
}

/// Case 5, both flavours: routine names are case-insensitive; `--verify` agrees with SHOW GRANTS and the
/// account calls the routine by either spelling.
async fn routine_names_are_case_insensitive(flavour: Flavour) {
    let _g = SERIAL.lock().await;
    let sb = sandbox(flavour);
    let u = user("pf11_exec");
    admin_exec(
        sb,
        &[
            "CREATE DATABASE pf11_five".into(),
            "CREATE PROCEDURE pf11_five.P1() SQL SECURITY INVOKER SELECT 1".into(),
            "CREATE PROCEDURE pf11_five.P2() SQL SECURITY INVOKER SELECT 2".into(),
            create(&u),
            format!("GRANT EXECUTE ON PROCEDURE pf11_five.P1 TO {}", u.sql()),
        ],
    )
    .await;
    let (mut server, inv) = inventory(sb).await;
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    assert!(m.is_empty(), "{flavour}: {m:#?}");
    let ix = privfence::access::index::Index::new(&inv);
    let has = |name: &str| ix.all_routine_privileges(&u, "pf11_five", name).iter().any(|p| p.as_str() == "EXECUTE");
    assert!(has("p1") && has("P1") && !has("P2"), "{flavour}: the model");
    let mut c = login_from(&sb.primary, &u.user, "pw-pf11_exec", Ipv4Addr::new(127, 0, 11, 7)).await.unwrap();
    use mysql_async::prelude::Queryable;
    c.query_drop("CALL pf11_five.p1()").await.expect("p1, lower case");
    c.query_drop("CALL pf11_five.P1()").await.expect("P1");
    let denied = c.query_drop("CALL pf11_five.P2()").await;
    assert!(matches!(denied, Err(mysql_async::Error::Server(ref e)) if e.code == 1370), "{flavour}: {denied:?}");
    c.disconnect().await.ok();
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_routine_names_are_case_insensitive() {
    routine_names_are_case_insensitive(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_routine_names_are_case_insensitive() {
    routine_names_are_case_insensitive(Flavour::MySql).await;
}

/// Case 6, MySQL 9: `GRANT EXECUTE ON LIBRARY` is read, verified, and is what lets an account use
/// the library (`CREATE FUNCTION ... USING (lib)` checks it: 1370 without it). The sandbox has
/// no JavaScript engine (component_mle), so the library is created but never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_library_grants() {
    let _g = SERIAL.lock().await;
    let sb = sandbox(Flavour::MySql);
    let (lu, nolu) = (user("pf11_lu"), user("pf11_nolu"));
    let mut sql = vec![
        "CREATE DATABASE pf11_six".into(),
        "CREATE LIBRARY pf11_six.Lib1 LANGUAGE JAVASCRIPT AS 'export function f(n) { return n }'".into(),
    ];
    sql.extend([create(&lu), create(&nolu)]);
    sql.push(format!("GRANT EXECUTE ON LIBRARY pf11_six.Lib1 TO {}", lu.sql()));
    for a in [&lu, &nolu] {
        sql.push(format!("GRANT CREATE ROUTINE ON pf11_six.* TO {}", a.sql()));
    }
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    assert!(!inv.warnings.iter().any(|w| w.contains("LIBRARY")), "{:?}", inv.warnings);
    assert!(inv.grants.iter().any(|g| g.grantee == lu && matches!(&g.object, GrantObject::Routine { kind: RoutineKind::Library, .. })));
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    assert!(m.is_empty(), "{m:#?}");
    let ix = privfence::access::index::Index::new(&inv);
    for (a, ip, allowed) in [(&lu, 8, true), (&nolu, 9, false)] {
        let model = ix.all_routine_privileges(a, "pf11_six", "lib1").iter().any(|p| p.as_str() == "EXECUTE");
        assert_eq!(model, allowed, "model for {a}");
        let mut c = login_from(&sb.primary, &a.user, &format!("pw-{}", a.user), Ipv4Addr::new(127, 0, 11, ip)).await.unwrap();
        use mysql_async::prelude::Queryable;
        let r = c
            .query_drop(format!(
                "CREATE FUNCTION pf11_six.f_{}() RETURNS INT NO SQL LANGUAGE JAVASCRIPT USING (pf11_six.lib1) AS 'return 1'",
                a.user
            ))
            .await;
        let denied = matches!(r, Err(mysql_async::Error::Server(ref e)) if e.code == 1370);
        assert_eq!(!denied, allowed, "server for {a}: {r:?}");
        c.disconnect().await.ok();
    }
    server.close().await;
}

/// `--verify` explains the servers' forgotten `WITH ADMIN OPTION` (MariaDB: after RENAME USER;
/// MySQL: after a second GRANT of the role) as the server's, and FLUSH PRIVILEGES clears it.
async fn verify_explains_server_quirks(flavour: Flavour) {
    let _g = SERIAL.lock().await;
    let sb = sandbox(flavour);
    let (a, b) = (user("pf11_qa"), user("pf11_qb"));
    let role = match flavour {
        Flavour::MariaDb => "pf11_qr".to_string(),
        Flavour::MySql => "pf11_qr@'%'".to_string(),
    };
    let mut sql = vec![format!("CREATE ROLE {role}"), create(&a), format!("GRANT {role} TO {} WITH ADMIN OPTION", a.sql())];
    let who = match flavour {
        Flavour::MariaDb => {
            sql.push(format!("RENAME USER {} TO {}", a.sql(), b.sql()));
            b
        }
        Flavour::MySql => {
            sql.push(format!("GRANT {role} TO {}", a.sql()));
            a
        }
    };
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    assert_eq!(m.len(), 1, "{flavour}: {m:#?}");
    assert_eq!(m[0].account, who);
    let why = m[0].explanation.as_deref().unwrap_or_else(|| panic!("{flavour}: explained: {m:#?}"));
    assert!(why.contains("FLUSH PRIVILEGES would load the tables"), "{why}");
    let text = privfence::report::inventory::mismatches_text(&m);
    assert!(!text.contains("VERIFY FAILED"), "{text}");
    admin_exec(sb, &["FLUSH PRIVILEGES".into()]).await;
    let m = privfence::inventory::verify::verify(&mut server, &inv).await.unwrap();
    assert!(m.is_empty(), "{flavour}: after FLUSH PRIVILEGES: {m:#?}");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_verify_explains_server_quirks() {
    verify_explains_server_quirks(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_verify_explains_server_quirks() {
    verify_explains_server_quirks(Flavour::MySql).await;
}
