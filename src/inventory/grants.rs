//! Reads the grant tables of either flavour into the typed model.
//!
//! Column lists are discovered from `information_schema.COLUMNS`, so a privilege column added
//! by a newer server is read (and named from its column) rather than silently ignored.
//! Credentials are never selected: "has a password" is computed on the server.

use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::privilege::{decode_mariadb_access, mariadb_global_bits, PrivSet, Privilege, PrivilegeLevels};
use crate::model::{Account, DefaultRole, Inventory, PartialRevoke, ProxyGrant, RoleGrant};
use crate::model::{AccountName, Grant, GrantObject, RoutineKind, SchemaPattern, TableName};
use mysql_async::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::db::server::text as s;

fn yes(v: &str) -> bool {
    matches!(v, "Y" | "y" | "1" | "true")
}

/// `*_priv` columns of a grant table, in table order.
async fn priv_columns(server: &mut Server, table: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = '{table}' \
         AND COLUMN_NAME LIKE '%\\_priv' ORDER BY ORDINAL_POSITION"
    );
    server.rows_as::<String>("listing grant table columns", &sql).await
}

fn select_list(cols: &[String]) -> String {
    cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
}

/// Splits privilege columns of one row into (privileges, grant option).
fn privs_from_columns(row: &Row, first: usize, cols: &[String], flavour: Flavour) -> (PrivSet, bool) {
    let mut set = PrivSet::new();
    let mut grant_option = false;
    for (k, col) in cols.iter().enumerate() {
        if !yes(&s(row, first + k)) {
            continue;
        }
        match Privilege::from_column(col, flavour) {
            Some(p) if p.is_grant_option() => grant_option = true,
            Some(p) => {
                set.insert(p);
            }
            None => {}
        }
    }
    (set, grant_option)
}

/// Splits a SET column value (`Select,Insert,Grant`) into (privileges, grant option).
fn privs_from_set(value: &str, flavour: Flavour) -> (PrivSet, bool) {
    let mut set = PrivSet::new();
    let mut grant_option = false;
    for v in value.split(',').filter(|v| !v.is_empty()) {
        let p = Privilege::from_set_value(v, flavour);
        if p.is_grant_option() {
            grant_option = true;
        } else {
            set.insert(p);
        }
    }
    (set, grant_option)
}

/// Reads all grant tables of the connected server into an inventory without objects.
pub async fn read(server: &mut Server) -> Result<Inventory> {
    read_split(server, None).await
}

/// [`read`], with `mysql.tables_priv` and `mysql.columns_priv` (most of a large server's rows)
/// read on `tables` while `server` reads the rest: the two halves run at once on the server.
/// The grants come out in the same order as from [`read`]. (Each SELECT reads its own
/// moment either way: the tables were never read in one snapshot.)
pub async fn read_split(server: &mut Server, tables: Option<&mut Server>) -> Result<Inventory> {
    let mut out = Inventory::empty(server.info.clone());
    let mut table_grants: Vec<Grant> = Vec::new();
    let split = tables.is_some();
    let first = async {
        match server.info.flavour {
            Flavour::MariaDb => read_mariadb_accounts(server, &mut out).await?,
            Flavour::MySql => read_mysql_accounts(server, &mut out).await?,
        }
        read_schema_grants(server, &mut out).await
    };
    let second = async {
        match tables {
            Some(t) => read_table_grants(t, &mut table_grants).await,
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(first, second);
    a?;
    b?;
    if !split {
        read_table_grants(server, &mut table_grants).await?;
    }
    out.grants.append(&mut table_grants);
    read_routine_and_proxy_grants(server, &mut out).await?;
    out.levels = read_levels(server).await?;
    out.accounts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn read_mariadb_accounts(server: &mut Server, out: &mut Inventory) -> Result<()> {
    let version = server.info.version;
    // The Priv JSON is read whole and taken apart here: JSON_VALUE on the server, eight times a
    // row, cost more than reading the table (measured at 10,000 accounts).
    let rows = server.rows("reading mysql.global_priv", "SELECT User, Host, Priv FROM mysql.global_priv").await?;
    for row in rows {
        let name = AccountName::new(s(&row, 0), s(&row, 1));
        let priv_json: serde_json::Value = serde_json::from_str(&s(&row, 2)).unwrap_or_else(|_| {
            out.warnings.push(format!("{name}: unreadable Priv JSON in mysql.global_priv; treated as no global privileges"));
            serde_json::Value::Null
        });
        let p = PrivJson(&priv_json);
        let access: u64 = match p.get("access") {
            None => 0,
            Some(v) => v.parse().unwrap_or_else(|_| {
                out.warnings.push(format!("{name}: unreadable privilege bitmask; treated as no global privileges"));
                0
            }),
        };
        let is_role = yes(&p.text("is_role"));
        let mut privileges = decode_mariadb_access(access, version);
        let grant_option = privileges.remove(&Privilege::known("GRANT OPTION"));
        if !privileges.is_empty() || grant_option {
            out.grants.push(Grant { grantee: name.clone(), object: GrantObject::Global, privileges, grant_option });
        }
        let default_role = p.text("default_role");
        if !default_role.is_empty() {
            out.default_roles.push(DefaultRole { account: name.clone(), role: AccountName::new(default_role, "") });
        }
        let auth_or = priv_json.get("auth_or");
        let plugin = p.get("plugin").or_else(|| auth_or.and_then(|a| PrivJson(&a[0]).get("plugin"))).unwrap_or_default();
        let has_password = !p.text("authentication_string").is_empty() || auth_or.is_some();
        out.accounts.push(Account { name, is_role, locked: yes(&p.text("account_locked")), plugin, has_password });
    }
    let rows = server.rows("reading mysql.roles_mapping", "SELECT User, Host, Role, Admin_option FROM mysql.roles_mapping").await?;
    for row in rows {
        out.role_grants.push(RoleGrant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            role: AccountName::new(s(&row, 2), ""),
            admin: yes(&s(&row, 3)),
        });
    }
    Ok(())
}

/// A `mysql.global_priv.Priv` document, read as `JSON_VALUE(Priv, '$.key')` would: a scalar's
/// text (a string unquoted, `true`, a number as written), nothing for an object, an array,
/// null or a missing key.
struct PrivJson<'a>(&'a serde_json::Value);

impl PrivJson<'_> {
    fn get(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default()
    }
}

async fn read_mysql_accounts(server: &mut Server, out: &mut Inventory) -> Result<()> {
    let flavour = server.info.flavour;
    let cols = priv_columns(server, "user").await?;
    let sql = format!(
        "SELECT User, Host, account_locked, plugin, IF(authentication_string <> '', 'Y', 'N'), password_expired, \
         IFNULL(JSON_EXTRACT(User_attributes, '$.Restrictions'), 'null'), {} FROM mysql.user",
        select_list(&cols)
    );
    let rows = server.rows("reading mysql.user", &sql).await?;
    let mut role_like = BTreeSet::new();
    for row in &rows {
        let name = AccountName::new(s(row, 0), s(row, 1));
        let (privileges, grant_option) = privs_from_columns(row, 7, &cols, flavour);
        if !privileges.is_empty() || grant_option {
            out.grants.push(Grant { grantee: name.clone(), object: GrantObject::Global, privileges, grant_option });
        }
        read_restrictions(&name, &s(row, 6), flavour, out);
        let locked = yes(&s(row, 2));
        // CREATE ROLE makes a locked account with an expired, empty credential.
        if locked && s(row, 4) == "N" && yes(&s(row, 5)) {
            role_like.insert(name.clone());
        }
        out.accounts.push(Account { name, is_role: false, locked, plugin: s(row, 3), has_password: s(row, 4) == "Y" });
    }
    let rows = server.rows("reading mysql.global_grants", "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants").await?;
    let mut dynamic: BTreeMap<(AccountName, bool), PrivSet> = BTreeMap::new();
    for row in rows {
        let key = (AccountName::new(s(&row, 0), s(&row, 1)), yes(&s(&row, 3)));
        dynamic.entry(key).or_default().insert(Privilege::new(&s(&row, 2), flavour));
    }
    for ((grantee, grant_option), privileges) in dynamic {
        out.grants.push(Grant { grantee, object: GrantObject::Global, privileges, grant_option });
    }
    let rows = server
        .rows("reading mysql.role_edges", "SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST, WITH_ADMIN_OPTION FROM mysql.role_edges")
        .await?;
    for row in rows {
        let role = AccountName::new(s(&row, 0), s(&row, 1));
        role_like.insert(role.clone());
        out.role_grants.push(RoleGrant { role, grantee: AccountName::new(s(&row, 2), s(&row, 3)), admin: yes(&s(&row, 4)) });
    }
    let rows = server
        .rows("reading mysql.default_roles", "SELECT USER, HOST, DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles")
        .await?;
    for row in rows {
        let role = AccountName::new(s(&row, 2), s(&row, 3));
        role_like.insert(role.clone());
        out.default_roles.push(DefaultRole { account: AccountName::new(s(&row, 0), s(&row, 1)), role });
    }
    let (mandatory, activate_all): (String, i64) = server
        .first("reading mandatory_roles", "SELECT @@GLOBAL.mandatory_roles, @@GLOBAL.activate_all_roles_on_login")
        .await?
        .unwrap_or_default();
    out.activate_all_roles_on_login = activate_all == 1;
    // MySQL 9 only; on older servers mandatory roles are active only as other granted roles are
    // (activate_all_roles_on_login, or a default role).
    out.activate_mandatory_roles = false;
    let switch: Option<(String, String)> =
        server.first("reading activate_mandatory_roles", "SHOW GLOBAL VARIABLES LIKE 'activate\\_mandatory\\_roles'").await?;
    if let Some((_, value)) = switch {
        out.activate_mandatory_roles = value.eq_ignore_ascii_case("ON") || value == "1";
    }
    for item in split_account_list(&mandatory) {
        match AccountName::parse(&item) {
            Ok(a) => {
                role_like.insert(a.clone());
                out.mandatory_roles.push(a);
            }
            Err(e) => out.warnings.push(format!("mandatory_roles entry {item:?} not understood: {e}")),
        }
    }
    for a in &mut out.accounts {
        a.is_role = role_like.contains(&a.name);
    }
    Ok(())
}

/// `User_attributes->Restrictions`: `[{"Database": "db", "Privileges": ["SELECT", ...]}]`.
fn read_restrictions(account: &AccountName, json: &str, flavour: Flavour, out: &mut Inventory) {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(json) else { return };
    for item in items {
        let schema = item.get("Database").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let privileges: PrivSet = item
            .get("Privileges")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|p| p.as_str()).map(|p| Privilege::new(p, flavour)).collect())
            .unwrap_or_default();
        out.partial_revokes.push(PartialRevoke { account: account.clone(), schema, privileges });
    }
}

/// Both MariaDB 10.11 and MySQL 9.7 store `mysql.procs_priv.Db` UTF-8-encoded twice (`ü` is
/// kept as the bytes of `Ã¼`), while `SHOW GRANTS` and privilege checks use the real name.
/// Undoes one level: when every character fits in a byte and those bytes are valid UTF-8 that
/// differs, that is the name.
pub fn undo_double_encoding(s: &str) -> String {
    if s.is_ascii() || s.chars().any(|c| (c as u32) > 0xFF) {
        return s.to_string();
    }
    let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
    match String::from_utf8(bytes) {
        Ok(fixed) => fixed,
        Err(_) => s.to_string(),
    }
}

/// Splits a comma-separated account list, respecting quotes.
pub fn split_account_list(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items.into_iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect()
}

async fn read_schema_grants(server: &mut Server, out: &mut Inventory) -> Result<()> {
    let flavour = server.info.flavour;
    let cols = priv_columns(server, "db").await?;
    let sql = format!("SELECT User, Host, Db, {} FROM mysql.db", select_list(&cols));
    for row in server.rows("reading mysql.db", &sql).await? {
        let (privileges, grant_option) = privs_from_columns(&row, 3, &cols, flavour);
        out.grants.push(Grant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            object: GrantObject::Schema { pattern: SchemaPattern(s(&row, 2)) },
            privileges,
            grant_option,
        });
    }
    Ok(())
}

async fn read_table_grants(server: &mut Server, out: &mut Vec<Grant>) -> Result<()> {
    let flavour = server.info.flavour;
    // A server has few distinct privilege SETs and many rows: parse each once.
    let mut parsed: HashMap<String, (PrivSet, bool)> = HashMap::new();
    let mut cached = |v: String| parsed.entry(v).or_insert_with_key(|v| privs_from_set(v, flavour)).clone();
    let sql = "SELECT User, Host, Db, Table_name, Table_priv FROM mysql.tables_priv";
    for row in server.rows("reading mysql.tables_priv", sql).await? {
        let (privileges, grant_option) = cached(s(&row, 4));
        if privileges.is_empty() && !grant_option {
            continue; // Only column privileges: they come from columns_priv.
        }
        out.push(Grant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            object: GrantObject::Table { table: TableName::new(s(&row, 2), s(&row, 3)) },
            privileges,
            grant_option,
        });
    }
    let sql = "SELECT User, Host, Db, Table_name, Column_name, Column_priv FROM mysql.columns_priv";
    for row in server.rows("reading mysql.columns_priv", sql).await? {
        let (privileges, _) = cached(s(&row, 5));
        if privileges.is_empty() {
            continue;
        }
        out.push(Grant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            object: GrantObject::Column { table: TableName::new(s(&row, 2), s(&row, 3)), column: s(&row, 4) },
            privileges,
            grant_option: false,
        });
    }
    Ok(())
}

async fn read_routine_and_proxy_grants(server: &mut Server, out: &mut Inventory) -> Result<()> {
    let flavour = server.info.flavour;
    let sql = "SELECT User, Host, Db, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv";
    for row in server.rows("reading mysql.procs_priv", sql).await? {
        let (privileges, grant_option) = privs_from_set(&s(&row, 5), flavour);
        let Some(kind) = RoutineKind::parse(&s(&row, 4)) else {
            // Printed, never dropped: a grant privfence cannot model must not vanish.
            out.warnings.push(format!("unknown routine type {:?} in mysql.procs_priv", s(&row, 4)));
            continue;
        };
        out.grants.push(Grant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            object: GrantObject::Routine { kind, schema: undo_double_encoding(&s(&row, 2)), name: s(&row, 3) },
            privileges,
            grant_option,
        });
    }
    let sql = "SELECT User, Host, Proxied_user, Proxied_host, With_grant FROM mysql.proxies_priv";
    for row in server.rows("reading mysql.proxies_priv", sql).await? {
        out.proxies.push(ProxyGrant {
            grantee: AccountName::new(s(&row, 0), s(&row, 1)),
            proxied: AccountName::new(s(&row, 2), s(&row, 3)),
            with_grant: yes(&s(&row, 4)),
        });
    }
    Ok(())
}

/// Reads what `ALL` means at each level from the grant tables' definitions.
async fn read_levels(server: &mut Server) -> Result<PrivilegeLevels> {
    let flavour = server.info.flavour;
    let cols = |c: Vec<String>| -> PrivSet {
        c.iter().filter_map(|c| Privilege::from_column(c, flavour)).filter(|p| !p.is_grant_option()).collect()
    };
    let global = match flavour {
        Flavour::MariaDb => {
            mariadb_global_bits(server.info.version).map(|(_, n)| Privilege::known(n)).filter(|p| !p.is_grant_option()).collect()
        }
        Flavour::MySql => cols(priv_columns(server, "user").await?),
    };
    let schema = cols(priv_columns(server, "db").await?);
    let set_of = |values: String| -> PrivSet {
        let inner = values.trim_start_matches("set(").trim_end_matches(')');
        inner
            .split(',')
            .map(|v| v.trim_matches('\''))
            .filter(|v| !v.is_empty())
            .map(|v| Privilege::from_set_value(v, flavour))
            .filter(|p| !p.is_grant_option())
            .collect()
    };
    let sql = "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' \
               AND ((TABLE_NAME = 'tables_priv' AND COLUMN_NAME IN ('Table_priv', 'Column_priv')) OR (TABLE_NAME = 'procs_priv' AND COLUMN_NAME = 'Proc_priv'))";
    let mut levels = PrivilegeLevels { global, schema, ..Default::default() };
    for (table, column, ty) in server.rows_as::<(String, String, String)>("reading grant table definitions", sql).await? {
        match (table.as_str(), column.as_str()) {
            ("tables_priv", "Table_priv") => levels.table = set_of(ty),
            ("tables_priv", "Column_priv") => levels.column = set_of(ty),
            _ => levels.routine = set_of(ty),
        }
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_account_lists() {
        assert_eq!(split_account_list("`r1`@`%`, r2 ,'a,b'@'h'"), vec!["`r1`@`%`", "r2", "'a,b'@'h'"]);
        assert!(split_account_list("").is_empty());
    }

    #[test]
    fn double_encoding() {
        assert_eq!(undo_double_encoding("pf_Ã¼nÃ¯"), "pf_ünï");
        assert_eq!(undo_double_encoding("plain"), "plain");
        assert_eq!(undo_double_encoding("表"), "表");
        // Latin-1 text that is not UTF-8 underneath stays as it is.
        assert_eq!(undo_double_encoding("café"), "café");
    }

    #[test]
    fn set_values() {
        let (p, g) = privs_from_set("Select,Insert,Grant,Create View", Flavour::MySql);
        assert!(g);
        assert_eq!(p.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["CREATE VIEW", "INSERT", "SELECT"]);
    }
}
