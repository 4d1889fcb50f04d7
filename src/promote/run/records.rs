//! The typed detail record each promotion step journals (`step` records' `detail`, docs/formats.md).
//!
//! A step writes its record with [`detail`] and a later step (or `abort`, `revert`, sync-back)
//! reads it back with `PromoteState::record`, so a missing or renamed field is an error naming
//! the step, never an empty value. The JSON keys are the journal format: renaming a field here
//! changes the format. Every record also gets `took_ms` when the step is done.

use super::account;
use crate::model::AccountName;
use crate::promote::{compare, preflight, promotion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// A record as the journal's `detail` value.
pub(super) fn detail<T: Serialize>(record: &T) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// Step 1's record: the preflight checks as they came out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreflightRecord {
    pub checks: Vec<preflight::Check>,
}

/// Step 2's record: the primary's position the replica had applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZeroLagRecord {
    pub position: String,
}

/// Step 3's record: the owners, what was found or created on the replica, and their grants'
/// canonical snapshot (compared on the new server after the promotion, and by a revert).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub owners: Vec<AccountName>,
    pub on_replica: Vec<account::OnReplica>,
    pub snapshot: BTreeSet<String>,
}

/// Step 4's record: the hook that moved the reads (`None`: the operator did, or `--yes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadsRecord {
    pub hook: Option<String>,
}

/// Step 5's record is the comparison itself ([`compare::Comparison`]).
pub type CompareRecord = compare::Comparison;

/// Step 6's record: how long the go took, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadyRecord {
    pub waited_s: u64,
}

/// Step 7's record is the fence ([`crate::promote::fence::Fenced`]).
pub type FenceRecord = crate::promote::fence::Fenced;

/// Step 8's record: the delta after the fence (clean), and where sync-back starts: the new
/// server's binary log while the service is fenced (`None` when it could not be read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatchUpRecord {
    #[serde(flatten)]
    pub delta: compare::DeltaReport,
    pub sync_back_from: Option<crate::syncback::position::Position>,
}

/// Step 9's record is what the promotion did ([`promotion::Promoted`]).
pub type PromoteRecord = promotion::Promoted;

/// Step 10's record: the writes hook and the tables the smoke write went through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WritesRecord {
    pub hook: Option<String>,
    pub smoke_write: Vec<String>,
}

/// Step 11's record: the archived tables, and writes seen on them while they were watched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub archived: Vec<String>,
    pub written_meanwhile: Vec<String>,
    pub watched_ms: u64,
}
