//! Reading policy files: TOML with spans, then semantic checks, every problem located.

use super::{Diagnostic, Exemption, Location, Policy, PolicyErrors, Service, Severity, TableRule};
use crate::model::{AccountName, TablePattern};
use chrono::NaiveDate;
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    tables: Vec<Spanned<String>>,
    owners: Vec<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    exempt: Vec<Spanned<RawExempt>>,
    /// The service's tables may not exist yet: a pattern matching no table is a warning, not
    /// an error.
    #[serde(default)]
    allow_empty: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExempt {
    account: Spanned<String>,
    reason: Spanned<String>,
    #[serde(default)]
    expires: Option<Spanned<toml::value::Datetime>>,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn loc(&self, span: Range<usize>) -> Location {
        let (line, column) = position(self.text, span.start);
        let text = self.text.lines().nth(line - 1).unwrap_or("").to_string();
        Location { file: self.file.to_path_buf(), line, column, text }
    }
    fn push(&mut self, severity: Severity, span: Range<usize>, message: String) {
        let location = self.loc(span);
        self.diags.push(Diagnostic { severity, location, message });
    }
    fn error(&mut self, span: Range<usize>, message: String) {
        self.push(Severity::Error, span, message);
    }
}

/// Loads a policy file, or every `*.toml` file of a folder. Fails with every error found.
pub fn load(path: &Path, today: NaiveDate) -> Result<Policy, PolicyErrors> {
    let files = policy_files(path)?;
    let mut services: Vec<Service> = Vec::new();
    let mut diags = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| single(f, &format!("cannot read the policy file: {e}")))?;
        let mut ctx = Ctx { file: f, text: &text, diags: Vec::new() };
        parse_file(&mut ctx, &mut services, today);
        ctx.diags.sort_by_key(|d| (d.location.line, d.location.column));
        diags.extend(ctx.diags);
    }
    check_overlaps(&services, &mut diags);
    if services.is_empty() && !diags.iter().any(|d| d.severity == Severity::Error) {
        diags.push(Diagnostic {
            severity: Severity::Error,
            location: Location { file: path.to_path_buf(), line: 1, column: 1, text: String::new() },
            message: "no [service.NAME] table in the policy".into(),
        });
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(PolicyErrors(diags));
    }
    Ok(Policy { files, services, warnings: diags })
}

fn single(f: &Path, message: &str) -> PolicyErrors {
    PolicyErrors(vec![Diagnostic {
        severity: Severity::Error,
        location: Location { file: f.to_path_buf(), line: 1, column: 1, text: String::new() },
        message: message.to_string(),
    }])
}

fn policy_files(path: &Path) -> Result<Vec<PathBuf>, PolicyErrors> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| single(path, &format!("cannot read the policy folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(single(path, "the policy folder holds no *.toml file"));
        }
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(single(path, "no such policy file or folder"))
    }
}

/// Parses one file, reporting every problem: each syntax error (the parser recovers and goes
/// on), each top-level key other than `service`, and each service's own problems, service by
/// service (one malformed service does not hide the errors of the next).
fn parse_file(ctx: &mut Ctx, services: &mut Vec<Service>, today: NaiveDate) {
    let (doc, syntax) = DeTable::parse_recoverable(ctx.text);
    let syntax_failed = !syntax.is_empty();
    // One syntax error per line: the parser's recovery can report a line's mistake several
    // times over (an unclosed array swallows the lines after it).
    let mut lines_seen = std::collections::BTreeSet::new();
    for e in syntax {
        let span = e.span().unwrap_or(0..0);
        if lines_seen.insert(position(ctx.text, span.start).0) {
            ctx.error(span, e.message().trim().to_string());
        }
    }
    for (key, value) in doc.into_inner() {
        if key.get_ref().as_ref() != "service" {
            ctx.error(key.span(), format!("unknown key `{}`: a policy file holds [service.NAME] tables", key.get_ref()));
            continue;
        }
        let span = value.span();
        let DeValue::Table(table) = value.into_inner() else {
            ctx.error(span, "`service` must be a table of services ([service.NAME])".into());
            continue;
        };
        for (name, raw) in table {
            let (span, name) = (name.span(), name.get_ref().to_string());
            let raw_span = raw.span();
            let raw = match RawService::deserialize(ValueDeserializer::from(raw)) {
                Ok(r) => r,
                Err(e) => {
                    // A recovered syntax error can leave a service half-read: its own error
                    // then says nothing new.
                    if !syntax_failed {
                        let msg = e.message().trim().to_string();
                        ctx.error(e.span().unwrap_or(raw_span), msg);
                    }
                    continue;
                }
            };
            if let Some(other) = services.iter().find(|s| s.name == name) {
                let msg = format!("service {name:?} is already defined at {}", other.location);
                ctx.error(span, msg);
                continue;
            }
            if let Some(s) = service(ctx, name, span, raw, today) {
                services.push(s);
            }
        }
    }
}

fn service(ctx: &mut Ctx, name: String, span: Range<usize>, raw: RawService, today: NaiveDate) -> Option<Service> {
    let location = ctx.loc(span.clone());
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        ctx.error(span.clone(), format!("service name {name:?} must be letters, digits, '_' or '-'"));
    }
    let mut tables = Vec::new();
    for t in raw.tables {
        match TablePattern::parse(t.get_ref()) {
            Ok(pattern) => tables.push(TableRule { pattern, location: ctx.loc(t.span()) }),
            Err(e) => ctx.error(t.span(), format!("table pattern {:?}: {e}", t.get_ref())),
        }
    }
    if tables.is_empty() {
        ctx.error(span.clone(), format!("service {name:?} lists no tables"));
    }
    let mut owners = Vec::new();
    let mut owner_any_host = Vec::new();
    for o in raw.owners {
        match AccountName::parse(o.get_ref()) {
            Ok(a) => {
                owner_any_host.push(!o.get_ref().contains('@'));
                owners.push(a);
            }
            Err(e) => ctx.error(o.span(), format!("owner {:?} is not an account ('user'@'host'): {e}", o.get_ref())),
        }
    }
    if owners.is_empty() {
        ctx.error(span.clone(), format!("service {name:?} names no owner account"));
    }
    let mut exempt: Vec<Exemption> = Vec::new();
    for e in raw.exempt {
        let e_span = e.span();
        let e = e.into_inner();
        let account = match AccountName::parse(e.account.get_ref()) {
            Ok(a) => a,
            Err(err) => {
                ctx.error(e.account.span(), format!("exempt account {:?} is not an account ('user'@'host'): {err}", e.account.get_ref()));
                continue;
            }
        };
        if e.reason.get_ref().trim().is_empty() {
            ctx.error(e.reason.span(), "an exemption needs a reason".into());
        }
        let expires = match &e.expires {
            None => None,
            Some(d) => match d.get_ref().date {
                Some(date) if d.get_ref().time.is_none() => NaiveDate::from_ymd_opt(date.year as i32, date.month as u32, date.day as u32),
                _ => {
                    ctx.error(d.span(), "expires must be a date such as 2027-01-31".into());
                    None
                }
            },
        };
        if let Some(day) = expires.filter(|d| *d < today) {
            let msg = format!("the exemption of {account} expired on {day}; it no longer applies");
            ctx.push(Severity::Warning, e.expires.as_ref().map(|d| d.span()).unwrap_or(e_span.clone()), msg);
        }
        if exempt.iter().any(|x| x.account == account) {
            ctx.push(Severity::Warning, e_span.clone(), format!("{account} is exempted twice in service {name:?}"));
        }
        let any_host = !e.account.get_ref().contains('@');
        exempt.push(Exemption { account, any_host, reason: e.reason.into_inner(), expires, location: ctx.loc(e_span) });
    }
    Some(Service { name, description: raw.description, tables, owners, owner_any_host, exempt, location, allow_empty: raw.allow_empty })
}

/// Literal patterns claimed by two services, or matched by another service's pattern, overlap
/// whatever the server holds. (Overlaps between wildcard patterns are checked against the
/// server's tables.)
fn check_overlaps(services: &[Service], diags: &mut Vec<Diagnostic>) {
    for (i, a) in services.iter().enumerate() {
        for b in &services[i + 1..] {
            for rb in &b.tables {
                let Some(t) = rb.pattern.exact() else { continue };
                if let Some(ra) = a.tables.iter().find(|ra| ra.pattern.matches(&t, false)) {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        location: rb.location.clone(),
                        message: format!(
                            "table {} of service {:?} is also claimed by service {:?} ({} at {})",
                            t.sql(),
                            b.name,
                            a.name,
                            ra.pattern,
                            ra.location
                        ),
                    });
                }
            }
            for ra in &a.tables {
                let Some(t) = ra.pattern.exact() else { continue };
                if let Some(rb) = b.tables.iter().find(|rb| rb.pattern.exact().is_none() && rb.pattern.matches(&t, false)) {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        location: rb.location.clone(),
                        message: format!(
                            "pattern {} of service {:?} also matches {}, which service {:?} claims at {}",
                            rb.pattern,
                            b.name,
                            t.sql(),
                            a.name,
                            ra.location
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, text).unwrap();
        match load(&f, today()) {
            Ok(p) => p.warnings.iter().map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message)).collect(),
            Err(e) => e.0.iter().map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message)).collect(),
        }
    }

    const GOOD: &str = r#"
[service.media]
tables = ["shop.media_attachments", "shop.media_*"]
owners = ["'svc_media'@'%'"]

[[service.media.exempt]]
account = "'backup'@'localhost'"
reason  = "nightly logical backup"
expires = 2027-01-31
"#;

    #[test]
    fn the_documented_shape_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, GOOD).unwrap();
        let p = load(&f, today()).unwrap();
        let s = p.service("media").unwrap();
        assert_eq!(s.tables.len(), 2);
        assert!(s.is_owner(&AccountName::new("svc_media", "%")));
        assert!(!s.is_owner(&AccountName::new("svc_media", "localhost")));
        assert!(s.exemption(&AccountName::new("backup", "localhost"), today()).is_some());
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = errors("[service.media]\ntables = [\"shop.t\"\nowners = []\n");
        assert!(e[0].starts_with("3:"), "{e:?}");
    }

    #[test]
    fn unknown_keys_are_located() {
        let e = errors("[service.media]\ntables = [\"shop.t\"]\nowners = [\"a@b\"]\nowner = [\"x\"]\n");
        assert!(e.iter().any(|m| m.starts_with("4:1") && m.contains("unknown field `owner`")), "{e:?}");
    }

    #[test]
    fn malformed_accounts_and_patterns_are_located() {
        let e = errors("[service.media]\ntables = [\"shop.t\", \"nodot\"]\nowners = [\"'svc'@\"]\n");
        assert!(e.iter().any(|m| m.starts_with("2:21") && m.contains("not schema.table")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("3:11") && m.contains("not an account")), "{e:?}");
    }

    #[test]
    fn overlapping_ownership_is_an_error() {
        let e = errors(
            "[service.a]\ntables = [\"shop.media_*\"]\nowners = [\"a\"]\n[service.b]\ntables = [\"shop.media_x\"]\nowners = [\"b\"]\n",
        );
        assert!(e.iter().any(|m| m.starts_with("5:11") && m.contains("also claimed by service \"a\"")), "{e:?}");
    }

    #[test]
    fn expired_exemptions_warn() {
        let e = errors(&GOOD.replace("2027-01-31", "2026-01-31"));
        assert!(e.iter().any(|m| m.starts_with("9:11") && m.contains("expired on 2026-01-31")), "{e:?}");
    }

    /// Issue 14: one run reports every error of a file, each with file:line:column and the
    /// offending line; a malformed service does not hide the next one's errors.
    #[test]
    fn every_error_in_one_run_with_its_line() {
        let text = "\
[service.a]
tables = [\"shop.t\", \"nodot\"]
owners = [\"'svc'@\"]

[service.b]
tables = [\"shop.u\"]
owners = [\"b\"]
colour = \"red\"

[service.c]
tables = [\"shop.v\"]
owners = [\"c\"]
[[service.c.exempt]]
account = \"'x'@'%'\"
reason = \" \"

[other]
x = 1
";
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, text).unwrap();
        let err = load(&f, today()).unwrap_err();
        let lines: Vec<String> = err.0.iter().map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message)).collect();
        assert_eq!(err.0.len(), 6, "{lines:?}");
        for (at, what) in [
            ("1:10", "names no owner account"),
            ("2:21", "not schema.table"),
            ("3:11", "not an account"),
            ("8:1", "unknown field `colour`"),
            ("15:10", "needs a reason"),
            ("17:2", "unknown key `other`"),
        ] {
            assert!(lines.iter().any(|m| m.starts_with(at) && m.contains(what)), "{at} {what}: {lines:?}");
        }
        let shown = err.to_string();
        assert!(shown.contains("the policy has 6 error(s)"), "{shown}");
        // In the file's order.
        let at: Vec<usize> = err.0.iter().map(|d| d.location.line).collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
        assert!(shown.contains(&format!("{}:8:1: error:", f.display())), "{shown}");
        assert!(shown.contains("    | colour = \"red\""), "{shown}");
        assert!(shown.contains("    | tables = [\"shop.t\", \"nodot\"]"), "{shown}");
    }

    #[test]
    fn syntax_errors_and_other_services_errors_together() {
        let e = errors("[service.a]\ntables = [\"shop.t\"]\nowners = [\"a\"]\ndescription = nope\n\n[service.b]\ntables = [\"shop.u\"]\nowners = [\"'b'@\"]\n");
        assert!(e.iter().any(|m| m.starts_with("4:15")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("8:11") && m.contains("not an account")), "{e:?}");
        assert_eq!(e.len(), 3, "{e:?}"); // and "service \"b\" names no owner account"
    }

    #[test]
    fn quoted_names_in_patterns() {
        let e = errors("[service.a]\ntables = [\"`my.db`.`odd*name`\", \"`we``ird`.t_%\"]\nowners = [\"'o''k'@'%'\"]\n");
        assert!(e.is_empty(), "{e:?}");
    }
}
