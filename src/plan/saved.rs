//! Saved plans: `plan --out FILE` writes the plan with what it was computed from (the account
//! as asked, the options, the fingerprint); `session start --plan FILE` applies exactly that
//! plan, and refuses (nothing changed) when the server no longer gives the same plan.
//!
//! The check rebuilds the plan from a fresh inventory with the saved request and compares: the
//! fingerprint (the accounts' and their roles' grants, the schemas' tables) first, then every
//! step's forward and inverse statement. A mismatch is [`Stale`]: a grant changed since the
//! plan was reviewed, and the reviewed statements may no longer be right.

use super::{build, Plan, PlanOptions};
use crate::model::Inventory;
use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the saved-plan file.
pub const SAVED_PLAN_FORMAT: u32 = 1;

/// The options the plan was built with (see [`PlanOptions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub acknowledge_definer: bool,
    pub include_everyone: bool,
    pub even_if_exempt: bool,
}

/// The saved-plan document (docs/formats.md, "saved plan"; docs/schemas/saved-plan.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    /// Always `saved_plan`.
    pub kind: String,
    pub saved_at: chrono::DateTime<chrono::Utc>,
    /// The server it was computed on (`user@host:port`, no password).
    pub server: String,
    /// The account as asked for (`'user'@'host'`, or a bare user for all its host rows).
    pub account: String,
    pub options: SavedOptions,
    pub plan: Plan,
}

/// The saved plan no longer matches the server.
#[derive(Debug, thiserror::Error)]
#[error(
    "the saved plan {path} no longer matches the server ({why}); nothing was changed: review a new plan \
     (`privfence plan --out FILE`) and start with it"
)]
pub struct Stale {
    pub path: String,
    pub why: String,
}

impl SavedPlan {
    pub fn new(plan: &Plan, account: &str, options: SavedOptions, server: &str) -> SavedPlan {
        SavedPlan {
            format: SAVED_PLAN_FORMAT,
            kind: "saved_plan".into(),
            saved_at: chrono::Utc::now(),
            server: server.into(),
            account: account.into(),
            options,
            plan: plan.clone(),
        }
    }

    /// Writes the file (through a temporary file and a rename: never half a plan).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("renaming {} to {}: {e}", tmp.display(), path.display()))?;
        Ok(())
    }

    pub fn load(path: &Path) -> anyhow::Result<SavedPlan> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading the saved plan {}: {e}", path.display()))?;
        let p: SavedPlan = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a saved plan (write one with `privfence plan --out`): {e}", path.display()))?;
        if p.kind != "saved_plan" || p.format != SAVED_PLAN_FORMAT {
            anyhow::bail!(
                "{}: a {} document of format {}, expected a saved_plan of format {SAVED_PLAN_FORMAT}",
                path.display(),
                p.kind,
                p.format
            );
        }
        Ok(p)
    }

    /// The options to rebuild with.
    pub fn plan_options(&self, today: chrono::NaiveDate) -> PlanOptions {
        PlanOptions {
            acknowledge_definer: self.options.acknowledge_definer,
            include_everyone: self.options.include_everyone,
            even_if_exempt: self.options.even_if_exempt,
            today: Some(today),
        }
    }

    /// The saved plan, if `inv` still gives exactly it for `service`; else why not.
    pub fn check(&self, path: &Path, inv: &Inventory, policy: &Policy, service: &str, today: chrono::NaiveDate) -> anyhow::Result<Plan> {
        let stale = |why: String| Stale { path: path.display().to_string(), why };
        if self.plan.service != service {
            anyhow::bail!("the saved plan {} is for service {:?}, not {service:?}", path.display(), self.plan.service);
        }
        let now = build(inv, policy, service, &self.account, &self.plan_options(today))
            .map_err(|e| stale(format!("no plan can be made now: {e}")))?;
        if now.fingerprint != self.plan.fingerprint {
            return Err(stale(format!(
                "fingerprint {} when planned, {} now: the grants of the accounts or their roles, or the schemas' tables, changed",
                self.plan.fingerprint, now.fingerprint
            ))
            .into());
        }
        let pairs = |p: &Plan| p.steps.iter().map(|s| (s.forward.clone(), s.inverse.clone())).collect::<Vec<_>>();
        if pairs(&now) != pairs(&self.plan) || now.accounts != self.plan.accounts {
            return Err(stale("the same fingerprint gives other statements now (another privfence version or policy)".into()).into());
        }
        Ok(self.plan.clone())
    }
}
