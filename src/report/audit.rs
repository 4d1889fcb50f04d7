//! Audit renderers: a terminal table, the versioned JSON document, and the Markdown report
//! written to `reports/`.

use super::filter::AccountFilter;
use super::tsv::Tsv;
use crate::audit::{AuditReport, Finding, Kind};
use std::collections::BTreeMap;

/// The findings `filter` shows (findings about no account: unless `--account` was given).
pub fn shown<'a>(findings: &'a [Finding], filter: &'a AccountFilter) -> impl Iterator<Item = &'a Finding> + 'a {
    findings.iter().filter(move |f| match &f.account {
        Some(a) => filter.shows(a),
        None => filter.shows_none(),
    })
}

/// A copy of the report with only the findings `filter` shows (exit code and counts of the
/// whole audit kept: the filter changes what is printed, not the verdict).
pub fn filtered(r: &AuditReport, filter: &AccountFilter) -> AuditReport {
    let mut r = r.clone();
    for srv in &mut r.servers {
        let keep: Vec<Finding> = shown(&srv.findings, filter).cloned().collect();
        srv.findings = keep;
    }
    r
}

/// Findings that differ only by the account's host, as one row: the finding and its hosts.
fn grouped<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<(&'a Finding, Vec<&'a str>)> {
    let mut out: Vec<(&Finding, Vec<&str>)> = Vec::new();
    for f in findings {
        let same = |g: &Finding| {
            g.kind == f.kind
                && g.service == f.service
                && g.account.as_ref().map(|a| &a.user) == f.account.as_ref().map(|a| &a.user)
                && g.table == f.table
                && g.privileges == f.privileges
                && g.detail == f.detail
                && f.account.is_some()
        };
        match out.iter_mut().find(|(g, _)| same(g)) {
            Some((_, hosts)) => hosts.extend(f.account.as_ref().map(|a| a.host.as_str())),
            None => out.push((f, f.account.iter().map(|a| a.host.as_str()).collect())),
        }
    }
    out
}

fn account(f: &Finding) -> String {
    f.account.as_ref().map(|a| a.sql()).unwrap_or_default()
}

fn table_name(f: &Finding) -> String {
    f.table.as_ref().map(|t| t.sql()).unwrap_or_default()
}

fn privileges(f: &Finding) -> String {
    f.privileges.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

fn result_line(r: &AuditReport) -> &'static str {
    match r.exit_code {
        0 => "no drift (exit 0)",
        1 => "drift found (exit 1)",
        _ => "could not audit everything (exit 2)",
    }
}

/// Counts per kind, e.g. `3 unexpected_access, 1 escalation`.
fn counts(findings: &[Finding]) -> String {
    let mut by: BTreeMap<Kind, usize> = BTreeMap::new();
    for f in findings {
        *by.entry(f.kind).or_default() += 1;
    }
    by.iter().map(|(k, n)| format!("{n} {}", k.name())).collect::<Vec<_>>().join(", ")
}

/// For the terminal: findings that differ only by host share a row (`'root'@ 'localhost',
/// '::1'`).
pub fn table(r: &AuditReport) -> String {
    table_filtered(r, &AccountFilter::default())
}

/// [`table`] with only the findings `filter` shows.
pub fn table_filtered(r: &AuditReport, filter: &AccountFilter) -> String {
    let mut s = String::new();
    for srv in &r.servers {
        s.push_str(&format!("== {} ({})\n", srv.name, srv.target));
        if let Some(e) = &srv.error {
            s.push_str(&format!("NOT AUDITED: {e}\n\n"));
            continue;
        }
        let shown: Vec<Finding> = shown(&srv.findings, filter).cloned().collect();
        if shown.is_empty() {
            let hidden = if srv.findings.is_empty() {
                String::new()
            } else {
                format!(" shown ({} hidden by the account filter)", srv.findings.len())
            };
            s.push_str(&format!("no findings{hidden}\n\n"));
            continue;
        }
        let mut t = super::new_table(&["service", "kind", "account", "table", "privileges", "evidence"]);
        for (f, hosts) in grouped(shown.iter()) {
            let who = match &f.account {
                Some(a) => super::account_hosts(&a.user, &hosts),
                None => String::new(),
            };
            t.add_row(vec![f.service.clone(), f.kind.name().to_string(), who, table_name(f), privileges(f), f.detail.clone()]);
        }
        s.push_str(&format!("{t}\n{}\n\n", counts(&shown)));
    }
    if let Some(b) = &r.baseline {
        s.push_str(&format!(
            "Since the baseline of {}: {} appeared, {} disappeared\n",
            b.baseline_generated_at.format("%Y-%m-%d %H:%M UTC"),
            b.appeared.len(),
            b.disappeared.len()
        ));
        for (sign, list) in [("+", &b.appeared), ("-", &b.disappeared)] {
            for x in list {
                s.push_str(&format!(
                    "  {sign} [{}] {} {} {} {}\n",
                    x.server,
                    x.finding.kind.name(),
                    account(&x.finding),
                    table_name(&x.finding),
                    x.finding.detail
                ));
            }
        }
    }
    s.push_str(&format!("Result: {}\n", result_line(r)));
    s
}

/// TSV: one line per finding shown, a `server` column first; a server not audited is one line
/// with `kind` = `not_audited` and the reason in `detail`.
pub fn tsv(r: &AuditReport, filter: &AccountFilter) -> String {
    let mut t = Tsv::new(&["server", "service", "kind", "user", "host", "schema", "table", "privileges", "path", "detail"]);
    for srv in &r.servers {
        if let Some(e) = &srv.error {
            let mut row = vec![srv.name.clone(), String::new(), "not_audited".into()];
            row.extend(std::iter::repeat_n(String::new(), 6));
            row.push(e.clone());
            t.row(row);
        }
        for f in shown(&srv.findings, filter) {
            let (u, h) = f.account.as_ref().map(|a| (a.user.clone(), a.host.clone())).unwrap_or_default();
            let (sc, tb) = f.table.as_ref().map(|x| (x.schema.clone(), x.name.clone())).unwrap_or_default();
            let path = f.via.as_ref().map(super::summary::path_kind).unwrap_or_default();
            t.row(vec![srv.name.clone(), f.service.clone(), f.kind.name().into(), u, h, sc, tb, privileges(f), path, f.detail.clone()]);
        }
    }
    t.finish()
}

/// The JSON document (docs/formats.md, "audit").
pub fn json(r: &AuditReport) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ").replace('`', "\\`").replace('*', "\\*").replace('_', "\\_")
}

/// The Markdown report.
pub fn markdown(r: &AuditReport) -> String {
    let mut s = format!("# privfence audit, {}\n\n", r.generated_at.format("%Y-%m-%d %H:%M:%S UTC"));
    let files: Vec<String> = r.policy.iter().map(|p| p.display().to_string()).collect();
    s.push_str(&format!("Policy: {}. Result: **{}**.\n\n", cell(&files.join(", ")), result_line(r)));
    s.push_str("| server | target | status | findings |\n| --- | --- | --- | --- |\n");
    for srv in &r.servers {
        let status = match &srv.error {
            Some(e) => format!("not audited: {}", cell(e)),
            None => format!("audited ({})", cell(srv.version.as_deref().unwrap_or(""))),
        };
        s.push_str(&format!("| {} | {} | {status} | {} |\n", cell(&srv.name), cell(&srv.target), cell(&counts(&srv.findings))));
    }
    for srv in &r.servers {
        s.push_str(&format!("\n## {}\n\n", cell(&srv.name)));
        if let Some(e) = &srv.error {
            s.push_str(&format!("Not audited: {}\n", cell(e)));
            continue;
        }
        for w in &srv.warnings {
            s.push_str(&format!("- warning: {}\n", cell(w)));
        }
        if !srv.replicas.is_empty() {
            s.push_str(&format!("\nCompared with replicas: {}.\n", cell(&srv.replicas.join(", "))));
        }
        if srv.findings.is_empty() {
            s.push_str("\nNo findings.\n");
            continue;
        }
        s.push_str("\n| service | kind | account | table | privileges | evidence |\n| --- | --- | --- | --- | --- | --- |\n");
        for f in &srv.findings {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                cell(&f.service),
                f.kind.name().replace('_', "\\_"),
                cell(&account(f)),
                cell(&table_name(f)),
                cell(&privileges(f)),
                cell(&f.detail)
            ));
        }
    }
    if let Some(b) = &r.baseline {
        s.push_str(&format!("\n## Since the baseline ({})\n\n", cell(&b.baseline.display().to_string())));
        s.push_str(&format!("{} appeared, {} disappeared.\n\n", b.appeared.len(), b.disappeared.len()));
        for (title, list) in [("Appeared", &b.appeared), ("Disappeared", &b.disappeared)] {
            for x in list {
                s.push_str(&format!(
                    "- {title}: [{}] {} {} {} {}\n",
                    cell(&x.server),
                    x.finding.kind.name().replace('_', "\\_"),
                    cell(&account(&x.finding)),
                    cell(&table_name(&x.finding)),
                    cell(&x.finding.detail)
                ));
            }
        }
    }
    s
}
