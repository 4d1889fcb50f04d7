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
use serde::Serialize;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Holds, but the operator should know (and may have to act outside privfence).
    Warn,
    /// Promotion must not start.
    Fail,
}

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

// ---------------------------------------------------------------------------------------------
// What the servers say

/// Replication settings of one server, read in one statement.
struct Vars {
    server_id: String,
    log_bin: bool,
    /// MySQL `gtid_mode`, `enforce_gtid_consistency` (empty on MariaDB).
    gtid_mode: String,
    enforce_gtid: String,
    read_only: bool,
    /// MySQL only; MariaDB has no `super_read_only`.
    super_read_only: bool,
    /// MySQL `gtid_executed`; MariaDB `gtid_binlog_state` (the last GTID per domain and
    /// server, which is what tells a replica's own writes apart).
    gtids: String,
    /// MariaDB `gtid_binlog_pos` and `gtid_slave_pos`, for messages.
    binlog_pos: String,
    slave_pos: String,
}

async fn read_vars(node: &mut Node) -> Result<Vars> {
    let sql = match node.flavour() {
        Flavour::MySql => {
            "SELECT @@GLOBAL.server_id, @@GLOBAL.log_bin, @@GLOBAL.gtid_mode, @@GLOBAL.enforce_gtid_consistency, \
             @@GLOBAL.read_only, @@GLOBAL.super_read_only, @@GLOBAL.gtid_executed, '', ''"
        }
        Flavour::MariaDb => {
            "SELECT @@GLOBAL.server_id, @@GLOBAL.log_bin, '', '', @@GLOBAL.read_only, 0, @@GLOBAL.gtid_binlog_state, \
             @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_slave_pos"
        }
    };
    let rows = node.server.rows("reading the replication settings", sql).await?;
    let r = rows.first().ok_or_else(|| Error::Session(format!("{}: reading the replication settings returned no row", node.name)))?;
    let one = |i| text(r, i) == "1";
    Ok(Vars {
        server_id: text(r, 0),
        log_bin: one(1),
        gtid_mode: text(r, 2),
        enforce_gtid: text(r, 3),
        read_only: one(4),
        super_read_only: one(5),
        gtids: text(r, 6).replace('\n', ""),
        binlog_pos: text(r, 7),
        slave_pos: text(r, 8),
    })
}

/// One replication channel (MySQL) or connection (MariaDB multi-source) of the replica.
struct Link {
    /// Empty for the default one.
    channel: String,
    host: String,
    port: u16,
    /// MySQL `Source_UUID` (empty until the receiver first connected).
    source_uuid: String,
    /// `Source_Server_Id` / `Master_Server_Id` (0 until the first connection).
    source_server_id: String,
    health: ReplicaHealth,
    /// MySQL `Auto_Position` (`1`/`0`); MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`).
    gtid_use: String,
    filters: Filters,
}

impl Link {
    fn describe(&self) -> String {
        let ch = if self.channel.is_empty() { String::new() } else { format!("channel {:?}: ", self.channel) };
        let who = if self.source_uuid.is_empty() {
            format!("server_id {}", self.source_server_id)
        } else {
            format!("server_uuid {}", self.source_uuid)
        };
        format!("{ch}{}:{} ({who})", self.host, self.port)
    }
}

/// Replication filters of one channel, as `SHOW REPLICA STATUS` lists them.
#[derive(Debug, Default, Clone)]
struct Filters {
    do_db: Vec<String>,
    ignore_db: Vec<String>,
    do_table: Vec<String>,
    ignore_table: Vec<String>,
    wild_do: Vec<String>,
    wild_ignore: Vec<String>,
    rewrite_db: Vec<String>,
    /// MariaDB GTID domain filters.
    do_domains: Vec<String>,
    ignore_domains: Vec<String>,
    ignore_server_ids: Vec<String>,
}

fn col(row: &Row, names: &[&str]) -> String {
    let cols = row.columns_ref();
    names.iter().find_map(|n| cols.iter().position(|c| c.name_str() == *n)).map(|i| text(row, i)).unwrap_or_default()
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

async fn read_links(node: &mut Node) -> Result<Vec<Link>> {
    let sql = match node.flavour() {
        Flavour::MySql => "SHOW REPLICA STATUS",
        Flavour::MariaDb => "SHOW ALL SLAVES STATUS",
    };
    let rows = node.server.rows("reading the replication status", sql).await?;
    let mut links: Vec<Link> = rows.iter().map(link_of).collect();
    if node.flavour() == Flavour::MySql && !links.is_empty() {
        // Per-channel filters, global ones included (the status shows them too; read both so a
        // filter shown in only one place is not missed).
        let sql = "SELECT CHANNEL_NAME, FILTER_NAME, FILTER_RULE FROM performance_schema.replication_applier_filters";
        for (channel, name, rule) in node.server.rows_as::<(String, String, String)>("reading the replication filters", sql).await? {
            if let Some(l) = links.iter_mut().find(|l| l.channel == channel) {
                let list = match name.to_ascii_uppercase().as_str() {
                    "REPLICATE_DO_DB" => &mut l.filters.do_db,
                    "REPLICATE_IGNORE_DB" => &mut l.filters.ignore_db,
                    "REPLICATE_DO_TABLE" => &mut l.filters.do_table,
                    "REPLICATE_IGNORE_TABLE" => &mut l.filters.ignore_table,
                    "REPLICATE_WILD_DO_TABLE" => &mut l.filters.wild_do,
                    "REPLICATE_WILD_IGNORE_TABLE" => &mut l.filters.wild_ignore,
                    _ => &mut l.filters.rewrite_db,
                };
                for x in split_list(&rule) {
                    if !list.contains(&x) {
                        list.push(x);
                    }
                }
            }
        }
    }
    Ok(links)
}

fn link_of(row: &Row) -> Link {
    let c = |names: &[&str]| col(row, names);
    let yes = |names: &[&str]| c(names).eq_ignore_ascii_case("yes");
    let err = [c(&["Last_SQL_Error"]), c(&["Last_IO_Error"])].into_iter().find(|e| !e.is_empty());
    Link {
        channel: c(&["Channel_Name", "Connection_name"]),
        host: c(&["Source_Host", "Master_Host"]),
        port: c(&["Source_Port", "Master_Port"]).parse().unwrap_or(0),
        source_uuid: c(&["Source_UUID", "Master_UUID"]),
        source_server_id: c(&["Source_Server_Id", "Master_Server_Id"]),
        health: ReplicaHealth {
            io_running: yes(&["Replica_IO_Running", "Slave_IO_Running"]),
            sql_running: yes(&["Replica_SQL_Running", "Slave_SQL_Running"]),
            delay: c(&["SQL_Delay"]).parse().unwrap_or(0),
            last_error: err,
        },
        gtid_use: c(&["Auto_Position", "Using_Gtid"]),
        filters: Filters {
            do_db: split_list(&c(&["Replicate_Do_DB"])),
            ignore_db: split_list(&c(&["Replicate_Ignore_DB"])),
            do_table: split_list(&c(&["Replicate_Do_Table"])),
            ignore_table: split_list(&c(&["Replicate_Ignore_Table"])),
            wild_do: split_list(&c(&["Replicate_Wild_Do_Table"])),
            wild_ignore: split_list(&c(&["Replicate_Wild_Ignore_Table"])),
            rewrite_db: split_list(&c(&["Replicate_Rewrite_DB"])),
            do_domains: split_list(&c(&["Replicate_Do_Domain_Ids"])),
            ignore_domains: split_list(&c(&["Replicate_Ignore_Domain_Ids"])),
            ignore_server_ids: split_list(&c(&["Replicate_Ignore_Server_Ids"])),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Versions, GTIDs, the replication link

fn versions(p: &Server, r: &Server) -> Check {
    let (pi, ri) = (&p.info, &r.info);
    let seen = format!("primary {} {}, replica {} {}", pi.flavour, pi.version_string, ri.flavour, ri.version_string);
    if pi.flavour != ri.flavour {
        return Check::new(VERSIONS, Status::Fail, format!("{seen}: different server families; promote a replica of the same family"));
    }
    if (ri.version.major, ri.version.minor) < (pi.version.major, pi.version.minor) {
        return Check::new(
            VERSIONS,
            Status::Fail,
            format!(
                "{seen}: the replica is older than the primary; upgrade it to {}.{} or later first",
                pi.version.major, pi.version.minor
            ),
        );
    }
    Check::new(VERSIONS, Status::Pass, format!("{seen}: same family, the replica is not older"))
}

fn gtid(flavour: Flavour, p: &Vars, r: &Vars, link: Option<&Link>) -> Check {
    let mut f: Vec<(Status, String)> = Vec::new();
    if !p.log_bin {
        f.push((Status::Fail, "the primary has no binary log (log_bin=OFF): nothing replicates from it".into()));
    }
    match flavour {
        Flavour::MySql => {
            for (who, v) in [("primary", p), ("replica", r)] {
                if v.gtid_mode != "ON" {
                    f.push((Status::Fail, format!("{who}: gtid_mode={}; turn GTIDs on (OFF_PERMISSIVE, ON_PERMISSIVE, ON)", v.gtid_mode)));
                }
                if v.enforce_gtid != "ON" {
                    f.push((Status::Fail, format!("{who}: enforce_gtid_consistency={}; set it to ON", v.enforce_gtid)));
                }
            }
            if let Some(l) = link.filter(|l| l.gtid_use != "1") {
                f.push((
                    Status::Warn,
                    format!(
                        "{}: SOURCE_AUTO_POSITION={}; the promotion waits by GTID all the same, but CHANGE REPLICATION SOURCE TO \
                         SOURCE_AUTO_POSITION=1 keeps the replica's position consistent",
                        l.describe(),
                        l.gtid_use
                    ),
                ));
            }
            Check::from_findings(
                GTID,
                f,
                format!(
                    "gtid_mode=ON and enforce_gtid_consistency=ON on both servers; auto-position on; primary gtid_executed {}",
                    p.gtids
                ),
            )
        }
        Flavour::MariaDb => {
            match link {
                None => f.push((Status::Fail, "the replica replicates from nobody, so it does not use GTID either".into())),
                Some(l) if l.gtid_use.eq_ignore_ascii_case("no") || l.gtid_use.is_empty() => f.push((
                    Status::Fail,
                    format!(
                        "{}: Using_Gtid=No (binary log file positions); run STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID=slave_pos; START SLAVE",
                        l.describe()
                    ),
                )),
                Some(_) => {}
            }
            let using = link.map(|l| l.gtid_use.as_str()).unwrap_or("");
            Check::from_findings(
                GTID,
                f,
                format!(
                    "the replica uses GTID (Using_Gtid={using}); primary gtid_binlog_pos {}, replica gtid_slave_pos {}",
                    p.binlog_pos, r.slave_pos
                ),
            )
        }
    }
}

/// Every address `host:port` resolves to (empty when it does not).
async fn resolve(host: &str, port: u16) -> BTreeSet<std::net::SocketAddr> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(it) => it.map(|a| std::net::SocketAddr::new(canonical_ip(a.ip()), a.port())).collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Does the replica replicate from this primary, with both threads running? Also returns the
/// index of the link that does.
async fn source(primary: &Node, replica: &Node, pv: &Vars, rv: &Vars, links: &[Link], listed: &[String]) -> (Check, Option<usize>) {
    let mut f: Vec<(Status, String)> = Vec::new();
    if pv.server_id == rv.server_id {
        f.push((
            Status::Fail,
            format!("both servers have server_id {}: a replica ignores events carrying its own server_id", pv.server_id),
        ));
    }
    if primary.flavour() == Flavour::MySql && primary.identity == replica.identity {
        f.push((Status::Fail, format!("both connections reach the same server (server_uuid {})", primary.identity)));
    }
    if links.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "{} ({}) replicates from nobody ({} is empty); point it at the primary with GTID auto-positioning first",
                replica.name,
                replica.server.target,
                if replica.flavour() == Flavour::MySql { "SHOW REPLICA STATUS" } else { "SHOW ALL SLAVES STATUS" }
            ),
        ));
        return (Check::from_findings(SOURCE, f, ""), None);
    }
    let pspec = primary.spec();
    let primary_addrs = if pspec.socket.is_some() { BTreeSet::new() } else { resolve(&pspec.host, pspec.port).await };
    let rspec = replica.spec();
    let listed_here = listed.iter().any(|a| a == &format!("{}:{}", rspec.host, rspec.port));
    let mut found = None;
    for (i, l) in links.iter().enumerate() {
        let addr = !primary_addrs.is_disjoint(&resolve(&l.host, l.port).await);
        let matches = match primary.flavour() {
            Flavour::MySql => l.source_uuid == primary.identity || (l.source_uuid.is_empty() && addr),
            Flavour::MariaDb => {
                let id = l.source_server_id == pv.server_id;
                (id && (addr || listed_here)) || (matches!(l.source_server_id.as_str(), "" | "0") && addr)
            }
        };
        if matches && found.is_none() {
            found = Some(i);
        } else {
            f.push((
                Status::Warn,
                format!(
                    "it also replicates from {}: RESET REPLICA ALL at promotion ends that too; make sure that is intended",
                    l.describe()
                ),
            ));
        }
    }
    let Some(i) = found else {
        let seen: Vec<String> = links.iter().map(Link::describe).collect();
        f.retain(|(s, _)| *s == Status::Fail);
        f.push((
            Status::Fail,
            format!(
                "{} replicates from {}, not from the primary {} (server {}); check --replica, or attach it to this primary first",
                replica.name,
                seen.join(", "),
                primary.server.target,
                primary.identity
            ),
        ));
        return (Check::from_findings(SOURCE, f, ""), None);
    };
    let l = &links[i];
    if let Some(problem) = l.health.problem() {
        f.push(if l.health.io_running && l.health.sql_running {
            (Status::Warn, format!("{}: {problem}; the promotion waits until it has applied everything", l.describe()))
        } else {
            (
                Status::Fail,
                format!("{}: {problem}; fix and start it (START REPLICA), let it catch up, then run the preflight again", l.describe()),
            )
        });
    }
    let evidence = if l.source_uuid == primary.identity {
        "its Source_UUID is the primary's server_uuid".to_string()
    } else if l.source_server_id == pv.server_id {
        let label = if primary.flavour() == Flavour::MySql { "Source_Server_Id" } else { "Master_Server_Id" };
        format!("{label} {} is the primary's server_id", pv.server_id)
    } else {
        "its source address resolves to the primary's".to_string()
    };
    let seen = format!("{} replicates from {}: {evidence}; the primary lists replicas [{}]", replica.name, l.describe(), listed.join(", "));
    if f.is_empty() {
        return (Check::new(SOURCE, Status::Pass, format!("{seen}; IO and SQL threads running")), Some(i));
    }
    let mut c = Check::from_findings(SOURCE, f, "");
    c.detail = format!("{seen}; {}", c.detail);
    (c, Some(i))
}

async fn errant(primary: &mut Node, pv: &Vars, rv: &Vars) -> Result<Check> {
    if primary.flavour() == Flavour::MariaDb {
        let errant = mariadb_errant(&rv.gtids, &pv.gtids);
        if !rv.log_bin {
            return Ok(Check::new(
                ERRANT,
                Status::Warn,
                "the replica has no binary log (log_bin=OFF): writes made on it directly leave no GTID, so none can be detected; \
                 compare the tables (promote compare) instead",
            ));
        }
        if errant.is_empty() {
            return Ok(Check::new(
                ERRANT,
                Status::Pass,
                format!(
                    "every GTID in the replica's binary log (gtid_binlog_state {}) is in the primary's ({}); replica gtid_slave_pos {}",
                    rv.gtids, pv.gtids, rv.slave_pos
                ),
            ));
        }
        return Ok(Check::new(
            ERRANT,
            Status::Fail,
            format!(
                "the replica's binary log has GTIDs the primary never wrote: {} (replica gtid_binlog_state {}, primary {}). They were written \
                 on the replica directly (an account with READ_ONLY ADMIN, or read_only off). Inspect them (mariadb-binlog on the replica); \
                 if harmless, run each change again on the primary after SET SESSION gtid_domain_id, server_id and gtid_seq_no to its \
                 GTID (the replica skips its own server_id's events; MariaDB logs no empty transaction), else fix the data",
                errant.join(", "),
                rv.gtids,
                pv.gtids
            ),
        ));
    }
    if pv.gtid_mode != "ON" || rv.gtid_mode != "ON" {
        return Ok(Check::new(ERRANT, Status::Fail, "not checked: GTIDs are off (see the GTID check)"));
    }
    let sql =
        format!("SELECT GTID_SUBTRACT({r}, @@GLOBAL.gtid_executed), GTID_SUBTRACT(@@GLOBAL.gtid_executed, {r})", r = quote_str(&rv.gtids));
    let row: Option<(String, String)> = primary.server.first("comparing the GTID sets", &sql).await?;
    let (errant, missing) = row.map(|(a, b)| (a.replace('\n', ""), b.replace('\n', ""))).unwrap_or_default();
    if errant.is_empty() {
        let behind = if missing.is_empty() { "it is caught up".to_string() } else { format!("it has yet to apply {missing}") };
        return Ok(Check::new(
            ERRANT,
            Status::Pass,
            format!("the replica's gtid_executed {} is contained in the primary's; {behind}", rv.gtids),
        ));
    }
    Ok(Check::new(
        ERRANT,
        Status::Fail,
        format!(
            "the replica executed transactions the primary never did: {errant} (GTID_SUBTRACT of the replica's gtid_executed {} and \
             the primary's). They were written on the replica directly (an account with SUPER or CONNECTION_ADMIN while \
             super_read_only is off). Inspect them (mysqlbinlog --include-gtids on the replica); if harmless, replay each on the primary \
             as an empty transaction (SET GTID_NEXT='...'; BEGIN; COMMIT; SET GTID_NEXT=AUTOMATIC), else fix the data",
            rv.gtids
        ),
    ))
}

/// MariaDB GTIDs `domain-server-seq` of the replica's `gtid_binlog_state` that the primary's
/// does not contain: a (domain, server) pair the primary lacks, or a higher sequence number.
fn mariadb_errant(replica_state: &str, primary_state: &str) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<(u32, u64), u64> {
        split_list(s)
            .iter()
            .filter_map(|g| {
                let mut it = g.splitn(3, '-').map(|x| x.trim().parse::<u64>());
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(d)), Some(Ok(s)), Some(Ok(n))) => Some(((d as u32, s), n)),
                    _ => None,
                }
            })
            .collect()
    };
    let p = parse(primary_state);
    parse(replica_state).into_iter().filter(|(k, n)| p.get(k).is_none_or(|pn| pn < n)).map(|((d, s), n)| format!("{d}-{s}-{n}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Filters

/// The grant tables: an account statement the replica drops leaves the moved service with
/// other grants on its new server.
fn grant_tables(flavour: Flavour) -> Vec<TableName> {
    let names: &[&str] = match flavour {
        Flavour::MySql => &["user", "db", "tables_priv", "columns_priv", "procs_priv", "global_grants", "role_edges", "default_roles"],
        Flavour::MariaDb => &["user", "global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "roles_mapping"],
    };
    names.iter().map(|n| TableName::new("mysql", *n)).collect()
}

fn fold(s: &str, ci: bool) -> String {
    if ci {
        s.to_lowercase()
    } else {
        s.to_string()
    }
}

fn schemas_of(tables: &[TableName], ci: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tables {
        if !out.iter().any(|s| fold(s, ci) == fold(&t.schema, ci)) {
            out.push(t.schema.clone());
        }
    }
    out
}

fn in_list(list: &[String], name: &str, ci: bool) -> bool {
    list.iter().any(|x| fold(x, ci) == fold(name, ci))
}

/// `db.table` of a `Replicate_Do_Table` entry, or the `db_pattern.table_pattern` (LIKE) of a
/// `Replicate_Wild_*` one.
fn table_rule_matches(rule: &str, t: &TableName, wild: bool, ci: bool) -> bool {
    let Some((db, tb)) = rule.split_once('.') else { return false };
    if wild {
        SchemaPattern(db.to_string()).matches(&t.schema, ci, false) && SchemaPattern(tb.to_string()).matches(&t.name, ci, false)
    } else {
        fold(db, ci) == fold(&t.schema, ci) && fold(tb, ci) == fold(&t.name, ci)
    }
}

fn names(tables: &[&TableName]) -> String {
    list(tables.iter().map(|t| t.sql()), 6)
}

/// A list for messages: the first `max` items, then how many more.
fn list(items: impl IntoIterator<Item = String>, max: usize) -> String {
    let all: Vec<String> = items.into_iter().collect();
    if all.len() <= max {
        return all.join(", ");
    }
    format!("{} and {} more", all[..max].join(", "), all.len() - max)
}

/// What a channel's filters do to the service's tables and the grant tables (`targets`).
fn filter_findings(f: &Filters, service: &[TableName], targets: &[TableName], primary_id: &str, ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    let schemas = schemas_of(targets, ci);
    let service_schemas = schemas_of(service, ci);
    if !f.do_db.is_empty() {
        let missing: Vec<&String> = schemas.iter().filter(|s| !in_list(&f.do_db, s, ci)).collect();
        out.push((
            Status::Fail,
            format!(
                "Replicate_Do_DB ({}) keeps only statements whose default database is listed (GRANT, CREATE USER and DDL are \
                 statements): grants run from any other default database never reach the replica{}; remove the filter",
                f.do_db.join(", "),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(", and schemas {} are not listed at all", list(missing.iter().map(|s| s.to_string()), 6))
                }
            ),
        ));
    }
    if !f.ignore_db.is_empty() {
        let hit: Vec<&String> = schemas.iter().filter(|s| in_list(&f.ignore_db, s, ci)).collect();
        if hit.is_empty() {
            out.push((
                Status::Warn,
                format!(
                    "Replicate_Ignore_DB ({}) drops statements run from those default databases, even when they change the service's \
                     tables or grants; make sure nobody does that",
                    f.ignore_db.join(", ")
                ),
            ));
        } else {
            out.push((
                Status::Fail,
                format!("Replicate_Ignore_DB drops schemas {}; remove the filter", list(hit.iter().map(|s| s.to_string()), 6)),
            ));
        }
    }
    if !f.do_table.is_empty() || !f.wild_do.is_empty() {
        let dropped: Vec<&TableName> = targets
            .iter()
            .filter(|t| {
                !f.do_table.iter().any(|r| table_rule_matches(r, t, false, ci))
                    && !f.wild_do.iter().any(|r| table_rule_matches(r, t, true, ci))
            })
            .collect();
        if !dropped.is_empty() {
            out.push((
                Status::Fail,
                format!(
                    "Replicate_Do_Table ({}) / Replicate_Wild_Do_Table ({}) replicate nothing else, so changes to {} are dropped; \
                     add them (mysql.% for grants) or remove the filter",
                    f.do_table.join(", "),
                    f.wild_do.join(", "),
                    names(&dropped)
                ),
            ));
        }
    }
    for (label, rules, wild) in [("Replicate_Ignore_Table", &f.ignore_table, false), ("Replicate_Wild_Ignore_Table", &f.wild_ignore, true)]
    {
        for r in rules.iter() {
            let dropped: Vec<&TableName> = targets.iter().filter(|t| table_rule_matches(r, t, wild, ci)).collect();
            if !dropped.is_empty() {
                out.push((Status::Fail, format!("{label} {r:?} drops changes to {}; remove that rule", names(&dropped))));
            }
        }
    }
    for r in &f.rewrite_db {
        let words: Vec<&str> = r.split(['(', ')', '-', '>', ' ', ',']).filter(|w| !w.is_empty()).collect();
        let hits =
            service_schemas.iter().chain(std::iter::once(&"mysql".to_string())).any(|s| words.iter().any(|w| fold(w, ci) == fold(s, ci)));
        let status = if hits { Status::Fail } else { Status::Warn };
        out.push((status, format!("Replicate_Rewrite_DB {r:?} applies changes under another schema name on the replica")));
    }
    if !f.do_domains.is_empty() || !f.ignore_domains.is_empty() {
        out.push((
            Status::Warn,
            format!(
                "GTID domain filters (do {:?}, ignore {:?}) drop whole domains; make sure the service's writes and grants stay in a replicated one",
                f.do_domains, f.ignore_domains
            ),
        ));
    }
    if in_list(&f.ignore_server_ids, primary_id, false) {
        out.push((Status::Fail, format!("Replicate_Ignore_Server_Ids ignores the primary's server_id {primary_id}")));
    } else if !f.ignore_server_ids.is_empty() {
        out.push((
            Status::Warn,
            format!("Replicate_Ignore_Server_Ids ({}) drops events from those servers", f.ignore_server_ids.join(", ")),
        ));
    }
    out
}

fn replica_filters(link: Option<&Link>, links: &[Link], tables: &[TableName], pv: &Vars, inv: &Inventory) -> Check {
    let Some(link) = link else {
        let why = if links.is_empty() { "the replica replicates from nobody" } else { "the replica does not replicate from this primary" };
        return Check::new(REPLICA_FILTERS, Status::Fail, format!("not checked: {why}"));
    };
    let ci = inv.server.lower_case_table_names != 0;
    let mut targets = tables.to_vec();
    targets.extend(grant_tables(inv.server.flavour));
    let findings = filter_findings(&link.filters, tables, &targets, &pv.server_id, ci);
    let others = links.len() - 1;
    Check::from_findings(
        REPLICA_FILTERS,
        findings.into_iter().map(|(s, t)| (s, format!("{}: {t}", link.describe()))).collect(),
        format!(
            "no replication filter on {} (Replicate_Do/Ignore_DB, _Table, Wild_*, Rewrite_DB{}){}",
            link.describe(),
            if inv.server.flavour == Flavour::MySql {
                ", performance_schema.replication_applier_filters"
            } else {
                ", domain and server-id filters"
            },
            if others > 0 { format!("; {others} other channel(s) not examined") } else { String::new() }
        ),
    )
}

/// `binlog_do_db` / `binlog_ignore_db` on the primary against the service's and the grant
/// tables' schemas.
fn binlog_findings(do_db: &[String], ignore_db: &[String], schemas: &[String], ci: bool) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !do_db.is_empty() {
        out.push((
            Status::Fail,
            format!(
                "binlog_do_db ({}) logs only statements whose default database is listed: grants and changes run from any other default \
                 database never reach the binary log, so never reach the replica; remove the option (it needs a restart)",
                do_db.join(", ")
            ),
        ));
    }
    if !ignore_db.is_empty() {
        let hit: Vec<String> = schemas.iter().filter(|s| in_list(ignore_db, s, ci)).cloned().collect();
        if hit.is_empty() {
            out.push((
                Status::Warn,
                format!(
                    "binlog_ignore_db ({}) leaves out statements run from those default databases, even on the service's tables or grants",
                    ignore_db.join(", ")
                ),
            ));
        } else {
            out.push((
                Status::Fail,
                format!("binlog_ignore_db leaves schemas {} out of the binary log; remove the option (it needs a restart)", hit.join(", ")),
            ));
        }
    }
    out
}

async fn binlog_filters(primary: &mut Node, tables: &[TableName], inv: &Inventory) -> Result<Check> {
    let info = &primary.server.info;
    let sql = if info.flavour == Flavour::MySql && info.version >= crate::db::Version::new(8, 2, 0) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    };
    let rows = primary.server.rows("reading the binary log status", sql).await?;
    let Some(row) = rows.first() else {
        return Ok(Check::new(BINLOG_FILTERS, Status::Fail, format!("{sql} is empty: the primary writes no binary log")));
    };
    let do_db = split_list(&col(row, &["Binlog_Do_DB"]));
    let ignore_db = split_list(&col(row, &["Binlog_Ignore_DB"]));
    let ci = inv.server.lower_case_table_names != 0;
    let mut targets = tables.to_vec();
    targets.extend(grant_tables(inv.server.flavour));
    let at = format!("{}:{}", col(row, &["File"]), col(row, &["Position"]));
    Ok(Check::from_findings(
        BINLOG_FILTERS,
        binlog_findings(&do_db, &ignore_db, &schemas_of(&targets, ci), ci),
        format!("no binlog_do_db / binlog_ignore_db on the primary ({sql} at {at})"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Isolation and the service boundary

fn describe_reach(r: &Reach) -> String {
    format!(
        "{}{} ({} table(s), via {})",
        r.account.sql(),
        if r.locked { " [locked]" } else { "" },
        r.tables,
        list(r.paths.iter().cloned(), 3)
    )
}

/// `rinv`: the replica's inventory, or why it could not be read.
fn isolation(
    pinv: &Inventory,
    rinv: std::result::Result<&Inventory, String>,
    svc: &Service,
    tables: &[TableName],
    today: NaiveDate,
) -> Check {
    if tables.is_empty() {
        return Check::new(
            ISOLATION,
            Status::Fail,
            format!("the service {:?} matches no table on the primary; check the policy", svc.name),
        );
    }
    let mut f = Vec::new();
    let on_primary = guide::remaining(pinv, svc, tables, today);
    if !on_primary.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "on the primary, accounts besides the owners can touch the service's tables: {}; cut them first (privfence session)",
                list(on_primary.iter().map(describe_reach), 8)
            ),
        ));
    }
    let on_replica: Vec<Reach> = match rinv {
        Ok(rinv) => {
            let rtables = guide::service_tables(rinv, svc);
            guide::remaining(rinv, svc, &rtables, today)
                .into_iter()
                .filter(|r| !on_primary.iter().any(|p| p.account == r.account))
                .collect()
        }
        Err(e) => {
            f.push((Status::Fail, format!("could not read the replica's accounts: {e}")));
            Vec::new()
        }
    };
    if !on_replica.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "on the replica only (created there without the binary log), accounts besides the owners can touch the service's \
                 tables: {}; after promotion they would keep that access; drop or revoke them there",
                list(on_replica.iter().map(describe_reach), 8)
            ),
        ));
    }
    let exempt: Vec<String> = svc.exempt.iter().filter(|e| !e.expired(today)).map(|e| written(&e.account, e.any_host)).collect();
    Check::from_findings(
        ISOLATION,
        f,
        format!(
            "on both servers only the owners ({}){} can touch the {} service tables ({})",
            list(svc.owners.iter().zip(&svc.owner_any_host).map(|(o, any)| written(o, *any)), 4),
            if exempt.is_empty() { String::new() } else { format!(" and exempt accounts ({})", list(exempt, 4)) },
            tables.len(),
            names(&tables.iter().collect::<Vec<_>>())
        ),
    )
}

/// An account as the policy wrote it: a bare user name covers every host.
fn written(a: &AccountName, any_host: bool) -> String {
    if any_host {
        format!("{} (any host)", quote_str(&a.user))
    } else {
        a.sql()
    }
}

const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Follows views and routines named in bodies, through the crate's body analysis
/// ([`sqlrefs::extract`]), to every table an object reaches.
struct Reacher<'a> {
    ci: bool,
    views: HashMap<(String, String), &'a crate::model::inventory::View>,
    routines: HashMap<(String, String), Vec<&'a crate::model::inventory::Routine>>,
}

impl<'a> Reacher<'a> {
    fn new(inv: &'a Inventory) -> Reacher<'a> {
        let ci = inv.server.lower_case_table_names != 0;
        let views = inv.objects.views.iter().map(|v| ((fold(&v.name.schema, ci), fold(&v.name.name, ci)), v)).collect();
        let mut routines: HashMap<(String, String), Vec<&crate::model::inventory::Routine>> = HashMap::new();
        for r in &inv.objects.routines {
            routines.entry((fold(&r.schema, ci), r.name.to_lowercase())).or_default().push(r);
        }
        Reacher { ci, views, routines }
    }

    fn reach(&self, body: &str, schema: &str, seen: &mut HashSet<String>, out: &mut BTreeSet<TableName>, unresolved: &mut Vec<String>) {
        let refs = sqlrefs::extract(body, schema);
        unresolved.extend(refs.unresolved.iter().cloned());
        for t in &refs.tables {
            let name = t.table();
            let key = (fold(&name.schema, self.ci), fold(&name.name, self.ci));
            out.insert(name);
            if let Some(v) = self.views.get(&key) {
                if seen.insert(format!("view {key:?}")) {
                    self.reach(&v.definition, &v.name.schema, seen, out, unresolved);
                }
            }
        }
        for r in &refs.routines {
            for found in self.routines.get(&(fold(&r.schema, self.ci), r.name.to_lowercase())).into_iter().flatten() {
                if seen.insert(format!("routine {}.{}", found.schema, found.name)) {
                    self.reach(&found.body, &found.schema, seen, out, unresolved);
                }
            }
        }
    }
}

fn boundary(inv: &Inventory, tables: &[TableName]) -> Check {
    let ci = inv.server.lower_case_table_names != 0;
    let key = |t: &TableName| (fold(&t.schema, ci), fold(&t.name, ci));
    let service: HashSet<(String, String)> = tables.iter().map(key).collect();
    let existing: HashSet<(String, String)> = inv.objects.tables.iter().map(|t| key(&t.name)).collect();
    let is_other = |t: &TableName| {
        let k = key(t);
        !service.contains(&k) && existing.contains(&k) && !SYSTEM_SCHEMAS.contains(&k.0.as_str())
    };
    let mut f: Vec<(Status, String)> = Vec::new();
    for fk in &inv.objects.foreign_keys {
        let (c, p) = (service.contains(&key(&fk.child)), service.contains(&key(&fk.parent)));
        if c != p {
            f.push((
                Status::Fail,
                format!(
                    "foreign key {} of {} references {} (ON DELETE {}, ON UPDATE {}): one side stays behind",
                    crate::model::ident::quote_ident(&fk.name),
                    fk.child.sql(),
                    fk.parent.sql(),
                    fk.on_delete,
                    fk.on_update
                ),
            ));
        }
    }
    let reacher = Reacher::new(inv);
    let o = &inv.objects;
    let q = crate::model::ident::quote_ident;
    // (label, the object's own table, body, default schema)
    let mut objects: Vec<(String, Option<&TableName>, &str, &str)> = Vec::new();
    objects
        .extend(o.views.iter().map(|v| (format!("view {}", v.name.sql()), Some(&v.name), v.definition.as_str(), v.name.schema.as_str())));
    objects.extend(
        o.routines.iter().map(|r| {
            (format!("{} {}.{}", r.kind.sql().to_lowercase(), q(&r.schema), q(&r.name)), None, r.body.as_str(), r.schema.as_str())
        }),
    );
    objects.extend(o.triggers.iter().map(|t| {
        (format!("trigger {}.{} on {}", q(&t.schema), q(&t.name), t.table.sql()), Some(&t.table), t.body.as_str(), t.schema.as_str())
    }));
    objects.extend(o.events.iter().map(|e| (format!("event {}.{}", q(&e.schema), q(&e.name)), None, e.body.as_str(), e.schema.as_str())));
    for (label, own, body, schema) in objects {
        let mut reached = BTreeSet::new();
        let mut unresolved = Vec::new();
        reacher.reach(body, schema, &mut HashSet::new(), &mut reached, &mut unresolved);
        reached.extend(own.cloned());
        let svc: Vec<&TableName> = reached.iter().filter(|t| service.contains(&key(t))).collect();
        let other: Vec<&TableName> = reached.iter().filter(|t| is_other(t)).collect();
        if !svc.is_empty() && !other.is_empty() {
            f.push((Status::Fail, format!("{label} joins service tables ({}) and others ({})", names(&svc), names(&other))));
        } else if !svc.is_empty() && !unresolved.is_empty() {
            f.push((
                Status::Warn,
                format!("{label} touches {} and has parts privfence cannot follow: {}", names(&svc), list(unresolved, 2)),
            ));
        }
    }
    let counted = format!(
        "{} foreign keys, {} views, {} routines, {} triggers, {} events",
        o.foreign_keys.len(),
        o.views.len(),
        o.routines.len(),
        o.triggers.len(),
        o.events.len()
    );
    let mut check = Check::from_findings(BOUNDARY, f, format!("nothing crosses the service boundary ({counted} examined)"));
    if check.status == Status::Fail {
        check.detail.push_str("; the moved tables would break these (or they would break the split): move or drop them first");
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Transactions and metadata locks on the primary

/// A transaction on the primary.
struct Trx {
    id: String,
    thread: u64,
    age: u64,
    state: String,
    who: String,
    query: String,
}

/// A metadata lock on a service table.
struct Mdl {
    table: TableName,
    /// `SHARED_READ`, `EXCLUSIVE`... (`MDL_` prefix removed).
    mode: String,
    /// `TRANSACTION`, `STATEMENT`, `EXPLICIT`, or empty when the source does not say.
    duration: String,
    pending: bool,
    thread: u64,
}

/// What the primary shows about transactions and locks.
struct Locks {
    max: Duration,
    trxs: Vec<Trx>,
    /// `None`: metadata locks are not visible on this server; the reason and how to fix it.
    mdl: std::result::Result<Vec<Mdl>, String>,
    /// Where the locks were read.
    source: &'static str,
    /// Processlist: id → (user@host, seconds in the current statement, command).
    threads: HashMap<u64, (String, u64, String)>,
}

async fn observe_locks(primary: &mut Node, tables: &[TableName], max: Duration) -> Result<Locks> {
    let own = primary.server.connection_id();
    let trx_sql = format!(
        "SELECT t.trx_id, t.trx_mysql_thread_id, GREATEST(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), 0), t.trx_state, \
         IFNULL(CONCAT(p.USER, '@', p.HOST), ''), IFNULL(LEFT(t.trx_query, 120), '') \
         FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
         WHERE t.trx_mysql_thread_id <> {own}"
    );
    let trxs = primary
        .server
        .rows_as::<(String, u64, u64, String, String, String)>("reading the primary's transactions", &trx_sql)
        .await?
        .into_iter()
        .map(|(id, thread, age, state, who, query)| Trx { id, thread, age, state, who, query })
        .collect();
    let threads = primary
        .server
        .rows_as::<(u64, String, u64, String)>(
            "reading the primary's processlist",
            "SELECT ID, CONCAT(USER, '@', HOST), IFNULL(TIME, 0), IFNULL(COMMAND, '') FROM information_schema.PROCESSLIST",
        )
        .await?
        .into_iter()
        .map(|(id, who, time, cmd)| (id, (who, time, cmd)))
        .collect();
    let (source, mdl) = read_mdl(&mut primary.server, tables, own).await?;
    Ok(Locks { max, trxs, mdl, source, threads })
}

/// Metadata locks on `tables`, from `performance_schema.metadata_locks` or MariaDB's
/// `METADATA_LOCK_INFO` plugin, whichever is on.
async fn read_mdl(server: &mut Server, tables: &[TableName], own: u64) -> Result<(&'static str, std::result::Result<Vec<Mdl>, String>)> {
    let ci = server.info.lower_case_table_names != 0;
    let schemas = schemas_of(tables, ci);
    if schemas.is_empty() {
        return Ok(("none", Ok(Vec::new())));
    }
    let in_schemas = schemas.iter().map(|s| quote_str(s)).collect::<Vec<_>>().join(", ");
    let mariadb = server.info.flavour == Flavour::MariaDb;
    let plugin = mariadb
        && server
            .first::<u64>(
                "looking for the metadata_lock_info plugin",
                "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'",
            )
            .await?
            .unwrap_or(0)
            > 0;
    let (source, sql) = if plugin {
        (
            "information_schema.METADATA_LOCK_INFO",
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, LOCK_MODE, IFNULL(LOCK_DURATION, ''), 'GRANTED', THREAD_ID \
                 FROM information_schema.METADATA_LOCK_INFO WHERE TABLE_SCHEMA IN ({in_schemas}) AND TABLE_NAME IS NOT NULL"
            ),
        )
    } else {
        let on: Option<(String, String, String)> = server
            .first(
                "checking the metadata lock instrument",
                "SELECT CONCAT(@@GLOBAL.performance_schema, ''), \
                 IFNULL((SELECT ENABLED FROM performance_schema.setup_instruments WHERE NAME = 'wait/lock/metadata/sql/mdl'), 'NO'), \
                 IFNULL((SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'global_instrumentation'), 'NO')",
            )
            .await?;
        let (ps, instrument, consumer) = on.unwrap_or_default();
        if ps != "1" || instrument != "YES" || consumer != "YES" {
            let how = if mariadb {
                "INSTALL SONAME 'metadata_lock_info', or start with performance_schema=ON and \
                 performance-schema-instrument='wait/lock/metadata/sql/mdl=ON'"
            } else {
                "UPDATE performance_schema.setup_instruments SET ENABLED = 'YES' WHERE NAME = 'wait/lock/metadata/sql/mdl'"
            };
            let why = format!(
                "metadata locks are not visible (performance_schema={ps}, instrument wait/lock/metadata/sql/mdl {instrument}, \
                 consumer global_instrumentation {consumer}); to see them: {how}"
            );
            return Ok(("none", Err(why)));
        }
        (
            "performance_schema.metadata_locks",
            format!(
                "SELECT ml.OBJECT_SCHEMA, ml.OBJECT_NAME, ml.LOCK_TYPE, ml.LOCK_DURATION, ml.LOCK_STATUS, IFNULL(t.PROCESSLIST_ID, 0) \
                 FROM performance_schema.metadata_locks ml LEFT JOIN performance_schema.threads t ON t.THREAD_ID = ml.OWNER_THREAD_ID \
                 WHERE ml.OBJECT_TYPE = 'TABLE' AND ml.OBJECT_SCHEMA IN ({in_schemas})"
            ),
        )
    };
    let wanted: HashSet<(String, String)> = tables.iter().map(|t| (fold(&t.schema, ci), fold(&t.name, ci))).collect();
    let rows = server.rows_as::<(String, String, String, String, String, u64)>("reading metadata locks", &sql).await?;
    let locks = rows
        .into_iter()
        .filter(|r| r.5 != own && wanted.contains(&(fold(&r.0, ci), fold(&r.1, ci))))
        .map(|(schema, name, mode, duration, status, thread)| Mdl {
            table: TableName::new(schema, name),
            mode: mode.trim_start_matches("MDL_").to_string(),
            duration: duration.trim_start_matches("MDL_").to_string(),
            pending: status.eq_ignore_ascii_case("PENDING"),
            thread,
        })
        .collect();
    Ok((source, Ok(locks)))
}

fn long_transactions(l: &Locks) -> Check {
    let max = l.max.as_secs();
    let long: Vec<&Trx> = l.trxs.iter().filter(|t| t.age >= max).collect();
    if long.is_empty() {
        return Check::new(
            LONG_TRANSACTIONS,
            Status::Pass,
            format!("no transaction on the primary is {max} s old or older ({} open)", l.trxs.len()),
        );
    }
    let show = |t: &Trx, tables: &[&TableName]| {
        let on = if tables.is_empty() { String::new() } else { format!(", holding {}", names(tables)) };
        let q = if t.query.is_empty() { String::new() } else { format!(", running {:?}", t.query) };
        // MariaDB shows id 0 for a transaction that has not written yet.
        let id = if t.id == "0" { "read-only trx".to_string() } else { format!("trx {}", t.id) };
        format!("{id} of connection {} ({}), {} s old, {}{on}{q}", t.thread, t.who, t.age, t.state)
    };
    match &l.mdl {
        Ok(locks) => {
            let mut blocking = Vec::new();
            let mut elsewhere = Vec::new();
            for t in &long {
                let held: Vec<&TableName> = locks.iter().filter(|m| m.thread == t.thread).map(|m| &m.table).collect();
                if held.is_empty() {
                    elsewhere.push(show(t, &[]));
                } else {
                    blocking.push(show(t, &held));
                }
            }
            if blocking.is_empty() {
                return Check::new(
                    LONG_TRANSACTIONS,
                    Status::Pass,
                    format!(
                        "{} transaction(s) {max} s or older, none holding a service table ({}): {}",
                        long.len(),
                        l.source,
                        list(elsewhere, 5)
                    ),
                );
            }
            Check::new(
                LONG_TRANSACTIONS,
                Status::Fail,
                format!(
                    "the fence's LOCK TABLES would wait for: {}; let them finish, or end them (KILL), before the promotion",
                    list(blocking, 5)
                ),
            )
        }
        Err(why) => Check::new(
            LONG_TRANSACTIONS,
            Status::Warn,
            format!(
                "{} transaction(s) {max} s or older: {}; {why}, so privfence cannot tell whether they hold the service's tables \
                 (the fence's lock wait is bounded and undone if it times out)",
                long.len(),
                list(long.iter().map(|t| show(t, &[])), 5)
            ),
        ),
    }
}

/// Lock modes of DDL and `LOCK TABLES`: held by someone else, the fence cannot drain.
const STRONG_MODES: &[&str] = &["EXCLUSIVE", "SHARED_NO_READ_WRITE", "SHARED_NO_WRITE", "SHARED_UPGRADABLE", "SHARED_READ_ONLY"];

fn metadata_locks(l: &Locks) -> Check {
    let locks = match &l.mdl {
        Ok(locks) => locks,
        Err(why) => return Check::new(METADATA_LOCKS, Status::Warn, format!("{why}; the fence's lock wait stays bounded")),
    };
    let max = l.max.as_secs();
    let age = |thread: u64| l.trxs.iter().filter(|t| t.thread == thread).map(|t| t.age).max().unwrap_or(0);
    let mut f = Vec::new();
    let mut short = 0;
    for m in locks {
        let (who, time, _) = l.threads.get(&m.thread).cloned().unwrap_or_default();
        let old = age(m.thread).max(time) >= max;
        let strong = STRONG_MODES.contains(&m.mode.as_str()) || m.duration == "EXPLICIT";
        if m.pending || strong || old {
            let what = if m.pending { "waits for" } else { "holds" };
            let dur = if m.duration.is_empty() { String::new() } else { format!(" ({})", m.duration) };
            f.push((
                Status::Fail,
                format!("connection {} ({who}) {what} {}{dur} on {} for {} s", m.thread, m.mode, m.table.sql(), age(m.thread).max(time)),
            ));
        } else {
            short += 1;
        }
    }
    let tail =
        if short > 0 { format!("; {short} short-lived lock(s) of running statements (normal for a live service)") } else { String::new() };
    let mut check =
        Check::from_findings(METADATA_LOCKS, f, format!("no lock on the service's tables blocks the fence ({}){tail}", l.source));
    if check.status == Status::Fail {
        check.detail.push_str(&format!("{tail}; finish or end these sessions (KILL) before the promotion"));
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Accounts that can write the replica despite read_only; managed services

/// Global privileges that let an account write while `read_only=ON`. MariaDB 10.11.19: only
/// READ_ONLY ADMIN (SUPER alone was refused, error 1290); older MariaDB gave it with SUPER.
/// MySQL: SUPER or CONNECTION_ADMIN, unless `super_read_only=ON` (seen on 9.7.4).
fn bypass_privileges(inv: &Inventory) -> &'static [&'static str] {
    match inv.server.flavour {
        Flavour::MySql => &["SUPER", "CONNECTION_ADMIN"],
        Flavour::MariaDb if inv.server.version < crate::db::Version::new(10, 11, 0) => &["READ_ONLY ADMIN", "SUPER"],
        Flavour::MariaDb => &["READ_ONLY ADMIN"],
    }
}

/// Login accounts holding any of `privs` globally (own grants, roles, PUBLIC, mandatory roles),
/// with the ones they hold and whether they are locked.
fn holders(inv: &Inventory, privs: &[&str]) -> Vec<(AccountName, Vec<String>, bool)> {
    let ix = Index::new(inv);
    let everyone: Vec<AccountName> = ix.everyone().into_iter().map(|(a, _)| a).collect();
    let mut out = Vec::new();
    for a in inv.login_accounts() {
        let mut set = ix.global_all(&a.name);
        for chain in ix.role_chains(&a.name) {
            set.extend(ix.global_all(chain.last().expect("role chains are not empty")));
        }
        for e in &everyone {
            set.extend(ix.global_all(e));
        }
        let hit: Vec<String> = privs.iter().filter(|p| set.iter().any(|s| s.as_str() == **p)).map(|p| p.to_string()).collect();
        if !hit.is_empty() {
            out.push((a.name.clone(), hit, a.locked));
        }
    }
    out
}

fn read_only_bypass(rinv: &Inventory, svc: &Service, rv: &Vars) -> Check {
    let privs = bypass_privileges(rinv);
    let all = holders(rinv, privs);
    let show = |v: &[&(AccountName, Vec<String>, bool)]| list(v.iter().map(|(a, p, _)| format!("{} ({})", a.sql(), p.join(", "))), 8);
    let (locked, open): (Vec<_>, Vec<_>) = all.iter().partition(|(_, _, locked)| *locked);
    let owners: Vec<_> = open.iter().copied().filter(|(a, _, _)| svc.is_owner(a)).collect();
    let mysql = rinv.server.flavour == Flavour::MySql;
    let state = if mysql {
        format!("read_only={}, super_read_only={}", on(rv.read_only), on(rv.super_read_only))
    } else {
        format!("read_only={}", on(rv.read_only))
    };
    let locked_note = if locked.is_empty() { String::new() } else { format!("; locked, so not counted: {}", show(&locked)) };
    let mut f = Vec::new();
    if !owners.is_empty() {
        f.push((
            Status::Fail,
            format!(
                "the service's own account(s) {} can write the replica before promotion and would hold {} on the new server; \
                 revoke that from them (mysql-facts §6)",
                show(&owners),
                privs.join("/")
            ),
        ));
    }
    let guarded = mysql && rv.super_read_only;
    if !rv.read_only {
        f.push((
            Status::Warn,
            format!(
                "the replica is writable ({state}): any account with write grants can create errant transactions; SET GLOBAL read_only=ON"
            ),
        ));
    } else if !open.is_empty() && !guarded {
        f.push((
            Status::Warn,
            format!(
                "{state} on the replica, but these accounts can write it anyway ({}): {}{}",
                privs.join(" or "),
                show(&open),
                if mysql {
                    "; SET GLOBAL super_read_only=ON stops them"
                } else {
                    "; make sure they do not write there until the promotion"
                }
            ),
        ));
    }
    if f.is_empty() {
        let detail = if guarded && !open.is_empty() {
            format!("{state} on the replica; super_read_only stops even {}{locked_note}", show(&open))
        } else {
            format!("{state} on the replica; no account can bypass it ({}){locked_note}", privs.join(", "))
        };
        return Check::new(READ_ONLY_BYPASS, Status::Pass, detail);
    }
    let mut c = Check::from_findings(READ_ONLY_BYPASS, f, "");
    c.detail.push_str(&locked_note);
    c
}

fn on(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

fn managed(p: &Server, r: &Server) -> Check {
    let found: Vec<String> =
        [("primary", p), ("replica", r)].iter().filter_map(|(who, s)| s.info.managed.as_ref().map(|m| format!("{who}: {m}"))).collect();
    if found.is_empty() {
        return Check::new(
            MANAGED,
            Status::Pass,
            "self-managed servers (no provider recognised in @@version, @@version_comment, @@basedir): privfence runs every step",
        );
    }
    let provider = p.info.managed.as_deref().or(r.info.managed.as_deref()).unwrap_or("");
    let how = match provider {
        "Amazon RDS" => "`aws rds promote-read-replica` for the promotion; read_only through the DB parameter group; CALL mysql.rds_kill(id) for sessions",
        "Amazon Aurora" => {
            "`aws rds promote-read-replica-db-cluster`, or CALL mysql.rds_stop_replication and mysql.rds_reset_external_source \
             for a binlog replica; read_only through the cluster parameter group; CALL mysql.rds_kill(id)"
        }
        "Azure Database" => "`az mysql flexible-server replica stop-replication` for the promotion; read_only through server parameters",
        "Google Cloud SQL" => "`gcloud sql instances promote-replica` for the promotion; read_only through database flags",
        _ => "the provider's promotion API; read_only through its parameter settings",
    };
    Check::new(
        MANAGED,
        Status::Warn,
        format!(
            "{}: the provider's API must do these steps instead of SQL: stop and reset replication (promotion), turn read_only \
             (and super_read_only) off on the new server, persist settings (no SET PERSIST), kill other accounts' sessions; {how}. \
             privfence still fences, waits, compares and moves grants",
            found.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_errant_gtids() {
        // Seen: a write on the replica (server_id 2) after the primary's 0-1-3.
        assert_eq!(mariadb_errant("0-1-3,0-2-4", "0-1-3"), vec!["0-2-4"]);
        // Replayed on the primary with the replica's server_id: no longer errant.
        assert!(mariadb_errant("0-1-3,0-2-4", "0-2-4,0-1-5").is_empty());
        // Behind the primary is fine; ahead on the primary's own server_id is not.
        assert!(mariadb_errant("0-1-3", "0-1-9").is_empty());
        assert_eq!(mariadb_errant("0-1-9,1-1-2", "0-1-3,1-1-2"), vec!["0-1-9"]);
        assert!(mariadb_errant("", "0-1-3").is_empty());
    }

    fn t(s: &str, n: &str) -> TableName {
        TableName::new(s, n)
    }

    #[test]
    fn table_rules() {
        assert!(table_rule_matches("shop.svc%", &t("shop", "svc_items"), true, false));
        assert!(!table_rule_matches("shop.svc%", &t("shop2", "svc_items"), true, false));
        assert!(table_rule_matches("sh_p.%", &t("shop", "x"), true, false));
        assert!(table_rule_matches("mysql.%", &t("mysql", "user"), true, false));
        assert!(table_rule_matches("Shop.T", &t("shop", "t"), false, true));
        assert!(!table_rule_matches("Shop.T", &t("shop", "t"), false, false));
        assert!(!table_rule_matches("shop", &t("shop", "t"), false, false));
    }

    #[test]
    fn filters_that_drop_the_service_or_grants() {
        let svc = vec![t("shop", "svc_items")];
        let mut targets = svc.clone();
        targets.extend(grant_tables(Flavour::MySql));
        let worst = |f: &Filters| filter_findings(f, &svc, &targets, "1", false).iter().map(|x| x.0).max();
        assert_eq!(worst(&Filters::default()), None);
        let f = Filters { wild_ignore: vec!["shop.svc%".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail));
        let f = Filters { ignore_db: vec!["other".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Warn));
        let f = Filters { ignore_db: vec!["mysql".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail));
        let f = Filters { do_db: vec!["shop".into(), "mysql".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail), "default-database semantics drop grants run elsewhere");
        // Do-table filters must let the service and mysql.% through.
        let f = Filters { wild_do: vec!["shop.%".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail));
        let f = Filters { wild_do: vec!["shop.%".into(), "mysql.%".into()], ..Default::default() };
        assert_eq!(worst(&f), None);
        let f = Filters { ignore_table: vec!["shop.orders".into()], ..Default::default() };
        assert_eq!(worst(&f), None);
        let f = Filters { ignore_server_ids: vec!["1".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail));
        let f = Filters { rewrite_db: vec!["(shop,shop2)".into()], ..Default::default() };
        assert_eq!(worst(&f), Some(Status::Fail));
    }

    #[test]
    fn binlog_filters_rules() {
        let schemas = vec!["shop".to_string(), "mysql".to_string()];
        assert!(binlog_findings(&[], &[], &schemas, false).is_empty());
        assert_eq!(binlog_findings(&["shop".into()], &[], &schemas, false)[0].0, Status::Fail);
        assert_eq!(binlog_findings(&[], &["logs".into()], &schemas, false)[0].0, Status::Warn);
        assert_eq!(binlog_findings(&[], &["Shop".into()], &schemas, true)[0].0, Status::Fail);
    }

    fn inventory(objects: crate::model::inventory::Objects) -> Inventory {
        Inventory {
            objects,
            ..Inventory::empty(crate::db::ServerInfo {
                flavour: Flavour::MySql,
                version: crate::db::Version::new(9, 7, 4),
                version_string: "9.7.4".into(),
                version_comment: String::new(),
                managed: None,
                lower_case_table_names: 0,
                partial_revokes: false,
            })
        }
    }

    #[test]
    fn boundary_crossings() {
        use crate::model::inventory::{ForeignKey, Objects, Routine, Security, Table, Trigger, View};
        let table = |n: &str| Table { name: t("shop", n), is_view: false };
        let view = |n: &str, def: &str| View { name: t("shop", n), definer: None, security: Security::Definer, definition: def.into() };
        let proc_ = |n: &str, body: &str| Routine {
            kind: crate::model::RoutineKind::Procedure,
            schema: "shop".into(),
            name: n.into(),
            definer: None,
            security: Security::Definer,
            body: body.into(),
        };
        let base = Objects {
            schemas: vec!["shop".into()],
            tables: ["svc_items", "svc_notes", "orders", "svc_v", "report"].iter().map(|n| table(n)).collect(),
            ..Default::default()
        };
        let svc = vec![t("shop", "svc_items"), t("shop", "svc_notes"), t("shop", "svc_v")];
        let run = |o: Objects| boundary(&inventory(o), &svc);
        // Inside the service, or outside it, or reading system tables: fine.
        let mut o = base.clone();
        o.views.push(view("svc_v", "select `shop`.`svc_items`.`id` from `shop`.`svc_items` join svc_notes using (id)"));
        o.routines.push(proc_("p_other", "BEGIN SELECT * FROM orders; SELECT * FROM mysql.user; END"));
        o.foreign_keys.push(ForeignKey {
            name: "fk_in".into(),
            child: t("shop", "svc_notes"),
            parent: t("shop", "svc_items"),
            on_delete: "RESTRICT".into(),
            on_update: "RESTRICT".into(),
        });
        assert_eq!(run(o.clone()).status, Status::Pass, "{:?}", run(o.clone()));
        // A view outside reading a service view; a procedure calling one that reads the
        // service; a trigger on a service table writing elsewhere; a foreign key across.
        let mut x = o.clone();
        x.views.push(view("report", "select * from `shop`.`orders` join `shop`.`svc_v` using (id)"));
        x.routines.push(proc_("p_svc", "SELECT COUNT(*) FROM svc_items"));
        x.routines.push(proc_("p_calls", "BEGIN CALL p_svc(); INSERT INTO orders VALUES (1); END"));
        x.triggers.push(Trigger {
            schema: "shop".into(),
            name: "tr".into(),
            table: t("shop", "svc_items"),
            event: "INSERT".into(),
            definer: None,
            body: "INSERT INTO orders VALUES (NEW.id)".into(),
        });
        x.foreign_keys.push(ForeignKey {
            name: "fk_out".into(),
            child: t("shop", "svc_items"),
            parent: t("shop", "orders"),
            on_delete: "CASCADE".into(),
            on_update: "RESTRICT".into(),
        });
        let c = run(x);
        assert_eq!(c.status, Status::Fail);
        for needle in ["view `shop`.`report`", "procedure `shop`.`p_calls`", "trigger `shop`.`tr`", "`fk_out`"] {
            assert!(c.detail.contains(needle), "{needle} in {}", c.detail);
        }
        assert!(!c.detail.contains("p_svc`") && !c.detail.contains("p_other") && !c.detail.contains("fk_in"), "{}", c.detail);
    }

    #[test]
    fn worst_status_wins() {
        let c = Check::from_findings("x", vec![(Status::Warn, "a".into()), (Status::Fail, "b".into())], "ok");
        assert_eq!((c.status, c.detail.as_str()), (Status::Fail, "a; b"));
        assert_eq!(Check::from_findings("x", vec![], "ok").status, Status::Pass);
        assert!(refuses(&[c]));
    }
}
