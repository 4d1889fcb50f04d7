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
use crate::journal::{Journal, Phase};
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
        let exists: Option<i64> = replica
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
        if exists.unwrap_or(0) > 0 {
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
