//! Step 3 of a promotion: the service's account on the replica. Accounts replicate, so it is
//! normally there already: then its grants must equal the primary's. When it is missing (created
//! on the primary with binary logging off, or filtered), it is created on the replica with
//! `sql_log_bin=0` (no errant GTID), from the primary's `SHOW CREATE USER`: the password hash
//! goes from server to server and is never journaled or printed (the journal holds the
//! statement with its credential clause redacted).

use crate::db::server::text;
use crate::engine::node::Node;
use crate::engine::{exec, snapshot};
use crate::error::{Error, Result};
use crate::journal::{Entry, Journal, Phase, Record};
use crate::model::AccountName;

/// What step 3 found or did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OnReplica {
    /// Replicated, with the primary's grants.
    Present,
    /// Created on the replica (without binary logging) from the primary's definition.
    Created,
}

/// Makes sure `owner` exists on the replica with exactly the primary's grants.
pub async fn ensure(j: &mut Journal, primary: &mut Node, replica: &mut Node, owner: &[AccountName]) -> Result<Vec<OnReplica>> {
    let flavour = primary.flavour();
    let mut out = Vec::new();
    for a in owner {
        let who = crate::model::sql::grantee_sql(a, flavour);
        if exists_on(replica, a).await? {
            out.push(OnReplica::Present);
            continue;
        }
        if flavour == crate::db::Flavour::MySql {
            // caching_sha2 hashes are binary: have them printed as hex, which survives text.
            primary.server.rows("asking for hex hashes", "SET SESSION print_identified_with_as_hex = ON").await?;
        }
        let rows = primary.server.rows("reading the account's definition", &format!("SHOW CREATE USER {who}")).await?;
        let create = rows
            .first()
            .map(|r| text(r, 0))
            .ok_or_else(|| Error::UnknownAccount(format!("{} (the service's owner, on the primary)", a.sql())))?;
        let redacted = crate::inventory::showgrants::redact(&create);
        // The grants come from the model (never a credential clause), as the snapshot does.
        let inv = crate::inventory::grants::read(&mut primary.server).await?;
        exec::unlogged(j, replica, Phase::Promote, async |j: &mut Journal, replica: &mut Node| {
            exec::run_redacted(j, replica, Phase::Promote, Some("create-owner"), &create, &redacted).await?;
            for g in crate::model::sql::account_grants_sql(&inv, a) {
                exec::run(j, replica, Phase::Promote, Some("grant-owner"), &g, &[]).await?;
            }
            Ok(())
        })
        .await?;
        out.push(OnReplica::Created);
    }
    let theirs = snapshot::read(&mut replica.server, owner).await?;
    let ours = snapshot::read(&mut primary.server, owner).await?;
    if theirs != ours {
        return Err(Error::Mismatch {
            what: format!("the service's account differs on the replica: {}", snapshot::diff(&ours, &theirs).join("; ")),
            todo: "make its grants on the replica equal the primary's (or drop it there), then `privfence promote resume`",
        });
    }
    Ok(out)
}

/// The owners step 3 created on the replica, as the journal tells it: every `create-owner`
/// intent that did not fail, whether or not its outcome or the step's record was written (a
/// crash inside the step leaves no record). Step 3 journals that intent only for an account it
/// found absent on the replica, so each of these was absent before the promotion.
pub fn created(entries: &[Entry]) -> Vec<AccountName> {
    let failed: Vec<u64> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Outcome { op, ok: false, .. } => Some(*op),
            _ => None,
        })
        .collect();
    let mut out: Vec<AccountName> = Vec::new();
    for e in entries {
        let Record::Intent { op, phase: Phase::Promote, step: Some(step), sql, .. } = &e.record else { continue };
        if step != "create-owner" || failed.contains(op) {
            continue;
        }
        if let Some(a) = created_account(sql) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The account of a journaled (redacted) `SHOW CREATE USER` statement: `CREATE USER `u`@`h` ...`.
fn created_account(sql: &str) -> Option<AccountName> {
    let rest = sql.strip_prefix("CREATE USER ")?;
    let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
    let (user, rest) = quoted(rest)?;
    let (host, _) = quoted(rest.strip_prefix('@')?)?;
    Some(AccountName::new(&user, &host))
}

/// A name in backticks or single quotes (the quote doubled inside it), and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next().filter(|c| *c == '`' || *c == '\'')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if chars.peek().is_some_and(|(_, n)| *n == q) {
                out.push(q);
                chars.next();
                continue;
            }
            return Some((out, &s[1 + i + 1..]));
        }
        out.push(c);
    }
    None
}

/// Drops the owners step 3 created on the replica (binary logging off, as they were created).
/// An account that is not there (never created, or dropped already) is skipped.
pub async fn drop_created(j: &mut Journal, replica: &mut Node, created: &[AccountName]) -> Result<Vec<AccountName>> {
    let flavour = replica.flavour();
    let mut there = Vec::new();
    for a in created {
        if exists_on(replica, a).await? {
            there.push(a.clone());
        }
    }
    if there.is_empty() {
        return Ok(there);
    }
    let dropped = there.clone();
    exec::unlogged(j, replica, Phase::Abort, async move |j: &mut Journal, replica: &mut Node| {
        for a in &there {
            let sql = format!("DROP USER IF EXISTS {}", crate::model::sql::grantee_sql(a, flavour));
            exec::run(j, replica, Phase::Abort, Some("drop-owner"), &sql, &[]).await?;
        }
        Ok(())
    })
    .await?;
    Ok(dropped)
}

/// Whether account `a` exists on `node` (a row in `mysql.user`).
async fn exists_on(node: &mut Node, a: &AccountName) -> Result<bool> {
    let n: Option<i64> = node
        .server
        .first(
            "looking for the account on the replica",
            &format!(
                "SELECT COUNT(*) FROM mysql.user WHERE User = {} AND Host = {}",
                crate::model::ident::quote_str(&a.user),
                crate::model::ident::quote_str(&a.host)
            ),
        )
        .await?;
    Ok(n.unwrap_or(0) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_of_a_journaled_create_user() {
        let a = created_account("CREATE USER `svc``o`@`%` IDENTIFIED ...").unwrap();
        assert_eq!(a, AccountName::new("svc`o", "%"));
        let a = created_account("CREATE USER 'x'@'10.0.0.%' REQUIRE NONE").unwrap();
        assert_eq!(a, AccountName::new("x", "10.0.0.%"));
        assert!(created_account("GRANT SELECT ON *.* TO `x`@`%`").is_none());
    }
}
