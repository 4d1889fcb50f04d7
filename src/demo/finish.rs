//! The end of the method on the demo's sandbox: the remaining non-owners cut one at a time, each
//! watched, until only the media service's own account can touch its tables ("isolation
//! complete"); then the service's tables promoted onto the replica while the service writes.
#![allow(clippy::disallowed_methods)] // the demo's own sandbox: the boundary fix and the service's simulated writes

use crate::journal::{Record, Verdict, JOURNAL_FORMAT};
use crate::output::Output;
use crate::sandbox::Sandbox;
use crate::session::{guide, Options, Session};
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One cut of the isolation's end.
#[derive(Debug, Clone)]
pub struct Cut {
    pub account: String,
    pub paths: Vec<String>,
    pub verdict: Verdict,
    pub reason: String,
}

/// Cuts the remaining non-owners one at a time (each watched for `window`; an account with no
/// activity at all is kept cut, as the guide advises for accounts nobody uses) until the
/// isolation is complete. Stops at the first restore. Returns the cuts and whether complete.
pub async fn isolate(
    sb: &Sandbox,
    policy_path: &Path,
    window: Duration,
    work: &Path,
    out: &mut Output,
) -> anyhow::Result<(Vec<Cut>, bool)> {
    let today = chrono::Local::now().date_naive();
    let policy = crate::policy::load(policy_path, today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let svc = policy.service("media").expect("the demo policy has the media service").clone();
    let replicas: Vec<crate::db::ConnectSpec> = sb.replica.iter().map(|r| r.connect_spec()).collect();
    let opts = Options {
        window,
        poll: Duration::from_millis(50),
        kill_connections: true,
        keep_inconclusive: true,
        recycle_deadline: Duration::from_secs(30),
        replica_timeout: Duration::from_secs(30),
        restore_deadline: Duration::from_secs(60),
        sql_errlog: sb.primary.sql_errlog.clone(),
        ..Options::default()
    };
    let mut cuts = Vec::new();
    for _ in 0..12 {
        let mut server = crate::db::Server::connect(&sb.primary.connect_spec()).await?;
        let inv = crate::inventory::take(&mut server).await?;
        server.close().await;
        let tables = guide::service_tables(&inv, &svc);
        let mut left = guide::remaining(&inv, &svc, &tables, today);
        if left.is_empty() {
            return Ok((cuts, true));
        }
        // Users of a definer's objects first, the definers of objects others use last.
        let definers: Vec<String> = left.iter().flat_map(|r| r.paths.iter()).filter_map(|p| definer_in(p)).collect();
        left.sort_by_key(|r| (definers.contains(&r.account.sql()), !r.paths.iter().any(|p| p.contains("definer")), r.account.clone()));
        let next = left.remove(0);
        let account = next.account.sql();
        if cuts.iter().any(|c: &Cut| c.account == account) {
            anyhow::bail!(
                "{account} was cut but can still touch the media tables ({}): no grant change removes that path",
                next.paths.join("; ")
            );
        }
        // The definer goes last, once every user of its objects was cut: nobody is left to break.
        let plan_opts = crate::plan::PlanOptions { acknowledge_definer: true, ..Default::default() };
        let plan = crate::plan::build(&inv, &policy, "media", &account, &plan_opts)?;
        let header = Record::Header {
            format: JOURNAL_FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            service: "media".into(),
            policy: "policies/shop-media.toml".into(),
            tables: tables.clone(),
        };
        let mut s = Session::open(&work.join("media.journal"), header, &sb.primary.connect_spec(), &replicas, opts.clone()).await?;
        out.status(&format!("\n== {account}: cut, watch {window:?} ({})", next.paths.join("; ")));
        let deps = guide::dependents(&inv, &tables);
        let r = s.cut_and_watch(&plan, &account, &tables, &deps, vec![], out).await?;
        s.close().await;
        let restored = r.verdict == Verdict::Restored;
        cuts.push(Cut { account, paths: next.paths, verdict: r.verdict, reason: r.reason });
        if restored {
            return Ok((cuts, false));
        }
    }
    Ok((cuts, false))
}

/// The account named by `DEFINER='u'@'h'` in a path's description.
fn definer_in(path: &str) -> Option<String> {
    let rest = &path[path.find("DEFINER=")? + "DEFINER=".len()..];
    Some(rest[..rest.find(')')?].to_string())
}

/// What the promotion showed.
#[derive(Debug, Clone)]
pub struct Promoted {
    pub acknowledged: usize,
    pub on_new_server: usize,
    pub write_gap: Duration,
    pub steps: String,
}

/// The statements that cut the sample's ties between the media tables and the rest of `shop`
/// (a foreign key, a definer view, a definer procedure): what the teams fix before a move.
const BOUNDARY_FIX: &[&str] = &[
    "ALTER TABLE shop.media_attachments DROP FOREIGN KEY media_attachments_ibfk_1",
    "DROP VIEW shop.order_media",
    "DROP PROCEDURE shop.purge_old_media",
];

/// Cuts the sample's ties between the media tables and the rest of `shop`; returns the
/// statements run. No grant can take away what a foreign key's cascade or another account's
/// definer object reaches: this is the fix the teams make before the last cuts and the move.
pub async fn fix_boundary(sb: &Sandbox) -> anyhow::Result<Vec<String>> {
    let mut admin = sb.primary.conn().await?;
    for sql in BOUNDARY_FIX {
        admin.query_drop(*sql).await.map_err(|e| anyhow::anyhow!("{sql}: {e}"))?;
    }
    drop(admin);
    sb.wait_replica_caught_up(Duration::from_secs(30)).await?;
    Ok(BOUNDARY_FIX.iter().map(|s| s.to_string()).collect())
}

/// Promotes the media tables onto the sandbox's replica while the service writes numbered rows
/// (first to the primary, to the new server once the writes hook has run).
pub async fn promote(sb: &Sandbox, policy_path: &Path, work: &Path, out: &mut Output) -> anyhow::Result<Promoted> {
    let replica = sb.replica.as_ref().ok_or_else(|| anyhow::anyhow!("the demo sandbox has no replica"))?;
    let target = work.join("media-writes-go-to");
    std::fs::write(&target, "primary")?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(i64, Instant)>::new()));
    let writer = tokio::spawn(write_numbers(
        sb.primary.opts_as("svc_media", "demo-media-pw"),
        replica.opts_as("svc_media", "demo-media-pw"),
        target.clone(),
        stop.clone(),
        acked.clone(),
        1_000_000,
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let today = chrono::Local::now().date_naive();
    let policy = crate::policy::load(policy_path, today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut primary = crate::engine::node::Node::connect(&sb.primary.connect_spec(), "primary").await?;
    let mut rep = crate::engine::node::Node::connect(&replica.connect_spec(), "replica").await?;
    let inv = crate::inventory::take(&mut primary.server).await?;
    let svc_def = policy.service("media").expect("media").clone();
    let tables = guide::service_tables(&inv, &svc_def);
    let owners: Vec<_> = inv.login_accounts().filter(|x| svc_def.is_owner(&x.name)).map(|x| x.name.clone()).collect();
    let svc = crate::promote::run::Service {
        policy: &policy,
        name: "media",
        tables: tables.clone(),
        owners,
        today,
        tool: primary.server.current_user.clone(),
    };
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: "media".into(),
        policy: "policies/shop-media.toml".into(),
        tables,
    };
    let jpath = work.join("media.promote.journal");
    let mut j = crate::journal::Journal::open_or_create(&jpath, header)?;
    let opts = crate::promote::run::Options {
        hooks: crate::promote::run::Hooks { writes: Some(format!("echo replica > '{}'", target.display())), ..Default::default() },
        yes: true,
        archive_watch: Duration::from_millis(500),
        failsafe: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let result = crate::promote::run::run(&mut j, &mut primary, &mut rep, &inv, &svc, &opts, out).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    primary.server.close().await;
    let state = crate::promote::run::PromoteState::fold(j.entries());
    result?;
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
    let mut c = mysql_async::Conn::new(replica.opts_as("svc_media", "demo-media-pw")).await?;
    let on_new: Vec<i64> = c.query("SELECT id FROM shop.media_variants WHERE size = 'demo-seq'").await?;
    c.disconnect().await.ok();
    let on_new: std::collections::BTreeSet<i64> = on_new.into_iter().collect();
    let write_gap = acked.windows(2).map(|w| w[1].1.duration_since(w[0].1)).max().unwrap_or_default();
    Ok(Promoted {
        acknowledged: acked.len(),
        on_new_server: acked.iter().filter(|(n, _)| on_new.contains(n)).count(),
        write_gap,
        steps: format!(
            "{} step(s) done, point of no return {}",
            state.steps.len(),
            if state.point_of_no_return { "passed" } else { "not reached" }
        ),
    })
}

/// The media service's writer: one numbered row at a time, to the server the target file names;
/// a failed write is retried with the same number (the fence refuses writes for a moment).
pub(crate) async fn write_numbers(
    old: mysql_async::Opts,
    new: mysql_async::Opts,
    target: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(i64, Instant)>>>,
    first: i64,
) {
    let mut n: i64 = first;
    let mut conn: Option<(String, mysql_async::Conn)> = None;
    while !stop.load(Ordering::Relaxed) {
        let to = std::fs::read_to_string(&target).unwrap_or_default().trim().to_string();
        if conn.as_ref().is_none_or(|(t, _)| *t != to) {
            let opts = if to == "replica" { new.clone() } else { old.clone() };
            conn = mysql_async::Conn::new(opts).await.ok().map(|c| (to.clone(), c));
        }
        let ok = match conn.as_mut() {
            // A duplicate key: the row committed but its acknowledgement was lost; it is there once.
            Some((_, c)) => {
                match c.exec_drop("INSERT INTO shop.media_variants (id, attachment_id, size) VALUES (?, 0, 'demo-seq')", (n,)).await {
                    Ok(()) => true,
                    Err(mysql_async::Error::Server(e)) => e.code == 1062,
                    Err(_) => false,
                }
            }
            None => false,
        };
        if ok {
            acked.lock().unwrap_or_else(|e| e.into_inner()).push((n, Instant::now()));
            n += 1;
        } else {
            conn = None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
