//! `privfence failsafe status|remove`: the `privfence` schema that holds the server-side
//! fail-safes of cuts (docs/failsafe.md): what is in it, and dropping it.

use super::args::ConnectArgs;
use crate::engine::failsafe::{self, SCHEMA};
use crate::engine::{exec, node::Node};
use crate::error::ExitCode;
use crate::journal::{Journal, Phase, Record, JOURNAL_FORMAT};
use crate::model::ident::quote_ident;
use crate::output::Output;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum FailsafeCommand {
    /// The fail-safes on this server: armed events, heartbeats and their age, fired records.
    Status(FailsafeArgs),
    /// Drops the `privfence` schema (it replicates). Refused while a fail-safe is armed.
    Remove(FailsafeArgs),
}

#[derive(Debug, clap::Args)]
pub struct FailsafeArgs {
    /// Drop the schema even though a fail-safe is armed (its cut then has no server-side
    /// guard: run `privfence session resume` first).
    #[arg(long)]
    pub force: bool,
    /// Where the removal is journaled [default: $XDG_STATE_HOME/privfence/privfence-schema.journal].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(cmd: FailsafeCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (a, remove) = match cmd {
        FailsafeCommand::Status(a) => (a, false),
        FailsafeCommand::Remove(a) => (a, true),
    };
    let spec = a.connect.input().resolve(&|k| std::env::var(k).ok())?;
    let mut node = Node::connect(&spec, "primary").await?;
    if !failsafe::schema_exists(&mut node).await? {
        out.status(&format!("{}: no `{SCHEMA}` schema: no fail-safe was ever armed here", node.server.target));
        node.server.close().await;
        return Ok(ExitCode::Ok);
    }
    let events: Vec<(String, String)> = node
        .server
        .rows_as(
            "listing the fail-safe events",
            &format!("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{SCHEMA}' ORDER BY 1"),
        )
        .await?;
    let beats: Vec<(String, i64, i64)> = node
        .server
        .rows_as(
            "reading the heartbeats",
            &format!(
                "SELECT name, after_ms, CAST(TIMESTAMPDIFF(MICROSECOND, at, NOW(3)) / 1000 AS SIGNED) FROM {}.heartbeat ORDER BY 1",
                quote_ident(SCHEMA)
            ),
        )
        .await?;
    let fired: Vec<(String, String, Option<String>, i64)> = node
        .server
        .rows_as(
            "reading the fired records",
            &format!(
                "SELECT name, CAST(fired_at AS CHAR), CAST(done_at AS CHAR), errors FROM {}.fired ORDER BY fired_at",
                quote_ident(SCHEMA)
            ),
        )
        .await?;
    let mut text = format!("{}: schema `{SCHEMA}`\n", node.server.target);
    for (name, status) in &events {
        text.push_str(&format!("  armed: event {name} ({status})\n"));
    }
    for (name, after, age) in &beats {
        text.push_str(&format!("  heartbeat {name}: last {age} ms ago, fires after {after} ms of silence\n"));
    }
    for (name, at, done, errors) in &fired {
        text.push_str(&format!("  fired {name} at {at}, finished {}, {errors} failed statement(s)\n", done.as_deref().unwrap_or("never")));
    }
    out.data(&text);
    if !remove {
        node.server.close().await;
        return Ok(if events.is_empty() { ExitCode::Ok } else { ExitCode::Found });
    }
    if !events.is_empty() && !a.force {
        node.server.close().await;
        out.status(&format!(
            "refused: {} fail-safe(s) armed (a cut in progress, or a privfence that died: `privfence session resume` ends its turn and \
             disarms it); nothing was changed. --force drops them anyway",
            events.len()
        ));
        return Ok(ExitCode::Error);
    }
    let path = a.journal.clone().unwrap_or_else(|| crate::journal::default_path("privfence-schema"));
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: "privfence-schema".into(),
        policy: String::new(),
        tables: Vec::new(),
    };
    let mut j = Journal::open_or_create(&path, header)?;
    let sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(SCHEMA));
    exec::run(&mut j, &mut node, Phase::Failsafe, Some("failsafe-remove"), &sql, &[]).await?;
    out.status(&format!("dropped the `{SCHEMA}` schema on {} (the drop replicates); journal: {}", node.server.target, path.display()));
    node.server.close().await;
    Ok(ExitCode::Ok)
}
