//! The write fence of a promotion (step 7): stop the service's writes to its tables on the
//! primary, drain what is in flight, and record the GTID set while drained. `read_only` is
//! server-wide, so the fence acts on the service's account and tables only (mysql-facts §6):
//! `ACCOUNT LOCK` (no new logins), revoke its direct write privileges on the tables, `KILL` its
//! connections, then `LOCK TABLES ... READ` bounded by `lock_wait_timeout` to wait out
//! statements already running, read the position, `UNLOCK TABLES`.
//!
//! Every statement goes through the journaling executor with `sql_log_bin=0`: the fence must not
//! reach the replica, which becomes the service's server with the account as it was.
//! [`unfence`] is the exact inverse, for an abort or a deadline.

use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::Result;
use crate::journal::{Journal, Phase};
use crate::model::{AccountName, GrantObject, Inventory, Privilege, TableName};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Privileges that let an account change a table's rows.
const WRITES: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];

/// What the fence did, for the journal and for [`unfence`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fenced {
    /// Host rows of the owner that were unlocked and are now locked.
    pub locked: Vec<AccountName>,
    /// (forward REVOKE, inverse GRANT) of the owner's direct write grants on the tables.
    pub revoked: Vec<(String, String)>,
    /// Write access the fence cannot revoke per table (schema or global grants): the account
    /// lock and the kill stop it.
    pub not_revoked: Vec<String>,
    pub killed: Vec<u64>,
    /// The primary's GTID set while the tables were drained.
    pub gtid: String,
    pub drained_in: Duration,
}

/// One change the fence makes, with its exact undo.
#[derive(Debug, Clone)]
pub struct Change {
    /// The journal's step name: `lock` or `revoke-writes`.
    pub step: &'static str,
    pub forward: String,
    pub undo: String,
    /// For `lock`: the host row locked.
    pub locked: Option<AccountName>,
}

/// The fence's account locks and write revokes, computed before any runs (the promotion's
/// fail-safe is armed with their undos first), and the write access it cannot revoke per table.
pub fn changes(inv: &Inventory, owner: &[AccountName], tables: &[TableName], flavour: crate::db::Flavour) -> (Vec<Change>, Vec<String>) {
    let mut out = Vec::new();
    let mut not_revoked = Vec::new();
    for a in owner {
        if inv.accounts.iter().any(|x| &x.name == a && !x.locked) {
            let who = crate::model::sql::grantee_sql(a, flavour);
            out.push(Change {
                step: "lock",
                forward: format!("ALTER USER {who} ACCOUNT LOCK"),
                undo: format!("ALTER USER {who} ACCOUNT UNLOCK"),
                locked: Some(a.clone()),
            });
        }
    }
    for g in inv.grants.iter().filter(|g| owner.contains(&g.grantee)) {
        let writes: Vec<&Privilege> = g.privileges.iter().filter(|p| WRITES.contains(&p.as_str())).collect();
        if writes.is_empty() {
            continue;
        }
        let who = crate::model::sql::grantee_sql(&g.grantee, flavour);
        let list = writes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
        match &g.object {
            GrantObject::Table { table } if tables.contains(table) => out.push(Change {
                step: "revoke-writes",
                forward: format!("REVOKE {list} ON {} FROM {who}", table.sql()),
                undo: format!("GRANT {list} ON {} TO {who}", table.sql()),
                locked: None,
            }),
            GrantObject::Table { .. } | GrantObject::Column { .. } | GrantObject::Routine { .. } => {}
            other => not_revoked.push(format!("{list} ON {} (stopped by the account lock and the kill)", other.sql_target())),
        }
    }
    (out, not_revoked)
}

/// Fences `owner`'s writes to `tables` on `primary`; `lock_wait` bounds the drain. Returns what
/// was done even when it failed midway, so the caller can [`unfence`] it; each change is also
/// journaled with its undo statement (for a crash in the middle: [`undo_from_journal`]).
pub async fn fence(
    j: &mut Journal,
    primary: &mut Node,
    inv: &Inventory,
    owner: &[AccountName],
    tables: &[TableName],
    lock_wait: Duration,
) -> (Fenced, Result<()>) {
    let mut f = Fenced::default();
    let result = exec::unlogged(j, primary, Phase::Fence, async |j: &mut Journal, primary: &mut Node| {
        let result = fence_inner(j, primary, inv, owner, tables, lock_wait, &mut f).await;
        // Whatever happened, this connection goes back to logging and never holds the lock.
        let _ = exec::run(j, primary, Phase::Fence, Some("unlock-tables"), "UNLOCK TABLES", &[]).await;
        result
    })
    .await;
    (f, result)
}

async fn fence_inner(
    j: &mut Journal,
    primary: &mut Node,
    inv: &Inventory,
    owner: &[AccountName],
    tables: &[TableName],
    lock_wait: Duration,
    f: &mut Fenced,
) -> Result<()> {
    let (changes, not_revoked) = changes(inv, owner, tables, primary.flavour());
    f.not_revoked = not_revoked;
    for c in changes {
        exec::run_with_undo(j, primary, Phase::Fence, Some(c.step), &c.forward, Some(&c.undo), &[]).await?;
        match c.locked {
            Some(a) => f.locked.push(a),
            None => f.revoked.push((c.forward, c.undo)),
        }
    }
    for id in primary.connections_of(&owner.first().map(|a| a.user.clone()).unwrap_or_default(), 0, u64::MAX).await? {
        exec::run(j, primary, Phase::Kill, None, &format!("KILL CONNECTION {id}"), exec::NO_SUCH_THREAD).await?;
        f.killed.push(id);
    }
    let secs = lock_wait.as_secs().max(1);
    exec::run(j, primary, Phase::Fence, Some("lock-wait"), &format!("SET SESSION lock_wait_timeout = {secs}"), &[]).await?;
    let list = tables.iter().map(|t| format!("{} READ", t.sql())).collect::<Vec<_>>().join(", ");
    let started = Instant::now();
    exec::run(j, primary, Phase::Fence, Some("drain"), &format!("LOCK TABLES {list}"), &[]).await?;
    f.drained_in = started.elapsed();
    f.gtid = primary.position().await?;
    Ok(())
}

/// Undoes a fence exactly: re-grants what it revoked and unlocks what it locked, without
/// binary logging (the replica never saw the fence).
pub async fn unfence(j: &mut Journal, primary: &mut Node, f: &Fenced) -> Result<()> {
    let flavour = primary.flavour();
    exec::unlogged(j, primary, Phase::Fence, async |j: &mut Journal, primary: &mut Node| {
        for (_, inverse) in f.revoked.iter().rev() {
            exec::run(j, primary, Phase::Abort, Some("regrant-writes"), inverse, &[]).await?;
        }
        for a in &f.locked {
            let sql = format!("ALTER USER {} ACCOUNT UNLOCK", crate::model::sql::grantee_sql(a, flavour));
            exec::run(j, primary, Phase::Abort, Some("unlock"), &sql, &[]).await?;
        }
        Ok(())
    })
    .await
}

/// The fence's changes as the journal tells them (statements with an undo, in order), for an
/// abort after a crash in the middle of the fence.
pub fn from_journal(entries: &[crate::journal::Entry]) -> Fenced {
    let mut f = Fenced::default();
    for e in entries {
        if let crate::journal::Record::Intent { phase: Phase::Fence, sql, undo: Some(undo), step, .. } = &e.record {
            match step.as_deref() {
                // The account lock's undo is kept with the revokes': unfence runs every inverse.
                Some("lock") | Some("revoke-writes") => f.revoked.push((sql.clone(), undo.clone())),
                _ => {}
            }
        }
    }
    f
}
