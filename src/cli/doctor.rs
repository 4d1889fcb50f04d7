//! `privfence doctor`: what privfence's account may do here, and which signal sources exist.

use super::args::{ConnectArgs, FormatArgs};
use crate::capability::{self, Status};
use crate::error::ExitCode;
use crate::output::{Format, Output};
use crate::report::new_table;

#[derive(Debug, clap::Args)]
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
        Format::Json => out.data(&(serde_json::to_string_pretty(&c)? + "\n")),
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
        }
    }
    Ok(if c.all_ok() { ExitCode::Ok } else { ExitCode::Found })
}
