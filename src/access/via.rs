//! The path by which an account reaches a table: the `via` of an access entry.

use crate::model::{AccountName, PrivSet, TableName};
use serde::{Deserialize, Serialize};

fn active() -> bool {
    true
}

/// How an account gets its privileges on a table. Serialised with a `kind` tag (see
/// docs/formats.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Via {
    /// `GRANT ... ON *.*`.
    Global,
    /// `GRANT ... ON pattern.*`; `wildcard` when the pattern matched by `_` or `%`.
    Schema { pattern: String, wildcard: bool },
    /// `GRANT ... ON db.tbl`.
    Table,
    /// `GRANT priv (col) ON db.tbl`.
    Column { column: String },
    /// Through roles: `chain[0]` is granted to the account, each next role to the previous one.
    /// `active_at_login` when the first role is a default role (or all roles are activated at
    /// login); otherwise the account must run `SET ROLE` first, which it may do at any time.
    Role { chain: Vec<AccountName>, active_at_login: bool, grant: Box<Via> },
    /// MariaDB's `PUBLIC` role: applies to every account.
    Public { grant: Box<Via> },
    /// A MySQL `mandatory_roles` role: granted to every account. `active_at_login` unless
    /// MySQL 9's `activate_mandatory_roles` is OFF (and `activate_all_roles_on_login` too):
    /// then the account must `SET ROLE` it first.
    Mandatory {
        role: AccountName,
        #[serde(default = "active")]
        active_at_login: bool,
        grant: Box<Via>,
    },
    /// `GRANT PROXY ON proxied TO account`: logging in through a proxy-capable plugin, the
    /// account acts as `proxied`.
    Proxy { proxied: AccountName, grant: Box<Via> },
    /// A `SQL SECURITY DEFINER` object (view, routine, trigger, event) that reads or writes the
    /// table with its definer's privileges. `chain` lists nested objects from the outermost one;
    /// `entry` is how the account may use the outermost object (privilege and path).
    Definer {
        object_kind: String,
        object: String,
        definer: Option<AccountName>,
        chain: Vec<String>,
        entry: Box<Via>,
        entry_privileges: PrivSet,
    },
    /// A definer object whose body privfence could not resolve (dynamic SQL, parse failure):
    /// it may touch the table with whatever its definer can do there.
    UnresolvedDefiner { object_kind: String, object: String, definer: Option<AccountName>, reason: String },
    /// The event scheduler runs an event as its definer.
    Scheduler,
    /// A foreign key whose cascading rule writes this table when the parent is written.
    ForeignKey { constraint: String, parent: TableName, rule: String, parent_via: Box<Via> },
}

impl Via {
    /// One-line human description.
    pub fn describe(&self) -> String {
        match self {
            Via::Global => "global grant on *.*".into(),
            Via::Schema { pattern, wildcard: true } => format!("schema grant on `{pattern}`.* (wildcard)"),
            Via::Schema { pattern, .. } => format!("schema grant on `{pattern}`.*"),
            Via::Table => "table grant".into(),
            Via::Column { column } => format!("column grant on {}", crate::model::ident::quote_ident(column)),
            Via::Role { chain, active_at_login, grant } => {
                let names: Vec<String> = chain.iter().map(|r| r.sql()).collect();
                let when = if *active_at_login { "default" } else { "after SET ROLE" };
                format!("role {} ({when}): {}", names.join(" -> "), grant.describe())
            }
            Via::Public { grant } => format!("PUBLIC: {}", grant.describe()),
            Via::Mandatory { role, active_at_login, grant } => {
                let when = if *active_at_login { "" } else { " (after SET ROLE)" };
                format!("mandatory role {}{when}: {}", role.sql(), grant.describe())
            }
            Via::Proxy { proxied, grant } => format!("proxy as {}: {}", proxied.sql(), grant.describe()),
            Via::Definer { object_kind, object, definer, chain, entry, entry_privileges } => {
                let d = definer.as_ref().map(|d| d.sql()).unwrap_or_else(|| "?".into());
                let via = if chain.len() > 1 { format!(" via {}", chain[1..].join(" -> ")) } else { String::new() };
                let privs: Vec<&str> = entry_privileges.iter().map(|p| p.as_str()).collect();
                format!("definer {object_kind} {object} (DEFINER={d}){via}; uses it by {} ({})", privs.join(", "), entry.describe())
            }
            Via::UnresolvedDefiner { object_kind, object, definer, reason } => {
                let d = definer.as_ref().map(|d| d.sql()).unwrap_or_else(|| "?".into());
                format!("UNRESOLVED definer {object_kind} {object} (DEFINER={d}): {reason}")
            }
            Via::Scheduler => "run by the event scheduler".into(),
            Via::ForeignKey { constraint, parent, rule, parent_via } => {
                format!("foreign key {constraint} {rule} from {} ({})", parent.sql(), parent_via.describe())
            }
        }
    }
}
