//! `privfence inventory`: read the grant tables into the typed model and print it.

use super::args::{ConnectArgs, FormatArgs};
use crate::error::ExitCode;
use crate::inventory::{self, verify};
use crate::output::{Format, Output};
use crate::report;

const EXAMPLES: &str = "Examples:
  privfence inventory --defaults-file ~/.privfence.cnf
  privfence inventory -h db1 -u privfence -p --verify
  privfence inventory --login-path prod --verify=full
  privfence inventory --login-path prod --format tsv | cut -f1-3";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct InventoryArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Cross-check the model against the server's own grants for every account; exit 1 on any
    /// difference. `views` (the default): one pass over the information_schema privilege views,
    /// SHOW GRANTS for the accounts with roles, routine or proxy grants, default roles, partial
    /// revokes or dynamic privileges (and to confirm any difference). `full`: SHOW GRANTS for
    /// every account (also sees such grants held only in the server's memory).
    #[arg(long, value_enum, ignore_case = true, num_args = 0..=1, require_equals = true, default_missing_value = "views")]
    pub verify: Option<VerifyDepth>,
}

/// `--verify[=views|full]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyDepth {
    /// The information_schema privilege views for every account; SHOW GRANTS where they
    /// cannot tell.
    Views,
    /// SHOW GRANTS for every account.
    Full,
}

impl From<VerifyDepth> for verify::Depth {
    fn from(d: VerifyDepth) -> verify::Depth {
        match d {
            VerifyDepth::Views => verify::Depth::Views,
            VerifyDepth::Full => verify::Depth::Full,
        }
    }
}

pub async fn run(args: InventoryArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut server = super::connect(&args.connect).await?;
    let mut inv = inventory::take(&mut server).await?;
    let checked = if let Some(depth) = args.verify {
        // A bar on a terminal only, and not under --format json (see Output::bar).
        out.allow_bars(args.format.format != Format::Json);
        let bar = out.bar(0, "verify");
        let mut progress = |done: usize, total: usize| {
            bar.set_total(total as u64);
            bar.set(done as u64);
        };
        let (checked, fresh) = verify::verify_settled_with(&mut server, &inv, depth.into(), &mut progress).await?;
        inv = fresh.unwrap_or(inv);
        Some(checked)
    } else {
        None
    };
    let mismatches = checked.as_ref().map(|c| c.mismatches.as_slice());
    server.close().await;
    for w in &inv.warnings {
        out.warn(w);
    }
    match args.format.format {
        Format::Json => out.data(&report::inventory::json(&inv, mismatches)?),
        Format::Tsv => out.data(&report::inventory::tsv(&inv)),
        Format::Table => out.data(&report::inventory::table(&inv)),
    }
    let code = match (&checked, mismatches) {
        (Some(c), Some([])) => {
            out.status(&format!("verify: {}", matched_text(c, inv.accounts.len())));
            ExitCode::Ok
        }
        (_, Some(m)) => {
            out.status(&report::inventory::mismatches_text(m));
            // Known server quirks are explained, not counted as the model's own mismatch.
            if m.iter().all(|x| x.is_server_quirk()) {
                ExitCode::Ok
            } else {
                ExitCode::Found
            }
        }
        _ => ExitCode::Ok,
    };
    // The process exits next: freeing a large inventory piece by piece is wasted work.
    std::mem::forget(inv);
    Ok(code)
}

/// The line a clean `--verify` ends with: how many accounts each tier checked.
fn matched_text(c: &verify::Checked, accounts: usize) -> String {
    if c.by_views == 0 {
        return format!("the model matches SHOW GRANTS for all {accounts} accounts");
    }
    format!(
        "the model matches the server for all {accounts} accounts ({} through the information_schema privilege views, {} through SHOW GRANTS)",
        c.by_views, c.by_show_grants
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn depth(args: &[&str]) -> Result<Option<VerifyDepth>, clap::Error> {
        let cli = Cli::try_parse_from(["privfence", "inventory"].iter().chain(args))?;
        match cli.command {
            Command::Inventory(a) => Ok(a.verify),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verify_takes_an_optional_depth() {
        assert_eq!(depth(&[]).unwrap(), None);
        assert_eq!(depth(&["--verify"]).unwrap(), Some(VerifyDepth::Views));
        assert_eq!(depth(&["--verify", "--format", "json"]).unwrap(), Some(VerifyDepth::Views));
        assert_eq!(depth(&["--verify=full"]).unwrap(), Some(VerifyDepth::Full));
        assert_eq!(depth(&["--verify=VIEWS"]).unwrap(), Some(VerifyDepth::Views));
        // The value needs `=`: `--verify full` is not a depth (and not an argument).
        assert!(depth(&["--verify", "full"]).is_err());
        assert!(depth(&["--verify=deep"]).is_err());
    }

    #[test]
    fn the_clean_line_says_which_tier_checked_how_many() {
        let c = verify::Checked { by_views: 9990, by_show_grants: 17, ..Default::default() };
        assert_eq!(
            matched_text(&c, 10007),
            "the model matches the server for all 10007 accounts (9990 through the information_schema privilege views, 17 through SHOW GRANTS)"
        );
        let full = verify::Checked { by_show_grants: 5, ..Default::default() };
        assert_eq!(matched_text(&full, 5), "the model matches SHOW GRANTS for all 5 accounts");
    }
}
