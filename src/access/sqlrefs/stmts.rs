//! Statement handlers of the scanner: one per statement form that names tables outside a plain
//! `FROM`/`JOIN` list. Each starts at its keyword, records what it finds, and returns the index
//! where the ordinary scan resumes (so `INSERT ... SELECT`, `CREATE TABLE ... AS SELECT` and the
//! subqueries of any clause are still scanned). Handlers returning `Option` answer `None` when the
//! word turns out not to start that statement (`TRUNCATE(x, 2)`, a column named `next`).

use super::scan::{Factor, Scanner};
use super::tokenize::Kind;
use super::Op;
use crate::model::RoutineKind;

/// Bound on `PREPARE ... FROM 'literal'` nesting (a literal preparing a literal ...).
const MAX_LEVEL: usize = 4;

impl Scanner<'_> {
    /// `UPDATE [LOW_PRIORITY] [IGNORE] tables SET ...`.
    pub(super) fn update(&mut self, i: usize) -> usize {
        let mut j = i + 1;
        while self.kw_any(j, &["LOW_PRIORITY", "IGNORE"]) {
            j += 1;
        }
        let (end, fs) = self.table_list(j);
        let targets = self.update_targets(end, &fs);
        for (f, target) in fs.iter().zip(targets) {
            self.add(f, &[if target { Op::Update } else { Op::Select }]);
        }
        end
    }

    /// Which tables of a multi-table `UPDATE` are written: those qualifying a column on the left
    /// of a `SET` assignment. An unqualified column or an unknown qualifier makes all of them
    /// targets, which over-reports rather than misses.
    fn update_targets(&self, set: usize, fs: &[Factor]) -> Vec<bool> {
        let all = vec![true; fs.len()];
        if fs.len() < 2 || !self.kw(set, "SET") {
            return all;
        }
        let mut hit = vec![false; fs.len()];
        let mut k = set + 1;
        loop {
            let Some((parts, _)) = self.name_at(k) else { return all };
            let (db, q) = match parts.as_slice() {
                [q, _] => (None, q.as_str()),
                [db, q, _] => (Some(db.as_str()), q.as_str()),
                _ => return all,
            };
            let mut matched = false;
            for (n, f) in fs.iter().enumerate() {
                if f.answers_to(db, q) {
                    hit[n] = true;
                    matched = true;
                }
            }
            if !matched {
                return all;
            }
            match self.next_assignment(k, self.depth[set]) {
                Some(next) => k = next,
                None => return hit,
            }
        }
    }

    /// The start of the assignment after the one at `k` (at depth `d`), if any.
    fn next_assignment(&self, k: usize, d: usize) -> Option<usize> {
        for m in k..self.t.len() {
            if self.depth[m] < d || (self.depth[m] == d && self.kw_any(m, &["WHERE", "ORDER", "LIMIT"])) {
                return None;
            }
            if self.depth[m] == d && self.punct(m, ',') {
                return Some(m + 1);
            }
        }
        None
    }

    /// `INSERT|REPLACE [modifiers] [INTO] t ...`, with `ON DUPLICATE KEY UPDATE` anywhere after.
    pub(super) fn insert(&mut self, i: usize) -> Option<usize> {
        let mut ops = vec![Op::Insert];
        if self.kw(i, "REPLACE") {
            ops.push(Op::Delete);
        }
        let mut j = i + 1;
        while self.kw_any(j, &["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"]) {
            j += 1;
        }
        let (f, k) = self.table_at(j)?; // `CREATE TABLE t REPLACE SELECT ...` has none
        let d = self.depth[i];
        let odku =
            (k..self.t.len()).any(|m| self.depth[m] == d && self.kw(m, "ON") && self.kw(m + 1, "DUPLICATE") && self.kw(m + 2, "KEY"));
        if odku {
            ops.push(Op::Update);
        }
        self.add(&f, &ops);
        Some(k)
    }

    /// `DELETE FROM t ...`, `DELETE FROM a, b USING <tables>`, `DELETE a, b FROM <tables>`.
    pub(super) fn delete(&mut self, i: usize) -> usize {
        let mut j = i + 1;
        while self.kw_any(j, &["LOW_PRIORITY", "QUICK", "IGNORE"]) || (self.kw(j, "HISTORY") && self.kw(j + 1, "FROM")) {
            j += 1;
        }
        if self.kw(j, "FROM") {
            let (k, targets) = self.table_list(j + 1);
            if !self.kw(k, "USING") {
                for f in &targets {
                    self.add(f, &[Op::Delete]);
                }
                return k;
            }
            let (end, read) = self.table_list(k + 1);
            self.delete_targets(&targets, &read);
            return end;
        }
        let mut targets = Vec::new();
        while let Some((f, k)) = self.table_at(j) {
            targets.push(f);
            j = if self.punct(k, '.') && self.punct(k + 1, '*') { k + 2 } else { k };
            if !self.punct(j, ',') {
                break;
            }
            j += 1;
        }
        if targets.is_empty() || !self.kw(j, "FROM") {
            self.cannot_parse(j);
            return j;
        }
        let (end, read) = self.table_list(j + 1);
        self.delete_targets(&targets, &read);
        end
    }

    /// Multi-table `DELETE`: targets are resolved through the names and aliases of the table list
    /// and get `Delete`; the other tables of the list are read. A target matching nothing is
    /// recorded as named.
    fn delete_targets(&mut self, targets: &[Factor], read: &[Factor]) {
        let mut is_target = vec![false; read.len()];
        for t in targets {
            let db = t.qualified.then_some(t.schema.as_str());
            match read.iter().position(|r| r.answers_to(db, &t.name)) {
                Some(n) => is_target[n] = true,
                None => self.add(t, &[Op::Delete]),
            }
        }
        for (r, target) in read.iter().zip(is_target) {
            self.add(r, &[if target { Op::Delete } else { Op::Select }]);
        }
    }

    /// `TRUNCATE [TABLE] t`: deletes every row; the server checks it against `DROP`.
    pub(super) fn truncate(&mut self, i: usize) -> Option<usize> {
        let j = if self.kw(i + 1, "TABLE") { i + 2 } else { i + 1 };
        let (f, k) = self.table_at(j)?;
        if j == i + 1 && k < self.t.len() {
            return None; // `truncate` used as a name
        }
        self.add(&f, &[Op::Delete, Op::Drop]);
        Some(k)
    }

    /// `CREATE|ALTER|DROP [modifiers] TABLE ...` and `... INDEX i ON t`; other objects are
    /// reported as not analysed (their subqueries are still scanned).
    pub(super) fn ddl(&mut self, i: usize) -> usize {
        let mut j = i + 1;
        let modifiers = ["OR", "REPLACE", "TEMPORARY", "ONLINE", "OFFLINE", "IGNORE", "UNIQUE", "FULLTEXT", "SPATIAL"];
        while self.kw_any(j, &modifiers) {
            j += 1;
        }
        if self.kw(j, "TABLE") {
            return self.ddl_table(i, j + 1);
        }
        if self.kw(j, "INDEX") {
            let on = (j + 1..self.t.len()).find(|&m| self.depth[m] == self.depth[i] && self.kw(m, "ON"));
            return match on {
                Some(on) => self.name_list(on + 1, &[Op::Index], true),
                None => {
                    self.cannot_parse(j);
                    j + 1
                }
            };
        }
        if self.kw(i, "DROP") && self.kw(j, "PREPARE") {
            return j + 1;
        }
        let reason = format!("statement not analysed: {}", self.near(i));
        self.out.unresolved(reason);
        j
    }

    fn ddl_table(&mut self, verb: usize, mut j: usize) -> usize {
        while self.kw_any(j, &["IF", "NOT", "EXISTS"]) {
            j += 1;
        }
        if self.kw(verb, "DROP") {
            return self.name_list(j, &[Op::Drop], true);
        }
        let Some((f, k)) = self.table_at(j) else {
            self.cannot_parse(j);
            return j;
        };
        let d = self.depth[verb];
        let later = |w: &str| (k..self.t.len()).find(|&m| self.depth[m] == d && self.kw(m, w));
        if self.kw(verb, "ALTER") {
            let rename = later("RENAME").filter(|&m| !self.kw_any(m + 1, &["COLUMN", "INDEX", "KEY"]));
            self.add(&f, &[Op::Alter]);
            if let Some(m) = rename {
                self.add(&f, &[Op::Drop]);
                let to = if self.kw_any(m + 1, &["TO", "AS"]) { m + 2 } else { m + 1 };
                self.name_list(to, &[Op::Create, Op::Insert], true);
            }
            return k;
        }
        let filled = later("SELECT").is_some() || later("TABLE").is_some();
        self.add(&f, if filled { &[Op::Create, Op::Insert] } else { &[Op::Create] });
        match (self.kw(k, "LIKE"), self.punct(k, '(') && self.kw(k + 1, "LIKE")) {
            (true, _) => self.name_list(k + 1, &[Op::Select], true),
            (_, true) => self.name_list(k + 2, &[Op::Select], true),
            _ => k,
        }
    }

    /// `RENAME TABLE a TO b, c TO d`; `RENAME USER` is not analysed.
    pub(super) fn rename(&mut self, i: usize) -> Option<usize> {
        if self.kw(i + 1, "USER") {
            return Some(self.not_analysed(i));
        }
        if !self.kw_any(i + 1, &["TABLE", "TABLES"]) {
            return None; // the RENAME clause of ALTER TABLE, handled there
        }
        let mut j = i + 2;
        loop {
            let pair = self.table_at(j).and_then(|(old, k)| {
                let (new, m) = self.table_at(k + 1).filter(|_| self.kw(k, "TO"))?;
                Some((old, new, m))
            });
            let Some((old, new, m)) = pair else {
                self.cannot_parse(j);
                return Some(j);
            };
            self.add(&old, &[Op::Alter, Op::Drop]);
            self.add(&new, &[Op::Create, Op::Insert]);
            if !self.punct(m, ',') {
                return Some(m);
            }
            j = m + 1;
        }
    }

    /// `LOAD DATA|XML ... [REPLACE|IGNORE] INTO TABLE t`.
    pub(super) fn load(&mut self, i: usize) -> Option<usize> {
        if !self.kw_any(i + 1, &["DATA", "XML"]) {
            return None;
        }
        let Some(into) = (i + 2..self.t.len()).find(|&m| self.kw(m, "INTO") && self.kw(m + 1, "TABLE")) else {
            self.cannot_parse(i);
            return Some(i + 1);
        };
        let replace = (i + 2..into).any(|m| self.kw(m, "REPLACE"));
        Some(self.name_list(into + 2, if replace { &[Op::Insert, Op::Delete] } else { &[Op::Insert] }, true))
    }

    /// `TABLE`/`TABLES` not consumed by a DDL handler: the `TABLE t` statement (read), or the
    /// maintenance statements `ANALYZE|OPTIMIZE|REPAIR` (select and insert), `CHECK|CHECKSUM|FLUSH`
    /// (select) and `LOCK TABLES` (read, with aliases).
    pub(super) fn table_word(&mut self, i: usize) -> usize {
        let before = |k: usize| if i >= k { self.t[i - k].text.to_ascii_uppercase() } else { String::new() };
        let (p1, p2) = (before(1), before(2));
        let admin = |w: &str| p1 == w || (p2 == w && matches!(p1.as_str(), "LOCAL" | "NO_WRITE_TO_BINLOG"));
        if admin("ANALYZE") || admin("OPTIMIZE") || admin("REPAIR") {
            return self.name_list(i + 1, &[Op::Select, Op::Insert], true);
        }
        if matches!(p1.as_str(), "CHECK" | "CHECKSUM" | "FLUSH") {
            return self.name_list(i + 1, &[Op::Select], false);
        }
        if p1 == "LOCK" {
            return self.read_list(i + 1);
        }
        match self.table_at(i + 1) {
            Some((f, k)) if self.kw(i, "TABLE") => {
                self.add(&f, &[Op::Select]);
                k
            }
            _ => i + 1,
        }
    }

    /// `CALL p` / `CALL db.p(...)`.
    pub(super) fn call(&mut self, i: usize) -> usize {
        let Some((parts, k)) = self.name_at(i + 1) else {
            let reason = format!("cannot parse CALL near: {}", self.near(i));
            self.out.unresolved(reason);
            return i + 1;
        };
        match parts.as_slice() {
            [name] => self.out.routine(self.schema, name, RoutineKind::Procedure),
            [schema, name] => self.out.routine(schema, name, RoutineKind::Procedure),
            _ => self.out.unresolved(format!("cannot parse CALL near: {}", self.near(i))),
        }
        k
    }

    /// `PREPARE s FROM src`, `EXECUTE IMMEDIATE src`, `EXECUTE s`. A literal `src` is analysed as
    /// part of the body; any other source is reported, and so is `EXECUTE` of a statement this
    /// body does not prepare (the session may have prepared anything).
    pub(super) fn dynamic(&mut self, i: usize) -> Option<usize> {
        let t = self.t;
        if self.kw(i, "EXECUTE") && self.kw(i + 1, "IMMEDIATE") {
            self.dynamic_source(i + 2, "EXECUTE IMMEDIATE");
            return Some(i + 2);
        }
        let name = t.get(i + 1).filter(|x| x.is_ident())?;
        let key = name.text.to_lowercase();
        if self.kw(i, "PREPARE") {
            if !self.kw(i + 2, "FROM") {
                return None;
            }
            self.out.prepared.insert(key);
            self.dynamic_source(i + 3, &format!("PREPARE {} FROM", name.text));
            return Some(i + 3);
        }
        if !self.out.prepared.contains(&key) {
            let reason = format!("dynamic SQL: EXECUTE {} runs a statement not prepared in this body", name.text);
            self.out.unresolved(reason);
        }
        Some(i + 2)
    }

    fn dynamic_source(&mut self, j: usize, what: &str) {
        let t = self.t;
        match t.get(j).filter(|x| x.kind == Kind::Str && j + 1 == t.len()) {
            Some(lit) if self.level < MAX_LEVEL => super::collect(&lit.text, self.schema, self.out, self.level + 1),
            _ => {
                let reason = format!("dynamic SQL ({what}): {}", self.near(j));
                self.out.unresolved(reason);
            }
        }
    }

    /// MariaDB sequences, which are tables: `NEXT VALUE FOR s`, `NEXTVAL(s)`, `SETVAL(s, n)`
    /// (insert) and `PREVIOUS VALUE FOR s`, `LASTVAL(s)` (select). The function forms are also
    /// kept as stored-function candidates, since on MySQL they would be.
    pub(super) fn sequence(&mut self, i: usize) -> Option<usize> {
        let word = self.t[i].text.to_ascii_uppercase();
        let at = if self.kw(i + 1, "VALUE") && self.kw(i + 2, "FOR") {
            i + 3
        } else if self.punct(i + 1, '(') && word.ends_with("VAL") {
            self.out.routine(self.schema, &self.t[i].text, RoutineKind::Function);
            i + 2
        } else {
            return None;
        };
        let (f, k) = self.table_at(at)?;
        let op = if matches!(word.as_str(), "NEXT" | "NEXTVAL" | "SETVAL") { Op::Insert } else { Op::Select };
        self.add(&f, &[op]);
        Some(k)
    }
}
