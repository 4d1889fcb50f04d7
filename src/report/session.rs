//! Session reports (Markdown and JSON), rendered from the journal alone plus who can still touch
//! the service's tables. They never hold statement texts or password hashes: alarms are cited
//! by source, error, object and digest.

use crate::journal::{AccountState, State};
use crate::session::guide::Reach;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Version of the session report JSON.
pub const SESSION_REPORT_FORMAT: u32 = 1;

#[derive(Debug, Serialize)]
pub struct SessionReport {
    pub format: u32,
    pub service: String,
    pub policy: String,
    pub created: Option<DateTime<Utc>>,
    pub generated: DateTime<Utc>,
    pub tables: Vec<String>,
    pub servers: Vec<String>,
    pub turns: Vec<TurnReport>,
    /// Accounts other than the owners (and exempted ones) that can still touch the tables;
    /// `None` when it was not computed (the server was not read).
    pub remaining: Option<Vec<Reach>>,
    pub isolation_complete: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct TurnReport {
    pub account: String,
    pub accounts: Vec<String>,
    pub status: String,
    pub reason: Option<String>,
    /// Evidence of non-use that led to the choice.
    pub choice_evidence: Vec<String>,
    /// Signal rows behind the verdict.
    pub verdict_evidence: Vec<String>,
    pub activity: u64,
    pub statements: usize,
    pub begun: DateTime<Utc>,
    /// From the turn's beginning to the cut in force (pre-cut connections gone).
    pub cut_ms: Option<i64>,
    pub watch_ms: Option<i64>,
    pub restore_ms: Option<i64>,
    pub restore_exact: Option<bool>,
    pub conflicts: Vec<String>,
    pub earlier_verdicts: Vec<String>,
}

fn status(t: &AccountState) -> String {
    match t.status() {
        crate::journal::AccountStatus::Done(v) => v.name().to_string(),
        other => format!("{other:?}").to_lowercase() + " (interrupted: run `privfence session resume`)",
    }
}

fn turn(t: &AccountState) -> TurnReport {
    let ms = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds();
    let cut_at = t.cut_done.as_ref().map(|c| c.0);
    let watch_ms = match (&t.watch_begun, &t.verdict, &t.restore_begun) {
        (Some((w, _)), _, Some((r, _))) => Some(ms(*w, *r)),
        (Some((w, _)), Some(v), None) => Some(ms(*w, v.at)),
        _ => None,
    };
    TurnReport {
        account: t.account.clone(),
        accounts: t.accounts.iter().map(|a| a.sql()).collect(),
        status: status(t),
        reason: t.verdict.as_ref().map(|v| v.reason.clone()),
        choice_evidence: t.evidence.clone(),
        verdict_evidence: t.verdict.as_ref().map(|v| v.evidence.clone()).unwrap_or_default(),
        activity: t.verdict.as_ref().map_or(0, |v| v.activity),
        statements: t.ops.len(),
        begun: t.begun,
        cut_ms: cut_at.map(|c| ms(t.begun, c)),
        watch_ms,
        restore_ms: match (&t.restore_begun, &t.restore_done) {
            (Some((a, _)), Some((b, _, _))) => Some(ms(*a, *b)),
            _ => None,
        },
        restore_exact: t.restore_done.as_ref().map(|r| r.1),
        conflicts: t.restore_done.as_ref().map(|r| r.2.clone()).unwrap_or_default(),
        earlier_verdicts: t.earlier_verdicts.iter().map(|v| format!("{} ({})", v.verdict.name(), v.reason)).collect(),
    }
}

/// Builds the report.
pub fn build(state: &State, remaining: Option<Vec<Reach>>) -> SessionReport {
    SessionReport {
        format: SESSION_REPORT_FORMAT,
        service: state.service.clone(),
        policy: state.policy.clone(),
        created: state.created,
        generated: Utc::now(),
        tables: state.tables.iter().map(|t| t.to_string()).collect(),
        servers: state.topologies.last().map(|t| t.iter().map(|s| format!("{} {}", s.name, s.target)).collect()).unwrap_or_default(),
        turns: state.turns.iter().map(turn).collect(),
        isolation_complete: remaining.as_ref().map(|r| r.is_empty()),
        remaining,
    }
}

pub fn json(r: &SessionReport) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// A table for the terminal (`session status`).
pub fn table(r: &SessionReport) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["#", "account", "verdict", "reason", "cut", "watch", "restore"]);
    let d = |v: Option<i64>| v.map(|ms| format!("{:.1}s", ms as f64 / 1000.0)).unwrap_or_default();
    for (i, x) in r.turns.iter().enumerate() {
        t.add_row(vec![
            (i + 1).to_string(),
            x.account.clone(),
            x.status.clone(),
            x.reason.clone().unwrap_or_default(),
            d(x.cut_ms),
            d(x.watch_ms),
            d(x.restore_ms),
        ]);
    }
    let mut s = format!("Session of service {:?} ({} tables)\n{t}\n", r.service, r.tables.len());
    s.push_str(&isolation_line(r));
    s
}

/// `session status --format tsv`: one line per turn.
pub fn tsv(r: &SessionReport) -> String {
    let mut t = super::tsv::Tsv::new(&["turn", "account", "verdict", "reason", "cut_ms", "watch_ms", "restore_ms"]);
    let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    for (i, x) in r.turns.iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            x.account.clone(),
            x.status.clone(),
            x.reason.clone().unwrap_or_default(),
            n(x.cut_ms),
            n(x.watch_ms),
            n(x.restore_ms),
        ]);
    }
    t.finish()
}

fn isolation_line(r: &SessionReport) -> String {
    match (&r.remaining, r.isolation_complete) {
        (Some(_), Some(true)) => {
            "Isolation complete: only the service's owners (and exempted accounts) can touch its tables.\n".to_string()
        }
        (Some(rem), _) => format!(
            "Still able to touch the service's tables: {}\n",
            rem.iter().map(|x| format!("{} ({} tables)", x.account.sql(), x.tables)).collect::<Vec<_>>().join(", ")
        ),
        _ => String::new(),
    }
}

/// Markdown for `reports/`.
pub fn markdown(r: &SessionReport) -> String {
    let mut s = format!("# privfence session: service `{}`\n\n", r.service);
    s.push_str(&format!(
        "- policy: `{}`\n- tables: {}\n- servers: {}\n- report generated: {}\n\n",
        r.policy,
        r.tables.join(", "),
        r.servers.join("; "),
        r.generated.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    s.push_str(&isolation_line(r));
    s.push_str("\n| # | account | verdict | reason | cut | watch | restore |\n|---|---|---|---|---|---|---|\n");
    let d = |v: Option<i64>| v.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_else(|| "–".into());
    for (i, x) in r.turns.iter().enumerate() {
        s.push_str(&format!(
            "| {} | `{}` | **{}** | {} | {} | {} | {} |\n",
            i + 1,
            x.account,
            x.status,
            x.reason.as_deref().unwrap_or("").replace('|', "\\|"),
            d(x.cut_ms),
            d(x.watch_ms),
            d(x.restore_ms)
        ));
    }
    for (i, x) in r.turns.iter().enumerate() {
        s.push_str(&format!("\n## {}. `{}`: {}\n\n", i + 1, x.account, x.status));
        if !x.choice_evidence.is_empty() {
            s.push_str("Evidence of non-use at the choice:\n\n");
            for e in &x.choice_evidence {
                s.push_str(&format!("- {e}\n"));
            }
            s.push('\n');
        }
        if !x.verdict_evidence.is_empty() {
            s.push_str("Signal rows behind the verdict:\n\n");
            for e in &x.verdict_evidence {
                s.push_str(&format!("- `{}`\n", e.replace('`', "'")));
            }
            s.push('\n');
        }
        if let Some(exact) = x.restore_exact {
            s.push_str(&format!(
                "Restore: {} in {}.\n",
                if exact { "exact (grants equal the snapshot on every server)" } else { "**not exact: see `privfence session status`**" },
                d(x.restore_ms)
            ));
        }
        for c in &x.conflicts {
            s.push_str(&format!("- changed by someone else meanwhile (kept): `{c}`\n"));
        }
        for v in &x.earlier_verdicts {
            s.push_str(&format!("- earlier verdict: {v}\n"));
        }
    }
    s
}
