//! What a session shows before a cut: who can still touch the service's tables (the
//! candidates), the views and routines that read them (for collateral alarms), and whether the
//! isolation is complete.

use crate::access::{self, Via};
use crate::model::{AccountName, Inventory, TableName};
use crate::policy::Service;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

/// An account that can still touch the service's tables, and how.
#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    pub account: AccountName,
    /// Number of service tables it reaches.
    pub tables: usize,
    /// Distinct paths, described.
    pub paths: Vec<String>,
    pub locked: bool,
}

/// The service's tables in this inventory.
pub fn service_tables(inv: &Inventory, svc: &Service) -> Vec<TableName> {
    let ci = inv.server.lower_case_table_names != 0;
    svc.matching(inv.objects.tables.iter().map(|t| &t.name), ci)
}

/// Accounts other than the owners and exempted ones that can touch `tables`.
pub fn remaining(inv: &Inventory, svc: &Service, tables: &[TableName], today: NaiveDate) -> Vec<Reach> {
    remaining_with(&access::index::Index::new(inv), svc, tables, today)
}

/// [`remaining`] on an access index already built.
pub fn remaining_with(ix: &access::index::Index, svc: &Service, tables: &[TableName], today: NaiveDate) -> Vec<Reach> {
    let entries = access::entries_with(ix, tables);
    let mut by: BTreeMap<&AccountName, (std::collections::BTreeSet<&TableName>, std::collections::BTreeSet<String>, bool)> =
        BTreeMap::new();
    for e in &entries {
        if svc.is_owner(&e.account) || svc.exemption(&e.account, today).is_some() {
            continue;
        }
        let slot = by.entry(&e.account).or_default();
        slot.0.insert(&e.table);
        slot.1.insert(e.via.describe());
        slot.2 |= e.locked;
    }
    by.into_iter()
        .map(|(a, (t, p, locked))| Reach { account: a.clone(), tables: t.len(), paths: p.into_iter().collect(), locked })
        .collect()
}

/// Views and routines that read or write the service's tables with a definer's rights: an
/// error naming one of them in another account's session is collateral damage of a cut.
pub fn dependents(inv: &Inventory, tables: &[TableName]) -> Vec<TableName> {
    dependents_with(&access::index::Index::new(inv), tables)
}

/// [`dependents`] on an access index already built.
pub fn dependents_with(ix: &access::index::Index, tables: &[TableName]) -> Vec<TableName> {
    let mut out: Vec<TableName> = Vec::new();
    for e in &access::definer_paths_with(ix, tables) {
        if let Via::Definer { object, .. } | Via::UnresolvedDefiner { object, .. } = &e.via {
            if let Some((s, n)) = split_object(object) {
                let t = TableName::new(s, n);
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

fn split_object(object: &str) -> Option<(String, String)> {
    // Objects are rendered `schema`.`name` (quoted) or schema.name.
    let unq = |s: &str| s.trim_matches('`').replace("``", "`");
    if let Some(i) = object.find("`.`") {
        return Some((unq(&object[..=i]), unq(&object[i + 2..])));
    }
    object.split_once('.').map(|(a, b)| (a.to_string(), b.to_string()))
}
