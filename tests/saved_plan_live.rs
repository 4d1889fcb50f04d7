//! Saved plans against real servers, both flavours: `plan --out FILE` then `session start
//! --plan FILE` applies exactly that plan; after a grant changes, the same file is refused
//! (exit 2) and nothing changes (grants, journal).
#![allow(clippy::disallowed_methods)] // tests set up servers through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::model::ident::quote_ident as qi;
use std::process::{Command, Output};
use support::session::*;
use support::*;

fn privfence(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(args)
        .env_remove("MYSQL_PWD")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run privfence")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `plan --out FILE` for the fixture's app account; the saved document.
fn save_plan(sb: &privfence::sandbox::Sandbox, f: &Fixture, file: &std::path::Path) -> serde_json::Value {
    let cnf = sb.primary.client_cnf.display().to_string();
    let mut a = args(&["plan", "--service", &f.service(), "--account", &f.account(), "--defaults-file", &cnf, "--format", "sql", "--out"]);
    a.push(file.display().to_string());
    a.extend(["--policy".to_string(), f.policy().display().to_string()]);
    let o = privfence(&a);
    assert_eq!(o.status.code(), Some(0), "plan --out: {}", text(&o));
    serde_json::from_str(&std::fs::read_to_string(file).expect("the saved plan")).expect("JSON")
}

fn start_with(sb: &privfence::sandbox::Sandbox, f: &Fixture, file: &std::path::Path) -> Output {
    let cnf = sb.primary.client_cnf.display().to_string();
    let reports = f.dir.path().join("reports");
    let mut a = args(&["-v", "session", "start", "--service", &f.service(), "--defaults-file", &cnf, "--no-notify", "--yes"]);
    a.extend(args(&["--window", "1s", "--poll", "50ms", "--keep-inconclusive", "--kill-connections", "--no-failsafe"]));
    for (flag, v) in [("--policy", f.policy()), ("--journal", f.journal()), ("--reports", reports), ("--plan", file.to_path_buf())] {
        a.extend([flag.to_string(), v.display().to_string()]);
    }
    privfence(&a)
}

async fn applies_exactly(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("sp1{}", &flavour.name()[..2])).await;
    let file = f.dir.path().join("app.plan.json");
    let saved = save_plan(sb, &f, &file);
    assert_eq!(saved["kind"], "saved_plan");
    validate("saved-plan.json", &saved);
    let fingerprint = saved["plan"]["fingerprint"].as_str().unwrap().to_string();
    assert!(!saved["plan"]["steps"].as_array().unwrap().is_empty(), "{saved:#}");
    let o = start_with(sb, &f, &file);
    assert!(matches!(o.status.code(), Some(0) | Some(5)), "{flavour}: start --plan: {}", text(&o));
    // -v: the executor's statements on stderr.
    let first = saved["plan"]["steps"][0]["forward"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains(first), "{flavour}: -v shows {first}: {}", text(&o));
    // The journal holds exactly the saved plan's statements and fingerprint.
    let journal = std::fs::read_to_string(f.journal()).expect("the journal");
    let begin: serde_json::Value = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.to_string().contains("\"account_begin\""))
        .unwrap_or_else(|| panic!("{flavour}: no account_begin in\n{journal}"));
    assert!(begin.to_string().contains(&fingerprint), "{flavour}: {begin:#}");
    for step in saved["plan"]["steps"].as_array().unwrap() {
        assert!(
            journal.contains(&serde_json::to_string(&step["forward"]).unwrap()),
            "{flavour}: {} missing from the journal",
            step["forward"]
        );
    }
    // The cut is in force: a new plan for the account has nothing left to do.
    let again = save_plan(sb, &f, &f.dir.path().join("after.plan.json"));
    assert!(again["plan"]["steps"].as_array().unwrap().is_empty(), "{flavour}: {again:#}");
    // The session report and the plan document match their schemas.
    let mut st = args(&["session", "status", "--format", "json", "--service", &f.service(), "--journal"]);
    st.push(f.journal().display().to_string());
    let o = privfence(&st);
    validate("session-report.json", &serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o))));
    let cnf = sb.primary.client_cnf.display().to_string();
    let mut pl =
        args(&["plan", "--service", &f.service(), "--account", &f.account(), "--defaults-file", &cnf, "--format", "json", "--policy"]);
    pl.push(f.policy().display().to_string());
    validate("plan.json", &serde_json::from_slice(&privfence(&pl).stdout).unwrap());
}

async fn stale_is_refused(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("sp2{}", &flavour.name()[..2])).await;
    let file = f.dir.path().join("app.plan.json");
    save_plan(sb, &f, &file);
    admin_exec(sb, &[format!("GRANT UPDATE ON {}.svc_items TO {}", qi(&f.schema), f.account())]).await;
    let before = f.canonical(&sb.primary).await;
    let o = start_with(sb, &f, &file);
    assert_eq!(o.status.code(), Some(2), "{flavour}: a stale plan is refused: {}", text(&o));
    assert!(text(&o).contains("no longer matches the server"), "{}", text(&o));
    assert_eq!(f.canonical(&sb.primary).await, before, "{flavour}: nothing changed");
    assert!(!f.journal().exists(), "{flavour}: nothing journaled");
}

both_flavours!(saved_plan_applies_exactly, applies_exactly);
both_flavours!(stale_saved_plan_is_refused, stale_is_refused);
