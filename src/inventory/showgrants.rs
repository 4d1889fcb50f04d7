//! Normalises `SHOW GRANTS`-style statements into comparable atoms.
//!
//! This is a cross-check, not a source of truth: the model is read from the grant tables. Each
//! statement becomes a set of atoms such as `` `shop`.* SELECT ``, `` *.* BACKUP_ADMIN WITH GRANT
//! OPTION `` or `ROLE 'r'@'%'`. Both the server's `SHOW GRANTS` lines and the model's rendered
//! statements go through the same parser, so quoting and grouping differences vanish.
//! Credentials (`IDENTIFIED BY PASSWORD '...'`) end the parse and never reach an atom.

use crate::db::Flavour;
use crate::model::ident::{quote_ident, unescape};
use crate::model::privilege::{PrivSet, Privilege};
use crate::model::AccountName;
use std::collections::BTreeSet;

pub use crate::model::privilege::PrivilegeLevels as AllPrivileges;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, '`' | '\'' | '"') {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else { return Err("unterminated quote".into()) };
                if d == c && chars.get(i + 1) == Some(&c) {
                    s.push(c);
                    i += 2;
                } else if d == c {
                    i += 1;
                    break;
                } else if d == '\\' && c != '`' && i + 1 < chars.len() {
                    s.push(chars[i + 1]);
                    i += 2;
                } else {
                    s.push(d);
                    i += 1;
                }
            }
            out.push(Tok::Quoted(s));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

struct P<'a> {
    t: &'a [Tok],
    i: usize,
}

impl P<'_> {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.t.get(self.i), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let ok = self.peek_word(w);
        if ok {
            self.i += 1;
        }
        ok
    }
    fn eat_punct(&mut self, c: char) -> bool {
        let ok = self.t.get(self.i) == Some(&Tok::Punct(c));
        if ok {
            self.i += 1;
        }
        ok
    }
    fn name(&mut self) -> Result<String, String> {
        match self.t.get(self.i) {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                self.i += 1;
                Ok(w.clone())
            }
            other => Err(format!("expected a name, found {other:?}")),
        }
    }
    /// `u@h`, `'u'@'h'`, a bare role name, or `PUBLIC`.
    fn account(&mut self) -> Result<AccountName, String> {
        let user = self.name()?;
        if self.eat_punct('@') {
            return Ok(AccountName::new(user, self.name()?));
        }
        Ok(AccountName::new(user, ""))
    }
}

/// Parses one statement into atoms, keeping only those whose grantee is `who`.
pub fn atoms(line: &str, flavour: Flavour, all: &AllPrivileges, who: &AccountName) -> Result<BTreeSet<String>, String> {
    let toks = tokenize(line)?;
    let mut p = P { t: &toks, i: 0 };
    let mut out = BTreeSet::new();
    if p.eat_word("SET") {
        if !(p.eat_word("DEFAULT") && p.eat_word("ROLE")) {
            return Err("expected SET DEFAULT ROLE".into());
        }
        let role = p.account()?;
        if !p.eat_word("FOR") || &p.account()? != who {
            return Ok(out);
        }
        if !role.user.eq_ignore_ascii_case("NONE") || !role.host.is_empty() {
            out.insert(format!("DEFAULT ROLE {}", role.sql()));
        }
        return Ok(out);
    }
    let revoke = if p.eat_word("REVOKE") {
        true
    } else if p.eat_word("GRANT") {
        false
    } else {
        return Err("not a GRANT, REVOKE or SET DEFAULT ROLE statement".into());
    };
    let has_on = toks.iter().any(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("ON")));
    if !has_on {
        return role_atoms(&mut p, who, out);
    }
    let items = privilege_items(&mut p)?;
    if !p.eat_word("ON") {
        return Err("expected ON".into());
    }
    let proxy = items.len() == 1 && items[0].0 == "PROXY";
    if proxy {
        let mut target = p.account()?;
        // An empty proxied host is printed as '%' by MariaDB and as '' by MySQL.
        if target.host.is_empty() {
            target.host = "%".into();
        }
        expect_grantee(&mut p, revoke)?;
        if &p.account()? != who {
            return Ok(out);
        }
        let wgo = rest_has(&p, "GRANT");
        out.insert(format!("PROXY {}{}", target.sql(), if wgo { " WITH GRANT OPTION" } else { "" }));
        return Ok(out);
    }
    let (object, level) = object(&mut p, flavour)?;
    expect_grantee(&mut p, revoke)?;
    if &p.account()? != who {
        return Ok(out);
    }
    let wgo = rest_has(&p, "GRANT");
    let prefix = if revoke { "REVOKE " } else { "" };
    for (name, cols) in items {
        let expanded: Vec<String> = match name.as_str() {
            "ALL" | "ALL PRIVILEGES" => level_set(all, level).iter().map(|p| p.to_string()).collect(),
            "USAGE" => vec![],
            _ => vec![Privilege::new(&name, flavour).to_string()],
        };
        for privname in expanded {
            let dynamic = level == Level::Global && flavour == Flavour::MySql && privname.contains('_');
            if cols.is_empty() {
                let suffix = if dynamic && wgo { " WITH GRANT OPTION" } else { "" };
                out.insert(format!("{prefix}{object} {privname}{suffix}"));
            } else {
                for c in &cols {
                    out.insert(format!("{prefix}{object}.{} {privname}", quote_ident(c)));
                }
            }
        }
    }
    let only_dynamic = out.iter().all(|a| a.ends_with(" WITH GRANT OPTION")) && !out.is_empty();
    if wgo && !only_dynamic {
        out.insert(format!("{object} GRANT OPTION"));
    }
    Ok(out)
}

fn role_atoms(p: &mut P, who: &AccountName, mut out: BTreeSet<String>) -> Result<BTreeSet<String>, String> {
    let mut roles = vec![p.account()?];
    while p.eat_punct(',') {
        roles.push(p.account()?);
    }
    if !p.eat_word("TO") || &p.account()? != who {
        return Ok(out);
    }
    let admin = rest_has(p, "ADMIN");
    for r in roles {
        out.insert(format!("ROLE {}{}", r.sql(), if admin { " WITH ADMIN OPTION" } else { "" }));
    }
    Ok(out)
}

fn expect_grantee(p: &mut P, revoke: bool) -> Result<(), String> {
    if p.eat_word(if revoke { "FROM" } else { "TO" }) {
        Ok(())
    } else {
        Err("expected TO/FROM".into())
    }
}

/// `WITH GRANT OPTION` / `WITH ADMIN OPTION` after the grantee. MariaDB prints it after the
/// credential clause; credentials are quoted tokens, never words, so they are never matched.
fn rest_has(p: &P, word: &str) -> bool {
    let rest = &p.t[p.i..];
    let with = rest.iter().position(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("WITH")));
    with.is_some_and(|k| rest[k..].iter().any(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(word))))
}

/// `SELECT (a, b), INSERT, SHOW VIEW, BACKUP_ADMIN` → `[(name, columns)]`.
fn privilege_items(p: &mut P) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut items = Vec::new();
    loop {
        let mut words = Vec::new();
        while let Some(Tok::Word(w)) = p.t.get(p.i) {
            if w.eq_ignore_ascii_case("ON") {
                break;
            }
            words.push(w.to_ascii_uppercase());
            p.i += 1;
        }
        if words.is_empty() {
            return Err("expected a privilege name".into());
        }
        let mut cols = Vec::new();
        if p.eat_punct('(') {
            loop {
                cols.push(p.name()?);
                if p.eat_punct(')') {
                    break;
                }
                if !p.eat_punct(',') {
                    return Err("expected , or ) in column list".into());
                }
            }
        }
        items.push((words.join(" "), cols));
        if !p.eat_punct(',') {
            return Ok(items);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Global,
    Schema,
    Table,
    Routine,
}

fn level_set(all: &AllPrivileges, level: Level) -> &PrivSet {
    match level {
        Level::Global => &all.global,
        Level::Schema => &all.schema,
        Level::Table => &all.table,
        Level::Routine => &all.routine,
    }
}

/// The object of `ON ...`, rendered canonically.
fn object(p: &mut P, flavour: Flavour) -> Result<(String, Level), String> {
    let kind = ["PROCEDURE", "FUNCTION", "PACKAGE", "LIBRARY"].into_iter().find(|k| p.eat_word(k));
    if let Some(k) = kind {
        let k = if k == "PACKAGE" && p.eat_word("BODY") { "PACKAGE BODY" } else { k };
        let schema = p.name()?;
        if !p.eat_punct('.') {
            return Err("expected . in routine name".into());
        }
        // Routine names are case-insensitive: SHOW GRANTS lowercases them, procs_priv keeps
        // the case of the GRANT (both flavours).
        let name = p.name()?.to_lowercase();
        return Ok((format!("{k} {}.{}", quote_ident(&schema), quote_ident(&name)), Level::Routine));
    }
    if p.eat_punct('*') {
        if !(p.eat_punct('.') && p.eat_punct('*')) {
            return Err("expected *.*".into());
        }
        return Ok(("*.*".into(), Level::Global));
    }
    let schema = p.name()?;
    if !p.eat_punct('.') {
        return Err("expected . after the schema".into());
    }
    if p.eat_punct('*') {
        // MariaDB prints a schema pattern's backslashes doubled.
        let schema = if flavour == Flavour::MariaDb { schema.replace("\\\\", "\\") } else { schema };
        return Ok((format!("{}.*", quote_ident(&schema)), Level::Schema));
    }
    let table = p.name()?;
    Ok((format!("{}.{}", quote_ident(&schema), quote_ident(&table)), Level::Table))
}

/// Keeps only the parts of a `SHOW GRANTS` line that are safe to print: everything before a
/// credential clause.
pub fn redact(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    match upper.find(" IDENTIFIED ") {
        Some(i) => format!("{} IDENTIFIED ...", &line[..i]),
        None => line.to_string(),
    }
}

/// Removes escapes from a schema pattern for comparisons that need the literal name.
pub fn literal_schema(s: &str) -> String {
    unescape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str, flavour: Flavour, who: (&str, &str)) -> Vec<String> {
        let all = AllPrivileges { schema: ["SELECT", "INSERT"].iter().map(|p| Privilege::known(p)).collect(), ..Default::default() };
        atoms(line, flavour, &all, &AccountName::new(who.0, who.1)).unwrap().into_iter().collect()
    }

    #[test]
    fn mariadb_lines() {
        assert_eq!(
            at(
                &format!("GRANT SELECT, BINLOG MONITOR ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '{}'", fake_hash()),
                Flavour::MariaDb,
                ("a", "%")
            ),
            ["*.* BINLOG MONITOR", "*.* SELECT"]
        );
        assert_eq!(
            at("GRANT SELECT (`id`), INSERT (`v`) ON `shop`.`media` TO `a`@`%`", Flavour::MariaDb, ("a", "%")),
            ["`shop`.`media`.`id` SELECT", "`shop`.`media`.`v` INSERT"]
        );
        assert_eq!(at("GRANT `r1` TO `a`@`%` WITH ADMIN OPTION", Flavour::MariaDb, ("a", "%")), ["ROLE 'r1'@'' WITH ADMIN OPTION"]);
        assert_eq!(at("SET DEFAULT ROLE `r1` FOR `a`@`%`", Flavour::MariaDb, ("a", "%")), ["DEFAULT ROLE 'r1'@''"]);
        assert_eq!(
            at("GRANT ALL PRIVILEGES ON `test\\\\_%`.* TO PUBLIC", Flavour::MariaDb, ("PUBLIC", "")),
            ["`test\\_%`.* INSERT", "`test\\_%`.* SELECT"]
        );
        assert_eq!(at("GRANT USAGE ON *.* TO `r2`", Flavour::MariaDb, ("r1", "")), Vec::<String>::new());
        assert_eq!(
            at("GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `a`@`%` WITH GRANT OPTION", Flavour::MariaDb, ("a", "%")),
            ["PROCEDURE `shop`.`p` EXECUTE", "PROCEDURE `shop`.`p` GRANT OPTION"]
        );
        assert_eq!(at("GRANT PROXY ON `a`@`%` TO `b`@`localhost`", Flavour::MariaDb, ("b", "localhost")), ["PROXY 'a'@'%'"]);
        assert_eq!(
            at("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION", Flavour::MariaDb, ("root", "localhost")),
            ["*.* GRANT OPTION"]
        );
        assert_eq!(
            at("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION", Flavour::MariaDb, ("root", "localhost")),
            ["PROXY ''@'%' WITH GRANT OPTION"]
        );
    }

    #[test]
    fn mysql_lines() {
        assert_eq!(
            at("GRANT BACKUP_ADMIN,BINLOG_ADMIN ON *.* TO `u`@`%` WITH GRANT OPTION", Flavour::MySql, ("u", "%")),
            ["*.* BACKUP_ADMIN WITH GRANT OPTION", "*.* BINLOG_ADMIN WITH GRANT OPTION"]
        );
        assert_eq!(at("GRANT USAGE ON *.* TO `u`@`%` WITH GRANT OPTION", Flavour::MySql, ("u", "%")), ["*.* GRANT OPTION"]);
        assert_eq!(at("REVOKE SELECT ON `mysql`.* FROM `u`@`%`", Flavour::MySql, ("u", "%")), ["REVOKE `mysql`.* SELECT"]);
        assert_eq!(at("GRANT `r1`@`%`,`r2`@`%` TO `u`@`%`", Flavour::MySql, ("u", "%")), ["ROLE 'r1'@'%'", "ROLE 'r2'@'%'"]);
        assert_eq!(at("GRANT SELECT ON `we``ird`.`t 'x'` TO `o'k`@`%`", Flavour::MySql, ("o'k", "%")), ["`we``ird`.`t 'x'` SELECT"]);
    }

    /// A mysql_native_password-shaped hash, built at run time so no hash is written in source.
    fn fake_hash() -> String {
        format!("*{}", "7A".repeat(20))
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact(&format!("GRANT USAGE ON *.* TO `b`@`h` IDENTIFIED BY PASSWORD '{}'", fake_hash())),
            "GRANT USAGE ON *.* TO `b`@`h` IDENTIFIED ..."
        );
    }
}
