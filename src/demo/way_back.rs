//! The way home after the demo's promotion (issue 16): sync-back copies the media service's
//! writes on the new server back to the old primary's archived copy, a few of them are shown
//! arriving there, then `promote revert` gives the service back to the old primary while it
//! writes (every acknowledged number ends up there).
#![allow(clippy::disallowed_methods)] // the demo's own sandbox: reads of the copy and the service's simulated writes

use crate::engine::node::Node;
use crate::journal::{Journal, Record, JOURNAL_FORMAT};
use crate::model::TableName;
use crate::output::Output;
use crate::promote::run::{OwnerRecord, PromoteState};
use crate::sandbox::Sandbox;
use crate::syncback::{self, position::Position, Plan};
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the way back showed.
#[derive(Debug, Clone)]
pub struct WayBack {
    /// Writes made on the new server and seen arriving on the old copy, and how long the last
    /// of them took to arrive.
    pub arrived: usize,
    pub arrival_ms: u128,
    /// The service's writes during the revert: acknowledged, and found on the old primary.
    pub acknowledged: usize,
    pub on_old_primary: usize,
    /// The revert's fence to its end.
    pub revert: String,
}

const FIRST: i64 = 2_000_000;

/// Runs sync-back from the promotion's journaled position, shows writes arriving, reverts.
pub async fn way_back(sb: &Sandbox, work: &Path, out: &mut Output) -> anyhow::Result<WayBack> {
    let replica = sb.replica.as_ref().ok_or_else(|| anyhow::anyhow!("the demo sandbox has no replica"))?;
    let promotion = Journal::read(&work.join("media.promote.journal"))?;
    let st = PromoteState::fold(&promotion);
    let start: Position = serde_json::from_value(st.detail("catch-up")["sync_back_from"].clone())?;
    let Some(Record::Header { tables, .. }) = promotion.first().map(|e| e.record.clone()) else {
        anyhow::bail!("the promotion's journal has no header")
    };
    let pairs: Vec<(TableName, TableName)> =
        tables.iter().map(|t| (t.clone(), TableName::new(&t.schema, format!("_{}_pf_archived", t.name)))).collect();
    let header = |what: &str| Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: "media".into(),
        policy: format!("policies/shop-media.toml ({what})"),
        tables: tables.clone(),
    };
    let plan = Plan {
        service: "media".into(),
        source: replica.connect_spec(),
        target: sb.primary.connect_spec(),
        tables: pairs,
        start: Some(start),
    };
    let mut sj = Journal::open_or_create(&work.join("media.syncback.journal"), header("sync-back"))?;
    let ready = syncback::prepare(&mut sj, &plan, out).await?;
    let sync = tokio::spawn(async move {
        let mut quiet = Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
        syncback::run(ready, &syncback::Options::default(), &mut quiet).await
    });
    // The service writes on the new server (where the promotion's hook sent it).
    let target = work.join("media-writes-go-to");
    std::fs::write(&target, "replica")?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(i64, Instant)>::new()));
    let writer = tokio::spawn(super::finish::write_numbers(
        sb.primary.opts_as("svc_media", "demo-media-pw"),
        replica.opts_as("svc_media", "demo-media-pw"),
        target.clone(),
        stop.clone(),
        acked.clone(),
        FIRST,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (arrived, arrival_ms) = arrivals(sb, &acked).await?;
    out.status(&format!(
        "  {arrived} write(s) on the new server arrived on the old copy; the last one {arrival_ms} ms after it was acknowledged"
    ));
    let revert = revert(sb, work, &promotion, &st, &target, header("revert"), out).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    // The revert ended sync-back (its connection killed once it caught up).
    let _ = tokio::time::timeout(Duration::from_secs(5), sync).await;
    let revert = revert?;
    let acked: Vec<i64> = acked.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|a| a.0).collect();
    let mut c = sb.primary.conn().await?;
    let on_old: Vec<i64> = c.query(format!("SELECT id FROM shop.media_variants WHERE size = 'demo-seq' AND id >= {FIRST}")).await?;
    drop(c);
    let on_old: std::collections::BTreeSet<i64> = on_old.into_iter().collect();
    Ok(WayBack {
        arrived,
        arrival_ms,
        acknowledged: acked.len(),
        on_old_primary: acked.iter().filter(|n| on_old.contains(n)).count(),
        revert,
    })
}

/// Waits until every number acknowledged so far is on the old copy; returns how many and how
/// long after its acknowledgement the last one arrived.
async fn arrivals(sb: &Sandbox, acked: &Arc<Mutex<Vec<(i64, Instant)>>>) -> anyhow::Result<(usize, u128)> {
    let (n, last, at) = {
        let a = acked.lock().unwrap_or_else(|e| e.into_inner());
        (a.len(), a.last().map(|x| x.0).unwrap_or(FIRST), a.last().map(|x| x.1).unwrap_or_else(Instant::now))
    };
    let mut c = sb.primary.conn().await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sql =
            format!("SELECT COUNT(*) FROM shop._media_variants_pf_archived WHERE size = 'demo-seq' AND id BETWEEN {FIRST} AND {last}");
        let got: Option<i64> = c.query_first(sql).await?;
        if got.unwrap_or(0) as usize >= n {
            return Ok((n, at.elapsed().as_millis()));
        }
        if Instant::now() >= deadline {
            anyhow::bail!("sync-back did not bring the new server's writes to the old copy within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revert(
    sb: &Sandbox,
    work: &Path,
    promotion: &[crate::journal::Entry],
    st: &PromoteState,
    target: &Path,
    header: Record,
    out: &mut Output,
) -> anyhow::Result<String> {
    let replica = sb.replica.as_ref().ok_or_else(|| anyhow::anyhow!("the demo sandbox has no replica"))?;
    let Record::Header { tables, .. } = &header else { anyhow::bail!("not a header") };
    let r = crate::promote::revert::Revert {
        service: "media",
        tables: tables.clone(),
        owners: st.record::<OwnerRecord>("owner")?.owners,
        promotion,
        lock_wait: Duration::from_secs(3),
        sync_timeout: Duration::from_secs(30),
        writes_back_hook: Some(format!("echo primary > '{}'", target.display())),
        hook_timeout: Duration::from_secs(30),
        smoke_as: None,
        failsafe: Some(Duration::from_secs(10)),
    };
    let mut j = Journal::open_or_create(&work.join("media.revert.journal"), header)?;
    let mut new = Node::connect(&replica.connect_spec(), "new-server").await?;
    let mut old = Node::connect(&sb.primary.connect_spec(), "old-primary").await?;
    let v = crate::promote::revert::revert(&mut j, &mut new, &mut old, &r, out).await;
    new.server.close().await;
    old.server.close().await;
    let v = v?;
    Ok(format!("revert done: fence to end {} ms", v["fence_to_end_ms"]))
}
