//! Renderers: tables for people, JSON for programs. Each takes a value and returns text; the
//! caller hands it to [`crate::output::Output`].

pub mod access;
pub mod audit;
pub mod candidates;
pub mod doctor;
pub mod filter;
pub mod inventory;
pub mod plan;
pub mod prom;
pub mod session;
pub mod summary;
pub mod tsv;
pub mod verify;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

/// A table with the house look: condensed borders, wrapped to the terminal.
pub fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<u16>().ok()) {
        t.set_width(w);
    }
    t
}

/// Width of tables printed before a decision (session candidates): 120 columns, or the
/// terminal's `COLUMNS` when narrower.
pub fn narrow_table(header: &[&str]) -> Table {
    let mut t = new_table(header);
    let w = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<u16>().ok()).unwrap_or(120).min(120);
    t.set_width(w);
    t
}

/// One user on several hosts, quoted: `'root'@'localhost'`, or `'root'@ 'localhost', '::1'`
/// when the same rows apply to several of its host rows.
pub fn account_hosts(user: &str, hosts: &[&str]) -> String {
    use crate::model::ident::quote_str;
    match hosts {
        [one] => format!("{}@{}", quote_str(user), quote_str(one)),
        _ => format!("{}@ {}", quote_str(user), hosts.iter().map(|h| quote_str(h)).collect::<Vec<_>>().join(", ")),
    }
}
