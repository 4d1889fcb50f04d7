//! Settings that would improve the evidence, each with the statement that undoes it. The
//! session journals them, applies them in order, and undoes them in reverse order when done.
//!
//! Nothing here needs a restart: performance_schema itself (`performance_schema=ON`) and
//! installing the server_audit plugin are left to the DBA and stated as blind spots instead.

use super::Setting;
use crate::db::server::text;
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::ident::quote_str;

/// Statement consumers, in the order they must be enabled: each gates the next (seen on MariaDB
/// 10.11: `events_statements_history_long` stays empty while `events_statements_current` is off).
const CONSUMERS: &[(&str, &str)] = &[
    ("global_instrumentation", "performance_schema instruments nothing while it is off"),
    ("thread_instrumentation", "per-connection events are not collected while it is off"),
    ("events_statements_current", "statement history is collected only while it is on"),
    ("events_statements_history", "keeps each connection's last statements, attributable to its account"),
    (
        "events_statements_history_long",
        "keeps the last statements of all connections, so busy connections' statements stay visible for longer",
    ),
];

/// The settings that would improve evidence on this server, in the order to apply them.
pub async fn wanted_settings(server: &mut Server) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let ps: Option<(Option<String>,)> = server.first("reading @@performance_schema", "SELECT @@performance_schema").await?;
    if matches!(ps, Some((Some(ref v),)) if v == "1") {
        let rows = server.rows("reading setup_consumers", "SELECT NAME, ENABLED FROM performance_schema.setup_consumers").await?;
        for (name, why) in CONSUMERS {
            if rows.iter().any(|r| text(r, 0) == *name && text(r, 1) != "YES") {
                out.push(Setting::consumer(name, *why));
            }
        }
    }
    if server.info.flavour == Flavour::MariaDb {
        let on: Option<(Option<String>,)> = server.first("reading @@userstat", "SELECT @@GLOBAL.userstat").await?;
        if !matches!(on, Some((Some(ref v),)) if v == "1") {
            out.push(Setting::global("userstat", "1", "0", "per-user connection and statement counts (USER_STATISTICS, TABLE_STATISTICS)"));
        }
        out.extend(audit_settings(server).await?);
    }
    Ok(out)
}

/// server_audit, when installed: log TABLE events, and log at all.
async fn audit_settings(server: &mut Server) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let status = server
        .rows("reading plugin status", "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'SERVER_AUDIT'")
        .await?;
    if status.first().is_none_or(|r| text(r, 0) != "ACTIVE") {
        return Ok(out);
    }
    let vars = server.rows("reading server_audit variables", "SHOW GLOBAL VARIABLES LIKE 'server\\_audit\\_%'").await?;
    let var = |n: &str| vars.iter().find(|r| text(r, 0) == n).map(|r| text(r, 1)).unwrap_or_default();
    let events = var("server_audit_events");
    let has_table = events.is_empty() || events.split(',').any(|e| e.trim().eq_ignore_ascii_case("TABLE"));
    if !has_table {
        out.push(Setting::global(
            "server_audit_events",
            quote_str(&format!("{events},TABLE")),
            quote_str(&events),
            "server_audit TABLE events: which user read or wrote which table",
        ));
    }
    if var("server_audit_logging") != "ON" {
        out.push(Setting::global(
            "server_audit_logging",
            "ON",
            "OFF",
            format!("server_audit logging to {}", var("server_audit_file_path")),
        ));
    }
    Ok(out)
}
