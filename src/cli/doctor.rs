//! `privfence doctor`: what privfence's account may do here, and which signal sources exist.

use super::args::{ConnectArgs, FormatArgs};
use crate::capability::{self, Status};
use crate::error::ExitCode;
use crate::output::{Format, Output};
use crate::report::new_table;

const EXAMPLES: &str = "Examples:
  privfence doctor --defaults-file ~/.privfence.cnf
  privfence doctor --login-path prod --format json

When something is missing, the GRANT statements that would give it are printed (to review and
run as an administrator; privfence never runs them). Exit 1 when something is missing.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

pub async fn run(args: DoctorArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let mut server = super::connect(&args.connect).await?;
    let c = capability::examine(&mut server).await?;
    server.close().await;
    match args.format.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct WithFix<'a> {
                #[serde(flatten)]
                checkup: &'a capability::Checkup,
                /// The GRANT statements that would give what is missing.
                grants: Vec<String>,
            }
            out.data(&(serde_json::to_string_pretty(&WithFix { checkup: &c, grants: crate::report::doctor::grants_to_fix(&c) })? + "\n"))
        }
        Format::Tsv => {
            let mut t = crate::report::tsv::Tsv::new(&["section", "name", "needed_by", "status", "detail"]);
            for x in &c.capabilities {
                let st = match x.status {
                    Status::Ok => "ok",
                    Status::Missing => "missing",
                    Status::Unknown => "unknown",
                };
                t.row(vec!["capability".into(), x.name.to_string(), x.needed_by.to_string(), st.into(), x.detail.clone()]);
            }
            for x in &c.signals {
                let st = if x.available { "available" } else { "unavailable" };
                t.row(vec!["signal".into(), x.name.to_string(), String::new(), st.into(), x.detail.clone()]);
            }
            out.data(&t.finish());
        }
        Format::Table => {
            let mut t = new_table(&["capability", "needed by", "status", "detail"]);
            for x in &c.capabilities {
                let st = match x.status {
                    Status::Ok => "ok",
                    Status::Missing => "MISSING",
                    Status::Unknown => "unknown",
                };
                t.add_row(vec![x.name.to_string(), x.needed_by.to_string(), st.to_string(), x.detail.clone()]);
            }
            let mut s = new_table(&["signal source", "available", "detail"]);
            for x in &c.signals {
                s.add_row(vec![x.name.to_string(), if x.available { "yes" } else { "no" }.to_string(), x.detail.clone()]);
            }
            out.data(&format!(
                "{} {} ({}), connected as {}\n{t}\n{s}\n",
                c.server.flavour,
                c.server.version,
                c.server.managed.as_deref().unwrap_or("self-managed"),
                c.account.sql()
            ));
            let fix = crate::report::doctor::grants_to_fix(&c);
            if !fix.is_empty() {
                out.data(&format!(
                    "To give {} what it lacks (review, then run as an administrator):\n  {}\n",
                    c.account.sql(),
                    fix.join("\n  ")
                ));
            }
        }
    }
    Ok(if c.all_ok() { ExitCode::Ok } else { ExitCode::Found })
}
