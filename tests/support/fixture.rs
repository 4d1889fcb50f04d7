//! The fixture of the session tests: one test's monolith schema, service tables, app account
//! and service owner, with its policy file, journal path and a pooled app.

use super::{admin_exec, admin_spec};
use mysql_async::{Opts, OptsBuilder};
use privfence::db::Flavour;
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::AccountName;
use privfence::sandbox::{self, Sandbox};
use privfence::session;
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
        let c = session::snapshot::read(&mut s, &[self.account_name()]).await.expect("snapshot");
        s.close().await;
        c
    }
}
