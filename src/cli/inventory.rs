//! `privfence inventory`: read the grant tables into the typed model and print it.

use super::args::{ConnectArgs, FormatArgs};
use crate::error::ExitCode;
use crate::inventory::{self, verify};
use crate::output::{Format, Output};
use crate::report;

const EXAMPLES: &str = "Examples:
  privfence inventory --defaults-file ~/.privfence.cnf
  privfence inventory -h db1 -u privfence -p --verify
  privfence inventory --login-path prod --format tsv | cut -f1-3";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Cross-check the model against the server's own SHOW GRANTS for every account; exit 1 on
    /// any difference.
    #[arg(long)]
    pub verify: bool,
}

pub async fn run(args: InventoryArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut server = super::connect(&args.connect).await?;
    let mut inv = inventory::take(&mut server).await?;
    let mismatches = if args.verify {
        // A bar on a terminal only, and not under --format json (see Output::bar).
        out.allow_bars(args.format.format != Format::Json);
        let bar = out.bar(0, "verify: SHOW GRANTS");
        let mut progress = |done: usize, total: usize| {
            bar.set_total(total as u64);
            bar.set(done as u64);
        };
        let (m, fresh) = verify::verify_settled_with(&mut server, &inv, &mut progress).await?;
        inv = fresh.unwrap_or(inv);
        Some(m)
    } else {
        None
    };
    server.close().await;
    for w in &inv.warnings {
        out.warn(w);
    }
    match args.format.format {
        Format::Json => out.data(&report::inventory::json(&inv, mismatches.as_deref())?),
        Format::Tsv => out.data(&report::inventory::tsv(&inv)),
        Format::Table => out.data(&report::inventory::table(&inv)),
    }
    let code = match &mismatches {
        Some(m) if m.is_empty() => {
            out.status(&format!("verify: the model matches SHOW GRANTS for all {} accounts", inv.accounts.len()));
            ExitCode::Ok
        }
        Some(m) => {
            out.status(&report::inventory::mismatches_text(m));
            // Known server quirks are explained, not counted as the model's own mismatch.
            if m.iter().all(|x| x.is_server_quirk()) {
                ExitCode::Ok
            } else {
                ExitCode::Found
            }
        }
        None => ExitCode::Ok,
    };
    // The process exits next: freeing a large inventory piece by piece is wasted work.
    std::mem::forget(inv);
    Ok(code)
}
