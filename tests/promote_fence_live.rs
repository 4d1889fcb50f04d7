//! The promotion's write fence on real servers, both flavours: the owner's writes to the
//! service's tables stop (locked login, revoked direct writes, killed connections, drained), the
//! GTID set is read while drained and the replica reaches it, the fence never reaches the
//! replica (its grants and lock state are the primary's from before), and `unfence` is exact.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::engine::snapshot;
use privfence::journal::{Journal, Record, JOURNAL_FORMAT};
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::{AccountName, TableName};
use privfence::promote::fence;
use privfence::sandbox::{self, Topology};
use privfence::workload::{Workload, WorkloadSpec};
use std::time::{Duration, Instant};
use support::*;

async fn count(s: &sandbox::Server, sql: &str) -> i64 {
    let mut c = s.conn().await.expect("admin");
    let n: Option<i64> = c.query_first(sql).await.expect("count");
    c.disconnect().await.ok();
    n.unwrap_or(-1)
}

async fn locked_on(s: &sandbox::Server, flavour: Flavour, user: &str) -> bool {
    let sql = match flavour {
        Flavour::MySql => format!("SELECT account_locked = 'Y' FROM mysql.user WHERE user = {}", qs(user)),
        Flavour::MariaDb => format!(
            "SELECT COALESCE(JSON_VALUE(Priv, '$.account_locked'), 'false') IN ('1', 'true') FROM mysql.global_priv WHERE user = {}",
            qs(user)
        ),
    };
    count(s, &sql).await == 1
}

async fn fence_and_unfence(flavour: Flavour) {
    let sb = pair(flavour);
    let replica = sb.replica.as_ref().expect("replica");
    let schema = format!("pff_{}", flavour.name());
    let user = format!("pff_{}", flavour.name());
    let owner = AccountName::new(&user, "%");
    let t = TableName::new(&schema, "svc_seq");
    admin_exec(
        sb,
        &[
            format!("CREATE DATABASE {}", qi(&schema)),
            format!("CREATE TABLE {} (id INT AUTO_INCREMENT PRIMARY KEY, n INT)", t.sql()),
            format!("CREATE USER {} IDENTIFIED BY {}", owner.sql(), qs(&format!("pw-{user}"))),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}", t.sql(), owner.sql()),
        ],
    )
    .await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("caught up");
    let app = Workload::spawn(WorkloadSpec {
        name: user.clone(),
        opts: mysql_async::OptsBuilder::from_opts(sb.primary.opts_as(&user, &format!("pw-{user}"))).db_name(Some(schema.clone())).into(),
        statements: vec!["INSERT INTO svc_seq (n) VALUES (1)".into()],
        interval: Duration::from_millis(10),
        pool_size: 2,
    });
    app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.expect("the owner writes");
    let (server, inv) = inventory(sb).await;
    server.close().await;
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.expect("primary");
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.expect("replica");
    let before = snapshot::read(&mut primary.server, std::slice::from_ref(&owner)).await.expect("snapshot");
    let dir = tempfile::tempdir().unwrap();
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "t".into(),
        service: "fence".into(),
        policy: "p".into(),
        tables: vec![t.clone()],
    };
    let mut j = Journal::open_or_create(&dir.path().join("fence.journal"), header).expect("journal");
    let (f, r) =
        fence::fence(&mut j, &mut primary, &inv, std::slice::from_ref(&owner), std::slice::from_ref(&t), Duration::from_secs(3)).await;
    r.expect("fence");
    assert_eq!(f.locked, vec![owner.clone()]);
    assert_eq!(f.revoked.len(), 1, "{f:?}");
    assert!(!f.killed.is_empty(), "the owner's pooled connections were killed: {f:?}");
    assert!(!f.gtid.is_empty());
    // No service write reaches the primary after the fence.
    let rows = format!("SELECT COUNT(*) FROM {}", t.sql());
    let c1 = count(&sb.primary, &rows).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&sb.primary, &rows).await, c1, "writes stopped");
    assert_eq!(primary.position().await.unwrap(), f.gtid, "nothing committed after the drained position");
    let login = mysql_async::Conn::new(sb.primary.opts_as(&user, &format!("pw-{user}"))).await;
    assert!(login.is_err(), "the owner cannot log in while fenced");
    // The replica reaches the drained position, has every row, and never saw the fence.
    assert!(rep.wait_for(&f.gtid, Duration::from_secs(30)).await.unwrap(), "the replica contains the fence's GTID set");
    assert_eq!(count(replica, &rows).await, c1, "the replica has every acknowledged row");
    assert_eq!(
        snapshot::read(&mut rep.server, std::slice::from_ref(&owner)).await.unwrap(),
        before,
        "the replica keeps the owner's grants"
    );
    assert!(!locked_on(replica, flavour, &user).await, "the replica's owner account is not locked");
    assert!(locked_on(&sb.primary, flavour, &user).await);
    // Unfence: exact, and the owner writes again.
    fence::unfence(&mut j, &mut primary, &f).await.expect("unfence");
    assert_eq!(snapshot::read(&mut primary.server, std::slice::from_ref(&owner)).await.unwrap(), before);
    assert!(!locked_on(&sb.primary, flavour, &user).await);
    let ok = app.wait_success_after(Instant::now(), Duration::from_secs(5)).await;
    let stats = app.stop().await;
    assert!(ok.is_some(), "the owner writes again after unfence: {stats:?}");
    // The fence's statements never reached the replica's binary log stream.
    let p = primary.position().await.unwrap();
    assert!(rep.wait_for(&p, Duration::from_secs(30)).await.unwrap());
    assert_eq!(snapshot::read(&mut rep.server, std::slice::from_ref(&owner)).await.unwrap(), before);
    let text = std::fs::read_to_string(dir.path().join("fence.journal")).unwrap();
    assert!(text.contains("sql_log_bin = 0") && text.contains("LOCK TABLES"), "every fence statement is journaled");
    primary.server.close().await;
    rep.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_stops_writes_without_reaching_the_replica_mariadb() {
    fence_and_unfence(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_stops_writes_without_reaching_the_replica_mysql() {
    fence_and_unfence(Flavour::MySql).await;
}

/// Fence, catch up, promote: the replica becomes a writable server of its own, the owner writes
/// there with its old grants, the service's events run again, the other apps are locked out.
async fn fence_then_promote(flavour: Flavour) {
    use privfence::promote::promotion::{self, Keep};
    let sb = privfence::sandbox::Sandbox::start(privfence::sandbox::SandboxOptions::new(flavour, Topology::PrimaryReplica))
        .await
        .expect("own pair");
    let replica = sb.replica.as_ref().expect("replica");
    let schema = "svc_db";
    let t = TableName::new(schema, "items");
    let owner = AccountName::new("svc_owner", "%");
    let other = AccountName::new("other_app", "%");
    admin_exec(
        &sb,
        &[
            format!("CREATE DATABASE {schema}"),
            format!("CREATE TABLE {} (id INT AUTO_INCREMENT PRIMARY KEY, n INT)", t.sql()),
            format!("CREATE TABLE {schema}.other (id INT PRIMARY KEY)"),
            format!("CREATE EVENT {schema}.tick ON SCHEDULE EVERY 1 HOUR DO DELETE FROM {} WHERE n < 0", t.sql()),
            format!("CREATE USER {} IDENTIFIED BY 'pw-owner'", owner.sql()),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}", t.sql(), owner.sql()),
            format!("CREATE USER {} IDENTIFIED BY 'pw-other'", other.sql()),
            format!("GRANT SELECT ON {schema}.other TO {}", other.sql()),
            format!("INSERT INTO {} (n) VALUES (1), (2)", t.sql()),
        ],
    )
    .await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("caught up");
    let (server, inv) = inventory(&sb).await;
    let tool = server.current_user.clone();
    server.close().await;
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let snap = snapshot::read(&mut primary.server, std::slice::from_ref(&owner)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "t".into(),
        service: "svc".into(),
        policy: "p".into(),
        tables: vec![t.clone()],
    };
    let mut j = Journal::open_or_create(&dir.path().join("p.journal"), header).unwrap();
    let (f, r) =
        fence::fence(&mut j, &mut primary, &inv, std::slice::from_ref(&owner), std::slice::from_ref(&t), Duration::from_secs(3)).await;
    r.unwrap();
    assert!(rep.wait_for(&f.gtid, Duration::from_secs(30)).await.unwrap());
    let (_, rinv) = {
        let mut s = privfence::db::Server::connect(&admin_spec(replica)).await.unwrap();
        let inv = privfence::inventory::take(&mut s).await.unwrap();
        s.close().await;
        ((), inv)
    };
    let exempt = |a: &AccountName| a.user == "root";
    let keep = Keep { owners: std::slice::from_ref(&owner), exempt: &exempt, tool: &tool };
    let p = promotion::promote(&mut j, &mut rep, &rinv, std::slice::from_ref(&t), &keep, &snap).await.expect("promote");
    assert_eq!(p.locked, vec![other.clone()], "{p:?}");
    assert_eq!(p.events_enabled, vec![TableName::new(schema, "tick").to_string()], "{p:?}");
    assert!(rep.replica_health().await.unwrap().is_none(), "no longer a replica");
    assert_eq!(count(replica, "SELECT @@GLOBAL.read_only").await, 0);
    let mut c = mysql_async::Conn::new(replica.opts_as("svc_owner", "pw-owner")).await.expect("the owner logs in on the new server");
    c.query_drop(format!("INSERT INTO {} (n) VALUES (3)", t.sql())).await.expect("and writes");
    c.disconnect().await.ok();
    assert!(mysql_async::Conn::new(replica.opts_as("other_app", "pw-other")).await.is_err(), "other apps are locked out");
    // Running it again (a crash after the point of no return) is harmless.
    let again = promotion::promote(&mut j, &mut rep, &rinv, std::slice::from_ref(&t), &keep, &snap).await.expect("idempotent");
    assert_eq!(again.locked.len(), 1);
    primary.server.close().await;
    rep.server.close().await;
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_then_promote_mariadb() {
    fence_then_promote(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_then_promote_mysql() {
    fence_then_promote(Flavour::MySql).await;
}

/// Step 3: an account missing on the replica is created there from the primary's definition,
/// without binary logging (no errant GTID) and without its hash reaching the journal; the
/// password works on the replica and the grants are equal.
async fn owner_on_replica(flavour: Flavour) {
    use privfence::promote::account::{self, OnReplica};
    let sb = pair(flavour);
    let replica = sb.replica.as_ref().expect("replica");
    let user = format!("pfa_{}", flavour.name());
    let owner = AccountName::new(&user, "%");
    let schema = format!("pfa_{}", flavour.name());
    admin_exec(sb, &[format!("CREATE DATABASE {}", qi(&schema)), format!("CREATE TABLE {}.t (id INT PRIMARY KEY)", qi(&schema))]).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    // Created on the primary only: binary logging off for these statements.
    let mut c = sb.primary.conn().await.unwrap();
    c.query_drop("SET SESSION sql_log_bin = 0").await.unwrap();
    c.query_drop(format!("CREATE USER {} IDENTIFIED BY 'pw-secret-owner'", owner.sql())).await.unwrap();
    c.query_drop(format!("GRANT SELECT, INSERT ON {}.t TO {}", qi(&schema), owner.sql())).await.unwrap();
    c.disconnect().await.ok();
    let mut primary = Node::connect(&admin_spec(&sb.primary), "primary").await.unwrap();
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let header =
        Record::Header { format: JOURNAL_FORMAT, tool_version: "t".into(), service: "a".into(), policy: "p".into(), tables: vec![] };
    let mut j = Journal::open_or_create(&dir.path().join("a.journal"), header).unwrap();
    let r = account::ensure(&mut j, &mut primary, &mut rep, std::slice::from_ref(&owner)).await.expect("ensure");
    assert_eq!(r, vec![OnReplica::Created]);
    // No transaction of the replica's own: its GTIDs all come from the primary.
    let own = match flavour {
        Flavour::MySql => rep.identity.clone(),
        Flavour::MariaDb => format!("-{}-", rep.identity.trim_start_matches("server_id=")),
    };
    let pos = rep.position().await.unwrap();
    assert!(!pos.contains(&own), "no errant GTID on the replica: {pos} contains {own}");
    let mut oc = mysql_async::Conn::new(replica.opts_as(&user, "pw-secret-owner")).await.expect("the password works on the replica");
    oc.query_drop(format!("INSERT INTO {}.t VALUES (1)", qi(&schema)))
        .await
        .expect_err("read_only replica refuses the write, but the grant is there");
    let n: Option<i64> = oc.query_first(format!("SELECT COUNT(*) FROM {}.t", qi(&schema))).await.expect("SELECT granted");
    assert_eq!(n, Some(0));
    oc.disconnect().await.ok();
    let text = std::fs::read_to_string(dir.path().join("a.journal")).unwrap();
    let hash = regex::Regex::new(r"\*[0-9A-Fa-f]{40}|\$A\$0|0x[0-9A-Fa-f]{20,}").unwrap();
    assert!(!hash.is_match(&text), "no hash in the journal: {text}");
    assert!(text.contains("IDENTIFIED ..."), "the create statement is journaled, redacted");
    // Present the second time.
    assert_eq!(account::ensure(&mut j, &mut primary, &mut rep, std::slice::from_ref(&owner)).await.unwrap(), vec![OnReplica::Present]);
    primary.server.close().await;
    rep.server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_created_on_the_replica_without_errant_gtids_mariadb() {
    owner_on_replica(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_created_on_the_replica_without_errant_gtids_mysql() {
    owner_on_replica(Flavour::MySql).await;
}
