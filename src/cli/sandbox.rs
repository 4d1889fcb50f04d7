//! `privfence sandbox up|status|down`: private servers on loopback for people to try things.

use crate::db::Flavour;
use crate::error::ExitCode;
use crate::output::Output;
use crate::report::new_table;
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
        SandboxCommand::Status { flavour, dir } => {
            let sb = Sandbox::load(&folder(flavour, dir))?;
            let mut t = new_table(&["server", "port", "up", "version", "read_only", "replication", "note"]);
            for s in sb.status().await {
                t.add_row(vec![
                    s.role.name().to_string(),
                    s.port.to_string(),
                    if s.up { "yes" } else { "no" }.to_string(),
                    s.version.unwrap_or_default(),
                    s.read_only.map(|r| r.to_string()).unwrap_or_default(),
                    s.replication.map(|r| format!("{r:?}")).unwrap_or_default(),
                    s.error.unwrap_or_default(),
                ]);
            }
            out.data(&format!("{t}\n{}", sb.connect_help()));
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
