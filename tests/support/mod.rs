//! Helpers shared by the live integration tests: the per-binary sandboxes, admin SQL, taking
//! an inventory through privfence itself, and *probes*: logging in as an account from a chosen
//! loopback address and trying each privilege for real, so expected answers come from the
//! server, not from the model.
#![allow(dead_code)]

/// Two tests, `NAME::mariadb` and `NAME::mysql`, each running `body(flavour)` (a test file
/// declares `#[macro_use] mod support;`).
#[allow(unused_macros)]
macro_rules! both_flavours {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                $body(privfence::db::Flavour::MariaDb).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $body(privfence::db::Flavour::MySql).await
            }
        }
    };
}

pub mod session;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};
use privfence::db::{ConnectSpec, Flavour, Server};
use privfence::model::Inventory;
use privfence::sandbox::{self, Sandbox, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::{TcpListener, TcpSocket};

/// The single-server sandbox of this test binary for `flavour`.
pub fn sandbox(flavour: Flavour) -> &'static Sandbox {
    sandbox::shared(flavour, Topology::Single)
}

/// The primary-and-replica sandbox of this test binary for `flavour`.
pub fn pair(flavour: Flavour) -> &'static Sandbox {
    sandbox::shared(flavour, Topology::PrimaryReplica)
}

/// The replica of a primary-and-replica sandbox.
pub fn replica(sb: &Sandbox) -> &sandbox::Server {
    sb.replica.as_ref().expect("a replica")
}

pub const FLAVOURS: [Flavour; 2] = [Flavour::MariaDb, Flavour::MySql];

/// privfence's connection spec for the admin account of a sandbox server.
pub fn admin_spec(s: &sandbox::Server) -> ConnectSpec {
    s.connect_spec()
}

/// Runs statements as the admin; panics with the statement on failure.
pub async fn admin_exec(sb: &Sandbox, stmts: &[String]) {
    let mut c = sb.primary.conn().await.expect("admin connection");
    for s in stmts {
        c.query_drop(s).await.unwrap_or_else(|e| panic!("admin SQL failed: {s}\n{e}\n{}", error_log_tail(&sb.primary)));
    }
    c.disconnect().await.ok();
}

/// Takes an inventory through privfence's own reader.
pub async fn inventory(sb: &Sandbox) -> (Server, Inventory) {
    let mut server = Server::connect(&admin_spec(&sb.primary))
        .await
        .unwrap_or_else(|e| panic!("privfence connects: {e}\n{}", error_log_tail(&sb.primary)));
    let inv = privfence::inventory::take(&mut server).await.unwrap_or_else(|e| panic!("inventory: {e}\n{}", error_log_tail(&sb.primary)));
    (server, inv)
}

/// The last lines of a server's error log, for failure messages (a dropped connection is
/// most often a server that died).
pub fn error_log_tail(s: &sandbox::Server) -> String {
    let text = std::fs::read_to_string(&s.error_log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("--- {} (last 30 lines)\n{}", s.error_log.display(), lines[lines.len().saturating_sub(30)..].join("\n"))
}

/// A TCP forwarder: listens on 127.0.0.1:<random> and connects to `target` *from* `source`,
/// so the server sees the client at `source` (the clients cannot all bind a source address).
pub async fn forwarder(source: Ipv4Addr, target: SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind forwarder");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let sock = TcpSocket::new_v4().expect("socket");
                sock.bind(SocketAddr::new(source.into(), 0)).expect("bind source address");
                if let Ok(mut outbound) = sock.connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// Logs in as `user` with `password` from `source` (through a forwarder).
pub async fn login_from(s: &sandbox::Server, user: &str, password: &str, source: Ipv4Addr) -> Result<Conn, mysql_async::Error> {
    login(s, user, password, source, None).await
}

/// Like [`login_from`], with a default database (as a pool's DSN would set it).
pub async fn login_from_db(
    s: &sandbox::Server,
    user: &str,
    password: &str,
    source: Ipv4Addr,
    db: &str,
) -> Result<Conn, mysql_async::Error> {
    login(s, user, password, source, Some(db)).await
}

async fn login(s: &sandbox::Server, user: &str, password: &str, source: Ipv4Addr, db: Option<&str>) -> Result<Conn, mysql_async::Error> {
    let port = forwarder(source, SocketAddr::new(s.host.parse().unwrap(), s.port)).await;
    let opts: Opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false)
        .into();
    Conn::new(opts).await
}

/// Canonical grants (normalised atoms) of some grantees, for before/after comparisons.
pub fn canonical(inv: &Inventory, who: &[privfence::model::AccountName]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in who {
        for sql in privfence::model::sql::account_grants_sql(inv, a) {
            for atom in privfence::inventory::showgrants::atoms(&sql, inv.server.flavour, &inv.levels, a).unwrap() {
                out.insert(format!("{} {atom}", a.sql()));
            }
        }
    }
    out
}

/// Schema-level probes (privileges that cannot be granted per table).
pub fn schema_probes(schema: &str, table: &privfence::model::TableName) -> Vec<Probe> {
    let q = privfence::model::ident::quote_ident(schema);
    vec![
        Probe {
            name: "CREATE TEMPORARY TABLES".into(),
            sql: vec![format!("CREATE TEMPORARY TABLE {q}.`pf_tmp` (x INT)"), format!("DROP TEMPORARY TABLE {q}.`pf_tmp`")],
            needs: vec![("CREATE TEMPORARY TABLES".into(), None)],
        },
        Probe {
            name: "LOCK TABLES".into(),
            sql: vec![format!("LOCK TABLES {} READ", table.sql()), "UNLOCK TABLES".into()],
            needs: vec![("LOCK TABLES".into(), None), ("SELECT".into(), None)],
        },
    ]
}

/// One statement sequence and the privileges it needs (privilege, optional column).
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub sql: Vec<String>,
    pub needs: Vec<(String, Option<String>)>,
}

/// Error codes that mean "privilege denied".
pub const DENIED: &[u16] = &[1142, 1143, 1044, 1370, 1356, 1227];

/// The account GRANT OPTION probes grant to; [`prepare_probes`] creates it.
pub const SINK: &str = "'pf_probe_sink'@'%'";

/// Creates what the probes need on a server: the sink account of GRANT OPTION probes.
pub async fn prepare_probes(sb: &Sandbox) {
    admin_exec(sb, &[format!("CREATE USER IF NOT EXISTS {SINK}")]).await;
}

/// A procedure for the EXECUTE probe of [`schema_probes`].
pub fn probe_procedure(schema: &str) -> String {
    format!("CREATE PROCEDURE {}.`pf_probe_proc`() SQL SECURITY INVOKER SELECT 1", privfence::model::ident::quote_ident(schema))
}

/// Probes for a `(id INT PRIMARY KEY, v VARCHAR(20))` table, one privilege each.
pub fn table_probes(t: &privfence::model::TableName) -> Vec<Probe> {
    let q = t.sql();
    let p = |name: &str, sql: Vec<String>, needs: Vec<(&str, Option<&str>)>| Probe {
        name: name.to_string(),
        sql,
        needs: needs.into_iter().map(|(a, b)| (a.to_string(), b.map(String::from))).collect(),
    };
    let mut v = Vec::new();
    for c in ["id", "v"] {
        v.push(p(&format!("SELECT({c})"), vec![format!("SELECT `{c}` FROM {q} LIMIT 0")], vec![("SELECT", Some(c))]));
        v.push(p(
            &format!("INSERT({c})"),
            vec!["START TRANSACTION".into(), format!("INSERT INTO {q} (`{c}`) VALUES (NULL)"), "ROLLBACK".into()],
            vec![("INSERT", Some(c))],
        ));
        v.push(p(&format!("UPDATE({c})"), vec![format!("UPDATE {q} SET `{c}` = NULL WHERE 1 = 0")], vec![("UPDATE", Some(c))]));
    }
    v.push(p("DELETE", vec![format!("DELETE FROM {q} WHERE 1 = 0")], vec![("DELETE", None)]));
    v.push(p("CREATE", vec![format!("CREATE TABLE {q} (x INT)")], vec![("CREATE", None)]));
    v.push(p("DROP", vec![format!("DROP VIEW {q}")], vec![("DROP", None)]));
    v.push(p("ALTER", vec![format!("ALTER TABLE {q} ADD COLUMN `v` INT")], vec![("ALTER", None)]));
    v.push(p("INDEX", vec![format!("DROP INDEX `no_such_index` ON {q}")], vec![("INDEX", None)]));
    v.push(p("CREATE VIEW", vec![format!("CREATE VIEW {q} AS SELECT 1")], vec![("CREATE VIEW", None)]));
    // GRANT OPTION: pass SELECT on to a throwaway account (see [`SINK`]), never to a tested one.
    v.push(p("GRANT OPTION", vec![format!("GRANT SELECT ON {q} TO {SINK}")], vec![("GRANT OPTION", None), ("SELECT", None)]));
    let trg = format!("`{}`.`privfence_probe_trg`", t.schema.replace('`', "``"));
    v.push(p(
        "TRIGGER",
        vec![format!("CREATE TRIGGER {trg} BEFORE INSERT ON {q} FOR EACH ROW SET @privfence_probe = 1"), format!("DROP TRIGGER {trg}")],
        vec![("TRIGGER", None)],
    ));
    v
}

/// Probe results of one account (password `pw-<user>`) on every table and its schema, from
/// a fresh connection (labels `fresh ...`) and from one whose default database is `schema`
/// (`default schema ...`). A connection that cannot be opened counts as denied (1044).
pub async fn observe(
    sb: &Sandbox,
    a: &privfence::model::AccountName,
    ip: Ipv4Addr,
    schema: &str,
    tables: &[privfence::model::TableName],
) -> Vec<(String, Option<u16>)> {
    let mut out = Vec::new();
    let pw = format!("pw-{}", a.user);
    let fresh = login_from(&sb.primary, &a.user, &pw, ip).await.ok();
    let in_schema = login_from_db(&sb.primary, &a.user, &pw, ip, schema).await.ok();
    for (label, mut conn) in [("fresh", fresh), ("default schema", in_schema)] {
        for t in tables {
            let mut probes = table_probes(t);
            probes.extend(schema_probes(&t.schema, t));
            let results = match conn.as_mut() {
                Some(c) => run_probes(c, &probes).await,
                None => vec![Some(1044); probes.len()],
            };
            for (p, r) in probes.iter().zip(results) {
                out.push((format!("{label} {} {t}", p.name), r));
            }
        }
        if let Some(c) = conn {
            c.disconnect().await.ok();
        }
    }
    out
}

/// Runs probes on one connection; returns, per probe, the privilege-error code that denied it
/// (`None`: allowed, which includes failing later for another reason).
pub async fn run_probes(conn: &mut Conn, probes: &[Probe]) -> Vec<Option<u16>> {
    let mut out = Vec::new();
    for p in probes {
        let mut denied = None;
        for s in &p.sql {
            if let Err(mysql_async::Error::Server(e)) = conn.query_drop(s).await {
                if denied.is_none() && DENIED.contains(&e.code) {
                    denied = Some(e.code);
                }
                break;
            }
        }
        out.push(denied);
    }
    out
}

/// What the model says an account may do *directly* on one table (the paths usable by a plain
/// login: global, schema, table, column, default roles, PUBLIC): table-level privileges and
/// per-column ones.
pub fn model_direct(
    report: &privfence::access::AccessReport,
    account: &privfence::model::AccountName,
    table: &privfence::model::TableName,
) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    use privfence::access::Via;
    let mut table_level = BTreeSet::new();
    let mut cols: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    fn usable(v: &Via) -> Option<Option<String>> {
        match v {
            Via::Global | Via::Schema { .. } | Via::Table => Some(None),
            Via::Column { column } => Some(Some(column.clone())),
            Via::Role { active_at_login: true, grant, .. }
            | Via::Public { grant }
            | Via::Mandatory { active_at_login: true, grant, .. } => usable(grant),
            _ => None,
        }
    }
    // PUBLIC's and the mandatory roles' paths listed under the holder are everyone's (a MySQL
    // mandatory role's schema rows are listed per account: they join its role-session map).
    let public = privfence::model::AccountName::new("PUBLIC", "");
    let everyone = |e: &privfence::access::Entry| match &e.via {
        Via::Public { .. } => e.account == public,
        // An active mandatory role's schema rows are listed per account, the role's own too.
        Via::Mandatory { role, active_at_login, grant } => &e.account == role && !(*active_at_login && schema_row(grant)),
        _ => false,
    };
    for e in report.entries.iter().filter(|e| &e.table == table && (&e.account == account || everyone(e))) {
        match usable(&e.via) {
            Some(None) => table_level.extend(e.privileges.iter().map(|p| p.to_string())),
            Some(Some(c)) => cols.entry(c).or_default().extend(e.privileges.iter().map(|p| p.to_string())),
            None => {}
        }
    }
    (table_level, cols)
}

fn schema_row(v: &privfence::access::Via) -> bool {
    use privfence::access::Via;
    match v {
        Via::Schema { .. } => true,
        Via::Role { grant, .. } => schema_row(grant),
        _ => false,
    }
}

/// Does the model allow this probe?
pub fn model_allows(p: &Probe, table_level: &BTreeSet<String>, cols: &BTreeMap<String, BTreeSet<String>>) -> bool {
    p.needs.iter().all(|(privilege, col)| {
        table_level.contains(privilege) || col.as_ref().is_some_and(|c| cols.get(c).is_some_and(|s| s.contains(privilege)))
    })
}

/// A writer for `Output` that keeps what was written (a test prints it when it fails).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    #[allow(dead_code)]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Validates a document against `docs/schemas/NAME` (draft 2020-12), with every error listed.
#[allow(dead_code)]
pub fn validate(name: &str, doc: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas").join(name);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"));
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc:#}");
    assert!(!v.is_valid(&serde_json::json!({})), "{name} requires its fields");
}

/// The policy of the promotion, sync-back and revert tests: the service `svc` owns `svc_db.*`,
/// owned by `'svc_owner'@'%'`; root (and MySQL's internal accounts) are exempt.
pub fn write_service_policy(path: &std::path::Path, flavour: Flavour) {
    let mut policy = String::from(
        "[service.svc]\ntables = [\"svc_db.*\"]\nowners = [\"'svc_owner'@'%'\"]\n[[service.svc.exempt]]\naccount = \"root\"\nreason = \"DBA\"\n",
    );
    if flavour == Flavour::MySql {
        for a in ["mysql.infoschema", "mysql.session"] {
            policy.push_str(&format!("[[service.svc.exempt]]\naccount = \"'{a}'@'localhost'\"\nreason = \"internal\"\n"));
        }
    }
    std::fs::write(path, policy).unwrap();
}
