//! `privfence readers`: which accounts still read or write a service's tables on a server, with
//! the evidence behind each (docs/migrations.md).

use super::args::{ConnectArgs, FormatArgs};
use crate::db::Server;
use crate::error::ExitCode;
use crate::evidence::Usage;
use crate::output::{Format, Output};
use crate::verify::readers::{readers, Reader};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  privfence readers --policy policies/ --service media\n  privfence readers --policy policies/ --service media --server db2:3306 --format tsv"
)]
pub struct ReadersArgs {
    /// A policy file or folder.
    #[arg(long)]
    pub policy: PathBuf,
    /// The service whose tables are looked at.
    #[arg(long)]
    pub service: String,
    /// The server: HOST:PORT (credentials from the connection flags) [default: the connection flags'].
    #[arg(long)]
    pub server: Option<String>,
    /// MariaDB's server_audit log file, when readable on this machine.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn line(r: &Reader) -> String {
    let can = match (r.can_read, r.can_write) {
        (true, true) => "read+write",
        (true, false) => "read",
        _ => "write",
    };
    let usage = match r.usage {
        Usage::Used => "USED",
        Usage::NotSeen => "not seen",
        Usage::Unknown => "unknown",
    };
    let mut s =
        format!("{} can {can}: {usage}{}", r.account, r.last_activity.as_deref().map(|l| format!(", last {l}")).unwrap_or_default());
    for e in r.evidence.iter().filter(|e| e.usage != Usage::Unknown || !e.rows.is_empty()) {
        s.push_str(&format!(
            "\n    {:?} by {} ({}){}",
            e.usage,
            e.source,
            e.span,
            e.rows.first().map(|x| format!(": {x}")).unwrap_or_default()
        ));
    }
    s
}

/// Exit 0 when no account was seen using the tables, 1 when some were, 2 on error.
pub async fn run(a: ReadersArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let policy = crate::policy::load(&a.policy, chrono::Local::now().date_naive()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let svc = policy.service(&a.service).ok_or_else(|| anyhow::anyhow!("no service {:?} in {}", a.service, a.policy.display()))?.clone();
    let mut spec = a.connect.input().resolve(&|k| std::env::var(k).ok())?;
    if let Some(s) = &a.server {
        spec = spec.with_address(s)?;
    }
    let mut server = Server::connect(&spec).await?;
    let inv = crate::inventory::take(&mut server).await?;
    let tables = crate::session::guide::service_tables(&inv, &svc);
    if tables.is_empty() {
        anyhow::bail!("service {:?} matches no table on {}", a.service, server.target);
    }
    let found = readers(&mut server, &inv, &tables, a.audit_log.as_deref()).await?;
    match a.format.format {
        Format::Json => out.data(
            &(serde_json::to_string_pretty(&serde_json::json!({ "format": 1, "kind": "readers", "tables": tables, "accounts": found }))?
                + "\n"),
        ),
        Format::Tsv => {
            let mut t = crate::report::tsv::Tsv::new(&["user", "host", "can_read", "can_write", "usage", "last_activity"]);
            for r in &found {
                t.row(vec![
                    r.account.user.clone(),
                    r.account.host.clone(),
                    r.can_read.to_string(),
                    r.can_write.to_string(),
                    crate::report::candidates::usage_words(r.usage).to_string(),
                    r.last_activity.clone().unwrap_or_default(),
                ]);
            }
            out.data(&t.finish());
        }
        Format::Table => {
            for r in &found {
                out.data(&format!("{}\n", line(r)));
            }
        }
    }
    Ok(if found.iter().any(|r| r.usage == Usage::Used) { ExitCode::Found } else { ExitCode::Ok })
}
