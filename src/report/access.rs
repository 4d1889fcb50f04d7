//! Access report renderers.

use crate::access::AccessReport;

/// Tables for people: entries, escalation paths, shadowing.
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
        let mut by: std::collections::BTreeMap<&crate::model::AccountName, Vec<&str>> = Default::default();
        for e in &r.escalations {
            by.entry(&e.account).or_default().push(&e.detail);
        }
        for (account, details) in by {
            tab.add_row(vec![account.sql(), details.join("\n")]);
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
