//! MariaDB without performance_schema: `information_schema.USER_STATISTICS` (with
//! `userstat=1`) for denied accesses and a coarse activity measure, and
//! `information_schema.PROCESSLIST` for the open connections.

use super::pfs::num;
use crate::db::server::text;
use crate::db::Server;
use crate::error::Result;
use crate::model::ident::quote_str;

/// Source names.
pub const USER_STATISTICS: &str = "information_schema.USER_STATISTICS";
pub const PROCESSLIST: &str = "information_schema.PROCESSLIST";

/// The user's row of `USER_STATISTICS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRow {
    pub access_denied: u64,
    /// `ROWS_READ + ROWS_INSERTED + ROWS_UPDATED + ROWS_DELETED`.
    pub rows: u64,
    /// `SELECT_COMMANDS + UPDATE_COMMANDS` (pings and `SELECT 1` included).
    pub commands: u64,
    /// Refused connection attempts (`DENIED_CONNECTIONS`; they count in `ACCESS_DENIED` too).
    pub denied_connections: u64,
}

/// The user's row, `None` when the user has none (never connected since the last flush).
pub async fn user_row(server: &mut Server, user: &str) -> Result<Option<UserRow>> {
    let sql = format!(
        "SELECT ACCESS_DENIED, ROWS_READ + ROWS_INSERTED + ROWS_UPDATED + ROWS_DELETED, SELECT_COMMANDS + UPDATE_COMMANDS, DENIED_CONNECTIONS \
         FROM information_schema.USER_STATISTICS WHERE USER = {}",
        quote_str(user)
    );
    let rows = server.rows("reading USER_STATISTICS", &sql).await?;
    Ok(rows.first().map(|r| UserRow { access_denied: num(r, 0), rows: num(r, 1), commands: num(r, 2), denied_connections: num(r, 3) }))
}

/// The user's open connections: processlist id and client host (port stripped).
pub async fn connections(server: &mut Server, user: &str) -> Result<Vec<(u64, String)>> {
    let sql = format!("SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE USER = {}", quote_str(user));
    let rows = server.rows("reading the processlist", &sql).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let host = text(r, 1);
            let host = match host.rsplit_once(':') {
                Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
                _ => host,
            };
            (num(r, 0), host)
        })
        .collect())
}
