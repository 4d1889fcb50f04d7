//! Accounts that could give themselves access (escalation paths), and anonymous accounts that
//! shadow named ones at login.

use super::index::{Index, Reach};
use crate::db::Flavour;
use crate::model::ident::{host_matches, wildcard_sort_key};
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::{AccountName, Inventory, TableName};
use serde::Serialize;

/// One capability that lets an account reach tables it has no grant on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Escalation {
    pub account: AccountName,
    /// Short name: `grant_option`, `create_user`, `super`, `set_user_id`, `file`, `role_admin`,
    /// `grant_tables_write`, `proxy_any`.
    pub capability: String,
    /// What it allows, in words.
    pub detail: String,
}

/// An anonymous account more specific than a named one: clients matching both log in as the
/// anonymous account, with its privileges, whatever user name they give.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Shadowing {
    pub anonymous: AccountName,
    pub shadowed: AccountName,
    pub detail: String,
}

/// Every account's effective global privileges (own, roles, PUBLIC, mandatory roles);
/// `everyone` is what PUBLIC and the mandatory roles give (the same for every account).
fn effective_global(ix: &Index, a: &AccountName, everyone: &PrivSet) -> PrivSet {
    let mut set = ix.global_all(a);
    for chain in ix.role_chains(a) {
        set.extend(ix.global_all(chain.last().expect("non-empty")));
    }
    set.extend(everyone.iter().cloned());
    set
}

const CAPABILITIES: &[(&str, &str, &str)] = &[
    ("CREATE USER", "create_user", "CREATE USER: can create, rename or re-password any account, including one that has access"),
    ("SUPER", "super", "SUPER: can create objects with any DEFINER and bypass read_only"),
    ("SET_USER_ID", "set_user_id", "SET_USER_ID: can create objects with any DEFINER"),
    ("SET_ANY_DEFINER", "set_user_id", "SET_ANY_DEFINER: can create objects with any DEFINER"),
    ("ALLOW_NONEXISTENT_DEFINER", "set_user_id", "ALLOW_NONEXISTENT_DEFINER: can create objects for a DEFINER that does not exist yet"),
    ("SET USER", "set_user_id", "SET USER: can create objects with any DEFINER"),
    ("FILE", "file", "FILE: can read and write files on the server host"),
    ("ROLE_ADMIN", "role_admin", "ROLE_ADMIN: can grant any role, to itself too"),
];

/// Escalation paths of every login account; GRANT OPTION only where it covers `tables`.
/// Locked accounts cannot log in to use a capability, so they are left out (unlocking one
/// takes CREATE USER, itself listed).
pub fn escalations(ix: &Index, tables: &[TableName]) -> Vec<Escalation> {
    let mut out = Vec::new();
    let grant_tables: &[&str] = match ix.inv.server.flavour {
        Flavour::MariaDb => &["global_priv", "db", "tables_priv", "columns_priv", "roles_mapping"],
        Flavour::MySql => &["user", "db", "tables_priv", "columns_priv", "role_edges", "global_grants"],
    };
    let writes: PrivSet = ["INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER"].into_iter().map(Privilege::known).collect();
    // What PUBLIC and the mandatory roles give is the same for every account: computed once
    // here, not once per account (10,000 accounts made that most of `access`'s time).
    let everyone_global: PrivSet = ix.everyone().iter().flat_map(|(h, _)| ix.global_all(h)).collect();
    let grant_tables: Vec<(&str, TableName, PrivSet)> = grant_tables
        .iter()
        .map(|gt| {
            let t = TableName::new("mysql", *gt);
            let everyone = ix.everyone_privileges(&t);
            (*gt, t, everyone)
        })
        .collect();
    let tables: Vec<(&TableName, PrivSet)> = tables.iter().map(|t| (t, ix.everyone_privileges(t))).collect();
    // Per table, once: which holders could have paths of their own there (most accounts not).
    let grant_reach: Vec<Reach> = grant_tables.iter().map(|(_, t, _)| ix.reach(t)).collect();
    let table_reach: Vec<Reach> = tables.iter().map(|(t, _)| ix.reach(t)).collect();
    let all_privileges = |a: &AccountName, t: &TableName, reach: &Reach, everyone: &PrivSet| -> PrivSet {
        let mut set = if reach.admits(a) { ix.own_privileges(a, t) } else { PrivSet::new() };
        set.extend(everyone.iter().cloned());
        set
    };
    for acct in ix.inv.login_accounts().filter(|a| !a.locked) {
        let a = &acct.name;
        let global = effective_global(ix, a, &everyone_global);
        for (privilege, cap, detail) in CAPABILITIES {
            if global.contains(&Privilege::known(privilege)) {
                out.push(Escalation { account: a.clone(), capability: cap.to_string(), detail: detail.to_string() });
            }
        }
        let mut writable = Vec::new();
        for ((gt, t, everyone), reach) in grant_tables.iter().zip(&grant_reach) {
            let can = all_privileges(a, t, reach, everyone);
            if can.intersection(&writes).next().is_some() {
                writable.push(format!("mysql.{gt}"));
            }
        }
        if !writable.is_empty() {
            out.push(Escalation {
                account: a.clone(),
                capability: "grant_tables_write".into(),
                detail: format!(
                    "can write the grant tables ({}) and give itself any privilege after FLUSH PRIVILEGES",
                    writable.join(", ")
                ),
            });
        }
        let option = Privilege::known("GRANT OPTION");
        let covered: Vec<String> = tables
            .iter()
            .zip(&table_reach)
            .filter(|((t, everyone), r)| all_privileges(a, t, r, everyone).contains(&option))
            .map(|((t, _), _)| t.sql())
            .collect();
        if global.contains(&option) {
            out.push(Escalation {
                account: a.clone(),
                capability: "grant_option".into(),
                detail: "GRANT OPTION on *.*: can pass its privileges to any account".into(),
            });
        } else if !covered.is_empty() {
            out.push(Escalation {
                account: a.clone(),
                capability: "grant_option".into(),
                detail: format!("GRANT OPTION covering {}: can pass its privileges there to any account", covered.join(", ")),
            });
        }
        if ix.inv.proxies.iter().any(|p| &p.grantee == a && p.with_grant && p.proxied.user.is_empty()) {
            out.push(Escalation {
                account: a.clone(),
                capability: "proxy_any".into(),
                detail: "PROXY on ''@'' WITH GRANT OPTION: can let any account act as any other".into(),
            });
        }
    }
    out.sort();
    out
}

/// Anonymous accounts that take over logins meant for named accounts.
pub fn shadowing(inv: &Inventory) -> Vec<Shadowing> {
    let mut out = Vec::new();
    for anon in inv.login_accounts().filter(|a| a.name.is_anonymous()) {
        for named in inv.login_accounts().filter(|a| !a.name.is_anonymous()) {
            let (n, x) = (&anon.name, &named.name);
            if wildcard_sort_key(&n.host) > wildcard_sort_key(&x.host) && host_matches(&x.host, &n.host) {
                out.push(Shadowing {
                    anonymous: n.clone(),
                    shadowed: x.clone(),
                    detail: format!(
                        "clients connecting from {:?} as {:?} log in as the anonymous account {} (its host is more specific), not as {}",
                        n.host,
                        x.user,
                        n.sql(),
                        x.sql()
                    ),
                });
            }
        }
    }
    out
}
