//! `privfence audit`: check servers against policies, by hand or on a schedule.

use super::args::{AccountFilterArgs, ConnectArgs, FormatArgs};
use crate::audit::{baseline, fleet, AuditReport, AUDIT_FORMAT};
use crate::error::ExitCode;
use crate::notify::{self, Delivery, Notice, Urgency};
use crate::output::{Format, Output};
use crate::report;
use chrono::NaiveDate;
use std::path::PathBuf;
use std::sync::Arc;

const EXAMPLES: &str = "Examples:
  privfence audit --policy policies/ --defaults-file ~/.privfence.cnf
  privfence audit --policy policies/ --servers servers.toml --summary
  privfence audit --policy policies/ --exclude-account 'root@*' --format tsv
  privfence audit --policy policies/ --baseline reports/audit-20261201T000000.000Z.json --notify

--account/--exclude-account and --summary change what is printed; the reports written to --out
and the exit code always cover every finding.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct AuditArgs {
    /// A policy file, or a folder of *.toml policy files.
    #[arg(long)]
    pub policy: PathBuf,
    /// Audit the servers listed in this file (TOML, see docs/policies.md) instead of one.
    #[arg(long, conflicts_with_all = ["host", "url", "socket"])]
    pub servers: Option<PathBuf>,
    /// A name for the single server in reports [default: its address].
    #[arg(long)]
    pub name: Option<String>,
    /// Compare grants with this replica (HOST:PORT, same credentials); repeatable.
    #[arg(long = "replica")]
    pub replicas: Vec<String>,
    /// How many servers to audit at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Where the Markdown and JSON reports go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// An earlier JSON report: list the findings that appeared and disappeared since.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Send a desktop notification when drift is found (falls back to a warning without one).
    #[arg(long)]
    pub notify: bool,
    /// Run this command with the Markdown report's path as "$1" (env: PRIVFENCE_REPORT,
    /// PRIVFENCE_REPORT_JSON, PRIVFENCE_EXIT, PRIVFENCE_SUMMARY).
    #[arg(long)]
    pub exec: Option<String>,
    /// Audit as of this day (exemption expiry), instead of today. For tests and what-ifs.
    /// Also write Prometheus metrics for node_exporter's textfile collector to this file
    /// (atomically): findings by server, service and kind, servers audited, seconds taken, the
    /// time of the last successful audit.
    #[arg(long)]
    pub prom_file: Option<PathBuf>,
    /// Print nothing when there is no drift (exit 0); findings and errors are still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(long, hide = true)]
    pub today: Option<NaiveDate>,
    /// One row per account and server: its findings by kind, services, privileges, paths.
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub accounts: AccountFilterArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

pub async fn run(args: AuditArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let today = args.today.unwrap_or_else(|| chrono::Local::now().date_naive());
    let policy = match crate::policy::load(&args.policy, today) {
        Ok(p) => p,
        Err(e) => {
            out.status(&e.to_string());
            return Ok(ExitCode::Error);
        }
    };
    for w in &policy.warnings {
        out.warn(&w.to_string());
    }
    let old = args.baseline.as_ref().map(|p| baseline::load(p)).transpose()?;
    let targets = match &args.servers {
        Some(f) => fleet::load_servers(f)?,
        None => {
            let name = args.name.clone().unwrap_or_else(|| {
                args.connect.input().resolve(&|k| std::env::var(k).ok()).map(|s| s.target()).unwrap_or_else(|_| "server".into())
            });
            vec![fleet::Target { name, input: args.connect.input(), replicas: args.replicas.clone() }]
        }
    };
    if !args.quiet {
        out.status(&format!("auditing {} server(s) against {} service(s) ...", targets.len(), policy.services.len()));
    }
    let started = std::time::Instant::now();
    let files = policy.files.clone();
    // A bar over the fleet's servers, on a terminal only (not with --quiet or JSON).
    out.allow_bars(!args.quiet && args.format.format != Format::Json && targets.len() > 1);
    let bar = out.bar(targets.len() as u64, "auditing servers");
    let servers = fleet::audit_all(targets, Arc::new(policy), today, args.parallel, &mut |n| bar.set(n as u64)).await;
    bar.finish();
    let mut report =
        AuditReport { format: AUDIT_FORMAT, generated_at: chrono::Utc::now(), policy: files, servers, baseline: None, exit_code: 0 };
    if let (Some(old), Some(path)) = (&old, &args.baseline) {
        report.baseline = Some(baseline::compare(old, path, &report));
    }
    report.exit_code = report.compute_exit_code();
    let (md, json) = write_reports(&report, &args.out)?;
    if let Some(p) = &args.prom_file {
        let text = report::prom::render(&report, started.elapsed(), report::prom::previous_success(p));
        report::prom::write_atomically(p, &text).map_err(|e| anyhow::anyhow!("writing the metrics file {}: {e}", p.display()))?;
    }
    let silent = args.quiet && report.exit_code == 0;
    if !silent {
        print(&report, &args, out)?;
        out.status(&format!("reports: {} and {}", md.display(), json.display()));
    }
    let summary = summary(&report);
    if args.notify && report.exit_code != 0 {
        let urgency = if report.exit_code == 1 { Urgency::Critical } else { Urgency::Normal };
        match notify::notify(&Notice::new(&summary, md.display().to_string()).with_urgency(urgency)).await {
            Delivery::Delivered => out.status("desktop notification sent"),
            Delivery::Fallback(why) => out.warn(&format!("no desktop notification ({why}): {summary}")),
        }
    }
    if let Some(cmd) = &args.exec {
        let code = report.exit_code.to_string();
        let json_path = json.display().to_string();
        let env =
            [(notify::ENV_EXIT, code.as_str()), (notify::ENV_SUMMARY, summary.as_str()), ("PRIVFENCE_REPORT_JSON", json_path.as_str())];
        match notify::run_hook(cmd, &md, &env, notify::HOOK_TIMEOUT).await {
            Ok(st) if st.success() => {}
            Ok(st) => out.warn(&format!("--exec command {}", notify::describe_status(&st))),
            Err(e) => out.warn(&format!("--exec command: {e}")),
        }
    }
    Ok(match report.exit_code {
        0 => ExitCode::Ok,
        1 => ExitCode::Found,
        _ => ExitCode::Error,
    })
}

/// The report on stdout, as the format, summary and account filter say.
fn print(r: &AuditReport, args: &AuditArgs, out: &mut Output) -> anyhow::Result<()> {
    let filter = args.accounts.filter();
    if args.summary {
        let s = report::summary::audit(r, &filter);
        match args.format.format {
            Format::Json => out.data(&(serde_json::to_string_pretty(&s)? + "\n")),
            Format::Tsv => out.data(&report::summary::audit_tsv(&s)),
            Format::Table => out.data(&report::summary::audit_table(&s)),
        }
        return Ok(());
    }
    match args.format.format {
        Format::Json if filter.is_empty() => out.data(&report::audit::json(r)?),
        Format::Json => out.data(&report::audit::json(&report::audit::filtered(r, &filter))?),
        Format::Tsv => out.data(&report::audit::tsv(r, &filter)),
        Format::Table => out.data(&report::audit::table_filtered(r, &filter)),
    }
    Ok(())
}

fn summary(r: &AuditReport) -> String {
    let n: usize = r.servers.iter().map(|s| s.findings.len()).sum();
    let failed = r.servers.iter().filter(|s| s.error.is_some()).count();
    match r.exit_code {
        0 => "privfence: no grant drift".into(),
        1 => format!("privfence: grant drift, {n} finding(s) on {} server(s)", r.servers.iter().filter(|s| !s.findings.is_empty()).count()),
        _ => format!("privfence: {failed} server(s) could not be audited; {n} finding(s) elsewhere"),
    }
}

/// Writes `audit-<time>.md` and `.json` into `dir`.
fn write_reports(r: &AuditReport, dir: &std::path::Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create the report folder {}: {e}", dir.display()))?;
    let stem = format!("audit-{}", r.generated_at.format("%Y%m%dT%H%M%S%.3fZ"));
    let md = dir.join(format!("{stem}.md"));
    let json = dir.join(format!("{stem}.json"));
    std::fs::write(&md, report::audit::markdown(r)).map_err(|e| anyhow::anyhow!("writing {}: {e}", md.display()))?;
    std::fs::write(&json, report::audit::json(r)?).map_err(|e| anyhow::anyhow!("writing {}: {e}", json.display()))?;
    Ok((md, json))
}
