//! `privfence sync-back`: after a promotion, copy the new server's changes to the service's
//! tables back to the old primary's copy, until stopped (docs/syncback.md).

use super::args::ConnectArgs;
use crate::db::ConnectSpec;
use crate::error::ExitCode;
use crate::journal::{self, Journal, Record, JOURNAL_FORMAT};
use crate::model::TableName;
use crate::output::Output;
use crate::syncback::{self, position::Position, Options, Plan};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct SyncBackArgs {
    /// A policy file or folder.
    #[arg(long)]
    pub policy: PathBuf,
    /// The service whose tables are copied back.
    #[arg(long)]
    pub service: String,
    /// The new server (the promoted replica): HOST:PORT or a mysql:// URL.
    #[arg(long)]
    pub from: String,
    /// The old primary: HOST:PORT or a mysql:// URL.
    #[arg(long)]
    pub to: String,
    /// Option file with the credentials for `--from` (an account with REPLICATION SLAVE).
    #[arg(long)]
    pub from_defaults_file: Option<PathBuf>,
    /// Option file with sync-back's own account on the old primary (the only writer of the copy).
    #[arg(long)]
    pub to_defaults_file: Option<PathBuf>,
    /// The copy's schema on the old primary [default: each table's own schema, under the name
    /// the promotion archived it as, `_TABLE_pf_archived`].
    #[arg(long)]
    pub to_schema: Option<String>,
    /// The promotion's journal: sync-back starts at the position it captured under its fence.
    #[arg(long)]
    pub promote_journal: Option<PathBuf>,
    /// Start position (instead of the promotion's): binary log file of the new server.
    #[arg(long, requires = "start_pos")]
    pub start_file: Option<String>,
    /// Start position: offset in `--start-file`.
    #[arg(long)]
    pub start_pos: Option<u64>,
    /// Start position on MySQL: the GTID set already on the old copy.
    #[arg(long)]
    pub start_gtid: Option<String>,
    /// The replica id announced to the new server [default: derived from the service's name].
    #[arg(long, default_value_t = 0)]
    pub server_id: u32,
    /// Row changes per target transaction, at most.
    #[arg(long, default_value_t = 1000)]
    pub batch_rows: usize,
    /// Write Prometheus metrics to this file at every status.
    #[arg(long)]
    pub prom_file: Option<PathBuf>,
    /// Stop once nothing arrived for this long and all was applied.
    #[arg(long, value_parser = super::args::parse_duration)]
    pub exit_when_idle: Option<Duration>,
    /// Sync-back's journal [default: $XDG_STATE_HOME/privfence/SERVICE.syncback.journal].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn spec(a: &SyncBackArgs, given: &str, defaults_file: &Option<PathBuf>) -> anyhow::Result<ConnectSpec> {
    super::args::server_at(&a.connect, given, defaults_file)
}

/// The start position given on the command line or captured by the promotion.
fn start(a: &SyncBackArgs) -> anyhow::Result<Option<Position>> {
    if let (Some(file), Some(pos)) = (&a.start_file, a.start_pos) {
        return Ok(Some(Position { file: file.clone(), pos, gtid: a.start_gtid.clone() }));
    }
    let Some(path) = &a.promote_journal else { return Ok(None) };
    let st = crate::promote::run::PromoteState::fold(&Journal::read(path)?);
    if !st.point_of_no_return {
        anyhow::bail!("the promotion in {} has not passed its point of no return: nothing to sync back yet", path.display());
    }
    let from = st.detail("catch-up")["sync_back_from"].clone();
    let p: Position = serde_json::from_value(from).map_err(|_| {
        anyhow::anyhow!(
            "{} holds no sync-back start position (a promotion by an older privfence): give --start-file/--start-pos",
            path.display()
        )
    })?;
    Ok(Some(p))
}

/// Refuses when the revert's journal (next to the promotion's, as `promote revert` names it)
/// says a revert passed its point of no return: the service's tables are live on the old
/// primary again.
fn refuse_after_revert(a: &SyncBackArgs) -> anyhow::Result<()> {
    let Some(p) = &a.promote_journal else { return Ok(()) };
    let path = p.with_file_name(format!("{}.revert.journal", a.service));
    if !path.exists() {
        return Ok(());
    }
    let st = crate::promote::run::PromoteState::fold(&Journal::read(&path)?);
    if st.point_of_no_return {
        anyhow::bail!(
            "a revert of {} passed its point of no return ({}): the service's tables are live on the old primary again, so \
             sync-back refuses to write them. To move the service again, run a new promotion",
            a.service,
            path.display()
        );
    }
    Ok(())
}

/// The copy of a table on the old primary.
pub fn copy_of(t: &TableName, to_schema: Option<&str>) -> TableName {
    match to_schema {
        Some(s) => TableName::new(s, &t.name),
        None => TableName::new(&t.schema, format!("_{}_pf_archived", t.name)),
    }
}

pub async fn run(a: SyncBackArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let policy = crate::policy::load(&a.policy, chrono::Local::now().date_naive()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let svc = policy.service(&a.service).ok_or_else(|| anyhow::anyhow!("no service {:?} in {}", a.service, a.policy.display()))?.clone();
    let source = spec(&a, &a.from, &a.from_defaults_file)?;
    let target = spec(&a, &a.to, &a.to_defaults_file)?;
    let mut s = crate::db::Server::connect(&source).await?;
    let inv = crate::inventory::take(&mut s).await?;
    s.close().await;
    let tables: Vec<(TableName, TableName)> = crate::session::guide::service_tables(&inv, &svc)
        .into_iter()
        .map(|t| {
            let copy = copy_of(&t, a.to_schema.as_deref());
            (t, copy)
        })
        .collect();
    if tables.is_empty() {
        anyhow::bail!("service {:?} matches no table on the new server", a.service);
    }
    refuse_after_revert(&a)?;
    let plan = Plan { service: a.service.clone(), source, target, tables: tables.clone(), start: start(&a)? };
    let path = a.journal.clone().unwrap_or_else(|| journal::default_path(&format!("{}.syncback", a.service)));
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: a.service.clone(),
        policy: a.policy.display().to_string(),
        tables: tables.iter().map(|t| t.0.clone()).collect(),
    };
    let mut j = Journal::open_or_create(&path, header)?;
    let interrupts = crate::engine::interrupt::Interrupts::install()?;
    interrupts.guard();
    let opts = Options {
        server_id: a.server_id,
        batch_rows: a.batch_rows.max(1),
        prom_file: a.prom_file.clone(),
        interrupts,
        exit_when_idle: a.exit_when_idle,
        ..Options::default()
    };
    let ready = match syncback::prepare(&mut j, &plan, out).await {
        Ok(r) => r,
        Err(e @ crate::error::Error::Refused(_)) => {
            out.status(&format!("privfence: refused: {e}"));
            return Ok(ExitCode::Error);
        }
        Err(e) => return Err(e.into()),
    };
    match syncback::run(ready, &opts, out).await {
        Ok(r) => {
            out.data(&format!("{}\n", serde_json::to_string_pretty(&r)?));
            Ok(ExitCode::Ok)
        }
        Err(e) => {
            out.status(&format!("privfence: {e}"));
            Ok(ExitCode::Error)
        }
    }
}

/// Sync-back's account from an option file, at `at`'s address.
pub fn spec_at(file: &std::path::Path, at: &ConnectSpec) -> anyhow::Result<ConnectSpec> {
    let input = crate::db::ConnectInput { defaults_file: Some(file.to_path_buf()), ..Default::default() };
    let me = input.resolve(&|_| None)?;
    Ok(ConnectSpec { host: at.host.clone(), port: at.port, socket: None, ..me })
}

/// `promote run --sync-back`: sync-back started right after the promotion, from the position
/// its journal captured under the fence, in the foreground until a signal.
#[allow(clippy::too_many_arguments)]
pub async fn after_promotion(
    service: &str,
    policy: &std::path::Path,
    source: ConnectSpec,
    target: ConnectSpec,
    tables: &[TableName],
    promote_journal: &std::path::Path,
    interrupts: crate::engine::interrupt::Interrupts,
    out: &mut Output,
) -> anyhow::Result<ExitCode> {
    let st = crate::promote::run::PromoteState::fold(&Journal::read(promote_journal)?);
    let start: Position = serde_json::from_value(st.detail("catch-up")["sync_back_from"].clone())
        .map_err(|_| anyhow::anyhow!("the promotion's journal holds no sync-back start position"))?;
    let pairs: Vec<(TableName, TableName)> = tables.iter().map(|t| (t.clone(), copy_of(t, None))).collect();
    let plan = Plan { service: service.to_string(), source, target, tables: pairs.clone(), start: Some(start) };
    let path = journal::default_path(&format!("{service}.syncback"));
    let path = promote_journal.parent().map(|d| d.join(path.file_name().unwrap_or_default())).unwrap_or(path);
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: service.to_string(),
        policy: policy.display().to_string(),
        tables: tables.to_vec(),
    };
    let mut j = Journal::open_or_create(&path, header)?;
    out.status(&format!("sync-back starts (journal {}); stop it with Ctrl-C, restart it with `privfence sync-back`", path.display()));
    let opts = Options { interrupts, ..Options::default() };
    let ready = syncback::prepare(&mut j, &plan, out).await?;
    let r = syncback::run(ready, &opts, out).await?;
    out.data(&format!("{}\n", serde_json::to_string_pretty(&r)?));
    Ok(ExitCode::Ok)
}
