//! Token-level helpers of the scanner: keywords, punctuation, dotted names, table-name lists,
//! parenthesis matching and the renderings used in `unresolved` messages.

use super::scan::{Factor, Scanner};
use super::tokenize::{Kind, Token};
use super::{words, Op};

impl Scanner<'_> {
    /// A dotted name at `i`: an identifier (unquoted ones must not be reserved) and any number
    /// of `.part`s (reserved words allowed there). Returns the parts and the index after.
    pub fn name_at(&self, i: usize) -> Option<(Vec<String>, usize)> {
        let first = self.t.get(i).filter(|t| t.kind == Kind::Quoted || (t.kind == Kind::Word && !words::is_reserved(&t.text)))?;
        let mut parts = vec![first.text.clone()];
        let mut j = i + 1;
        while self.punct(j, '.') && self.t.get(j + 1).is_some_and(Token::is_ident) {
            parts.push(self.t[j + 1].text.clone());
            j += 2;
        }
        Some((parts, j))
    }

    /// A table name (`t` or `db.t`) at `i`.
    pub fn table_at(&self, i: usize) -> Option<(Factor, usize)> {
        let (parts, j) = self.name_at(i)?;
        let (schema, name, qualified) = match parts.as_slice() {
            [name] => (self.schema.to_string(), name.clone(), false),
            [schema, name] => (schema.clone(), name.clone(), true),
            _ => return None,
        };
        Some((Factor { schema, name, qualified, alias: None, at: i }, j))
    }

    /// Comma-separated table names from `i`, each recorded with `ops`. With `strict`, a missing
    /// first name is reported.
    pub fn name_list(&mut self, mut i: usize, ops: &[Op], strict: bool) -> usize {
        let mut first = true;
        loop {
            let Some((f, j)) = self.table_at(i) else {
                if strict || !first {
                    self.cannot_parse(i);
                }
                return i;
            };
            self.add(&f, ops);
            first = false;
            if !self.punct(j, ',') {
                return j;
            }
            i = j + 1;
        }
    }

    /// Index of the `)` closing the parenthesis group that contains `i` (the statement's end at
    /// top level).
    pub fn group_end(&self, i: usize) -> usize {
        self.parent[i].map_or(self.t.len(), |o| self.close[o])
    }

    /// Index of the `)` matching the `(` at `i` (the statement's end if missing).
    pub fn close_of(&self, i: usize) -> usize {
        self.close.get(i).copied().unwrap_or(self.t.len())
    }

    /// Whether the token at `i` follows a `.`: then it is a name part, never a keyword.
    pub fn after_dot(&self, i: usize) -> bool {
        i > 0 && self.t[i - 1].is_punct('.')
    }

    /// The keyword `w` at `i` (not a name part after a dot).
    pub fn kw(&self, i: usize, w: &str) -> bool {
        self.t.get(i).is_some_and(|t| t.is_word(w)) && !self.after_dot(i)
    }

    /// Any of the keywords `ws` at `i`.
    pub fn kw_any(&self, i: usize, ws: &[&str]) -> bool {
        ws.iter().any(|w| self.kw(i, w))
    }

    /// The punctuation character `c` at `i`.
    pub fn punct(&self, i: usize, c: char) -> bool {
        self.t.get(i).is_some_and(|t| t.is_punct(c))
    }

    /// Reports a table position whose content is not understood.
    pub fn cannot_parse(&mut self, i: usize) {
        let reason = format!("cannot parse table reference near: {}", self.near(i));
        self.out.unresolved(reason);
    }

    /// Reports a statement the scanner does not analyse and skips the rest of it.
    pub fn not_analysed(&mut self, i: usize) -> usize {
        let reason = format!("statement not analysed: {}", self.near(i));
        self.out.unresolved(reason);
        self.t.len()
    }

    /// A short rendering of the tokens from `i`, for messages.
    pub fn near(&self, i: usize) -> String {
        if i >= self.t.len() {
            return "end of statement".into();
        }
        let shown: Vec<String> = self.t[i..].iter().take(8).map(render).collect();
        let mut s: String = shown.join(" ").chars().take(80).collect();
        if i + 8 < self.t.len() {
            s.push_str(" ...");
        }
        s
    }
}

/// A token as it could be written back.
fn render(t: &Token) -> String {
    match t.kind {
        Kind::Quoted => format!("`{}`", t.text.replace('`', "``")),
        Kind::Str => format!("'{}'", t.text.replace('\'', "''")),
        _ => t.text.clone(),
    }
}
