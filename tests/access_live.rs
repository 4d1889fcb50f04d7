//! Access analysis against real servers, both flavours. Every expectation about what an
//! account can do directly comes from logging in as that account (from its own 127.0.0.x
//! address) and trying each privilege; definer, trigger and foreign-key paths are exercised for
//! real too. Names need quoting everywhere (backtick, quotes, `%`, `_`, space, non-ASCII).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use privfence::access::{self, Via};
use privfence::db::Flavour;
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::{AccountName, SchemaPattern, TableName};
use std::net::Ipv4Addr;
use support::*;

/// The scenario's names for one flavour.
struct Names {
    shop: String,
    weird: String,
    pct: String,
    uni: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        Names {
            shop: format!("pf{tag}_shop"),
            weird: format!("pf{tag} we`ird 'q' \"d\""),
            pct: format!("pf{tag}_pct%x"),
            uni: format!("pf{tag}_ünï"),
        }
    }
    fn t(&self, schema: &str, name: &str) -> TableName {
        TableName::new(schema, name)
    }
}

fn acct(user: &str, host: &str) -> AccountName {
    AccountName::new(user, host)
}

fn create(a: &AccountName) -> String {
    format!("CREATE USER {} IDENTIFIED BY {}", a.sql(), qs(&format!("pw-{}", a.user)))
}

/// Builds the scenario; returns (statements, accounts under test with their source address).
fn scenario(flavour: Flavour, tag: &str) -> (Vec<String>, Vec<(AccountName, Ipv4Addr)>, Names) {
    let n = Names::new(tag);
    let u = |s: &str| format!("pf{tag}_{s}");
    let mut sql = Vec::new();
    for schema in [&n.shop, &n.weird, &n.pct, &n.uni] {
        sql.push(format!("CREATE DATABASE {}", qi(schema)));
        for table in ["media", "t_x", "odd 'name' `bt`", "表"] {
            sql.push(format!("CREATE TABLE {} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB", n.t(schema, table).sql()));
        }
    }
    let shop_exact = SchemaPattern::exact(&n.shop).sql();
    let media = n.t(&n.shop, "media").sql();
    let accounts: Vec<AccountName> = [
        "table",
        "schema",
        "wild",
        "shadow",
        "global",
        "column",
        "role",
        "role_nodefault",
        "none",
        "quoted",
        "viewer",
        "exec",
        "trig",
        "fk",
    ]
    .iter()
    .map(|s| acct(&u(s), "%"))
    .collect();
    let a = |s: &str| accounts.iter().find(|x| x.user == u(s)).unwrap().clone();
    let quoted = acct(&format!("pf{tag} o'k \"q\" `b`"), "127.0.0.%");
    for x in accounts.iter().chain(std::iter::once(&quoted)) {
        sql.push(create(x));
    }
    let g = |privs: &str, on: &str, to: &AccountName| format!("GRANT {privs} ON {on} TO {}", to.sql());
    sql.push(g("SELECT, INSERT", &media, &a("table")));
    sql.push(g(
        "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE VIEW, TRIGGER",
        &format!("{shop_exact}.*"),
        &a("schema"),
    ));
    // `_` unescaped: a wildcard that also matches the shop schema.
    sql.push(g("SELECT", &format!("{}.*", qi(&format!("pf{tag}_sho%"))), &a("wild")));
    // Two matching rows: only the exact one applies (the first in the server's order).
    sql.push(g("SELECT", &format!("{shop_exact}.*"), &a("shadow")));
    sql.push(g("INSERT, UPDATE", &format!("{}.*", qi(&format!("pf{tag}%"))), &a("shadow")));
    sql.push(g("SELECT", "*.*", &a("global")));
    sql.push(g("SELECT (id), UPDATE (v)", &media, &a("column")));
    sql.push(g("SELECT, DELETE", &format!("{}.*", SchemaPattern::exact(&n.pct).sql()), &a("column")));
    let (outer, inner) = (u("r_outer"), u("r_inner"));
    let role_sql = |r: &str| match flavour {
        Flavour::MariaDb => qi(r),
        Flavour::MySql => format!("{}@'%'", qi(r)),
    };
    sql.push(format!("CREATE ROLE {}", role_sql(&outer)));
    sql.push(format!("CREATE ROLE {}", role_sql(&inner)));
    sql.push(format!("GRANT SELECT, UPDATE ON {} TO {}", n.t(&n.weird, "odd 'name' `bt`").sql(), role_sql(&inner)));
    sql.push(format!("GRANT {} TO {}", role_sql(&inner), role_sql(&outer)));
    sql.push(format!("GRANT {} TO {}", role_sql(&outer), a("role").sql()));
    sql.push(format!("GRANT {} TO {}", role_sql(&outer), a("role_nodefault").sql()));
    sql.push(match flavour {
        Flavour::MariaDb => format!("SET DEFAULT ROLE {} FOR {}", role_sql(&outer), a("role").sql()),
        Flavour::MySql => format!("SET DEFAULT ROLE {} TO {}", role_sql(&outer), a("role").sql()),
    });
    if flavour == Flavour::MariaDb {
        sql.push(format!("GRANT SELECT ON {} TO PUBLIC", n.t(&n.uni, "表").sql()));
    }
    sql.push(g("SELECT, INSERT, DELETE", &format!("{}.*", SchemaPattern::exact(&n.weird).sql()), &quoted));
    // Definer view over media (definer has SELECT there), and one whose definer has nothing.
    let schema_acct = a("schema");
    sql.push(format!(
        "CREATE DEFINER={} SQL SECURITY DEFINER VIEW {} AS SELECT id, v FROM {media}",
        schema_acct.sql(),
        n.t(&n.uni, "v_media").sql()
    ));
    sql.push(format!(
        "CREATE DEFINER={} SQL SECURITY DEFINER VIEW {} AS SELECT id FROM {media}",
        a("none").sql(),
        n.t(&n.uni, "v_bad").sql()
    ));
    sql.push(g("SELECT", &n.t(&n.uni, "v_media").sql(), &a("viewer")));
    sql.push(g("SELECT", &n.t(&n.uni, "v_bad").sql(), &a("viewer")));
    // Definer procedure deleting from media; one with dynamic SQL.
    let proc = format!("{}.{}", qi(&n.uni), qi("purge `p`"));
    sql.push(format!("CREATE DEFINER={} PROCEDURE {proc}() SQL SECURITY DEFINER DELETE FROM {media} WHERE id = -1", schema_acct.sql()));
    sql.push(format!("GRANT EXECUTE ON PROCEDURE {proc} TO {}", a("exec").sql()));
    let dynproc = format!("{}.{}", qi(&n.uni), qi("dyn"));
    sql.push(format!(
        "CREATE DEFINER={} PROCEDURE {dynproc}() SQL SECURITY DEFINER BEGIN SET @s = 'SELECT 1'; PREPARE st FROM @s; EXECUTE st; END",
        schema_acct.sql()
    ));
    sql.push(format!("GRANT EXECUTE ON PROCEDURE {dynproc} TO {}", a("exec").sql()));
    // The definer of a DEFINER routine must hold EXECUTE on it too; `nox`'s definer does not.
    sql.push(format!("GRANT EXECUTE ON PROCEDURE {proc} TO {}", schema_acct.sql()));
    sql.push(format!("GRANT EXECUTE ON PROCEDURE {dynproc} TO {}", schema_acct.sql()));
    let nox = format!("{}.{}", qi(&n.uni), qi("nox"));
    sql.push(format!("CREATE DEFINER={} PROCEDURE {nox}() SQL SECURITY DEFINER DELETE FROM {media} WHERE id = -2", schema_acct.sql()));
    sql.push(format!("GRANT EXECUTE ON PROCEDURE {nox} TO {}", a("exec").sql()));
    // A trigger on t_x (writable by trig) that writes media with the definer's rights.
    let tx = n.t(&n.shop, "t_x").sql();
    sql.push(g("INSERT", &tx, &a("trig")));
    sql.push(format!(
        "CREATE DEFINER={} TRIGGER {}.{} AFTER INSERT ON {tx} FOR EACH ROW INSERT INTO {media} (id, v) VALUES (NEW.id + 1000, 'from trigger')",
        schema_acct.sql(),
        qi(&n.shop),
        qi("trg copy")
    ));
    // A child table whose rows go when a parent row of t_x is deleted.
    let child = n.t(&n.shop, "media_fk").sql();
    sql.push(format!(
        "CREATE TABLE {child} (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES {tx} (id) ON DELETE CASCADE) ENGINE=InnoDB"
    ));
    sql.push(g("DELETE", &tx, &a("fk")));
    let mut under_test: Vec<(AccountName, Ipv4Addr)> = Vec::new();
    for (i, x) in accounts.iter().chain(std::iter::once(&quoted)).enumerate() {
        under_test.push((x.clone(), Ipv4Addr::new(127, 0, 0, 10 + i as u8)));
    }
    (sql, under_test, n)
}

async fn run(flavour: Flavour, tag: &str) {
    let sb = sandbox(flavour);
    let (sql, accounts, n) = scenario(flavour, tag);
    prepare_probes(sb).await;
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    // The SHOW GRANTS cross-check passes for every account.
    let own = format!("pf{tag}");
    let mismatches = privfence::inventory::verify::verify_where(&mut server, &inv, |a| a.user.starts_with(&own)).await.unwrap();
    assert!(mismatches.is_empty(), "{flavour}: model differs from SHOW GRANTS: {mismatches:#?}");

    let mut tables = Vec::new();
    for schema in [&n.shop, &n.weird, &n.pct, &n.uni] {
        for t in ["media", "t_x", "odd 'name' `bt`", "表"] {
            tables.push(n.t(schema, t));
        }
    }
    tables.push(n.t(&n.shop, "media_fk"));
    let report = access::analyse(&inv, &tables);

    // Direct paths: the model's answer for every probe equals the server's.
    let mut wrong = Vec::new();
    for (account, source) in &accounts {
        let mut conn = login_from(&sb.primary, &account.user, &format!("pw-{}", account.user), *source)
            .await
            .unwrap_or_else(|e| panic!("{flavour}: login as {account} from {source}: {e}"));
        for t in tables.iter().filter(|t| t.name != "media_fk") {
            let probes = table_probes(t);
            let results = run_probes(&mut conn, &probes).await;
            let (tl, cols) = model_direct(&report, account, t);
            for (p, denied) in probes.iter().zip(results) {
                let model = model_allows(p, &tl, &cols);
                if model != denied.is_none() {
                    wrong.push(format!(
                        "{account} {p_name} on {t}: model says {m}, server {s}",
                        p_name = p.name,
                        m = if model { "allowed" } else { "denied" },
                        s = denied.map(|c| format!("denied ({c})")).unwrap_or("allowed".into())
                    ));
                }
            }
        }
        conn.disconnect().await.ok();
    }
    assert!(wrong.is_empty(), "{flavour}: model and server disagree:\n{}", wrong.join("\n"));

    let find = |user: &str, table: &TableName, pred: &dyn Fn(&Via) -> bool| {
        report.entries.iter().any(|e| e.account.user == format!("pf{tag}_{user}") && &e.table == table && pred(&e.via))
    };
    let media = n.t(&n.shop, "media");
    assert!(find("wild", &media, &|v| matches!(v, Via::Schema { wildcard: true, .. })), "wildcard schema path");
    assert!(
        find(
            "role",
            &n.t(&n.weird, "odd 'name' `bt`"),
            &|v| matches!(v, Via::Role { chain, active_at_login: true, .. } if chain.len() == 2)
        ),
        "role chain"
    );

    // Definer view: the viewer reads media through it, for real; the broken one gives nothing.
    let viewer = accounts.iter().find(|(a, _)| a.user == format!("pf{tag}_viewer")).unwrap();
    assert!(find("viewer", &media, &|v| matches!(v, Via::Definer { object_kind, .. } if object_kind == "view")), "definer view path");
    assert!(
        !report.entries.iter().any(|e| matches!(&e.via, Via::Definer { object, .. } if object.contains("v_bad"))),
        "a definer without access gives no path"
    );
    let mut c = login_from(&sb.primary, &viewer.0.user, &format!("pw-{}", viewer.0.user), viewer.1).await.unwrap();
    c.query_drop(format!("SELECT * FROM {}", n.t(&n.uni, "v_media").sql())).await.expect("viewer reads media through the definer view");
    let bad = c.query_drop(format!("SELECT * FROM {}", n.t(&n.uni, "v_bad").sql())).await;
    assert!(bad.is_err(), "the view whose definer lacks access fails");
    c.disconnect().await.ok();

    // Definer procedure: exec deletes from media by calling it.
    let exec = accounts.iter().find(|(a, _)| a.user == format!("pf{tag}_exec")).unwrap();
    assert!(
        find("exec", &media, &|v| matches!(v, Via::Definer { object_kind, .. } if object_kind == "procedure")),
        "definer procedure path"
    );
    assert!(
        find(
            "exec",
            &media,
            &|v| matches!(v, Via::UnresolvedDefiner { reason, .. } if reason.to_lowercase().contains("prepare") || reason.to_lowercase().contains("dynamic"))
        ),
        "dynamic SQL is reported unresolved"
    );
    let mut c = login_from(&sb.primary, &exec.0.user, &format!("pw-{}", exec.0.user), exec.1).await.unwrap();
    c.query_drop(format!("CALL {}.{}()", qi(&n.uni), qi("purge `p`"))).await.expect("exec calls the definer procedure");
    assert!(
        !report.entries.iter().any(|e| matches!(&e.via, Via::Definer { object, .. } if object.contains("nox"))),
        "no path through a routine its definer may not execute"
    );
    let denied = c.query_drop(format!("CALL {}.{}()", qi(&n.uni), qi("nox"))).await;
    assert!(matches!(denied, Err(mysql_async::Error::Server(ref e)) if e.code == 1370), "the server refuses it too: {denied:?}");
    c.disconnect().await.ok();

    // Trigger: inserting into t_x writes media with the definer's rights.
    let trig = accounts.iter().find(|(a, _)| a.user == format!("pf{tag}_trig")).unwrap();
    assert!(find("trig", &media, &|v| matches!(v, Via::Definer { object_kind, .. } if object_kind == "trigger")), "trigger path");
    let mut c = login_from(&sb.primary, &trig.0.user, &format!("pw-{}", trig.0.user), trig.1).await.unwrap();
    c.query_drop(format!("INSERT INTO {} (id, v) VALUES (7, 'x')", n.t(&n.shop, "t_x").sql())).await.expect("trig inserts");
    c.disconnect().await.ok();
    let mut admin = sb.primary.conn().await.unwrap();
    let copied: Option<i64> = admin.query_first(format!("SELECT COUNT(*) FROM {media} WHERE id = 1007")).await.unwrap();
    assert_eq!(copied, Some(1), "the trigger wrote media on trig's behalf");

    // Foreign key: deleting a parent row deletes the child row of media_fk.
    admin.query_drop(format!("INSERT INTO {} VALUES (1, 7)", n.t(&n.shop, "media_fk").sql())).await.unwrap();
    let fk = accounts.iter().find(|(a, _)| a.user == format!("pf{tag}_fk")).unwrap();
    assert!(find("fk", &n.t(&n.shop, "media_fk"), &|v| matches!(v, Via::ForeignKey { .. })), "foreign-key cascade path");
    let mut c = login_from(&sb.primary, &fk.0.user, &format!("pw-{}", fk.0.user), fk.1).await.unwrap();
    // DELETE alone cannot use a WHERE on columns (that needs SELECT): delete every row.
    c.query_drop(format!("DELETE FROM {}", n.t(&n.shop, "t_x").sql())).await.expect("fk deletes the parent");
    c.disconnect().await.ok();
    let left: Option<i64> = admin.query_first(format!("SELECT COUNT(*) FROM {}", n.t(&n.shop, "media_fk").sql())).await.unwrap();
    assert_eq!(left, Some(0), "the cascade deleted the child row");

    // Event: the scheduler runs it as its definer, who writes media.
    let ev = format!("{}.{}", qi(&n.uni), qi("copy ev"));
    admin
        .query_drop(format!(
            "CREATE DEFINER={} EVENT {ev} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 HOUR DO INSERT INTO {media} (id, v) VALUES (4242, 'from event')",
            schema_acct_of(tag).sql()
        ))
        .await
        .unwrap();
    let (_, inv0) = inventory(sb).await;
    let before = access::analyse(&inv0, std::slice::from_ref(&media));
    assert!(
        !before.entries.iter().any(|e| matches!(&e.via, Via::Definer { object_kind, .. } if object_kind == "event")),
        "{flavour}: no event path while the definer lacks EVENT on the event's schema"
    );
    admin.query_drop(format!("GRANT EVENT ON {}.* TO {}", SchemaPattern::exact(&n.uni).sql(), schema_acct_of(tag).sql())).await.unwrap();
    admin.query_drop("SET GLOBAL event_scheduler = ON").await.unwrap();
    let (_, inv) = inventory(sb).await;
    let report = access::analyse(&inv, std::slice::from_ref(&media));
    assert!(
        report.entries.iter().any(|e| e.account == schema_acct_of(tag)
            && matches!(&e.via, Via::Definer { object_kind, entry, .. } if object_kind == "event" && matches!(**entry, Via::Scheduler))),
        "{flavour}: event path"
    );
    // Due only now: had it been due at creation, a slow inventory (a loaded machine) let it
    // run, and vanish, before the path was looked for.
    admin.query_drop(format!("ALTER EVENT {ev} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 SECOND")).await.unwrap();
    let mut ran = false;
    for _ in 0..50 {
        let n: Option<i64> = admin.query_first(format!("SELECT COUNT(*) FROM {media} WHERE id = 4242")).await.unwrap();
        if n == Some(1) {
            ran = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ran, "{flavour}: the event wrote media as its definer");
    admin.disconnect().await.ok();
    server.close().await;
}

fn schema_acct_of(tag: &str) -> AccountName {
    acct(&format!("pf{tag}_schema"), "%")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_access_paths_match_the_server() {
    run(Flavour::MariaDb, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_access_paths_match_the_server() {
    run(Flavour::MySql, "y").await;
}
