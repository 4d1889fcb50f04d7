//! PLACEHOLDER written by the lead so that the session CLI compiles while the evidence module is
//! being written: the agreed API, with no sources behind it. The evidence engineer replaces this
//! file entirely, keeping these names and signatures.

use crate::db::Server;
use crate::error::Result;
use crate::model::{AccountName, Inventory, TableName};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Usage {
    Used,
    NotSeen,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub source: String,
    pub span: String,
    pub blind_spots: Vec<String>,
    pub usage: Usage,
    pub rows: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub account: AccountName,
    pub usage: Usage,
    pub evidence: Vec<Evidence>,
    pub last_activity: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setting {
    pub enable_sql: String,
    pub disable_sql: String,
    pub why: String,
}

pub async fn wanted_settings(_server: &mut Server) -> Result<Vec<Setting>> {
    Ok(Vec::new())
}

pub async fn gather(
    _server: &mut Server,
    _inv: &Inventory,
    _tables: &[TableName],
    candidates: &[AccountName],
    _audit_log: Option<&Path>,
) -> Result<Vec<Candidate>> {
    Ok(candidates.iter().map(|a| Candidate { account: a.clone(), usage: Usage::Unknown, evidence: Vec::new(), last_activity: None }).collect())
}

pub fn rank(cands: &mut [Candidate]) {
    cands.sort_by(|a, b| a.account.cmp(&b.account));
}
