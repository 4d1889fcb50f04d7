//! A server setting privfence turns on for a while (to see more) and back off: one type for the
//! watch's settings (`signals`) and the evidence's (`evidence`), merged on what they change, not
//! on their SQL text.

use super::ident::quote_str;
use serde::{Deserialize, Serialize};

/// What a setting changes: two settings with the same knob are one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Knob {
    /// A `performance_schema.setup_consumers` row.
    Consumer(String),
    /// A global system variable.
    Global(String),
}

impl Knob {
    /// Its name for messages and journal steps (`performance_schema consumer <name>`, or the
    /// variable's name).
    pub fn name(&self) -> String {
        match self {
            Knob::Consumer(c) => format!("performance_schema consumer {c}"),
            Knob::Global(v) => v.clone(),
        }
    }
}

/// A setting, changeable at run time (none of them survives a restart), with its inverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub knob: Knob,
    /// The value to set, as an SQL literal (`1`, `ON`, `'a,b'`).
    pub on: String,
    /// The value it had, as an SQL literal.
    pub off: String,
    /// What privfence sees with it.
    pub why: String,
}

impl Setting {
    /// A performance_schema consumer turned on (`YES`) and back off (`NO`).
    pub fn consumer(name: &str, why: impl Into<String>) -> Setting {
        Setting { knob: Knob::Consumer(name.to_string()), on: quote_str("YES"), off: quote_str("NO"), why: why.into() }
    }

    /// A global variable set to `on` and back to `off` (both SQL literals).
    pub fn global(var: &str, on: impl Into<String>, off: impl Into<String>, why: impl Into<String>) -> Setting {
        Setting { knob: Knob::Global(var.to_string()), on: on.into(), off: off.into(), why: why.into() }
    }

    /// Its name for messages and journal steps.
    pub fn name(&self) -> String {
        self.knob.name()
    }

    fn sql(&self, value: &str) -> String {
        match &self.knob {
            Knob::Consumer(c) => format!("UPDATE performance_schema.setup_consumers SET ENABLED = {value} WHERE NAME = {}", quote_str(c)),
            Knob::Global(v) => format!("SET GLOBAL {v} = {value}"),
        }
    }

    /// The statement that turns it on.
    pub fn enable_sql(&self) -> String {
        self.sql(&self.on)
    }

    /// The statement that puts it back as it was.
    pub fn disable_sql(&self) -> String {
        self.sql(&self.off)
    }
}

/// `first` then those of `more` that change another knob, in order.
pub fn merge(first: Vec<Setting>, more: Vec<Setting>) -> Vec<Setting> {
    let mut out = first;
    for s in more {
        if !out.iter().any(|o| o.knob == s.knob) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_knob_merges_whatever_its_spelling() {
        let a = vec![Setting::global("userstat", "1", "0", "evidence"), Setting::consumer("events_statements_history", "evidence")];
        let b = vec![Setting::global("userstat", "ON", "OFF", "watch"), Setting::consumer("statements_digest", "watch")];
        let m = merge(a, b);
        assert_eq!(
            m.iter().map(Setting::name).collect::<Vec<_>>(),
            ["userstat", "performance_schema consumer events_statements_history", "performance_schema consumer statements_digest"]
        );
        assert_eq!(
            m[1].enable_sql(),
            "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'events_statements_history'"
        );
        assert_eq!(m[0].disable_sql(), "SET GLOBAL userstat = 0");
    }
}
