//! What the servers say about replication: versions, GTID, the replica's source, errant GTIDs.

use super::*;

/// Replication settings of one server, read in one statement.
pub(super) struct Vars {
    pub(super) server_id: String,
    pub(super) log_bin: bool,
    /// MySQL `gtid_mode`, `enforce_gtid_consistency` (empty on MariaDB).
    pub(super) gtid_mode: String,
    pub(super) enforce_gtid: String,
    pub(super) read_only: bool,
    /// MySQL only; MariaDB has no `super_read_only`.
    pub(super) super_read_only: bool,
    /// MySQL `gtid_executed`; MariaDB `gtid_binlog_state` (the last GTID per domain and
    /// server, which is what tells a replica's own writes apart).
    pub(super) gtids: String,
    /// MariaDB `gtid_binlog_pos` and `gtid_slave_pos`, for messages.
    pub(super) binlog_pos: String,
    pub(super) slave_pos: String,
}

pub(super) async fn read_vars(node: &mut Node) -> Result<Vars> {
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
    let r = rows.first().ok_or_else(|| Error::ReplicaNotReady {
        what: format!("{}: reading the replication settings returned no row", node.name),
        todo: "check that the server is up and privfence's account can read its global variables, then run again",
    })?;
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
pub(super) struct Link {
    /// Empty for the default one.
    pub(super) channel: String,
    pub(super) host: String,
    pub(super) port: u16,
    /// MySQL `Source_UUID` (empty until the receiver first connected).
    pub(super) source_uuid: String,
    /// `Source_Server_Id` / `Master_Server_Id` (0 until the first connection).
    pub(super) source_server_id: String,
    pub(super) health: ReplicaHealth,
    /// MySQL `Auto_Position` (`1`/`0`); MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`).
    pub(super) gtid_use: String,
    pub(super) filters: Filters,
}

impl Link {
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Filters {
    pub(super) do_db: Vec<String>,
    pub(super) ignore_db: Vec<String>,
    pub(super) do_table: Vec<String>,
    pub(super) ignore_table: Vec<String>,
    pub(super) wild_do: Vec<String>,
    pub(super) wild_ignore: Vec<String>,
    pub(super) rewrite_db: Vec<String>,
    /// MariaDB GTID domain filters.
    pub(super) do_domains: Vec<String>,
    pub(super) ignore_domains: Vec<String>,
    pub(super) ignore_server_ids: Vec<String>,
}

pub(super) fn col(row: &Row, names: &[&str]) -> String {
    let cols = row.columns_ref();
    names.iter().find_map(|n| cols.iter().position(|c| c.name_str() == *n)).map(|i| text(row, i)).unwrap_or_default()
}

pub(super) fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

pub(super) async fn read_links(node: &mut Node) -> Result<Vec<Link>> {
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

pub(super) fn link_of(row: &Row) -> Link {
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

pub(super) fn versions(p: &Server, r: &Server) -> Check {
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

pub(super) fn gtid(flavour: Flavour, p: &Vars, r: &Vars, link: Option<&Link>) -> Check {
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
pub(super) async fn resolve(host: &str, port: u16) -> BTreeSet<std::net::SocketAddr> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(it) => it.map(|a| std::net::SocketAddr::new(canonical_ip(a.ip()), a.port())).collect(),
        Err(_) => BTreeSet::new(),
    }
}

pub(super) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Does the replica replicate from this primary, with both threads running? Also returns the
/// index of the link that does.
pub(super) async fn source(
    primary: &Node,
    replica: &Node,
    pv: &Vars,
    rv: &Vars,
    links: &[Link],
    listed: &[String],
) -> (Check, Option<usize>) {
    let mut f = same_server_findings(primary, pv, rv, replica);
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
    let Some(i) = primary_link(primary, replica, pv, links, listed, &mut f).await else {
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
    let seen = format!(
        "{} replicates from {}: {}; the primary lists replicas [{}]",
        replica.name,
        l.describe(),
        link_evidence(l, primary, pv),
        listed.join(", ")
    );
    if f.is_empty() {
        return (Check::new(SOURCE, Status::Pass, format!("{seen}; IO and SQL threads running")), Some(i));
    }
    let mut c = Check::from_findings(SOURCE, f, "");
    c.detail = format!("{seen}; {}", c.detail);
    (c, Some(i))
}

/// Both connections reaching one server (or two servers sharing a server_id).
fn same_server_findings(primary: &Node, pv: &Vars, rv: &Vars, replica: &Node) -> Vec<(Status, String)> {
    let mut f = Vec::new();
    if pv.server_id == rv.server_id {
        f.push((
            Status::Fail,
            format!("both servers have server_id {}: a replica ignores events carrying its own server_id", pv.server_id),
        ));
    }
    if primary.flavour() == Flavour::MySql && primary.identity == replica.identity {
        f.push((Status::Fail, format!("both connections reach the same server (server_uuid {})", primary.identity)));
    }
    f
}

/// The replica's link from the primary (by uuid, server_id or address), warning in `f` of
/// every other link.
async fn primary_link(
    primary: &Node,
    replica: &Node,
    pv: &Vars,
    links: &[Link],
    listed: &[String],
    f: &mut Vec<(Status, String)>,
) -> Option<usize> {
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
    found
}

/// Why the link is the primary's.
fn link_evidence(l: &Link, primary: &Node, pv: &Vars) -> String {
    if l.source_uuid == primary.identity {
        "its Source_UUID is the primary's server_uuid".to_string()
    } else if l.source_server_id == pv.server_id {
        let label = if primary.flavour() == Flavour::MySql { "Source_Server_Id" } else { "Master_Server_Id" };
        format!("{label} {} is the primary's server_id", pv.server_id)
    } else {
        "its source address resolves to the primary's".to_string()
    }
}

pub(super) async fn errant(primary: &mut Node, pv: &Vars, rv: &Vars) -> Result<Check> {
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
pub(super) fn mariadb_errant(replica_state: &str, primary_state: &str) -> Vec<String> {
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
