//! `privfence plan`: the statements that cut one account off a service's tables, and their
//! inverse. Nothing is executed.

use super::args::ConnectArgs;
use crate::error::ExitCode;
use crate::output::Output;
use crate::plan::saved::{SavedOptions, SavedPlan};
use crate::plan::{self, PlanOptions};
use crate::report;
use std::path::PathBuf;

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Table,
    Sql,
    Json,
    /// One line per step: id, account, kind, forward, inverse, why.
    Tsv,
}

const EXAMPLES: &str = "Examples:
  privfence plan --policy policies/ --service media --account \"'app'@'%'\"
  privfence plan --policy policies/ --service media --account app --format sql
  privfence plan --policy policies/ --service media --account app --out app.plan.json
  privfence session start --policy policies/ --service media --plan app.plan.json

A saved plan (--out) is applied exactly by `session start --plan`, which refuses it (exit 2,
nothing changed) when the server no longer gives the same plan (its fingerprint changed).";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct PlanArgs {
    /// A policy file or folder.
    #[arg(long)]
    pub policy: PathBuf,
    /// The service whose tables the account loses.
    #[arg(long)]
    pub service: String,
    /// `'user'@'host'`, or a bare user name for all its host rows.
    #[arg(long)]
    pub account: String,
    /// Plan even though the account is the DEFINER of objects that touch the service's tables
    /// (they will fail for everyone who uses them).
    #[arg(long)]
    pub acknowledge_definer: bool,
    /// Also plan the server-wide change to MariaDB's PUBLIC or MySQL's mandatory roles.
    #[arg(long)]
    pub include_everyone: bool,
    /// Plan an account the policy exempts (owners are always refused).
    #[arg(long)]
    pub even_if_exempt: bool,
    #[arg(long, value_enum, ignore_case = true, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
    /// Also write the plan, with its fingerprint and the options it was built with, to this
    /// file, for `session start --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: PlanArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let today = chrono::Local::now().date_naive();
    let policy = match crate::policy::load(&args.policy, today) {
        Ok(p) => p,
        Err(e) => {
            out.status(&e.to_string());
            return Ok(ExitCode::Error);
        }
    };
    let mut server = super::connect(&args.connect).await?;
    let inv = crate::inventory::take(&mut server).await?;
    let tool = server.current_user.clone();
    let target = server.target.clone();
    server.close().await;
    let opts = PlanOptions {
        acknowledge_definer: args.acknowledge_definer,
        include_everyone: args.include_everyone,
        even_if_exempt: args.even_if_exempt,
        today: Some(today),
    };
    // One index of the inventory for the analysis, the rewrite, the self-check and the grantor check.
    let ix = crate::access::index::Index::new(&inv);
    let p = plan::build_with(&ix, &policy, &args.service, &args.account, &opts)?;
    let problems = plan::grantor_problems_with(&ix, &tool, &p);
    match args.format {
        PlanFormat::Json => out.data(&report::plan::json(&p, &problems)?),
        PlanFormat::Sql => out.data(&report::plan::sql(&p)),
        PlanFormat::Table => out.data(&report::plan::table(&p, &problems)),
        PlanFormat::Tsv => out.data(&report::plan::tsv(&p)),
    }
    if let Some(path) = &args.out {
        let options = SavedOptions {
            acknowledge_definer: args.acknowledge_definer,
            include_everyone: args.include_everyone,
            even_if_exempt: args.even_if_exempt,
        };
        SavedPlan::new(&p, &args.account, options, &target).save(path)?;
        out.status(&format!("plan saved to {} (fingerprint {})", path.display(), p.fingerprint));
    }
    if p.is_empty() {
        out.status(&format!(
            "{} cannot touch the tables of service {:?}: nothing to do",
            p.accounts.iter().map(|a| a.sql()).collect::<Vec<_>>().join(", "),
            p.service
        ));
    }
    for w in &problems {
        out.warn(&format!("privfence's account could not apply or undo this plan: {w}"));
    }
    // The process exits next: freeing the index and a large inventory is wasted work.
    std::mem::forget(ix);
    std::mem::forget(inv);
    Ok(ExitCode::Ok)
}
