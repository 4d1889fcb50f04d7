//! Preflight of a promotion (issue 6, step 1): everything that must hold before privfence moves
//! a service's tables onto their own server by promoting a replica, each as a [`Check`] that
//! says what it saw (positions, names) and what to do. Background: `mysql-facts.md` §6.
//!
//! The checks, in the order [`run`] returns them:
//!
//! | name | fails when |
//! | --- | --- |
//! | [`VERSIONS`] | flavours differ, or the replica's major.minor is older than the primary's |
//! | [`GTID`] | MySQL: `gtid_mode` or `enforce_gtid_consistency` not `ON` on either side; MariaDB: the replica does not use GTID (`Using_Gtid=No`); no binary log on the primary |
//! | [`SOURCE`] | the replica does not replicate from this primary (`Source_UUID`, `Master_Server_Id` and `Source_Host`/`Port`), a thread is stopped, or both have one `server_id` |
//! | [`ERRANT`] | the replica executed GTIDs the primary never did |
//! | [`REPLICA_FILTERS`] | a `Replicate_*` filter could drop the service's tables or the grant tables' changes |
//! | [`BINLOG_FILTERS`] | `binlog_do_db` / `binlog_ignore_db` on the primary could do the same |
//! | [`ISOLATION`] | an account besides the owners and exempt ones can touch the tables (on either server) |
//! | [`BOUNDARY`] | a foreign key, view, routine, trigger or event joins service and other tables |
//! | [`LONG_TRANSACTIONS`] | a transaction older than `lock_wait_max` holds a service table |
//! | [`METADATA_LOCKS`] | a service table is locked explicitly, by DDL, or has waiters |
//! | [`READ_ONLY_BYPASS`] | a service owner could write the replica despite `read_only` |
//! | [`MANAGED`] | never: warns which steps the provider's API must do |
//!
//! A check that cannot be made (a query refused) is a `Fail` that says so: blind is not clean.
//! Nothing here changes either server.

use crate::access::index::Index;
use crate::access::sqlrefs;
use crate::db::server::text;
use crate::db::{Flavour, Server};
use crate::engine::node::{Node, ReplicaHealth};
use crate::error::{Error, Result};
use crate::model::ident::{quote_str, SchemaPattern};
use crate::model::{AccountName, Inventory, TableName};
use crate::policy::{Policy, Service};
use crate::session::guide::{self, Reach};
use chrono::NaiveDate;
use mysql_async::Row;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

pub const VERSIONS: &str = "versions";
pub const GTID: &str = "gtid replication";
pub const SOURCE: &str = "replicates from the primary";
pub const ERRANT: &str = "errant gtids";
pub const REPLICA_FILTERS: &str = "replication filters";
pub const BINLOG_FILTERS: &str = "binlog filters";
pub const ISOLATION: &str = "isolation";
pub const BOUNDARY: &str = "service boundary";
pub const LONG_TRANSACTIONS: &str = "long transactions";
pub const METADATA_LOCKS: &str = "metadata locks";
pub const READ_ONLY_BYPASS: &str = "read_only bypass";
pub const MANAGED: &str = "managed service";

/// How a check came out. Ordered: the worst of several is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Holds, but the operator should know (and may have to act outside privfence).
    Warn,
    /// Promotion must not start.
    Fail,
}

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// One of the constants of this module ([`VERSIONS`]...).
    pub name: String,
    pub status: Status,
    /// What was seen (positions, names) and, unless it passed, what to do.
    pub detail: String,
}

impl Check {
    fn new(name: &str, status: Status, detail: impl Into<String>) -> Check {
        Check { name: name.to_string(), status, detail: detail.into() }
    }

    /// The worst of `findings`, their texts joined; `pass` when there are none.
    fn from_findings(name: &str, findings: Vec<(Status, String)>, pass: impl Into<String>) -> Check {
        match findings.iter().map(|(s, _)| *s).max() {
            None => Check::new(name, Status::Pass, pass),
            Some(worst) => Check::new(name, worst, findings.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("; ")),
        }
    }
}

/// What the preflight is about.
pub struct Input<'a> {
    pub policy: &'a Policy,
    /// The service to move (a name in `policy`).
    pub service: &'a str,
    /// For exemptions that expire.
    pub today: NaiveDate,
    /// A transaction older than this is long: the fence's bounded `LOCK TABLES` would wait for
    /// it and give up.
    pub lock_wait_max: Duration,
}

/// Any check failed: promotion must not start.
pub fn refuses(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Runs every check (read-only). `inv` is the primary's inventory; the replica's is taken here
/// (its accounts decide who can write it and who can reach the tables after promotion).
/// Errors only when a server cannot be read at all; a single check that cannot be made comes
/// back as a `Fail` saying why.
pub async fn run(primary: &mut Node, replica: &mut Node, inv: &Inventory, input: &Input<'_>) -> Result<Vec<Check>> {
    let checks = run_once(primary, replica, inv, input).await?;
    if !refuses(&checks) {
        return Ok(checks);
    }
    // What a busy server shows for a moment (a lock a statement holds, a replica's IO thread
    // reconnecting) is not a refusal: only what fails again a second later is.
    tokio::time::sleep(Duration::from_secs(1)).await;
    run_once(primary, replica, inv, input).await
}

async fn run_once(primary: &mut Node, replica: &mut Node, inv: &Inventory, input: &Input<'_>) -> Result<Vec<Check>> {
    let svc = input.policy.service(input.service).ok_or_else(|| {
        let known: Vec<&str> = input.policy.services.iter().map(|s| s.name.as_str()).collect();
        Error::BadInput(format!("no service {:?} in the policy (it has: {})", input.service, known.join(", ")))
    })?;
    let tables = guide::service_tables(inv, svc);
    // The replica first, so that everything it executed is in the primary's set read next.
    let rv = read_vars(replica).await?;
    let pv = read_vars(primary).await?;
    let links = read_links(replica).await?;
    let listed = primary.discover_replicas().await?;
    let (source_check, matched) = source(primary, replica, &pv, &rv, &links, &listed).await;
    // The link from this primary; for the GTID check, any link says how the replica positions.
    let link = matched.map(|i| &links[i]);
    let any_link = link.or(links.first());
    let mut checks = vec![
        versions(&primary.server, &replica.server),
        gtid(primary.flavour(), &pv, &rv, any_link),
        source_check,
        or_fail(ERRANT, errant(primary, &pv, &rv).await),
        replica_filters(link, &links, &tables, &pv, inv),
        or_fail(BINLOG_FILTERS, binlog_filters(primary, &tables, inv).await),
    ];
    let replica_inv = crate::inventory::take(&mut replica.server).await;
    checks.push(isolation(inv, replica_inv.as_ref().map_err(|e| e.to_string()), svc, &tables, input.today));
    checks.push(boundary(inv, &tables));
    let locks = observe_locks(primary, &tables, input.lock_wait_max).await;
    checks.extend(match locks {
        Ok(l) => vec![long_transactions(&l), metadata_locks(&l)],
        Err(e) => vec![
            Check::new(LONG_TRANSACTIONS, Status::Fail, format!("could not read the primary's transactions: {e}")),
            Check::new(METADATA_LOCKS, Status::Fail, format!("could not read the primary's locks: {e}")),
        ],
    });
    checks.push(match &replica_inv {
        Ok(rinv) => read_only_bypass(rinv, svc, &rv),
        Err(e) => Check::new(READ_ONLY_BYPASS, Status::Fail, format!("could not read the replica's accounts: {e}")),
    });
    checks.push(managed(&primary.server, &replica.server));
    Ok(checks)
}

fn or_fail(name: &str, r: Result<Check>) -> Check {
    r.unwrap_or_else(|e| Check::new(name, Status::Fail, format!("could not check: {e}")))
}

mod filters;
mod isolation;
mod locks;
mod readonly;
mod replication;
#[cfg(test)]
mod tests;

use filters::*;
use isolation::*;
use locks::*;
use readonly::*;
use replication::*;
