//! Current connections (`information_schema.PROCESSLIST`, both flavours): who is connected now,
//! with which default schema, idle for how long, and whether the statement running right now
//! names a service table. Needs `PROCESS` to see other accounts' connections.
//!
//! A connection with the service's schema as its default database says little on its own (a
//! monolith's schema holds other services' tables too), but it matters for the cut: such a
//! connection keeps cached schema privileges until it reconnects (mysql-facts §3).

use super::clock::fmt;
use super::{Collected, Ctx, Evidence, Usage};
use crate::db::server::{opt_text, text};
use crate::db::Server;
use crate::model::ident::{quote_ident, quote_str};
use chrono::Duration;
use std::collections::BTreeMap;

const SOURCE: &str = "current connections (information_schema.PROCESSLIST)";

/// `sees_all`: whether privfence's account holds PROCESS ([`sees_all`]).
pub(crate) async fn gather(server: &mut Server, ctx: &Ctx, sees_all: bool, out: &mut Collected) {
    let sql = format!(
        "SELECT ID, USER, HOST, DB, COMMAND, TIME, INFO FROM information_schema.PROCESSLIST WHERE USER IN ({}) ORDER BY ID",
        ctx.users.sql_list()
    );
    let rows = match server.rows("reading the process list", &sql).await {
        Ok(r) => r,
        Err(e) => return out.add_all(&ctx.users, &Evidence::unreadable(SOURCE, e.to_string())),
    };
    let mut per: BTreeMap<String, Vec<&mysql_async::Row>> = BTreeMap::new();
    for r in &rows {
        per.entry(text(r, 1)).or_default().push(r);
    }
    let span = format!("now ({})", fmt(ctx.clock.now));
    for user in ctx.users.names() {
        let mut blind = vec!["shows only this moment".to_string()];
        blind.extend(ctx.users.shared_name(user));
        if !sees_all {
            blind.push("privfence's account lacks PROCESS: other accounts' connections are hidden".into());
        }
        let conns = per.get(user).map(Vec::as_slice).unwrap_or(&[]);
        let mut usage = Usage::Unknown;
        let mut cited = Vec::new();
        let mut latest = None;
        for r in conns {
            let (id, host, db, command, secs) =
                (text(r, 0), text(r, 2), opt_text(r, 3), text(r, 4), text(r, 5).parse::<i64>().unwrap_or(0));
            let schema = db.as_deref().map(quote_ident).unwrap_or_else(|| "none".into());
            let running = opt_text(r, 6).filter(|_| command == "Query");
            let hits = running.as_deref().map(|sql| ctx.targets.hits(sql, db.as_deref().unwrap_or(""))).unwrap_or_default();
            // An idle connection finished its last statement `TIME` seconds ago; a busy one is active now.
            let active_at = if command == "Sleep" { ctx.clock.now - Duration::seconds(secs) } else { ctx.clock.now };
            latest = latest.max(Some(active_at));
            if hits.is_empty() {
                cited.push(format!("connection {id} from {}: default schema {schema}, {command} for {secs} s", host_only(&host)));
            } else {
                usage = Usage::Used;
                let names: Vec<String> = hits.iter().map(|h| h.describe()).collect();
                cited.push(format!("connection {id} from {} is running a statement on {}", host_only(&host), names.join(", ")));
            }
        }
        if cited.is_empty() {
            cited.push(format!("no connection of user {}", quote_str(user)));
        }
        let e = Evidence { source: SOURCE.into(), span: span.clone(), blind_spots: blind, usage, rows: cited };
        for who in ctx.users.named(user) {
            out.add(who, e.clone());
            if let Some(t) = latest {
                out.saw(who, t, "connected now");
            }
        }
    }
}

/// The client host without its port (`localhost:44806` -> `localhost`).
fn host_only(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() && !h.contains(':') => h,
        _ => host,
    }
}

/// Whether privfence's account holds PROCESS at login, from the inventory when it lists the
/// account (its own, its default roles' and everyone's global privileges); otherwise from
/// `SHOW GRANTS`, which on MariaDB walks every table grant of the server.
pub(crate) async fn sees_all(server: &mut Server, ix: &crate::access::index::Index<'_>) -> bool {
    let me = server.current_user.clone();
    if ix.inv.account(&me).is_some() {
        return crate::inventory::capabilities::global_at_login(ix, &me).contains(&crate::model::privilege::Privilege::known("PROCESS"));
    }
    let grants = server.rows("reading privfence's own grants", "SHOW GRANTS").await.unwrap_or_default();
    grants.iter().any(|r| {
        let g = text(r, 0).to_uppercase();
        g.contains("ALL PRIVILEGES ON *.*") || (g.contains("PROCESS") && g.contains("ON *.*"))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(super::host_only("localhost:44806"), "localhost");
        assert_eq!(super::host_only("localhost"), "localhost");
        assert_eq!(super::host_only("::1"), "::1");
    }
}
