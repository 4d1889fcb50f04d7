//! The tables `session start` prints before a decision: who can still touch the service's
//! tables, and the candidates ranked by evidence of non-use. In words (`not seen`, never a
//! Rust name like `NotSeen`) and at most 120 columns wide, so they read on any terminal.

use crate::evidence::{Candidate, Usage};
use crate::session::guide::Reach;

/// Usage in words.
pub fn usage_words(u: Usage) -> &'static str {
    match u {
        Usage::Used => "USED",
        Usage::NotSeen => "not seen",
        Usage::Unknown => "unknown",
    }
}

/// Who can still touch the service's tables, one path per line.
pub fn remaining(rem: &[Reach], shown: usize) -> String {
    if rem.is_empty() {
        return String::new();
    }
    let mut t = super::narrow_table(&["account", "tables", "paths"]);
    for r in rem.iter().take(shown) {
        t.add_row(vec![
            format!("{}{}", r.account.sql(), if r.locked { " (locked)" } else { "" }),
            r.tables.to_string(),
            r.paths.join("\n"),
        ]);
    }
    let more = match rem.len().saturating_sub(shown) {
        0 => String::new(),
        n => format!("... and {n} more account(s) (--all-candidates lists them all)\n"),
    };
    format!("Who can still touch the service's tables ({}):\n{t}\n{more}", rem.len())
}

/// One evidence line: `source: not seen (span) [rows] blind: ...`.
fn evidence_line(e: &crate::evidence::Evidence) -> String {
    let mut s = format!("{}: {} ({})", e.source, usage_words(e.usage), e.span);
    if !e.rows.is_empty() {
        s.push_str(&format!(" [{}]", e.rows.join("; ")));
    }
    if !e.blind_spots.is_empty() {
        s.push_str(&format!(" blind: {}", e.blind_spots.join("; ")));
    }
    s
}

/// Candidates by evidence of non-use.
/// How many ranked candidates `session start` shows by default: the choice is among the first
/// ones, and laying out the evidence of 2,500 candidates was a fifth of its CPU at 10,000
/// accounts (a wall of text, too).
pub const RANKED_SHOWN: usize = 50;

/// The first `shown` candidates by rank with their evidence, then how many more there are.
pub fn ranked(c: &[Candidate], shown: usize) -> String {
    let mut t = super::narrow_table(&["rank", "account", "use", "evidence (source, span, blind spots)"]);
    for (i, x) in c.iter().enumerate().take(shown) {
        let unknown = x.evidence.iter().filter(|e| e.usage == Usage::Unknown).count();
        let mut ev: Vec<String> = x.evidence.iter().filter(|e| e.usage != Usage::Unknown).map(evidence_line).collect();
        if unknown > 0 {
            ev.push(format!("{unknown} source(s) could not tell (unknown)"));
        }
        t.add_row(vec![(i + 1).to_string(), x.account.sql(), usage_words(x.usage).to_string(), ev.join("\n")]);
    }
    let more = match c.len().saturating_sub(shown) {
        0 => String::new(),
        n => format!("... and {n} more candidate(s), ranked lower (--all-candidates shows them; any can be chosen by rank or name)\n"),
    };
    format!("Candidates by evidence of non-use (no evidence means unknown, not unused):\n{t}\n{more}")
}

/// The evidence behind the chosen account, for the journal's turn record.
pub fn chosen_lines(ranked: &[Candidate], accounts: &[crate::model::AccountName]) -> Vec<String> {
    ranked
        .iter()
        .filter(|c| accounts.contains(&c.account))
        .flat_map(|c| {
            c.evidence.iter().map(move |e| {
                format!(
                    "{}: {} over {} ({}){}",
                    e.source,
                    usage_words(e.usage),
                    e.span,
                    c.account.sql(),
                    if e.rows.is_empty() { String::new() } else { format!(": {}", e.rows.join("; ")) }
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountName;

    #[test]
    fn fits_120_columns_in_words() {
        let long = "schema grant on `a_very_long_schema_name_for_a_monolith`.* (wildcard) through role 'reporting_role'@'%' (default)";
        let rem = vec![Reach {
            account: AccountName::new("svc_reports_with_a_long_name", "10.20.30.%"),
            tables: 42,
            paths: vec![long.into(), long.into()],
            locked: true,
        }];
        let t = remaining(&rem, RANKED_SHOWN);
        assert!(t.lines().all(|l| l.chars().count() <= 120), "{t}");
        assert_eq!(usage_words(Usage::NotSeen), "not seen");
        let c = Candidate {
            account: AccountName::new("a", "%"),
            usage: Usage::NotSeen,
            evidence: vec![crate::evidence::Evidence {
                source: "performance_schema.events_statements_history_long".into(),
                span: format!("since server start {}", "x".repeat(80)),
                blind_spots: vec!["statements of connections that ended before the history was read".into()],
                usage: Usage::NotSeen,
                rows: vec![],
            }],
            last_activity: None,
        };
        let t = ranked(std::slice::from_ref(&c), RANKED_SHOWN);
        assert!(t.lines().all(|l| l.chars().count() <= 120), "{t}");
        assert!(t.contains("not seen") && !t.contains("NotSeen"), "{t}");
        assert!(!t.contains("more candidate"), "{t}");
        // Past the first `shown`, a count and how to see them.
        let many: Vec<Candidate> = (0..5).map(|i| Candidate { account: AccountName::new(format!("u{i}"), "%"), ..c.clone() }).collect();
        let t = ranked(&many, 2);
        assert!(t.contains("'u1'@'%'") && !t.contains("'u2'@'%'"), "{t}");
        assert!(t.contains("... and 3 more candidate(s), ranked lower (--all-candidates"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= 120), "{t}");
    }
}
