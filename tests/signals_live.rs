//! The signal monitor against real servers, both flavours: privilege errors, collateral damage
//! through definer objects, activity of post-cut connections, application logs, poll latency,
//! and (on a sandbox of their own) counter resets, a restart, and the sources the wider
//! settings open up. Each test works in its own schema and accounts.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use privfence::db::{Flavour, Server};
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::TableName;
use privfence::sandbox::{Role, Sandbox, SandboxOptions, Topology};
use privfence::signals::{wanted_settings, Alarm, AlarmKind, Monitor, Poll, SignalFiles, WatchTarget};
use std::time::{Duration, Instant};
use support::*;

/// One test's schema (tables `t` with two rows and `e`, empty) and account on one server.
struct Scene {
    flavour: Flavour,
    server: privfence::sandbox::Server,
    schema: String,
    user: String,
}

impl Scene {
    /// Creates the schema and the account (`SELECT` on the whole schema, as before a cut).
    async fn new(sb: &Sandbox, tag: &str) -> Scene {
        let s = Scene { flavour: sb.flavour, server: sb.primary.clone(), schema: format!("sg_{tag}"), user: format!("sg_{tag}") };
        let q = qi(&s.schema);
        admin_exec(
            sb,
            &[
                format!("DROP DATABASE IF EXISTS {q}"),
                format!("CREATE DATABASE {q}"),
                format!("CREATE TABLE {q}.`t` (id INT PRIMARY KEY, v VARCHAR(20))"),
                format!("CREATE TABLE {q}.`e` (id INT PRIMARY KEY)"),
                format!("INSERT INTO {q}.`t` VALUES (1, 'a'), (2, 'b')"),
                format!("DROP USER IF EXISTS {}", s.account()),
                format!("CREATE USER {} IDENTIFIED BY {}", s.account(), qs(&s.password(&s.user))),
                format!("GRANT SELECT ON {q}.* TO {}", s.account()),
            ],
        )
        .await;
        s
    }

    fn account(&self) -> String {
        format!("{}@'%'", qs(&self.user))
    }

    fn password(&self, user: &str) -> String {
        format!("pw-{user}")
    }

    fn t(&self, name: &str) -> TableName {
        TableName::new(&self.schema, name)
    }

    /// The cut: the schema grant becomes a grant on `e` only.
    fn cut(&self) -> Vec<String> {
        vec![
            format!("GRANT SELECT ON {} TO {}", self.t("e").sql(), self.account()),
            format!("REVOKE SELECT ON {}.* FROM {}", qi(&self.schema), self.account()),
        ]
    }

    fn target(&self) -> WatchTarget {
        WatchTarget { user: self.user.clone(), tables: vec![self.t("t")], dependents: Vec::new(), since_connection: 0 }
    }

    /// The sandbox's sql_errlog file (MariaDB), as a session on the same machine passes it.
    fn files(&self) -> SignalFiles {
        SignalFiles { sql_errlog: self.server.sql_errlog.clone(), ..Default::default() }
    }

    async fn monitor(&self, target: WatchTarget, files: SignalFiles) -> Monitor {
        Monitor::start(&admin_spec(&self.server), "primary", target, files)
            .await
            .unwrap_or_else(|e| panic!("{}: monitor start: {e}\n{}", self.flavour, error_log_tail(&self.server)))
    }

    /// A connection as `user` (password `pw-USER`), with an optional default schema.
    async fn login_as(&self, user: &str, db: Option<&str>) -> Conn {
        let opts = OptsBuilder::from_opts(self.server.opts_as(user, &self.password(user))).db_name(db);
        Conn::new(opts).await.unwrap_or_else(|e| panic!("{}: login as {user}: {e}", self.flavour))
    }

    async fn login(&self, db: Option<&str>) -> Conn {
        self.login_as(&self.user, db).await
    }
}

/// Runs a statement that must fail with `code`.
async fn denied(c: &mut Conn, sql: &str, code: u16) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) if e.code == code => {}
        other => panic!("{sql}: expected error {code}, got {other:?}"),
    }
}

async fn poll(m: &mut Monitor) -> Poll {
    m.poll().await.unwrap_or_else(|e| panic!("{} poll: {e}", m.name()))
}

fn of_kind(p: &Poll, kind: AlarmKind) -> Vec<&Alarm> {
    p.alarms.iter().filter(|a| a.kind == kind).collect()
}

/// The watermark a session takes after the cut: the id of a fresh connection.
async fn watermark(s: &Scene) -> u64 {
    let mut c = s.server.conn().await.expect("admin connection");
    let id: u64 = c.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    c.disconnect().await.ok();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_select_raises_one_privilege_error() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "deny").await;
        let mut m = s.monitor(s.target(), s.files()).await;
        // MariaDB on a remote server: no sql_errlog, the SQL sources alone.
        let mut sql_only = s.monitor(s.target(), SignalFiles::default()).await;
        admin_exec(sb, &s.cut()).await;
        assert!(poll(&mut m).await.alarms.is_empty(), "{flavour}: the cut itself raises nothing");
        poll(&mut sql_only).await;

        let mut c = s.login(None).await;
        denied(&mut c, &format!("SELECT * FROM {}", s.t("t").sql()), 1142).await;
        let p = poll(&mut m).await;
        let errs = of_kind(&p, AlarmKind::PrivilegeError);
        assert_eq!(errs.len(), 1, "{flavour}: exactly one alarm: {:#?}", p.alarms);
        assert_eq!(p.alarms.len(), 1, "{flavour}: {:#?}", p.alarms);
        let a = errs[0];
        assert_eq!(a.error, Some(1142), "{flavour}: {a:#?}");
        assert_eq!(a.object.as_deref(), Some(s.t("t").sql().as_str()), "{flavour}: the table is named: {a:#?}");
        assert_eq!(a.account.as_deref(), Some(format!("{}@'localhost'", qs(&s.user)).as_str()), "{flavour}: {a:#?}");
        assert!(a.statement.as_deref().is_some_and(|t| t.contains("SELECT")), "{flavour}: statement for the screen: {a:#?}");
        let json = serde_json::to_string(a).unwrap();
        assert!(!json.contains("SELECT *") && !a.cited.contains("SELECT *"), "{flavour}: no statement text in {json}");
        assert_eq!(p.activity.errors, 1);

        let q = poll(&mut sql_only).await;
        assert_eq!(of_kind(&q, AlarmKind::PrivilegeError).len(), 1, "{flavour}: SQL sources alone: {:#?}", q.alarms);
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let later = poll(&mut m).await;
            assert!(later.alarms.is_empty(), "{flavour}: no late duplicate: {:#?}", later.alarms);
            assert!(poll(&mut sql_only).await.alarms.is_empty(), "{flavour}: no late duplicate (SQL only)");
        }

        // The same from a connection that is gone before the poll (history rows vanish with it).
        let mut short = s.login(None).await;
        denied(&mut short, &format!("SELECT v FROM {}", s.t("t").sql()), 1142).await;
        short.disconnect().await.unwrap();
        let p = poll(&mut m).await;
        assert_eq!(of_kind(&p, AlarmKind::PrivilegeError).len(), 1, "{flavour}: closed connection: {:#?}", p.alarms);
        assert_eq!(p.activity.errors, 2);
        c.disconnect().await.ok();
        m.close().await;
        sql_only.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_use_is_seen() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "use").await;
        let other = format!("{}_x", s.schema);
        admin_exec(sb, &[format!("DROP DATABASE IF EXISTS {}", qi(&other)), format!("CREATE DATABASE {}", qi(&other))]).await;
        let mut m = s.monitor(s.target(), s.files()).await;
        let mut c = s.login(None).await;
        denied(&mut c, &format!("USE {}", qi(&other)), 1044).await;
        let p = poll(&mut m).await;
        let errs = of_kind(&p, AlarmKind::PrivilegeError);
        assert_eq!(errs.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(errs[0].error, Some(1044), "{flavour}: {:#?}", errs[0]);
        assert_eq!(errs[0].object.as_deref(), Some(qi(&other).as_str()), "{flavour}: {:#?}", errs[0]);

        // A refused login is an alarm (a cut can cause one: a role taken away, a default
        // database lost), once whichever sources see it.
        let wrong = OptsBuilder::from_opts(s.server.opts_as(&s.user, "wrong password"));
        assert!(Conn::new(wrong).await.is_err());
        let p = poll(&mut m).await;
        let logins = of_kind(&p, AlarmKind::LoginDenied);
        assert_eq!(logins.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(p.alarms.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(logins[0].error, Some(1045), "{flavour}: {:#?}", logins[0]);
        assert_eq!(p.activity.failed_logins, 1, "{flavour}: {:#?}", p.activity);
        assert_eq!(p.activity.statements, 0, "{flavour}: a refused login is no activity: {:#?}", p.activity);
        c.disconnect().await.ok();
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_through_definer_objects() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "coll").await;
        let other = format!("{}_o", s.user);
        let o = format!("{}@'%'", qs(&other));
        let (v, f) = (s.t("v"), s.t("f"));
        admin_exec(
            sb,
            &[
                format!("DROP USER IF EXISTS {o}"),
                format!("CREATE USER {o} IDENTIFIED BY {}", qs(&s.password(&other))),
                format!("CREATE DEFINER = {} SQL SECURITY DEFINER VIEW {} AS SELECT id FROM {}", s.account(), v.sql(), s.t("t").sql()),
                format!(
                    "CREATE DEFINER = {} FUNCTION {}() RETURNS INT READS SQL DATA SQL SECURITY DEFINER RETURN (SELECT COUNT(*) FROM {})",
                    s.account(),
                    f.sql(),
                    s.t("t").sql()
                ),
                format!("GRANT SELECT ON {} TO {o}", v.sql()),
                format!("GRANT EXECUTE ON FUNCTION {} TO {o}", f.sql()),
                // MariaDB checks the definer's EXECUTE too (seen: 1370 naming the definer).
                format!("GRANT EXECUTE ON FUNCTION {} TO {}", f.sql(), s.account()),
            ],
        )
        .await;
        let mut target = s.target();
        target.dependents = vec![v.clone(), f.clone()];
        let mut m = s.monitor(target, s.files()).await;
        admin_exec(sb, &s.cut()).await;
        let mut c = s.login_as(&other, None).await;
        denied(&mut c, &format!("SELECT * FROM {}", v.sql()), 1356).await;
        let p = poll(&mut m).await;
        let coll = of_kind(&p, AlarmKind::Collateral);
        assert!(!coll.is_empty(), "{flavour}: the view's caller is collateral damage: {:#?}", p.alarms);
        assert!(coll.iter().any(|a| a.error == Some(1356) && a.object.as_deref() == Some(v.sql().as_str())), "{flavour}: {coll:#?}");
        assert!(of_kind(&p, AlarmKind::PrivilegeError).is_empty(), "{flavour}: not the account's own error: {:#?}", p.alarms);

        let r = c.query_drop(format!("SELECT {}()", f.sql())).await;
        assert!(matches!(&r, Err(mysql_async::Error::Server(e)) if e.code == 1142), "{flavour}: {r:?}");
        let p = poll(&mut m).await;
        let coll = of_kind(&p, AlarmKind::Collateral);
        assert!(!coll.is_empty(), "{flavour}: the message names the definer: {:#?}", p.alarms);
        assert!(of_kind(&p, AlarmKind::PrivilegeError).is_empty(), "{flavour}: {:#?}", p.alarms);
        c.disconnect().await.ok();
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_and_pre_cut_connections_are_not_activity() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "act").await;
        let mut pre = s.login(Some(&s.schema)).await;
        let mut target = s.target();
        target.since_connection = u64::MAX;
        let mut m = s.monitor(target, s.files()).await;
        let mark = watermark(&s).await;
        m.set_since_connection(mark);
        let mut post = s.login(Some(&s.schema)).await;
        for sql in ["SELECT 1", "SET @a = 1", "SELECT @@version", "SELECT 1 FROM DUAL", "SELECT NOW()"] {
            post.query_drop(sql).await.unwrap();
        }
        post.ping().await.unwrap();
        for _ in 0..3 {
            pre.query_drop("SELECT * FROM t").await.unwrap();
        }
        let p = poll(&mut m).await;
        assert!(p.alarms.is_empty(), "{flavour}: {:#?}", p.alarms);
        assert_eq!(p.activity.statements, 0, "{flavour}: pings, SET and pre-cut reads are not activity: {:#?}", p.activity);
        assert_eq!(p.activity.connections, 2, "{flavour}");

        assert_eq!(p.activity.unattributed, 0, "{flavour}: {:#?}", p.activity);

        post.query_drop("SELECT * FROM t").await.unwrap();
        let p = poll(&mut m).await;
        // MySQL's statement history is on by default: the read is proven. MariaDB's is off by
        // default: the counters see it, unattributed (a session turns the history on).
        let (proven, counted) = if flavour == Flavour::MySql { (1, 0) } else { (0, 1) };
        assert_eq!(
            (p.activity.statements, p.activity.unattributed),
            (proven, counted),
            "{flavour}: one read from a post-cut connection: {:#?}",
            p.activity
        );
        let cited = if flavour == Flavour::MySql { &p.activity.cited } else { &p.activity.unattributed_cited };
        assert!(!cited.is_empty() && cited.iter().all(|c| !c.contains("SELECT *")), "{flavour}: {:#?}", p.activity);

        // A connection that opens and closes between two polls is seen by the counters only.
        let mut short = s.login(Some(&s.schema)).await;
        short.query_drop("SELECT * FROM e").await.unwrap();
        short.disconnect().await.unwrap();
        let p = poll(&mut m).await;
        assert_eq!(p.activity.statements, proven, "{flavour}: short-lived connection: {:#?}", p.activity);
        assert!(p.activity.unattributed > counted, "{flavour}: short-lived connection: {:#?}", p.activity);
        pre.disconnect().await.ok();
        post.disconnect().await.ok();
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_log_lines_raise_alarms() {
    let pattern = regex::Regex::new(r"denied|ERROR").unwrap();
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "app").await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "ERROR before the start\n").unwrap();
        let files = SignalFiles { app_logs: vec![(log.clone(), pattern.clone())], ..Default::default() };
        let mut m = s.monitor(s.target(), files).await;
        assert!(m.sources().iter().any(|src| src.name.contains("app.log")), "{flavour}: {:#?}", m.sources());
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"GET /orders 200\nERROR SELECT command denied for customer alice@example.com\nhalf a li").unwrap();
        let p = poll(&mut m).await;
        let apps = of_kind(&p, AlarmKind::AppLog);
        assert_eq!(apps.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(apps[0].cited, "app.log line 3 matched /denied|ERROR/");
        assert!(apps[0].statement.as_deref().unwrap().contains("alice"));
        assert!(!serde_json::to_string(apps[0]).unwrap().contains("alice"), "{flavour}: the line never leaves the screen");
        f.write_all(b"ne with ERROR\n").unwrap();
        let p = poll(&mut m).await;
        assert_eq!(of_kind(&p, AlarmKind::AppLog).len(), 1, "{flavour}: the completed line: {:#?}", p.alarms);
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn poll_latency() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "lat").await;
        let mut m = s.monitor(s.target(), s.files()).await;
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(s.login(Some(&s.schema)).await);
        }
        let mut took = Vec::new();
        for i in 0..40 {
            conns[i % 4].query_drop("SELECT * FROM t").await.unwrap();
            let started = Instant::now();
            poll(&mut m).await;
            took.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.sort();
        let (median, p90, max) = (took[took.len() / 2], took[took.len() * 9 / 10], took[took.len() - 1]);
        eprintln!("{flavour} poll latency over {} polls: median {median:?}, p90 {p90:?}, max {max:?}", took.len());
        for src in m.sources() {
            eprintln!("  {flavour} source {} (available: {}): blind spots {:?}", src.name, src.available, src.blind_spots);
        }
        assert!(median < Duration::from_millis(100), "{flavour}: median poll {median:?}");
        for c in conns {
            c.disconnect().await.ok();
        }
        m.close().await;
    }
}

/// On a sandbox of its own (it truncates counters and restarts the server): the wider settings,
/// what they add, counter resets, and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_counter_reset_and_restart() {
    for flavour in FLAVOURS {
        let mut sb = Sandbox::start(SandboxOptions::new(flavour, Topology::Single))
            .await
            .unwrap_or_else(|e| panic!("{flavour}: a sandbox of its own: {e}"));
        let s = Scene::new(&sb, "own").await;
        let spec = admin_spec(&sb.primary);
        let mut server = Server::connect(&spec).await.unwrap();
        let wanted = wanted_settings(&mut server).await.unwrap();
        let names: Vec<String> = wanted.iter().map(|w| w.name()).collect();
        let expected: &[&str] = match flavour {
            // MariaDB 10.11 ships with every statement consumer off.
            Flavour::MariaDb => &["events_statements_current", "events_statements_history"],
            Flavour::MySql => &["events_statements_history_long"],
        };
        for e in expected {
            assert!(names.iter().any(|n| n.ends_with(e)), "{flavour}: {e} wanted: {names:?}");
        }
        admin_exec(&sb, &wanted.iter().map(|w| w.enable_sql()).collect::<Vec<_>>()).await;
        assert!(wanted_settings(&mut server).await.unwrap().is_empty(), "{flavour}: nothing more to want");
        server.close().await;

        let other = format!("{}_o", s.user);
        let v = s.t("v");
        admin_exec(
            &sb,
            &[
                format!("CREATE USER {} IDENTIFIED BY {}", qs(&other), qs(&s.password(&other))),
                format!("CREATE DEFINER = {} SQL SECURITY DEFINER VIEW {} AS SELECT id FROM {}", s.account(), v.sql(), s.t("t").sql()),
                format!("GRANT SELECT ON {} TO {}", v.sql(), qs(&other)),
            ],
        )
        .await;
        let mut target = s.target();
        target.dependents = vec![v.clone()];
        let mut m = s.monitor(target, SignalFiles::default()).await;
        let history = m.sources().iter().find(|src| src.name.contains("events_statements_history")).unwrap();
        assert!(history.available, "{flavour}: {history:#?}");
        admin_exec(&sb, &s.cut()).await;

        // The statement history alone names the table and the digest (no sql_errlog here).
        let mut c = s.login(None).await;
        denied(&mut c, &format!("SELECT * FROM {}", s.t("t").sql()), 1142).await;
        let p = poll(&mut m).await;
        let errs = of_kind(&p, AlarmKind::PrivilegeError);
        assert_eq!(errs.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(errs[0].object.as_deref(), Some(s.t("t").sql().as_str()), "{flavour}: {:#?}", errs[0]);
        assert!(errs[0].digest.is_some() && errs[0].source.contains("events_statements_history"), "{flavour}: {:#?}", errs[0]);
        c.disconnect().await.unwrap();

        if flavour == Flavour::MySql {
            // history_long keeps the rows of a connection that closed before the poll.
            let mut o = s.login_as(&other, None).await;
            denied(&mut o, &format!("SELECT * FROM {}", v.sql()), 1356).await;
            o.disconnect().await.unwrap();
            let p = poll(&mut m).await;
            assert!(of_kind(&p, AlarmKind::Collateral).iter().any(|a| a.error == Some(1356)), "{flavour}: {:#?}", p.alarms);
        }
        assert!(poll(&mut m).await.alarms.is_empty());

        let reset = match flavour {
            Flavour::MySql => "TRUNCATE performance_schema.events_errors_summary_by_account_by_error",
            // The closed connection's Access_denied_errors live in the account's aggregate.
            Flavour::MariaDb => "TRUNCATE performance_schema.status_by_account",
        };
        admin_exec(&sb, &[reset.to_string()]).await;
        let p = poll(&mut m).await;
        assert_eq!(of_kind(&p, AlarmKind::CounterReset).len(), 1, "{flavour}: {:#?}", p.alarms);

        // While the server is down a poll fails (the session counts failures as a blind
        // monitor); the first poll after it is back reports the restart.
        sb.stop_server(Role::Primary).unwrap_or_else(|e| panic!("{flavour}: stop: {e}"));
        assert!(m.poll().await.is_err(), "{flavour}: a stopped server cannot be polled");
        sb.start_server(Role::Primary).await.unwrap_or_else(|e| panic!("{flavour}: start: {e}"));
        let p = poll(&mut m).await;
        let restarts = of_kind(&p, AlarmKind::Restart);
        assert_eq!(restarts.len(), 1, "{flavour}: {:#?}", p.alarms);
        assert_eq!(restarts[0].source, "Uptime");
        let later = poll(&mut m).await;
        assert!(later.alarms.is_empty(), "{flavour}: the restart is reported once: {:#?}", later.alarms);
        m.close().await;
        sb.destroy().unwrap_or_else(|e| panic!("{flavour}: destroy: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_account_is_a_blind_spot() {
    for flavour in FLAVOURS {
        let sb = sandbox(flavour);
        let s = Scene::new(sb, "actor").await;
        let row = format!("('%', {}, '%', 'NO', 'NO')", qs(&s.user));
        let delete = format!("DELETE FROM performance_schema.setup_actors WHERE USER = {}", qs(&s.user));
        admin_exec(
            sb,
            &[delete.clone(), format!("INSERT INTO performance_schema.setup_actors (HOST, USER, ROLE, ENABLED, HISTORY) VALUES {row}")],
        )
        .await;
        let mut m = s.monitor(s.target(), SignalFiles::default()).await;
        let said = |m: &Monitor, what: &str| m.sources().iter().any(|src| src.blind_spots.iter().any(|b| b.contains(what)));
        assert!(said(&m, "setup_actors (%, sg_actor) disables instrumentation"), "{flavour}: {:#?}", m.sources());
        let mut c = s.login(None).await;
        c.query_drop("SELECT 1").await.unwrap();
        let p = poll(&mut m).await;
        assert_eq!(p.activity.connections, 1, "{flavour}: the connection is still listed");
        assert!(said(&m, "has no instrumentation (setup_actors)"), "{flavour}: {:#?}", m.sources());
        c.disconnect().await.ok();
        m.close().await;
        admin_exec(sb, &[delete]).await;
    }
}

/// MariaDB's default (and a possible MySQL setting): no performance_schema. MariaDB still has
/// `USER_STATISTICS`, the processlist and sql_errlog; MySQL has nothing for errors, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_performance_schema() {
    for flavour in FLAVOURS {
        let opts = SandboxOptions { extra_args: vec!["--performance-schema=OFF".into()], ..SandboxOptions::new(flavour, Topology::Single) };
        let sb = Sandbox::start(opts).await.unwrap_or_else(|e| panic!("{flavour}: a sandbox without performance_schema: {e}"));
        let s = Scene::new(&sb, "nopfs").await;
        let mut pre = s.login(Some(&s.schema)).await;
        let mut target = s.target();
        target.since_connection = u64::MAX;
        let mut m = s.monitor(target.clone(), s.files()).await;
        let mut sql_only = s.monitor(target, SignalFiles::default()).await;
        let available = |m: &Monitor, name: &str| m.sources().iter().any(|src| src.name.contains(name) && src.available);
        assert!(!available(&m, "events_errors_summary") && !available(&m, "events_statements_history"), "{flavour}: {:#?}", m.sources());
        assert!(m.sources().iter().any(|src| src.name == "performance_schema" && !src.available), "{flavour}: {:#?}", m.sources());
        let mark = watermark(&s).await;
        m.set_since_connection(mark);
        sql_only.set_since_connection(mark);
        admin_exec(&sb, &s.cut()).await;
        pre.query_drop("SELECT * FROM t").await.unwrap();
        let p = poll(&mut m).await;
        poll(&mut sql_only).await;
        assert_eq!((p.activity.statements, p.activity.connections), (0, 1), "{flavour}: {:#?}", p.activity);

        let mut c = s.login(None).await;
        denied(&mut c, &format!("SELECT * FROM {}", s.t("t").sql()), 1142).await;
        let p = poll(&mut m).await;
        let q = poll(&mut sql_only).await;
        if flavour == Flavour::MariaDb {
            let errs = of_kind(&p, AlarmKind::PrivilegeError);
            assert_eq!(errs.len(), 1, "{flavour}: {:#?}", p.alarms);
            assert_eq!(errs[0].error, Some(1142), "{flavour}: sql_errlog names the error: {:#?}", errs[0]);
            let errs = of_kind(&q, AlarmKind::PrivilegeError);
            assert_eq!(errs.len(), 1, "{flavour}: USER_STATISTICS alone: {:#?}", q.alarms);
            assert_eq!(errs[0].source, "information_schema.USER_STATISTICS");
        } else {
            assert!(q.alarms.is_empty(), "{flavour}: nothing to see it with");
        }

        // Activity from USER_STATISTICS counts once no pre-cut connection is open.
        admin_exec(&sb, &[format!("INSERT INTO {} VALUES (1)", s.t("e").sql())]).await;
        pre.disconnect().await.unwrap();
        poll(&mut sql_only).await;
        c.query_drop(format!("SELECT * FROM {}", s.t("e").sql())).await.unwrap();
        c.query_drop("SELECT 1").await.unwrap();
        let post = s.login(None).await;
        let q = poll(&mut sql_only).await;
        let expected_min = if flavour == Flavour::MariaDb { 1 } else { 0 };
        assert!(q.activity.unattributed >= expected_min, "{flavour}: {:#?}", q.activity);
        assert_eq!(q.activity.statements, 0, "{flavour}: counters never prove a table statement: {:#?}", q.activity);
        let q = poll(&mut sql_only).await;
        assert_eq!(q.activity.connections, 2, "{flavour}: connections from the processlist");
        c.disconnect().await.ok();
        post.disconnect().await.ok();
        m.close().await;
        sql_only.close().await;
        sb.destroy().unwrap_or_else(|e| panic!("{flavour}: destroy: {e}"));
    }
}
