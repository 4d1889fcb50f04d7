//! `--verify`: compares every account's grants, rendered from the model, with what the server
//! itself holds. Any difference means the model is wrong about this server, and is reported
//! loudly.
//!
//! Two depths ([`Depth`]). `Views` (the default) checks every account's global, schema, table
//! and column grants in one pass over the `information_schema` privilege views
//! ([`super::views`]), and sends to `SHOW GRANTS` only the accounts the views cannot show
//! completely (roles, routine and proxy grants, default roles, partial revokes, MySQL dynamic
//! privileges: found by a raw read of the grant tables), the accounts the views do not list or
//! list ambiguously, and every account the views disagree on (so a reported mismatch is always
//! `SHOW GRANTS` against the model). `Full` sends one `SHOW GRANTS` per account.

use super::showgrants::{atoms, redact};
use super::views;
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::sql::{grantee_sql, ByGrantee};
use crate::model::{AccountName, Inventory};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

/// How deep `--verify` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// The privilege views for every account, `SHOW GRANTS` where they cannot tell.
    #[default]
    Views,
    /// `SHOW GRANTS` for every account.
    Full,
}

/// What a verify run found, and how many accounts each tier checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub mismatches: Vec<Mismatch>,
    /// Accounts passed by the privilege views alone.
    pub by_views: usize,
    /// Accounts checked with `SHOW GRANTS` (all of them under [`Depth::Full`]).
    pub by_show_grants: usize,
    /// Of those, the accounts the views disagreed on (each confirmed or cleared by `SHOW
    /// GRANTS`).
    pub suspects: usize,
}

/// A difference between the model and the server for one account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    pub account: AccountName,
    /// Atoms the server shows but the model lacks.
    pub only_on_server: Vec<String>,
    /// Atoms the model has but the server does not show.
    pub only_in_model: Vec<String>,
    /// Server lines privfence could not parse (credentials redacted).
    pub unparsed: Vec<String>,
    /// Set when the difference is a known server quirk, not an error in privfence's model:
    /// the grant tables (which privfence reads) say one thing and the server's in-memory
    /// grants (which `SHOW GRANTS` prints) another. See [`explain`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// What `--verify` says about a known server quirk.
pub const IN_MEMORY_DIFFERS: &str = "the server's in-memory grants differ from its grant tables; FLUSH PRIVILEGES would load the tables";

/// Explains a difference privfence knows to be the server's own: `WITH ADMIN OPTION` on a role
/// grant present in the grant tables but not in memory. Seen on MariaDB 10.11 after
/// `RENAME USER` of the grantee, and on MySQL 9.7 after a second `GRANT r TO u` without the
/// option; `FLUSH PRIVILEGES` makes `SHOW GRANTS` print it again on both.
pub fn explain(only_on_server: &[String], only_in_model: &[String], unparsed: &[String]) -> Option<String> {
    if !unparsed.is_empty() || only_in_model.is_empty() || only_in_model.len() != only_on_server.len() {
        return None;
    }
    let admin_dropped = only_in_model.iter().all(|m| {
        m.starts_with("ROLE ") && m.strip_suffix(" WITH ADMIN OPTION").is_some_and(|plain| only_on_server.iter().any(|s| s == plain))
    });
    admin_dropped.then(|| format!("{IN_MEMORY_DIFFERS} (the server forgot WITH ADMIN OPTION on a role grant: a known quirk after RENAME USER on MariaDB, or after granting the role again on MySQL)"))
}

impl Mismatch {
    /// Is this a known server quirk rather than a difference in privfence's model?
    pub fn is_server_quirk(&self) -> bool {
        self.explanation.is_some()
    }
}

fn atom_set(lines: &[String], inv: &Inventory, who: &AccountName, unparsed: &mut Vec<String>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in lines {
        match atoms(line, inv.server.flavour, &inv.levels, who) {
            Ok(a) => set.extend(a),
            Err(e) => unparsed.push(format!("{} ({e})", redact(line))),
        }
    }
    set
}

/// Compares the model with the server for every account (at [`Depth::Views`]); returns the
/// mismatches, each confirmed by `SHOW GRANTS`.
pub async fn verify(server: &mut Server, inv: &Inventory) -> Result<Vec<Mismatch>> {
    verify_where(server, inv, |_| true).await
}

/// [`verify`] on a live server: the accounts that mismatch are checked again against a fresh
/// read of the grant tables, so a grant changed by someone between the read and its `SHOW
/// GRANTS` is not reported as the model's error (Spirit's checksum reports only mismatches that
/// persist, for the same reason). Returns the fresh inventory when it took one.
pub async fn verify_settled(server: &mut Server, inv: &Inventory) -> Result<(Vec<Mismatch>, Option<Inventory>)> {
    let (checked, fresh) = verify_settled_with(server, inv, Depth::Views, &mut |_, _| {}).await?;
    Ok((checked.mismatches, fresh))
}

/// [`verify_settled`] at `depth`, calling `progress(done, total)` now and then (at most every
/// [`PROGRESS_EVERY`]) while the first pass runs, and once at its end. The re-check of the
/// accounts that mismatched is always `SHOW GRANTS`.
pub async fn verify_settled_with(
    server: &mut Server,
    inv: &Inventory,
    depth: Depth,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<(Checked, Option<Inventory>)> {
    let mut first = match depth {
        Depth::Views => two_tier(server, inv, |_| true, progress).await?,
        Depth::Full => {
            let mismatches = check(server, inv, |_| true, None, progress).await?;
            Checked { mismatches, by_show_grants: inv.accounts.len(), ..Checked::default() }
        }
    };
    if first.mismatches.is_empty() {
        return Ok((first, None));
    }
    let suspects: BTreeSet<AccountName> = first.mismatches.drain(..).map(|m| m.account).collect();
    let fresh = super::take(server).await?;
    first.mismatches = verify_full_where(server, &fresh, |a| suspects.contains(a)).await?;
    Ok((first, Some(fresh)))
}

/// Compares the model with the server for the accounts `keep` selects (at [`Depth::Views`]).
pub async fn verify_where(server: &mut Server, inv: &Inventory, keep: impl Fn(&AccountName) -> bool) -> Result<Vec<Mismatch>> {
    Ok(two_tier(server, inv, keep, &mut |_, _| {}).await?.mismatches)
}

/// [`verify_where`], also saying how many accounts each tier checked.
pub async fn verify_tiers_where(server: &mut Server, inv: &Inventory, keep: impl Fn(&AccountName) -> bool) -> Result<Checked> {
    two_tier(server, inv, keep, &mut |_, _| {}).await
}

/// Compares the model with `SHOW GRANTS` for the accounts `keep` selects ([`Depth::Full`]).
pub async fn verify_full_where(server: &mut Server, inv: &Inventory, keep: impl Fn(&AccountName) -> bool) -> Result<Vec<Mismatch>> {
    check(server, inv, keep, None, &mut |_, _| {}).await
}

/// [`verify_full_where`] on exactly `connections` connections (1 to [`MAX_CONNECTIONS`];
/// `server` and `connections - 1` more), however few the accounts: for tests and benchmarks.
pub async fn verify_where_on(
    server: &mut Server,
    inv: &Inventory,
    keep: impl Fn(&AccountName) -> bool,
    connections: usize,
) -> Result<Vec<Mismatch>> {
    check(server, inv, keep, Some(connections.clamp(1, MAX_CONNECTIONS)), &mut |_, _| {}).await
}

/// [`Depth::Views`] for the accounts `keep` selects: the views pass every account they show
/// completely and agree on; `SHOW GRANTS` (on [`check`]'s connections) checks the rest.
async fn two_tier(
    server: &mut Server,
    inv: &Inventory,
    keep: impl Fn(&AccountName) -> bool,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Checked> {
    let routed = views::needs_show_grants(server).await?;
    let seen = views::read(server).await?;
    // Every account of the inventory, not only the selected ones: a selected account's rows
    // must not be mixed up with another's.
    let (_, ambiguous) = views::index_grantees(inv.accounts.iter().map(|a| &a.name));
    let by = ByGrantee::new(inv);
    let mut tier2: HashSet<&AccountName> = HashSet::new();
    let (mut total, mut suspects) = (0, 0);
    for who in inv.accounts.iter().map(|a| &a.name).filter(|a| keep(a)) {
        total += 1;
        if routed.contains(who) || ambiguous.contains(who) || !seen.lists(who) {
            tier2.insert(who);
            continue;
        }
        let mut unparsed = Vec::new();
        let in_model = atom_set(&by.sql(who), inv, who, &mut unparsed);
        if !unparsed.is_empty() || in_model != seen.atoms_of(who) {
            suspects += 1;
            tier2.insert(who);
        }
    }
    let by_views = total - tier2.len();
    let mut offset = |done: usize, _: usize| progress(by_views + done, total);
    let mismatches = if tier2.is_empty() {
        offset(0, 0);
        Vec::new()
    } else {
        check(server, inv, |a| tier2.contains(a), None, &mut offset).await?
    };
    Ok(Checked { mismatches, by_views, by_show_grants: tier2.len(), suspects })
}

/// At most this many connections send `SHOW GRANTS` at once (`server` and up to seven more).
pub const MAX_CONNECTIONS: usize = 8;
/// The default number of connections on MySQL, whose `SHOW GRANTS` takes the grant cache's lock
/// in shared mode: statements on several connections run at once, as far as the server's CPUs
/// go (each walks the server's whole in-memory table grants).
pub const MYSQL_CONNECTIONS: usize = 4;
/// The default on MariaDB: one. Its `SHOW GRANTS` holds the grant cache's mutex for its whole
/// walk, so statements on other connections only queue behind it; measured with 10,000
/// accounts and 100,000 table grants, 2 or 4 connections were 15-50% slower than one
/// (docs/benchmarks.md).
pub const MARIADB_CONNECTIONS: usize = 1;
/// An extra connection is opened for every this many accounts (fewer are checked on `server`
/// alone: opening a connection costs more than the statements it would save).
const ACCOUNTS_PER_CONNECTION: usize = 32;
/// How often `progress` is called at most.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The connections to use for `accounts` accounts: `PRIVFENCE_VERIFY_CONNECTIONS` (1 to
/// [`MAX_CONNECTIONS`], for benchmarks and experiments) or the flavour's default, never more
/// than the accounts need.
fn connections_for(accounts: usize, flavour: Flavour) -> usize {
    pick_connections(accounts, flavour, std::env::var("PRIVFENCE_VERIFY_CONNECTIONS").ok().as_deref())
}

fn pick_connections(accounts: usize, flavour: Flavour, asked: Option<&str>) -> usize {
    let default = match flavour {
        Flavour::MySql => MYSQL_CONNECTIONS,
        Flavour::MariaDb => MARIADB_CONNECTIONS,
    };
    let wanted = asked.and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(default).clamp(1, MAX_CONNECTIONS);
    wanted.min(accounts.div_ceil(ACCOUNTS_PER_CONNECTION)).max(1)
}

/// The accounts `keep` selects, checked over a few connections at once: each connection takes
/// the next unchecked account until none is left. Mismatches come back in the inventory's
/// account order, whatever order the answers arrived in.
async fn check(
    server: &mut Server,
    inv: &Inventory,
    keep: impl Fn(&AccountName) -> bool,
    connections: Option<usize>,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<Mismatch>> {
    let todo: Vec<&AccountName> = inv.accounts.iter().map(|a| &a.name).filter(|n| keep(n)).collect();
    let by = ByGrantee::new(inv);
    let mut extra: Vec<Server> = Vec::new();
    for _ in 1..connections.unwrap_or_else(|| connections_for(todo.len(), inv.server.flavour)) {
        // A server that refuses more connections (max_user_connections) gets fewer.
        match server.another().await {
            Ok(s) => extra.push(s),
            Err(_) => break,
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers: Vec<_> =
        std::iter::once(&mut *server).chain(extra.iter_mut()).map(|conn| worker(conn, inv, &by, &todo, &next, &done)).collect();
    let mut last = std::time::Instant::now();
    let joined = join_all(workers, || {
        if last.elapsed() >= PROGRESS_EVERY {
            last = std::time::Instant::now();
            progress(done.load(Ordering::Relaxed), todo.len());
        }
    })
    .await;
    for s in extra {
        s.close().await;
    }
    let mut found = joined?;
    progress(done.load(Ordering::Relaxed), todo.len());
    found.sort_by_key(|(i, _)| *i);
    Ok(found.into_iter().map(|(_, m)| m).collect())
}

/// One connection's share: takes account after account off `todo` (through `next`) and returns
/// the mismatches with their index in `todo`.
async fn worker(
    conn: &mut Server,
    inv: &Inventory,
    by: &ByGrantee<'_>,
    todo: &[&AccountName],
    next: &AtomicUsize,
    done: &AtomicUsize,
) -> Result<Vec<(usize, Mismatch)>> {
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(who) = todo.get(i) else { return Ok(out) };
        if let Some(m) = check_one(conn, inv, by, who).await? {
            out.push((i, m));
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Compares one account's `SHOW GRANTS` with its grants rendered from the model.
async fn check_one(conn: &mut Server, inv: &Inventory, by: &ByGrantee<'_>, who: &AccountName) -> Result<Option<Mismatch>> {
    let sql = format!("SHOW GRANTS FOR {}", show_target(who, inv.server.flavour));
    let server_lines: Vec<String> = conn.rows_as::<String>("SHOW GRANTS", &sql).await?;
    let mut unparsed = Vec::new();
    let on_server = atom_set(&server_lines, inv, who, &mut unparsed);
    let mut model_unparsed = Vec::new();
    let in_model = atom_set(&by.sql(who), inv, who, &mut model_unparsed);
    unparsed.extend(model_unparsed.into_iter().map(|l| format!("model: {l}")));
    if on_server == in_model && unparsed.is_empty() {
        return Ok(None);
    }
    let only_on_server: Vec<String> = on_server.difference(&in_model).cloned().collect();
    let only_in_model: Vec<String> = in_model.difference(&on_server).cloned().collect();
    let explanation = explain(&only_on_server, &only_in_model, &unparsed);
    Ok(Some(Mismatch { account: who.clone(), only_on_server, only_in_model, unparsed, explanation }))
}

/// Runs `futures` concurrently on the current task until all have finished or one fails (the
/// others are then dropped: their connections are closed by the caller). `tick` runs after
/// every round of polling.
async fn join_all<F, T>(futures: Vec<F>, mut tick: impl FnMut()) -> Result<Vec<T>>
where
    F: Future<Output = Result<Vec<T>>>,
{
    let mut pending: Vec<Option<Pin<Box<F>>>> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out = Vec::new();
    std::future::poll_fn(|cx| {
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    *slot = None;
                    match r {
                        Ok(v) => out.extend(v),
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            }
        }
        tick();
        if pending.iter().all(Option::is_none) {
            Poll::Ready(Ok(std::mem::take(&mut out)))
        } else {
            Poll::Pending
        }
    })
    .await
}

fn show_target(who: &AccountName, flavour: Flavour) -> String {
    grantee_sql(who, flavour)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn connections_are_bounded_by_the_accounts_and_the_maximum() {
        assert_eq!(pick_connections(10_000, Flavour::MySql, None), MYSQL_CONNECTIONS);
        assert_eq!(pick_connections(10_000, Flavour::MariaDb, None), MARIADB_CONNECTIONS);
        assert_eq!(pick_connections(10_000, Flavour::MariaDb, Some("6")), 6);
        assert_eq!(pick_connections(10_000, Flavour::MySql, Some("99")), MAX_CONNECTIONS);
        assert_eq!(pick_connections(10_000, Flavour::MySql, Some("0")), 1);
        assert_eq!(pick_connections(10_000, Flavour::MySql, Some("x")), MYSQL_CONNECTIONS);
        // A test's handful of accounts is checked on the caller's connection alone.
        assert_eq!(pick_connections(5, Flavour::MySql, Some("8")), 1);
        assert_eq!(pick_connections(0, Flavour::MySql, None), 1);
        assert_eq!(pick_connections(70, Flavour::MySql, None), 3);
    }

    #[test]
    fn explains_only_a_forgotten_admin_option() {
        let server = v(&["ROLE `r`@`%`"]);
        let model = v(&["ROLE `r`@`%` WITH ADMIN OPTION"]);
        assert!(explain(&server, &model, &[]).unwrap().starts_with(IN_MEMORY_DIFFERS));
        // Anything else is privfence's own mismatch.
        assert!(explain(&[], &model, &[]).is_none());
        assert!(explain(&server, &v(&["ROLE `x`@`%` WITH ADMIN OPTION"]), &[]).is_none());
        assert!(explain(&v(&["`db`.* SELECT"]), &v(&["`db`.* INSERT"]), &[]).is_none());
        assert!(explain(&server, &model, &v(&["line"])).is_none());
    }
}
