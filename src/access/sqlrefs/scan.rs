//! The statement scanner: walks the tokens of one statement and records every table reference.
//!
//! There is no grammar for whole statements. [`Scanner::step`] looks at one token; keywords that
//! introduce table names (`FROM`, `JOIN`, `UPDATE`, ...) hand over to a handler that reads the
//! names and returns where scanning resumes; everything else is stepped over, so subqueries,
//! conditions and compound-statement keywords need no special treatment. Parentheses are tracked
//! by a depth and a match precomputed per token, which is how a table-reference list knows where
//! it ends.

use super::tokenize::{Kind, Token};
use super::{words, Collector, Op};
use crate::model::RoutineKind;

/// Bound on nested table-reference lists (each nesting is a recursive call).
const MAX_NEST: usize = 64;

/// One table in a table-reference list, with the alias other clauses may use for it.
#[derive(Debug, Clone)]
pub(super) struct Factor {
    /// The schema as written, or the default schema.
    pub schema: String,
    pub name: String,
    /// Written with a schema, so a CTE of the same name cannot be meant.
    pub qualified: bool,
    pub alias: Option<String>,
    /// Token index of the name, to tell whether a CTE of the same name is in scope there.
    pub at: usize,
}

impl Factor {
    /// Whether a qualifier `[db.]q` written in another clause (a `SET` column, a `DELETE` target)
    /// designates this table. Lenient on purpose: a near miss is resolved conservatively by the
    /// caller, and the server rejects real ambiguities.
    pub fn answers_to(&self, db: Option<&str>, q: &str) -> bool {
        match db {
            None => self.alias.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(q)) || self.name.eq_ignore_ascii_case(q),
            Some(db) => self.name.eq_ignore_ascii_case(q) && self.schema.eq_ignore_ascii_case(db),
        }
    }
}

/// A CTE name and the token range (exclusive) where it hides tables of the same name.
#[derive(Debug)]
struct Cte {
    name: String,
    from: usize,
    to: usize,
}

/// Scans one statement (the tokens between two `;`) into a [`Collector`].
pub(super) struct Scanner<'a> {
    /// The statement's tokens, without the closing `;`.
    pub t: &'a [Token],
    /// Parenthesis depth of each token; a parenthesis counts at its outer level.
    pub depth: Vec<usize>,
    /// For a `(`, the index of its `)` (the statement's length when missing).
    pub close: Vec<usize>,
    /// The `(` enclosing each token, if any.
    pub parent: Vec<Option<usize>>,
    /// `FROM` tokens that are argument keywords (`EXTRACT(YEAR FROM d)`), not clause starts.
    arg_from: Vec<bool>,
    /// Schema for unqualified names.
    pub schema: &'a str,
    /// CTEs declared so far in this statement, with the token range where each is in scope: an
    /// unqualified reference to one there is no table.
    ctes: Vec<Cte>,
    /// Current nesting of table-reference lists, bounded by [`MAX_NEST`].
    nest: usize,
    /// Nesting of `PREPARE ... FROM 'literal'` bodies being analysed.
    pub level: usize,
    /// Where findings go; shared by all statements of a body.
    pub out: &'a mut Collector,
}

impl<'a> Scanner<'a> {
    /// Prepares a scan of `t`: parenthesis depths and matches, argument `FROM`s; reports
    /// unbalanced parentheses. One pass, so hostile nesting costs linear time.
    pub fn new(t: &'a [Token], schema: &'a str, out: &'a mut Collector, level: usize) -> Self {
        let n = t.len();
        let (mut depth, mut close, mut parent, mut arg_from) = (Vec::with_capacity(n), vec![n; n], vec![None; n], vec![false; n]);
        // Open parentheses: index, and whether `FROM` directly inside is an argument keyword.
        let mut open: Vec<(usize, bool)> = Vec::new();
        let mut balanced = true;
        for (i, tok) in t.iter().enumerate() {
            if tok.is_punct(')') {
                match open.pop() {
                    Some((o, _)) => close[o] = i,
                    None => balanced = false,
                }
            }
            depth.push(open.len());
            parent[i] = open.last().map(|&(o, _)| o);
            arg_from[i] = tok.is_word("FROM") && open.last().is_some_and(|&(_, f)| f);
            if tok.is_punct('(') {
                let f = i > 0 && t[i - 1].kind == Kind::Word && words::has_from_in_args(&t[i - 1].text);
                open.push((i, f));
            }
        }
        let s = Scanner { t, depth, close, parent, arg_from, schema, ctes: Vec::new(), nest: 0, level, out };
        if !balanced || !open.is_empty() {
            let reason = format!("unbalanced parentheses in statement: {}", s.near(0));
            s.out.unresolved(reason);
        }
        s
    }

    /// Scans the whole statement.
    pub fn run(mut self) {
        let mut i = 0;
        while i < self.t.len() {
            i = self.step(i);
        }
    }

    /// Handles the token at `i` and returns the index to continue from (always past `i`).
    pub fn step(&mut self, i: usize) -> usize {
        let tok = &self.t[i];
        if !tok.is_ident() || self.after_dot(i) {
            return i + 1;
        }
        if tok.kind == Kind::Word {
            if let Some(next) = self.keyword(i) {
                return next.max(i + 1);
            }
        }
        self.function_call(i)
    }

    /// Dispatches a keyword to its handler; `None` when the word is not one here.
    fn keyword(&mut self, i: usize) -> Option<usize> {
        let end = self.t.len();
        match self.t[i].text.to_ascii_uppercase().as_str() {
            "FROM" => Some(self.from(i)),
            "JOIN" | "STRAIGHT_JOIN" if !self.select_modifier(i) => Some(self.read_list(i + 1)),
            "UPDATE" if self.verb(i) => Some(self.update(i)),
            "INSERT" | "REPLACE" if self.verb(i) => self.insert(i),
            "DELETE" if self.verb(i) => Some(self.delete(i)),
            "TRUNCATE" => self.truncate(i),
            "CREATE" | "ALTER" | "DROP" => Some(self.ddl(i)),
            "RENAME" => self.rename(i),
            "LOAD" => self.load(i),
            "TABLE" | "TABLES" => Some(self.table_word(i)),
            "REFERENCES" => Some(self.name_list(i + 1, &[Op::References], true)),
            "WITH" => Some(self.with(i)),
            "CALL" => Some(self.call(i)),
            "PREPARE" | "EXECUTE" => self.dynamic(i),
            "NEXT" | "PREVIOUS" | "NEXTVAL" | "LASTVAL" | "SETVAL" => self.sequence(i),
            "SHOW" => Some(end),
            "GRANT" | "REVOKE" => Some(self.not_analysed(i)),
            "SET" if self.kw(i + 1, "PASSWORD") => Some(self.not_analysed(i)),
            _ => None,
        }
    }

    /// A DML keyword starts a statement unless it is a function (`REPLACE(`) or part of another
    /// clause (`ON UPDATE`, `FOR UPDATE`, `KEY UPDATE`, `BEFORE INSERT`, `OR REPLACE`).
    fn verb(&self, i: usize) -> bool {
        let prev = ["ON", "BEFORE", "AFTER", "KEY", "FOR", "OR"];
        let in_clause = i > 0 && prev.iter().any(|w| self.t[i - 1].is_word(w));
        !in_clause && !self.punct(i + 1, '(')
    }

    /// `SELECT [DISTINCT] [HIGH_PRIORITY] STRAIGHT_JOIN ...`: a join hint, not a join.
    fn select_modifier(&self, i: usize) -> bool {
        let prev = ["SELECT", "ALL", "DISTINCT", "DISTINCTROW", "HIGH_PRIORITY"];
        i > 0 && prev.iter().any(|w| self.t[i - 1].is_word(w))
    }

    /// Records `db.f(` and `f(` (unless a built-in) as candidate stored-function calls.
    fn function_call(&mut self, i: usize) -> usize {
        let t = self.t;
        if self.punct(i + 1, '.') && t.get(i + 2).is_some_and(Token::is_ident) && self.punct(i + 3, '(') {
            self.out.routine(&t[i].text, &t[i + 2].text, RoutineKind::Function);
            return i + 3;
        }
        if self.punct(i + 1, '(') && !(t[i].kind == Kind::Word && words::not_stored_function(&t[i].text)) {
            self.out.routine(self.schema, &t[i].text, RoutineKind::Function);
        }
        i + 1
    }

    /// `FROM` starts a list of read tables, except as an argument keyword, in `FROM FIRST` (window
    /// functions) or in MariaDB's `FOR PORTION OF period FROM x TO y`.
    fn from(&mut self, i: usize) -> usize {
        let window = self.kw_any(i + 1, &["FIRST", "LAST"]) && self.kw_any(i + 2, &["OVER", "RESPECT", "IGNORE"]);
        let portion = i >= 3 && self.kw(i - 3, "PORTION") && self.kw(i - 2, "OF");
        if self.arg_from[i] || window || portion {
            return i + 1;
        }
        self.read_list(i + 1)
    }

    /// A table-reference list whose tables are all read.
    pub fn read_list(&mut self, start: usize) -> usize {
        let (end, fs) = self.table_list(start);
        for f in &fs {
            self.add(f, &[Op::Select]);
        }
        end
    }

    /// Reads a table-reference list (`a, b AS x JOIN (c, d) ON ...`) starting at `start`; returns
    /// where it ends and its tables. Derived tables and conditions are scanned on the way, so the
    /// tables of their subqueries are recorded as read directly.
    pub fn table_list(&mut self, start: usize) -> (usize, Vec<Factor>) {
        let mut fs = Vec::new();
        if start >= self.t.len() {
            self.cannot_parse(start);
            return (start, fs);
        }
        if self.nest >= MAX_NEST {
            self.out.unresolved("table references nested too deeply to follow".into());
            return (start + 1, fs);
        }
        self.nest += 1;
        let d = self.depth[start];
        let mut i = self.factor(start, &mut fs);
        while i < self.t.len() && self.depth[i] >= d {
            if self.depth[i] == d {
                if self.kw(i, "FOR") && self.kw_any(i + 1, &["JOIN", "ORDER", "GROUP"]) {
                    i += 2; // index hint scope: USE INDEX FOR JOIN (...)
                    continue;
                }
                if self.list_ends(i) {
                    break;
                }
                if self.punct(i, ',') || self.kw_any(i, &["JOIN", "STRAIGHT_JOIN"]) {
                    i = self.factor(i + 1, &mut fs);
                    continue;
                }
            }
            i = self.step(i);
        }
        self.nest -= 1;
        (i, fs)
    }

    fn list_ends(&self, i: usize) -> bool {
        let t = &self.t[i];
        if t.kind != Kind::Word || self.after_dot(i) {
            return false;
        }
        words::ends_list(&t.text)
            || (t.is_word("FOR") && !self.kw(i + 1, "SYSTEM_TIME"))
            || (t.is_word("USING") && !self.punct(i + 1, '('))
            || (t.is_word("ON") && self.kw(i + 1, "DUPLICATE"))
    }

    /// One table factor at `i`: a name with its alias, a nested join in parentheses (read here),
    /// or a derived table / table function (left for the caller's loop to scan).
    fn factor(&mut self, mut i: usize, fs: &mut Vec<Factor>) -> usize {
        if self.kw(i, "LATERAL") {
            i += 1;
        } else if self.punct(i, '{') && self.kw(i + 1, "OJ") {
            i += 2; // ODBC `{OJ a LEFT JOIN b ON ...}`
        }
        if self.punct(i, '(') {
            let mut k = i;
            while self.punct(k, '(') {
                k += 1;
            }
            if self.kw_any(k, &["SELECT", "WITH", "VALUES", "TABLE"]) {
                return i;
            }
            let (end, inner) = self.table_list(i + 1);
            fs.extend(inner);
            return end;
        }
        if self.t.get(i).is_some_and(Token::is_ident) && self.punct(i + 1, '(') {
            return i + 1; // JSON_TABLE(...)
        }
        if self.kw(i, "DUAL") {
            return i + 1;
        }
        match self.table_at(i) {
            Some((mut f, j)) => {
                let (j, alias) = self.alias(j);
                f.alias = alias;
                fs.push(f);
                j
            }
            None => {
                self.cannot_parse(i);
                i
            }
        }
    }

    /// An optional `PARTITION (...)` and alias after a table name.
    fn alias(&self, mut j: usize) -> (usize, Option<String>) {
        if self.kw(j, "PARTITION") && self.punct(j + 1, '(') {
            j = self.close_of(j + 1) + 1;
        }
        if self.kw(j, "AS") && self.t.get(j + 1).is_some_and(Token::is_ident) {
            return (j + 2, Some(self.t[j + 1].text.clone()));
        }
        match self.t.get(j) {
            Some(t) if t.kind == Kind::Quoted || (t.kind == Kind::Word && !words::is_reserved(&t.text) && !words::ends_list(&t.text)) => {
                (j + 1, Some(t.text.clone()))
            }
            _ => (j, None),
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS (...), ...`: remembers the CTE names and their scope
    /// (to the end of the enclosing parentheses); the bodies are scanned by the ordinary loop.
    fn with(&mut self, i: usize) -> usize {
        let t = self.t;
        let recursive = self.kw(i + 1, "RECURSIVE");
        let mut j = if recursive { i + 2 } else { i + 1 };
        while let Some(name) = t.get(j).filter(|x| x.is_ident()) {
            let mut k = j + 1;
            if self.punct(k, '(') {
                k = self.close_of(k) + 1;
            }
            if !(self.kw(k, "AS") && self.punct(k + 1, '(')) {
                break;
            }
            let close = self.close_of(k + 1);
            // Without RECURSIVE, the name inside its own body means the base table.
            let from = if recursive { j } else { close };
            self.ctes.push(Cte { name: name.text.clone(), from, to: self.group_end(i) });
            if !self.punct(close + 1, ',') {
                break;
            }
            j = close + 2;
        }
        i + 1
    }

    /// Records a table unless it is an unqualified reference to a CTE of this statement.
    pub fn add(&mut self, f: &Factor, ops: &[Op]) {
        let cte = |c: &Cte| c.name == f.name && c.from < f.at && f.at < c.to;
        if f.qualified || !self.ctes.iter().any(cte) {
            self.out.table(&f.schema, &f.name, ops);
        }
    }
}
