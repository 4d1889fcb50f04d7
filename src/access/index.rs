//! Lookup structures over an inventory, and the direct privilege paths of one grantee on one
//! table or routine, following the servers' own matching rules:
//!
//! - schema grants are patterns; among an account's matching `mysql.db` rows only the first in
//!   the server's sort order applies (host specificity, then schema, then user; see
//!   [`wildcard_sort_key`]). Rows of anonymous users (`''`) apply to every user name. Rows with
//!   equal sort keys have no defined order, so their union is taken (the conservative answer).
//! - a row's host applies to an account when equal, or when it is a pattern matching the
//!   account's literal host (the servers match rows against the client's host).
//! - MySQL partial revokes subtract from global privileges on one schema only.
//! - MySQL applies anonymous-user schema rows only to a login with no active role (seen on 9.7:
//!   with a default or mandatory role active, the `''` row on `test` is denied until
//!   `SET ROLE NONE`), and never through a role; hence the `*_as_role` variants.

use super::via::Via;
use crate::model::ident::{host_matches, wildcard_sort_key};
use crate::model::privilege::{table_relevant, PrivSet, Privilege};
use crate::model::{AccountName, Grant, GrantObject, Inventory, RoleGrant, TableName};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

mod roles;

/// The index's one hasher. Names (user names, accounts) are hashed with FNV-1a: they are asked
/// once per account and table, and SipHash, the standard default, was 6-8% of `access`'s CPU at
/// 10,000 accounts (the keys come from the server's grant tables, not from the network). The
/// `table` and `routine` maps' keys are FNV hashes already ([`Index::key`]) and are taken as
/// they are: hashing them again with SipHash was a tenth of building the index for 100,000
/// table grants.
type KeyHash = std::hash::BuildHasherDefault<FnvHasher>;

struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> FnvHasher {
        FnvHasher(0xcbf29ce484222325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    /// A `u64` key is an FNV hash already (strings never hash through here).
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The user names whose schema rows match one schema (see [`Index::may_reach`]).
/// Owned names: a borrowed one inside the `Mutex` would make [`Index`] invariant in its lifetime.
#[derive(Default)]
struct SchemaUsers {
    users: HashSet<String, KeyHash>,
    /// An anonymous user's row matches: it applies to every named account with a host.
    anonymous: bool,
}

/// Grants by a 64-bit key, all in one vector sorted by key, with each key's run found through a
/// hash map: 100,000 table grants cost two allocations to build and free, not one per key.
#[derive(Default)]
struct Keyed<'a> {
    rows: Vec<(u64, &'a Grant)>,
    runs: HashMap<u64, (u32, u32), KeyHash>,
}

impl<'a> Keyed<'a> {
    fn new(mut rows: Vec<(u64, &'a Grant)>) -> Keyed<'a> {
        // Stable: a key's grants stay in the inventory's order.
        rows.sort_by_key(|(k, _)| *k);
        let mut runs: HashMap<u64, (u32, u32), KeyHash> = HashMap::with_capacity_and_hasher(rows.len(), KeyHash::default());
        let mut i = 0;
        while i < rows.len() {
            let key = rows[i].0;
            let end = i + rows[i..].iter().take_while(|(k, _)| *k == key).count();
            runs.insert(key, (i as u32, (end - i) as u32));
            i = end;
        }
        Keyed { rows, runs }
    }

    fn get(&self, key: u64) -> &[(u64, &'a Grant)] {
        match self.runs.get(&key) {
            Some(&(start, len)) => &self.rows[start as usize..(start + len) as usize],
            None => &[],
        }
    }

    fn contains_key(&self, key: &u64) -> bool {
        self.runs.contains_key(key)
    }
}

/// [`Index::may_reach`] for one table (see [`Index::reach`]).
pub struct Reach<'i, 'a> {
    ix: &'i Index<'a>,
    prefix: u64,
    schema_users: Arc<SchemaUsers>,
}

impl Reach<'_, '_> {
    /// Could `holder` have any path of its own on the table? See [`Index::may_reach`].
    pub fn admits(&self, holder: &AccountName) -> bool {
        self.admits_given(holder, self.ix.reaches_any(holder))
    }

    /// [`Self::admits`] with [`Index::reaches_any`] already known for `holder` (a loop over
    /// the same accounts for many tables asks it once per account).
    pub fn admits_given(&self, holder: &AccountName, reaches_any: bool) -> bool {
        let ix = self.ix;
        let users = &self.schema_users;
        ix.reach_all
            || reaches_any
            || ix.table.contains_key(&Index::key_with(self.prefix, &holder.user))
            || users.users.contains(holder.user.as_str())
            || (users.anonymous && !holder.host.is_empty() && !holder.user.is_empty())
    }
}

/// FNV-1a step over `s`, lowercased when `fold`.
fn fnv(h: &mut u64, s: &str, fold: bool) {
    let mut eat = |b: u8| {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100000001b3);
    };
    if !fold || s.is_ascii() {
        s.bytes().for_each(|b| eat(if fold { b.to_ascii_lowercase() } else { b }));
        return;
    }
    for c in s.chars().flat_map(char::to_lowercase) {
        let mut buf = [0u8; 4];
        c.encode_utf8(&mut buf).bytes().for_each(&mut eat);
    }
}

/// Indexes of one inventory for fast path lookups.
pub struct Index<'a> {
    pub inv: &'a Inventory,
    /// `lower_case_table_names` != 0: schema and table names compare case-insensitively.
    ci: bool,
    global: HashMap<&'a AccountName, Vec<&'a Grant>, KeyHash>,
    /// Schema grants by grantee user name (anonymous rows under "").
    schema_by_user: HashMap<&'a str, Vec<&'a Grant>, KeyHash>,
    /// Per schema asked about (folded when `ci`): the user names with a schema row matching it,
    /// whatever the row's host, built on first use (a superset: [`Self::may_reach`] is a filter).
    schema_users: Mutex<HashMap<String, Arc<SchemaUsers>>>,
    /// Table and column grants by a hash of (user, folded schema, folded table): no key
    /// strings are built (an inventory may hold 100,000 table grants); hits are re-checked.
    table: Keyed<'a>,
    routine: HashMap<u64, Vec<&'a Grant>, KeyHash>,
    roles_of: HashMap<&'a AccountName, Vec<&'a RoleGrant>>,
    defaults: HashSet<(&'a AccountName, &'a AccountName)>,
    /// PUBLIC and mandatory roles, computed once (asked for per account).
    everyone: Vec<(AccountName, bool)>,
    /// Holders whose paths [`Self::may_reach`] cannot rule out from their own rows: those with
    /// global grants, roles, default roles or proxy grants.
    reach_any: HashSet<&'a AccountName, KeyHash>,
    /// MySQL with mandatory roles active at login: every account's map holds their rows, so
    /// no holder is ruled out.
    reach_all: bool,
}

impl<'a> Index<'a> {
    pub fn new(inv: &'a Inventory) -> Index<'a> {
        let ci = inv.server.lower_case_table_names != 0;
        let mut ix = Index {
            inv,
            ci,
            global: HashMap::default(),
            schema_by_user: HashMap::default(),
            schema_users: Mutex::new(HashMap::new()),
            table: Keyed::default(),
            routine: HashMap::default(),
            roles_of: HashMap::new(),
            defaults: inv.default_roles.iter().map(|d| (&d.account, &d.role)).collect(),
            everyone: Vec::new(),
            reach_any: HashSet::default(),
            reach_all: false,
        };
        let public = AccountName::new("PUBLIC", "");
        if inv.accounts.iter().any(|a| a.name == public && a.is_role) {
            ix.everyone.push((public, true));
        }
        ix.everyone.extend(inv.mandatory_roles.iter().map(|r| (r.clone(), false)));
        let mut table_rows: Vec<(u64, &Grant)> = Vec::with_capacity(inv.grants.len());
        for g in &inv.grants {
            match &g.object {
                GrantObject::Global => ix.global.entry(&g.grantee).or_default().push(g),
                GrantObject::Schema { .. } => ix.schema_by_user.entry(g.grantee.user.as_str()).or_default().push(g),
                GrantObject::Table { table } | GrantObject::Column { table, .. } => {
                    let key = ix.key(&g.grantee.user, &table.schema, &table.name, ix.ci);
                    table_rows.push((key, g));
                }
                GrantObject::Routine { schema, name, .. } => {
                    let key = ix.key(&g.grantee.user, schema, name, true);
                    ix.routine.entry(key).or_default().push(g);
                }
            }
        }
        ix.table = Keyed::new(table_rows);
        for r in &inv.role_grants {
            ix.roles_of.entry(&r.grantee).or_default().push(r);
        }
        ix.reach_any.extend(ix.global.keys().copied());
        ix.reach_any.extend(ix.roles_of.keys().copied());
        ix.reach_any.extend(inv.default_roles.iter().map(|d| &d.account));
        ix.reach_any.extend(inv.proxies.iter().map(|p| &p.grantee));
        ix.reach_all = inv.server.flavour == crate::db::Flavour::MySql && ix.mandatory_active() && !inv.mandatory_roles.is_empty();
        ix
    }

    /// Could `holder` have any path of its own (itself, its roles; not PUBLIC or mandatory
    /// roles) on `table`? False only when it holds no global grant, no role, no default role,
    /// no proxy grant, no schema row that matches (its own or an anonymous one) and no table or
    /// column grant on that table: then [`Self::own_paths`] is empty. Most of 10,000 accounts
    /// are ruled out here with two hash lookups, before the full analysis.
    pub fn may_reach(&self, holder: &AccountName, table: &TableName) -> bool {
        // One question: the holder's own schema rows are few, so they are scanned here; a loop
        // over many holders builds a [`Reach`] instead, which matches the schema rows once.
        self.reach_all
            || self.reach_any.contains(holder)
            || self.table.contains_key(&self.key(&holder.user, &table.schema, &table.name, self.ci))
            || self.any_schema_row(holder, &table.schema)
    }

    /// Is [`Self::schema_candidates`] (with anonymous rows) non-empty? Without building it.
    fn any_schema_row(&self, holder: &AccountName, schema: &str) -> bool {
        let literal = self.inv.server.partial_revokes;
        let anonymous_ok = !holder.host.is_empty() && !holder.user.is_empty();
        let users: &[&str] = if anonymous_ok { &[holder.user.as_str(), ""] } else { &[holder.user.as_str()] };
        users.iter().any(|u| {
            self.schema_by_user.get(u).into_iter().flatten().any(|g| {
                let GrantObject::Schema { pattern } = &g.object else { return false };
                let host_ok = if holder.host.is_empty() { g.grantee.host.is_empty() } else { Self::host_applies(&g.grantee, holder) };
                host_ok && pattern.matches(schema, self.ci, literal)
            })
        })
    }

    /// Does `holder` hold something that may reach any table (a global grant, a role, a default
    /// role, a proxy grant)? Then [`Self::may_reach`] cannot rule it out for any table.
    pub fn reaches_any(&self, holder: &AccountName) -> bool {
        self.reach_any.contains(holder)
    }

    /// [`Self::may_reach`] for one table, ready to ask about many holders: a caller looping over
    /// 10,000 accounts builds it once per table (the schema's rows and the table's key prefix).
    pub fn reach(&self, table: &TableName) -> Reach<'_, 'a> {
        Reach { ix: self, prefix: self.key_prefix(&table.schema, &table.name, self.ci), schema_users: self.schema_users(&table.schema) }
    }

    /// The user names with a schema row matching `schema`, whatever its host (a superset of
    /// [`Self::schema_candidates`] being non-empty): one pass over the schema rows per schema,
    /// remembered, instead of one per account.
    fn schema_users(&self, schema: &str) -> Arc<SchemaUsers> {
        let folded;
        let key = if self.ci && schema.chars().any(char::is_uppercase) {
            folded = schema.to_lowercase();
            folded.as_str()
        } else {
            schema
        };
        // A poisoned lock only means another thread panicked mid-insert of a complete value.
        let mut memo = self.schema_users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = memo.get(key) {
            return u.clone();
        }
        let literal = self.inv.server.partial_revokes;
        let mut found = SchemaUsers::default();
        for (user, rows) in &self.schema_by_user {
            let hit =
                rows.iter().any(|g| matches!(&g.object, GrantObject::Schema { pattern } if pattern.matches(schema, self.ci, literal)));
            if hit {
                found.users.insert(user.to_string());
                found.anonymous |= user.is_empty();
            }
        }
        let found = Arc::new(found);
        memo.insert(key.to_string(), found.clone());
        found
    }

    /// FNV-1a over the schema, the name (folded to lowercase when `ci`) and the user, byte by
    /// byte of their UTF-8 (an ASCII string folds byte by byte; others char by char).
    fn key(&self, user: &str, schema: &str, name: &str, ci_name: bool) -> u64 {
        Self::key_with(self.key_prefix(schema, name, ci_name), user)
    }

    /// [`Self::key`] up to the user: the same for every holder asked about one object.
    fn key_prefix(&self, schema: &str, name: &str, ci_name: bool) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        fnv(&mut h, schema, self.ci);
        fnv(&mut h, "\0", false);
        fnv(&mut h, name, ci_name);
        fnv(&mut h, "\0", false);
        h
    }

    fn key_with(mut prefix: u64, user: &str) -> u64 {
        fnv(&mut prefix, user, false);
        prefix
    }

    pub fn fold(&self, s: &str) -> String {
        if self.ci {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    }

    /// Same table, by the server's name comparison rules.
    pub fn same_table(&self, a: &TableName, b: &TableName) -> bool {
        if !self.ci {
            // Case-sensitive: no folded copies (this runs for every account on every table).
            return a.schema == b.schema && a.name == b.name;
        }
        self.fold(&a.schema) == self.fold(&b.schema) && self.fold(&a.name) == self.fold(&b.name)
    }

    /// Does a grant row's host apply to this account?
    fn host_applies(row: &AccountName, holder: &AccountName) -> bool {
        row.host == holder.host || (wildcard_sort_key(&holder.host) == 128 && host_matches(&row.host, &holder.host))
    }

    pub fn with_option(g: &Grant) -> PrivSet {
        let mut set = g.privileges.clone();
        if g.grant_option {
            set.insert(Privilege::known("GRANT OPTION"));
        }
        set
    }

    /// Global privileges of `holder` that act on `table`, minus partial revokes.
    fn global_on(&self, holder: &AccountName, table: &TableName) -> PrivSet {
        let mut set = PrivSet::new();
        for g in self.global.get(holder).into_iter().flatten() {
            // Dynamic privileges' grant option does not reach tables.
            if g.privileges.iter().all(|p| p.is_dynamic()) && !g.privileges.is_empty() {
                continue;
            }
            set.extend(table_relevant(&Self::with_option(g)));
        }
        for r in self.inv.partial_revokes.iter().filter(|r| &r.account == holder) {
            if self.fold(&r.schema) == self.fold(&table.schema) {
                set.retain(|p| !r.privileges.contains(p));
            }
        }
        set
    }

    /// All global privileges of `holder` (any kind), for escalation checks.
    pub fn global_all(&self, holder: &AccountName) -> PrivSet {
        self.global.get(holder).into_iter().flatten().flat_map(|g| Self::with_option(g)).collect()
    }

    /// Every schema row that matches `schema` for `holder`, in no order: its own rows, rows of
    /// anonymous users (when `anonymous`), and rows whose host applies to its host.
    pub fn schema_candidates(&self, holder: &AccountName, schema: &str, anonymous: bool) -> Vec<&'a Grant> {
        let literal = self.inv.server.partial_revokes;
        let mut rows: Vec<&Grant> = Vec::new();
        let anonymous_ok = anonymous && !holder.host.is_empty(); // roles and PUBLIC only have their own rows
        let users: &[&str] = if anonymous_ok && !holder.user.is_empty() { &[holder.user.as_str(), ""] } else { &[holder.user.as_str()] };
        for u in users {
            for g in self.schema_by_user.get(u).into_iter().flatten() {
                let GrantObject::Schema { pattern } = &g.object else { continue };
                let host_ok = if holder.host.is_empty() { g.grantee.host.is_empty() } else { Self::host_applies(&g.grantee, holder) };
                if host_ok && pattern.matches(schema, self.ci, literal) {
                    rows.push(g);
                }
            }
        }
        rows
    }

    /// The server's order key of a schema row (higher applies first).
    pub fn schema_row_key(g: &Grant) -> (u32, u32, u32) {
        let GrantObject::Schema { pattern } = &g.object else { return (0, 0, 0) };
        (wildcard_sort_key(&g.grantee.host), pattern.sort_key(), wildcard_sort_key(&g.grantee.user))
    }

    /// Of `rows`, those that apply: the first by sort order (ties unioned: their order is not
    /// defined by the server, so the conservative answer takes all).
    pub fn first_rows(rows: Vec<&Grant>) -> Vec<&Grant> {
        let Some(best) = rows.iter().map(|g| Self::schema_row_key(g)).max() else { return vec![] };
        rows.into_iter().filter(|g| Self::schema_row_key(g) == best).collect()
    }

    /// The schema rows that apply to `holder` for `schema` when it logs in.
    pub fn schema_rows(&self, holder: &AccountName, schema: &str) -> Vec<&'a Grant> {
        self.effective_schema_rows(holder, schema, &|_| false)
    }

    /// The schema rows a role gives for `schema` once active: its own rows only (anonymous
    /// rows never reach through a role).
    pub fn role_schema_rows(&self, role: &AccountName, schema: &str) -> Vec<&'a Grant> {
        Self::first_rows(self.schema_candidates(role, schema, false))
    }

    /// The rows that apply for `schema`, leaving out those `skip` says (the planner asks what
    /// applies once some rows are gone). Without an active MySQL role: the first by the
    /// server's sort order. With one: [`Self::map_winner`] over the account's and its active
    /// roles' rows.
    pub fn effective_schema_rows(&self, holder: &AccountName, schema: &str, skip: &dyn Fn(&Grant) -> bool) -> Vec<&'a Grant> {
        if !self.uses_role_map(holder) {
            return Self::first_rows(self.schema_candidates(holder, schema, true).into_iter().filter(|g| !skip(g)).collect());
        }
        let mut rows: Vec<&Grant> = self.schema_candidates(holder, schema, false);
        for c in self.active_chains(holder).into_iter().chain(self.mandatory_chains()) {
            rows.extend(self.schema_candidates(c.last().expect("non-empty"), schema, false));
        }
        rows.retain(|g| !skip(g));
        self.map_winner(rows, schema)
    }

    /// MySQL's role-session map: rows are keyed by their pattern text (identical texts merge);
    /// a text without `%` or `_` that equals the schema name wins; otherwise the first
    /// matching pattern in byte order of its text applies, alone. (Observed on MySQL 9.7:
    /// with `rz_%` and `r%` both matching, `r%` applies; `rz\_%` comes before `rz_%`.)
    pub fn map_winner<'g>(&self, rows: Vec<&'g Grant>, schema: &str) -> Vec<&'g Grant> {
        let text = |g: &Grant| match &g.object {
            GrantObject::Schema { pattern } => pattern.0.clone(),
            _ => String::new(),
        };
        let plain = |t: &str| !t.contains('%') && !t.contains('_');
        let exact: Vec<&Grant> = rows.iter().copied().filter(|g| plain(&text(g)) && self.fold(&text(g)) == self.fold(schema)).collect();
        if !exact.is_empty() {
            return exact;
        }
        let Some(first) = rows.iter().map(|g| text(g)).filter(|t| !plain(t)).min() else { return vec![] };
        rows.into_iter().filter(|g| text(g) == first).collect()
    }

    /// Direct paths of `holder` (an account logging in) on `table`.
    pub fn direct(&self, holder: &AccountName, table: &TableName) -> Vec<(Via, PrivSet)> {
        self.direct_with(holder, table, false)
    }

    /// Direct paths of `role` (a role, PUBLIC or a mandatory role, once active) on `table`.
    pub fn direct_as_role(&self, role: &AccountName, table: &TableName) -> Vec<(Via, PrivSet)> {
        self.direct_with(role, table, true)
    }

    fn direct_with(&self, holder: &AccountName, table: &TableName, as_role: bool) -> Vec<(Via, PrivSet)> {
        let mut out = Vec::new();
        let global = self.global_on(holder, table);
        if !global.is_empty() {
            out.push((Via::Global, global));
        }
        let rows = if as_role { self.role_schema_rows(holder, &table.schema) } else { self.schema_rows(holder, &table.schema) };
        for g in rows {
            let set = table_relevant(&Self::with_option(g));
            if let (GrantObject::Schema { pattern }, false) = (&g.object, set.is_empty()) {
                out.push((Via::Schema { pattern: pattern.0.clone(), wildcard: pattern.is_wildcard() }, set));
            }
        }
        let key = self.key(&holder.user, &table.schema, &table.name, self.ci);
        let rows: Vec<&Grant> = self
            .table
            .get(key)
            .iter()
            .map(|(_, g)| *g)
            .filter(|g| {
                g.grantee.user == holder.user
                    && matches!(&g.object, GrantObject::Table { table: t } | GrantObject::Column { table: t, .. } if self.same_table(t, table))
            })
            .collect();
        let exact: Vec<&Grant> = rows.iter().copied().filter(|g| g.grantee == *holder).collect();
        let chosen = if !exact.is_empty() || holder.host.is_empty() {
            exact
        } else {
            rows.into_iter().filter(|g| Self::host_applies(&g.grantee, holder)).collect()
        };
        for g in chosen {
            match &g.object {
                GrantObject::Table { .. } => out.push((Via::Table, Self::with_option(g))),
                GrantObject::Column { column, .. } => out.push((Via::Column { column: column.clone() }, g.privileges.clone())),
                _ => {}
            }
        }
        out
    }

    /// Direct paths giving `holder` EXECUTE (or other routine privileges) on a routine, as a
    /// login (`as_role` false) or as an active role.
    pub fn direct_routine(&self, holder: &AccountName, schema: &str, name: &str) -> Vec<(Via, PrivSet)> {
        self.direct_routine_with(holder, schema, name, false)
    }

    pub fn direct_routine_as_role(&self, role: &AccountName, schema: &str, name: &str) -> Vec<(Via, PrivSet)> {
        self.direct_routine_with(role, schema, name, true)
    }

    fn direct_routine_with(&self, holder: &AccountName, schema: &str, name: &str, as_role: bool) -> Vec<(Via, PrivSet)> {
        let keep = |set: PrivSet| -> PrivSet {
            set.into_iter().filter(|p| matches!(p.as_str(), "EXECUTE" | "ALTER ROUTINE" | "GRANT OPTION")).collect()
        };
        let mut out = Vec::new();
        let global = keep(self.global.get(holder).into_iter().flatten().flat_map(|g| Self::with_option(g)).collect());
        if !global.is_empty() {
            out.push((Via::Global, global));
        }
        let rows = if as_role { self.role_schema_rows(holder, schema) } else { self.schema_rows(holder, schema) };
        for g in rows {
            if let GrantObject::Schema { pattern } = &g.object {
                let set = keep(Self::with_option(g));
                if !set.is_empty() {
                    out.push((Via::Schema { pattern: pattern.0.clone(), wildcard: pattern.is_wildcard() }, set));
                }
            }
        }
        let key = self.key(&holder.user, schema, name, true);
        let same = |g: &Grant| matches!(&g.object, GrantObject::Routine { schema: s, name: n, .. } if self.fold(s) == self.fold(schema) && crate::model::grant::same_routine_name(n, name));
        for g in self.routine.get(&key).into_iter().flatten().filter(|g| g.grantee == *holder && same(g)) {
            out.push((Via::Table, Self::with_option(g)));
        }
        out
    }

    /// Paths of an account through itself and its roles (not PUBLIC, mandatory roles or proxies).
    pub fn own_paths(&self, account: &AccountName, table: &TableName) -> Vec<(Via, PrivSet)> {
        if !self.may_reach(account, table) {
            return vec![];
        }
        if self.inv.server.flavour == crate::db::Flavour::MariaDb {
            // One role is active at a time; its schema rows and its sub-roles' are one list.
            let mut out = self.direct(account, table);
            out.extend(self.via_roles(account, |r| self.direct_as_role(r, table)).into_iter().filter(|(v, _)| !roles::schema_path(v)));
            for top in self.role_chains(account).into_iter().filter(|c| c.len() == 1).map(|c| c[0]) {
                let mut under: Vec<Vec<&AccountName>> = vec![vec![top]];
                under.extend(self.role_chains(top).into_iter().map(|c| std::iter::once(top).chain(c).collect()));
                out.extend(self.merged_role_schema(top, &under, &table.schema, self.active_at_login(account, top)));
            }
            return out;
        }
        if !self.uses_role_map(account) {
            let mut out = self.direct(account, table);
            out.extend(self.via_roles(account, |r| self.direct_as_role(r, table)));
            return out;
        }
        // MySQL with active roles: schema rows of the account and its active roles are one map.
        let mut out: Vec<(Via, PrivSet)> =
            self.direct(account, table).into_iter().filter(|(v, _)| !matches!(v, Via::Schema { .. })).collect();
        let chains = self.role_chains(account);
        for chain in &chains {
            let role = *chain.last().expect("chains are never empty");
            let active = self.active_at_login(account, chain[0]);
            for (via, set) in self.direct_as_role(role, table) {
                if active && matches!(via, Via::Schema { .. }) {
                    continue;
                }
                out.push((
                    Via::Role { chain: chain.iter().map(|r| (*r).clone()).collect(), active_at_login: active, grant: Box::new(via) },
                    set,
                ));
            }
        }
        for g in self.effective_schema_rows(account, &table.schema, &|_| false) {
            let (GrantObject::Schema { pattern }, set) = (&g.object, table_relevant(&Self::with_option(g))) else { continue };
            if set.is_empty() {
                continue;
            }
            let via = Via::Schema { pattern: pattern.0.clone(), wildcard: pattern.is_wildcard() };
            let role = |c: &[&AccountName], via: Via| Via::Role {
                chain: c.iter().map(|r| (*r).clone()).collect(),
                active_at_login: true,
                grant: Box::new(via),
            };
            let own = g.grantee.user == account.user && Self::host_applies(&g.grantee, account);
            match chains.iter().find(|c| **c.last().expect("non-empty") == g.grantee && self.active_at_login(account, c[0])) {
                Some(c) if !own => out.push((role(c, via), set)),
                _ if own => out.push((via, set)),
                _ => {
                    // A mandatory role's row, decided in this account's map.
                    let Some(c) = self.mandatory_chains().into_iter().find(|c| *c.last().expect("non-empty") == &g.grantee) else {
                        continue;
                    };
                    let grant = if c.len() > 1 { role(&c[1..], via) } else { via };
                    out.push((Via::Mandatory { role: c[0].clone(), active_at_login: true, grant: Box::new(grant) }, set));
                }
            }
        }
        out
    }

    /// Everything `account` can do on `table` (all paths, all roles active, PUBLIC and mandatory
    /// roles included): the security context of a definer object.
    pub fn all_privileges(&self, account: &AccountName, table: &TableName) -> PrivSet {
        let mut set = self.own_privileges(account, table);
        set.extend(self.everyone_privileges(table));
        set
    }

    /// The part of [`Self::all_privileges`] that comes through the account itself and its roles.
    pub fn own_privileges(&self, account: &AccountName, table: &TableName) -> PrivSet {
        self.own_paths(account, table).into_iter().flat_map(|(_, s)| s).collect()
    }

    /// The part of [`Self::all_privileges`] that every account gets (PUBLIC, mandatory roles):
    /// the same for all, so callers that ask for many accounts compute it once per table.
    pub fn everyone_privileges(&self, table: &TableName) -> PrivSet {
        let mut set = PrivSet::new();
        for (holder, _) in self.everyone() {
            set.extend(self.holder_paths(&holder, table).into_iter().flat_map(|(_, s)| s));
        }
        set
    }

    /// Schema-level privileges of `account` on `schema` through every path (global and schema
    /// grants, roles, PUBLIC, mandatory roles).
    pub fn all_schema_privileges(&self, account: &AccountName, schema: &str) -> PrivSet {
        let of = |h: &AccountName, as_role: bool| -> PrivSet {
            let mut set = self.global_all(h);
            let rows = if as_role { self.role_schema_rows(h, schema) } else { self.schema_rows(h, schema) };
            for g in rows {
                set.extend(Self::with_option(g));
            }
            set
        };
        let mut set = of(account, false);
        for chain in self.role_chains(account) {
            set.extend(of(chain.last().expect("non-empty"), true));
        }
        for (holder, _) in self.everyone() {
            set.extend(of(&holder, true));
            for chain in self.role_chains(&holder) {
                set.extend(of(chain.last().expect("non-empty"), true));
            }
        }
        set
    }

    /// Routine privileges of `account` through every path.
    pub fn all_routine_privileges(&self, account: &AccountName, schema: &str, name: &str) -> PrivSet {
        let mut set: PrivSet = self.direct_routine(account, schema, name).into_iter().flat_map(|(_, s)| s).collect();
        set.extend(self.via_roles(account, |r| self.direct_routine_as_role(r, schema, name)).into_iter().flat_map(|(_, s)| s));
        for (holder, _) in self.everyone() {
            set.extend(self.direct_routine_as_role(&holder, schema, name).into_iter().flat_map(|(_, s)| s));
            set.extend(self.via_roles(&holder, |r| self.direct_routine_as_role(r, schema, name)).into_iter().flat_map(|(_, s)| s));
        }
        set
    }
}
