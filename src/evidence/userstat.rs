//! MariaDB's user statistics (`userstat=1`): `information_schema.USER_STATISTICS` per user name
//! and `TABLE_STATISTICS` per table from anyone.
//!
//! Seen on MariaDB 10.11: a user that never connected has no USER_STATISTICS row; a table that no
//! statement read a row of or changed has no TABLE_STATISTICS row (a lookup that finds nothing
//! counts 0 rows, so it leaves no trace). The counters start when userstat is turned on or
//! flushed, a moment no table records.

use super::{Collected, Ctx, Evidence, Usage};
use crate::db::server::text;
use crate::db::Server;
use crate::model::ident::quote_str;
use crate::model::TableName;

const USERS: &str = "userstat (information_schema.USER_STATISTICS)";
const TABLES: &str = "userstat (information_schema.TABLE_STATISTICS)";

pub(crate) async fn gather(server: &mut Server, ctx: &Ctx, out: &mut Collected) {
    let on: Option<(Option<String>,)> = server.first("reading @@userstat", "SELECT @@GLOBAL.userstat").await.ok().flatten();
    let on = matches!(on, Some((Some(ref v),)) if v == "1");
    let span = format!("since userstat was turned on or last flushed (not recorded; at most {})", ctx.clock.since_start());
    let mut common = vec!["the start of the counters is not recorded (SET GLOBAL userstat=1, FLUSH USER_STATISTICS)".to_string()];
    if !on {
        common.push("userstat is OFF now: the counters are not updated".into());
    }
    users(server, ctx, &span, &common, on, out).await;
    tables(server, ctx, &span, &common, on, out).await;
}

async fn users(server: &mut Server, ctx: &Ctx, span: &str, common: &[String], on: bool, out: &mut Collected) {
    let sql = format!(
        "SELECT USER, TOTAL_CONNECTIONS, CONCURRENT_CONNECTIONS, SELECT_COMMANDS, UPDATE_COMMANDS, OTHER_COMMANDS, ROWS_READ, \
         ROWS_INSERTED + ROWS_UPDATED + ROWS_DELETED FROM information_schema.USER_STATISTICS WHERE USER IN ({})",
        ctx.users.sql_list()
    );
    let rows = match server.rows("reading USER_STATISTICS", &sql).await {
        Ok(r) => r,
        Err(e) => return out.add_all(&ctx.users, &Evidence::unreadable(USERS, e.to_string())),
    };
    for user in ctx.users.names() {
        let mut blind = common.to_vec();
        blind.extend(ctx.users.shared_name(user));
        let row = rows.iter().find(|r| &text(r, 0) == user);
        let (usage, cited) = match row {
            Some(r) => (
                Usage::Unknown,
                vec![format!(
                    "user {}: {} connections ({} now), {} selects, {} updates, {} other commands, {} rows read, {} rows changed",
                    quote_str(user),
                    text(r, 1),
                    text(r, 2),
                    text(r, 3),
                    text(r, 4),
                    text(r, 5),
                    text(r, 6),
                    text(r, 7)
                )],
            ),
            None => (if on { Usage::NotSeen } else { Usage::Unknown }, vec![format!("no connection by user {} counted", quote_str(user))]),
        };
        let e = Evidence { source: USERS.into(), span: span.into(), blind_spots: blind, usage, rows: cited };
        for who in ctx.users.named(user) {
            out.add(who, e.clone());
        }
    }
}

async fn tables(server: &mut Server, ctx: &Ctx, span: &str, common: &[String], on: bool, out: &mut Collected) {
    let sql = "SELECT TABLE_SCHEMA, TABLE_NAME, ROWS_READ, ROWS_CHANGED FROM information_schema.TABLE_STATISTICS";
    let rows = match server.rows("reading TABLE_STATISTICS", sql).await {
        Ok(r) => r,
        Err(e) => return out.add_all(&ctx.users, &Evidence::unreadable(TABLES, e.to_string())),
    };
    let mut blind = common.to_vec();
    blind.push("counts rows per table from any account: does not say who".into());
    blind.push("counts rows, not statements: a read that finds no row leaves no trace".into());
    let mut cited = Vec::new();
    for r in &rows {
        if let Some(t) = ctx.targets.service_table(&TableName::new(text(r, 0), text(r, 1))) {
            cited.push(format!("{t}: {} rows read, {} rows changed", text(r, 2), text(r, 3)));
        }
    }
    // Rows, not statements: no row read is no proof that nobody looked, so never NotSeen.
    let usage = Usage::Unknown;
    if cited.is_empty() {
        cited.push(format!("no row of a service table read or changed{}", if on { "" } else { " (userstat is OFF)" }));
    }
    cited.sort();
    out.add_all(&ctx.users, &Evidence { source: TABLES.into(), span: span.into(), blind_spots: blind, usage, rows: cited });
}
