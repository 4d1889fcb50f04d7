//! Prometheus metrics for node_exporter's textfile collector (`--prom-file`): written to a
//! temporary file beside the target and renamed over it, so the collector never reads half a
//! file. A failed run keeps the previous "last success" time, so an alert on its age fires
//! when audits stop succeeding.
//!
//! ```text
//! privfence_audit_findings{server="db1",service="media",kind="unexpected_access"} 3
//! privfence_audit_servers{outcome="audited"} 2
//! privfence_audit_servers{outcome="failed"} 0
//! privfence_audit_duration_seconds 0.412
//! privfence_audit_exit_code 1
//! privfence_audit_last_run_timestamp_seconds 1796580000
//! privfence_audit_last_success_timestamp_seconds 1796580000
//! ```

use crate::audit::AuditReport;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const LAST_SUCCESS: &str = "privfence_audit_last_success_timestamp_seconds";

/// A label value with `\`, `"` and newlines escaped, as the exposition format wants.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics of one audit run. `previous_success` is the last success time of an earlier
/// run, kept when this one failed.
pub fn render(r: &AuditReport, took: Duration, previous_success: Option<i64>) -> String {
    let mut counts: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for s in &r.servers {
        for f in &s.findings {
            *counts.entry((s.name.as_str(), f.service.as_str(), f.kind.name())).or_default() += 1;
        }
    }
    let mut o = String::new();
    o.push_str("# HELP privfence_audit_findings Findings of the last audit by server, service and kind.\n");
    o.push_str("# TYPE privfence_audit_findings gauge\n");
    for ((server, service, kind), n) in &counts {
        o.push_str(&format!(
            "privfence_audit_findings{{server=\"{}\",service=\"{}\",kind=\"{}\"}} {n}\n",
            label(server),
            label(service),
            label(kind)
        ));
    }
    let failed = r.servers.iter().filter(|s| s.error.is_some()).count();
    o.push_str("# HELP privfence_audit_servers Servers of the last audit by outcome.\n# TYPE privfence_audit_servers gauge\n");
    o.push_str(&format!("privfence_audit_servers{{outcome=\"audited\"}} {}\n", r.servers.len() - failed));
    o.push_str(&format!("privfence_audit_servers{{outcome=\"failed\"}} {failed}\n"));
    o.push_str("# HELP privfence_audit_duration_seconds How long the last audit took.\n# TYPE privfence_audit_duration_seconds gauge\n");
    o.push_str(&format!("privfence_audit_duration_seconds {:.3}\n", took.as_secs_f64()));
    o.push_str("# HELP privfence_audit_exit_code Exit code of the last audit: 0 no drift, 1 drift, 2 not audited.\n");
    o.push_str("# TYPE privfence_audit_exit_code gauge\n");
    o.push_str(&format!("privfence_audit_exit_code {}\n", r.exit_code));
    let now = r.generated_at.timestamp();
    o.push_str("# HELP privfence_audit_last_run_timestamp_seconds When the last audit ran.\n");
    o.push_str("# TYPE privfence_audit_last_run_timestamp_seconds gauge\n");
    o.push_str(&format!("privfence_audit_last_run_timestamp_seconds {now}\n"));
    let success = if r.exit_code < 2 { Some(now) } else { previous_success };
    if let Some(t) = success {
        o.push_str(&format!("# HELP {LAST_SUCCESS} When every server was last audited.\n# TYPE {LAST_SUCCESS} gauge\n"));
        o.push_str(&format!("{LAST_SUCCESS} {t}\n"));
    }
    o
}

/// The last success time in an existing metrics file.
pub fn previous_success(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(LAST_SUCCESS)?.trim().parse().ok())
}

/// Writes `text` to `path` atomically (a temporary file in the same folder, fsynced, renamed).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "metrics".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn atomic_write_and_previous_success() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("privfence.prom");
        write_atomically(&p, &format!("{LAST_SUCCESS} 1234\n")).unwrap();
        assert_eq!(previous_success(&p), Some(1234));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
