//! The rules of docs/ARCHITECTURE.md that a lint cannot express, checked over the sources:
//! no two top-level modules import each other; statements with binary logging off are written
//! only in the engine's executor; external commands run only through the engine's runner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each source file's code without comments and without its `#[cfg(test)]` tail.
fn code() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
            (p.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), code)
        })
        .collect()
}

fn top(rel: &str) -> String {
    rel.split('/').next().unwrap().trim_end_matches(".rs").to_string()
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in code() {
        let me = top(&rel);
        for part in code.split("crate::").skip(1) {
            let m: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !m.is_empty() && m != me {
                deps.entry(me.clone()).or_default().insert(m);
            }
        }
    }
    let cycles: Vec<(String, String)> = deps
        .iter()
        .flat_map(|(a, bs)| {
            bs.iter().filter(|b| *a < **b && deps.get(*b).is_some_and(|x| x.contains(a))).map(move |b| (a.clone(), b.clone()))
        })
        .collect();
    assert!(cycles.is_empty(), "modules that import each other: {cycles:?}");
    // The pure model imports nothing of the crate but itself.
    assert_eq!(deps.get("model").cloned().unwrap_or_default(), BTreeSet::new(), "model/ must stay pure");
}

#[test]
fn binary_logging_is_switched_only_by_the_engine() {
    for (rel, code) in code() {
        if code.contains("sql_log_bin = ") {
            assert!(
                ["engine/exec.rs", "engine/node.rs", "engine/failsafe.rs"].contains(&rel.as_str()),
                "{rel} switches sql_log_bin: use engine::exec::unlogged"
            );
        }
    }
}

#[test]
fn external_commands_run_only_through_the_engine() {
    for (rel, code) in code() {
        if code.contains("Command::new(\"sh\")") {
            assert_eq!(rel, "engine/command.rs", "{rel} runs sh itself: use engine::command::Command");
        }
    }
}

/// Every method of `db::Server` that can send a statement that is not a read on its connection
/// (it calls the driver's `query_drop`/`exec_drop`/`exec_batch` and does not refuse non-reads
/// with `must_read`; the session settings of a new connection are its own) is a write path, and clippy.toml's `disallowed-methods` must list it, so that a
/// call outside the executor (or the few documented writers) fails the lint. A new write method
/// that is not listed fails here.
#[test]
fn every_write_path_of_server_is_linted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = std::fs::read_to_string(root.join("src/db/server.rs")).unwrap();
    let clippy = std::fs::read_to_string(root.join("clippy.toml")).unwrap();
    let mut writers = Vec::new();
    for part in server.split("async fn ").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let body = part.split("\n    }\n").next().unwrap_or_default();
        let sends = ["self.conn.query_drop(", "self.conn.exec_drop(", "self.conn.exec_batch("].iter().any(|w| body.contains(w));
        if sends && !body.contains("must_read(") {
            writers.push(name);
        }
    }
    assert!(writers.iter().any(|w| w == "execute"), "the scan found no write path at all: {writers:?}");
    let unlisted: Vec<&String> = writers.iter().filter(|w| !clippy.contains(&format!("\"privfence::db::server::Server::{w}\""))).collect();
    assert!(unlisted.is_empty(), "write paths of db::Server missing from clippy.toml's disallowed-methods: {unlisted:?}");
}
