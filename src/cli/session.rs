//! `privfence session start|status|resume|rollback`: guided revoke sessions.

use super::args::{parse_app_log, parse_duration, parse_failsafe_after, ConnectArgs};
use crate::db::ConnectSpec;
use crate::engine::interrupt::Interrupts;
use crate::error::ExitCode;
use crate::journal::{self, Journal, Record, Verdict, JOURNAL_FORMAT};
use crate::notify::{self, Notice, Urgency};
use crate::output::Output;
use crate::plan::{self, PlanOptions};
use crate::report;
use crate::session::{guide, Options, Session, TurnResult};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod status;

const START_EXAMPLES: &str = "Examples:
  privfence session start --policy policies/ --service media
  privfence session start --policy policies/ --service media --account \"'app'@'%'\" --window 30m
  privfence plan --policy policies/ --service media --account app --out app.plan.json
  privfence session start --policy policies/ --service media --plan app.plan.json --yes";

#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Start (or continue) the service's session: show who can still touch its tables, rank
    /// them by evidence of non-use, cut one account, watch, and restore on any abnormality.
    #[command(after_help = START_EXAMPLES)]
    Start(Box<StartArgs>),
    /// The session's accounts and verdicts, from the journal (no server needed).
    #[command(
        after_help = "Examples:\n  privfence session status --service media\n  privfence session status --service media --format json"
    )]
    Status(StatusArgs),
    /// After a crash or a kill: finish an interrupted restore, or restore a cut that has no
    /// verdict yet. The account's grants end exactly as before the cut.
    Resume(RecoverArgs),
    /// Restore accounts whose cut passed: one (`--account`), or every cut of the session.
    Rollback(RecoverArgs),
}

/// Flags every session command shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// A policy file or folder.
    #[arg(long)]
    pub policy: PathBuf,
    /// The service whose tables are being made private.
    #[arg(long)]
    pub service: String,
    /// The session's journal [default: $XDG_STATE_HOME/privfence/SERVICE.journal].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// A replica of the primary (HOST:PORT, same credentials); repeatable. Grants replicate:
    /// the cut is in force, and a restore done, only when every replica applied it.
    #[arg(long = "replica")]
    pub replicas: Vec<String>,
    /// Also use every replica the primary reports (`SHOW REPLICAS`; replicas started with
    /// `report_host`), with the same credentials.
    #[arg(long)]
    pub discover_replicas: bool,
    /// Where the session's Markdown and JSON reports go.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// No desktop notifications.
    #[arg(long)]
    pub no_notify: bool,
    /// Seconds a restore keeps trying to reach a server that is down.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub restore_deadline: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub common: Common,
    /// The account to cut (`'user'@'host'`, or a bare user for all its host rows). Without it,
    /// the candidates are listed (and, at a terminal, you are asked to pick one).
    #[arg(long)]
    pub account: Option<String>,
    /// Apply exactly this saved plan (`privfence plan --out FILE`): refused (exit 2, nothing
    /// changed) when the server no longer gives the same plan (its fingerprint changed).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["account", "acknowledge_definer", "even_if_exempt"])]
    pub plan: Option<PathBuf>,
    /// Answer yes to the checklist and confirmations (for scripts). The checklist: the
    /// account's code base has been examined for direct and indirect use of the service's
    /// tables, joins and views included.
    #[arg(long)]
    pub yes: bool,
    /// The watch window (`15m`, `90s`, `2h`).
    #[arg(long, value_parser = parse_duration, default_value = "15m")]
    pub window: Duration,
    /// Time between polls of the signal sources.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    pub poll: Duration,
    /// Kill the account's connections opened before the cut (they cache the old privileges)
    /// instead of waiting for them to recycle.
    #[arg(long)]
    pub kill_connections: bool,
    /// How long pre-cut connections may take to recycle before the cut is restored.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub recycle_deadline: Duration,
    /// How long a replica may take to apply the cut.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub replica_timeout: Duration,
    /// Go on although a replica is stopped, delayed, or attached but not listed.
    #[arg(long)]
    pub ack_replicas: bool,
    /// Keep an inconclusive cut (no table activity seen) instead of restoring it.
    #[arg(long)]
    pub keep_inconclusive: bool,
    /// Do not turn on what the watch needs to see (performance_schema statement consumers,
    /// MariaDB's userstat); by default they are turned on for the turn, journaled, and turned
    /// back off when it ends.
    #[arg(long)]
    pub no_watch_settings: bool,
    /// Cut although a server has no source that sees refused logins while the plan takes away a
    /// default database (an application that can no longer log in would go unseen there).
    #[arg(long)]
    pub accept_login_blind_spot: bool,
    /// A command run every `--check-every` during the watch; a non-zero exit restores.
    #[arg(long)]
    pub check: Option<String>,
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub check_every: Duration,
    /// An application log and a regular expression: a new line matching it restores
    /// (`PATH=REGEX`); repeatable.
    #[arg(long = "app-log", value_parser = parse_app_log)]
    pub app_logs: Vec<(PathBuf, regex::Regex)>,
    /// MariaDB's sql_errlog file, when readable from here (followed as it grows: the fastest
    /// signal on MariaDB).
    #[arg(long)]
    pub sql_errlog: Option<PathBuf>,
    /// Turn on the settings that improve evidence of non-use (journaled, turned back off) and
    /// sample for this long before ranking.
    #[arg(long, value_parser = parse_duration)]
    pub evidence_sample: Option<Duration>,
    /// List every account that can still touch the tables, and every ranked candidate with its
    /// evidence (by default the first 50 of each; any candidate can still be chosen by rank or
    /// by name).
    #[arg(long)]
    pub all_candidates: bool,
    /// A server_audit log readable from here (MariaDB), for evidence of use.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Cut although the account is the DEFINER of objects that touch the service's tables.
    #[arg(long)]
    pub acknowledge_definer: bool,
    /// Cut an account the policy exempts (owners are always refused).
    #[arg(long)]
    pub even_if_exempt: bool,
    /// The server-side fail-safe: an event on the primary restores the account by itself when
    /// privfence's heartbeat has been silent this long (privfence killed, hung, cut off).
    #[arg(long, value_parser = parse_failsafe_after, default_value = "30s")]
    pub failsafe_after: Duration,
    /// Cut without the server-side fail-safe (only this process can then restore the account).
    #[arg(long)]
    pub no_failsafe: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The service (for the default journal path).
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Same as `--format json` (kept for scripts written before `--format`).
    #[arg(long, hide = true)]
    pub json: bool,
    #[command(flatten)]
    pub format: super::args::FormatArgs,
}

#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only this account (rollback).
    #[arg(long)]
    pub account: Option<String>,
}

pub async fn run(cmd: SessionCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match cmd {
        SessionCommand::Start(a) => start(*a, out).await,
        SessionCommand::Status(a) => status::status(a, out),
        SessionCommand::Resume(a) => recover(a, false, out).await,
        SessionCommand::Rollback(a) => recover(a, true, out).await,
    }
}

fn journal_path(service: &str, given: &Option<PathBuf>) -> PathBuf {
    given.clone().unwrap_or_else(|| journal::default_path(service))
}

/// Everything a session command needs before it opens the session.
struct Context {
    policy: crate::policy::Policy,
    primary: ConnectSpec,
    replicas: Vec<ConnectSpec>,
    journal: PathBuf,
}

async fn context(c: &Common, out: &mut Output) -> anyhow::Result<Option<Context>> {
    let today = chrono::Local::now().date_naive();
    let policy = match crate::policy::load(&c.policy, today) {
        Ok(p) => p,
        Err(e) => {
            out.status(&e.to_string());
            return Ok(None);
        }
    };
    if policy.service(&c.service).is_none() {
        anyhow::bail!(
            "no service {:?} in {}; services: {}",
            c.service,
            c.policy.display(),
            policy.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let primary = c.connect.input().resolve(&|k| std::env::var(k).ok())?;
    let mut addresses = c.replicas.clone();
    if c.discover_replicas {
        let mut node = crate::engine::node::Node::connect(&primary, "primary").await?;
        for found in node.discover_replicas().await? {
            if !addresses.contains(&found) {
                out.status(&format!("discovered replica {found}"));
                addresses.push(found);
            }
        }
        node.server.close().await;
    }
    let replicas = addresses.iter().map(|r| primary.with_address(r)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Context { policy, primary, replicas, journal: journal_path(&c.service, &c.journal) }))
}

fn header(c: &Common, tables: &[crate::model::TableName]) -> Record {
    Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: c.service.clone(),
        policy: c.policy.display().to_string(),
        tables: tables.to_vec(),
    }
}

fn base_options(c: &Common) -> Options {
    Options { restore_deadline: c.restore_deadline, notify: !c.no_notify, ..Options::default() }
}

async fn start(a: StartArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    // Signals end the process as usual until the cut begins (the session guards from there).
    let interrupts = Interrupts::install()?;
    let Some(ctx) = context(&a.common, out).await? else { return Ok(ExitCode::Error) };
    let svc = ctx.policy.service(&a.common.service).expect("checked").clone();
    let today = chrono::Local::now().date_naive();
    // Read and analyse before anything is journaled or locked: bad input changes nothing.
    let mut server = crate::db::Server::connect(&ctx.primary).await?;
    let inv = crate::inventory::take(&mut server).await?;
    let tables = guide::service_tables(&inv, &svc);
    if tables.is_empty() {
        anyhow::bail!("service {:?} matches no table on {}; check the policy's table patterns", svc.name, server.target);
    }
    // The plan is built (and refused if it cannot be exact) before the journal is touched.
    let tool = server.current_user.clone();
    // One access index for the candidates, their evidence and the plan (10,000 accounts and
    // 100,000 table grants take a noticeable time to index).
    let ix = crate::access::index::Index::new(&inv);
    let preset = preset_plan(&a, &ix, &ctx.policy, &svc.name, &tool, today)?;
    let mut s = Session::open(&ctx.journal, header(&a.common, &tables), &ctx.primary, &ctx.replicas, start_options(&a, interrupts)).await?;
    let k = Start { policy: &ctx.policy, svc: &svc, ix: &ix, tables: &tables, tool: &tool, today };
    let mut prompt = |out: &mut Output, question: &str| -> String {
        out.status(question);
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line.trim().to_string()
    };
    let result = start_core(&a, &mut s, &mut server, &k, preset, &mut prompt, out).await;
    server.close().await;
    s.close().await;
    // The process exits next: freeing the index and a large inventory is wasted work.
    std::mem::forget(ix);
    std::mem::forget(inv);
    result
}

/// What `session start` read before the session opened.
struct Start<'a> {
    policy: &'a crate::policy::Policy,
    svc: &'a crate::policy::Service,
    /// The index of the inventory read before the session opened (`ix.inv`).
    ix: &'a crate::access::index::Index<'a>,
    tables: &'a [crate::model::TableName],
    tool: &'a crate::model::AccountName,
    today: chrono::NaiveDate,
}

/// The session's options from `session start`'s arguments.
fn start_options(a: &StartArgs, interrupts: Interrupts) -> Options {
    Options {
        window: a.window,
        poll: a.poll,
        kill_connections: a.kill_connections,
        recycle_deadline: a.recycle_deadline,
        replica_timeout: a.replica_timeout,
        keep_inconclusive: a.keep_inconclusive,
        watch_settings: !a.no_watch_settings,
        accept_login_blind_spot: a.accept_login_blind_spot,
        check: a.check.clone(),
        check_every: a.check_every,
        sql_errlog: a.sql_errlog.clone(),
        app_logs: a.app_logs.clone(),
        interrupts,
        failsafe: (!a.no_failsafe).then_some(a.failsafe_after),
        ..base_options(&a.common)
    }
}

/// `session start` on an open session: the candidates and their evidence, the account (preset,
/// or asked through `prompt`), the checklist, the replicas' health, the cut and its watch.
async fn start_core(
    a: &StartArgs,
    s: &mut Session,
    server: &mut crate::db::Server,
    k: &Start<'_>,
    preset: Option<(plan::Plan, String)>,
    prompt: &mut dyn FnMut(&mut Output, &str) -> String,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    if let Some(t) = s.journal.state().open_turn() {
        anyhow::bail!(
            "the turn of {} in {} is unfinished (interrupted?); run `privfence session resume` (restores it) or `session rollback` first",
            t.account,
            s.journal.path().display()
        );
    }
    let remaining = guide::remaining_with(k.ix, k.svc, k.tables, k.today);
    let shown = if a.all_candidates { remaining.len() } else { report::candidates::RANKED_SHOWN };
    out.data(&report::candidates::remaining(&remaining, shown));
    if remaining.is_empty() {
        out.status(&format!("isolation complete: only the owners of {:?} can touch its tables", k.svc.name));
        write_reports(&s.journal, Some(remaining), &a.common.reports, out)?;
        return Ok(ExitCode::Ok);
    }
    let ranked = ranked_candidates(a, s, server, k, &remaining, out).await?;
    let (plan, account) = match preset {
        Some(x) => x,
        None if out.is_live() && !a.yes => {
            let pick = prompt(out, "Account to cut (its rank, or 'user'@'host'; empty to stop):");
            let acc = match pick.parse::<usize>() {
                Ok(n) if n >= 1 && n <= ranked.len() => ranked[n - 1].account.sql(),
                _ => pick,
            };
            if acc.is_empty() {
                return Ok(ExitCode::Ok);
            }
            (build_plan(k.ix, k.policy, &k.svc.name, &acc, plan_options(a), k.tool)?, acc)
        }
        None => {
            out.status("pass --account to cut one of them (the first rows have the strongest evidence of non-use)");
            // The process exits next: thousands of candidates' evidence need not be freed.
            std::mem::forget(ranked);
            std::mem::forget(remaining);
            return Ok(ExitCode::Ok);
        }
    };
    let chosen = report::candidates::chosen_lines(&ranked, &plan.accounts);
    if plan.is_empty() {
        out.status(&format!("{account} cannot touch the tables of {:?}: nothing to do", k.svc.name));
        return Ok(ExitCode::Ok);
    }
    out.data(&report::plan::table(&plan, &[]));
    if !confirm_checklist(a, s, &account, &k.svc.name, out).await? {
        return Ok(ExitCode::Error);
    }
    let deps = guide::dependents_with(k.ix, k.tables);
    let result = match s.cut_and_watch(&plan, &account, k.tables, &deps, chosen, out).await {
        Ok(r) => r,
        // Refused before anything changed (the turn is closed as abandoned).
        Err(e) if s.journal.state().open_turn().is_none() => return Err(e.into()),
        Err(e) => {
            out.status(&format!("privfence: error: {e}"));
            out.status("the journal knows what was done: `privfence session resume` finishes the restore");
            return Ok(ExitCode::JournalAttention);
        }
    };
    let code = show_result(&result, out, s.opts.notify).await;
    let remaining = remaining_now(s, k.svc, k.today).await;
    write_reports(&s.journal, remaining, &a.common.reports, out)?;
    Ok(code)
}

/// Evidence of non-use of each remaining account, ranked; optionally sampled with extra
/// settings on (journaled, turned back off).
async fn ranked_candidates(
    a: &StartArgs,
    s: &mut Session,
    server: &mut crate::db::Server,
    k: &Start<'_>,
    remaining: &[guide::Reach],
    out: &mut Output,
) -> anyhow::Result<Vec<crate::evidence::Candidate>> {
    let candidates: Vec<crate::model::AccountName> = remaining.iter().map(|r| r.account.clone()).collect();
    let mut ranked = match a.evidence_sample {
        Some(sample) => {
            let list = crate::model::setting::merge(
                crate::evidence::wanted_settings(server).await?,
                crate::signals::wanted_settings(server).await?,
            );
            s.settings_on(&list).await?;
            out.status(&format!("sampling evidence for {sample:?} with {} setting(s) turned on (journaled) ...", list.len()));
            // A watch slot while sampling: another privfence process ending leaves the settings on.
            let _ = crate::engine::shared::take_watch_slot(server).await;
            let r = crate::evidence::gather_sampled_with(server, k.ix, k.tables, &candidates, a.audit_log.as_deref(), sample).await;
            let _ = crate::engine::shared::release_watch_slot(server).await;
            s.settings_off(out).await?;
            r?
        }
        None => crate::evidence::gather_sampled_with(server, k.ix, k.tables, &candidates, a.audit_log.as_deref(), Duration::ZERO).await?,
    };
    crate::evidence::rank(&mut ranked);
    let shown = if a.all_candidates { ranked.len() } else { report::candidates::RANKED_SHOWN };
    out.data(&report::candidates::ranked(&ranked, shown));
    Ok(ranked)
}

/// The operator's checklist (journaled when confirmed) and the replicas' health (a problem needs
/// an acknowledgement, journaled too). False when the checklist was not confirmed.
async fn confirm_checklist(a: &StartArgs, s: &mut Session, account: &str, service: &str, out: &mut Output) -> anyhow::Result<bool> {
    let question = format!(
        "Checklist: {account}'s code base has been examined for direct and indirect use of {service:?}'s tables (joins and views included). Confirm"
    );
    if !confirm(a, out, &question) {
        return Ok(false);
    }
    s.journal.append(Record::Note {
        account: Some(account.to_string()),
        text: "checklist confirmed: code base examined for direct and indirect use (joins, views)".into(),
    })?;
    let problems = s.replica_problems().await?;
    if !problems.is_empty() {
        for p in &problems {
            out.warn(p);
        }
        let acknowledged = a.ack_replicas || (out.is_live() && !a.yes && out.ask("Cut anyway"));
        if !acknowledged {
            anyhow::bail!("replica problems (above): fix them, or acknowledge with --ack-replicas");
        }
        s.journal.append(Record::Note { account: Some(account.to_string()), text: format!("acknowledged: {}", problems.join("; ")) })?;
    }
    Ok(true)
}

fn build_plan(
    ix: &crate::access::index::Index,
    policy: &crate::policy::Policy,
    service: &str,
    account: &str,
    popts: PlanOptions,
    tool: &crate::model::AccountName,
) -> anyhow::Result<plan::Plan> {
    let p = plan::build_with(ix, policy, service, account, &popts)?;
    let problems = plan::grantor_problems_with(ix, tool, &p);
    if !problems.is_empty() {
        anyhow::bail!("privfence's account could not apply or undo this plan: {}", problems.join("; "));
    }
    Ok(p)
}

/// The plan given up front: a saved plan (checked against the server: refused, before anything
/// is journaled, when stale), or the one built for `--account`.
fn preset_plan(
    a: &StartArgs,
    ix: &crate::access::index::Index,
    policy: &crate::policy::Policy,
    service: &str,
    tool: &crate::model::AccountName,
    today: chrono::NaiveDate,
) -> anyhow::Result<Option<(plan::Plan, String)>> {
    if let Some(path) = &a.plan {
        let saved = plan::saved::SavedPlan::load(path)?;
        let p = saved.check(path, ix.inv, policy, service, today)?;
        let problems = plan::grantor_problems_with(ix, tool, &p);
        if !problems.is_empty() {
            anyhow::bail!("privfence's account could not apply or undo this plan: {}", problems.join("; "));
        }
        return Ok(Some((p, saved.account)));
    }
    match &a.account {
        Some(acc) => Ok(Some((build_plan(ix, policy, service, acc, plan_options(a), tool)?, acc.clone()))),
        None => Ok(None),
    }
}

fn plan_options(a: &StartArgs) -> PlanOptions {
    PlanOptions { acknowledge_definer: a.acknowledge_definer, even_if_exempt: a.even_if_exempt, ..PlanOptions::default() }
}

fn confirm(a: &StartArgs, out: &mut Output, question: &str) -> bool {
    if a.yes {
        return true;
    }
    if !out.is_live() {
        out.status(&format!("{question}? Not at a terminal: pass --yes to confirm"));
        return false;
    }
    out.ask(question)
}

async fn show_result(r: &TurnResult, out: &mut Output, notify_on: bool) -> ExitCode {
    out.status(&format!("{}: {}: {}", r.account, r.verdict.name(), r.reason));
    for e in &r.evidence {
        out.status(&format!("  evidence: {e}"));
    }
    for line in &r.screen_only {
        out.status(&format!("  statement (shown here only, never written): {line}"));
    }
    let mut code = match r.verdict {
        Verdict::Passed => ExitCode::Ok,
        Verdict::Inconclusive => ExitCode::Inconclusive,
        Verdict::Abandoned => ExitCode::Ok,
        Verdict::Restored | Verdict::RolledBack => ExitCode::RolledBack,
    };
    if let Some(rs) = &r.restore {
        out.status(&format!(
            "  restore: {} in {} ms, {} cut-era connection(s) ended",
            if rs.exact { "exact" } else { "NOT exact" },
            rs.took.as_millis(),
            rs.killed
        ));
        for l in &rs.left {
            out.warn(&format!("after the restore: {l}"));
        }
        if !rs.exact {
            code = ExitCode::JournalAttention;
        }
    }
    if notify_on {
        let urgency = if r.verdict == Verdict::Passed { Urgency::Normal } else { Urgency::Critical };
        let notice = Notice::new(format!("privfence: {} {}", r.account, r.verdict.name()), r.reason.clone()).with_urgency(urgency);
        let _ = notify::notify_within(&notice, Duration::from_secs(2)).await;
    }
    code
}

async fn remaining_now(s: &mut Session, svc: &crate::policy::Service, today: chrono::NaiveDate) -> Option<Vec<guide::Reach>> {
    let inv = crate::inventory::take(&mut s.topo.primary().server).await.ok()?;
    let tables = guide::service_tables(&inv, svc);
    Some(guide::remaining(&inv, svc, &tables, today))
}

fn write_reports(j: &Journal, remaining: Option<Vec<guide::Reach>>, dir: &Path, out: &mut Output) -> anyhow::Result<()> {
    let state = j.state();
    let r = report::session::build(&state, remaining);
    std::fs::create_dir_all(dir)?;
    let safe: String = state.service.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let md = dir.join(format!("session-{safe}.md"));
    std::fs::write(&md, report::session::markdown(&r))?;
    std::fs::write(dir.join(format!("session-{safe}.json")), report::session::json(&r)?)?;
    out.status(&format!("report: {}", md.display()));
    Ok(())
}

async fn recover(a: RecoverArgs, rollback: bool, out: &mut Output) -> anyhow::Result<ExitCode> {
    let Some(ctx) = context(&a.common, out).await? else { return Ok(ExitCode::Error) };
    if !ctx.journal.exists() {
        anyhow::bail!("no journal at {}: nothing to {}", ctx.journal.display(), if rollback { "roll back" } else { "resume" });
    }
    let svc = ctx.policy.service(&a.common.service).expect("checked").clone();
    let tables = crate::journal::State::fold(&Journal::read(&ctx.journal)?).tables;
    // A resume or rollback is itself the restore: a SIGINT stops it between statements (exit 4),
    // SIGHUP and SIGTERM do not.
    let interrupts = Interrupts::install()?;
    interrupts.guard();
    let opts = Options { interrupts, ..base_options(&a.common) };
    let mut s = Session::open(&ctx.journal, header(&a.common, &tables), &ctx.primary, &ctx.replicas, opts).await?;
    let results =
        if rollback { s.rollback(a.account.as_deref(), out).await } else { s.recover(out).await.map(|r| r.into_iter().collect()) };
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            s.close().await;
            out.status(&format!("privfence: error: {e}"));
            out.status("run the same command again when the server is reachable: the journal keeps the state");
            return Ok(ExitCode::JournalAttention);
        }
    };
    if results.is_empty() {
        out.status("nothing to do: no interrupted turn, no cut to roll back");
    }
    let mut code = ExitCode::Ok;
    for r in &results {
        let c = show_result(r, out, s.opts.notify).await;
        if c as u8 > code as u8 && c != ExitCode::Inconclusive {
            code = c;
        }
    }
    let today = chrono::Local::now().date_naive();
    let remaining = remaining_now(&mut s, &svc, today).await;
    write_reports(&s.journal, remaining, &a.common.reports, out)?;
    s.close().await;
    Ok(code)
}
