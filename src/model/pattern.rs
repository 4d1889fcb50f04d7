//! Table patterns as users write them: `shop.media_*`, `` `my.db`.`odd*name` ``.
//!
//! `*` is the only wildcard (any run of characters); `_` and `%` are literal, unlike in grant
//! schema names. A backtick-quoted part is fully literal (`*` and `.` included); doubled
//! backticks stand for one. Matching follows the server's `lower_case_table_names`.

use super::ident::TableName;
use serde::{Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Star,
}

/// One side (schema or table) of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Vec<Piece>);

impl Glob {
    /// True when the glob has no `*`.
    pub fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Star => return None,
            }
        }
        Some(s)
    }

    pub fn matches(&self, text: &str, case_insensitive: bool) -> bool {
        let fold = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_string() };
        let text: Vec<char> = fold(text).chars().collect();
        // Flatten to chars with a marker for `*`.
        let mut pat: Vec<Option<char>> = Vec::new();
        for p in &self.0 {
            match p {
                Piece::Lit(l) => pat.extend(fold(l).chars().map(Some)),
                Piece::Star => pat.push(None),
            }
        }
        glob_match(&pat, &text)
    }
}

fn glob_match(pat: &[Option<char>], text: &[char]) -> bool {
    let (mut p, mut t, mut star) = (0, 0, None::<(usize, usize)>);
    while t < text.len() {
        if p < pat.len() && pat[p] == Some(text[t]) {
            p += 1;
            t += 1;
        } else if p < pat.len() && pat[p].is_none() {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|c| c.is_none())
}

/// `schema.table` with `*` wildcards on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePattern {
    pub schema: Glob,
    pub table: Glob,
    /// The text as written, for messages.
    pub text: String,
}

impl TablePattern {
    /// Parses `schema.table`; errors name the character position (1-based) of the problem.
    pub fn parse(s: &str) -> Result<TablePattern, String> {
        let chars: Vec<char> = s.trim().chars().collect();
        let mut sides: Vec<Vec<Piece>> = vec![Vec::new()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let cur = sides.last_mut().expect("at least one side");
            match c {
                '`' => {
                    let start = i;
                    let mut lit = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("unterminated backtick quote starting at column {}", start + 1)),
                            Some('`') if chars.get(i + 1) == Some(&'`') => {
                                lit.push('`');
                                i += 2;
                            }
                            Some('`') => break,
                            Some(&ch) => {
                                lit.push(ch);
                                i += 1;
                            }
                        }
                    }
                    cur.push(Piece::Lit(lit));
                }
                '.' => {
                    if sides.len() == 2 {
                        return Err(format!("more than one '.' at column {} (quote names containing '.' with backticks)", i + 1));
                    }
                    sides.push(Vec::new());
                }
                '*' => cur.push(Piece::Star),
                c if c.is_whitespace() => return Err(format!("space at column {} (quote names containing spaces with backticks)", i + 1)),
                c => match cur.last_mut() {
                    Some(Piece::Lit(l)) if !matches!(chars.get(i.wrapping_sub(1)), Some('`')) => l.push(c),
                    _ => cur.push(Piece::Lit(c.to_string())),
                },
            }
            i += 1;
        }
        if sides.len() != 2 {
            return Err(format!("{s:?} is not schema.table"));
        }
        let table = sides.pop().expect("two sides");
        let schema = sides.pop().expect("two sides");
        if schema.is_empty() || table.is_empty() {
            return Err(format!("{s:?} has an empty schema or table part"));
        }
        Ok(TablePattern { schema: Glob(schema), table: Glob(table), text: s.trim().to_string() })
    }

    pub fn matches(&self, t: &TableName, case_insensitive: bool) -> bool {
        self.schema.matches(&t.schema, case_insensitive) && self.table.matches(&t.name, case_insensitive)
    }

    /// The exact table when the pattern has no wildcard.
    pub fn exact(&self) -> Option<TableName> {
        Some(TableName::new(self.schema.literal()?, self.table.literal()?))
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for TablePattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, schema: &str, table: &str) -> bool {
        TablePattern::parse(p).unwrap().matches(&TableName::new(schema, table), false)
    }

    #[test]
    fn wildcards() {
        assert!(m("shop.media_*", "shop", "media_attachments"));
        assert!(!m("shop.media_*", "shop", "mediaX"));
        assert!(m("shop.media_*", "shop", "media_"));
        assert!(!m("shop.media%", "shop", "media_x"));
        assert!(m("shop.media%", "shop", "media%"));
        assert!(m("*.*", "a", "b"));
        assert!(m("s*p.*s", "shop", "orders"));
    }

    #[test]
    fn quoting() {
        assert!(m("`my.db`.`odd*name`", "my.db", "odd*name"));
        assert!(!m("`my.db`.`odd*name`", "my.db", "oddXname"));
        assert!(m("`we``ird`.t", "we`ird", "t"));
        assert!(m("`shop`.media_*", "shop", "media_x"));
        assert!(m("ünï.表", "ünï", "表"));
        assert_eq!(TablePattern::parse("shop.t").unwrap().exact(), Some(TableName::new("shop", "t")));
    }

    #[test]
    fn errors() {
        assert!(TablePattern::parse("shop").unwrap_err().contains("not schema.table"));
        assert!(TablePattern::parse("a.b.c").unwrap_err().contains("column 4"));
        assert!(TablePattern::parse("`a.b").unwrap_err().contains("column 1"));
        assert!(TablePattern::parse("a b.c").unwrap_err().contains("column 2"));
    }
}
