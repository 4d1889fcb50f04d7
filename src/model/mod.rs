//! Pure types of the domain: names, privileges, grants and the inventory. No I/O here.

pub mod flavour;
pub mod grant;
pub mod ident;
pub mod inventory;
pub mod pattern;
pub mod privilege;
pub mod setting;
pub mod sql;

pub use flavour::{Flavour, ServerInfo, Version};
pub use grant::{DefaultRole, Grant, GrantObject, PartialRevoke, ProxyGrant, RoleGrant, RoutineKind};
pub use ident::{AccountName, SchemaPattern, TableName};
pub use inventory::{Account, Inventory, Objects, Security};
pub use pattern::TablePattern;
pub use privilege::{PrivSet, Privilege};
