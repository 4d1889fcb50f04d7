//! Pure types of the domain: names, privileges, grants and the inventory. No I/O here.

pub mod ident;

pub use ident::{AccountName, SchemaPattern, TableName};
