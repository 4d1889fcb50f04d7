//! Sync-back's "copy's writers" check on real servers, both flavours: through privfence's access
//! model, an account that may write the old copy through a default role, a global grant, or (on
//! MariaDB) a role granted to PUBLIC is named with its path, and sync-back refuses; the clean
//! case passes, with the administrators tolerated and named.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints the check's verdicts

#[macro_use]
mod support;

use privfence::db::{Flavour, Secret, Server};
use privfence::model::TableName;
use privfence::syncback::writers::other_writers;
use support::*;

async fn verdict(sb: &privfence::sandbox::Sandbox) -> (bool, String) {
    let mut spec = admin_spec(&sb.primary);
    spec.user = "wb_sync".into();
    spec.password = Some(Secret::new("pw-wb".to_string()));
    let mut t = Server::connect(&spec).await.expect("sync-back's account logs in");
    let c = other_writers(&mut t, &[TableName::new("wb", "copy")]).await;
    t.close().await;
    println!("{}: {}", c.ok, c.detail);
    (c.ok, c.detail)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

async fn writers(flavour: Flavour) {
    let sb = sandbox(flavour);
    let maria = flavour == Flavour::MariaDb;
    admin_exec(
        sb,
        &s(&[
            "CREATE DATABASE wb",
            "CREATE TABLE wb.copy (id INT PRIMARY KEY, v INT)",
            "CREATE USER 'wb_sync'@'%' IDENTIFIED BY 'pw-wb'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON wb.copy TO 'wb_sync'@'%'",
            // To read the whole access model on the old primary.
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO 'wb_sync'@'%'",
        ]),
    )
    .await;
    let (ok, detail) = verdict(sb).await;
    assert!(ok && detail.contains("no other account may write") && detail.contains("administrators tolerated"), "clean: {detail}");

    // A writer through a default role.
    let default_role = if maria { "SET DEFAULT ROLE wb_role FOR 'wb_rolew'@'%'" } else { "SET DEFAULT ROLE wb_role TO 'wb_rolew'@'%'" };
    admin_exec(
        sb,
        &s(&[
            "CREATE ROLE wb_role",
            "GRANT UPDATE ON wb.copy TO wb_role",
            "CREATE USER 'wb_rolew'@'%' IDENTIFIED BY 'pw-r'",
            "GRANT wb_role TO 'wb_rolew'@'%'",
            default_role,
        ]),
    )
    .await;
    let (ok, detail) = verdict(sb).await;
    assert!(!ok && detail.contains("'wb_rolew'@'%' may write") && detail.contains("role") && detail.contains("UPDATE"), "role: {detail}");
    admin_exec(sb, &s(&["DROP USER 'wb_rolew'@'%'"])).await;
    let (ok, detail) = verdict(sb).await;
    if maria {
        assert!(ok, "clean again after the role's user is gone: {detail}");
    } else {
        // On MySQL a role is a locked account: still named (an ALTER USER ... UNLOCK away).
        assert!(!ok && detail.contains("'wb_role'@'%' (locked) may write") && !detail.contains("wb_rolew"), "MySQL role: {detail}");
    }

    // A writer through a global grant (not an administrator: no CREATE USER, no GRANT OPTION).
    admin_exec(sb, &s(&["CREATE USER 'wb_glob'@'%' IDENTIFIED BY 'pw-g'", "GRANT DELETE ON *.* TO 'wb_glob'@'%'"])).await;
    let (ok, detail) = verdict(sb).await;
    assert!(!ok && detail.contains("'wb_glob'@'%' may write") && detail.contains("global grant"), "global: {detail}");
    admin_exec(sb, &s(&["DROP USER 'wb_glob'@'%'"])).await;
    if !maria {
        // A role made mandatory: every account may write.
        admin_exec(sb, &s(&["SET PERSIST mandatory_roles = 'wb_role@%'", "SET PERSIST activate_all_roles_on_login = ON"])).await;
        let (ok, detail) = verdict(sb).await;
        admin_exec(sb, &s(&["SET PERSIST mandatory_roles = ''", "SET PERSIST activate_all_roles_on_login = OFF"])).await;
        assert!(!ok && detail.contains("mandatory role"), "mandatory: {detail}");
    }

    if maria {
        // A role granted to PUBLIC: every account may write.
        admin_exec(sb, &s(&["GRANT wb_role TO PUBLIC"])).await;
        let (ok, detail) = verdict(sb).await;
        assert!(!ok && detail.contains("PUBLIC"), "PUBLIC: {detail}");
        admin_exec(sb, &s(&["REVOKE wb_role FROM PUBLIC"])).await;
    }
    admin_exec(sb, &s(&["DROP ROLE wb_role"])).await;
    let (ok, detail) = verdict(sb).await;
    assert!(ok, "clean at the end: {detail}");
    admin_exec(sb, &s(&["DROP USER 'wb_sync'@'%'", "DROP DATABASE wb"])).await;
}

both_flavours!(other_writers_caught, writers);
