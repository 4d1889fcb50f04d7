//! `privfence demo`: the main job on a throwaway sandbox. Starts a primary and a replica, loads
//! the sample monolith and three app accounts with live workloads, prints the inventory, who can
//! touch the media service's tables and the audit, then runs the media service's guided session
//! without questions: one app's cut is restored, one passes, one is inconclusive.

use super::sandbox::FlavourArg;
use crate::db::Server;
use crate::error::ExitCode;
use crate::output::Output;
use crate::sandbox::{Sandbox, SandboxOptions, Topology};
use crate::{access, demo, inventory, report};
use mysql_async::prelude::Queryable;
use std::time::Duration;

/// A named temporary file holding `text` (removed on drop).
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_with(text: &str) -> anyhow::Result<TempFile> {
    let p = std::env::temp_dir().join(format!("privfence-demo-policy-{}.toml", std::process::id()));
    std::fs::write(&p, text)?;
    Ok(TempFile(p))
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Which server to run the demo on.
    #[arg(long, value_enum, ignore_case = true, default_value_t = FlavourArg::Mariadb)]
    pub flavour: FlavourArg,
    /// Keep the sandbox running afterwards (in .sandbox/demo-FLAVOUR) to try other commands
    /// on it; `privfence sandbox down --dir .sandbox/demo-<flavour>` removes it.
    #[arg(long)]
    pub keep: bool,
    /// Which app runs which workload [default: from the clock; printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The watch window of each account's turn.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "6s")]
    pub window: Duration,
    /// Where the session's reports go.
    #[arg(long, default_value = "reports")]
    pub reports: std::path::PathBuf,
    /// Stop after the three apps' session (skip finishing the isolation and the promotion).
    #[arg(long)]
    pub no_finish: bool,
}

/// The end of the method: the remaining non-owners cut one at a time to "isolation complete",
/// then the media tables promoted onto the replica while the media service writes, then the
/// way back: sync-back and a revert.
async fn finish(sb: &Sandbox, work: &std::path::Path, window: Duration, out: &mut Output) -> anyhow::Result<bool> {
    out.data("\n== Finishing the isolation: every other account that can still touch the media tables, cut one at a time and watched\n");
    out.data("(the apps' workloads have stopped: as if each team had moved its reads to the media service, the method's step 5)\n");
    let policy_path = work.join("shop-media.toml");
    let fixed = demo::finish::fix_boundary(sb).await?;
    out.data(&format!("the boundary fixed first (a cascade or a definer object is reached whatever the grants): {}\n", fixed.join("; ")));
    let (cuts, complete) = demo::finish::isolate(sb, &policy_path, window, work, out).await?;
    for c in &cuts {
        out.data(&format!("{}: {} ({}): {}\n", c.account, c.verdict.name().to_uppercase(), c.paths.join("; "), c.reason));
    }
    if !complete {
        out.data("isolation NOT complete: a cut was restored; investigate, fix, and cut again (the method's step 5)\n");
        return Ok(false);
    }
    out.data("isolation complete: only 'svc_media'@'%' (and the exempt accounts) can touch the media tables\n");
    out.data("\n== Promotion: the media tables move onto the replica while the media service writes numbered rows\n");
    let p = demo::finish::promote(sb, &policy_path, work, out).await?;
    out.data(&format!(
        "{}; {} write(s) acknowledged, {} of them on the new server; the longest pause between two acknowledged writes: {} ms\n",
        p.steps,
        p.acknowledged,
        p.on_new_server,
        p.write_gap.as_millis()
    ));
    if p.acknowledged != p.on_new_server || p.acknowledged == 0 {
        return Ok(false);
    }
    out.data("\n== The way back: sync-back copies the new server's writes to the old copy, then a revert\n");
    let w = demo::way_back::way_back(sb, work, out).await?;
    out.data(&format!(
        "sync-back: {} write(s) on the new server arrived on the old copy (the last {} ms after it was acknowledged)\n",
        w.arrived, w.arrival_ms
    ));
    out.data(&format!(
        "{}; {} write(s) acknowledged during the way back, {} of them on the old primary\n",
        w.revert, w.acknowledged, w.on_old_primary
    ));
    Ok(w.arrived > 0 && w.acknowledged == w.on_old_primary)
}

/// The demo's sandbox: throwaway, or kept under `.sandbox/demo-FLAVOUR` (`--keep`).
async fn start_sandbox(args: &DemoArgs, flavour: crate::db::Flavour) -> anyhow::Result<Sandbox> {
    let mut opts = SandboxOptions::new(flavour, Topology::PrimaryReplica);
    // Row-based binary logs: sync-back after the promotion copies whole row images.
    opts.extra_args.push("--binlog-format=ROW".into());
    if args.keep {
        let dir = std::path::PathBuf::from(".sandbox").join(format!("demo-{}", flavour.name()));
        if dir.join("sandbox.json").exists() {
            anyhow::bail!("{} already holds a sandbox; `privfence sandbox down --dir {}` removes it", dir.display(), dir.display());
        }
        opts.dir = Some(dir);
        opts.watch_pid = None;
    }
    Ok(Sandbox::start(opts).await?)
}

/// The audit of the loaded primary against the demo's policy.
fn audit(inv: &crate::model::Inventory, spec: &crate::db::ConnectSpec, out: &mut Output) -> anyhow::Result<()> {
    let today = chrono::Local::now().date_naive();
    let policy_file = tempfile_with(demo::POLICY)?;
    let policy = crate::policy::load(policy_file.path(), today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let audit = crate::audit::ServerAudit {
        name: "demo primary".into(),
        target: spec.target(),
        flavour: Some(inv.server.flavour),
        version: Some(inv.server.version_string.clone()),
        error: None,
        findings: crate::audit::findings(inv, &policy, today),
        warnings: vec![],
        replicas: vec![],
    };
    let mut report = crate::audit::AuditReport {
        format: crate::audit::AUDIT_FORMAT,
        generated_at: chrono::Utc::now(),
        policy: vec!["policies/shop-media.toml".into()],
        servers: vec![audit],
        baseline: None,
        exit_code: 0,
    };
    report.exit_code = report.compute_exit_code();
    out.data("== Audit against policies/shop-media.toml (privfence audit)\n");
    out.data(&report::audit::table(&report));
    Ok(())
}

/// Each turn of the guided session: its verdict, signals, restore and the app's recovery;
/// true when every verdict was the expected one.
fn show_turns(turns: &[demo::DemoTurn], out: &mut Output) -> anyhow::Result<bool> {
    let mut ok = true;
    for t in turns {
        let r = &t.result;
        out.data(&format!(
            "\n{} ({}): {}: {}\n",
            t.account,
            serde_json::to_string(&t.behaviour)?.trim_matches('"'),
            r.verdict.name().to_uppercase(),
            r.reason
        ));
        for e in &r.evidence {
            out.data(&format!("    signal: {e}\n"));
        }
        for st in &r.screen_only {
            out.data(&format!("    statement (screen only): {st}\n"));
        }
        if let Some(rs) = &r.restore {
            out.data(&format!(
                "    restore: {} in {} ms; {} connection(s) opened during the cut ended\n",
                if rs.exact { "exact on the primary and the replica" } else { "NOT EXACT" },
                rs.took.as_millis(),
                rs.killed
            ));
        }
        if let Some(d) = t.recovered_after {
            out.data(&format!("    the app's statements succeed again {} ms after the restore\n", d.as_millis()));
        }
        ok &= r.verdict == t.behaviour.expected();
    }
    Ok(ok)
}

#[allow(clippy::disallowed_methods)] // loads the sample monolith into the demo's own sandbox
pub async fn run(args: DemoArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let flavour = args.flavour.into();
    out.status(&format!("starting a throwaway {flavour} primary and replica on loopback ..."));
    let sb = start_sandbox(&args, flavour).await?;
    out.status(&sb.connect_help());
    let mut admin = sb.primary.conn().await?;
    for stmt in demo::sample_sql(flavour).into_iter().chain(demo::apps_sql()) {
        admin.query_drop(&stmt).await.map_err(|e| anyhow::anyhow!("loading the sample: {stmt}: {e}"))?;
    }
    drop(admin);
    sb.wait_replica_caught_up(Duration::from_secs(30)).await?;
    let spec = sb.primary.connect_spec();
    let mut server = Server::connect(&spec).await?;
    let inv = inventory::take(&mut server).await?;
    let mismatches = inventory::verify::verify(&mut server, &inv).await?;
    server.close().await;
    out.data(&format!("== Inventory of the primary ({})\n", spec.target()));
    out.data(&report::inventory::table(&inv));
    if mismatches.is_empty() {
        out.data(&format!("SHOW GRANTS cross-check: the model matches for all {} accounts\n\n", inv.accounts.len()));
    } else {
        out.data(&report::inventory::mismatches_text(&mismatches));
    }
    let tables = access::resolve_tables(&inv, &[demo::SERVICE_TABLES.to_string()])?;
    out.data(&format!("== Who can touch the media service's tables ({})\n", demo::SERVICE_TABLES));
    out.data(&report::access::table(&access::analyse(&inv, &tables)));
    audit(&inv, &spec, out)?;
    let seed = args.seed.unwrap_or_else(|| chrono::Utc::now().timestamp_subsec_nanos() as u64);
    out.data(&format!(
        "\n== A guided session for the media service: three apps, each cut in turn on the primary and its replica (seed {seed})\n"
    ));
    let work = sb.dir.join("session");
    let turns = demo::session_demo(&sb, seed, args.window, &work, out).await?;
    let mut ok = show_turns(&turns, out)?;
    if ok && !args.no_finish {
        ok &= finish(&sb, &work, args.window.min(Duration::from_secs(3)), out).await?;
    }
    let state = crate::journal::Journal::read(&work.join("media.journal")).map(|e| crate::journal::State::fold(&e))?;
    let rep = report::session::build(&state, None);
    std::fs::create_dir_all(&args.reports)?;
    let md = args.reports.join(format!("demo-session-{}.md", flavour.name()));
    std::fs::write(&md, report::session::markdown(&rep))?;
    std::fs::write(args.reports.join(format!("demo-session-{}.json", flavour.name())), report::session::json(&rep)?)?;
    out.data(&format!("\nsession report: {}\n", md.display()));
    if args.keep {
        out.status(&format!("the sandbox keeps running: {}", sb.dir.display()));
        out.status(&format!("try: privfence audit --policy policies --defaults-file {}", sb.primary.client_cnf.display()));
        out.status(&format!("remove it with: privfence sandbox down --dir {}", sb.dir.display()));
    } else {
        sb.destroy()?;
    }
    Ok(if mismatches.is_empty() && ok { ExitCode::Ok } else { ExitCode::Found })
}
