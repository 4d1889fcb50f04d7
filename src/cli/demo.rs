//! `privfence demo`: the main job on a throwaway sandbox. Starts a primary and a replica, loads
//! the sample monolith, and prints the inventory and who can touch the media service's tables.

use super::sandbox::FlavourArg;
use crate::db::{ConnectSpec, Secret, Server, SslMode};
use crate::error::ExitCode;
use crate::output::Output;
use crate::sandbox::{Sandbox, SandboxOptions, Topology};
use crate::{access, demo, inventory, report};
use mysql_async::prelude::Queryable;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Which server to run the demo on.
    #[arg(long, value_enum, default_value_t = FlavourArg::Mariadb)]
    pub flavour: FlavourArg,
}

pub async fn run(args: DemoArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let flavour = args.flavour.into();
    out.status(&format!("starting a throwaway {flavour} primary and replica on loopback ..."));
    let sb = Sandbox::start(SandboxOptions::new(flavour, Topology::PrimaryReplica)).await?;
    out.status(&sb.connect_help());
    let mut admin = sb.primary.conn().await?;
    for stmt in demo::sample_sql(flavour) {
        admin.query_drop(&stmt).await.map_err(|e| anyhow::anyhow!("loading the sample: {stmt}: {e}"))?;
    }
    drop(admin);
    sb.wait_replica_caught_up(Duration::from_secs(30)).await?;
    let spec = ConnectSpec {
        host: sb.primary.host.clone(),
        port: sb.primary.port,
        socket: None,
        user: sb.primary.admin_user.clone(),
        password: Some(Secret::new(sb.primary.admin_password.clone())),
        ssl_mode: SslMode::Disabled,
        ssl_ca: None,
    };
    let mut server = Server::connect(&spec).await?;
    let inv = inventory::take(&mut server).await?;
    let mismatches = inventory::verify::verify(&mut server, &inv).await?;
    server.close().await;
    out.data(&format!("== Inventory of the primary ({})\n", spec.target()));
    out.data(&report::inventory::table(&inv));
    if mismatches.is_empty() {
        out.data(&format!("SHOW GRANTS cross-check: the model matches for all {} accounts\n\n", inv.accounts.len()));
    } else {
        out.data(&report::inventory::mismatches_text(&mismatches));
    }
    let tables = access::resolve_tables(&inv, &[demo::SERVICE_TABLES.to_string()])?;
    out.data(&format!("== Who can touch the media service's tables ({})\n", demo::SERVICE_TABLES));
    out.data(&report::access::table(&access::analyse(&inv, &tables)));
    sb.destroy()?;
    Ok(if mismatches.is_empty() { ExitCode::Ok } else { ExitCode::Found })
}
