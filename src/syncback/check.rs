//! Sync-back's up-front checks, run before it starts (and by `promote run --sync-back` before
//! the point of no return): the new server's binary log settings, that the start position's
//! logs are still there, the privileges on both sides, and the old primary's copy (each table
//! present, with a primary key and the same columns).
//!
//! The write probes change no row (`... WHERE FALSE`) and run inside a transaction that is
//! rolled back: they prove the privileges the server really applies, roles and all.
#![allow(clippy::disallowed_methods)] // write probes that change no row, in a rolled-back transaction (see above)

use super::position::{GtidSet, Position};
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::ident::quote_str;
use crate::model::TableName;
use serde::Serialize;

/// One check and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub(super) fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check { name: name.into(), ok, detail: detail.into() }
}

/// Whether any check failed.
pub fn refuses(checks: &[Check]) -> bool {
    checks.iter().any(|c| !c.ok)
}

/// The failed checks as one sentence.
pub fn failures(checks: &[Check]) -> String {
    checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect::<Vec<_>>().join("; ")
}

/// The new server's current binary log position (file, offset, and the GTID set on MySQL with
/// GTIDs on): where a promotion tells sync-back to start.
pub async fn current_position(source: &mut Server) -> Result<Position> {
    let sql = match source.info.flavour {
        Flavour::MySql => "SHOW BINARY LOG STATUS",
        Flavour::MariaDb => "SHOW MASTER STATUS",
    };
    let rows = source.rows("reading the binary log position", sql).await?;
    let Some(r) = rows.first() else {
        return Err(crate::error::Error::Setting {
            what: format!("{}: the binary log is off (log_bin)", source.target),
            todo: "turn on log_bin with binlog_format=ROW and binlog_row_image=FULL on the new server",
        });
    };
    let file = crate::db::server::text(r, 0);
    let pos = crate::db::server::text(r, 1).parse().unwrap_or(4);
    let gtid = match source.info.flavour {
        Flavour::MySql => {
            let mode: Option<String> = source.first("reading gtid_mode", "SELECT @@GLOBAL.gtid_mode").await?;
            match mode.as_deref() {
                Some("ON") => source.first::<String>("reading gtid_executed", "SELECT @@GLOBAL.gtid_executed").await?,
                _ => None,
            }
        }
        Flavour::MariaDb => None,
    };
    Ok(Position { file, pos, gtid })
}

/// Checks the new server (the binary log's source) for a start at `start`.
pub async fn source(s: &mut Server, start: &Position) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    let vars: Option<(i64, String, String)> =
        s.first("reading binary log settings", "SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image").await?;
    let (log_bin, format, image) = vars.unwrap_or((0, String::new(), String::new()));
    out.push(check("log_bin", log_bin == 1, if log_bin == 1 { "on" } else { "the binary log is off: nothing to read" }));
    let row = format.eq_ignore_ascii_case("ROW");
    out.push(check("binlog_format", row, if row { "ROW".into() } else { format!("{format}: sync-back needs ROW") }));
    let full = image.eq_ignore_ascii_case("FULL");
    out.push(check("binlog_row_image", full, if full { "FULL".into() } else { format!("{image}: sync-back needs FULL (whole rows)") }));
    if s.info.flavour == Flavour::MySql {
        let v: Option<String> = s.first("reading binlog_row_value_options", "SELECT @@GLOBAL.binlog_row_value_options").await?;
        let partial = v.as_deref().is_some_and(|v| v.contains("PARTIAL_JSON"));
        out.push(check(
            "binlog_row_value_options",
            !partial,
            if partial { "PARTIAL_JSON: JSON diffs cannot be applied" } else { "whole values" },
        ));
    }
    out.push(logs_present(s, start).await?);
    out.push(privilege(s, &["REPLICATION SLAVE"], "REPLICATION SLAVE (to read the binary log)").await?);
    Ok(out)
}

async fn logs_present(s: &mut Server, start: &Position) -> Result<Check> {
    if let (Some(g), Flavour::MySql) = (&start.gtid, s.info.flavour) {
        let purged: Option<String> = s.first("reading gtid_purged", "SELECT @@GLOBAL.gtid_purged").await?;
        let purged = GtidSet::parse(&purged.unwrap_or_default())?;
        let ok = GtidSet::parse(g)?.contains_set(&purged);
        let detail =
            if ok { format!("nothing after {g} was purged") } else { format!("transactions after the start were purged ({purged})") };
        return Ok(check("start position", ok, detail));
    }
    let files: Vec<String> =
        s.rows("listing binary logs", "SHOW BINARY LOGS").await?.iter().map(|r| crate::db::server::text(r, 0)).collect();
    let ok = files.contains(&start.file);
    let detail = if ok { format!("{} is present", start.file) } else { format!("{} is no longer on the server (purged?)", start.file) };
    Ok(check("start position", ok, detail))
}

/// Whether the current account holds one of `any` globally (information_schema's view, which
/// covers the account's own global grants).
async fn privilege(s: &mut Server, any: &[&str], what: &str) -> Result<Check> {
    let me = &s.current_user;
    let grantee = format!("'{}'@'{}'", me.user.replace('\'', "''"), me.host.replace('\'', "''"));
    let list = any.iter().map(|p| quote_str(p)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {} AND PRIVILEGE_TYPE IN ({list})",
        quote_str(&grantee)
    );
    let n: Option<u64> = s.first("reading the account's global privileges", &sql).await?;
    let ok = n.unwrap_or(0) > 0;
    Ok(check("privileges", ok, if ok { format!("{grantee} holds {what}") } else { format!("{grantee} lacks {what}") }))
}

/// Checks the old primary's copy: `tables` are (new server's table, copy) pairs.
pub async fn target(source: &mut Server, t: &mut Server, tables: &[(TableName, TableName)]) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for (from, to) in tables {
        match super::apply::TargetTable::read(t, to).await {
            Err(e) => out.push(check("old copy", false, e.to_string())),
            Ok(def) => {
                let cols = format!(
                    "SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} \
                     ORDER BY ORDINAL_POSITION",
                    quote_str(&from.schema),
                    quote_str(&from.name)
                );
                let on_source: Vec<(String, String)> = source.rows_as("reading the new server's columns", &cols).await?;
                // Columns that differ now are not refused here: the binary log holds the DDL
                // that changed them, and sync-back applies up to it and stops there, naming it;
                // each table map is checked against the copy before any row is written.
                let detail = if on_source == def.columns {
                    format!("{to}: {} column(s), primary key, same as {from}", def.columns.len())
                } else {
                    format!("{to}: primary key; its columns differ from {from}'s now: sync-back stops at the change")
                };
                out.push(check("old copy", true, detail));
                out.push(probe_writes(t, to).await);
            }
        }
    }
    let copies: Vec<TableName> = tables.iter().map(|(_, to)| to.clone()).collect();
    out.push(super::writers::other_writers(t, &copies).await);
    Ok(out)
}

/// Proves the account may insert and delete rows of `table` (statements that change no row,
/// rolled back).
async fn probe_writes(t: &mut Server, table: &TableName) -> Check {
    let q = table.sql();
    let probes = [format!("INSERT INTO {q} SELECT * FROM {q} WHERE FALSE"), format!("DELETE FROM {q} WHERE FALSE")];
    if t.session("starting a probe transaction", "START TRANSACTION").await.is_err() {
        return check("writes on the old copy", false, "could not start a transaction");
    }
    let mut failed = None;
    for p in &probes {
        if let Err(e) = t.execute_params(p, Vec::new()).await {
            failed = Some(e.to_string());
            break;
        }
    }
    let _ = t.session("rolling back the probe", "ROLLBACK").await;
    match failed {
        None => check("writes on the old copy", true, format!("{} may insert and delete rows of {table}", t.current_user.sql())),
        Some(e) => check("writes on the old copy", false, format!("{} cannot write {table}: {e}", t.current_user.sql())),
    }
}

/// `promote run --sync-back`, before the point of no return: the replica (the next binary log
/// source) has the settings and the privileges, and sync-back's account on the primary can log
/// in, holds write privileges on each table's archived name, and its position table can be
/// made. `tables` are (service table, its future copy). Changes nothing.
pub async fn before_promotion(
    replica: &mut Server,
    target: &crate::db::ConnectSpec,
    tables: &[(TableName, TableName)],
) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    let here = current_position(replica).await;
    match here {
        Ok(p) => out.extend(source(replica, &p).await?.into_iter().filter(|c| c.name != "start position")),
        Err(e) => out.push(check("log_bin", false, e.to_string())),
    }
    let mut t = match Server::connect(target).await {
        Ok(t) => t,
        Err(e) => {
            out.push(check("sync-back's account", false, format!("cannot log in to the primary: {e}")));
            return Ok(out);
        }
    };
    for (_, copy) in tables {
        let (s, n) = (quote_str(&copy.schema), quote_str(&copy.name));
        let exists: Option<u64> = t
            .first(
                "looking for the archived name",
                &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {s} AND TABLE_NAME = {n}"),
            )
            .await?;
        let free = exists.unwrap_or(0) == 0;
        out.push(check("archive's place", free, if free { format!("{copy} is free") } else { format!("{copy} exists already") }));
        let who = quote_str(&format!("'{}'@'{}'", t.current_user.user, t.current_user.host));
        let sql = format!(
            "SELECT COUNT(DISTINCT PRIVILEGE_TYPE) FROM (\
             SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {who} AND TABLE_SCHEMA = {s} AND TABLE_NAME = {n} \
             UNION ALL SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {who} AND {s} LIKE TABLE_SCHEMA \
             UNION ALL SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {who}) p \
             WHERE PRIVILEGE_TYPE IN ('INSERT', 'DELETE')"
        );
        let n: Option<u64> = t.first("reading sync-back's privileges", &sql).await?;
        let ok = n.unwrap_or(0) == 2;
        let detail = if ok {
            format!("{} may insert and delete rows of {copy}", t.current_user.sql())
        } else {
            format!("{} lacks INSERT or DELETE on {copy} (grant them on the archived name before the promotion)", t.current_user.sql())
        };
        out.push(check("sync-back's privileges", ok, detail));
    }
    t.close().await;
    Ok(out)
}

/// [`before_promotion`] for the service's tables under their archived names, each check shown.
pub async fn promotion(
    replica: &mut Server,
    target: &crate::db::ConnectSpec,
    tables: &[TableName],
    out: &mut crate::output::Output,
) -> Result<Vec<Check>> {
    let pairs: Vec<(TableName, TableName)> =
        tables.iter().map(|t| (t.clone(), TableName::new(&t.schema, format!("_{}_pf_archived", t.name)))).collect();
    let checks = before_promotion(replica, target, &pairs).await?;
    for c in &checks {
        out.status(&format!("  {} sync-back {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    Ok(checks)
}
