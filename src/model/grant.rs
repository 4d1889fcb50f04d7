//! Grants, role edges, proxy grants and partial revokes: what the grant tables say, typed.

use super::ident::{quote_ident, AccountName, SchemaPattern, TableName};
use super::privilege::PrivSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Stored routine kinds that carry grants. Routine names compare case-insensitively on both
/// flavours (`SHOW GRANTS` prints them lowercased while `mysql.procs_priv` keeps the case
/// they were granted with): see [`same_routine_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutineKind {
    Procedure,
    Function,
    /// MariaDB Oracle-mode packages.
    Package,
    #[serde(rename = "package body")]
    PackageBody,
    /// MySQL 9 JavaScript libraries (`CREATE LIBRARY`; `GRANT EXECUTE ON LIBRARY db.lib`).
    Library,
}

/// Are two routine names the same routine? (Case-insensitive on both flavours.)
pub fn same_routine_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl RoutineKind {
    pub fn parse(s: &str) -> Option<RoutineKind> {
        match s.to_ascii_uppercase().as_str() {
            "PROCEDURE" => Some(RoutineKind::Procedure),
            "FUNCTION" => Some(RoutineKind::Function),
            "PACKAGE" => Some(RoutineKind::Package),
            "PACKAGE BODY" => Some(RoutineKind::PackageBody),
            "LIBRARY" => Some(RoutineKind::Library),
            _ => None,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "PROCEDURE",
            RoutineKind::Function => "FUNCTION",
            RoutineKind::Package => "PACKAGE",
            RoutineKind::PackageBody => "PACKAGE BODY",
            RoutineKind::Library => "LIBRARY",
        }
    }
}

/// What a grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum GrantObject {
    /// `ON *.*`
    Global,
    /// `ON pattern.*`: a schema name pattern, as stored in `mysql.db`.
    Schema { pattern: SchemaPattern },
    /// `ON db.tbl`
    Table { table: TableName },
    /// `GRANT priv (col) ON db.tbl`
    Column { table: TableName, column: String },
    /// `ON PROCEDURE db.name`
    Routine { kind: RoutineKind, schema: String, name: String },
}

impl GrantObject {
    /// The `ON ...` clause target, e.g. `` `shop`.* `` or `` PROCEDURE `shop`.`p` ``.
    pub fn sql_target(&self) -> String {
        match self {
            GrantObject::Global => "*.*".into(),
            GrantObject::Schema { pattern } => format!("{}.*", pattern.sql()),
            GrantObject::Table { table } | GrantObject::Column { table, .. } => table.sql(),
            GrantObject::Routine { kind, schema, name } => {
                format!("{} {}.{}", kind.sql(), quote_ident(schema), quote_ident(name))
            }
        }
    }
}

impl fmt::Display for GrantObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantObject::Column { table, column } => write!(f, "{}.{}", table.sql(), quote_ident(column)),
            other => f.write_str(&other.sql_target()),
        }
    }
}

/// One row of a grant table: privileges of one grantee on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: AccountName,
    pub object: GrantObject,
    /// Privileges granted, never containing `GRANT OPTION` (see `grant_option`).
    pub privileges: PrivSet,
    /// `WITH GRANT OPTION`. Kept apart because MySQL stores it per dynamic privilege, and a
    /// table-level grant option also covers that table's column privileges.
    pub grant_option: bool,
}

/// A role granted to an account or to another role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role: AccountName,
    pub grantee: AccountName,
    /// `WITH ADMIN OPTION`: the grantee may grant the role on.
    pub admin: bool,
}

/// A default role: active at login without `SET ROLE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefaultRole {
    pub account: AccountName,
    pub role: AccountName,
}

/// `GRANT PROXY ON proxied TO grantee`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProxyGrant {
    pub grantee: AccountName,
    /// An empty user name means any user.
    pub proxied: AccountName,
    pub with_grant: bool,
}

/// A MySQL partial revoke: global privileges withdrawn on one schema (`partial_revokes=ON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialRevoke {
    pub account: AccountName,
    /// A literal schema name (partial revokes never use wildcards).
    pub schema: String,
    pub privileges: PrivSet,
}
