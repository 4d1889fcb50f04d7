//! Who else may write the old primary's copy: privfence's access model (`privfence access`:
//! global grants, schema rows and wildcards, table and column grants, roles and default roles,
//! PUBLIC on MariaDB, mandatory roles on MySQL, proxies, definer objects, foreign-key cascades)
//! read on the old primary, keeping every account other than sync-back's own that may INSERT,
//! UPDATE or DELETE a copy.
//!
//! Tolerated: sync-back's own account (its direct and role paths, but not PUBLIC's or a mandatory
//! role's, which are everyone's), and administrators: accounts holding both CREATE USER and GRANT
//! OPTION on `*.*` of their own. No grant can fence those (they may grant themselves anything);
//! they are named in the check's detail so the DBA sees them.

use super::check::{check, Check};
use crate::access::index::Index;
use crate::db::Server;
use crate::model::privilege::Privilege;
use crate::model::{AccountName, Inventory, TableName};

/// One account other than sync-back's that may write a copy, and how.
#[derive(Debug, Clone)]
pub struct Writer {
    pub account: AccountName,
    pub table: TableName,
    pub privileges: Vec<String>,
    pub path: String,
    /// The account is locked (on MySQL, a role made by CREATE ROLE): no logins, but its grants
    /// still reach definer objects and a later unlock.
    pub locked: bool,
}

/// The writers of `copies` other than `me`, and the administrators tolerated.
pub fn writers(inv: &Inventory, me: &AccountName, copies: &[TableName]) -> (Vec<Writer>, Vec<AccountName>) {
    let report = crate::access::analyse(inv, copies);
    let ix = Index::new(inv);
    let (option, create_user) = (Privilege::known("GRANT OPTION"), Privilege::known("CREATE USER"));
    let mut out: Vec<Writer> = Vec::new();
    let mut admins: Vec<AccountName> = Vec::new();
    for e in report.entries {
        if e.account == *me {
            continue;
        }
        let privileges: Vec<String> =
            e.privileges.iter().map(|p| p.as_str().to_string()).filter(|p| matches!(p.as_str(), "INSERT" | "UPDATE" | "DELETE")).collect();
        if privileges.is_empty() {
            continue;
        }
        let g = ix.global_all(&e.account);
        if g.contains(&option) && g.contains(&create_user) {
            if !admins.contains(&e.account) {
                admins.push(e.account);
            }
            continue;
        }
        out.push(Writer { account: e.account, table: e.table, privileges, path: e.via.describe(), locked: e.locked });
    }
    (out, admins)
}

/// The check: refuses when another account may write a copy, naming each and its path. Without
/// the privileges to read the whole inventory, says it could not look (and does not refuse).
pub async fn other_writers(t: &mut Server, copies: &[TableName]) -> Check {
    let me = t.current_user.clone();
    let inv = match crate::inventory::take(t).await {
        Ok(i) => i,
        Err(e) => {
            return check(
                "copy's writers",
                true,
                format!("not verified: {} cannot read the old primary's privileges and objects ({e})", me.sql()),
            )
        }
    };
    let (found, admins) = writers(&inv, &me, copies);
    let admins = if admins.is_empty() {
        String::new()
    } else {
        format!(" (administrators tolerated: {})", admins.iter().map(|a| a.sql()).collect::<Vec<_>>().join(", "))
    };
    if found.is_empty() {
        let names = copies.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
        return check("copy's writers", true, format!("no other account may write {names} (every path){admins}"));
    }
    let each: Vec<String> = found
        .iter()
        .map(|w| {
            let locked = if w.locked { " (locked)" } else { "" };
            format!("{}{locked} may write {} ({}) through {}", w.account.sql(), w.table, w.privileges.join(", "), w.path)
        })
        .collect();
    check("copy's writers", false, format!("{}: only sync-back's account may (revoke theirs on the old primary){admins}", each.join("; ")))
}
