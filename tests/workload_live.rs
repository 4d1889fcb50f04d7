//! The simulated application against real servers, both flavours: it counts successes, a revoke
//! opens an outage, a re-grant plus `KILL` of its connections closes it, and a server-side
//! `KILL` of a pooled connection (idle or in use) is survived with a fresh connection. Also the
//! reason the workload exists: a pooled connection with the service schema as default keeps a
//! schema grant after it is revoked, until it reconnects (`mysql-facts.md` §3).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use mysql_async::{Opts, OptsBuilder};
use privfence::db::Flavour;
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::sandbox::Sandbox;
use privfence::workload::{Workload, WorkloadSpec};
use std::time::{Duration, Instant};
use support::*;

/// One test's schema and account.
struct App {
    schema: String,
    user: String,
}

impl App {
    /// Creates schema `pfwl_<tag>` with tables `users` and `orders`, and account `pfwl_<tag>`@'%'
    /// holding `grants` (`{s}` stands for the quoted schema).
    async fn create(sb: &Sandbox, tag: &str, grants: &[&str]) -> App {
        let app = App { schema: format!("pfwl_{tag}"), user: format!("pfwl_{tag}") };
        let s = qi(&app.schema);
        let mut sql = vec![
            format!("CREATE DATABASE {s}"),
            format!("CREATE TABLE {s}.users (id INT PRIMARY KEY)"),
            format!("CREATE TABLE {s}.orders (id INT PRIMARY KEY)"),
            format!("INSERT INTO {s}.users VALUES (1), (2)"),
            format!("CREATE USER {} IDENTIFIED BY {}", app.account(), qs(&app.password())),
        ];
        sql.extend(grants.iter().map(|g| format!("GRANT {} TO {}", g.replace("{s}", &s), app.account())));
        admin_exec(sb, &sql).await;
        app
    }

    fn account(&self) -> String {
        format!("{}@'%'", qs(&self.user))
    }

    fn password(&self) -> String {
        format!("pw-{}", self.user)
    }

    /// The pool's options: the service schema as default database, as a DSN would set it.
    fn opts(&self, sb: &Sandbox) -> Opts {
        OptsBuilder::from_opts(sb.primary.opts_as(&self.user, &self.password())).db_name(Some(self.schema.clone())).into()
    }

    fn spawn(&self, sb: &Sandbox, statements: &[&str], pool_size: usize) -> Workload {
        Workload::spawn(WorkloadSpec {
            name: self.user.clone(),
            opts: self.opts(sb),
            statements: statements.iter().map(|s| s.to_string()).collect(),
            interval: Duration::from_millis(25),
            pool_size,
        })
    }

    /// Kills every connection of the account; returns how many.
    async fn kill_all(&self, sb: &Sandbox) -> usize {
        let mut c = sb.primary.conn().await.expect("admin connection");
        let ids: Vec<u64> =
            c.query(format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {}", qs(&self.user))).await.expect("processlist");
        for id in &ids {
            kill(&mut c, *id).await;
        }
        c.disconnect().await.ok();
        ids.len()
    }
}

/// `KILL CONNECTION id`; the connection may have ended meanwhile (1094).
async fn kill(c: &mut mysql_async::Conn, id: u64) {
    match c.query_drop(format!("KILL CONNECTION {id}")).await {
        Ok(()) => {}
        Err(mysql_async::Error::Server(e)) if e.code == 1094 => {}
        Err(e) => panic!("KILL CONNECTION {id}: {e}"),
    }
}

fn tag(flavour: Flavour, name: &str) -> String {
    format!("{}_{name}", if flavour == Flavour::MariaDb { "m" } else { "y" })
}

/// Waits for `n` successes; panics with the stats otherwise.
async fn wait_ok(w: &Workload, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while w.stats().ok < n {
        assert!(Instant::now() < deadline, "{}: fewer than {n} successes within {within:?}: {:?}", w.name(), w.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn counts_successes(flavour: Flavour) {
    let sb = sandbox(flavour);
    let app = App::create(sb, &tag(flavour, "ok"), &["SELECT ON {s}.*"]).await;
    let w = app.spawn(sb, &["SELECT COUNT(*) FROM users", "SELECT id FROM orders"], 2);
    wait_ok(&w, 20, Duration::from_secs(10)).await;
    let started = Instant::now();
    assert!(w.wait_success_after(started, Duration::from_secs(2)).await.is_some_and(|t| t >= started));
    let stats = w.stop().await;
    assert_eq!((stats.failed, stats.denied), (0, 0), "{stats:?}");
    assert!(stats.outages.is_empty() && stats.last_error.is_none(), "{stats:?}");
    assert!((1..=2).contains(&stats.connection_ids.len()), "a pool of 2 never reconnects here: {stats:?}");
    // At 25 ms between iterations, two workers cannot have run much more than 2 x 40 x 2 per second.
    let after = Instant::now();
    assert!(stats.ok < 1000, "the workload hammers the server: {stats:?} ({:?})", after - started);
    assert_eq!(app.kill_all(sb).await, 0, "stop closes the pool's connections");
}

async fn revoke_opens_an_outage_and_restore_closes_it(flavour: Flavour) {
    let sb = sandbox(flavour);
    let app = App::create(sb, &tag(flavour, "revoke"), &["SELECT ON {s}.users", "SELECT ON {s}.orders"]).await;
    let w = app.spawn(sb, &["SELECT COUNT(*) FROM users", "SELECT COUNT(*) FROM orders"], 2);
    wait_ok(&w, 4, Duration::from_secs(10)).await;
    let before = w.stats();
    let conns = before.connection_ids.clone();

    let revoked_at = Instant::now();
    admin_exec(sb, &[format!("REVOKE SELECT ON {}.users FROM {}", qi(&app.schema), app.account())]).await;
    let denied = w.wait_denied(Duration::from_secs(5)).await.expect("a table revoke bites the next statement");
    assert!(denied >= revoked_at);
    let s = w.stats();
    assert!(s.denied > 0 && s.open_outage().is_some(), "{s:?}");
    assert_eq!(s.last_error.as_ref().map(|e| e.0), Some(1142), "{s:?}");
    assert_eq!(s.connection_ids, conns, "a privilege error keeps the connection: {s:?}");

    admin_exec(sb, &[format!("GRANT SELECT ON {}.users TO {}", qi(&app.schema), app.account())]).await;
    assert!(app.kill_all(sb).await >= 1);
    let killed_at = Instant::now();
    let back = w.wait_success_after(killed_at, Duration::from_secs(2)).await;
    assert!(back.is_some(), "no success within 2 s of the restore: {:?}", w.stats());
    wait_until_closed(&w).await;
    let stats = w.stop().await;
    assert_eq!(stats.outages.len(), 1, "{stats:?}");
    let o = &stats.outages[0];
    assert!(o.recovered.is_some_and(|r| r > o.first_denied) && o.failed_statements >= 1, "{stats:?}");
    assert!(stats.connection_ids.len() > conns.len(), "the killed connections were replaced: {stats:?}");
}

/// The outage closes at the first success after the restore, which a denied statement in the
/// same iteration may still precede; give it a moment.
async fn wait_until_closed(w: &Workload) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while w.stats().open_outage().is_some() {
        assert!(Instant::now() < deadline, "the outage stays open: {:?}", w.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The pool keeps connections across privilege errors and does not reset them, so a schema
/// grant revoked under a pooled connection whose default database is that schema keeps working
/// until the connection is killed.
async fn pooled_connections_keep_a_revoked_schema_grant(flavour: Flavour) {
    let sb = sandbox(flavour);
    let app = App::create(sb, &tag(flavour, "cached"), &["SELECT ON {s}.*"]).await;
    let s = qi(&app.schema);
    let w = app.spawn(sb, &["SELECT COUNT(*) FROM users"], 1);
    wait_ok(&w, 3, Duration::from_secs(10)).await;
    // The cut: keep orders, lose users.
    admin_exec(sb, &[format!("GRANT SELECT ON {s}.orders TO {}", app.account()), format!("REVOKE SELECT ON {s}.* FROM {}", app.account())])
        .await;
    let cut_at = Instant::now();
    assert!(w.wait_success_after(cut_at, Duration::from_secs(2)).await.is_some(), "{:?}", w.stats());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(w.stats().denied, 0, "the pooled connection still has its cached schema grant: {:?}", w.stats());

    assert_eq!(app.kill_all(sb).await, 1);
    assert!(w.wait_denied(Duration::from_secs(5)).await.is_some(), "a fresh connection is denied: {:?}", w.stats());
    let stats = w.stop().await;
    assert_eq!(stats.connection_ids.len(), 2, "{stats:?}");
    assert_eq!(stats.last_error.as_ref().map(|e| e.0), Some(1142), "{stats:?}");
}

/// `KILL CONNECTION` of an idle pooled connection, then of one busy in a statement: the next
/// iteration runs on a fresh connection.
async fn survives_server_side_kill(flavour: Flavour) {
    let sb = sandbox(flavour);
    let app = App::create(sb, &tag(flavour, "kill"), &["SELECT ON {s}.*"]).await;

    let idle = app.spawn(sb, &["SELECT COUNT(*) FROM users"], 1);
    wait_ok(&idle, 3, Duration::from_secs(10)).await;
    assert_eq!(app.kill_all(sb).await, 1);
    let killed_at = Instant::now();
    assert!(idle.wait_success_after(killed_at, Duration::from_secs(2)).await.is_some(), "{:?}", idle.stats());
    let stats = idle.stop().await;
    // Seen on both flavours: the pool checks an idle connection's socket before lending it, so
    // the killed one is never handed out.
    assert_eq!(stats.connection_ids.len(), 2, "{stats:?}");
    assert!(stats.failed == 0 && stats.outages.is_empty(), "{stats:?}");

    let busy = app.spawn(sb, &["SELECT SLEEP(0.4)", "SELECT COUNT(*) FROM users"], 1);
    wait_ok(&busy, 2, Duration::from_secs(10)).await;
    // Kill it inside the sleep.
    let mut admin = sb.primary.conn().await.expect("admin connection");
    let find = format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {} AND INFO LIKE 'SELECT SLEEP%'", qs(&app.user));
    let mut busy_id: Option<u64> = None;
    for _ in 0..100 {
        busy_id = admin.query_first(&find).await.unwrap();
        if busy_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy_id = busy_id.expect("the workload is inside SELECT SLEEP");
    kill(&mut admin, busy_id).await;
    admin.disconnect().await.ok();
    let killed_at = Instant::now();
    assert!(busy.wait_success_after(killed_at, Duration::from_secs(3)).await.is_some(), "{:?}", busy.stats());
    let stats = busy.stop().await;
    assert!(stats.connection_ids.len() >= 2 && !stats.connection_ids[1..].contains(&(busy_id as u32)), "{stats:?}");
    assert!(stats.failed >= 1 && stats.denied == 0 && stats.outages.is_empty(), "{stats:?}");
}

macro_rules! both_flavours {
    ($($name:ident),* $(,)?) => {
        mod mariadb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(privfence::db::Flavour::MariaDb).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(privfence::db::Flavour::MySql).await;
                }
            )*
        }
    };
}

both_flavours!(
    counts_successes,
    revoke_opens_an_outage_and_restore_closes_it,
    pooled_connections_keep_a_revoked_schema_grant,
    survives_server_side_kill,
);
