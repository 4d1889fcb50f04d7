//! `verify --format json` and `backfill --format json` validated against their JSON Schemas
//! (docs/schemas/, draft 2020-12) on two independent servers of each flavour. The other
//! documents are validated where their commands are tested (readable_live, saved_plan_live).
#![allow(clippy::disallowed_methods)] // tests set up servers through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::sandbox::{Sandbox, SandboxOptions, Topology};
use serde_json::Value;
use std::sync::OnceLock;
use support::*;

/// A second, independent server for `flavour` (the first is `sandbox()`).
fn target(flavour: Flavour) -> &'static Sandbox {
    static CELLS: [OnceLock<Sandbox>; 2] = [const { OnceLock::new() }; 2];
    CELLS[flavour as usize].get_or_init(|| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(Sandbox::start(SandboxOptions::new(flavour, Topology::Single))).expect("a second sandbox")
        })
        .join()
        .expect("sandbox thread")
    })
}

async fn verify_and_backfill(flavour: Flavour) {
    let (src, dst) = (sandbox(flavour), target(flavour));
    let schema = format!("pfsc_{}", &flavour.name()[..2]);
    for (sb, rows) in [(src, "(1, 'a'), (2, 'b'), (3, 'c')"), (dst, "(1, 'a')")] {
        let mut c = sb.primary.conn().await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {schema}.items (id BIGINT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB")).await.unwrap();
        c.query_drop(format!("INSERT INTO {schema}.items VALUES {rows}")).await.unwrap();
        c.disconnect().await.ok();
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("[service.sc]\ntables = [\"{schema}.*\"]\nowners = [\"'nobody'@'%'\"]\n")).unwrap();
    let run = |cmd: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"))
            .args([cmd, "--policy", policy.to_str().unwrap(), "--service", "sc", "--format", "json"])
            .args(["--from", &format!("127.0.0.1:{}", src.primary.port), "--to", &format!("127.0.0.1:{}", dst.primary.port)])
            .args(["--from-defaults-file", src.primary.client_cnf.to_str().unwrap()])
            .args(["--to-defaults-file", dst.primary.client_cnf.to_str().unwrap()])
            .args(["--out", dir.path().join("reports").to_str().unwrap(), "--recheck-delay", "100ms"])
            .env_remove("MYSQL_PWD")
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{flavour} {cmd}: {e}: {text}"));
        (o.status.code(), v)
    };
    let (code, v) = run("verify");
    assert_eq!((code, v["result"].as_str()), (Some(1), Some("differ")), "{flavour}: {v:#}");
    validate("verify.json", &v);
    let (code, v) = {
        let journal = dir.path().join("bf.journal");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"))
            .args(["backfill", "--policy", policy.to_str().unwrap(), "--service", "sc", "--format", "json"])
            .args(["--from", &format!("127.0.0.1:{}", src.primary.port), "--to", &format!("127.0.0.1:{}", dst.primary.port)])
            .args(["--from-defaults-file", src.primary.client_cnf.to_str().unwrap()])
            .args(["--to-defaults-file", dst.primary.client_cnf.to_str().unwrap()])
            .args(["--out", dir.path().join("reports").to_str().unwrap(), "--recheck-delay", "100ms"])
            .args(["--journal", journal.to_str().unwrap()])
            .env_remove("MYSQL_PWD")
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        (o.status.code(), serde_json::from_slice::<Value>(&o.stdout).unwrap_or_else(|e| panic!("{flavour} backfill: {e}: {text}")))
    };
    assert_eq!((code, v["result"].as_str()), (Some(0), Some("equal")), "{flavour}: {v:#}");
    validate("backfill.json", &v);
    let (code, v) = run("verify");
    assert_eq!(code, Some(0), "{flavour}: {v:#}");
    validate("verify.json", &v);
}

both_flavours!(verify_and_backfill_documents_match_their_schemas, verify_and_backfill);

/// Runs privfence with `args`; (exit code, stdout).
fn privfence(args: &[&str]) -> (Option<i32>, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(args)
        .env_remove("MYSQL_PWD")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `sandbox status` and `failsafe status` in each `--format` (issue 14): JSON against its
/// schema, TSV a header and one row per item, with an armed fail-safe made by the engine's own
/// SQL (an event that would fire after an hour, its heartbeat, and an earlier fired record).
async fn status_documents(flavour: Flavour) {
    let sb = sandbox(flavour);
    let fl = flavour.name();
    let dir = sb.dir.to_str().unwrap();
    let (code, json, err) = privfence(&["sandbox", "status", "--flavour", fl, "--dir", dir, "--format", "json"]);
    assert_eq!(code, Some(0), "{flavour}: {err}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{flavour}: {e}: {json}"));
    validate("sandbox-status.json", &v);
    assert_eq!((v["servers"][0]["role"].as_str(), v["servers"][0]["up"].as_bool()), (Some("primary"), Some(true)), "{v:#}");
    let (code, tsv, err) = privfence(&["sandbox", "status", "--flavour", fl, "--dir", dir, "--format", "TSV"]);
    assert_eq!(code, Some(0), "{flavour}: {err}");
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines.len(), 2, "{tsv}");
    assert!(lines[0].starts_with("server\tport\tpid\tup\t") && lines[1].starts_with(&format!("primary\t{}\t", sb.primary.port)), "{tsv}");

    use privfence::engine::failsafe::{Spec, SCHEMA};
    let cnf = sb.primary.client_cnf.to_str().unwrap();
    let mut c = sb.primary.conn().await.unwrap();
    c.query_drop(format!("DROP DATABASE IF EXISTS {SCHEMA}")).await.unwrap();
    let (code, json, err) = privfence(&["failsafe", "status", "--defaults-file", cnf, "--format", "json"]);
    assert_eq!(code, Some(0), "{flavour}: {err}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{flavour}: {e}: {json}"));
    validate("failsafe-status.json", &v);
    assert_eq!(v["schema"], false, "{v:#}");
    let spec = Spec { after: std::time::Duration::from_secs(3600), ..Spec::named("pfsc") };
    for sql in Spec::schema_sql().into_iter().chain([spec.procedure_sql(), spec.event_sql(), spec.heartbeat_insert()]) {
        c.query_drop(sql).await.unwrap();
    }
    c.query_drop(format!(
        "INSERT INTO {SCHEMA}.fired (name, fired_at, heartbeat_at, done_at, errors) VALUES ('earlier', NOW(3), NULL, NULL, 2)"
    ))
    .await
    .unwrap();
    let (code, json, err) = privfence(&["failsafe", "status", "--defaults-file", cnf, "--format", "json"]);
    // Exit 1: a fail-safe is armed.
    assert_eq!(code, Some(1), "{flavour}: {err}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{flavour}: {e}: {json}"));
    validate("failsafe-status.json", &v);
    assert_eq!(v["events"][0]["name"], "failsafe_pfsc", "{v:#}");
    assert_eq!((v["heartbeats"][0]["name"].as_str(), v["heartbeats"][0]["after_ms"].as_i64()), (Some("pfsc"), Some(3_600_000)), "{v:#}");
    assert_eq!(
        (v["fired"][0]["name"].as_str(), v["fired"][0]["done_at"].is_null(), v["fired"][0]["errors"].as_i64()),
        (Some("earlier"), true, Some(2))
    );
    let (_, tsv, _) = privfence(&["failsafe", "status", "--defaults-file", cnf, "--format", "tsv"]);
    let kinds: Vec<&str> = tsv.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(kinds, ["kind", "event", "heartbeat", "fired"], "{tsv}");
    let (_, table, _) = privfence(&["failsafe", "status", "--defaults-file", cnf]);
    assert!(table.contains("armed: event failsafe_pfsc") && table.contains("fired earlier at"), "{table}");
    c.query_drop(format!("DROP DATABASE {SCHEMA}")).await.unwrap();
    c.disconnect().await.ok();
}

both_flavours!(status_documents_match_their_schemas, status_documents);
