//! `privfence access TABLE...`: who can touch these tables, and how.

use super::args::{ConnectArgs, FormatArgs};
use crate::access;
use crate::error::ExitCode;
use crate::inventory;
use crate::output::{Format, Output};
use crate::report;

#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Tables as `schema.table`; `*` is a wildcard (`shop.media_*`), quote names containing
    /// `.` or `*` with backticks.
    #[arg(required = true)]
    pub tables: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

pub async fn run(args: AccessArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    // Validate the patterns before touching the server.
    for t in &args.tables {
        crate::model::TablePattern::parse(t).map_err(|e| anyhow::anyhow!("table pattern {t:?}: {e}"))?;
    }
    let mut server = super::connect(&args.connect).await?;
    let inv = inventory::take(&mut server).await?;
    server.close().await;
    let tables = access::resolve_tables(&inv, &args.tables)?;
    let report = access::analyse(&inv, &tables);
    match args.format.format {
        Format::Json => out.data(&(serde_json::to_string_pretty(&report)? + "\n")),
        Format::Table => out.data(&report::access::table(&report)),
    }
    Ok(ExitCode::Ok)
}
