//! `--verify`'s two tiers against real servers, both flavours (issue 14): the information_schema
//! privilege views pass the hostile-name corpus exactly as `SHOW GRANTS` does; they see the
//! server's in-memory grants (a grant-table edit without `FLUSH PRIVILEGES` is reported); and
//! every account with a role or a routine grant goes through `SHOW GRANTS`, found from the grant
//! tables rather than from the model (a model that lost the routine grant is still caught).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::inventory::verify::{verify_full_where, verify_settled, verify_tiers_where};
use privfence::model::{AccountName, GrantObject};
use std::collections::BTreeSet;
use support::*;

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn acct(a: &AccountName) -> String {
    format!("{}@{}", q(&a.user), q(&a.host))
}

/// The hostile-name corpus with global, schema (pattern), table and column grants, grant option
/// included; checked by the views alone, and clean under both depths.
async fn hostile_names_pass_both_tiers(flavour: Flavour) {
    let sb = sandbox(flavour);
    let accounts = [
        AccountName::new("pfw_b`t", "%"),
        AccountName::new("pfw_q'@'x", "10.%"),
        AccountName::new("pfw_d\"q\\s", "pfw_host"),
        AccountName::new("pfw_%", "%"),
        AccountName::new("pfw__", "localhost"),
        AccountName::new("pfw sp ace", "%"),
        AccountName::new("pfw_ünï表", "%"),
        AccountName::new("", "pfw-anon.example"),
        AccountName::new("pfw_all", "%"),
    ];
    let mut sql = vec![
        "CREATE DATABASE `pfw db`".to_string(),
        "CREATE TABLE `pfw db`.`t'x` (id INT PRIMARY KEY, `c``ol` INT, `ç` INT)".into(),
        "CREATE DATABASE `pfw``q`".into(),
        "CREATE TABLE `pfw``q`.`ü t` (id INT PRIMARY KEY)".into(),
    ];
    for a in &accounts {
        sql.push(format!("CREATE USER {} IDENTIFIED BY 'pw'", acct(a)));
    }
    let g = |i: usize, what: &str| match what.strip_suffix(" WITH GRANT OPTION") {
        Some(what) => format!("GRANT {what} TO {} WITH GRANT OPTION", acct(&accounts[i])),
        None => format!("GRANT {what} TO {}", acct(&accounts[i])),
    };
    sql.extend([
        g(0, "SELECT, RELOAD ON *.*"),
        g(0, "INSERT ON `pfw db`.* WITH GRANT OPTION"),
        g(1, "SELECT, INSERT ON `pfw\\_s%`.* WITH GRANT OPTION"),
        g(1, "UPDATE ON `pfw db`.`t'x`"),
        g(2, "SELECT (`c``ol`, `ç`), INSERT (id) ON `pfw db`.`t'x` WITH GRANT OPTION"),
        g(3, "USAGE ON *.* WITH GRANT OPTION"),
        g(3, "SELECT ON `pfw``q`.`ü t` WITH GRANT OPTION"),
        g(4, "USAGE ON `pfw db`.`t'x` WITH GRANT OPTION"),
        g(4, "DELETE ON `pfw``q`.*"),
        g(5, "ALL ON `pfw db`.*"),
        g(5, "ALL ON `pfw db`.`t'x`"),
        g(6, "SELECT ON `pfw_ünï`.*"),
        g(6, "UPDATE (id) ON `pfw``q`.`ü t`"),
        g(7, "SELECT ON `pfw db`.`t'x`"),
        // Every global privilege: MariaDB's names (BINLOG MONITOR, SLAVE MONITOR, DELETE
        // HISTORY, READ_ONLY ADMIN ...) as the views print them. On MySQL, ALL includes the
        // dynamic privileges, so this account goes to SHOW GRANTS there.
        g(8, "ALL PRIVILEGES ON *.* WITH GRANT OPTION"),
    ]);
    admin_exec(sb, &sql).await;
    let (mut server, inv) = inventory(sb).await;
    let mine = |a: &AccountName| accounts.contains(a);
    let c = verify_tiers_where(&mut server, &inv, mine).await.unwrap();
    assert!(c.mismatches.is_empty(), "{flavour}: {:#?}", c.mismatches);
    let dynamic = usize::from(flavour == Flavour::MySql);
    assert_eq!((c.by_views, c.by_show_grants, c.suspects), (accounts.len() - dynamic, dynamic, 0), "{flavour}: {c:?}");
    let full = verify_full_where(&mut server, &inv, mine).await.unwrap();
    assert!(full.is_empty(), "{flavour}: --verify=full: {full:#?}");
    server.close().await;
}

/// Grant-table edits without FLUSH PRIVILEGES: the model (from the tables) and the server's
/// memory differ; the views see memory, so the difference is reported (confirmed by SHOW GRANTS).
async fn unflushed_edit_is_reported(flavour: Flavour) {
    let sb = sandbox(flavour);
    let (t, s) = (AccountName::new("pfe_t", "%"), AccountName::new("pfe_s", "%"));
    admin_exec(
        sb,
        &[
            "CREATE DATABASE pfe_db".into(),
            "CREATE TABLE pfe_db.t (id INT PRIMARY KEY)".into(),
            format!("CREATE USER {} IDENTIFIED BY 'pw'", acct(&t)),
            format!("CREATE USER {} IDENTIFIED BY 'pw'", acct(&s)),
            format!("GRANT SELECT, INSERT ON pfe_db.t TO {}", acct(&t)),
            format!("GRANT SELECT ON `pfe\\_db`.* TO {}", acct(&s)),
        ],
    )
    .await;
    let mine = |a: &AccountName| a.user.starts_with("pfe_");
    let (mut server, inv) = inventory(sb).await;
    let c = verify_tiers_where(&mut server, &inv, mine).await.unwrap();
    assert!(c.mismatches.is_empty() && c.by_views == 2, "{flavour}: before the edit: {c:?}");
    server.close().await;
    admin_exec(
        sb,
        &[
            "SET SESSION sql_log_bin = 0".into(),
            "UPDATE mysql.tables_priv SET Table_priv = 'Select' WHERE User = 'pfe_t' AND Db = 'pfe_db'".into(),
            "DELETE FROM mysql.db WHERE User = 'pfe_s'".into(),
        ],
    )
    .await;
    let (mut server, inv) = inventory(sb).await;
    let c = verify_tiers_where(&mut server, &inv, mine).await.unwrap();
    let (settled, fresh) = verify_settled(&mut server, &inv).await.unwrap();
    server.close().await;
    admin_exec(sb, &["FLUSH PRIVILEGES".into()]).await;
    assert_eq!((c.by_views, c.by_show_grants, c.suspects), (0, 2, 2), "{flavour}: {c:?}");
    let found: Vec<(&str, Vec<String>, Vec<String>)> =
        c.mismatches.iter().map(|m| (m.account.user.as_str(), m.only_on_server.clone(), m.only_in_model.clone())).collect();
    assert_eq!(
        found,
        vec![("pfe_s", vec!["`pfe\\_db`.* SELECT".to_string()], vec![]), ("pfe_t", vec!["`pfe_db`.`t` INSERT".to_string()], vec![]),],
        "{flavour}: {:#?}",
        c.mismatches
    );
    assert!(fresh.is_some(), "{flavour}: the mismatches were re-read");
    let settled: Vec<&AccountName> = settled.iter().map(|m| &m.account).filter(|a| mine(a)).collect();
    assert_eq!(settled, vec![&s, &t], "{flavour}: they persist after the re-read");
}

/// Accounts with a role, the role, and an account with a routine grant go through SHOW GRANTS,
/// found from the grant tables: dropping the routine grant from the model is still caught.
async fn roles_and_routines_go_through_show_grants(flavour: Flavour) {
    let sb = sandbox(flavour);
    let (plain, with_role, exec) =
        (AccountName::new("pfr_plain", "%"), AccountName::new("pfr_member", "%"), AccountName::new("pfr_exec", "%"));
    let role = match flavour {
        Flavour::MariaDb => AccountName::new("pfr_role", ""),
        Flavour::MySql => AccountName::new("pfr_role", "%"),
    };
    let role_sql = match flavour {
        Flavour::MariaDb => "pfr_role".to_string(),
        Flavour::MySql => acct(&role),
    };
    let mut sql = vec![
        "CREATE DATABASE pfr_db".to_string(),
        "CREATE TABLE pfr_db.t (id INT PRIMARY KEY)".into(),
        "CREATE PROCEDURE pfr_db.p() SQL SECURITY INVOKER SELECT 1".into(),
        format!("CREATE ROLE {role_sql}"),
        format!("GRANT SELECT ON pfr_db.t TO {role_sql}"),
    ];
    for a in [&plain, &with_role, &exec] {
        sql.push(format!("CREATE USER {} IDENTIFIED BY 'pw'", acct(a)));
        sql.push(format!("GRANT INSERT ON pfr_db.t TO {}", acct(a)));
    }
    sql.push(format!("GRANT {role_sql} TO {}", acct(&with_role)));
    sql.push(format!("GRANT EXECUTE ON PROCEDURE pfr_db.p TO {}", acct(&exec)));
    admin_exec(sb, &sql).await;
    let (mut server, mut inv) = inventory(sb).await;
    let mine = |a: &AccountName| a.user.starts_with("pfr_");
    let c = verify_tiers_where(&mut server, &inv, mine).await.unwrap();
    assert!(c.mismatches.is_empty(), "{flavour}: {:#?}", c.mismatches);
    assert_eq!((c.by_views, c.by_show_grants, c.suspects), (1, 3, 0), "{flavour}: plain by the views; role, member, exec by SHOW GRANTS");
    // A model that lost the routine grant: the raw read still routes pfr_exec to SHOW GRANTS.
    let before = inv.grants.len();
    inv.grants.retain(|g| !(g.grantee == exec && matches!(g.object, GrantObject::Routine { .. })));
    assert_eq!(inv.grants.len(), before - 1);
    let c = verify_tiers_where(&mut server, &inv, mine).await.unwrap();
    let who: BTreeSet<&AccountName> = c.mismatches.iter().map(|m| &m.account).collect();
    assert_eq!(who, BTreeSet::from([&exec]), "{flavour}: {:#?}", c.mismatches);
    assert_eq!(c.mismatches[0].only_on_server, vec!["PROCEDURE `pfr_db`.`p` EXECUTE".to_string()]);
    server.close().await;
}

both_flavours!(hostile_names, hostile_names_pass_both_tiers);
both_flavours!(unflushed_edit, unflushed_edit_is_reported);
both_flavours!(roles_and_routines, roles_and_routines_go_through_show_grants);
