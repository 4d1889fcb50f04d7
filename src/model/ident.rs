//! Names and quoting: identifiers, string literals, accounts, tables, and grant schema patterns.
//!
//! Every piece of SQL privfence renders goes through these functions. Schema names in grants are
//! *patterns* (`_` and `%` are wildcards, `\` escapes), table names are not.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Quotes an identifier with backticks, doubling embedded backticks.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// Quotes a string literal. privfence sets its sessions' `sql_mode` without `NO_BACKSLASH_ESCAPES`
/// and `ANSI_QUOTES`, so backslash escapes are in force.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A server account (`'user'@'host'`) or a role (MariaDB roles have an empty host).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountName {
    pub user: String,
    pub host: String,
}

impl AccountName {
    pub fn new(user: impl Into<String>, host: impl Into<String>) -> Self {
        AccountName { user: user.into(), host: host.into() }
    }

    /// SQL form: `'user'@'host'`.
    pub fn sql(&self) -> String {
        format!("{}@{}", quote_str(&self.user), quote_str(&self.host))
    }

    /// SQL form for a MariaDB role, which has no host part: `'role'`.
    pub fn sql_role(&self) -> String {
        if self.host.is_empty() {
            quote_str(&self.user)
        } else {
            self.sql()
        }
    }

    /// True for anonymous accounts (`''@'host'`).
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty()
    }

    /// Parses `'u'@'h'`, `` `u`@`h` ``, `"u"@"h"`, `u@h` or a bare `u` (host `%`).
    pub fn parse(s: &str) -> Result<AccountName, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty account name".into());
        }
        let (user, rest) = parse_part(s)?;
        let rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(AccountName::new(user, "%"));
        }
        let rest = rest.strip_prefix('@').ok_or_else(|| format!("expected '@' after the user name in {s:?}"))?;
        let (host, tail) = parse_part(rest.trim_start())?;
        if !tail.trim().is_empty() {
            return Err(format!("unexpected text {:?} after the account name", tail.trim()));
        }
        Ok(AccountName::new(user, host))
    }
}

/// Reads one quoted or bare part of an account name; returns it and the remaining text.
fn parse_part(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, q @ ('\'' | '"' | '`'))) => {
            let mut out = String::new();
            let mut iter = s[1..].char_indices().peekable();
            while let Some((i, c)) = iter.next() {
                if c == q {
                    if matches!(iter.peek(), Some((_, n)) if *n == q) {
                        out.push(q);
                        iter.next();
                        continue;
                    }
                    return Ok((out, &s[1 + i + 1..]));
                }
                if c == '\\' && q != '`' {
                    if let Some((_, n)) = iter.next() {
                        out.push(n);
                        continue;
                    }
                }
                out.push(c);
            }
            Err(format!("unterminated quote in account name {s:?}"))
        }
        Some(_) => {
            let end = s.find('@').unwrap_or(s.len());
            let part = s[..end].trim();
            if part.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"' || c == '`') {
                return Err(format!("account name part {part:?} needs quoting"));
            }
            Ok((part.to_string(), &s[end..]))
        }
        None => Err("empty account name".into()),
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A schema-qualified table (or view) name. Names are exact, never patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName { schema: schema.into(), name: name.into() }
    }

    /// SQL form: `` `schema`.`name` ``.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A schema name as stored in a grant table (`mysql.db.Db`): a LIKE-style pattern where `_` and
/// `%` are wildcards and `\` escapes the next character, unless the server treats it literally
/// (MySQL with `partial_revokes=ON`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaPattern(pub String);

impl SchemaPattern {
    /// The pattern that matches exactly one schema name (escapes `_`, `%` and `\`).
    pub fn exact(schema: &str) -> SchemaPattern {
        let mut out = String::with_capacity(schema.len());
        for c in schema.chars() {
            if matches!(c, '_' | '%' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        SchemaPattern(out)
    }

    /// True when the pattern contains an unescaped wildcard.
    pub fn is_wildcard(&self) -> bool {
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '%' | '_' => return true,
                _ => {}
            }
        }
        false
    }

    /// The literal schema name when the pattern has no wildcard (escapes removed).
    pub fn literal(&self) -> Option<String> {
        if self.is_wildcard() {
            return None;
        }
        Some(unescape(&self.0))
    }

    /// Does this pattern match `schema`? `case_insensitive` follows `lower_case_table_names`;
    /// `literal` is MySQL's `partial_revokes=ON`, under which wildcards are plain characters.
    pub fn matches(&self, schema: &str, case_insensitive: bool, literal: bool) -> bool {
        if literal && !case_insensitive && !self.0.contains('\\') {
            return self.0 == schema;
        }
        // Asked once per account and table at 10,000 accounts: ASCII names (the usual case)
        // are matched byte by byte, without copies when case-sensitive.
        if !literal && self.0.is_ascii() && schema.is_ascii() {
            if !case_insensitive {
                return wild_match(self.0.as_bytes(), schema.as_bytes());
            }
            return wild_match(self.0.to_ascii_lowercase().as_bytes(), schema.to_ascii_lowercase().as_bytes());
        }
        let fold = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_string() };
        if literal {
            return fold(&unescape(&self.0)) == fold(schema);
        }
        let pat: Vec<char> = fold(&self.0).chars().collect();
        let text: Vec<char> = fold(schema).chars().collect();
        wild_match(&pat, &text)
    }

    /// The server's ordering key for a grant row's schema part (higher sorts first): 128 for a
    /// name with no wildcard, else the byte position of the first wildcard (1-based, capped at
    /// 127), 0 for the empty name. Same as `get_sort` in both servers.
    pub fn sort_key(&self) -> u32 {
        wildcard_sort_key(&self.0)
    }

    /// SQL form for the `ON db.*` clause: the pattern, backtick-quoted, escapes kept.
    pub fn sql(&self) -> String {
        quote_ident(&self.0)
    }
}

impl fmt::Display for SchemaPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sort key of a host, user or schema pattern as the servers compute it (see [`SchemaPattern::sort_key`]).
pub fn wildcard_sort_key(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut chars = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() {
            i += 1;
        } else if b == b'%' || b == b'_' {
            return ((i + 1) as u32).min(127);
        }
        chars = 128;
        i += 1;
    }
    chars
}

/// Orders host patterns the way the servers order account rows: more specific first.
pub fn host_specificity_cmp(a: &str, b: &str) -> Ordering {
    wildcard_sort_key(b).cmp(&wildcard_sort_key(a))
}

/// Removes `\` escapes.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The wildcard symbols of a LIKE pattern, as characters or as ASCII bytes.
trait Wild: Copy + PartialEq {
    const ANY: Self;
    const ONE: Self;
    const ESCAPE: Self;
}

impl Wild for char {
    const ANY: char = '%';
    const ONE: char = '_';
    const ESCAPE: char = '\\';
}

impl Wild for u8 {
    const ANY: u8 = b'%';
    const ONE: u8 = b'_';
    const ESCAPE: u8 = b'\\';
}

/// LIKE-style match: `%` any run, `_` one character, `\` escapes (on bytes only for ASCII text,
/// where a byte is a character).
fn wild_match<T: Wild>(pat: &[T], text: &[T]) -> bool {
    // Iterative matcher with backtracking to the last `%`.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() {
            let c = pat[p];
            if c == T::ANY {
                star = Some((p, t));
                p += 1;
                continue;
            }
            if c == T::ONE {
                p += 1;
                t += 1;
                continue;
            }
            if c == T::ESCAPE && p + 1 < pat.len() && pat[p + 1] == text[t] {
                p += 2;
                t += 1;
                continue;
            }
            if c == text[t] {
                p += 1;
                t += 1;
                continue;
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == T::ANY {
        p += 1;
    }
    p == pat.len()
}

/// Does a host pattern (`%`, `10.0.%`, `localhost`) match a concrete client host or address?
pub fn host_matches(pattern: &str, client: &str) -> bool {
    let pat: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = client.to_lowercase().chars().collect();
    wild_match(&pat, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_schema_patterns_match_as_the_character_matcher_does() {
        let char_match = |p: &str, t: &str, ci: bool| {
            let f = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
            wild_match(&f(p).chars().collect::<Vec<_>>(), &f(t).chars().collect::<Vec<_>>())
        };
        let patterns = ["shop", "sh%", "s_op", "sh\\_p", "%", "", "a\\%b", "Shop%", "%op", "s%o%p", "shop\\"];
        let texts = ["shop", "SHOP", "sh_p", "shxp", "", "a%b", "axb", "shopping", "s\\op"];
        for p in patterns {
            for t in texts {
                for ci in [false, true] {
                    let pat = SchemaPattern(p.to_string());
                    assert_eq!(pat.matches(t, ci, false), char_match(p, t, ci), "{p:?} on {t:?}, ci {ci}");
                    assert_eq!(
                        pat.matches(t, ci, true),
                        if ci { unescape(p).to_lowercase() == t.to_lowercase() } else { unescape(p) == t }
                    );
                }
            }
        }
        // Non-ASCII keeps character semantics: `_` is one character, not one byte.
        assert!(SchemaPattern("caf_".into()).matches("café", false, false));
        assert!(SchemaPattern("CAFÉ".into()).matches("café", true, false));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_str("it's \\ x"), "'it\\'s \\\\ x'");
    }

    #[test]
    fn account_parsing() {
        assert_eq!(AccountName::parse("'svc'@'%'").unwrap(), AccountName::new("svc", "%"));
        assert_eq!(AccountName::parse("`a``b`@`h`").unwrap(), AccountName::new("a`b", "h"));
        assert_eq!(AccountName::parse("svc@localhost").unwrap(), AccountName::new("svc", "localhost"));
        assert_eq!(AccountName::parse("svc").unwrap(), AccountName::new("svc", "%"));
        assert_eq!(AccountName::parse("'o''k'@'%'").unwrap(), AccountName::new("o'k", "%"));
        assert!(AccountName::parse("'svc'@").is_err());
        assert!(AccountName::parse("'svc").is_err());
        assert!(AccountName::parse("'a' x").is_err());
    }

    #[test]
    fn schema_patterns() {
        let p = SchemaPattern("sho_".into());
        assert!(p.is_wildcard());
        assert!(p.matches("shop", false, false));
        assert!(!p.matches("shop", false, true));
        let e = SchemaPattern::exact("main_db");
        assert_eq!(e.0, "main\\_db");
        assert!(!e.is_wildcard());
        assert!(e.matches("main_db", false, false));
        assert!(!e.matches("mainXdb", false, false));
        assert_eq!(e.literal().as_deref(), Some("main_db"));
        assert!(SchemaPattern("%".into()).matches("anything", false, false));
        assert!(SchemaPattern("shop%".into()).matches("shop", false, false));
        assert!(SchemaPattern("a%b%c".into()).matches("aXXbYbc", false, false));
        assert!(!SchemaPattern("a%b%c".into()).matches("aXXbYbd", false, false));
        assert!(SchemaPattern("Shop".into()).matches("shop", true, false));
        assert!(!SchemaPattern("Shop".into()).matches("shop", false, false));
    }

    #[test]
    fn sort_keys_follow_the_server() {
        assert_eq!(wildcard_sort_key("shop"), 128);
        assert_eq!(wildcard_sort_key("sho_"), 4);
        assert_eq!(wildcard_sort_key("%"), 1);
        assert_eq!(wildcard_sort_key(""), 0);
        assert_eq!(wildcard_sort_key("main\\_db"), 128);
        assert!(host_specificity_cmp("localhost", "%").is_lt());
        assert!(host_matches("127.0.0.%", "127.0.0.2"));
        assert!(!host_matches("127.0.0.1", "127.0.0.2"));
    }
}
