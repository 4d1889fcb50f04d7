//! Drift over time: compare an audit with an earlier report (`--baseline REPORT.json`).

use super::{AuditReport, Finding};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A finding with the server it was found on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFinding {
    pub server: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// What changed since the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineDiff {
    pub baseline: PathBuf,
    pub baseline_generated_at: chrono::DateTime<chrono::Utc>,
    pub appeared: Vec<ServerFinding>,
    pub disappeared: Vec<ServerFinding>,
}

/// Reads an earlier JSON report.
pub fn load(path: &Path) -> anyhow::Result<AuditReport> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read the baseline {}: {e}", path.display()))?;
    let report: AuditReport =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a privfence audit report (JSON): {e}", path.display()))?;
    if report.format != super::AUDIT_FORMAT {
        anyhow::bail!("{} has audit report format {}; this privfence reads format {}", path.display(), report.format, super::AUDIT_FORMAT);
    }
    Ok(report)
}

fn keyed(r: &AuditReport) -> BTreeMap<String, ServerFinding> {
    let mut m = BTreeMap::new();
    for s in &r.servers {
        for f in &s.findings {
            m.insert(format!("{}|{}", s.name, f.key()), ServerFinding { server: s.name.clone(), finding: f.clone() });
        }
    }
    m
}

/// Findings in `new` but not in `old`, and the reverse. Servers that could not be audited in
/// either run are left out of the comparison (their findings are unknown, not gone).
pub fn compare(old: &AuditReport, old_path: &Path, new: &AuditReport) -> BaselineDiff {
    let audited = |r: &AuditReport, name: &str| r.servers.iter().any(|s| s.name == name && s.error.is_none());
    let (o, n) = (keyed(old), keyed(new));
    let appeared = n.iter().filter(|(k, v)| !o.contains_key(*k) && audited(old, &v.server)).map(|(_, v)| v.clone()).collect();
    let disappeared = o.iter().filter(|(k, v)| !n.contains_key(*k) && audited(new, &v.server)).map(|(_, v)| v.clone()).collect();
    BaselineDiff { baseline: old_path.to_path_buf(), baseline_generated_at: old.generated_at, appeared, disappeared }
}
