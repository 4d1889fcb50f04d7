//! Privilege names and the levels they can be granted at.
//!
//! A [`Privilege`] is the server's own uppercase name (`SELECT`, `CREATE TEMPORARY TABLES`,
//! `BINLOG MONITOR`, MySQL dynamic ones such as `BACKUP_ADMIN`). `GRANT OPTION` is a privilege
//! like the others here, which keeps set arithmetic simple; renderers move it to `WITH GRANT
//! OPTION`.

use crate::model::flavour::Flavour;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// One privilege, by its canonical (server-printed, uppercase) name. Known names are borrowed
/// statics (an inventory holds hundreds of thousands of them: no allocation each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Privilege(Cow<'static, str>);

/// Every static privilege name of both flavours (dynamic MySQL ones are allocated).
const KNOWN: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "RELOAD",
    "SHUTDOWN",
    "PROCESS",
    "FILE",
    "GRANT OPTION",
    "REFERENCES",
    "INDEX",
    "ALTER",
    "SHOW DATABASES",
    "SUPER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "REPLICATION SLAVE",
    "REPLICATION CLIENT",
    "BINLOG MONITOR",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "CREATE USER",
    "EVENT",
    "TRIGGER",
    "CREATE TABLESPACE",
    "DELETE HISTORY",
    "SET USER",
    "FEDERATED ADMIN",
    "CONNECTION ADMIN",
    "READ_ONLY ADMIN",
    "REPLICATION SLAVE ADMIN",
    "REPLICATION MASTER ADMIN",
    "BINLOG ADMIN",
    "BINLOG REPLAY",
    "SLAVE MONITOR",
    "SHOW CREATE ROUTINE",
    "CREATE ROLE",
    "DROP ROLE",
    "PROXY",
    "USAGE",
];

/// Synonyms, matched case-insensitively: (flavour or any, written, canonical).
const ALIASES: &[(Option<Flavour>, &str, &str)] = &[
    (Some(Flavour::MariaDb), "REPLICATION CLIENT", "BINLOG MONITOR"),
    (Some(Flavour::MariaDb), "REPLICA MONITOR", "SLAVE MONITOR"),
    (Some(Flavour::MariaDb), "REPLICATION REPLICA", "REPLICATION SLAVE"),
    (Some(Flavour::MariaDb), "REPLICATION REPLICA ADMIN", "REPLICATION SLAVE ADMIN"),
    (None, "GRANT", "GRANT OPTION"),
    (None, "DELETE VERSIONING ROWS", "DELETE HISTORY"),
];

/// A set of privileges, ordered for stable output.
pub type PrivSet = BTreeSet<Privilege>;

impl Privilege {
    /// Canonicalises a name: uppercase, single spaces, and the flavour's own spelling of
    /// synonyms (`REPLICATION CLIENT` is `BINLOG MONITOR` on MariaDB, `REPLICA MONITOR` is
    /// `SLAVE MONITOR`, and so on).
    pub fn new(name: &str, flavour: Flavour) -> Privilege {
        // Fast path: the servers print single-spaced names (`Select`, `Show view`).
        if let Some(p) = Self::lookup(name, flavour) {
            return p;
        }
        let upper = name.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
        Self::lookup(&upper, flavour).unwrap_or(Privilege(Cow::Owned(upper)))
    }

    fn lookup(name: &str, flavour: Flavour) -> Option<Privilege> {
        for (f, written, canonical) in ALIASES {
            if f.is_none_or(|f| f == flavour) && written.eq_ignore_ascii_case(name) {
                return Some(Privilege(Cow::Borrowed(canonical)));
            }
        }
        KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)).map(|k| Privilege(Cow::Borrowed(k)))
    }

    /// A privilege from a name already known to be canonical.
    pub fn known(name: &'static str) -> Privilege {
        Privilege(Cow::Borrowed(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_grant_option(&self) -> bool {
        self.0 == "GRANT OPTION"
    }

    /// MySQL dynamic privileges are single words with underscores (`BACKUP_ADMIN`).
    pub fn is_dynamic(&self) -> bool {
        self.0.contains('_')
    }

    /// Maps a grant-table column name (`Create_tmp_table_priv`) to its privilege.
    pub fn from_column(column: &str, flavour: Flavour) -> Option<Privilege> {
        let stem = column.strip_suffix("_priv")?;
        let name = match stem {
            "Grant" => "GRANT OPTION",
            "Show_db" => "SHOW DATABASES",
            "Create_tmp_table" => "CREATE TEMPORARY TABLES",
            "Repl_slave" => "REPLICATION SLAVE",
            "Repl_client" => "REPLICATION CLIENT",
            "Create_routine" => "CREATE ROUTINE",
            "Alter_routine" => "ALTER ROUTINE",
            "Delete_history" => "DELETE HISTORY",
            other => return Some(Privilege::new(&other.replace('_', " "), flavour)),
        };
        Some(Privilege::new(name, flavour))
    }

    /// Maps a value of the `Table_priv`, `Column_priv` or `Proc_priv` SET columns.
    pub fn from_set_value(value: &str, flavour: Flavour) -> Privilege {
        Privilege::new(value, flavour)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The privileges this server knows at each level (what `ALL PRIVILEGES` means there), read
/// from the grant tables' own column definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeLevels {
    pub global: PrivSet,
    pub schema: PrivSet,
    pub table: PrivSet,
    pub column: PrivSet,
    pub routine: PrivSet,
}

/// MariaDB's global privilege bitmask (`mysql.global_priv.Priv->access`), bit by bit, as in
/// `sql/privilege.h`. Bit 10 is `GRANT OPTION`.
pub const MARIADB_GLOBAL_BITS: &[(u32, &str)] = &[
    (0, "SELECT"),
    (1, "INSERT"),
    (2, "UPDATE"),
    (3, "DELETE"),
    (4, "CREATE"),
    (5, "DROP"),
    (6, "RELOAD"),
    (7, "SHUTDOWN"),
    (8, "PROCESS"),
    (9, "FILE"),
    (10, "GRANT OPTION"),
    (11, "REFERENCES"),
    (12, "INDEX"),
    (13, "ALTER"),
    (14, "SHOW DATABASES"),
    (15, "SUPER"),
    (16, "CREATE TEMPORARY TABLES"),
    (17, "LOCK TABLES"),
    (18, "EXECUTE"),
    (19, "REPLICATION SLAVE"),
    (20, "BINLOG MONITOR"),
    (21, "CREATE VIEW"),
    (22, "SHOW VIEW"),
    (23, "CREATE ROUTINE"),
    (24, "ALTER ROUTINE"),
    (25, "CREATE USER"),
    (26, "EVENT"),
    (27, "TRIGGER"),
    (28, "CREATE TABLESPACE"),
    (29, "DELETE HISTORY"),
    (30, "SET USER"),
    (31, "FEDERATED ADMIN"),
    (32, "CONNECTION ADMIN"),
    (33, "READ_ONLY ADMIN"),
    (34, "REPLICATION SLAVE ADMIN"),
    (35, "REPLICATION MASTER ADMIN"),
    (36, "BINLOG ADMIN"),
    (37, "BINLOG REPLAY"),
    (38, "SLAVE MONITOR"),
    (39, "SHOW CREATE ROUTINE"),
];

/// The global privileges a MariaDB server of this version knows (the bits `ALL` sets).
pub fn mariadb_global_bits(version: crate::model::flavour::Version) -> impl Iterator<Item = &'static (u32, &'static str)> {
    let top = if version >= crate::model::flavour::Version::new(11, 3, 0) { 39 } else { 38 };
    MARIADB_GLOBAL_BITS.iter().filter(move |(bit, _)| *bit <= top)
}

/// Decodes a MariaDB `access` bitmask.
pub fn decode_mariadb_access(access: u64, version: crate::model::flavour::Version) -> PrivSet {
    mariadb_global_bits(version).filter(|(bit, _)| access & (1u64 << bit) != 0).map(|(_, name)| Privilege::known(name)).collect()
}

/// Privileges that can be held on one table (and so "touch" it), whatever level grants them.
pub const TABLE_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "REFERENCES",
    "INDEX",
    "ALTER",
    "CREATE VIEW",
    "SHOW VIEW",
    "TRIGGER",
    "DELETE HISTORY",
    "GRANT OPTION",
];

/// Privileges grantable on a column.
pub const COLUMN_PRIVILEGES: &[&str] = &["SELECT", "INSERT", "UPDATE", "REFERENCES"];

/// Keeps the privileges of `set` that act on a table.
pub fn table_relevant(set: &PrivSet) -> PrivSet {
    set.iter().filter(|p| TABLE_PRIVILEGES.contains(&p.as_str())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flavour::Version;

    #[test]
    fn canonical_names() {
        assert_eq!(Privilege::new("replication  client", Flavour::MariaDb).as_str(), "BINLOG MONITOR");
        assert_eq!(Privilege::new("replication client", Flavour::MySql).as_str(), "REPLICATION CLIENT");
        assert_eq!(Privilege::new("Grant", Flavour::MySql).as_str(), "GRANT OPTION");
        assert_eq!(Privilege::new("Delete versioning rows", Flavour::MariaDb).as_str(), "DELETE HISTORY");
        assert_eq!(Privilege::from_column("Create_tmp_table_priv", Flavour::MySql).unwrap().as_str(), "CREATE TEMPORARY TABLES");
        assert_eq!(Privilege::from_column("Create_role_priv", Flavour::MySql).unwrap().as_str(), "CREATE ROLE");
        assert_eq!(Privilege::from_column("Repl_client_priv", Flavour::MariaDb).unwrap().as_str(), "BINLOG MONITOR");
        assert!(Privilege::from_column("Host", Flavour::MySql).is_none());
    }

    #[test]
    fn decodes_mariadb_bits() {
        // Seen on MariaDB 10.11: SELECT, BINLOG MONITOR, SET USER, CONNECTION ADMIN,
        // READ_ONLY ADMIN, SLAVE MONITOR.
        let set = decode_mariadb_access(288837599233, Version::new(10, 11, 6));
        let names: Vec<&str> = set.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["BINLOG MONITOR", "CONNECTION ADMIN", "READ_ONLY ADMIN", "SELECT", "SET USER", "SLAVE MONITOR"]);
        // `ALL PRIVILEGES` on 10.11 is bits 0..=38 without GRANT OPTION.
        let all = decode_mariadb_access(549755812863, Version::new(10, 11, 6));
        assert_eq!(all.len(), 38);
        assert!(!all.contains(&Privilege::known("GRANT OPTION")));
    }
}
