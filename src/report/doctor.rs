//! `doctor`: the GRANT statements that would give privfence's account what it lacks, one per
//! privilege level, for an administrator to review and run (privfence never runs them).

use crate::capability::{Checkup, Status};
use crate::db::Flavour;
use crate::model::ident::quote_ident;

/// The privilege and level each missing capability needs (the first alternative the checkup
/// accepts): `("SHOW VIEW", "*.*")`.
fn needed(name: &str, flavour: Flavour) -> Option<(&'static str, &'static str)> {
    let mysql = flavour == Flavour::MySql;
    Some(match name {
        "read the grant tables" => ("SELECT", "mysql.*"),
        "see every table" => ("SELECT", "*.*"),
        "see view definitions" => ("SHOW VIEW", "*.*"),
        "see routine bodies" if mysql => ("SHOW_ROUTINE", "*.*"),
        "see routine bodies" => ("SELECT", "mysql.proc"),
        "see triggers" => ("TRIGGER", "*.*"),
        "see events" => ("EVENT", "*.*"),
        "grant and restore privileges" => ("GRANT OPTION", "*.*"),
        "change SYSTEM_USER accounts" => ("SYSTEM_USER", "*.*"),
        "end other accounts' sessions (KILL)" if mysql => ("CONNECTION_ADMIN", "*.*"),
        "end other accounts' sessions (KILL)" => ("CONNECTION ADMIN", "*.*"),
        "see every session" => ("PROCESS", "*.*"),
        "read performance_schema" => ("SELECT", "performance_schema.*"),
        "read replication state" if mysql => ("REPLICATION CLIENT", "*.*"),
        "read replication state" => ("SLAVE MONITOR", "*.*"),
        _ => return None,
    })
}

fn level_sql(level: &str) -> String {
    match level.split_once('.') {
        Some(("*", "*")) => "*.*".into(),
        Some((s, "*")) => format!("{}.*", quote_ident(s)),
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => level.into(),
    }
}

/// `GRANT ... ON level TO 'privfence'@'host';` per level (GRANT OPTION as `WITH GRANT OPTION`);
/// empty when nothing is missing.
pub fn grants_to_fix(c: &Checkup) -> Vec<String> {
    let mut by_level: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut grant_option = false;
    for cap in c.capabilities.iter().filter(|x| x.status == Status::Missing) {
        let Some((privilege, level)) = needed(cap.name, c.server.flavour) else { continue };
        if privilege == "GRANT OPTION" {
            grant_option = true;
            continue;
        }
        match by_level.iter_mut().find(|(l, _)| *l == level) {
            Some((_, ps)) if !ps.contains(&privilege) => ps.push(privilege),
            Some(_) => {}
            None => by_level.push((level, vec![privilege])),
        }
    }
    let who = c.account.sql();
    let mut out: Vec<String> = by_level.iter().map(|(l, ps)| format!("GRANT {} ON {} TO {who};", ps.join(", "), level_sql(l))).collect();
    if grant_option {
        out.push(format!("GRANT USAGE ON *.* TO {who} WITH GRANT OPTION;"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_quoting() {
        assert_eq!(level_sql("*.*"), "*.*");
        assert_eq!(level_sql("mysql.proc"), "`mysql`.`proc`");
        assert_eq!(level_sql("performance_schema.*"), "`performance_schema`.*");
        assert_eq!(needed("see routine bodies", Flavour::MariaDb), Some(("SELECT", "mysql.proc")));
        assert_eq!(needed("unknown", Flavour::MySql), None);
    }
}
