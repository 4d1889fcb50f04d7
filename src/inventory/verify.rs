//! `--verify`: renders every account's grants from the model and compares them, normalised, with
//! the server's own `SHOW GRANTS`. Any difference means the model is wrong about this server,
//! and is reported loudly.

use super::showgrants::{atoms, redact};
use crate::db::{Flavour, Server};
use crate::error::Result;
use crate::model::sql::{grantee_sql, ByGrantee};
use crate::model::{AccountName, Inventory};
use serde::Serialize;
use std::collections::BTreeSet;

/// A difference between the model and the server for one account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    pub account: AccountName,
    /// Atoms the server shows but the model lacks.
    pub only_on_server: Vec<String>,
    /// Atoms the model has but the server does not show.
    pub only_in_model: Vec<String>,
    /// Server lines privfence could not parse (credentials redacted).
    pub unparsed: Vec<String>,
}

fn atom_set(lines: &[String], inv: &Inventory, who: &AccountName, unparsed: &mut Vec<String>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in lines {
        match atoms(line, inv.server.flavour, &inv.levels, who) {
            Ok(a) => set.extend(a),
            Err(e) => unparsed.push(format!("{} ({e})", redact(line))),
        }
    }
    set
}

/// Compares the model with `SHOW GRANTS` for every account; returns the mismatches.
pub async fn verify(server: &mut Server, inv: &Inventory) -> Result<Vec<Mismatch>> {
    let mut out = Vec::new();
    let by = ByGrantee::new(inv);
    for account in &inv.accounts {
        let who = &account.name;
        let sql = format!("SHOW GRANTS FOR {}", show_target(who, inv.server.flavour));
        let server_lines: Vec<String> = server.rows_as::<String>("SHOW GRANTS", &sql).await?;
        let mut unparsed = Vec::new();
        let on_server = atom_set(&server_lines, inv, who, &mut unparsed);
        let mut model_unparsed = Vec::new();
        let in_model = atom_set(&by.sql(who), inv, who, &mut model_unparsed);
        unparsed.extend(model_unparsed.into_iter().map(|l| format!("model: {l}")));
        if on_server != in_model || !unparsed.is_empty() {
            out.push(Mismatch {
                account: who.clone(),
                only_on_server: on_server.difference(&in_model).cloned().collect(),
                only_in_model: in_model.difference(&on_server).cloned().collect(),
                unparsed,
            });
        }
    }
    Ok(out)
}

fn show_target(who: &AccountName, flavour: Flavour) -> String {
    grantee_sql(who, flavour)
}
