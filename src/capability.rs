//! What privfence's own account may do on a server, per command, and which signal sources the
//! server offers. Behind `privfence doctor`; the same checks guard commands that would
//! otherwise give a misleadingly clean answer.

use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::inventory::grants;
use serde::Serialize;

// The pure half (what an inventory says privfence's account may do) lives with the inventory,
// which refuses a falsely clean answer with it.
pub use crate::inventory::capabilities::{privilege_capabilities, require_inventory_capabilities, Capability, Status, INVENTORY_NEEDS};

/// A source of privilege-error or usage signals.
#[derive(Debug, Clone, Serialize)]
pub struct SignalSource {
    pub name: &'static str,
    pub available: bool,
    pub detail: String,
}

/// The doctor's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Checkup {
    pub format: u32,
    pub server: crate::db::ServerInfo,
    pub account: crate::model::AccountName,
    pub capabilities: Vec<Capability>,
    pub signals: Vec<SignalSource>,
}

impl Checkup {
    pub fn all_ok(&self) -> bool {
        self.capabilities.iter().all(|c| c.status == Status::Ok)
    }
}

/// Examines the connected server.
pub async fn examine(server: &mut Server) -> Result<Checkup> {
    let flavour = server.info.flavour;
    let me = server.current_user.clone();
    let mut caps = Vec::new();
    match grants::read(server).await {
        Ok(inv) => {
            caps.push(Capability {
                name: "read the grant tables",
                needed_by: "inventory, access, audit, plan, session",
                status: Status::Ok,
                detail: "SELECT on mysql.*".into(),
            });
            caps.extend(privilege_capabilities(&inv, &me, flavour));
        }
        Err(e) => {
            caps.push(Capability {
                name: "read the grant tables",
                needed_by: "inventory, access, audit, plan, session",
                status: Status::Missing,
                detail: format!("needs SELECT on mysql.*: {e}"),
            });
        }
    }
    let signals = signal_sources(server).await;
    Ok(Checkup { format: 1, server: server.info.clone(), account: me, capabilities: caps, signals })
}

async fn signal_sources(server: &mut Server) -> Vec<SignalSource> {
    let mut out = Vec::new();
    let ps: Option<i64> = server.first("reading performance_schema", "SELECT @@GLOBAL.performance_schema").await.ok().flatten();
    out.push(SignalSource {
        name: "performance_schema",
        available: ps == Some(1),
        detail: if ps == Some(1) { "ON".into() } else { "OFF (needs a restart with performance_schema=ON)".into() },
    });
    match server.info.flavour {
        Flavour::MySql => {
            let ok = ps == Some(1);
            out.push(SignalSource {
                name: "events_errors_summary_by_account_by_error",
                available: ok,
                detail: "per-account error counts (1142, 1143, ...)".into(),
            });
            let hist: Option<String> = server
                .first(
                    "reading setup_consumers",
                    "SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'events_statements_history_long'",
                )
                .await
                .ok()
                .flatten();
            out.push(SignalSource {
                name: "events_statements_history_long",
                available: hist.as_deref() == Some("YES"),
                detail: format!("consumer enabled: {}", hist.unwrap_or_else(|| "unknown".into())),
            });
            let el: Option<i64> = server
                .first(
                    "error_log table",
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'error_log'",
                )
                .await
                .ok()
                .flatten();
            out.push(SignalSource {
                name: "performance_schema.error_log",
                available: el == Some(1),
                detail: "the error log over SQL (failed logins)".into(),
            });
        }
        Flavour::MariaDb => {
            let us: Option<i64> = server.first("reading userstat", "SELECT @@GLOBAL.userstat").await.ok().flatten();
            out.push(SignalSource {
                name: "userstat (USER_STATISTICS.ACCESS_DENIED)",
                available: us == Some(1),
                detail: if us == Some(1) {
                    "ON".into()
                } else {
                    "OFF (SET GLOBAL userstat=1; privfence journals it when it turns it on)".into()
                },
            });
            for (name, plugin) in [("sql_errlog plugin", "SQL_ERROR_LOG"), ("server_audit plugin", "SERVER_AUDIT")] {
                let st: Option<String> = server
                    .first(
                        "reading plugins",
                        &format!("SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = '{plugin}'"),
                    )
                    .await
                    .ok()
                    .flatten();
                out.push(SignalSource {
                    name,
                    available: st.as_deref() == Some("ACTIVE"),
                    detail: st.unwrap_or_else(|| "not loaded".into()),
                });
            }
        }
    }
    out
}
