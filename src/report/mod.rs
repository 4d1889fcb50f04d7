//! Renderers: tables for people, JSON for programs. Each takes a value and returns text; the
//! caller hands it to [`crate::output::Output`].

pub mod access;
pub mod audit;
pub mod inventory;
pub mod plan;
pub mod prom;
pub mod session;
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
