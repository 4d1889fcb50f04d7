//! Accounts that could give themselves access (escalation paths), and anonymous accounts that
//! shadow named ones at login.

use super::index::Index;
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

/// Every account's effective global privileges (own, roles, PUBLIC, mandatory roles).
fn effective_global(ix: &Index, a: &AccountName) -> PrivSet {
    let mut set = ix.global_all(a);
    for chain in ix.role_chains(a) {
        set.extend(ix.global_all(chain.last().expect("non-empty")));
    }
    for (holder, _) in ix.everyone() {
        set.extend(ix.global_all(&holder));
    }
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
    for acct in ix.inv.login_accounts().filter(|a| !a.locked) {
        let a = &acct.name;
        let global = effective_global(ix, a);
        for (privilege, cap, detail) in CAPABILITIES {
            if global.contains(&Privilege::known(privilege)) {
                out.push(Escalation { account: a.clone(), capability: cap.to_string(), detail: detail.to_string() });
            }
        }
        let mut writable = Vec::new();
        for gt in grant_tables {
            let can = ix.all_privileges(a, &TableName::new("mysql", *gt));
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
        let covered: Vec<String> = tables.iter().filter(|t| ix.all_privileges(a, t).contains(&option)).map(|t| t.sql()).collect();
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
