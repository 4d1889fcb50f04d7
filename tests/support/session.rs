//! The guided-session fixture shared by the session test binaries: one test's monolith schema,
//! service tables, app account and owner; options for short watches; one turn through the
//! library.

use super::*;
use mysql_async::{Opts, OptsBuilder};
use privfence::db::{ConnectSpec, Flavour};
use privfence::journal::{Record, JOURNAL_FORMAT};
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::AccountName;
use privfence::output::Output;
use privfence::sandbox::{self, Sandbox};
use privfence::session::{self, Options, Session, TurnResult};
use privfence::workload::{Workload, WorkloadSpec};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// One test's monolith schema, service tables, app account and service owner.
pub struct Fixture {
    pub tag: String,
    pub schema: String,
    pub user: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Schema `pfs_<tag>` with service tables `svc_items`, `svc_notes` and the monolith's
    /// `orders`, `users`; the app account `pfs_<tag>`@'%' holds `SELECT, INSERT` on the whole
    /// schema; the owner `pfo_<tag>`@'%' holds the service tables.
    pub async fn create(sb: &Sandbox, tag: &str) -> Fixture {
        let f = Fixture { tag: tag.into(), schema: format!("pfs_{tag}"), user: format!("pfs_{tag}"), dir: tempfile::tempdir().unwrap() };
        let s = qi(&f.schema);
        let owner = format!("{}@'%'", qs(&format!("pfo_{tag}")));
        admin_exec(
            sb,
            &[
                format!("CREATE DATABASE {s}"),
                format!("CREATE TABLE {s}.svc_items (id INT PRIMARY KEY)"),
                format!("CREATE TABLE {s}.svc_notes (id INT PRIMARY KEY)"),
                format!("CREATE TABLE {s}.orders (id INT PRIMARY KEY)"),
                format!("CREATE TABLE {s}.users (id INT PRIMARY KEY)"),
                format!("INSERT INTO {s}.svc_items VALUES (1)"),
                format!("INSERT INTO {s}.orders VALUES (1), (2)"),
                format!("CREATE USER {} IDENTIFIED BY {}", f.account(), qs(&f.password())),
                format!("GRANT SELECT, INSERT ON {s}.* TO {}", f.account()),
                format!("CREATE USER {owner} IDENTIFIED BY 'pw-owner'"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.svc_items TO {owner}"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.svc_notes TO {owner}"),
            ],
        )
        .await;
        std::fs::write(f.policy(), f.policy_text(sb.flavour)).unwrap();
        f
    }

    pub fn account(&self) -> String {
        format!("{}@'%'", qs(&self.user))
    }

    pub fn account_name(&self) -> AccountName {
        AccountName::new(&self.user, "%")
    }

    pub fn password(&self) -> String {
        format!("pw-{}", self.user)
    }

    pub fn service(&self) -> String {
        format!("svc_{}", self.tag)
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("journal").join(format!("{}.journal", self.service()))
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

    /// The app's pool options on `server`: the monolith schema as default database.
    pub fn opts(&self, server: &sandbox::Server) -> Opts {
        OptsBuilder::from_opts(server.opts_as(&self.user, &self.password())).db_name(Some(self.schema.clone())).into()
    }

    pub fn app(&self, server: &sandbox::Server, statements: &[&str]) -> Workload {
        Workload::spawn(WorkloadSpec {
            name: self.user.clone(),
            opts: self.opts(server),
            statements: statements.iter().map(|s| s.to_string()).collect(),
            interval: Duration::from_millis(20),
            pool_size: 2,
        })
    }

    pub async fn canonical(&self, server: &sandbox::Server) -> BTreeSet<String> {
        let mut s = privfence::db::Server::connect(&admin_spec(server)).await.expect("connect");
        let c = privfence::engine::snapshot::read(&mut s, &[self.account_name()]).await.expect("snapshot");
        s.close().await;
        c
    }
}

pub fn quiet() -> Output {
    Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()))
}

pub fn test_options(sb: &Sandbox, window: Duration) -> Options {
    Options {
        sql_errlog: sb.primary.sql_errlog.clone(),
        window,
        poll: Duration::from_millis(50),
        kill_connections: true,
        recycle_deadline: Duration::from_secs(10),
        replica_timeout: Duration::from_secs(20),
        restore_deadline: Duration::from_secs(60),
        notify: false,
        ..Options::default()
    }
}

/// Runs one turn through the library: inventory, plan, session, cut and watch.
pub async fn turn(sb: &Sandbox, f: &Fixture, opts: Options, replicas: &[ConnectSpec]) -> TurnResult {
    let today = chrono::Local::now().date_naive();
    let policy = privfence::policy::load(&f.policy(), today).expect("policy");
    let (server, inv) = inventory(sb).await;
    server.close().await;
    let plan = privfence::plan::build(&inv, &policy, &f.service(), &f.account(), &Default::default()).expect("plan");
    let svc = policy.service(&f.service()).unwrap();
    let tables = session::guide::service_tables(&inv, svc);
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "test".into(),
        service: f.service(),
        policy: "p".into(),
        tables: tables.clone(),
    };
    let mut s = Session::open(&f.journal(), header, &admin_spec(&sb.primary), replicas, opts).await.expect("open session");
    let mut out = quiet();
    let r = s.cut_and_watch(&plan, &f.account(), &tables, &[], vec![], &mut out).await.expect("turn");
    s.close().await;
    r
}

impl Fixture {
    /// Issue 10's account: no privilege of its own in the schema, `SELECT` on `svc_items`
    /// through its default role, so a cut leaves it no privilege in its default database.
    pub async fn role_only(&self, sb: &Sandbox) {
        let role = format!("{}_r", self.user);
        let s = qi(&self.schema);
        let set_default = match sb.flavour {
            Flavour::MariaDb => format!("SET DEFAULT ROLE {} FOR {}", qi(&role), self.account()),
            Flavour::MySql => format!("SET DEFAULT ROLE {} TO {}", qs(&role), self.account()),
        };
        admin_exec(
            sb,
            &[
                format!("REVOKE ALL PRIVILEGES ON {s}.* FROM {}", self.account()),
                format!("CREATE ROLE {}", qs(&role)),
                format!("GRANT SELECT ON {s}.svc_items TO {}", qs(&role)),
                format!("GRANT {} TO {}", qs(&role), self.account()),
                set_default,
            ],
        )
        .await;
    }

    /// The app reading `svc_items`, started after `delay` (once a cut is in force): its only
    /// symptom of a cut is that it cannot log in.
    pub fn late_app(&self, server: &sandbox::Server, delay: Duration) -> tokio::task::JoinHandle<Workload> {
        let (opts, user) = (self.opts(server), self.user.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            Workload::spawn(WorkloadSpec {
                name: user,
                opts,
                statements: vec!["SELECT COUNT(*) FROM svc_items".into()],
                interval: Duration::from_millis(20),
                pool_size: 2,
            })
        })
    }
}

/// The privfence binary with `args` and `env`, without the caller's `MYSQL_PWD`, D-Bus session
/// or home (so no option file of the machine's user is read).
pub fn privfence_command(args: &[String], env: &[(&str, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"));
    c.args(args).env_remove("MYSQL_PWD").env_remove("DBUS_SESSION_BUS_ADDRESS").env("HOME", "/nonexistent");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs the privfence binary to its end (see [`privfence_command`]).
pub fn privfence(args: &[String], env: &[(&str, String)]) -> std::process::Output {
    privfence_command(args, env).output().expect("run privfence")
}

/// The flags every `session` verb takes in these tests: the fixture's policy, service, journal,
/// the reports folder, no desktop notification, the sandbox's admin option file; with
/// `with_replica`, the sandbox's replica too.
pub fn common_args(sb: &Sandbox, f: &Fixture, reports: &std::path::Path, with_replica: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--policy".into(),
        f.policy().display().to_string(),
        "--service".into(),
        f.service(),
        "--journal".into(),
        f.journal().display().to_string(),
        "--reports".into(),
        reports.display().to_string(),
        "--no-notify".into(),
        "--defaults-file".into(),
        sb.primary.client_cnf.display().to_string(),
    ];
    if let (Some(r), true) = (&sb.replica, with_replica) {
        a.extend(["--replica".to_string(), format!("{}:{}", r.host, r.port)]);
    }
    a
}
