//! The fingerprint of what a plan was computed from: the involved grantees' normalised grants
//! and the table lists of the affected schemas. FNV-1a 64, stable across Rust versions.

use crate::inventory::showgrants::atoms;
use crate::model::sql::ByGrantee;
use crate::model::{AccountName, Inventory, TableName};
use std::collections::BTreeSet;

fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The canonical text the fingerprint hashes (useful to explain a mismatch).
pub fn material(inv: &Inventory, accounts: &[AccountName], roles: &BTreeSet<AccountName>, tables: &[TableName]) -> String {
    let mut lines: BTreeSet<String> = BTreeSet::new();
    let public = AccountName::new("PUBLIC", "");
    let who: BTreeSet<&AccountName> = accounts.iter().chain(roles).chain(std::iter::once(&public)).chain(&inv.mandatory_roles).collect();
    // One pass over the grants for all of them (not one index of every grant per account).
    let by = ByGrantee::only(inv, |a| who.contains(a));
    for a in who.iter().copied() {
        for sql in by.sql(a) {
            for atom in atoms(&sql, inv.server.flavour, &inv.levels, a).unwrap_or_default() {
                lines.insert(format!("{} {atom}", a.sql()));
            }
        }
    }
    let schemas: BTreeSet<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    for t in inv.objects.tables.iter().filter(|t| schemas.contains(t.name.schema.as_str())) {
        lines.insert(format!("TABLE {}", t.name.sql()));
    }
    for s in &inv.objects.schemas {
        lines.insert(format!("SCHEMA {s}"));
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// The 64-bit FNV-1a hash of some bytes (stable across versions and machines).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv(bytes, 0xcbf29ce484222325)
}

/// `fnv1a64:<hex>` of [`material`].
pub fn of(inv: &Inventory, accounts: &[AccountName], roles: &BTreeSet<AccountName>, tables: &[TableName]) -> String {
    format!("fnv1a64:{:016x}", fnv1a64(material(inv, accounts, roles, tables).as_bytes()))
}
