//! Tab-separated values (`--format tsv`): one header line, then one line per row. Names are
//! raw (an account is two columns, `user` and `host`; a table is `schema` and `table`), so a
//! script never has to unquote SQL. In a field, backslash, tab, newline and carriage return are
//! written `\\`, `\t`, `\n`, `\r`, as `mysql --batch` prints them; nothing else is changed, so
//! `%`, `_`, quotes, backticks, spaces and non-ASCII text pass through as they are.

/// Escapes one field.
pub fn field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`field`] (for tests and scripts written in Rust).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// A TSV document being built.
pub struct Tsv {
    text: String,
}

impl Tsv {
    /// Starts a document with its header line.
    pub fn new(header: &[&str]) -> Tsv {
        let mut t = Tsv { text: String::new() };
        t.row(header.iter().map(|h| h.to_string()).collect());
        t
    }

    /// Adds a row (fields are escaped here).
    pub fn row(&mut self, fields: Vec<String>) {
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        self.text.push_str(&line.join("\t"));
        self.text.push('\n');
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "a\tb", "new\nline", "back\\slash", "`q'\"%_ ü", "\\t literal", "cr\r"] {
            let f = field(s);
            assert!(!f.contains('\t') && !f.contains('\n'), "{f:?}");
            assert_eq!(unescape(&f), s);
        }
        let mut t = Tsv::new(&["user", "host"]);
        t.row(vec!["a\tb".into(), "%".into()]);
        assert_eq!(t.finish(), "user\thost\na\\tb\t%\n");
    }
}
