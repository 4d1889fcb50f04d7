//! Plan renderers: a readable table, plain SQL (forward, then the inverse as comments), JSON.

use crate::plan::Plan;
use serde::Serialize;

#[derive(Serialize)]
struct PlanJson<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    forward: Vec<String>,
    inverse: Vec<String>,
    grantor_problems: &'a [String],
}

/// JSON: the plan with `forward` and `inverse` statement lists (docs/formats.md).
pub fn json(p: &Plan, problems: &[String]) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&PlanJson { plan: p, forward: p.forward(), inverse: p.inverse(), grantor_problems: problems })? + "\n")
}

/// SQL a DBA could review or run: forward statements, and the inverse commented out.
pub fn sql(p: &Plan) -> String {
    let mut s = format!("-- privfence plan: service {:?}, {}\n-- fingerprint {}\n", p.service, accounts(p), p.fingerprint);
    for st in &p.steps {
        s.push_str(&format!("-- {}: {}\n{};\n", st.id, st.why, st.forward));
    }
    s.push_str("\n-- inverse (restores the account exactly):\n");
    for i in p.inverse() {
        s.push_str(&format!("-- {i};\n"));
    }
    s
}

/// TSV: one line per step.
pub fn tsv(p: &Plan) -> String {
    let mut t = super::tsv::Tsv::new(&["step", "user", "host", "kind", "forward", "inverse", "why"]);
    for s in &p.steps {
        let kind = serde_json::to_value(s.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        t.row(vec![
            s.id.clone(),
            s.account.user.clone(),
            s.account.host.clone(),
            kind,
            s.forward.clone(),
            s.inverse.clone(),
            s.why.clone(),
        ]);
    }
    t.finish()
}

fn accounts(p: &Plan) -> String {
    p.accounts.iter().map(|a| a.sql()).collect::<Vec<_>>().join(", ")
}

/// For people.
pub fn table(p: &Plan, problems: &[String]) -> String {
    let mut s =
        format!("Plan: cut {} off service {:?} ({} tables); fingerprint {}\n", accounts(p), p.service, p.tables.len(), p.fingerprint);
    let mut t = super::new_table(&["step", "grantee", "forward", "inverse", "why"]);
    for st in &p.steps {
        t.add_row(vec![st.id.clone(), st.account.sql(), st.forward.clone(), st.inverse.clone(), st.why.clone()]);
    }
    s.push_str(&format!("{t}\n"));
    if !p.changes.is_empty() {
        s.push_str("Capability changes:\n");
        for c in &p.changes {
            s.push_str(&format!("  - {}: {}\n", c.account.sql(), c.detail));
        }
    }
    for a in &p.alternatives {
        s.push_str(&format!(
            "Option {}{}: {} ({} steps)\n",
            a.name,
            if a.proposed { " [proposed]" } else { "" },
            a.description,
            a.steps.len()
        ));
    }
    for w in &p.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for w in problems {
        s.push_str(&format!("grantor problem: {w}\n"));
    }
    s
}
