//! `privfence failsafe status|remove`: the `privfence` schema that holds the server-side
//! fail-safes of cuts (docs/failsafe.md): what is in it, and dropping it.

use super::args::{ConnectArgs, FormatArgs};
use crate::engine::failsafe::{self, SCHEMA};
use crate::engine::{exec, node::Node};
use crate::error::ExitCode;
use crate::journal::{Journal, Phase, Record, JOURNAL_FORMAT};
use crate::model::ident::quote_ident;
use crate::output::{Format, Output};
use crate::report::tsv::Tsv;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum FailsafeCommand {
    /// The fail-safes on this server: armed events, heartbeats and their age, fired records.
    /// Exit 1 while one is armed.
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
    // `remove` prints the state in this format too, before dropping the schema.
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Version of the `failsafe status --format json` document (docs/schemas/failsafe-status.json).
pub const FAILSAFE_STATUS_FORMAT: u32 = 1;

/// What the `privfence` schema holds on one server.
#[derive(Debug, Serialize)]
struct State {
    format: u32,
    /// `user@host:port`, never a password.
    target: String,
    /// The schema exists (it never did where no fail-safe was armed).
    schema: bool,
    events: Vec<Event>,
    heartbeats: Vec<Heartbeat>,
    fired: Vec<Fired>,
}

/// An armed fail-safe: a server event that restores a cut if privfence falls silent.
#[derive(Debug, Serialize)]
struct Event {
    name: String,
    status: String,
}

#[derive(Debug, Serialize)]
struct Heartbeat {
    name: String,
    /// The event fires after this much silence.
    after_ms: i64,
    /// Time since the last beat.
    age_ms: i64,
}

/// A fail-safe that fired: when, when it finished (null: never), and how many statements failed.
#[derive(Debug, Serialize)]
struct Fired {
    name: String,
    fired_at: String,
    done_at: Option<String>,
    errors: i64,
}

pub async fn run(cmd: FailsafeCommand, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (connect, format, remove) = match cmd {
        FailsafeCommand::Status(a) => (a.connect, a.format.format, None),
        FailsafeCommand::Remove(a) => (a.connect.clone(), a.format.format, Some(a)),
    };
    let spec = connect.input().resolve(&|k| std::env::var(k).ok())?;
    let mut node = Node::connect(&spec, "primary").await?;
    let state = read_state(&mut node).await?;
    match format {
        Format::Json => out.data(&(serde_json::to_string_pretty(&state)? + "\n")),
        Format::Tsv => out.data(&state_tsv(&state)),
        Format::Table if !state.schema => out.status(&format!("{}: no `{SCHEMA}` schema: no fail-safe was ever armed here", state.target)),
        Format::Table => out.data(&state_text(&state)),
    }
    let Some(a) = remove.filter(|_| state.schema) else {
        node.server.close().await;
        return Ok(if state.events.is_empty() { ExitCode::Ok } else { ExitCode::Found });
    };
    let events = &state.events;
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

async fn read_state(node: &mut Node) -> anyhow::Result<State> {
    let target = node.server.target.clone();
    let mut state = State { format: FAILSAFE_STATUS_FORMAT, target, schema: false, events: vec![], heartbeats: vec![], fired: vec![] };
    if !failsafe::schema_exists(node).await? {
        return Ok(state);
    }
    state.schema = true;
    let events: Vec<(String, String)> = node
        .server
        .rows_as(
            "listing the fail-safe events",
            &format!("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{SCHEMA}' ORDER BY 1"),
        )
        .await?;
    state.events = events.into_iter().map(|(name, status)| Event { name, status }).collect();
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
    state.heartbeats = beats.into_iter().map(|(name, after_ms, age_ms)| Heartbeat { name, after_ms, age_ms }).collect();
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
    state.fired = fired.into_iter().map(|(name, fired_at, done_at, errors)| Fired { name, fired_at, done_at, errors }).collect();
    Ok(state)
}

fn state_text(state: &State) -> String {
    let mut text = format!("{}: schema `{SCHEMA}`\n", state.target);
    for e in &state.events {
        text.push_str(&format!("  armed: event {} ({})\n", e.name, e.status));
    }
    for h in &state.heartbeats {
        text.push_str(&format!("  heartbeat {}: last {} ms ago, fires after {} ms of silence\n", h.name, h.age_ms, h.after_ms));
    }
    for f in &state.fired {
        let done = f.done_at.as_deref().unwrap_or("never");
        text.push_str(&format!("  fired {} at {}, finished {done}, {} failed statement(s)\n", f.name, f.fired_at, f.errors));
    }
    text
}

/// One row per event, heartbeat and fired record; the columns that do not apply are empty.
fn state_tsv(state: &State) -> String {
    let mut t = Tsv::new(&["kind", "name", "status", "after_ms", "age_ms", "fired_at", "done_at", "errors"]);
    let row = |kind: &str, name: &str, rest: [String; 6]| -> Vec<String> {
        [kind.to_string(), name.to_string()].into_iter().chain(rest).collect()
    };
    let e = String::new;
    for x in &state.events {
        t.row(row("event", &x.name, [x.status.clone(), e(), e(), e(), e(), e()]));
    }
    for h in &state.heartbeats {
        t.row(row("heartbeat", &h.name, [e(), h.after_ms.to_string(), h.age_ms.to_string(), e(), e(), e()]));
    }
    for f in &state.fired {
        let fired = [e(), e(), e(), f.fired_at.clone(), f.done_at.clone().unwrap_or_default(), f.errors.to_string()];
        t.row(row("fired", &f.name, fired));
    }
    t.finish()
}
