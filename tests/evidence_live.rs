//! Evidence of non-use against real servers, both flavours, asserting what each server really
//! gives. One test per flavour runs two phases in order, since the settings are server-wide:
//!
//! - default settings: MySQL keeps per-connection statement history, MariaDB keeps none;
//! - after applying [`evidence::wanted_settings`] (and, on MariaDB, installing server_audit).
//!
//! Accounts per phase: `used` reads the service table and stays connected; `other` reads another
//! table and stays connected; `idle` never connects; `gone` reads the service table and
//! disconnects; `def` (first phase) is the DEFINER of a view over the service table that `used`
//! queries; `brief` (second phase) connects, reads and disconnects while the history is sampled,
//! during which the first phase's `other` reads other tables again.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use privfence::db::{Flavour, Server};
use privfence::evidence::{self, Candidate, Usage};
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::model::{AccountName, TableName};
use privfence::sandbox::Sandbox;
use std::path::PathBuf;
use std::time::Duration;
use support::*;

/// A literal that must never appear in any cited row.
const SECRET: &str = "SECRET-LITERAL-42";

struct Scenario {
    schema: String,
    prefix: String,
}

impl Scenario {
    fn account(&self, role: &str) -> AccountName {
        AccountName::new(format!("{}_{role}", self.prefix), "%")
    }

    fn users(&self) -> TableName {
        TableName::new(&self.schema, "users")
    }

    /// Logs in as `role` with the schema as default database and runs `sql`.
    async fn session(&self, sb: &Sandbox, role: &str, sql: &[String]) -> Conn {
        let a = self.account(role);
        let opts = OptsBuilder::from_opts(sb.primary.opts_as(&a.user, &format!("pw-{}", a.user))).db_name(Some(self.schema.clone()));
        let mut c = Conn::new(opts).await.unwrap_or_else(|e| panic!("login as {a}: {e}"));
        for s in sql {
            c.query_drop(s).await.unwrap_or_else(|e| panic!("{a}: {s}: {e}"));
        }
        c
    }

    /// Creates the accounts of `roles`, each with SELECT on the schema.
    async fn create_accounts(&self, sb: &Sandbox, roles: &[&str]) {
        let mut sql = Vec::new();
        for r in roles {
            let a = self.account(r);
            sql.push(format!("CREATE USER {} IDENTIFIED BY {}", a.sql(), qs(&format!("pw-{}", a.user))));
            sql.push(format!("GRANT SELECT ON {}.* TO {}", qi(&self.schema), a.sql()));
        }
        admin_exec(sb, &sql).await;
    }

    /// Runs the phase's activity; returns the connections to keep open during gathering.
    async fn activity(&self, sb: &Sandbox, with_view: bool) -> Vec<Conn> {
        let read_users = format!("SELECT * FROM users WHERE name = '{SECRET}'");
        let mut used_sql = vec![read_users.clone(), "SELECT COUNT(*) FROM users".to_string()];
        if with_view {
            used_sql.push("SELECT COUNT(*) FROM v_users".into());
        }
        let used = self.session(sb, "used", &used_sql).await;
        let other_sql: Vec<String> = (0..3).map(|i| format!("SELECT * FROM other WHERE id = {i}")).collect();
        let other = self.session(sb, "other", &other_sql).await;
        let gone = self.session(sb, "gone", &[read_users]).await;
        gone.disconnect().await.unwrap();
        vec![used, other]
    }
}

async fn setup(sb: &Sandbox, tag: &str) -> Scenario {
    let s = Scenario { schema: format!("pfev_{tag}"), prefix: format!("pfev_{tag}") };
    let q = qi(&s.schema);
    admin_exec(
        sb,
        &[
            format!("CREATE DATABASE {q}"),
            format!("CREATE TABLE {q}.users (id INT PRIMARY KEY, name VARCHAR(40))"),
            format!("CREATE TABLE {q}.other (id INT PRIMARY KEY)"),
            format!("INSERT INTO {q}.users VALUES (1, 'alice'), (2, 'bob')"),
            format!("INSERT INTO {q}.other VALUES (1)"),
        ],
    )
    .await;
    s
}

fn find<'a>(cands: &'a [Candidate], a: &AccountName) -> &'a Candidate {
    cands.iter().find(|c| &c.account == a).unwrap_or_else(|| panic!("no candidate {a}"))
}

/// Every cited row, for the never-cite-literals check and failure messages.
fn dump(cands: &[Candidate]) -> String {
    serde_json::to_string_pretty(cands).unwrap()
}

fn cites(c: &Candidate, source_part: &str, text: &str) -> bool {
    c.evidence.iter().any(|e| e.source.contains(source_part) && e.usage == Usage::Used && e.rows.iter().any(|r| r.contains(text)))
}

fn item<'a>(c: &'a Candidate, source_part: &str) -> &'a evidence::Evidence {
    c.evidence.iter().find(|e| e.source.contains(source_part)).unwrap_or_else(|| panic!("{}: no {source_part} item", c.account))
}

async fn gather(
    sb: &Sandbox,
    s: &Scenario,
    candidates: &[AccountName],
    audit: Option<PathBuf>,
    window: Duration,
) -> (Server, Vec<Candidate>) {
    let (mut server, inv) = inventory(sb).await;
    let tables = vec![s.users()];
    let report = privfence::access::analyse(&inv, &tables);
    for c in candidates {
        assert!(report.entries.iter().any(|e| &e.account == c), "{c} can touch the service table");
    }
    let mut cands = if window.is_zero() {
        evidence::gather(&mut server, &inv, &tables, candidates, audit.as_deref()).await
    } else {
        evidence::gather_sampled(&mut server, &inv, &tables, candidates, audit.as_deref(), window).await
    }
    .expect("gather");
    let text = dump(&cands);
    assert!(!text.contains(SECRET), "a literal was cited:\n{text}");
    evidence::rank(&mut cands);
    (server, cands)
}

async fn run(flavour: Flavour) {
    let sb = sandbox(flavour);
    let tag = if flavour == Flavour::MariaDb { "m" } else { "y" };
    let mariadb = flavour == Flavour::MariaDb;

    // Phase 1: the server as configured by default.
    let s = setup(sb, tag).await;
    let roles = ["used", "other", "idle", "gone", "def"];
    s.create_accounts(sb, &roles).await;
    let def = s.account("def");
    admin_exec(
        sb,
        &[format!(
            "CREATE DEFINER = {} SQL SECURITY DEFINER VIEW {}.v_users AS SELECT id FROM {}.users",
            def.sql(),
            qi(&s.schema),
            qi(&s.schema)
        )],
    )
    .await;
    let open = s.activity(sb, true).await;
    let (server, cands) = gather(sb, &s, &roles.map(|r| s.account(r)), None, Duration::ZERO).await;
    let all = dump(&cands);
    let users = s.users().to_string();
    let [used, other, idle, gone, def] = roles.map(|r| find(&cands, &s.account(r)));

    assert_eq!(idle.usage, Usage::NotSeen, "{all}");
    assert_eq!(item(idle, "account counters").usage, Usage::NotSeen, "{all}");
    assert_eq!(def.usage, Usage::Used, "the DEFINER of a view that ran: {all}");
    assert!(cites(def, "definer objects", &users), "{all}");
    assert_eq!(gone.usage, Usage::Unknown, "an ended connection is not attributable by performance_schema: {all}");
    if mariadb {
        assert!(item(gone, "statement history").blind_spots[0].contains("no statement history is kept"), "{all}");
        // No statement consumer is on by default: nothing attributes a table to an account.
        assert_eq!(used.usage, Usage::Unknown, "{all}");
        assert_eq!(other.usage, Usage::Unknown, "{all}");
        assert!(item(used, "statement history").blind_spots[0].contains("events_statements_current"), "{all}");
        assert_eq!(item(idle, "USER_STATISTICS").usage, Usage::NotSeen, "{all}");
        assert!(item(used, "server_audit").blind_spots[0].contains("not installed"), "{all}");
    } else {
        assert!(item(gone, "statement history").blind_spots.iter().any(|b| b.contains("ended connections")), "{all}");
        assert_eq!(used.usage, Usage::Used, "{all}");
        assert!(cites(used, "statement history", &users), "{all}");
        assert!(cites(used, "statement history", &format!("{users} (through view")), "{all}");
        assert_eq!(other.usage, Usage::NotSeen, "every statement of its live connection is retained: {all}");
        assert_eq!(item(other, "statement history").usage, Usage::NotSeen, "{all}");
    }
    assert!(used.last_activity.is_some(), "{all}");
    assert_eq!(item(idle, "table I/O").usage, Usage::Unknown, "the service table was read by someone: {all}");
    let order: Vec<&str> = cands.iter().map(|c| c.account.user.rsplit('_').next().unwrap()).collect();
    let expected: &[&str] = if mariadb { &["idle", "gone", "other", "used", "def"] } else { &["idle", "other", "gone", "def", "used"] };
    assert_eq!(order, expected, "rank: {all}");
    let mut phase1_other = open.into_iter().nth(1).expect("other's connection");

    // Phase 2: with the wanted settings (and server_audit on MariaDB).
    let mut server = server;
    let audit = sb.primary.dir.join("audit.log");
    if mariadb {
        admin_exec(
            sb,
            &[
                "INSTALL SONAME 'server_audit'".into(),
                format!("SET GLOBAL server_audit_file_path = {}", qs(&audit.display().to_string())),
                "SET GLOBAL server_audit_events = 'CONNECT,QUERY'".into(),
            ],
        )
        .await;
    }
    let settings = evidence::wanted_settings(&mut server).await.expect("wanted settings");
    let sql: Vec<String> = settings.iter().map(|s| s.enable_sql()).collect();
    assert!(sql.iter().any(|s| s.contains("events_statements_history_long")), "{settings:?}");
    if mariadb {
        assert!(sql.iter().any(|s| s.contains("events_statements_current")), "{settings:?}");
        assert!(sql.iter().any(|s| s.contains("server_audit_events") && s.contains("TABLE")), "{settings:?}");
        assert!(sql.iter().any(|s| s.contains("server_audit_logging = ON")), "{settings:?}");
    }
    admin_exec(sb, &settings.iter().map(|s| s.enable_sql()).collect::<Vec<_>>()).await;
    assert!(evidence::wanted_settings(&mut server).await.unwrap().is_empty(), "nothing left to improve");

    let s2 = Scenario { schema: s.schema.clone(), prefix: format!("pfev_{tag}2") };
    let roles2 = ["used", "other", "idle", "gone", "brief"];
    s2.create_accounts(sb, &roles2).await;
    let open = s2.activity(sb, false).await;
    // While the history is sampled, `brief` connects, reads and disconnects, and the first
    // phase's `other` (whose earlier statements MariaDB did not keep) reads other tables again.
    let during = {
        let s2 = Scenario { schema: s2.schema.clone(), prefix: s2.prefix.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let c = s2.session(sb, "brief", &["SELECT COUNT(*) FROM users".into()]).await;
            for i in 0..2 {
                phase1_other.query_drop(format!("SELECT * FROM other WHERE id = {i}")).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            c.disconnect().await.unwrap();
            phase1_other
        })
    };
    let mut candidates: Vec<AccountName> = roles2.map(|r| s2.account(r)).to_vec();
    candidates.push(s.account("other"));
    let (_, cands) = gather(sb, &s2, &candidates, mariadb.then(|| audit.clone()), Duration::from_secs(4)).await;
    let phase1_other = during.await.unwrap();
    let all = dump(&cands);
    let other1 = find(&cands, &s.account("other"));
    assert_eq!(other1.usage, Usage::NotSeen, "{all}");
    let h = item(other1, "statement history");
    assert_eq!(h.usage, Usage::NotSeen, "{all}");
    if mariadb {
        assert!(h.span.starts_with("sampled window") && h.rows[0].starts_with("all 2 statements"), "complete for the window only: {all}");
    } else {
        assert!(h.span.starts_with("since server start"), "MySQL kept its whole history: {all}");
    }
    let [used, other, idle, gone, brief] = roles2.map(|r| find(&cands, &s2.account(r)));
    assert_eq!(brief.usage, Usage::Used, "sampling attributes a connection that ended: {all}");
    assert!(cites(brief, "statement history", &users), "{all}");
    assert!(item(brief, "current connections").rows[0].starts_with("no connection"), "it ended before the end: {all}");
    assert_eq!(used.usage, Usage::Used, "{all}");
    assert!(cites(used, "statement history", &users), "{all}");
    assert_eq!(other.usage, Usage::NotSeen, "{all}");
    assert_eq!(item(other, "statement history").usage, Usage::NotSeen, "{all}");
    assert_eq!(idle.usage, Usage::NotSeen, "{all}");
    if mariadb {
        assert!(cites(used, "server_audit", &format!("READ {users}")), "{all}");
        assert_eq!(item(other, "server_audit").usage, Usage::NotSeen, "{all}");
        assert_eq!(gone.usage, Usage::Used, "the audit log attributes ended connections too: {all}");
        assert!(cites(gone, "server_audit", &users), "{all}");
    } else {
        assert_eq!(gone.usage, Usage::Unknown, "still not attributable with history_long: {all}");
    }
    for c in open.into_iter().chain([phase1_other]) {
        c.disconnect().await.ok();
    }
    let undo: Vec<String> = settings.iter().rev().map(|s| s.disable_sql()).collect();
    admin_exec(sb, &undo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_evidence() {
    run(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_evidence() {
    run(Flavour::MySql).await;
}

/// Whether privfence's account may see other accounts' connections (PROCESS) is read from the
/// inventory: held directly or through a default role, it sees them; without it the item says
/// so instead of claiming there is no connection.
async fn process_privilege(flavour: Flavour) {
    let sb = sandbox(flavour);
    let tag = if flavour == Flavour::MariaDb { "pm" } else { "py" };
    let s = setup(sb, tag).await;
    s.create_accounts(sb, &["app", "watcher"]).await;
    let (watcher, app) = (s.account("watcher"), s.account("app"));
    // A role written without a host: `%` on MySQL, a role name on MariaDB.
    let role = qs(&format!("{}_r", s.prefix));
    admin_exec(sb, &[format!("GRANT SELECT ON *.* TO {}", watcher.sql())]).await;
    let keep = s.session(sb, "app", &["SELECT COUNT(*) FROM other".to_string()]).await;
    let as_watcher = || async {
        let mut spec = admin_spec(&sb.primary);
        spec.user = watcher.user.clone();
        spec.password = Some(privfence::db::Secret::new(format!("pw-{}", watcher.user)));
        let mut server = Server::connect(&spec).await.expect("login as the watcher");
        let (_, inv) = inventory(sb).await;
        let cands = evidence::gather(&mut server, &inv, &[s.users()], std::slice::from_ref(&app), None).await.expect("gather");
        item(&cands[0], "current connections").clone()
    };
    let blind = |e: &evidence::Evidence| e.blind_spots.iter().any(|b| b.contains("lacks PROCESS"));

    let without = as_watcher().await;
    assert!(blind(&without), "no PROCESS, said so: {without:?}");
    assert!(without.rows[0].starts_with("no connection"), "the app's connection is hidden from it: {without:?}");

    admin_exec(
        sb,
        &[
            format!("CREATE ROLE {role}"),
            format!("GRANT PROCESS ON *.* TO {role}"),
            format!("GRANT {role} TO {}", watcher.sql()),
            match flavour {
                Flavour::MariaDb => format!("SET DEFAULT ROLE {role} FOR {}", watcher.sql()),
                Flavour::MySql => format!("SET DEFAULT ROLE {role} TO {}", watcher.sql()),
            },
        ],
    )
    .await;
    let with = as_watcher().await;
    assert!(!blind(&with), "PROCESS through its default role: {with:?}");
    assert!(with.rows.iter().any(|r| r.starts_with("connection ")), "the app's connection is seen: {with:?}");
    keep.disconnect().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_process_privilege() {
    process_privilege(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_process_privilege() {
    process_privilege(Flavour::MySql).await;
}
