//! `privfence sandbox up|status|down`: private servers on loopback for people to try things.

use crate::db::Flavour;
use crate::error::ExitCode;
use crate::output::{Format, Output};
use crate::report::{new_table, tsv::Tsv};
use crate::sandbox::lifecycle::ServerStatus;
use crate::sandbox::{Sandbox, SandboxOptions, Topology};
use std::path::PathBuf;

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavourArg {
    Mariadb,
    Mysql,
}

impl From<FlavourArg> for Flavour {
    fn from(f: FlavourArg) -> Flavour {
        match f {
            FlavourArg::Mariadb => Flavour::MariaDb,
            FlavourArg::Mysql => Flavour::MySql,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Start a sandbox (installs the server if needed) and print how to connect.
    #[command(
        after_help = "Examples:\n  privfence sandbox up --flavour mysql\n  privfence sandbox up --flavour mariadb --replica --dir /tmp/pf-sandbox"
    )]
    Up {
        #[arg(long, value_enum, ignore_case = true, default_value_t = FlavourArg::Mariadb)]
        flavour: FlavourArg,
        /// Also start a GTID replica of the primary.
        #[arg(long)]
        replica: bool,
        /// Sandbox folder (default: .sandbox/FLAVOUR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show whether the sandbox servers are up, and their replication state.
    Status {
        #[arg(long, value_enum, ignore_case = true, default_value_t = FlavourArg::Mariadb)]
        flavour: FlavourArg,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        format: super::args::FormatArgs,
    },
    /// Stop the sandbox servers and remove the folder.
    Down {
        #[arg(long, value_enum, ignore_case = true, default_value_t = FlavourArg::Mariadb)]
        flavour: FlavourArg,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The privfence command lines that use the sandbox (its option file holds the password).
fn privfence_help(cnf: &str) -> String {
    let plain = cnf.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    let cnf = if plain { cnf.to_string() } else { format!("'{}'", cnf.replace('\'', "'\\''")) };
    format!(
        "Use it with privfence:\n  privfence doctor --defaults-file {cnf}\n  privfence inventory --defaults-file {cnf}\n  \
         privfence access 'SCHEMA.*' --summary --defaults-file {cnf}\n"
    )
}

fn folder(flavour: FlavourArg, dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from(".sandbox").join(Flavour::from(flavour).name()))
}

pub async fn run(cmd: SandboxCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Up { flavour, replica, dir } => {
            let dir = folder(flavour, dir);
            if dir.join("sandbox.json").exists() {
                anyhow::bail!("a sandbox already exists in {}; `privfence sandbox down` removes it", dir.display());
            }
            let topology = if replica { Topology::PrimaryReplica } else { Topology::Single };
            out.status(&format!("starting a {} sandbox in {} ...", Flavour::from(flavour), dir.display()));
            let opts = SandboxOptions { dir: Some(dir), watch_pid: None, ..SandboxOptions::new(flavour.into(), topology) };
            let sb = Sandbox::start(opts).await?;
            out.data(&sb.connect_help());
            out.data(&privfence_help(&sb.primary.client_cnf.display().to_string()));
        }
        SandboxCommand::Status { flavour, dir, format } => {
            let sb = Sandbox::load(&folder(flavour, dir))?;
            let servers = sb.status().await;
            match format.format {
                Format::Json => out.data(&status_json(&sb, &servers)?),
                Format::Tsv => out.data(&status_tsv(&servers)),
                Format::Table => out.data(&format!("{}\n{}", status_table(servers), sb.connect_help())),
            }
        }
        SandboxCommand::Down { flavour, dir } => {
            let dir = folder(flavour, dir);
            let sb = Sandbox::load(&dir)?;
            sb.destroy()?;
            out.status(&format!("stopped and removed {}", dir.display()));
        }
    }
    Ok(ExitCode::Ok)
}

/// Version of the `sandbox status --format json` document (docs/schemas/sandbox-status.json).
pub const SANDBOX_STATUS_FORMAT: u32 = 1;

fn status_json(sb: &Sandbox, servers: &[ServerStatus]) -> anyhow::Result<String> {
    let doc = serde_json::json!({
        "format": SANDBOX_STATUS_FORMAT,
        "flavour": sb.flavour,
        "dir": sb.dir,
        "servers": servers,
    });
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// The replication column: the threads' state in words (empty on a server that does not
/// replicate).
fn replication_words(s: &ServerStatus) -> String {
    s.replication.as_ref().map(|r| format!("io {}, sql {}", r.io_running, r.sql_running)).unwrap_or_default()
}

fn status_tsv(servers: &[ServerStatus]) -> String {
    let mut t = Tsv::new(&["server", "port", "pid", "up", "version", "read_only", "replication", "note"]);
    for s in servers {
        t.row(vec![
            s.role.name().to_string(),
            s.port.to_string(),
            s.pid.to_string(),
            if s.up { "yes" } else { "no" }.to_string(),
            s.version.clone().unwrap_or_default(),
            s.read_only.map(|r| r.to_string()).unwrap_or_default(),
            replication_words(s),
            s.error.clone().unwrap_or_default(),
        ]);
    }
    t.finish()
}

fn status_table(servers: Vec<ServerStatus>) -> String {
    let mut t = new_table(&["server", "port", "up", "version", "read_only", "replication", "note"]);
    for s in servers {
        t.add_row(vec![
            s.role.name().to_string(),
            s.port.to_string(),
            if s.up { "yes" } else { "no" }.to_string(),
            s.version.clone().unwrap_or_default(),
            s.read_only.map(|r| r.to_string()).unwrap_or_default(),
            replication_words(&s),
            s.error.unwrap_or_default(),
        ]);
    }
    t.to_string()
}
