//! The demo's sample monolith: a `shop` schema in which a media service's tables are still
//! reachable by other services' accounts through every kind of path privfence analyses.
//!
//! Loaded only into sandboxes (it creates accounts with throwaway passwords).

use crate::db::Flavour;

pub mod finish;
pub mod way_back;

/// The example policy for the sample (also checked in as `policies/shop-media.toml`).
pub const POLICY: &str = include_str!("../../policies/shop-media.toml");

/// The media service's tables, as a pattern.
pub const SERVICE_TABLES: &str = "shop.media_*";

/// Statements that build the sample, in order. `{default_role}` differs by flavour.
pub fn sample_sql(flavour: Flavour) -> Vec<String> {
    let set_default = |role: &str, user: &str| match flavour {
        Flavour::MariaDb => format!("SET DEFAULT ROLE {role} FOR {user}"),
        Flavour::MySql => format!("SET DEFAULT ROLE {role} TO {user}"),
    };
    let mut v: Vec<String> = [
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2)) ENGINE=InnoDB",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB",
        "CREATE TABLE shop.media_attachments (id INT PRIMARY KEY, order_id INT, url VARCHAR(200), \
         FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE shop.media_variants (id INT PRIMARY KEY, attachment_id INT, size VARCHAR(20)) ENGINE=InnoDB",
        "CREATE USER 'svc_media'@'%' IDENTIFIED BY 'demo-media-pw'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON shop.media_attachments TO 'svc_media'@'%'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON shop.media_variants TO 'svc_media'@'%'",
        "CREATE USER 'svc_orders'@'%' IDENTIFIED BY 'demo-orders-pw'",
        "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON shop.* TO 'svc_orders'@'%'",
        "CREATE USER 'svc_reports'@'%' IDENTIFIED BY 'demo-reports-pw'",
        "GRANT SELECT ON `sho%`.* TO 'svc_reports'@'%'",
        "CREATE USER 'svc_billing'@'%' IDENTIFIED BY 'demo-billing-pw'",
        "GRANT SELECT, DELETE ON shop.orders TO 'svc_billing'@'%'",
        "CREATE ROLE media_reader",
        "GRANT SELECT ON shop.media_attachments TO media_reader",
        "CREATE USER 'svc_search'@'%' IDENTIFIED BY 'demo-search-pw'",
        "GRANT media_reader TO 'svc_search'@'%'",
        "CREATE USER 'bi'@'%' IDENTIFIED BY 'demo-bi-pw'",
        "CREATE DEFINER='svc_orders'@'%' SQL SECURITY DEFINER VIEW shop.order_media AS \
         SELECT o.id, o.total, m.url FROM shop.orders o JOIN shop.media_attachments m ON m.order_id = o.id",
        "GRANT SELECT ON shop.order_media TO 'bi'@'%'",
        "CREATE USER 'cron'@'localhost' IDENTIFIED BY 'demo-cron-pw'",
        "CREATE DEFINER='svc_orders'@'%' PROCEDURE shop.purge_old_media() SQL SECURITY DEFINER \
         DELETE FROM shop.media_variants WHERE id < 0",
        "GRANT EXECUTE ON PROCEDURE shop.purge_old_media TO 'cron'@'localhost'",
        "CREATE USER 'backup'@'localhost' IDENTIFIED BY 'demo-backup-pw'",
        "GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO 'backup'@'localhost'",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(set_default("media_reader", "'svc_search'@'%'"));
    v
}

/// The demo's three app accounts. Which one runs which workload is decided by a seed.
pub const APPS: [&str; 3] = ["app_catalog", "app_checkout", "app_legacy"];

/// What an app does during the demo session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Still reads a media table, unqualified, through a pool whose default schema is `shop`.
    ReadsServiceTable,
    /// Uses only the monolith's other tables.
    OtherTablesOnly,
    /// Connected, pings its pool, touches no table.
    Idle,
}

impl Behaviour {
    /// The statements the app runs in a loop (unqualified: the pool's default schema is `shop`).
    pub fn statements(self) -> Vec<String> {
        match self {
            Behaviour::ReadsServiceTable => vec!["SELECT COUNT(*) FROM orders".into(), "SELECT COUNT(*) FROM media_attachments".into()],
            Behaviour::OtherTablesOnly => vec!["SELECT COUNT(*) FROM orders".into(), "SELECT id, name FROM customers WHERE id = 1".into()],
            Behaviour::Idle => vec!["SELECT 1".into()],
        }
    }

    /// The verdict the session must reach.
    pub fn expected(self) -> crate::journal::Verdict {
        match self {
            Behaviour::ReadsServiceTable => crate::journal::Verdict::Restored,
            Behaviour::OtherTablesOnly => crate::journal::Verdict::Passed,
            Behaviour::Idle => crate::journal::Verdict::Inconclusive,
        }
    }
}

/// Statements that create the three app accounts (each with DML on all of `shop`).
pub fn apps_sql() -> Vec<String> {
    let mut v = Vec::new();
    for a in APPS {
        v.push(format!("CREATE USER '{a}'@'%' IDENTIFIED BY 'demo-{a}-pw'"));
        v.push(format!("GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO '{a}'@'%'"));
    }
    v
}

/// The password of a demo app account (a throwaway sandbox secret).
pub fn app_password(app: &str) -> String {
    format!("demo-{app}-pw")
}

/// Assigns behaviours to the apps from a seed (a permutation), in session order: the reader,
/// the app using other tables, the idle one.
pub fn assign(seed: u64) -> Vec<(&'static str, Behaviour)> {
    let mut apps = APPS.to_vec();
    // A small LCG is enough to shuffle three names reproducibly.
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for i in (1..apps.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = ((x >> 33) % (i as u64 + 1)) as usize;
        apps.swap(i, j);
    }
    apps.into_iter().zip([Behaviour::ReadsServiceTable, Behaviour::OtherTablesOnly, Behaviour::Idle]).collect()
}

/// One account's turn in the demo.
#[derive(Debug, Clone)]
pub struct DemoTurn {
    pub account: String,
    pub behaviour: Behaviour,
    pub result: crate::session::TurnResult,
    /// From the end of the restore to the app's first successful statement.
    pub recovered_after: Option<std::time::Duration>,
    pub app: crate::workload::Stats,
}

/// One app's workloads: on the primary, and through the replica for the reader.
type AppLoads = (&'static str, Behaviour, Vec<crate::workload::Workload>);

/// Starts each app's workloads.
fn start_apps(sb: &crate::sandbox::Sandbox, assignment: &[(&'static str, Behaviour)]) -> Vec<AppLoads> {
    use crate::workload::{Workload, WorkloadSpec};
    use std::time::Duration;
    let replica = sb.replica.as_ref();
    let mut apps = Vec::new();
    for (app, behaviour) in assignment {
        let mut servers = vec![&sb.primary];
        servers.extend(replica.filter(|_| *behaviour == Behaviour::ReadsServiceTable));
        let loads: Vec<Workload> = servers
            .into_iter()
            .map(|s| {
                let opts: mysql_async::Opts =
                    mysql_async::OptsBuilder::from_opts(s.opts_as(app, &app_password(app))).db_name(Some("shop")).into();
                Workload::spawn(WorkloadSpec {
                    name: format!("{app}@{}", s.role.name()),
                    opts,
                    statements: behaviour.statements(),
                    interval: Duration::from_millis(20),
                    pool_size: 2,
                })
            })
            .collect();
        apps.push((*app, *behaviour, loads));
    }
    apps
}

/// The longest time after `end` until each load's statements succeed again (`None`: one never
/// did within 5 s).
async fn recovered(loads: &[crate::workload::Workload], end: std::time::Instant) -> Option<std::time::Duration> {
    let mut worst = std::time::Duration::ZERO;
    for l in loads {
        let t = l.wait_success_after(end, std::time::Duration::from_secs(5)).await?;
        worst = worst.max(t.saturating_duration_since(end));
    }
    Some(worst)
}

/// Runs the demo's session on a loaded sandbox: the three apps start their workloads, and the
/// media service's session cuts each app in turn (primary and replica), without questions.
pub async fn session_demo(
    sb: &crate::sandbox::Sandbox,
    seed: u64,
    window: std::time::Duration,
    work: &std::path::Path,
    out: &mut crate::output::Output,
) -> anyhow::Result<Vec<DemoTurn>> {
    use crate::journal::{Record, JOURNAL_FORMAT};
    use crate::session::{guide, Options, Session};
    use std::time::{Duration, Instant};
    let today = chrono::Local::now().date_naive();
    std::fs::create_dir_all(work)?;
    let policy_path = work.join("shop-media.toml");
    std::fs::write(&policy_path, POLICY)?;
    let policy = crate::policy::load(&policy_path, today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let svc = policy.service("media").expect("the demo policy has the media service").clone();
    let replica = sb.replica.as_ref();
    // Each app reads from the primary; the reader also reads through the replica.
    let assignment = assign(seed);
    out.status(&format!(
        "seed {seed}: {}",
        assignment
            .iter()
            .map(|(a, b)| format!("{a} {}", serde_json::to_string(b).unwrap_or_default().trim_matches('"')))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let apps = start_apps(sb, &assignment);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let opts = Options {
        window,
        poll: Duration::from_millis(50),
        kill_connections: true,
        recycle_deadline: Duration::from_secs(30),
        replica_timeout: Duration::from_secs(30),
        restore_deadline: Duration::from_secs(60),
        sql_errlog: sb.primary.sql_errlog.clone(),
        ..Options::default()
    };
    let replicas: Vec<crate::db::ConnectSpec> = replica.map(|r| r.connect_spec()).into_iter().collect();
    let mut turns = Vec::new();
    for (app, behaviour, loads) in &apps {
        let mut server = crate::db::Server::connect(&sb.primary.connect_spec()).await?;
        let inv = crate::inventory::take(&mut server).await?;
        server.close().await;
        let tables = guide::service_tables(&inv, &svc);
        let account = format!("'{app}'@'%'");
        let plan = crate::plan::build(&inv, &policy, "media", &account, &Default::default())?;
        let header = Record::Header {
            format: JOURNAL_FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            service: "media".into(),
            policy: "policies/shop-media.toml".into(),
            tables: tables.clone(),
        };
        let mut s = Session::open(&work.join("media.journal"), header, &sb.primary.connect_spec(), &replicas, opts.clone()).await?;
        out.status(&format!("\n== {account} ({}): cut, watch {window:?}", serde_json::to_string(behaviour)?.trim_matches('"')));
        let deps = guide::dependents(&inv, &tables);
        let result = s.cut_and_watch(&plan, &account, &tables, &deps, vec![], out).await?;
        let end = Instant::now();
        let recovered_after =
            if result.restore.is_some() && *behaviour == Behaviour::ReadsServiceTable { recovered(loads, end).await } else { None };
        if result.verdict != behaviour.expected() {
            out.warn(&format!("{account}: expected {}, got {}", behaviour.expected().name(), result.verdict.name()));
        }
        s.close().await;
        turns.push(DemoTurn { account, behaviour: *behaviour, result, recovered_after, app: loads[0].stats() });
    }
    for (_, _, loads) in apps {
        for l in loads {
            l.stop().await;
        }
    }
    Ok(turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_is_a_permutation() {
        for seed in 0..50 {
            let a = assign(seed);
            let mut names: Vec<&str> = a.iter().map(|x| x.0).collect();
            names.sort();
            assert_eq!(names, APPS.to_vec());
            assert_eq!(a[0].1, Behaviour::ReadsServiceTable);
        }
        let firsts: std::collections::BTreeSet<&str> = (0..50).map(|s| assign(s)[0].0).collect();
        assert_eq!(firsts.len(), 3, "every app gets to be the reader for some seed");
    }
}
