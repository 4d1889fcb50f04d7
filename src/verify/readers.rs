//! `readers`: which accounts can still read or write a service's tables on a server, and what the
//! evidence ([`crate::evidence`]) says about their use, so a team knows when every read path, then
//! every write path, has moved to the new store and the old copy can go.

use crate::access;
use crate::db::Server;
use crate::error::Result;
use crate::evidence::{self, Evidence, Usage};
use crate::model::{AccountName, Inventory, TableName};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One account that can touch the service's tables.
#[derive(Debug, Clone, Serialize)]
pub struct Reader {
    pub account: AccountName,
    /// It holds SELECT on at least one of the tables (directly, by role, or through a definer).
    pub can_read: bool,
    /// It holds INSERT, UPDATE or DELETE on at least one of them.
    pub can_write: bool,
    /// Used, not seen, or unknown ("no evidence" is never "unused").
    pub usage: Usage,
    pub last_activity: Option<String>,
    /// Every item with its source, span, blind spots and cited rows (never statement text).
    pub evidence: Vec<Evidence>,
}

/// The accounts that can touch `tables` on `server`, the ones seen using them first.
pub async fn readers(server: &mut Server, inv: &Inventory, tables: &[TableName], audit_log: Option<&Path>) -> Result<Vec<Reader>> {
    let report = access::analyse(inv, tables);
    let mut can: BTreeMap<AccountName, (bool, bool)> = BTreeMap::new();
    for e in &report.entries {
        let slot = can.entry(e.account.clone()).or_default();
        for p in &e.privileges {
            match p.as_str().to_ascii_uppercase().as_str() {
                "SELECT" => slot.0 = true,
                "INSERT" | "UPDATE" | "DELETE" => slot.1 = true,
                _ => {}
            }
        }
    }
    can.retain(|_, (r, w)| *r || *w);
    let accounts: Vec<AccountName> = can.keys().cloned().collect();
    let found = evidence::gather(server, inv, tables, &accounts, audit_log).await?;
    let mut out: Vec<Reader> = found
        .into_iter()
        .map(|c| {
            let (can_read, can_write) = can.get(&c.account).copied().unwrap_or_default();
            Reader { account: c.account, can_read, can_write, usage: c.usage, last_activity: c.last_activity, evidence: c.evidence }
        })
        .collect();
    out.sort_by(|a, b| (a.usage, &a.account).cmp(&(b.usage, &b.account)));
    Ok(out)
}
