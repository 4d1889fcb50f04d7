//! Policies: which service owns which tables, who else may touch them, and until when.
//!
//! Policy files are TOML (documented in docs/policies.md). Loading collects *every* problem
//! with its file, line and column before anything runs: syntax, unknown keys, malformed
//! accounts or table patterns, services defined twice, ownership that overlaps between
//! services. Checks that need a server (patterns matching no table, overlaps between wildcard
//! patterns) run in [`Policy::check_against`].

mod load;

use crate::model::{AccountName, TableName, TablePattern};
use chrono::NaiveDate;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

pub use load::{load, position};

/// Where something is in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The text of that line (shown under a diagnostic; empty when there is none, as for a
    /// file that cannot be read).
    #[serde(skip)]
    pub text: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}: {}", self.location, self.message)?;
        if !self.location.text.trim().is_empty() {
            write!(f, "\n    | {}", self.location.text.trim_end())?;
        }
        Ok(())
    }
}

/// Policy problems that stop a run (errors), with the warnings found alongside.
#[derive(Debug, Clone)]
pub struct PolicyErrors(pub Vec<Diagnostic>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.0.iter().filter(|d| d.severity == Severity::Error).count();
        writeln!(f, "the policy has {errors} error(s); nothing was done")?;
        for d in &self.0 {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// A table pattern with where it was written.
#[derive(Debug, Clone)]
pub struct TableRule {
    pub pattern: TablePattern,
    pub location: Location,
}

/// An account allowed to touch a service's tables without owning them.
#[derive(Debug, Clone)]
pub struct Exemption {
    pub account: AccountName,
    /// Written as a bare user name: covers every host row of that user.
    pub any_host: bool,
    pub reason: String,
    /// After this day the exemption no longer applies (and is reported).
    pub expires: Option<NaiveDate>,
    pub location: Location,
}

impl Exemption {
    pub fn expired(&self, today: NaiveDate) -> bool {
        self.expires.is_some_and(|d| d < today)
    }
}

/// One service: its tables and the accounts allowed to touch them.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub description: Option<String>,
    pub tables: Vec<TableRule>,
    /// The service's own accounts. A bare user name (`svc`) means every host row of that user.
    pub owners: Vec<AccountName>,
    /// `true` per owner when it was written as a bare user name.
    pub owner_any_host: Vec<bool>,
    pub exempt: Vec<Exemption>,
    pub location: Location,
    /// `allow_empty = true`: a table pattern that matches no table is a warning (the tables
    /// are yet to come), not an error.
    pub allow_empty: bool,
}

impl Service {
    /// Is `a` one of the service's owners?
    pub fn is_owner(&self, a: &AccountName) -> bool {
        self.owners.iter().zip(&self.owner_any_host).any(|(o, any)| if *any { o.user == a.user } else { o == a })
    }

    /// The exemption that currently covers `a`, if any (expired ones do not).
    pub fn exemption(&self, a: &AccountName, today: NaiveDate) -> Option<&Exemption> {
        self.exempt.iter().find(|e| (if e.any_host { e.account.user == a.user } else { &e.account == a }) && !e.expired(today))
    }

    /// Tables of `all` that belong to the service.
    pub fn matching<'a>(&self, all: impl Iterator<Item = &'a TableName>, case_insensitive: bool) -> Vec<TableName> {
        all.filter(|t| self.tables.iter().any(|r| r.pattern.matches(t, case_insensitive))).cloned().collect()
    }
}

/// Up to three existing table names closest to a pattern's text (edit distance), for the
/// message of a pattern that matches nothing.
fn nearest(pattern: &str, tables: &[TableName]) -> Vec<String> {
    let want: Vec<char> = pattern.replace('`', "").to_lowercase().chars().collect();
    let mut scored: Vec<(usize, String)> = tables
        .iter()
        .map(|t| {
            let name = format!("{}.{}", t.schema, t.name);
            (distance(&want, &name.to_lowercase().chars().collect::<Vec<_>>()), t.sql())
        })
        .collect();
    scored.sort();
    scored.dedup();
    let limit = (want.len() / 4).max(2);
    scored.into_iter().filter(|(d, _)| *d <= limit).take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance; a `*` in the pattern matches any run of characters for free.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        if *ca == '*' {
            cur[0] = prev[0];
        }
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] =
                if *ca == '*' { prev[j + 1].min(cur[j]) } else { (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1) };
        }
        prev = cur;
    }
    prev[b.len()]
}

/// All services of a policy file or folder.
#[derive(Debug, Clone)]
pub struct Policy {
    pub files: Vec<PathBuf>,
    pub services: Vec<Service>,
    /// Warnings found while loading (no errors: loading fails on any).
    pub warnings: Vec<Diagnostic>,
}

impl Policy {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Checks the policy against a server's tables: a pattern that matches no table is an
    /// error naming the nearest existing tables (a typo must not turn an audit into "no
    /// findings"), or a warning for a service with `allow_empty = true`; a table claimed by two
    /// services is an error.
    pub fn check_against(&self, tables: &[TableName], case_insensitive: bool) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for s in &self.services {
            for r in &s.tables {
                if !tables.iter().any(|t| r.pattern.matches(t, case_insensitive)) {
                    let near = nearest(&r.pattern.to_string(), tables);
                    let hint = if near.is_empty() { String::new() } else { format!(" (nearest: {})", near.join(", ")) };
                    let (severity, list, tail) = if s.allow_empty {
                        (Severity::Warning, &mut warnings, "")
                    } else {
                        (
                            Severity::Error,
                            &mut errors,
                            "; fix the pattern, or set allow_empty = true on the service if its tables are yet to come",
                        )
                    };
                    list.push(Diagnostic {
                        severity,
                        location: r.location.clone(),
                        message: format!("table pattern {} of service {:?} matches no table on this server{hint}{tail}", r.pattern, s.name),
                    });
                }
            }
        }
        for t in tables {
            let owners: Vec<&Service> =
                self.services.iter().filter(|s| s.tables.iter().any(|r| r.pattern.matches(t, case_insensitive))).collect();
            if owners.len() > 1 {
                errors.push(Diagnostic {
                    severity: Severity::Error,
                    location: owners[1].location.clone(),
                    message: format!(
                        "table {} is claimed by services {}: each table belongs to one service",
                        t.sql(),
                        owners.iter().map(|s| format!("{:?}", s.name)).collect::<Vec<_>>().join(" and ")
                    ),
                });
            }
        }
        (errors, warnings)
    }
}

#[cfg(test)]
mod nearest_tests {
    use super::*;

    #[test]
    fn a_typo_names_the_tables_it_meant() {
        let tables = [TableName::new("shop", "media_attachments"), TableName::new("shop", "media_files"), TableName::new("shop", "orders")];
        let near = nearest("shop.medai_*", &tables);
        assert_eq!(near.len(), 2, "{near:?}");
        assert!(near.iter().all(|n| n.contains("media_")), "{near:?}");
        assert!(nearest("zzz.qqqqqqqqqq", &tables).is_empty());
    }
}
