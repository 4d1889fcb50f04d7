//! Who is active at login, and the paths through roles: role chains, default and mandatory
//! roles, MariaDB's `PUBLIC` (and the anonymous rows it takes), MySQL's role-session map.
//! A second `impl` block of [`Index`], kept apart from the row matching in `index.rs`.

use super::Index;
use crate::access::via::Via;
use crate::model::privilege::{table_relevant, PrivSet};
use crate::model::{AccountName, Grant, GrantObject, TableName};
use std::collections::HashSet;

/// Is this path a schema row (directly or through roles)?
pub(super) fn schema_path(v: &Via) -> bool {
    match v {
        Via::Schema { .. } => true,
        Via::Role { grant, .. } => schema_path(grant),
        _ => false,
    }
}

impl<'a> Index<'a> {
    /// MySQL with a role active at login (a default role, all roles activated, or a mandatory
    /// role) checks schema privileges through one map of the account's and its active roles'
    /// rows (seen on 9.7, see [`Self::map_winner`]), without anonymous rows.
    pub fn uses_role_map(&self, account: &AccountName) -> bool {
        self.inv.server.flavour == crate::db::Flavour::MySql
            && !account.host.is_empty()
            && (self.role_chains(account).iter().any(|c| self.active_at_login(account, c[0])) || self.mandatory_active_any())
    }

    /// MySQL: are the mandatory roles active at login (`activate_mandatory_roles`, or
    /// `activate_all_roles_on_login`)? Checked on 9.7 for both switches.
    pub fn mandatory_active(&self) -> bool {
        self.inv.activate_mandatory_roles || self.inv.activate_all_roles_on_login
    }

    /// MySQL, mandatory roles active at login: each existing mandatory role and the roles
    /// granted to it, with the chain from the mandatory role. Their schema rows join every
    /// account's role-session map (seen on 9.7: an account's own `db_` row beat a mandatory
    /// role's `dbb%` row on `dbb`), so they are decided per account, not for everyone.
    pub fn mandatory_chains(&self) -> Vec<Vec<&'a AccountName>> {
        if self.inv.server.flavour != crate::db::Flavour::MySql || !self.mandatory_active() {
            return vec![];
        }
        let mut out = Vec::new();
        for m in self.inv.mandatory_roles.iter().filter(|m| self.inv.account(m).is_some()) {
            out.push(vec![m]);
            for c in self.role_chains(m) {
                out.push(std::iter::once(m).chain(c).collect());
            }
        }
        out
    }

    /// Is at least one existing mandatory role active at login? (The server ignores names in
    /// `mandatory_roles` that are not accounts.)
    fn mandatory_active_any(&self) -> bool {
        self.mandatory_active() && self.inv.mandatory_roles.iter().any(|r| self.inv.account(r).is_some())
    }

    /// Roles active at login, with the chain that reaches each.
    pub fn active_chains(&self, account: &AccountName) -> Vec<Vec<&'a AccountName>> {
        self.role_chains(account).into_iter().filter(|c| self.active_at_login(account, c[0])).collect()
    }

    /// Roles reachable from `account`, with the chain that reaches each (breadth first).
    pub fn role_chains(&self, account: &AccountName) -> Vec<Vec<&'a AccountName>> {
        let mut out: Vec<Vec<&AccountName>> = Vec::new();
        let mut seen: HashSet<&AccountName> = HashSet::new();
        let mut queue: Vec<Vec<&AccountName>> = self.roles_of.get(account).into_iter().flatten().map(|r| vec![&r.role]).collect();
        // MySQL: a mandatory role is granted to everyone; made a default role (`SET DEFAULT
        // ROLE ALL` includes it), it is active at login like a granted one (seen on 9.7).
        if self.inv.server.flavour == crate::db::Flavour::MySql {
            for m in self.inv.mandatory_roles.iter().filter(|m| self.defaults.contains(&(account, *m))) {
                if self.inv.account(m).is_some() && !queue.iter().any(|c| c[0] == m) {
                    queue.push(vec![m]);
                }
            }
        }
        while let Some(chain) = (!queue.is_empty()).then(|| queue.remove(0)) {
            let last = *chain.last().expect("chains are never empty");
            if !seen.insert(last) {
                continue;
            }
            for r in self.roles_of.get(last).into_iter().flatten() {
                let mut next = chain.clone();
                next.push(&r.role);
                queue.push(next);
            }
            out.push(chain);
        }
        out
    }

    /// Is this role active when `account` logs in? MariaDB: a role granted to `PUBLIC` is
    /// active for everyone at login (seen on 10.11: no `SET ROLE`, no default role needed).
    pub fn active_at_login(&self, account: &AccountName, role: &AccountName) -> bool {
        self.inv.activate_all_roles_on_login
            || self.defaults.contains(&(account, role))
            || (self.inv.server.flavour == crate::db::Flavour::MariaDb && account.user == "PUBLIC" && account.host.is_empty())
    }

    /// Wraps a holder's paths in the role chains of `account`.
    pub fn via_roles<F>(&self, account: &AccountName, mut f: F) -> Vec<(Via, PrivSet)>
    where
        F: FnMut(&AccountName) -> Vec<(Via, PrivSet)>,
    {
        let mut out = Vec::new();
        for chain in self.role_chains(account) {
            let role = chain.last().expect("chains are never empty");
            for (via, set) in f(role) {
                out.push((
                    Via::Role {
                        chain: chain.iter().map(|r| (*r).clone()).collect(),
                        active_at_login: self.active_at_login(account, chain[0]),
                        grant: Box::new(via),
                    },
                    set,
                ));
            }
        }
        out
    }

    /// Holders whose privileges every account has: MariaDB `PUBLIC`, MySQL mandatory roles.
    pub fn everyone(&self) -> Vec<(AccountName, bool)> {
        self.everyone.clone()
    }

    /// The holders of [`Self::everyone`] whose privileges apply at login (PUBLIC always; the
    /// mandatory roles when [`Self::mandatory_active`]).
    pub fn everyone_at_login(&self) -> Vec<AccountName> {
        self.everyone.iter().filter(|(_, public)| *public || self.mandatory_active()).map(|(a, _)| a.clone()).collect()
    }

    /// Paths of a holder every account inherits (PUBLIC, a mandatory role): its own rows and
    /// its roles', all as roles (no anonymous rows). The roles granted to PUBLIC are active at
    /// login (see [`Self::active_at_login`]).
    /// The roles granted to the holder are active whenever it is (MySQL activates a mandatory
    /// role's own roles with it, seen on 9.7); the wrapper says whether the holder is.
    pub fn holder_paths(&self, holder: &AccountName, table: &TableName) -> Vec<(Via, PrivSet)> {
        let mut out = self.holder_paths_all(holder, table);
        if !self.mandatory_chains().is_empty() && !self.public_takes_anonymous_rows(holder) {
            // Active MySQL mandatory roles' schema rows are decided in each account's map.
            out.retain(|(v, _)| !schema_path(v));
        }
        out
    }

    fn holder_paths_all(&self, holder: &AccountName, table: &TableName) -> Vec<(Via, PrivSet)> {
        let mariadb = self.inv.server.flavour == crate::db::Flavour::MariaDb;
        let mut out = self.direct_as_role(holder, table);
        let mut own_schema_row = !self.role_schema_rows(holder, &table.schema).is_empty();
        for chain in self.role_chains(holder) {
            let role = chain.last().expect("chains are never empty");
            own_schema_row |= !self.role_schema_rows(role, &table.schema).is_empty();
            for (via, set) in self.direct_as_role(role, table) {
                if mariadb && matches!(via, Via::Schema { .. }) {
                    continue; // decided over the merged rows below
                }
                let chain = chain.iter().map(|r| (*r).clone()).collect();
                out.push((Via::Role { chain, active_at_login: true, grant: Box::new(via) }, set));
            }
        }
        if mariadb {
            // The holder's own first row competes with its roles' rows too.
            out.retain(|(v, _)| !matches!(v, Via::Schema { .. }));
            let mut chains = vec![vec![]];
            chains.extend(self.role_chains(holder));
            out.extend(self.merged_role_schema(holder, &chains, &table.schema, true));
        }
        if !own_schema_row && self.public_takes_anonymous_rows(holder) {
            out.extend(self.anonymous_for_public(&table.schema));
        }
        out
    }

    /// MariaDB propagates a role's grants into every role that holds it: the schema rows of a
    /// role and of the roles under it become one list (rows with the same pattern merge), and
    /// only the first matching row of that list applies. Seen on 10.11.19: `r1` holding `r0`,
    /// `r0` with DELETE on `db`, `r1` with SELECT on `d%`: SELECT on `db` is denied (found by
    /// the differential test). `chains` start at `top` (an empty chain is `top` itself).
    pub(crate) fn merged_role_schema(
        &self,
        top: &AccountName,
        chains: &[Vec<&'a AccountName>],
        schema: &str,
        active: bool,
    ) -> Vec<(Via, PrivSet)> {
        let holder_of = |c: &Vec<&'a AccountName>| -> AccountName { c.last().map(|r| (*r).clone()).unwrap_or_else(|| top.clone()) };
        let mut rows: Vec<&Grant> = Vec::new();
        for c in chains {
            rows.extend(self.schema_candidates(&holder_of(c), schema, false));
        }
        let mut out = Vec::new();
        for g in Self::first_rows(rows) {
            let (GrantObject::Schema { pattern }, set) = (&g.object, table_relevant(&Self::with_option(g))) else { continue };
            if set.is_empty() {
                continue;
            }
            let via = Via::Schema { pattern: pattern.0.clone(), wildcard: pattern.is_wildcard() };
            let Some(c) = chains.iter().find(|c| holder_of(c) == g.grantee) else { continue };
            let via = if c.is_empty() {
                via
            } else {
                Via::Role { chain: c.iter().map(|r| (*r).clone()).collect(), active_at_login: active, grant: Box::new(via) }
            };
            out.push((via, set));
        }
        out
    }

    /// MariaDB looks PUBLIC's schema privileges up like a login's: where PUBLIC (with its
    /// roles) has no matching schema row, the first matching anonymous-user row (host `%`)
    /// applies to everyone through PUBLIC, on top of each login's own first row. Where PUBLIC
    /// has one, the anonymous row does not reach through PUBLIC. Observed on 10.11.19: an
    /// anonymous `xb` row with an account's own `xb` row: both apply; add a PUBLIC row (or a
    /// role granted to PUBLIC) matching `xb`: the anonymous row no longer applies; an own `x%`
    /// row with an anonymous `xb` row: only the anonymous one applies (found by the
    /// differential test, `tests/differential.rs`).
    fn public_takes_anonymous_rows(&self, holder: &AccountName) -> bool {
        self.inv.server.flavour == crate::db::Flavour::MariaDb && holder.user == "PUBLIC" && holder.host.is_empty()
    }

    fn anonymous_for_public(&self, schema: &str) -> Vec<(Via, PrivSet)> {
        let literal = self.inv.server.partial_revokes;
        let rows: Vec<&Grant> = self
            .schema_by_user
            .get("")
            .into_iter()
            .flatten()
            .copied()
            .filter(|g| matches!(g.grantee.host.as_str(), "%" | ""))
            .filter(|g| matches!(&g.object, GrantObject::Schema { pattern } if pattern.matches(schema, self.ci, literal)))
            .collect();
        let mut out = Vec::new();
        for g in Self::first_rows(rows) {
            let (GrantObject::Schema { pattern }, set) = (&g.object, table_relevant(&Self::with_option(g))) else { continue };
            if !set.is_empty() {
                out.push((Via::Schema { pattern: pattern.0.clone(), wildcard: pattern.is_wildcard() }, set));
            }
        }
        out
    }
}
