//! The inventory: every account, grant and object of one server, as plain data.
//!
//! Built by `crate::inventory` from the grant tables, consumed by access analysis, reports and
//! (later) planning. Its JSON form is a versioned contract (see `docs/formats.md`); it never
//! holds a password or a password hash.

use super::grant::{DefaultRole, Grant, PartialRevoke, ProxyGrant, RoleGrant, RoutineKind};
use super::ident::{AccountName, TableName};
use crate::model::flavour::ServerInfo;
use serde::{Deserialize, Serialize};

/// Version of the inventory JSON format. Bump on any incompatible change.
pub const INVENTORY_FORMAT: u32 = 1;

fn on() -> bool {
    true
}

/// A row of `mysql.user` / `mysql.global_priv`: an account or a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: AccountName,
    /// A role (MariaDB `is_role`; MySQL: an account used as a role, or created by CREATE ROLE).
    /// On MySQL this does not stop it logging in: see [`Inventory::login_accounts`].
    pub is_role: bool,
    /// `ACCOUNT LOCK`: no new logins (existing sessions and definer objects still work).
    pub locked: bool,
    /// Authentication plugin; empty for roles.
    pub plugin: String,
    /// Whether any credential is set. The credential itself is never read into privfence.
    pub has_password: bool,
}

/// How a stored object runs: with its definer's privileges or the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Definer,
    Invoker,
}

/// A base table or view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: TableName,
    pub is_view: bool,
}

/// A view with its definition (needed to see which tables a definer view exposes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: TableName,
    pub definer: Option<AccountName>,
    pub security: Security,
    pub definition: String,
}

/// A stored procedure or function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routine {
    pub kind: RoutineKind,
    pub schema: String,
    pub name: String,
    pub definer: Option<AccountName>,
    pub security: Security,
    pub body: String,
}

/// A trigger: runs with its definer's privileges whenever its table is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub schema: String,
    pub name: String,
    pub table: TableName,
    /// INSERT, UPDATE or DELETE.
    pub event: String,
    pub definer: Option<AccountName>,
    pub body: String,
}

/// A scheduled event: runs as its definer from the event scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub schema: String,
    pub name: String,
    pub definer: Option<AccountName>,
    pub enabled: bool,
    pub body: String,
}

/// A foreign key; cascading rules write the child when the parent is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub child: TableName,
    pub parent: TableName,
    /// `CASCADE`, `SET NULL`, `SET DEFAULT`, `RESTRICT` or `NO ACTION`.
    pub on_delete: String,
    pub on_update: String,
}

/// Schemas and the objects in them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objects {
    pub schemas: Vec<String>,
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    pub routines: Vec<Routine>,
    pub triggers: Vec<Trigger>,
    pub events: Vec<Event>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// Everything privfence knows about one server's privileges.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inventory {
    pub format: u32,
    pub server: ServerInfo,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub accounts: Vec<Account>,
    pub grants: Vec<Grant>,
    pub partial_revokes: Vec<PartialRevoke>,
    pub role_grants: Vec<RoleGrant>,
    pub default_roles: Vec<DefaultRole>,
    /// MySQL `mandatory_roles` (granted to every account); MariaDB has `PUBLIC` instead.
    pub mandatory_roles: Vec<AccountName>,
    /// MySQL `activate_all_roles_on_login`: every granted role is active at login.
    pub activate_all_roles_on_login: bool,
    /// MySQL 9 `activate_mandatory_roles`: the mandatory roles are active at login (the
    /// default). When OFF they are granted but inactive until `SET ROLE` (seen on 9.7:
    /// `CURRENT_ROLE()` is NONE and their privileges are denied). Inventories written before
    /// this field existed read as ON, the server's default.
    #[serde(default = "on")]
    pub activate_mandatory_roles: bool,
    pub proxies: Vec<ProxyGrant>,
    /// What each level's `ALL PRIVILEGES` means on this server (excluding `GRANT OPTION`).
    pub levels: super::privilege::PrivilegeLevels,
    pub objects: Objects,
    /// Things the reader noticed but could not model (unknown privilege columns, definers it
    /// could not parse). Printed, never dropped.
    pub warnings: Vec<String>,
}

impl Inventory {
    /// Frees the inventory on a thread of its own: 100,000 grants take a noticeable time to
    /// free, which the caller need not wait for (the process may even exit before it is done).
    pub fn drop_aside(self) {
        // No thread to spare: the closure, and the inventory with it, is freed right here.
        let _ = std::thread::Builder::new().name("free-inventory".into()).spawn(move || drop(self));
    }

    /// An inventory of `server` with nothing in it yet (readers fill it; tests build on it).
    pub fn empty(server: ServerInfo) -> Inventory {
        Inventory {
            format: INVENTORY_FORMAT,
            server,
            taken_at: chrono::Utc::now(),
            accounts: vec![],
            grants: vec![],
            partial_revokes: vec![],
            role_grants: vec![],
            default_roles: vec![],
            mandatory_roles: vec![],
            activate_all_roles_on_login: false,
            activate_mandatory_roles: true,
            proxies: vec![],
            levels: Default::default(),
            objects: Default::default(),
            warnings: vec![],
        }
    }

    pub fn account(&self, name: &AccountName) -> Option<&Account> {
        self.accounts.iter().find(|a| &a.name == name)
    }

    /// The part of the inventory about `who`, the roles granted to it (transitively), PUBLIC
    /// and the mandatory roles: enough to compute those accounts' privileges, and small.
    pub fn subset_for(&self, who: &AccountName) -> Inventory {
        let mut keep: std::collections::BTreeSet<&AccountName> = std::collections::BTreeSet::new();
        let public = AccountName::new("PUBLIC", "");
        keep.insert(who);
        keep.insert(&public);
        keep.extend(self.mandatory_roles.iter());
        loop {
            let before = keep.len();
            for r in &self.role_grants {
                if keep.contains(&r.grantee) {
                    keep.insert(&r.role);
                }
            }
            if keep.len() == before {
                break;
            }
        }
        Inventory {
            format: self.format,
            server: self.server.clone(),
            taken_at: self.taken_at,
            accounts: self.accounts.iter().filter(|a| keep.contains(&a.name)).cloned().collect(),
            grants: self.grants.iter().filter(|g| keep.contains(&g.grantee)).cloned().collect(),
            partial_revokes: self.partial_revokes.iter().filter(|r| keep.contains(&r.account)).cloned().collect(),
            role_grants: self.role_grants.iter().filter(|r| keep.contains(&r.grantee)).cloned().collect(),
            default_roles: self.default_roles.iter().filter(|d| keep.contains(&d.account)).cloned().collect(),
            mandatory_roles: self.mandatory_roles.clone(),
            activate_all_roles_on_login: self.activate_all_roles_on_login,
            activate_mandatory_roles: self.activate_mandatory_roles,
            proxies: self.proxies.iter().filter(|p| keep.contains(&p.grantee)).cloned().collect(),
            levels: self.levels.clone(),
            objects: Objects::default(),
            warnings: vec![],
        }
    }

    /// Accounts that can log in, in a stable order. MariaDB roles are a kind of their own and
    /// never log in; on MySQL roles and users are the same kind of object: an account granted
    /// to others as a role still logs in with its own privileges (seen on 9.7), so every
    /// account is listed (one made by `CREATE ROLE` is locked, and says so).
    pub fn login_accounts(&self) -> impl Iterator<Item = &Account> {
        let mysql = self.server.flavour == crate::model::flavour::Flavour::MySql;
        self.accounts.iter().filter(move |a| mysql || !a.is_role)
    }
}
