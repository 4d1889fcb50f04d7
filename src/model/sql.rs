//! Renders model values as SQL statements: the `GRANT`/`REVOKE` text a DBA would type.
//!
//! Used to cross-check the model against `SHOW GRANTS` and, later, to build plan steps. All
//! names go through [`quote_ident`]/[`quote_str`]; schema patterns keep their escapes.

use super::grant::{Grant, GrantObject, PartialRevoke, ProxyGrant, RoleGrant};
use super::ident::{quote_ident, quote_str, AccountName};
use super::inventory::Inventory;
use super::privilege::PrivSet;
use crate::model::flavour::Flavour;
use std::collections::{BTreeMap, HashMap};

/// How a grantee is written: MariaDB roles and `PUBLIC` have no host part.
pub fn grantee_sql(a: &AccountName, flavour: Flavour) -> String {
    if flavour == Flavour::MariaDb && a.host.is_empty() {
        if a.user == "PUBLIC" {
            return "PUBLIC".into();
        }
        return quote_ident(&a.user);
    }
    format!("{}@{}", quote_ident(&a.user), quote_ident(&a.host))
}

fn priv_list(privileges: &PrivSet) -> String {
    if privileges.is_empty() {
        return "USAGE".into();
    }
    privileges.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

/// `GRANT ... ON ... TO ... [WITH GRANT OPTION]` for one non-column grant.
pub fn grant_sql(g: &Grant, flavour: Flavour) -> String {
    let mut s = format!("GRANT {} ON {} TO {}", priv_list(&g.privileges), g.object.sql_target(), grantee_sql(&g.grantee, flavour));
    if g.grant_option {
        s.push_str(" WITH GRANT OPTION");
    }
    s
}

/// `REVOKE ... ON ... FROM ...` for one non-column grant (grant option included when set).
pub fn revoke_sql(g: &Grant, flavour: Flavour) -> String {
    let mut list: Vec<&str> = g.privileges.iter().map(|p| p.as_str()).collect();
    if g.grant_option {
        list.push("GRANT OPTION");
    }
    format!("REVOKE {} ON {} FROM {}", list.join(", "), g.object.sql_target(), grantee_sql(&g.grantee, flavour))
}

/// One statement for all column grants of one grantee on one table.
pub fn column_grants_sql(columns: &[&Grant], flavour: Flavour) -> Option<String> {
    let first = columns.first()?;
    let GrantObject::Column { table, .. } = &first.object else { return None };
    let mut by_priv: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for g in columns {
        if let GrantObject::Column { column, .. } = &g.object {
            for p in &g.privileges {
                by_priv.entry(p.as_str()).or_default().push(quote_ident(column));
            }
        }
    }
    let items: Vec<String> = by_priv.into_iter().map(|(p, cols)| format!("{p} ({})", cols.join(", "))).collect();
    Some(format!("GRANT {} ON {} TO {}", items.join(", "), table.sql(), grantee_sql(&first.grantee, flavour)))
}

pub fn role_grant_sql(r: &RoleGrant, flavour: Flavour) -> String {
    let mut s = format!("GRANT {} TO {}", grantee_sql(&r.role, flavour), grantee_sql(&r.grantee, flavour));
    if r.admin {
        s.push_str(" WITH ADMIN OPTION");
    }
    s
}

pub fn proxy_sql(p: &ProxyGrant, flavour: Flavour) -> String {
    let proxied = format!("{}@{}", quote_str(&p.proxied.user), quote_str(&p.proxied.host));
    let mut s = format!("GRANT PROXY ON {proxied} TO {}", grantee_sql(&p.grantee, flavour));
    if p.with_grant {
        s.push_str(" WITH GRANT OPTION");
    }
    s
}

pub fn partial_revoke_sql(r: &PartialRevoke, flavour: Flavour) -> String {
    format!("REVOKE {} ON {}.* FROM {}", priv_list(&r.privileges), quote_ident(&r.schema), grantee_sql(&r.account, flavour))
}

/// An inventory's grants grouped by grantee, so rendering every account is linear (the
/// cross-check renders 10,000 accounts against 100,000 grants).
pub struct ByGrantee<'a> {
    grants: HashMap<&'a AccountName, Vec<&'a Grant>>,
    proxies: HashMap<&'a AccountName, Vec<&'a ProxyGrant>>,
    roles: HashMap<&'a AccountName, Vec<&'a RoleGrant>>,
    revokes: HashMap<&'a AccountName, Vec<&'a PartialRevoke>>,
    defaults: HashMap<&'a AccountName, Vec<&'a AccountName>>,
    flavour: Flavour,
}

impl<'a> ByGrantee<'a> {
    pub fn new(inv: &'a Inventory) -> ByGrantee<'a> {
        Self::only(inv, |_| true)
    }

    /// [`Self::new`] for the grantees `keep` selects: a few accounts' grants out of 100,000
    /// without indexing the rest.
    pub fn only(inv: &'a Inventory, keep: impl Fn(&AccountName) -> bool) -> ByGrantee<'a> {
        let mut b = ByGrantee {
            grants: HashMap::new(),
            proxies: HashMap::new(),
            roles: HashMap::new(),
            revokes: HashMap::new(),
            defaults: HashMap::new(),
            flavour: inv.server.flavour,
        };
        for g in inv.grants.iter().filter(|g| keep(&g.grantee)) {
            b.grants.entry(&g.grantee).or_default().push(g);
        }
        for p in inv.proxies.iter().filter(|p| keep(&p.grantee)) {
            b.proxies.entry(&p.grantee).or_default().push(p);
        }
        for r in inv.role_grants.iter().filter(|r| keep(&r.grantee)) {
            b.roles.entry(&r.grantee).or_default().push(r);
        }
        for r in inv.partial_revokes.iter().filter(|r| keep(&r.account)) {
            b.revokes.entry(&r.account).or_default().push(r);
        }
        for d in inv.default_roles.iter().filter(|d| keep(&d.account)) {
            b.defaults.entry(&d.account).or_default().push(&d.role);
        }
        b
    }

    /// Every statement that recreates `account`'s privileges, in the shape `SHOW GRANTS` uses
    /// for the flavour (MySQL: static and dynamic global privileges on separate lines;
    /// MariaDB: the default role as `SET DEFAULT ROLE`).
    pub fn sql(&self, account: &AccountName) -> Vec<String> {
        let flavour = self.flavour;
        let mut out = Vec::new();
        let mut columns: BTreeMap<&crate::model::TableName, Vec<&Grant>> = BTreeMap::new();
        for g in self.grants.get(account).into_iter().flatten() {
            match &g.object {
                GrantObject::Column { table, .. } => columns.entry(table).or_default().push(g),
                _ => out.push(grant_sql(g, flavour)),
            }
        }
        out.extend(columns.values().filter_map(|c| column_grants_sql(c, flavour)));
        out.extend(self.proxies.get(account).into_iter().flatten().map(|p| proxy_sql(p, flavour)));
        out.extend(self.roles.get(account).into_iter().flatten().map(|r| role_grant_sql(r, flavour)));
        out.extend(self.revokes.get(account).into_iter().flatten().map(|r| partial_revoke_sql(r, flavour)));
        if flavour == Flavour::MariaDb {
            for role in self.defaults.get(account).into_iter().flatten() {
                out.push(format!("SET DEFAULT ROLE {} FOR {}", grantee_sql(role, flavour), grantee_sql(account, flavour)));
            }
        }
        out
    }
}

/// Every statement that recreates `account`'s privileges (see [`ByGrantee::sql`]; build a
/// [`ByGrantee`] once when rendering many accounts).
pub fn account_grants_sql(inv: &Inventory, account: &AccountName) -> Vec<String> {
    ByGrantee::only(inv, |a| a == account).sql(account)
}
