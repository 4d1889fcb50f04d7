//! Promotion preflight against real servers, both flavours (issue 6, step 1): a clean primary
//! and replica pass every check; preflight refuses when the isolation does not hold, when the
//! "replica" replicates from nothing, when a foreign key or view crosses the service boundary,
//! when the replica has an errant GTID, when a replication filter drops the service's tables;
//! a long transaction holding a service table is seen where metadata locks are visible.
//!
//! Each test has its own schema, accounts and policy. Tests that change the shared servers
//! (an errant GTID, a filter, a plugin) hold [`GATE`] exclusively and undo what they did before
//! asserting, so the other tests never see it.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::promote::preflight::{self, Check, Input, Status};
use privfence::sandbox::{self, Sandbox, Topology};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::*;

/// Shared by tests that only read the servers; held exclusively by those that change them.
static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// One test's schema `pfp_<tag>` (service tables `svc_items`, `svc_notes`; the monolith's
/// `orders`), the service's owner `pfo_<tag>`@'%' and an app `pfa_<tag>`@'%' on `orders` only.
struct Fixture {
    tag: String,
    schema: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn create(sb: &Sandbox, tag: &str) -> Fixture {
        let f = Fixture { tag: tag.into(), schema: format!("pfp_{tag}"), dir: tempfile::tempdir().unwrap() };
        let s = qi(&f.schema);
        let (owner, app) = (f.owner(), f.app());
        admin_exec(
            sb,
            &[
                format!("DROP DATABASE IF EXISTS {s}"),
                format!("DROP USER IF EXISTS {owner}, {app}, {}", f.extra()),
                format!("CREATE DATABASE {s}"),
                format!("CREATE TABLE {s}.svc_items (id INT PRIMARY KEY) ENGINE=InnoDB"),
                format!("CREATE TABLE {s}.svc_notes (id INT PRIMARY KEY) ENGINE=InnoDB"),
                format!("CREATE TABLE {s}.orders (id INT PRIMARY KEY) ENGINE=InnoDB"),
                format!("INSERT INTO {s}.svc_items VALUES (1)"),
                format!("INSERT INTO {s}.orders VALUES (1), (2)"),
                format!("CREATE USER {owner} IDENTIFIED BY 'pw-owner'"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.svc_items TO {owner}"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.svc_notes TO {owner}"),
                format!("CREATE USER {app} IDENTIFIED BY 'pw-app'"),
                format!("GRANT SELECT, INSERT ON {s}.orders TO {app}"),
            ],
        )
        .await;
        std::fs::write(f.policy(), f.policy_text(sb.flavour)).unwrap();
        f
    }

    fn owner(&self) -> String {
        format!("{}@'%'", qs(&format!("pfo_{}", self.tag)))
    }

    fn app(&self) -> String {
        format!("{}@'%'", qs(&format!("pfa_{}", self.tag)))
    }

    /// An account the isolation test adds.
    fn extra(&self) -> String {
        format!("{}@'%'", qs(&format!("pfx_{}", self.tag)))
    }

    fn service(&self) -> String {
        format!("svc_{}", self.tag)
    }

    fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    fn policy_text(&self, flavour: Flavour) -> String {
        let svc = self.service();
        let mut p = format!(
            "[service.{svc}]\ntables = [\"{}.svc_*\"]\nowners = [\"'pfo_{}'@'%'\"]\n\n[[service.{svc}.exempt]]\naccount = \"root\"\nreason = \"DBA\"\n",
            self.schema, self.tag
        );
        if flavour == Flavour::MySql {
            for a in ["mysql.infoschema", "mysql.session"] {
                p.push_str(&format!("[[service.{svc}.exempt]]\naccount = \"'{a}'@'localhost'\"\nreason = \"server-internal\"\n"));
            }
        }
        p
    }

    /// Runs the preflight with `primary` and `replica` servers (the "replica" may be anything).
    async fn preflight(&self, primary: &sandbox::Server, replica: &sandbox::Server, lock_wait_max: Duration) -> Vec<Check> {
        let today = chrono::Local::now().date_naive();
        let policy = privfence::policy::load(&self.policy(), today).expect("policy");
        let mut p = Node::connect(&admin_spec(primary), "primary").await.expect("connect to the primary");
        let mut r = Node::connect(&admin_spec(replica), "replica").await.expect("connect to the replica");
        let inv = privfence::inventory::take(&mut p.server).await.expect("inventory");
        let service = self.service();
        let input = Input { policy: &policy, service: &service, today, lock_wait_max };
        let checks = preflight::run(&mut p, &mut r, &inv, &input).await.expect("preflight runs");
        show(&self.tag, &checks);
        p.server.close().await;
        r.server.close().await;
        checks
    }

    async fn drop(self, sb: &Sandbox) {
        admin_exec(
            sb,
            &[
                format!("DROP DATABASE IF EXISTS {}", qi(&self.schema)),
                format!("DROP USER IF EXISTS {}, {}, {}", self.owner(), self.app(), self.extra()),
            ],
        )
        .await;
    }
}

/// The checks as a table on stderr (seen with `--nocapture`), for people reading the run.
#[allow(clippy::print_stderr)]
fn show(tag: &str, checks: &[Check]) {
    for c in checks {
        eprintln!("[{tag}] {:<28} {:<4} {}", c.name, format!("{:?}", c.status).to_lowercase(), c.detail);
    }
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"))
}

fn status(checks: &[Check], name: &str) -> Status {
    check(checks, name).status
}

const MAX: Duration = Duration::from_secs(60);

/// A clean pair passes: nothing fails; every check that can pass on a sandbox does.
async fn clean(flavour: Flavour) {
    let _g = GATE.read().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("c{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let checks = f.preflight(&sb.primary, replica(sb), MAX).await;
    assert_eq!(checks.len(), 12, "{checks:#?}");
    assert!(!preflight::refuses(&checks), "{checks:#?}");
    for name in [
        preflight::VERSIONS,
        preflight::GTID,
        preflight::SOURCE,
        preflight::ERRANT,
        preflight::REPLICA_FILTERS,
        preflight::BINLOG_FILTERS,
        preflight::ISOLATION,
        preflight::BOUNDARY,
        preflight::LONG_TRANSACTIONS,
        preflight::MANAGED,
    ] {
        assert_eq!(status(&checks, name), Status::Pass, "{:#?}", check(&checks, name));
    }
    // Metadata locks are visible on MySQL; MariaDB's instrument is off by default.
    let mdl = if flavour == Flavour::MySql { Status::Pass } else { Status::Warn };
    assert_eq!(status(&checks, preflight::METADATA_LOCKS), mdl, "{:#?}", check(&checks, preflight::METADATA_LOCKS));
    // The sandbox's root can write the read-only replica (READ_ONLY ADMIN / SUPER).
    let bypass = check(&checks, preflight::READ_ONLY_BYPASS);
    assert_eq!(bypass.status, Status::Warn, "{bypass:#?}");
    assert!(bypass.detail.contains("'root'@"), "{bypass:#?}");
    let source = check(&checks, preflight::SOURCE);
    assert!(source.detail.contains(&format!("127.0.0.1:{}", sb.primary.port)), "{source:#?}");
    assert!(check(&checks, preflight::ISOLATION).detail.contains(&format!("pfo_c{}", flavour.name())));
    let json = serde_json::to_value(&checks[0]).unwrap();
    assert_eq!(json["status"], "pass", "{json}");
    f.drop(sb).await;
}

both_flavours!(a_clean_pair_passes, clean);

/// Another account with SELECT on a service table: the isolation does not hold.
async fn not_isolated(flavour: Flavour) {
    let _g = GATE.read().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("i{}", flavour.name())).await;
    let extra = f.extra();
    // The owner may also write the read-only replica: a global privilege, no table access.
    let bypass = if flavour == Flavour::MySql { "CONNECTION_ADMIN" } else { "READ_ONLY ADMIN" };
    admin_exec(
        sb,
        &[
            format!("CREATE USER {extra} IDENTIFIED BY 'pw-x'"),
            format!("GRANT SELECT ON {}.svc_items TO {extra}", qi(&f.schema)),
            format!("GRANT {bypass} ON *.* TO {}", f.owner()),
        ],
    )
    .await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let checks = f.preflight(&sb.primary, replica(sb), MAX).await;
    assert!(preflight::refuses(&checks));
    let iso = check(&checks, preflight::ISOLATION);
    assert_eq!(iso.status, Status::Fail, "{iso:#?}");
    assert!(iso.detail.contains(&format!("'pfx_{}'@'%'", f.tag)) && iso.detail.contains("table grant"), "{iso:#?}");
    assert_eq!(status(&checks, preflight::SOURCE), Status::Pass);
    let ro = check(&checks, preflight::READ_ONLY_BYPASS);
    assert_eq!(ro.status, Status::Fail, "{ro:#?}");
    assert!(ro.detail.contains(&format!("'pfo_{}'@'%' ({bypass})", f.tag)), "{ro:#?}");
    f.drop(sb).await;
}

both_flavours!(refuses_when_the_isolation_does_not_hold, not_isolated);

/// A standalone server given as the replica: it replicates from nothing.
async fn not_attached(flavour: Flavour) {
    let _g = GATE.read().await;
    let sb = pair(flavour);
    let single = sandbox::shared(flavour, Topology::Single);
    let f = Fixture::create(sb, &format!("n{}", flavour.name())).await;
    let checks = f.preflight(&sb.primary, &single.primary, MAX).await;
    assert!(preflight::refuses(&checks));
    let source = check(&checks, preflight::SOURCE);
    assert_eq!(source.status, Status::Fail, "{source:#?}");
    assert!(source.detail.contains("replicates from nobody"), "{source:#?}");
    assert_eq!(status(&checks, preflight::REPLICA_FILTERS), Status::Fail, "not checkable without a link");
    if flavour == Flavour::MariaDb {
        assert_eq!(status(&checks, preflight::GTID), Status::Fail, "MariaDB: no link, no Using_Gtid");
    }
    f.drop(sb).await;
}

both_flavours!(refuses_when_the_replica_is_not_attached, not_attached);

/// A service table referencing a monolith table, and a view joining both.
async fn cross_boundary(flavour: Flavour) {
    let _g = GATE.read().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("b{}", flavour.name())).await;
    let s = qi(&f.schema);
    admin_exec(
        sb,
        &[
            format!(
                "CREATE TABLE {s}.svc_lines (id INT PRIMARY KEY, order_id INT, \
                 CONSTRAINT pf_lines_order FOREIGN KEY (order_id) REFERENCES {s}.orders (id)) ENGINE=InnoDB"
            ),
            format!("CREATE VIEW {s}.report AS SELECT o.id FROM {s}.orders o JOIN {s}.svc_items i ON i.id = o.id"),
        ],
    )
    .await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let checks = f.preflight(&sb.primary, replica(sb), MAX).await;
    assert!(preflight::refuses(&checks));
    let b = check(&checks, preflight::BOUNDARY);
    assert_eq!(b.status, Status::Fail, "{b:#?}");
    assert!(b.detail.contains("`pf_lines_order`") && b.detail.contains(&format!("`{}`.`orders`", f.schema)), "{b:#?}");
    assert!(b.detail.contains(&format!("view `{}`.`report`", f.schema)), "{b:#?}");
    assert_eq!(status(&checks, preflight::ISOLATION), Status::Pass, "a RESTRICT key gives nobody access");
    f.drop(sb).await;
}

both_flavours!(refuses_a_foreign_key_or_view_across_the_boundary, cross_boundary);

/// The GTID of the last transaction written on the replica and missing on the primary:
/// MySQL `uuid:n`, MariaDB `domain-server-seq`.
async fn errant_gtid(sb: &Sandbox) -> String {
    let mut p = sb.primary.conn().await.unwrap();
    let mut r = replica(sb).conn().await.unwrap();
    let gtid: Option<String> = match sb.flavour {
        Flavour::MySql => {
            let rset: String = r.query_first("SELECT @@GLOBAL.gtid_executed").await.unwrap().unwrap();
            p.query_first(format!("SELECT GTID_SUBTRACT({}, @@GLOBAL.gtid_executed)", qs(&rset))).await.unwrap()
        }
        Flavour::MariaDb => r.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await.unwrap(),
    };
    p.disconnect().await.ok();
    r.disconnect().await.ok();
    gtid.unwrap_or_default().replace('\n', "")
}

/// Replays `stmt` on the primary under the replica's errant GTID, so both servers have it (the
/// usual repair when the errant transaction is harmless); the replica skips it.
async fn replay_on_primary(sb: &Sandbox, gtid: &str, stmt: &str) {
    let mut p = sb.primary.conn().await.unwrap();
    let stmts = match sb.flavour {
        Flavour::MySql => vec![format!("SET GTID_NEXT = {}", qs(gtid)), stmt.to_string(), "SET GTID_NEXT = 'AUTOMATIC'".into()],
        Flavour::MariaDb => {
            let parts: Vec<&str> = gtid.split('-').collect();
            assert_eq!(parts.len(), 3, "one MariaDB GTID: {gtid}");
            vec![
                format!("SET SESSION gtid_domain_id = {}, server_id = {}, gtid_seq_no = {}", parts[0], parts[1], parts[2]),
                stmt.to_string(),
            ]
        }
    };
    for s in &stmts {
        p.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    p.disconnect().await.ok();
}

/// A write on the replica with the binary log on is an errant GTID: refused, named; replayed
/// on the primary, it is no longer errant.
async fn errant(flavour: Flavour) {
    let _g = GATE.write().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("e{}", flavour.name())).await;
    let probe = format!("{}.errant_probe", qi(&f.schema));
    admin_exec(sb, &[format!("CREATE TABLE {probe} (id INT PRIMARY KEY)")]).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let insert = format!("INSERT INTO {probe} VALUES (1)");
    let mut r = replica(sb).conn().await.unwrap();
    for s in ["SET GLOBAL read_only = OFF", "SET SESSION sql_log_bin = 1", &insert, "SET GLOBAL read_only = ON"] {
        r.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    r.disconnect().await.ok();
    let gtid = errant_gtid(sb).await;
    let before = f.preflight(&sb.primary, replica(sb), MAX).await;
    // Undo before asserting: the other tests must not see the errant GTID.
    replay_on_primary(sb, &gtid, &insert).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up after the repair");
    let after = f.preflight(&sb.primary, replica(sb), MAX).await;
    assert!(!gtid.is_empty(), "the write on the replica made a GTID the primary lacks");
    let e = check(&before, preflight::ERRANT);
    assert_eq!(e.status, Status::Fail, "{e:#?}");
    assert!(e.detail.contains(&gtid), "the detail names {gtid}: {e:#?}");
    assert!(preflight::refuses(&before));
    assert_eq!(status(&after, preflight::ERRANT), Status::Pass, "{:#?}", check(&after, preflight::ERRANT));
    assert!(!preflight::refuses(&after), "{after:#?}");
    f.drop(sb).await;
}

both_flavours!(refuses_an_errant_gtid_on_the_replica, errant);

/// Waits until both replication threads of the replica run.
async fn wait_running(sb: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = replica(sb).conn().await.unwrap();
    loop {
        let st = privfence::sandbox::replication::state(&mut c, sb.flavour).await.unwrap();
        if st.as_ref().is_some_and(|s| s.is_running()) {
            break;
        }
        assert!(Instant::now() < deadline, "replication runs again: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.disconnect().await.ok();
}

/// Sets the replica's wild-ignore-table filter (`''`: none), stopping and restarting replication.
async fn set_wild_ignore(sb: &Sandbox, rule: &str) {
    let mut r = replica(sb).conn().await.unwrap();
    let stmts = match sb.flavour {
        Flavour::MySql => {
            let list = if rule.is_empty() { String::new() } else { qs(rule) };
            vec![
                "STOP REPLICA SQL_THREAD".to_string(),
                format!("CHANGE REPLICATION FILTER REPLICATE_WILD_IGNORE_TABLE = ({list})"),
                "START REPLICA SQL_THREAD".into(),
            ]
        }
        Flavour::MariaDb => {
            vec!["STOP SLAVE".to_string(), format!("SET GLOBAL replicate_wild_ignore_table = {}", qs(rule)), "START SLAVE".into()]
        }
    };
    for s in &stmts {
        r.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    r.disconnect().await.ok();
    wait_running(sb).await;
}

/// A replication filter that drops the service's tables is refused, and named.
async fn filtered(flavour: Flavour) {
    let _g = GATE.write().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("f{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let rule = format!("{}.svc%", f.schema);
    set_wild_ignore(sb, &rule).await;
    let with = f.preflight(&sb.primary, replica(sb), MAX).await;
    set_wild_ignore(sb, "").await;
    let without = f.preflight(&sb.primary, replica(sb), MAX).await;
    let c = check(&with, preflight::REPLICA_FILTERS);
    assert_eq!(c.status, Status::Fail, "{c:#?}");
    assert!(c.detail.contains(&rule) && c.detail.contains(&format!("`{}`.`svc_items`", f.schema)), "{c:#?}");
    assert_eq!(status(&without, preflight::REPLICA_FILTERS), Status::Pass, "{without:#?}");
    f.drop(sb).await;
}

both_flavours!(refuses_a_replication_filter_dropping_the_service, filtered);

/// A transaction holding a service table for longer than `lock_wait_max`: refused where
/// metadata locks are visible (MySQL; MariaDB with the metadata_lock_info plugin), a warning
/// that says how to see them otherwise.
async fn long_transaction(flavour: Flavour) {
    let _g = GATE.write().await;
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("l{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let mut holder = sb.primary.conn().await.unwrap();
    holder.query_drop("BEGIN").await.unwrap();
    let _: Vec<i64> = holder.query(format!("SELECT id FROM {}.svc_items", qi(&f.schema))).await.unwrap();
    let holder_id = holder.id();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let blind = f.preflight(&sb.primary, replica(sb), Duration::from_secs(1)).await;
    let with_plugin = if flavour == Flavour::MariaDb {
        admin_exec(sb, &["SET SESSION sql_log_bin = 0".into(), "INSTALL SONAME 'metadata_lock_info'".into()]).await;
        let checks = f.preflight(&sb.primary, replica(sb), Duration::from_secs(1)).await;
        admin_exec(sb, &["SET SESSION sql_log_bin = 0".into(), "UNINSTALL SONAME 'metadata_lock_info'".into()]).await;
        checks
    } else {
        blind.clone()
    };
    holder.query_drop("ROLLBACK").await.unwrap();
    holder.disconnect().await.ok();
    let after = f.preflight(&sb.primary, replica(sb), Duration::from_secs(1)).await;
    if flavour == Flavour::MariaDb {
        for name in [preflight::LONG_TRANSACTIONS, preflight::METADATA_LOCKS] {
            let c = check(&blind, name);
            assert_eq!(c.status, Status::Warn, "without the plugin: {c:#?}");
            assert!(c.detail.contains("metadata_lock_info"), "says how to see the locks: {c:#?}");
        }
    }
    for name in [preflight::LONG_TRANSACTIONS, preflight::METADATA_LOCKS] {
        let c = check(&with_plugin, name);
        assert_eq!(c.status, Status::Fail, "{c:#?}");
        assert!(c.detail.contains(&format!("connection {holder_id}")) && c.detail.contains("`svc_items`"), "{c:#?}");
    }
    assert_eq!(status(&after, preflight::LONG_TRANSACTIONS), Status::Pass, "{after:#?}");
    assert_ne!(status(&after, preflight::METADATA_LOCKS), Status::Fail, "{after:#?}");
    f.drop(sb).await;
}

both_flavours!(refuses_a_long_transaction_on_a_service_table, long_transaction);
