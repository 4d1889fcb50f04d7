//! performance_schema sources (both flavours): account counters, statement history (in
//! `history`), table I/O and statement digests, plus the program counters the definer-object
//! evidence needs.
//!
//! Seen on MariaDB 10.11 and MySQL 9.7: the account summary, table I/O and digest tables fill
//! with the default configuration; MariaDB turns every statement consumer off by default, and
//! its `events_statements_history_long` stays empty unless `events_statements_current` is on.

mod history;

use super::clock::fmt;
use super::{Collected, Ctx, Evidence, Usage};
use crate::db::server::text;
use crate::db::Server;
use crate::model::ident::quote_str;
use crate::model::TableName;
use std::collections::BTreeMap;

pub(crate) const COUNTERS: &str = "performance_schema account counters (events_statements_summary_by_account_by_event_name, accounts)";
pub(crate) const TABLE_IO: &str = "performance_schema table I/O (table_io_waits_summary_by_table)";
pub(crate) const DIGESTS: &str = "performance_schema statement digests (events_statements_summary_by_digest)";

/// A number column read as text (the text protocol sends numbers as text); NULL is 0.
pub(crate) fn num(row: &mysql_async::Row, i: usize) -> u64 {
    text(row, i).split('.').next().unwrap_or("").parse().unwrap_or(0)
}

/// What the other sources need from performance_schema.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Executions per stored program (`PROCEDURE`/`FUNCTION`/`TRIGGER`/`EVENT`, schema, name),
    /// since start; `None` when unreadable.
    pub programs: Option<BTreeMap<(String, String, String), u64>>,
    /// Digest executions per view reaching the service tables; `None` when unreadable.
    pub views: Option<BTreeMap<TableName, u64>>,
}

/// Consumers, actors and lost counters.
struct State {
    consumers: BTreeMap<String, bool>,
    /// setup_actors rows: (host, user, enabled, history).
    actors: Vec<(String, String, bool, bool)>,
    lost: BTreeMap<String, u64>,
}

impl State {
    async fn read(server: &mut Server) -> crate::error::Result<State> {
        let rows = server.rows("reading setup_consumers", "SELECT NAME, ENABLED FROM performance_schema.setup_consumers").await?;
        let consumers = rows.iter().map(|r| (text(r, 0), text(r, 1) == "YES")).collect();
        let rows = server.rows("reading setup_actors", "SELECT HOST, USER, ENABLED, HISTORY FROM performance_schema.setup_actors").await?;
        let actors = rows.iter().map(|r| (text(r, 0), text(r, 1), text(r, 2) == "YES", text(r, 3) == "YES")).collect();
        let rows = server.rows("reading lost counters", "SHOW GLOBAL STATUS LIKE 'Performance\\_schema\\_%\\_lost'").await?;
        let lost = rows.iter().map(|r| (text(r, 0), num(r, 1))).filter(|(_, n)| *n > 0).collect();
        Ok(State { consumers, actors, lost })
    }

    fn consumer(&self, name: &str) -> bool {
        self.consumers.get(name).copied().unwrap_or(false)
    }

    fn lost(&self, what: &str) -> u64 {
        self.lost.get(&format!("Performance_schema_{what}_lost")).copied().unwrap_or(0)
    }

    /// Why `user`'s statements may not be instrumented (setup_actors, approximated by user name
    /// since the client host is not known in advance), or `None`.
    fn actor_gap(&self, user: &str, history: bool) -> Option<String> {
        let rows: Vec<_> = self.actors.iter().filter(|(_, u, _, _)| u == "%" || u == user).collect();
        let excluded = rows.is_empty() || rows.iter().any(|(_, _, enabled, hist)| !enabled || (history && !hist));
        excluded.then(|| {
            let what = if history { "instrumentation or history" } else { "instrumentation" };
            format!("performance_schema.setup_actors may turn off {what} for user {}", quote_str(user))
        })
    }
}

/// Reads every performance_schema source into `out`, sampling the statement history over
/// `window`.
pub(crate) async fn gather(server: &mut Server, ctx: &Ctx, window: std::time::Duration, out: &mut Collected) -> Facts {
    let on: Option<(Option<String>,)> = server.first("reading @@performance_schema", "SELECT @@performance_schema").await.ok().flatten();
    if !matches!(on, Some((Some(ref v),)) if v == "1") {
        let e = Evidence::unreadable(
            "performance_schema",
            "performance_schema is OFF; it can only be turned on at server start (performance_schema=ON)".into(),
        );
        out.add_all(&ctx.users, &e);
        return Facts::default();
    }
    let state = match State::read(server).await {
        Ok(s) => s,
        Err(e) => {
            out.add_all(&ctx.users, &Evidence::unreadable("performance_schema", format!("cannot read its setup: {e}")));
            return Facts::default();
        }
    };
    // History first: the totals it is checked against must be read after its last sample.
    let sampled = history::sample(server, ctx, &state, window).await;
    let totals = account_counters(server, ctx, &state, out).await;
    history::judge(ctx, &state, sampled, totals.as_ref(), out);
    table_io(server, ctx, out).await;
    let views = digests(server, ctx, &state, out).await;
    let programs = programs(server).await;
    Facts { programs, views }
}

/// Statements and connections per user name since start. Returns the statement totals per user
/// (for the history's completeness check), `None` when unreadable.
async fn account_counters(server: &mut Server, ctx: &Ctx, state: &State, out: &mut Collected) -> Option<BTreeMap<String, u64>> {
    let users = ctx.users.sql_list();
    let stmts = statements_per_account(server, ctx).await;
    let conns = server
        .rows(
            "reading connection counters per account",
            &format!("SELECT USER, HOST, CURRENT_CONNECTIONS, TOTAL_CONNECTIONS FROM performance_schema.accounts WHERE USER IN ({users})"),
        )
        .await;
    let (stmts, conns) = match (stmts, conns) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            out.add_all(&ctx.users, &Evidence::unreadable(COUNTERS, e.to_string()));
            return None;
        }
    };
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    // user -> host -> (statements, current connections, total connections)
    let mut per: BTreeMap<String, BTreeMap<String, (u64, u64, u64)>> = BTreeMap::new();
    for r in &stmts {
        *totals.entry(text(r, 0)).or_default() += num(r, 2);
        per.entry(text(r, 0)).or_default().entry(text(r, 1)).or_default().0 += num(r, 2);
    }
    for r in &conns {
        let slot = per.entry(text(r, 0)).or_default().entry(text(r, 1)).or_default();
        slot.1 += num(r, 2);
        slot.2 += num(r, 3);
    }
    for user in ctx.users.names() {
        let hosts = per.get(user).cloned().unwrap_or_default();
        // Gaps make "nothing counted" inconclusive; the other blind spots only qualify it.
        let mut gaps: Vec<String> = state.actor_gap(user, false).into_iter().collect();
        for what in ["accounts", "users", "hosts"] {
            if state.lost(what) > 0 {
                gaps.push(format!("Performance_schema_{what}_lost = {}: some accounts are not counted", state.lost(what)));
            }
        }
        let complete = gaps.is_empty();
        let mut blind = vec!["counters restart when the server restarts or the summary tables are truncated".to_string()];
        blind.extend(ctx.users.shared_name(user));
        blind.extend(gaps);
        let active: Vec<String> = hosts
            .iter()
            .filter(|(_, (s, _, t))| *s > 0 || *t > 0)
            .map(|(h, (s, c, t))| format!("user {} from {}: {t} connections ({c} now), {s} statements", quote_str(user), quote_str(h)))
            .collect();
        let (usage, rows) = match (active.is_empty(), complete) {
            (true, true) => {
                (Usage::NotSeen, vec![format!("no connection and no statement by user {} since server start", quote_str(user))])
            }
            (true, false) => (Usage::Unknown, vec![format!("no connection or statement counted for user {}", quote_str(user))]),
            (false, _) => (Usage::Unknown, active),
        };
        let e = Evidence { source: COUNTERS.into(), span: ctx.clock.since_start(), blind_spots: blind, usage, rows };
        for who in ctx.users.named(user) {
            out.add(who, e.clone());
        }
    }
    Some(totals)
}

/// Rows (user, host, statements since start) for the candidates' user names.
async fn statements_per_account(server: &mut Server, ctx: &Ctx) -> crate::error::Result<Vec<mysql_async::Row>> {
    let sql = format!(
        "SELECT USER, HOST, SUM(COUNT_STAR) FROM performance_schema.events_statements_summary_by_account_by_event_name \
         WHERE USER IN ({}) GROUP BY USER, HOST",
        ctx.users.sql_list()
    );
    server.rows("reading statement counters per account", &sql).await
}

/// Statements per user name since start.
pub(crate) async fn statements_per_user(server: &mut Server, ctx: &Ctx) -> crate::error::Result<BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for r in statements_per_account(server, ctx).await? {
        *out.entry(text(&r, 0)).or_default() += num(&r, 2);
    }
    Ok(out)
}

/// Row I/O on the service tables from anyone since start.
async fn table_io(server: &mut Server, ctx: &Ctx, out: &mut Collected) {
    let sql = "SELECT OBJECT_SCHEMA, OBJECT_NAME, COUNT_READ, COUNT_WRITE FROM performance_schema.table_io_waits_summary_by_table \
               WHERE OBJECT_TYPE = 'TABLE' AND COUNT_STAR > 0";
    let rows = match server.rows("reading table I/O counters", sql).await {
        Ok(r) => r,
        Err(e) => return out.add_all(&ctx.users, &Evidence::unreadable(TABLE_IO, e.to_string())),
    };
    let mut blind = vec![
        "counts I/O per table from any account: does not say who".to_string(),
        "counters restart when the server restarts or the table is truncated in performance_schema".to_string(),
    ];
    let instrument: Option<(String, String)> = server
        .first(
            "reading the table I/O instrument",
            "SELECT ENABLED, TIMED FROM performance_schema.setup_instruments WHERE NAME = 'wait/io/table/sql/handler'",
        )
        .await
        .ok()
        .flatten();
    let mut complete = matches!(&instrument, Some((e, _)) if e == "YES");
    if !complete {
        blind.push("the instrument wait/io/table/sql/handler is disabled".into());
    }
    let objects = server
        .rows(
            "reading setup_objects",
            "SELECT OBJECT_SCHEMA, OBJECT_NAME, ENABLED FROM performance_schema.setup_objects WHERE OBJECT_TYPE = 'TABLE'",
        )
        .await
        .unwrap_or_default();
    let mut found = Vec::new();
    for t in ctx.targets.tables() {
        if !table_instrumented(&objects, t) {
            complete = false;
            blind.push(format!("performance_schema.setup_objects does not instrument {t}"));
        }
        let hit = rows.iter().find(|r| ctx.targets.service_table(&TableName::new(text(r, 0), text(r, 1))) == Some(t));
        if let Some(r) = hit {
            found.push(format!("{t}: {} reads, {} writes since server start", num(r, 2), num(r, 3)));
        }
    }
    let usage = if found.is_empty() && complete { Usage::NotSeen } else { Usage::Unknown };
    if found.is_empty() {
        found.push("no row I/O on any service table since server start".into());
    }
    out.add_all(&ctx.users, &Evidence { source: TABLE_IO.into(), span: ctx.clock.since_start(), blind_spots: blind, usage, rows: found });
}

/// setup_objects: the most specific row (exact schema and name, exact schema, then `%`) decides.
fn table_instrumented(objects: &[mysql_async::Row], t: &TableName) -> bool {
    let score = |r: &mysql_async::Row| -> Option<u8> {
        let (s, n) = (text(r, 0), text(r, 1));
        let sm = s == "%" || s.eq_ignore_ascii_case(&t.schema);
        let nm = n == "%" || n.eq_ignore_ascii_case(&t.name);
        (sm && nm).then_some(u8::from(s != "%") * 2 + u8::from(n != "%"))
    };
    objects.iter().filter_map(|r| score(r).map(|s| (s, text(r, 2) == "YES"))).max_by_key(|(s, _)| *s).is_some_and(|(_, on)| on)
}

/// `LIKE` pattern matching `name` anywhere (wildcards in the name escaped).
fn like_anywhere(name: &str) -> String {
    let escaped: String = name.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    quote_str(&format!("%{escaped}%"))
}

/// Digests naming the service tables (or views over them), from anyone since start. Returns
/// executions per view for the definer-object evidence.
async fn digests(server: &mut Server, ctx: &Ctx, state: &State, out: &mut Collected) -> Option<BTreeMap<TableName, u64>> {
    let filter: Vec<String> = ctx.targets.names().iter().map(|n| format!("DIGEST_TEXT LIKE {}", like_anywhere(n))).collect();
    let sql = format!(
        "SELECT SCHEMA_NAME, DIGEST, DIGEST_TEXT, COUNT_STAR, CAST(LAST_SEEN AS CHAR) FROM performance_schema.events_statements_summary_by_digest \
         WHERE DIGEST IS NULL OR {}",
        if filter.is_empty() { "FALSE".into() } else { filter.join(" OR ") }
    );
    let rows = match server.rows("reading statement digests", &sql).await {
        Ok(r) => r,
        Err(e) => {
            out.add_all(&ctx.users, &Evidence::unreadable(DIGESTS, e.to_string()));
            return None;
        }
    };
    let mut blind = vec![
        "per digest from any account: does not say who".to_string(),
        "statements inside stored programs are not digested: a CALL does not name the tables its routine reads".to_string(),
    ];
    let mut views: BTreeMap<TableName, u64> = BTreeMap::new();
    // (last seen, row), most recent first
    let mut cited: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let Some(digest) = crate::db::server::opt_text(r, 1) else {
            if num(r, 3) > 0 {
                blind.push(format!("the digest table is full: {} later statements were not summarised", num(r, 3)));
            }
            continue;
        };
        let hits = ctx.targets.hits(&text(r, 2), &text(r, 0));
        for h in &hits {
            if let Some(v) = &h.view {
                *views.entry(v.clone()).or_default() += num(r, 3);
            }
        }
        if !hits.is_empty() {
            let names: Vec<String> = hits.iter().map(|h| h.describe()).collect();
            let last = super::clock::parse(&text(r, 4)).map(fmt).unwrap_or_default();
            let row = format!("digest {} names {}: run {}, last {last}", short(&digest), names.join(", "), super::times(num(r, 3)));
            cited.push((last, row));
        }
    }
    if state.lost("digest") > 0 {
        blind.push(format!("Performance_schema_digest_lost = {}", state.lost("digest")));
    }
    cited.sort_by(|a, b| b.cmp(a));
    let mut cited: Vec<String> = cited.into_iter().map(|(_, r)| r).collect();
    super::cap(&mut cited, 10);
    if cited.is_empty() {
        cited.push("no statement digest names a service table or a view over one".into());
    }
    let e = Evidence { source: DIGESTS.into(), span: ctx.clock.since_start(), blind_spots: blind, usage: Usage::Unknown, rows: cited };
    out.add_all(&ctx.users, &e);
    Some(views)
}

/// The first 16 hex digits of a digest: enough to find it again, short enough to read.
pub(crate) fn short(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// Executions per stored program since start.
async fn programs(server: &mut Server) -> Option<BTreeMap<(String, String, String), u64>> {
    let sql = "SELECT OBJECT_TYPE, OBJECT_SCHEMA, OBJECT_NAME, COUNT_STAR FROM performance_schema.events_statements_summary_by_program";
    let rows = server.rows("reading stored program counters", sql).await.ok()?;
    Some(rows.iter().map(|r| ((text(r, 0), text(r, 1), text(r, 2)), num(r, 3))).collect())
}
