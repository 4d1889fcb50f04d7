//! A tokenizer for MySQL/MariaDB SQL text, as the server reads it with the default `sql_mode`.
//!
//! Backtick identifiers (a doubled backtick is one backtick), single- and double-quoted strings
//! (backslash escapes and doubled quotes; `ANSI_QUOTES` is not assumed, so `"x"` is a string),
//! `-- `, `#` and `/* */` comments, and the executable comments `/*!50001 ... */` and
//! `/*M!100301 ... */`, whose content is read as code whatever the version number says (the
//! conservative choice: more references, never fewer). Unquoted identifiers follow MySQL's rules:
//! ASCII letters, digits, `_`, `$` and every character from U+0080 up, and may start with a digit.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted run of identifier characters: a keyword, an identifier or a number.
    Word,
    /// A backtick-quoted identifier; the text is the name with the quoting removed.
    Quoted,
    /// A string literal; the text is its value with escapes resolved.
    Str,
    /// A user or system variable (`@v`, `@'v'`, `@@global.x`); the text keeps the `@`s.
    Var,
    /// Any other character: punctuation and operators, one character per token.
    Punct,
}

/// One token, with its byte span in the source so statements can be sliced back out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    /// Words as written; identifiers and strings unquoted.
    pub text: String,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// True for an unquoted word equal to `kw`, ignoring ASCII case.
    pub fn is_word(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    /// True for the punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.len() == c.len_utf8() && self.text.starts_with(c)
    }

    /// True for something that can name an object: a word or a backtick identifier.
    pub fn is_ident(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Quoted)
    }
}

/// Why the text could not be read to its end: the tokens before `pos` are still returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Byte offset where the unterminated construct starts.
    pub pos: usize,
    pub message: String,
}

/// Splits `src` into tokens. On an unterminated string, identifier or comment, returns the tokens
/// read so far and the error.
pub(crate) fn tokenize(src: &str) -> (Vec<Token>, Option<LexError>) {
    let mut lx = Lexer { src, chars: src.char_indices().collect(), j: 0, in_exec: false, out: Vec::new() };
    let err = lx.run().err();
    (lx.out, err)
}

/// MySQL's unquoted identifier characters.
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || c as u32 >= 0x80
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    /// Index into `chars` of the next character to read.
    j: usize,
    /// Inside `/*! ... */`: the next `*/` closes it rather than being two operators.
    in_exec: bool,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn ch(&self, j: usize) -> Option<char> {
        self.chars.get(j).map(|&(_, c)| c)
    }

    fn pos(&self, j: usize) -> usize {
        self.chars.get(j).map_or(self.src.len(), |&(p, _)| p)
    }

    fn push(&mut self, kind: Kind, text: String, from: usize) {
        let (start, end) = (self.pos(from), self.pos(self.j));
        self.out.push(Token { kind, text, start, end });
    }

    fn fail(&self, from: usize, what: &str) -> LexError {
        LexError { pos: self.pos(from), message: format!("unterminated {what} at byte {}", self.pos(from)) }
    }

    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.ch(self.j) {
            let next = self.ch(self.j + 1);
            let from = self.j;
            match c {
                c if c.is_ascii_whitespace() => self.j += 1,
                '#' => self.skip_line(),
                '-' if next == Some('-') && self.ch(self.j + 2).is_none_or(|c| c.is_ascii_whitespace() || c.is_control()) => {
                    self.skip_line()
                }
                '/' if next == Some('*') => self.comment()?,
                '*' if next == Some('/') && self.in_exec => {
                    self.in_exec = false;
                    self.j += 2;
                }
                '`' => {
                    self.j += 1;
                    let text = self.quoted('`', false).ok_or_else(|| self.fail(from, "quoted identifier"))?;
                    self.push(Kind::Quoted, text, from);
                }
                '\'' | '"' => {
                    self.j += 1;
                    let text = self.quoted(c, true).ok_or_else(|| self.fail(from, "string literal"))?;
                    self.push(Kind::Str, text, from);
                }
                '@' => self.variable()?,
                c if is_ident_char(c) => {
                    let text = self.take_while(is_ident_char);
                    self.push(Kind::Word, text, from);
                }
                c => {
                    self.j += 1;
                    self.push(Kind::Punct, c.to_string(), from);
                }
            }
        }
        if self.in_exec {
            return Err(self.fail(self.chars.len(), "executable comment (missing */)"));
        }
        Ok(())
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.ch(self.j).filter(|&c| f(c)) {
            s.push(c);
            self.j += 1;
        }
        s
    }

    fn skip_line(&mut self) {
        while self.ch(self.j).is_some_and(|c| c != '\n') {
            self.j += 1;
        }
    }

    /// At `/*`: a plain comment is skipped; an executable one only loses its opener.
    fn comment(&mut self) -> Result<(), LexError> {
        let from = self.j;
        let exec = match (self.ch(self.j + 2), self.ch(self.j + 3)) {
            (Some('!'), _) => Some(3),
            (Some('M'), Some('!')) => Some(4),
            _ => None,
        };
        if let (Some(skip), false) = (exec, self.in_exec) {
            self.j += skip;
            self.take_while(|c| c.is_ascii_digit());
            self.in_exec = true;
            return Ok(());
        }
        self.j += 2;
        loop {
            match (self.ch(self.j), self.ch(self.j + 1)) {
                (Some('*'), Some('/')) => break,
                (None, _) => return Err(self.fail(from, "comment")),
                _ => self.j += 1,
            }
        }
        self.j += 2;
        Ok(())
    }

    /// Reads up to the closing `q` (the opener already consumed); a doubled `q` is one `q`.
    /// With `escapes`, a backslash escapes the next character as in MySQL strings.
    fn quoted(&mut self, q: char, escapes: bool) -> Option<String> {
        let mut s = String::new();
        loop {
            let c = self.ch(self.j)?;
            self.j += 1;
            if c == q {
                if self.ch(self.j) != Some(q) {
                    return Some(s);
                }
                self.j += 1;
                s.push(q);
            } else if c == '\\' && escapes {
                let e = self.ch(self.j)?;
                self.j += 1;
                match e {
                    '0' => s.push('\0'),
                    'b' => s.push('\u{8}'),
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'Z' => s.push('\u{1a}'),
                    '%' | '_' => s.extend(['\\', e]),
                    e => s.push(e),
                }
            } else {
                s.push(c);
            }
        }
    }

    /// `@name`, `@'name'`, `` @`name` ``, `@@name`, `@@global.name`.
    fn variable(&mut self) -> Result<(), LexError> {
        let from = self.j;
        let mut text = String::from("@");
        self.j += 1;
        if self.ch(self.j) == Some('@') {
            text.push('@');
            self.j += 1;
        }
        match self.ch(self.j) {
            Some(q @ ('\'' | '"' | '`')) => {
                self.j += 1;
                let name = self.quoted(q, q != '`').ok_or_else(|| self.fail(from, "variable name"))?;
                text.push_str(&name);
            }
            _ => text.push_str(&self.take_while(|c| is_ident_char(c) || c == '.')),
        }
        self.push(Kind::Var, text, from);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, String)> {
        let (toks, err) = tokenize(src);
        assert_eq!(err, None, "{src}");
        toks.into_iter().map(|t| (t.kind, t.text)).collect()
    }

    fn w(s: &str) -> (Kind, String) {
        (Kind::Word, s.into())
    }

    #[test]
    fn quoting_rules() {
        let cases: &[(&str, Vec<(Kind, String)>)] = &[
            ("`a``b`", vec![(Kind::Quoted, "a`b".into())]),
            ("`t a.b%_\"'`", vec![(Kind::Quoted, "t a.b%_\"'".into())]),
            (r"'it''s \'x\' \\ \n'", vec![(Kind::Str, "it's 'x' \\ \n".into())]),
            (r#""say ""hi"" \"x\"""#, vec![(Kind::Str, "say \"hi\" \"x\"".into())]),
            ("'a\\%b'", vec![(Kind::Str, "a\\%b".into())]),
            ("`\\`", vec![(Kind::Quoted, "\\".into())]),
        ];
        for (src, want) in cases {
            assert_eq!(&kinds(src), want, "{src}");
        }
    }

    #[test]
    fn words_numbers_and_unicode() {
        assert_eq!(kinds("ünï.表 1abc $x"), vec![w("ünï"), (Kind::Punct, ".".into()), w("表"), w("1abc"), w("$x")]);
        assert_eq!(kinds("a-b"), vec![w("a"), (Kind::Punct, "-".into()), w("b")]);
    }

    #[test]
    fn comments_are_skipped() {
        let src = "a -- x\nb # y\nc /* z ; */ d --1\n/*+ hint */ e";
        let got: Vec<String> = kinds(src).into_iter().map(|(_, t)| t).collect();
        assert_eq!(got, ["a", "b", "c", "d", "-", "-", "1", "e"]);
    }

    #[test]
    fn executable_comments_are_code() {
        let got: Vec<String> = kinds("/*!50001 select */ 1 /*M!100301 from*/ t /*!x*/").into_iter().map(|(_, t)| t).collect();
        assert_eq!(got, ["select", "1", "from", "t", "x"]);
        // Outside an executable comment, `*/` is two operators.
        assert_eq!(kinds("*/").len(), 2);
    }

    #[test]
    fn variables() {
        let got: Vec<String> = kinds("@a.b @'x y' @`q` @@global.sql_mode").into_iter().map(|(_, t)| t).collect();
        assert_eq!(got, ["@a.b", "@x y", "@q", "@@global.sql_mode"]);
    }

    #[test]
    fn spans_slice_the_source() {
        let src = "select `a``b` from 'é'";
        let (toks, _) = tokenize(src);
        let spans: Vec<&str> = toks.iter().map(|t| &src[t.start..t.end]).collect();
        assert_eq!(spans, ["select", "`a``b`", "from", "'é'"]);
    }

    #[test]
    fn unterminated_constructs_keep_earlier_tokens() {
        for (src, what) in [
            ("select 'abc", "string"),
            ("select `abc", "identifier"),
            ("select /* abc", "comment"),
            ("select 'ab\\'", "string"),
            ("select /*!50001 abc", "executable"),
        ] {
            let (toks, err) = tokenize(src);
            let err = err.expect(src);
            assert!(err.message.contains(what), "{src}: {}", err.message);
            assert!(toks[0].is_word("SELECT"), "{src}");
        }
    }
}
