//! Inventory renderers.

use crate::inventory::verify::Mismatch;
use crate::model::{GrantObject, Inventory};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct InventoryJson<'a> {
    #[serde(flatten)]
    inventory: &'a Inventory,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<&'a [Mismatch]>,
}

/// The versioned JSON document (docs/formats.md), compact: an inventory of a large server is
/// tens of megabytes, read by programs (`jq .` pretty-prints it).
pub fn json(inv: &Inventory, verify: Option<&[Mismatch]>) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&InventoryJson { inventory: inv, verify })? + "\n")
}

/// One row per account: what it holds at each level.
pub fn table(inv: &Inventory) -> String {
    #[derive(Default)]
    struct Counts {
        global: Vec<String>,
        schemas: Vec<String>,
        tables: usize,
        columns: usize,
        routines: usize,
    }
    let mut by: BTreeMap<&crate::model::AccountName, Counts> = BTreeMap::new();
    for g in &inv.grants {
        let c = by.entry(&g.grantee).or_default();
        match &g.object {
            GrantObject::Global => c.global.extend(g.privileges.iter().map(|p| p.to_string())),
            GrantObject::Schema { pattern } => c.schemas.push(format!("`{pattern}`.*")),
            GrantObject::Table { .. } => c.tables += 1,
            GrantObject::Column { .. } => c.columns += 1,
            GrantObject::Routine { .. } => c.routines += 1,
        }
    }
    let mut t = super::new_table(&["account", "kind", "global", "schemas", "tables/cols/routines", "roles"]);
    for a in &inv.accounts {
        let c = by.remove(&a.name).unwrap_or_default();
        let kind = match (a.is_role, a.locked) {
            (true, _) => "role",
            (false, true) => "locked",
            _ => "account",
        };
        let global = if c.global.len() > 6 { format!("{} privileges", c.global.len()) } else { c.global.join(", ") };
        let roles: Vec<String> = inv.role_grants.iter().filter(|r| r.grantee == a.name).map(|r| r.role.sql()).collect();
        t.add_row(vec![
            a.name.sql(),
            kind.to_string(),
            global,
            c.schemas.join(", "),
            format!("{}/{}/{}", c.tables, c.columns, c.routines),
            roles.join(", "),
        ]);
    }
    let o = &inv.objects;
    format!(
        "{t}\n{} {} on {}: {} accounts, {} grants, {} schemas, {} tables, {} views, {} routines, {} triggers, {} events\n",
        inv.server.flavour,
        inv.server.version,
        inv.server.version_string,
        inv.accounts.len(),
        inv.grants.len(),
        o.schemas.len(),
        o.tables.len(),
        o.views.len(),
        o.routines.len(),
        o.triggers.len(),
        o.events.len()
    )
}

/// Global privileges, schema patterns, and counts of table, column and routine grants.
type Held = (Vec<String>, Vec<String>, [usize; 3]);

/// TSV: one line per account (or role), raw names, with the numbers the table shows.
pub fn tsv(inv: &Inventory) -> String {
    let mut t = super::tsv::Tsv::new(&["user", "host", "kind", "global", "schemas", "tables", "columns", "routines", "roles"]);
    let mut by: BTreeMap<&crate::model::AccountName, Held> = BTreeMap::new();
    for g in &inv.grants {
        let c = by.entry(&g.grantee).or_default();
        match &g.object {
            GrantObject::Global => c.0.extend(g.privileges.iter().map(|p| p.to_string())),
            GrantObject::Schema { pattern } => c.1.push(pattern.to_string()),
            GrantObject::Table { .. } => c.2[0] += 1,
            GrantObject::Column { .. } => c.2[1] += 1,
            GrantObject::Routine { .. } => c.2[2] += 1,
        }
    }
    for a in &inv.accounts {
        let (global, schemas, n) = by.remove(&a.name).unwrap_or_default();
        let kind = match (a.is_role, a.locked) {
            (true, _) => "role",
            (false, true) => "locked",
            _ => "account",
        };
        let roles: Vec<String> = inv.role_grants.iter().filter(|r| r.grantee == a.name).map(|r| r.role.sql()).collect();
        t.row(vec![
            a.name.user.clone(),
            a.name.host.clone(),
            kind.into(),
            global.join(", "),
            schemas.join(", "),
            n[0].to_string(),
            n[1].to_string(),
            n[2].to_string(),
            roles.join(", "),
        ]);
    }
    t.finish()
}

/// Mismatches in words, for stderr.
pub fn mismatches_text(m: &[Mismatch]) -> String {
    let own = m.iter().filter(|x| !x.is_server_quirk()).count();
    let mut s = if own > 0 {
        format!("VERIFY FAILED: the model differs from SHOW GRANTS for {own} account(s)\n")
    } else {
        String::from("verify: the model matches the grant tables; SHOW GRANTS differs only by known server quirks\n")
    };
    for x in m {
        match &x.explanation {
            Some(why) => s.push_str(&format!("  {} (not privfence's mismatch: {why})\n", x.account.sql())),
            None => s.push_str(&format!("  {}\n", x.account.sql())),
        }
        for a in &x.only_on_server {
            s.push_str(&format!("    server has, model lacks: {a}\n"));
        }
        for a in &x.only_in_model {
            s.push_str(&format!("    model has, server lacks: {a}\n"));
        }
        for a in &x.unparsed {
            s.push_str(&format!("    could not parse: {a}\n"));
        }
    }
    s
}
