//! `--verify`: renders every account's grants from the model and compares them, normalised, with
//! the server's own `SHOW GRANTS`. Any difference means the model is wrong about this server,
//! and is reported loudly.

use super::showgrants::{atoms, redact};
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::sql::{grantee_sql, ByGrantee};
use crate::model::{AccountName, Inventory};
use serde::Serialize;
use std::collections::BTreeSet;

/// A difference between the model and the server for one account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    pub account: AccountName,
    /// Atoms the server shows but the model lacks.
    pub only_on_server: Vec<String>,
    /// Atoms the model has but the server does not show.
    pub only_in_model: Vec<String>,
    /// Server lines privfence could not parse (credentials redacted).
    pub unparsed: Vec<String>,
    /// Set when the difference is a known server quirk, not an error in privfence's model:
    /// the grant tables (which privfence reads) say one thing and the server's in-memory
    /// grants (which `SHOW GRANTS` prints) another. See [`explain`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// What `--verify` says about a known server quirk.
pub const IN_MEMORY_DIFFERS: &str = "the server's in-memory grants differ from its grant tables; FLUSH PRIVILEGES would load the tables";

/// Explains a difference privfence knows to be the server's own: `WITH ADMIN OPTION` on a role
/// grant present in the grant tables but not in memory. Seen on MariaDB 10.11 after
/// `RENAME USER` of the grantee, and on MySQL 9.7 after a second `GRANT r TO u` without the
/// option; `FLUSH PRIVILEGES` makes `SHOW GRANTS` print it again on both.
pub fn explain(only_on_server: &[String], only_in_model: &[String], unparsed: &[String]) -> Option<String> {
    if !unparsed.is_empty() || only_in_model.is_empty() || only_in_model.len() != only_on_server.len() {
        return None;
    }
    let admin_dropped = only_in_model.iter().all(|m| {
        m.starts_with("ROLE ") && m.strip_suffix(" WITH ADMIN OPTION").is_some_and(|plain| only_on_server.iter().any(|s| s == plain))
    });
    admin_dropped.then(|| format!("{IN_MEMORY_DIFFERS} (the server forgot WITH ADMIN OPTION on a role grant: a known quirk after RENAME USER on MariaDB, or after granting the role again on MySQL)"))
}

impl Mismatch {
    /// Is this a known server quirk rather than a difference in privfence's model?
    pub fn is_server_quirk(&self) -> bool {
        self.explanation.is_some()
    }
}

fn atom_set(lines: &[String], inv: &Inventory, who: &AccountName, unparsed: &mut Vec<String>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in lines {
        match atoms(line, inv.server.flavour, &inv.levels, who) {
            Ok(a) => set.extend(a),
            Err(e) => unparsed.push(format!("{} ({e})", redact(line))),
        }
    }
    set
}

/// Compares the model with `SHOW GRANTS` for every account; returns the mismatches.
pub async fn verify(server: &mut Server, inv: &Inventory) -> Result<Vec<Mismatch>> {
    verify_where(server, inv, |_| true).await
}

/// [`verify`] on a live server: the accounts that mismatch are checked again against a fresh
/// read of the grant tables, so a grant changed by someone between the read and its `SHOW
/// GRANTS` is not reported as the model's error (Spirit's checksum reports only mismatches that
/// persist, for the same reason). Returns the fresh inventory when it took one.
pub async fn verify_settled(server: &mut Server, inv: &Inventory) -> Result<(Vec<Mismatch>, Option<Inventory>)> {
    let first = verify(server, inv).await?;
    if first.is_empty() {
        return Ok((first, None));
    }
    let suspects: BTreeSet<AccountName> = first.into_iter().map(|m| m.account).collect();
    let fresh = super::take(server).await?;
    let again = verify_where(server, &fresh, |a| suspects.contains(a)).await?;
    Ok((again, Some(fresh)))
}

/// Compares the model with `SHOW GRANTS` for the accounts `keep` selects.
pub async fn verify_where(server: &mut Server, inv: &Inventory, keep: impl Fn(&AccountName) -> bool) -> Result<Vec<Mismatch>> {
    let mut out = Vec::new();
    let by = ByGrantee::new(inv);
    for account in inv.accounts.iter().filter(|a| keep(&a.name)) {
        let who = &account.name;
        let sql = format!("SHOW GRANTS FOR {}", show_target(who, inv.server.flavour));
        let server_lines: Vec<String> = server.rows_as::<String>("SHOW GRANTS", &sql).await?;
        let mut unparsed = Vec::new();
        let on_server = atom_set(&server_lines, inv, who, &mut unparsed);
        let mut model_unparsed = Vec::new();
        let in_model = atom_set(&by.sql(who), inv, who, &mut model_unparsed);
        unparsed.extend(model_unparsed.into_iter().map(|l| format!("model: {l}")));
        if on_server != in_model || !unparsed.is_empty() {
            let only_on_server: Vec<String> = on_server.difference(&in_model).cloned().collect();
            let only_in_model: Vec<String> = in_model.difference(&on_server).cloned().collect();
            let explanation = explain(&only_on_server, &only_in_model, &unparsed);
            out.push(Mismatch { account: who.clone(), only_on_server, only_in_model, unparsed, explanation });
        }
    }
    Ok(out)
}

fn show_target(who: &AccountName, flavour: Flavour) -> String {
    grantee_sql(who, flavour)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn explains_only_a_forgotten_admin_option() {
        let server = v(&["ROLE `r`@`%`"]);
        let model = v(&["ROLE `r`@`%` WITH ADMIN OPTION"]);
        assert!(explain(&server, &model, &[]).unwrap().starts_with(IN_MEMORY_DIFFERS));
        // Anything else is privfence's own mismatch.
        assert!(explain(&[], &model, &[]).is_none());
        assert!(explain(&server, &v(&["ROLE `x`@`%` WITH ADMIN OPTION"]), &[]).is_none());
        assert!(explain(&v(&["`db`.* SELECT"]), &v(&["`db`.* INSERT"]), &[]).is_none());
        assert!(explain(&server, &model, &v(&["line"])).is_none());
    }
}
