//! Canonical grants: the set of normalised grant atoms of some grantees (`'u'@'h' SELECT ON
//! main.orders`...), read from the grant tables. Two snapshots are equal exactly when the
//! grantees hold the same privileges. Atoms never carry a password hash.

use crate::db::Server;
use crate::error::{Error, Result};
use crate::model::{AccountName, Inventory};
use std::collections::BTreeSet;

/// The canonical grants of `who` in an inventory.
pub fn of(inv: &Inventory, who: &[AccountName]) -> Result<BTreeSet<String>> {
    let by = crate::model::sql::ByGrantee::new(inv);
    let mut out = BTreeSet::new();
    for a in who {
        for sql in by.sql(a) {
            let atoms = crate::inventory::showgrants::atoms(&sql, inv.server.flavour, &inv.levels, a)
                .map_err(|e| Error::Unexpected(format!("cannot normalise {}'s grants ({e})", a.sql())))?;
            out.extend(atoms.into_iter().map(|atom| format!("{} {atom}", a.sql())));
        }
    }
    Ok(out)
}

/// Reads the grant tables now and returns the canonical grants of `who`.
pub async fn read(server: &mut Server, who: &[AccountName]) -> Result<BTreeSet<String>> {
    let inv = crate::inventory::grants::read(server).await?;
    of(&inv, who)
}

/// `+atom` for what `now` has and `then` lacks, `-atom` for the reverse.
pub fn diff(then: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = now.difference(then).map(|a| format!("+ {a}")).collect();
    out.extend(then.difference(now).map(|a| format!("- {a}")));
    out
}
