//! Tier 1 of `--verify`: every account's global, schema, table and column grants in one pass
//! over the server's `information_schema` privilege views, turned into the same atoms
//! [`super::showgrants::atoms`] makes of `SHOW GRANTS` lines.
//!
//! Why the views can stand in for `SHOW GRANTS` here (checked on MariaDB 10.11 and MySQL 9.7):
//! `USER_PRIVILEGES`, `SCHEMA_PRIVILEGES`, `TABLE_PRIVILEGES` and `COLUMN_PRIVILEGES` are filled
//! from the server's in-memory grant structures (`acl_users`, `acl_dbs`, the table-grant hash),
//! not from the grant tables: a grant-table row changed without `FLUSH PRIVILEGES` shows its
//! old value in the views, as in `SHOW GRANTS`. Both servers show every account's rows only
//! when the reader has `SELECT` on `mysql.*` (or globally); otherwise only its own. An account
//! the views do not list is never passed by them: it goes to `SHOW GRANTS` (so a reader that
//! sees only itself gets today's full check, just slower).
//!
//! What the views cannot show, so the accounts involved go to `SHOW GRANTS` (tier 2): routine
//! grants, proxy grants, role grants and default roles, MySQL partial revokes, MySQL dynamic
//! privileges (listed in MySQL's `USER_PRIVILEGES`, but routed anyway), and MariaDB roles'
//! global privileges (roles are not in MariaDB's `USER_PRIVILEGES`). Which accounts have them
//! is read from the grant tables themselves ([`needs_show_grants`]), never from the model, so a
//! model that lost such a row is still caught. The blind spot: one of these grants held only in
//! memory (its table row deleted without `FLUSH PRIVILEGES`) by an account that has none in the
//! tables; `--verify=full` sees it.
//!
//! `GRANTEE` is `'user'@'host'` with nothing escaped on both flavours (`'a'b'@'%'` for the user
//! `a'b`), so it is never parsed: every inventory account is rendered the same way and looked
//! up. Two accounts that render alike (possible only with an `@` in a host, which `CREATE USER`
//! refuses) are both sent to `SHOW GRANTS`.

use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::ident::quote_ident;
use crate::model::privilege::Privilege;
use crate::model::AccountName;
use std::collections::{BTreeSet, HashMap, HashSet};

/// How the privilege views write an account in `GRANTEE`: `'user'@'host'`, unescaped.
pub fn grantee(a: &AccountName) -> String {
    format!("'{}'@'{}'", a.user, a.host)
}

/// Every account's rendering, and the accounts that share one with another account.
pub fn index_grantees<'a>(
    accounts: impl IntoIterator<Item = &'a AccountName>,
) -> (HashMap<String, &'a AccountName>, HashSet<&'a AccountName>) {
    let mut by: HashMap<String, &'a AccountName> = HashMap::new();
    let mut ambiguous = HashSet::new();
    for a in accounts {
        if let Some(other) = by.insert(grantee(a), a) {
            if other != a {
                ambiguous.insert(other);
                ambiguous.insert(a);
            }
        }
    }
    (by, ambiguous)
}

/// What the privilege views say, as atoms per `GRANTEE` string.
#[derive(Debug)]
pub struct ViewGrants {
    /// Privilege names are read in the flavour's spelling (`REPLICATION CLIENT` is `BINLOG
    /// MONITOR` on MariaDB); MySQL's dynamic privileges carry their own grant option.
    flavour: Flavour,
    atoms: HashMap<String, BTreeSet<String>>,
    /// Grantees with at least one `USER_PRIVILEGES` row: every account the server holds in
    /// memory (on MariaDB, not roles). An account missing here is not passed by the views.
    listed: HashSet<String>,
}

fn yes(grantable: &str) -> bool {
    grantable.eq_ignore_ascii_case("YES")
}

/// A schema name as `atoms` writes it: MariaDB's `SHOW GRANTS` doubles a pattern's
/// backslashes and `atoms` halves them again, on the model's lines too; the views print the
/// name as stored, so it gets the same treatment here.
fn schema_object(schema: &str, flavour: Flavour) -> String {
    let schema = if flavour == Flavour::MariaDb { schema.replace("\\\\", "\\") } else { schema.to_string() };
    format!("{}.*", quote_ident(&schema))
}

impl ViewGrants {
    pub fn new(flavour: Flavour) -> ViewGrants {
        ViewGrants { flavour, atoms: HashMap::new(), listed: HashSet::new() }
    }

    fn set(&mut self, grantee: &str) -> &mut BTreeSet<String> {
        if !self.atoms.contains_key(grantee) {
            self.atoms.insert(grantee.to_string(), BTreeSet::new());
        }
        self.atoms.get_mut(grantee).expect("just inserted")
    }

    /// Adds `privilege` on `object` (or only the grant option, for `USAGE`), as `atoms` would
    /// for `GRANT privilege ON object TO ... [WITH GRANT OPTION]`.
    fn add(&mut self, grantee: &str, object: String, privilege: &str, grantable: bool) {
        let flavour = self.flavour;
        let set = self.set(grantee);
        if grantable {
            set.insert(format!("{object} GRANT OPTION"));
        }
        if privilege.eq_ignore_ascii_case("USAGE") {
            return;
        }
        set.insert(format!("{object} {}", Privilege::new(privilege, flavour)));
    }

    /// A `USER_PRIVILEGES` row. MySQL's dynamic privileges carry their own grant option
    /// (`*.* BACKUP_ADMIN WITH GRANT OPTION`), as `atoms` writes them.
    pub fn add_global(&mut self, grantee: &str, privilege: &str, grantable: &str) {
        self.listed.insert(grantee.to_string());
        let flavour = self.flavour;
        let p = Privilege::new(privilege, flavour);
        if flavour == Flavour::MySql && p.is_dynamic() {
            let suffix = if yes(grantable) { " WITH GRANT OPTION" } else { "" };
            self.set(grantee).insert(format!("*.* {p}{suffix}"));
            return;
        }
        self.add(grantee, "*.*".into(), privilege, yes(grantable));
    }

    /// A `SCHEMA_PRIVILEGES` row; `schema` is the pattern as stored (`bench\_s1%`).
    pub fn add_schema(&mut self, grantee: &str, schema: &str, privilege: &str, grantable: &str) {
        self.add(grantee, schema_object(schema, self.flavour), privilege, yes(grantable));
    }

    /// A `TABLE_PRIVILEGES` row.
    pub fn add_table(&mut self, grantee: &str, schema: &str, table: &str, privilege: &str, grantable: &str) {
        let object = format!("{}.{}", quote_ident(schema), quote_ident(table));
        self.add(grantee, object, privilege, yes(grantable));
    }

    /// A `COLUMN_PRIVILEGES` row: `IS_GRANTABLE` is the table's grant option, which `SHOW
    /// GRANTS` prints as `WITH GRANT OPTION` on the column line.
    pub fn add_column(&mut self, grantee: &str, schema: &str, table: &str, column: &str, privilege: &str, grantable: &str) {
        let object = format!("{}.{}", quote_ident(schema), quote_ident(table));
        let flavour = self.flavour;
        let set = self.set(grantee);
        if yes(grantable) {
            set.insert(format!("{object} GRANT OPTION"));
        }
        set.insert(format!("{object}.{} {}", quote_ident(column), Privilege::new(privilege, flavour)));
    }

    /// Is `a` listed in `USER_PRIVILEGES`?
    pub fn lists(&self, a: &AccountName) -> bool {
        self.listed.contains(&grantee(a))
    }

    /// The atoms the views show for `a` (empty when they show nothing).
    pub fn atoms_of(&self, a: &AccountName) -> BTreeSet<String> {
        self.atoms.get(&grantee(a)).cloned().unwrap_or_default()
    }
}

/// Reads the four privilege views in one pass each (every account at once).
pub async fn read(server: &mut Server) -> Result<ViewGrants> {
    let flavour = server.info.flavour;
    let mut v = ViewGrants::new(flavour);
    let sql = "SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES";
    for (g, p, y) in server.rows_as::<(String, String, String)>("reading information_schema.USER_PRIVILEGES", sql).await? {
        v.add_global(&g, &p, &y);
    }
    let sql = "SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES";
    for (g, s, p, y) in server.rows_as::<(String, String, String, String)>("reading information_schema.SCHEMA_PRIVILEGES", sql).await? {
        v.add_schema(&g, &s, &p, &y);
    }
    let sql = "SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES";
    type TableRow = (String, String, String, String, String);
    for (g, s, t, p, y) in server.rows_as::<TableRow>("reading information_schema.TABLE_PRIVILEGES", sql).await? {
        v.add_table(&g, &s, &t, &p, &y);
    }
    let sql =
        "SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.COLUMN_PRIVILEGES";
    type ColumnRow = (String, String, String, String, String, String);
    for (g, s, t, c, p, y) in server.rows_as::<ColumnRow>("reading information_schema.COLUMN_PRIVILEGES", sql).await? {
        v.add_column(&g, &s, &t, &c, &p, &y);
    }
    Ok(v)
}

/// The statements that find, in the grant tables, every account (or role) with a grant the
/// privilege views cannot show (see the module documentation). Each returns (user, host).
fn routing_queries(flavour: Flavour) -> &'static [&'static str] {
    match flavour {
        Flavour::MariaDb => &[
            "SELECT User, Host FROM mysql.roles_mapping",
            "SELECT Role, '' FROM mysql.roles_mapping",
            "SELECT User, Host FROM mysql.procs_priv",
            "SELECT User, Host FROM mysql.proxies_priv",
            "SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.is_role') = 'true' \
             OR IFNULL(JSON_VALUE(Priv, '$.default_role'), '') <> ''",
        ],
        Flavour::MySql => &[
            "SELECT FROM_USER, FROM_HOST FROM mysql.role_edges",
            "SELECT TO_USER, TO_HOST FROM mysql.role_edges",
            "SELECT USER, HOST FROM mysql.default_roles",
            "SELECT DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles",
            "SELECT User, Host FROM mysql.procs_priv",
            "SELECT User, Host FROM mysql.proxies_priv",
            "SELECT DISTINCT USER, HOST FROM mysql.global_grants",
            "SELECT User, Host FROM mysql.user WHERE JSON_EXTRACT(User_attributes, '$.Restrictions') IS NOT NULL",
        ],
    }
}

/// The accounts whose grants the views cannot show completely, read straight from the grant
/// tables (not from the model).
pub async fn needs_show_grants(server: &mut Server) -> Result<HashSet<AccountName>> {
    let mut out = HashSet::new();
    for sql in routing_queries(server.info.flavour) {
        for (user, host) in server.rows_as::<(String, String)>("finding accounts for SHOW GRANTS", sql).await? {
            out.insert(AccountName::new(user, host));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::showgrants::{atoms, AllPrivileges};
    use super::*;

    fn parsed(line: &str, flavour: Flavour, who: &AccountName) -> BTreeSet<String> {
        atoms(line, flavour, &AllPrivileges::default(), who).unwrap()
    }

    #[test]
    fn grantees_are_rendered_unescaped_and_collisions_found() {
        assert_eq!(grantee(&AccountName::new("a'b", "%")), "'a'b'@'%'");
        assert_eq!(grantee(&AccountName::new("r", "")), "'r'@''");
        assert_eq!(grantee(&AccountName::new("", "h")), "''@'h'");
        let (x, y, z) = (AccountName::new("a'@'b", "c"), AccountName::new("a", "b'@'c"), AccountName::new("q", "%"));
        let (by, ambiguous) = index_grantees([&x, &y, &z]);
        assert_eq!(by.get("'q'@'%'"), Some(&&z));
        assert_eq!(ambiguous, HashSet::from([&x, &y]));
    }

    /// Each view row kind gives exactly the atoms of the corresponding `SHOW GRANTS` line.
    #[test]
    fn rows_give_the_atoms_of_the_grant_lines() {
        let who = AccountName::new("o'k `x`", "10.%");
        let g = grantee(&who);
        for flavour in [Flavour::MariaDb, Flavour::MySql] {
            let mut v = ViewGrants::new(flavour);
            v.add_global(&g, "SELECT", "YES");
            v.add_global(&g, "RELOAD", "YES");
            v.add_schema(&g, "we`ird\\_%", "INSERT", "NO");
            v.add_schema(&g, "hv db", "USAGE", "YES");
            v.add_table(&g, "s", "t'x", "UPDATE", "NO");
            v.add_column(&g, "s", "c t", "c`ol", "SELECT", "YES");
            v.add_column(&g, "s", "c t", "ü", "INSERT", "YES");
            let schema = if flavour == Flavour::MariaDb { "`we``ird\\\\_%`" } else { "`we``ird\\_%`" };
            let lines = [
                "GRANT SELECT, RELOAD ON *.* TO `o'k ``x```@`10.%` WITH GRANT OPTION".to_string(),
                format!("GRANT INSERT ON {schema}.* TO `o'k ``x```@`10.%`"),
                "GRANT USAGE ON `hv db`.* TO `o'k ``x```@`10.%` WITH GRANT OPTION".to_string(),
                "GRANT UPDATE ON `s`.`t'x` TO `o'k ``x```@`10.%`".to_string(),
                "GRANT SELECT (`c``ol`), INSERT (`ü`) ON `s`.`c t` TO `o'k ``x```@`10.%` WITH GRANT OPTION".to_string(),
            ];
            let want: BTreeSet<String> = lines.iter().flat_map(|l| parsed(l, flavour, &who)).collect();
            assert_eq!(v.atoms_of(&who), want, "{flavour}");
            assert!(v.lists(&who));
            assert!(!v.lists(&AccountName::new("o'k `x`", "%")));
        }
    }

    #[test]
    fn usage_and_aliases() {
        let who = AccountName::new("u", "%");
        let g = grantee(&who);
        let mut v = ViewGrants::new(Flavour::MariaDb);
        v.add_global(&g, "USAGE", "NO");
        assert!(v.lists(&who) && v.atoms_of(&who).is_empty());
        // MariaDB: REPLICATION CLIENT is BINLOG MONITOR, as SHOW GRANTS prints it.
        v.add_global(&g, "REPLICATION CLIENT", "NO");
        v.add_table(&g, "s", "t", "DELETE HISTORY", "NO");
        let want: BTreeSet<String> = ["GRANT BINLOG MONITOR ON *.* TO `u`@`%`", "GRANT DELETE VERSIONING ROWS ON `s`.`t` TO `u`@`%`"]
            .iter()
            .flat_map(|l| parsed(l, Flavour::MariaDb, &who))
            .collect();
        assert_eq!(v.atoms_of(&who), want);
    }

    #[test]
    fn mysql_dynamic_privileges_carry_their_own_grant_option() {
        let who = AccountName::new("u", "%");
        let g = grantee(&who);
        let mut v = ViewGrants::new(Flavour::MySql);
        v.add_global(&g, "PROCESS", "NO");
        v.add_global(&g, "BACKUP_ADMIN", "YES");
        v.add_global(&g, "BINLOG_ADMIN", "NO");
        let want: BTreeSet<String> = [
            "GRANT PROCESS ON *.* TO `u`@`%`",
            "GRANT BACKUP_ADMIN ON *.* TO `u`@`%` WITH GRANT OPTION",
            "GRANT BINLOG_ADMIN ON *.* TO `u`@`%`",
        ]
        .iter()
        .flat_map(|l| parsed(l, Flavour::MySql, &who))
        .collect();
        assert_eq!(v.atoms_of(&who), want);
    }
}
