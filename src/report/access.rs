//! Access report renderers: tables for people, TSV for scripts (JSON is the report itself,
//! docs/formats.md); and the account selection (`--account`, `--exclude-account`, a policy's
//! owners and exemptions) applied before rendering.

use super::tsv::Tsv;
use crate::access::AccessReport;
use crate::model::AccountName;
use std::collections::BTreeMap;

/// Keeps only what concerns accounts `keep` accepts: entries, escalations, and shadowing where
/// either side is kept.
pub fn retain(r: &mut AccessReport, keep: impl Fn(&AccountName) -> bool) {
    r.entries.retain(|e| keep(&e.account));
    r.escalations.retain(|e| keep(&e.account));
    r.shadowing.retain(|s| keep(&s.anonymous) || keep(&s.shadowed));
}

/// Escalations grouped per user: hosts with the same capabilities share one row, each
/// capability listed once.
fn escalation_rows(r: &AccessReport) -> Vec<(String, String)> {
    let mut by_user: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for e in &r.escalations {
        by_user.entry(&e.account.user).or_default().entry(&e.account.host).or_default().push(&e.detail);
    }
    let mut rows = Vec::new();
    for (user, hosts) in by_user {
        // Hosts with the same details, in host order.
        let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
        for (host, mut details) in hosts {
            details.sort_unstable();
            details.dedup();
            match groups.iter_mut().find(|(d, _)| *d == details) {
                Some((_, hs)) => hs.push(host),
                None => groups.push((details, vec![host])),
            }
        }
        for (details, hosts) in groups {
            rows.push((super::account_hosts(user, &hosts), details.join("\n")));
        }
    }
    rows
}

/// Tables for people: entries, escalation paths (grouped per user), shadowing.
pub fn table(r: &AccessReport) -> String {
    let mut s = String::new();
    for t in &r.tables {
        let mut tab = super::new_table(&["account", "privileges", "via"]);
        for e in r.entries.iter().filter(|e| &e.table == t) {
            let mut account = e.account.sql();
            if e.locked {
                account.push_str(" (locked)");
            }
            let privs: Vec<&str> = e.privileges.iter().map(|p| p.as_str()).collect();
            tab.add_row(vec![account, privs.join(", "), e.via.describe()]);
        }
        s.push_str(&format!("{}\n{tab}\n", t.sql()));
    }
    if !r.escalations.is_empty() {
        let mut tab = super::new_table(&["account", "escalation paths"]);
        for (account, details) in escalation_rows(r) {
            tab.add_row(vec![account, details]);
        }
        s.push_str(&format!("Accounts that could give themselves access\n{tab}\n"));
    }
    if !r.shadowing.is_empty() {
        let mut tab = super::new_table(&["anonymous account", "shadows", "detail"]);
        for x in &r.shadowing {
            tab.add_row(vec![x.anonymous.sql(), x.shadowed.sql(), x.detail.clone()]);
        }
        s.push_str(&format!("Anonymous accounts shadowing named ones\n{tab}\n"));
    }
    s
}

/// TSV: one line per access path (`record` = `access`), then per escalation (`escalation`)
/// and per shadowing (`shadowing`; `path` holds the shadowed account as `'user'@'host'`).
pub fn tsv(r: &AccessReport) -> String {
    let mut t = Tsv::new(&["record", "schema", "table", "user", "host", "locked", "privileges", "path", "detail"]);
    for e in &r.entries {
        let privs: Vec<&str> = e.privileges.iter().map(|p| p.as_str()).collect();
        t.row(vec![
            "access".into(),
            e.table.schema.clone(),
            e.table.name.clone(),
            e.account.user.clone(),
            e.account.host.clone(),
            e.locked.to_string(),
            privs.join(", "),
            super::summary::path_kind(&e.via),
            e.via.describe(),
        ]);
    }
    for e in &r.escalations {
        let (u, h) = (e.account.user.clone(), e.account.host.clone());
        t.row(vec![
            "escalation".into(),
            String::new(),
            String::new(),
            u,
            h,
            "false".into(),
            String::new(),
            e.capability.clone(),
            e.detail.clone(),
        ]);
    }
    for x in &r.shadowing {
        let (u, h) = (x.anonymous.user.clone(), x.anonymous.host.clone());
        t.row(vec![
            "shadowing".into(),
            String::new(),
            String::new(),
            u,
            h,
            "false".into(),
            String::new(),
            x.shadowed.sql(),
            x.detail.clone(),
        ]);
    }
    t.finish()
}
