//! Step 9 of a promotion, after the point of no return: the replica becomes the service's
//! server. Stop and reset replication, turn `read_only` off (persisted on MySQL), re-enable the
//! service's events (replicated events arrive disabled), check that the owner holds exactly the
//! grants it had on the primary, and lock the other applications' accounts there (they have no
//! business on the new server).
//!
//! Every statement is idempotent, so a crash anywhere in here is finished by running it again.

use crate::db::Flavour;
use crate::engine::exec;
use crate::engine::node::Node;
use crate::error::{Error, Result};
use crate::journal::{Journal, Phase};
use crate::model::{AccountName, Inventory, TableName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What the promotion did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Promoted {
    pub events_enabled: Vec<String>,
    /// Other accounts locked on the new server.
    pub locked: Vec<AccountName>,
}

/// Who keeps logging in on the new server: the owners, the exempted accounts (DBAs, backups),
/// privfence's own account, replication accounts, and the server's internal accounts.
pub struct Keep<'a> {
    pub owners: &'a [AccountName],
    pub exempt: &'a dyn Fn(&AccountName) -> bool,
    pub tool: &'a AccountName,
}

/// Promotes `replica` (see the module doc). `snapshot` is the owner's canonical grants on the
/// primary before the fence; the new server must hold exactly those.
pub async fn promote(
    j: &mut Journal,
    replica: &mut Node,
    inv: &Inventory,
    tables: &[TableName],
    keep: &Keep<'_>,
    snapshot: &BTreeSet<String>,
) -> Result<Promoted> {
    let mut p = Promoted::default();
    let flavour = replica.flavour();
    exec::run(j, replica, Phase::Promote, Some("stop-replica"), "STOP REPLICA", &[]).await?;
    exec::run(j, replica, Phase::Promote, Some("reset-replica"), "RESET REPLICA ALL", &[]).await?;
    match flavour {
        Flavour::MySql => {
            exec::run(j, replica, Phase::Promote, Some("read-write"), "SET PERSIST super_read_only = OFF", &[]).await?;
            exec::run(j, replica, Phase::Promote, Some("read-write"), "SET PERSIST read_only = OFF", &[]).await?;
        }
        Flavour::MariaDb => {
            exec::run(j, replica, Phase::Promote, Some("read-write"), "SET GLOBAL read_only = OFF", &[]).await?;
        }
    }
    let schemas: BTreeSet<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    for e in inv.objects.events.iter().filter(|e| schemas.contains(e.schema.as_str())) {
        let status: Option<String> = replica
            .server
            .first(
                "reading an event's status",
                &format!(
                    "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {} AND EVENT_NAME = {}",
                    crate::model::ident::quote_str(&e.schema),
                    crate::model::ident::quote_str(&e.name)
                ),
            )
            .await?;
        if status.as_deref().is_some_and(|s| s.contains("DISABLED") && s != "DISABLED") {
            let name = TableName::new(&e.schema, &e.name);
            let sql = format!("ALTER EVENT {} ENABLE", name.sql());
            exec::run(j, replica, Phase::Promote, Some("enable-event"), &sql, &[]).await?;
            p.events_enabled.push(name.to_string());
        }
    }
    let now = crate::engine::snapshot::read(&mut replica.server, keep.owners).await?;
    if &now != snapshot {
        return Err(Error::Mismatch {
            what: format!(
                "the owner's grants on the new server differ from the primary's before the fence: {}",
                crate::engine::snapshot::diff(snapshot, &now).join("; ")
            ),
            todo: "someone changed them after the owner step: make them equal again, then `privfence promote resume`",
        });
    }
    // Replication accounts are infrastructure, not applications: kept.
    let replication: BTreeSet<&AccountName> = inv
        .grants
        .iter()
        .filter(|g| matches!(g.object, crate::model::GrantObject::Global))
        .filter(|g| g.privileges.iter().any(|p| p.as_str() == "REPLICATION SLAVE" || p.as_str() == "REPLICATION REPLICA"))
        .map(|g| &g.grantee)
        .collect();
    // On MySQL an account granted to others as a role still logs in: lock it too.
    for a in inv.login_accounts().filter(|a| !a.locked) {
        let n = &a.name;
        let internal = n.user.starts_with("mysql.") || n.user.is_empty() || n.user == "PUBLIC" || replication.contains(n);
        if internal || keep.owners.contains(n) || (keep.exempt)(n) || n == keep.tool {
            continue;
        }
        let sql = format!("ALTER USER {} ACCOUNT LOCK", crate::model::sql::grantee_sql(n, flavour));
        exec::run(j, replica, Phase::Promote, Some("lock-other"), &sql, &[]).await?;
        p.locked.push(n.clone());
    }
    Ok(p)
}
