//! `privfence promote plan|run|status|resume|abort`: move an isolated service's tables onto
//! their own server by replica promotion (docs/promotion.md).

use super::args::ConnectArgs;
use crate::db::ConnectSpec;
use crate::engine::node::Node;
use crate::error::ExitCode;
use crate::journal::{self, Journal, Record, StepState, JOURNAL_FORMAT};
use crate::output::Output;
use crate::promote::preflight;
use crate::promote::run::{self, Hooks, Options, PromoteState, Service, STEPS};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum PromoteCommand {
    /// The preflight checks and the steps, with the servers' current positions (changes nothing).
    Plan(Args),
    /// Run the promotion (or continue it) up to the end, or up to `--until STEP`.
    Run(Args),
    /// Where the promotion stands, from its journal.
    Status(Args),
    /// Continue after a crash or a stop (same as `run` on an existing journal).
    Resume(Args),
    /// Undo every step done so far (refused after the point of no return).
    Abort(Args),
    /// After a finished promotion, with sync-back running: give the service back to the old
    /// primary (fence on the new server, wait for sync-back, rename back, owner's grants back,
    /// writes-back hook, smoke write, new server read-only). `--abort` undoes it before its
    /// point of no return.
    Revert(Args),
    /// After a finished promotion: drop the archived tables on the old primary and the other
    /// services' tables on the new server. Needs `--confirm SERVICE`.
    Cleanup(Args),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A policy file or folder [default: the one the journal names, for a promotion under way].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The service whose tables move.
    #[arg(long)]
    pub service: String,
    /// The primary: HOST:PORT or a mysql:// URL (credentials from the connection flags)
    /// [default: the journal's, for a promotion under way].
    #[arg(long)]
    pub primary: Option<String>,
    /// The replica that becomes the service's server: HOST:PORT or a mysql:// URL
    /// [default: the journal's, for a promotion under way].
    #[arg(long)]
    pub replica: Option<String>,
    /// The promotion's journal [default: $XDG_STATE_HOME/privfence/SERVICE.promote.journal].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Run when the service's reads should move to the replica (`PRIVFENCE_NEW_SERVER` = its address).
    #[arg(long)]
    pub reads_hook: Option<String>,
    /// Run by `abort` to move the reads back.
    #[arg(long)]
    pub reads_back_hook: Option<String>,
    /// Run after the promotion to move the service's writes (and start it).
    #[arg(long)]
    pub writes_hook: Option<String>,
    /// Step 6 waits for this file (the operator's go).
    #[arg(long)]
    pub go_file: Option<PathBuf>,
    /// Step 6 runs this command every second until it exits 0 (the operator's go).
    #[arg(long)]
    pub go_command: Option<String>,
    /// Go on without a hook or a go file where one would be asked for.
    #[arg(long)]
    pub yes: bool,
    /// Stop after this step (`promote resume` goes on).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(STEPS))]
    pub until: Option<String>,
    /// Bound of the drain's `LOCK TABLES` wait.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "3s")]
    pub lock_wait: Duration,
    /// How long the replica may take to catch up.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "60s")]
    pub lag_timeout: Duration,
    /// Rows per compared chunk.
    #[arg(long, default_value_t = 1000)]
    pub chunk_rows: u64,
    /// An option file with the service's own credentials: step 10 makes a write through it on
    /// the new server that inserts nothing (`INSERT ... SELECT ... WHERE FALSE`).
    #[arg(long)]
    pub smoke_defaults_file: Option<PathBuf>,
    /// How long step 11 watches the archived tables for writes.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "10s")]
    pub archive_watch: Duration,
    /// The fence's server-side fail-safe: the primary takes the fence down by itself (unlocks
    /// the owner, re-grants its writes) when privfence's heartbeat has been silent this long
    /// before the point of no return.
    #[arg(long, value_parser = super::args::parse_failsafe_after, default_value = "30s")]
    pub failsafe_after: Duration,
    /// Fence without the server-side fail-safe.
    #[arg(long)]
    pub no_failsafe: bool,
    /// Bound on each hook and each run of `--go-command`; the command's process group is
    /// killed after it.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "5m")]
    pub hook_timeout: Duration,
    /// Prove before the point of no return that sync-back can start, and run it (in the
    /// foreground, until stopped) right after the promotion (docs/syncback.md).
    #[arg(long, requires = "sync_back_defaults_file")]
    pub sync_back: bool,
    /// Option file with sync-back's own account on the primary (the old copy's only writer).
    #[arg(long)]
    pub sync_back_defaults_file: Option<PathBuf>,
    /// `revert` only: run when the service's writes should go back to the old primary
    /// (`PRIVFENCE_OLD_SERVER` = its address).
    #[arg(long)]
    pub writes_back_hook: Option<String>,
    /// `revert` only: undo the revert's fence (before its point of no return).
    #[arg(long)]
    pub abort: bool,
    /// `revert` only: its journal [default: next to the promotion's, SERVICE.revert.journal].
    #[arg(long)]
    pub revert_journal: Option<PathBuf>,
    /// `cleanup` only: the service's name, typed back.
    #[arg(long)]
    pub confirm: Option<String>,
    /// `status` only: a table, or JSON (docs/formats.md, schema docs/schemas/promote-status.json).
    #[arg(long, value_enum, ignore_case = true, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How `promote status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StatusFormat {
    #[default]
    Table,
    Json,
}

/// Version of the `promote status --format json` document.
pub const STATUS_FORMAT: u32 = 1;

/// `promote status --format json`: every step with its state and duration, and whether the
/// point of no return is passed (docs/formats.md).
fn status_json(service: &str, journal: &std::path::Path, st: &PromoteState) -> String {
    let steps: Vec<serde_json::Value> = STEPS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (state, took) = match st.steps.get(*s) {
                Some((state, d)) => (Some(format!("{state:?}").to_lowercase()), d["took_ms"].as_u64()),
                None => (None, None),
            };
            serde_json::json!({ "n": i + 1, "name": s, "state": state, "took_ms": took })
        })
        .collect();
    let doc = serde_json::json!({
        "format": STATUS_FORMAT,
        "kind": "promote-status",
        "service": service,
        "journal": journal.display().to_string(),
        "point_of_no_return": st.point_of_no_return,
        "finished": st.finished(),
        "steps": steps,
    });
    format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
}

fn address(base: &ConnectSpec, a: &Args, given: &str) -> anyhow::Result<ConnectSpec> {
    if given.contains("://") {
        let mut input = a.connect.input();
        input.url = Some(given.to_string());
        return Ok(input.resolve(&|k| std::env::var(k).ok())?);
    }
    Ok(base.with_address(given)?)
}

pub async fn run(cmd: PromoteCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (a, what) = match cmd {
        PromoteCommand::Plan(a) => (a, "plan"),
        PromoteCommand::Run(a) => (a, "run"),
        PromoteCommand::Status(a) => (a, "status"),
        PromoteCommand::Resume(a) => (a, "resume"),
        PromoteCommand::Abort(a) => (a, "abort"),
        PromoteCommand::Cleanup(a) => (a, "cleanup"),
        PromoteCommand::Revert(a) => return revert(a, out).await,
    };
    let path = a.journal.clone().unwrap_or_else(|| journal::default_path(&format!("{}.promote", a.service)));
    if what == "status" {
        let st = PromoteState::fold(&Journal::read(&path)?);
        out.data(&match a.format {
            StatusFormat::Table => status_table(&st),
            StatusFormat::Json => status_json(&a.service, &path, &st),
        });
        return Ok(ExitCode::Ok);
    }
    let Some(mut p) = Prepared::open(&a, &path, what, out).await? else { return Ok(ExitCode::Error) };
    if what == "plan" {
        return plan(&a, &mut p, out).await;
    }
    execute(&a, what, &path, p, out).await
}

/// What every verb but `status` and `revert` works on: the policy, both servers, the primary's
/// inventory, the tables and owners of the service, and the run's options.
struct Prepared {
    policy_path: PathBuf,
    policy: crate::policy::Policy,
    today: chrono::NaiveDate,
    primary: Node,
    replica: Node,
    inv: crate::model::Inventory,
    tables: Vec<crate::model::TableName>,
    owners: Vec<crate::model::AccountName>,
    /// Whether the journal already names the servers (else the topology is recorded).
    known_servers: bool,
    opts: Options,
}

impl Prepared {
    /// Reads the journal's policy and servers, connects and checks them. `None`: the policy
    /// did not load (its error was shown).
    async fn open(a: &Args, path: &std::path::Path, what: &str, out: &mut Output) -> anyhow::Result<Option<Prepared>> {
        let known = Known::read(path)?;
        let policy_path = match (&a.policy, &known.policy) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => anyhow::bail!("give --policy: there is no promotion journal for {:?} at {}", a.service, path.display()),
        };
        let today = chrono::Local::now().date_naive();
        let policy = match crate::policy::load(&policy_path, today) {
            Ok(p) => p,
            Err(e) => {
                out.status(&e.to_string());
                return Ok(None);
            }
        };
        let svc_def =
            policy.service(&a.service).ok_or_else(|| anyhow::anyhow!("no service {:?} in {}", a.service, policy_path.display()))?.clone();
        let base = a.connect.input().resolve(&|k| std::env::var(k).ok())?;
        let mut primary = Node::connect(&address(&base, a, &known.address(&a.primary, "primary", "--primary")?)?, "primary").await?;
        let replica = Node::connect(&address(&base, a, &known.address(&a.replica, "replica", "--replica")?)?, "replica").await?;
        known.same_servers(&[&primary, &replica])?;
        let inv = crate::inventory::take(&mut primary.server).await?;
        // A promotion under way keeps the tables it started with (the archive step renames them).
        let journaled = if path.exists() { crate::journal::State::fold(&Journal::read(path)?).tables } else { Vec::new() };
        let tables = if journaled.is_empty() { crate::session::guide::service_tables(&inv, &svc_def) } else { journaled };
        if tables.is_empty() {
            anyhow::bail!("service {:?} matches no table on the primary", a.service);
        }
        let owners: Vec<_> = inv.login_accounts().filter(|x| svc_def.is_owner(&x.name)).map(|x| x.name.clone()).collect();
        let interrupts = crate::engine::interrupt::Interrupts::install()?;
        if what != "plan" {
            // From here a signal is honoured between statements: before the point of no return the
            // fence comes down and the promotion stops resumable; after it, it stops between steps.
            interrupts.guard();
        }
        let opts = options(a, interrupts, &primary, &replica)?;
        let known_servers = !known.servers.is_empty();
        Ok(Some(Prepared { policy_path, policy, today, primary, replica, inv, tables, owners, known_servers, opts }))
    }
}

/// The run's options from the arguments.
fn options(a: &Args, interrupts: crate::engine::interrupt::Interrupts, primary: &Node, replica: &Node) -> anyhow::Result<Options> {
    Ok(Options {
        interrupts,
        failsafe: (!a.no_failsafe).then_some(a.failsafe_after),
        hook_timeout: a.hook_timeout,
        lock_wait: a.lock_wait,
        lag_timeout: a.lag_timeout,
        chunk_rows: a.chunk_rows,
        hooks: Hooks {
            reads: a.reads_hook.clone(),
            reads_back: a.reads_back_hook.clone(),
            writes: a.writes_hook.clone(),
            go_file: a.go_file.clone(),
            go_command: a.go_command.clone(),
        },
        yes: a.yes,
        until: a.until.clone(),
        smoke_as: match &a.smoke_defaults_file {
            Some(f) => {
                let input = crate::db::ConnectInput { defaults_file: Some(f.clone()), ..Default::default() };
                let owner = input.resolve(&|_| None)?;
                let r = replica.spec();
                Some(ConnectSpec { host: r.host.clone(), port: r.port, socket: None, ..owner })
            }
            None => None,
        },
        archive_watch: a.archive_watch,
        sync_back: match (&a.sync_back_defaults_file, a.sync_back) {
            (Some(f), true) => Some(super::syncback::spec_at(f, primary.spec())?),
            _ => None,
        },
    })
}

/// `promote plan`: the preflight checks and the steps, with both servers' positions.
async fn plan(a: &Args, p: &mut Prepared, out: &mut Output) -> anyhow::Result<ExitCode> {
    let input = preflight::Input { policy: &p.policy, service: &a.service, today: p.today, lock_wait_max: Duration::from_secs(10) };
    let checks = preflight::run(&mut p.primary, &mut p.replica, &p.inv, &input).await?;
    let (ppos, rpos) = (p.primary.position().await?, p.replica.position().await?);
    out.data(&format!(
        "Promotion of service {:?}: {} table(s), owner(s) {}\nprimary {} at {}\nreplica {} at {}\n",
        a.service,
        p.tables.len(),
        p.owners.iter().map(|o| o.sql()).collect::<Vec<_>>().join(", "),
        p.primary.server.target,
        ppos,
        p.replica.server.target,
        rpos
    ));
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["check", "status", "detail"]);
    for c in &checks {
        t.add_row(vec![c.name.clone(), format!("{:?}", c.status), c.detail.clone()]);
    }
    out.data(&format!("{t}\nSteps: {}\n", STEPS.join(" → ")));
    Ok(if preflight::refuses(&checks) { ExitCode::Found } else { ExitCode::Ok })
}

/// `promote run|resume|abort|cleanup` under the service's promotion lock.
async fn execute(a: &Args, what: &str, path: &std::path::Path, p: Prepared, out: &mut Output) -> anyhow::Result<ExitCode> {
    let Prepared { policy_path, policy, today, mut primary, mut replica, inv, tables, owners, known_servers, opts } = p;
    // One promotion per service at a time.
    let mut lock = primary.server.another().await?;
    let name = crate::engine::exec::lock_name("privfence-promote:", &a.service);
    if !crate::engine::exec::lock(&mut lock, "taking the promotion lock", &name, 5).await? {
        anyhow::bail!("another privfence promotion of {:?} is running (it holds the lock on the primary)", a.service);
    }
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: a.service.clone(),
        policy: policy_path.display().to_string(),
        tables: tables.clone(),
    };
    let mut j = Journal::open_or_create(path, header)?;
    if !known_servers {
        // Where the promotion runs, so that status, resume and abort need only the service.
        j.append(Record::Topology { servers: vec![primary.reference(), replica.reference()] })?;
    }
    let svc = Service { policy: &policy, name: &a.service, tables, owners, today, tool: primary.server.current_user.clone() };
    let result = match what {
        "abort" => run::abort(&mut j, &mut primary, &mut replica, &opts, out).await,
        "cleanup" => run::cleanup(&mut j, &mut primary, &mut replica, &a.service, a.confirm.as_deref().unwrap_or(""), &svc.tables, out)
            .await
            .map(|_| ()),
        _ => run::run(&mut j, &mut primary, &mut replica, &inv, &svc, &opts, out).await,
    };
    let _ = lock.first::<i64>("releasing the promotion lock", "SELECT RELEASE_ALL_LOCKS()").await;
    lock.close().await;
    let st = PromoteState::fold(j.entries());
    out.data(&status_table(&st));
    match result {
        Ok(()) if opts.sync_back.is_some() && st.finished() && what != "cleanup" && what != "abort" => {
            let source = replica.spec().clone();
            let target = opts.sync_back.clone().unwrap_or_else(|| source.clone());
            super::syncback::after_promotion(&a.service, &policy_path, source, target, &svc.tables, path, opts.interrupts.clone(), out)
                .await
        }
        Ok(()) => Ok(ExitCode::Ok),
        Err(e) => Ok(failed(e, &st, path, out)),
    }
}

/// The exit code of a promotion that stopped with `e`: a refusal changed nothing (2), a signal
/// leaves it resumable (4), any other error is 4 when a step was left begun, else 2.
fn failed(e: crate::error::Error, st: &PromoteState, path: &std::path::Path, out: &mut Output) -> ExitCode {
    match e {
        e @ crate::error::Error::Refused(_) => {
            out.status(&format!("privfence: refused: {e}"));
            ExitCode::Error
        }
        e @ crate::error::Error::Interrupted(_) => {
            out.status(&format!("privfence: {e}"));
            ExitCode::JournalAttention
        }
        e => {
            out.status(&format!("privfence: error: {e}"));
            out.status(&format!(
                "the journal ({}) keeps the state: fix the cause, then `promote resume`, or `promote abort`",
                path.display()
            ));
            if st.steps.values().any(|s| s.0 == StepState::Begun) {
                ExitCode::JournalAttention
            } else {
                ExitCode::Error
            }
        }
    }
}

/// What an existing journal says about the promotion: its policy and its servers.
#[derive(Default)]
struct Known {
    policy: Option<String>,
    servers: Vec<crate::journal::ServerRef>,
}

impl Known {
    fn read(path: &std::path::Path) -> anyhow::Result<Known> {
        if !path.exists() {
            return Ok(Known::default());
        }
        let mut k = Known::default();
        for e in Journal::read(path)? {
            match e.record {
                Record::Header { policy, .. } => k.policy = Some(policy),
                Record::Topology { servers } if k.servers.is_empty() => k.servers = servers,
                _ => {}
            }
        }
        Ok(k)
    }

    /// The address given, else the journal's `HOST:PORT` for the server named `name`.
    fn address(&self, given: &Option<String>, name: &str, flag: &str) -> anyhow::Result<String> {
        if let Some(g) = given {
            return Ok(g.clone());
        }
        let known = self.servers.iter().find(|s| s.name == name).map(|s| s.target.rsplit_once('@').map_or(s.target.as_str(), |(_, a)| a));
        match known {
            Some(a) if !a.starts_with("unix:") => Ok(a.to_string()),
            _ => anyhow::bail!("give {flag}: the journal does not name the {name}'s address"),
        }
    }

    /// Refuses servers other than those the journal's promotion runs on.
    fn same_servers(&self, nodes: &[&Node]) -> anyhow::Result<()> {
        for n in nodes {
            self.same_server(&n.name, n)?;
        }
        Ok(())
    }

    /// Refuses `n` unless it is the server the journal calls `name`.
    fn same_server(&self, name: &str, n: &Node) -> anyhow::Result<()> {
        {
            if let Some(s) = self.servers.iter().find(|s| s.name == name) {
                if s.identity != n.identity {
                    anyhow::bail!(
                        "{} {} is not the server this promotion's journal ran on ({}, identity {}); refusing to go on",
                        n.name,
                        n.server.target,
                        s.target,
                        s.identity
                    );
                }
            }
        }
        Ok(())
    }
}

fn status_table(st: &PromoteState) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["#", "step", "state", "took"]);
    for (i, s) in STEPS.iter().enumerate() {
        let (state, took) = match st.steps.get(*s) {
            Some((state, d)) => {
                (format!("{state:?}").to_lowercase(), d["took_ms"].as_u64().map(|ms| format!("{ms} ms")).unwrap_or_default())
            }
            None => ("-".into(), String::new()),
        };
        t.add_row(vec![(i + 1).to_string(), s.to_string(), state, took]);
    }
    format!(
        "{t}\n{}\n",
        if st.point_of_no_return { "past the point of no return" } else { "before the point of no return (abort undoes everything)" }
    )
}

/// `promote revert`: the revert's own journal, the promotion's journal read for its fence and
/// the owner's snapshot.
async fn revert(a: Args, out: &mut Output) -> anyhow::Result<ExitCode> {
    let ppath = a.journal.clone().unwrap_or_else(|| journal::default_path(&format!("{}.promote", a.service)));
    let promotion = Journal::read(&ppath)?;
    let pst = PromoteState::fold(&promotion);
    if !pst.finished() {
        anyhow::bail!("the promotion in {} has not finished: nothing to revert", ppath.display());
    }
    let tables = crate::journal::State::fold(&promotion).tables;
    let owners = pst.record::<run::OwnerRecord>("owner")?.owners;
    let base = a.connect.input().resolve(&|k| std::env::var(k).ok())?;
    let known = Known::read(&ppath)?;
    let mut old = Node::connect(&address(&base, &a, &known.address(&a.primary, "primary", "--primary")?)?, "old-primary").await?;
    let mut new = Node::connect(&address(&base, &a, &known.address(&a.replica, "replica", "--replica")?)?, "new-server").await?;
    known.same_server("primary", &old)?;
    known.same_server("replica", &new)?;
    let policy_path = a.policy.clone().or(known.policy.as_ref().map(PathBuf::from)).unwrap_or_default();
    let rpath = a.revert_journal.clone().unwrap_or_else(|| ppath.with_file_name(format!("{}.revert.journal", a.service)));
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: a.service.clone(),
        policy: policy_path.display().to_string(),
        tables: tables.clone(),
    };
    let mut j = Journal::open_or_create(&rpath, header)?;
    if a.abort {
        crate::promote::revert::abort(&mut j, &mut new, out).await?;
        return Ok(ExitCode::Ok);
    }
    let smoke_as = match &a.smoke_defaults_file {
        Some(f) => Some(super::syncback::spec_at(f, old.spec())?),
        None => None,
    };
    let r = crate::promote::revert::Revert {
        service: &a.service,
        tables,
        owners,
        promotion: &promotion,
        lock_wait: a.lock_wait,
        sync_timeout: a.lag_timeout,
        hook_timeout: a.hook_timeout,
        writes_back_hook: a.writes_back_hook.clone(),
        smoke_as,
        failsafe: (!a.no_failsafe).then_some(a.failsafe_after),
    };
    match crate::promote::revert::revert(&mut j, &mut new, &mut old, &r, out).await {
        Ok(v) => {
            out.data(&format!("{v}\n"));
            Ok(ExitCode::Ok)
        }
        Err(e) => {
            out.status(&format!("privfence: error: {e}"));
            out.status(&format!(
                "the journal ({}) keeps the state: `promote revert` resumes, `promote revert --abort` undoes the fence",
                rpath.display()
            ));
            Ok(ExitCode::JournalAttention)
        }
    }
}
