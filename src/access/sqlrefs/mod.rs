//! Which tables and routines a stored object's body reaches: view definitions, procedure and
//! function bodies, trigger actions and event bodies.
//!
//! A `SQL SECURITY DEFINER` object lets its callers touch whatever its body touches with the
//! definer's privileges, so [`extract`] must not miss a table: whatever it cannot follow lands in
//! [`BodyRefs::unresolved`] with a reason, never silently dropped. It is a scanner over real
//! tokens (`tokenize`), not a full parser: it looks for the places a table name can stand
//! (`FROM`, `JOIN`, `UPDATE`, `INSERT INTO`, `DELETE`, DDL, ...) wherever they occur, so compound
//! statements (`BEGIN ... END`, `IF`, loops, handlers, cursors) and subqueries in any clause need
//! no grammar of their own.
//!
//! # Layout
//!
//! - `tokenize`: identifiers, strings, comments and executable comments.
//! - `words`: reserved words, clause ends and common built-in functions.
//! - `scan`: the statement scanner: table-reference lists, aliases, CTE names, function calls.
//! - `names`: token helpers: keywords, dotted names, parentheses, message renderings.
//! - `stmts`: one handler per statement form (`UPDATE`, `DELETE`, DDL, dynamic SQL, ...).
//!
//! # Limits
//!
//! Names come out as written (the caller applies `lower_case_table_names`); unqualified ones get
//! the default schema. Dynamic SQL built from expressions, DDL on objects other than tables and
//! indexes, `GRANT`/`REVOKE` and anything unparseable in a table position are reported unresolved.
//! `PREPARE ... FROM 'literal'` and `EXECUTE IMMEDIATE 'literal'` are analysed as part of the body.
//! In a multi-table `UPDATE`, the written tables are those qualifying a `SET` column; an
//! unqualified or unknown qualifier makes every table of the `UPDATE` a target. Version-gated
//! executable comments (`/*!80000 ... */`) are always read as code. Views a body names come out
//! as tables (the caller follows them), and what the server does on the body's behalf (triggers
//! fired by its writes, foreign-key cascades) is for the caller to derive from the inventory.

mod names;
mod scan;
mod stmts;
mod tokenize;
mod words;

#[cfg(test)]
mod tests;

use crate::model::{RoutineKind, TableName};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tokenize::Token;

/// What a body does to a table, named after the privilege the server checks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Read in a `FROM`/`JOIN`/subquery position, `TABLE t`, `CREATE TABLE ... LIKE t`.
    Select,
    /// `INSERT`, `REPLACE`, `LOAD DATA`, `CREATE TABLE ... SELECT`, new name of a rename.
    Insert,
    /// Target of `UPDATE` or of `INSERT ... ON DUPLICATE KEY UPDATE`.
    Update,
    /// Target of `DELETE`, `REPLACE`, `LOAD DATA ... REPLACE` or `TRUNCATE`.
    Delete,
    /// `CREATE TABLE`, new name of a rename.
    Create,
    /// `DROP TABLE`, `TRUNCATE` (which the server checks against `DROP`), old name of a rename.
    Drop,
    /// `ALTER TABLE`, old name of a rename.
    Alter,
    /// `CREATE INDEX ... ON t`, `DROP INDEX ... ON t`.
    Index,
    /// Parent table of a foreign key (`REFERENCES t`).
    References,
}

impl Op {
    /// The privilege checked for this access, as `SHOW GRANTS` spells it.
    pub fn privilege(self) -> &'static str {
        match self {
            Op::Select => "SELECT",
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
            Op::Create => "CREATE",
            Op::Drop => "DROP",
            Op::Alter => "ALTER",
            Op::Index => "INDEX",
            Op::References => "REFERENCES",
        }
    }
}

/// One table the body touches, with everything it does to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
    /// Never empty.
    pub ops: BTreeSet<Op>,
}

impl TableRef {
    /// The table as a model name.
    pub fn table(&self) -> TableName {
        TableName::new(&self.schema, &self.name)
    }
}

/// A routine the body calls: `CALL p` (certain) or `f(...)` in an expression (a candidate: the
/// caller keeps it only if a stored function of that name exists).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RoutineRef {
    pub schema: String,
    pub name: String,
    /// [`RoutineKind::Procedure`] or [`RoutineKind::Function`].
    pub kind: RoutineKind,
}

/// Everything [`extract`] found in one body.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BodyRefs {
    /// One entry per table, sorted by schema and name.
    pub tables: Vec<TableRef>,
    /// `CALL` targets and function-call candidates, sorted, without duplicates.
    pub routines: Vec<RoutineRef>,
    /// Why the table set may be incomplete, in the order found; empty when the body was followed
    /// in full.
    pub unresolved: Vec<String>,
}

impl BodyRefs {
    /// True when nothing was left unresolved, so `tables` is everything the body can touch.
    pub fn is_complete(&self) -> bool {
        self.unresolved.is_empty()
    }
}

/// Finds the tables a body reads and writes and the routines it calls. Unqualified names are
/// resolved against `default_schema` (the schema the object belongs to).
pub fn extract(body: &str, default_schema: &str) -> BodyRefs {
    let mut out = Collector::default();
    collect(body, default_schema, &mut out, 0);
    out.finish()
}

/// Splits a body into its statements at each `;` outside strings and comments, trimmed, as they
/// are written (comments inside a statement are kept). `BEGIN ... END` is not a unit: its inner
/// statements come out one by one, with the compound keywords that precede them. An unterminated
/// string or comment runs to the end of the last statement.
pub fn split_statements(body: &str) -> Vec<String> {
    let (toks, err) = tokenize::tokenize(body);
    let tail_from = match &err {
        Some(_) => toks.iter().rev().find(|t| t.is_punct(';')).map_or(0, |t| t.end),
        None => body.len(),
    };
    let mut out: Vec<String> =
        statements(&toks).filter(|s| s[0].start < tail_from).map(|s| body[s[0].start..s[s.len() - 1].end].to_string()).collect();
    let tail = body[tail_from..].trim();
    if !tail.is_empty() {
        out.push(tail.to_string());
    }
    out
}

/// The non-empty token runs between `;`. A `;` is never valid inside parentheses, so splitting at
/// every one keeps a missing `)` from swallowing the rest of the body.
fn statements(toks: &[Token]) -> impl Iterator<Item = &[Token]> {
    toks.split(|t| t.is_punct(';')).filter(|s| !s.is_empty())
}

/// Scans `body` into `out`; `level` counts nested `PREPARE ... FROM 'literal'` bodies.
fn collect(body: &str, default_schema: &str, out: &mut Collector, level: usize) {
    let (toks, err) = tokenize::tokenize(body);
    if let Some(e) = err {
        out.unresolved(format!("cannot read the body to its end: {}", e.message));
    }
    for stmt in statements(&toks) {
        scan::Scanner::new(stmt, default_schema, out, level).run();
    }
}

/// What the scanner has found so far in one body, merged.
#[derive(Debug, Default)]
struct Collector {
    tables: BTreeMap<(String, String), BTreeSet<Op>>,
    routines: BTreeSet<RoutineRef>,
    unresolved: Vec<String>,
    /// Prepared-statement names (lowercase) this body prepares, so an `EXECUTE` of one is not
    /// reported again: its `PREPARE` was analysed or reported already.
    prepared: BTreeSet<String>,
}

impl Collector {
    fn table(&mut self, schema: &str, name: &str, ops: &[Op]) {
        self.tables.entry((schema.to_string(), name.to_string())).or_default().extend(ops);
    }

    fn routine(&mut self, schema: &str, name: &str, kind: RoutineKind) {
        self.routines.insert(RoutineRef { schema: schema.to_string(), name: name.to_string(), kind });
    }

    fn unresolved(&mut self, reason: String) {
        if !self.unresolved.contains(&reason) {
            self.unresolved.push(reason);
        }
    }

    fn finish(self) -> BodyRefs {
        let tables = self.tables.into_iter().map(|((schema, name), ops)| TableRef { schema, name, ops }).collect();
        BodyRefs { tables, routines: self.routines.into_iter().collect(), unresolved: self.unresolved }
    }
}
