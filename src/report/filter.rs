//! `--account PATTERN` / `--exclude-account PATTERN`: which accounts a report shows.
//!
//! Patterns are **globs** on `user@host`, not SQL `LIKE`: host patterns in grants already use
//! `%` and `_` literally (`'app'@'10.0.%'`), so a `LIKE` pattern could not tell a wildcard from
//! a host that contains one. `*` matches any run of characters, `?` one character, and `\`
//! takes the next character literally (`\*`, `\?`, `\\`, `\@`). The pattern is split at its
//! last unescaped `@`: the left side matches the user, the right side the host (a user name may
//! contain `@`; a host does not). Without an `@` the pattern matches the user on any host.
//! Matching is exact otherwise: case-sensitive, `%` and `_` are ordinary characters.
//!
//! An account is shown when it matches one of the `--account` patterns (or none was given) and
//! none of the `--exclude-account` patterns.

use crate::model::AccountName;

/// One glob piece.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    Any,
    One,
}

/// One `user@host` glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGlob {
    user: Vec<Piece>,
    /// `None`: any host.
    host: Option<Vec<Piece>>,
}

impl AccountGlob {
    /// Parses a pattern (never fails: every string is a glob; a trailing `\` is literal).
    pub fn parse(s: &str) -> AccountGlob {
        let mut pieces = Vec::new();
        let mut at = None;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => pieces.push(Piece::Char(chars.next().unwrap_or('\\'))),
                '*' => pieces.push(Piece::Any),
                '?' => pieces.push(Piece::One),
                '@' => {
                    at = Some(pieces.len());
                    pieces.push(Piece::Char('@'));
                }
                c => pieces.push(Piece::Char(c)),
            }
        }
        match at {
            Some(i) => AccountGlob { host: Some(pieces[i + 1..].to_vec()), user: pieces[..i].to_vec() },
            None => AccountGlob { user: pieces, host: None },
        }
    }

    pub fn matches(&self, a: &AccountName) -> bool {
        let user: Vec<char> = a.user.chars().collect();
        if !glob(&self.user, &user) {
            return false;
        }
        match &self.host {
            None => true,
            Some(h) => glob(h, &a.host.chars().collect::<Vec<_>>()),
        }
    }
}

/// Iterative glob matching with backtracking to the last `*` (linear in practice).
fn glob(p: &[Piece], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(Piece::Any) => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(Piece::One) => {
                pi += 1;
                si += 1;
            }
            Some(Piece::Char(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|x| *x == Piece::Any)
}

/// The accounts a report shows.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub include: Vec<AccountGlob>,
    pub exclude: Vec<AccountGlob>,
}

impl AccountFilter {
    pub fn new(include: &[String], exclude: &[String]) -> AccountFilter {
        AccountFilter {
            include: include.iter().map(|s| AccountGlob::parse(s)).collect(),
            exclude: exclude.iter().map(|s| AccountGlob::parse(s)).collect(),
        }
    }

    /// No pattern given: everything is shown.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn shows(&self, a: &AccountName) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(a))) && !self.exclude.iter().any(|g| g.matches(a))
    }

    /// A finding or row with no account: shown unless `--account` asked for particular ones.
    pub fn shows_none(&self) -> bool {
        self.include.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(u: &str, h: &str) -> AccountName {
        AccountName::new(u, h)
    }

    #[test]
    fn globs_on_user_and_host() {
        let g = AccountGlob::parse("app*@10.0.%");
        assert!(g.matches(&a("app_rw", "10.0.%")));
        assert!(!g.matches(&a("app_rw", "10.0.1.%")), "% is literal");
        assert!(AccountGlob::parse("app*").matches(&a("app", "any host")));
        assert!(AccountGlob::parse("r??t@*").matches(&a("root", "::1")));
        assert!(!AccountGlob::parse("root").matches(&a("Root", "localhost")), "case-sensitive");
        assert!(AccountGlob::parse("*@").matches(&a("x", "")));
        assert!(AccountGlob::parse("@*").matches(&a("", "localhost")), "anonymous accounts");
        assert!(AccountGlob::parse("").matches(&a("", "h")));
        assert!(!AccountGlob::parse("").matches(&a("u", "h")));
    }

    #[test]
    fn hostile_names_and_escapes() {
        let hostile = a("we`ird'na\"me %_ ü@x", "10.0.0._");
        assert!(AccountGlob::parse("we`ird'na\"me %_ ü@x@10.0.0._").matches(&hostile), "split at the last @");
        assert!(AccountGlob::parse("we*ü\\@x").matches(&hostile));
        assert!(AccountGlob::parse("*\\*").matches(&a("a*", "h")));
        assert!(!AccountGlob::parse("*\\*").matches(&a("ab", "h")));
        assert!(AccountGlob::parse("a\\?").matches(&a("a?", "h")));
        assert!(!AccountGlob::parse("a\\?").matches(&a("ab", "h")));
    }

    #[test]
    fn include_and_exclude() {
        let f = AccountFilter::new(&["app*".into()], &["app_admin".into()]);
        assert!(f.shows(&a("app_rw", "%")));
        assert!(!f.shows(&a("app_admin", "%")));
        assert!(!f.shows(&a("root", "localhost")));
        assert!(!f.shows_none());
        let f = AccountFilter::new(&[], &["root@*".into()]);
        assert!(!f.shows(&a("root", "::1")) && f.shows(&a("app", "%")) && f.shows_none());
        assert!(AccountFilter::default().is_empty());
    }
}
