//! Plans: the exact statements that cut one account off a service's tables, keep every other
//! privilege it has, and can be undone exactly.
//!
//! MySQL and MariaDB have no DENY, so removing a few tables from a wider grant means rewriting
//! it: per-table grants on the schema's other tables, exact schema grants for the other schemas
//! a wildcard or global grant covered, then revoking the wide grant. A [`Plan`] is a list of
//! [`Step`]s, each with its forward SQL and its inverse, computed by pure functions over an
//! [`Inventory`](crate::model::Inventory). Grants come first and revokes last, so no other table ever loses access
//! midway; the inverse runs the steps' inverses in reverse order (re-grants first).

mod build;
pub mod fingerprint;
mod rewrite;
mod roles;
pub mod saved;
pub mod simulate;

use crate::model::{AccountName, TableName};
use serde::{Deserialize, Serialize};

pub use build::{build, build_with, PlanError, PlanOptions};

/// Version of the plan JSON format.
pub const PLAN_FORMAT: u32 = 1;

/// What a step does to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Grant,
    Revoke,
}

/// One statement and its inverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Stable within a plan: `NN-kind`, in forward order.
    pub id: String,
    /// The grantee the statement changes (the account, one of its roles, or PUBLIC).
    pub account: AccountName,
    pub kind: StepKind,
    pub forward: String,
    pub inverse: String,
    /// Why this step exists, in words.
    pub why: String,
    /// What the forward statement does, structured, for the plan's self-check (not part of
    /// the JSON format).
    #[serde(skip)]
    pub effect: Option<simulate::Effect>,
}

/// A capability the account gains or loses besides the service's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub account: AccountName,
    pub detail: String,
}

impl Change {
    /// The account loses every privilege in a schema it may use as its default database: a
    /// pool that connects with it will fail to log in (error 1044), not fail a statement.
    pub fn loses_default_database(&self) -> bool {
        self.detail.starts_with("can no longer connect with")
    }
}

/// Another way to cut the same access (for roles: edit the role, or take it away).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alternative {
    pub name: String,
    pub proposed: bool,
    pub description: String,
    pub steps: Vec<Step>,
    pub changes: Vec<Change>,
}

/// The plan for one service and one account (all its host rows when asked for by bare name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub service: String,
    pub accounts: Vec<AccountName>,
    /// The service's tables the plan cuts the accounts off.
    pub tables: Vec<TableName>,
    /// Hash of what the plan was computed from: the accounts' and involved roles' grants and
    /// the table lists of the affected schemas. Applying a plan whose fingerprint no longer
    /// matches the server is refused.
    pub fingerprint: String,
    pub steps: Vec<Step>,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    /// Choices the operator may take instead (the proposed one is in `steps`).
    pub alternatives: Vec<Alternative>,
}

impl Plan {
    /// Forward statements, in order.
    pub fn forward(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.forward.clone()).collect()
    }

    /// Inverse statements, in order (the reverse of the steps).
    pub fn inverse(&self) -> Vec<String> {
        self.steps.iter().rev().map(|s| s.inverse.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What privfence's own account lacks to run every statement of the plan (forward and inverse):
/// GRANT OPTION and each privilege it grants (a grantor can only grant what it holds), role
/// administration for role steps, and MySQL's SYSTEM_USER to change such accounts.
pub fn grantor_problems(inv: &crate::model::Inventory, tool: &AccountName, plan: &Plan) -> Vec<String> {
    grantor_problems_with(&crate::access::index::Index::new(inv), tool, plan)
}

/// [`grantor_problems`] on an index of the inventory already built.
pub fn grantor_problems_with(ix: &crate::access::index::Index, tool: &AccountName, plan: &Plan) -> Vec<String> {
    use crate::model::Privilege;
    let inv = ix.inv;
    let mut have = ix.global_all(tool);
    for chain in ix.role_chains(tool) {
        if ix.active_at_login(tool, chain[0]) {
            have.extend(ix.global_all(chain.last().expect("non-empty")));
        }
    }
    let mut out = Vec::new();
    if !have.contains(&Privilege::known("GRANT OPTION")) {
        out.push(format!("{} lacks GRANT OPTION on *.*", tool.sql()));
    }
    let all = &inv.levels.global;
    let mut missing: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for s in &plan.steps {
        for sql in [&s.forward, &s.inverse] {
            for p in all.iter().filter(|p| sql.starts_with("GRANT ") && sql.contains(p.as_str()) && !have.contains(*p)) {
                missing.insert(p.to_string());
            }
        }
    }
    if !missing.is_empty() {
        out.push(format!(
            "{} cannot grant {} (a grantor may only grant what it holds)",
            tool.sql(),
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let role_steps = plan.steps.iter().any(|s| s.forward.starts_with("REVOKE `") || s.inverse.starts_with("GRANT `"));
    if role_steps
        && inv.server.flavour == crate::db::Flavour::MySql
        && !have.contains(&Privilege::known("ROLE_ADMIN"))
        && !have.contains(&Privilege::known("SUPER"))
    {
        out.push(format!("{} lacks ROLE_ADMIN to grant and revoke roles", tool.sql()));
    }
    if inv.server.flavour == crate::db::Flavour::MySql {
        let sys = Privilege::known("SYSTEM_USER");
        if plan.accounts.iter().any(|a| ix.global_all(a).contains(&sys)) && !have.contains(&sys) {
            out.push(format!("{} lacks SYSTEM_USER, needed to change an account that has it", tool.sql()));
        }
    }
    out
}
