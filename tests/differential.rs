//! Differential test of the model against the servers (issue 11): random but valid statement
//! sequences (`differential/gen.rs`) are applied to real servers of both flavours, and after
//! every statement privfence's answers are compared with the server's:
//!
//! - `inventory --verify`: the model rendered as GRANT statements equals `SHOW GRANTS` for
//!   every account and role of the case (known server quirks, explained by `--verify`, pass);
//! - `access`: for every login account of the case and every table, what a plain login may do
//!   according to the model equals what a real login (from its own address) is allowed.
//!
//! Any disagreement fails with the shortest statement sequence that still shows it (shrunk by
//! deleting statements while the failure persists, each try replayed under a fresh prefix).
//! CI runs a short fixed-seed run; `PRIVFENCE_DIFF_SEED`, `PRIVFENCE_DIFF_CASES` and
//! `PRIVFENCE_DIFF_STEPS` make longer ones (`scripts/differential.sh`).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // the seed, the counts and the shrunk sequence are for people

mod differential {
    pub mod gen;
}
mod support;

use differential::gen::{self, Rng};
use mysql_async::prelude::*;
use privfence::access;
use privfence::db::Flavour;
use privfence::model::{AccountName, Inventory, TableName};
use std::net::Ipv4Addr;
use std::time::Instant;
use support::*;

/// What one run covered (printed, and asked for by docs/benchmarks.md).
#[derive(Default)]
struct Counts {
    statements: usize,
    checkpoints: usize,
    accounts: usize,
    logins: usize,
    probes: usize,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Applies templates under `prefix`; returns the ones the server accepted (a generated
/// statement may be refused, e.g. a revoke of something already gone: then it did nothing).
async fn apply(sb: &privfence::sandbox::Sandbox, prefix: &str, templates: &[String]) -> Vec<bool> {
    let mut c = sb.primary.conn().await.expect("admin connection");
    let mut ok = Vec::new();
    for t in templates {
        let mut good = true;
        for s in gen::fill(t, prefix).split('\n') {
            if c.query_drop(s).await.is_err() {
                good = false;
                break;
            }
        }
        ok.push(good);
    }
    c.disconnect().await.ok();
    ok
}

/// The case's part of an inventory: its accounts and roles, and PUBLIC.
fn case_accounts(inv: &Inventory, prefix: &str) -> Inventory {
    let mut sub = inv.clone();
    sub.accounts.retain(|a| a.name.user.starts_with(prefix) || (a.name.user == "PUBLIC" && a.name.host.is_empty()));
    sub
}

fn tables(prefix: &str) -> Vec<TableName> {
    let mut out = Vec::new();
    for s in gen::SCHEMAS {
        for t in gen::TABLES {
            out.push(TableName::new(gen::fill(s, prefix), *t));
        }
    }
    out
}

/// The probes the generator's privileges can be told apart by.
fn probes(t: &TableName) -> Vec<Probe> {
    let keep = ["SELECT(id)", "SELECT(v)", "INSERT(id)", "UPDATE(v)", "DELETE"];
    table_probes(t).into_iter().filter(|p| keep.contains(&p.name.as_str())).collect()
}

/// Every disagreement between privfence and the server for one case, now.
async fn disagreements(flavour: Flavour, prefix: &str, counts: &mut Counts) -> Vec<String> {
    let sb = sandbox(flavour);
    let (mut server, inv) = inventory(sb).await;
    let sub = case_accounts(&inv, prefix);
    let mut out = Vec::new();
    for m in privfence::inventory::verify::verify(&mut server, &sub).await.expect("SHOW GRANTS").iter().filter(|m| !m.is_server_quirk()) {
        out.push(format!(
            "verify {}: server has {:?}, model has {:?}, unparsed {:?}",
            m.account, m.only_on_server, m.only_in_model, m.unparsed
        ));
    }
    server.close().await;
    let tables = tables(prefix);
    let report = access::analyse(&inv, &tables);
    for (i, u) in gen::USERS.iter().enumerate() {
        let a = AccountName::new(gen::fill(u, prefix), "%");
        counts.logins += 1;
        let ip = Ipv4Addr::new(127, 0, 4, 10 + i as u8);
        let mut conn = match login_from(&sb.primary, &a.user, &format!("pw-{}", a.user), ip).await {
            Ok(c) => c,
            Err(e) => {
                out.push(format!("login as {a}: {e}"));
                continue;
            }
        };
        for t in &tables {
            let ps = probes(t);
            let results = run_probes(&mut conn, &ps).await;
            counts.probes += ps.len();
            let (tl, cols) = model_direct(&report, &a, t);
            for (p, denied) in ps.iter().zip(results) {
                if model_allows(p, &tl, &cols) != denied.is_none() {
                    let m = if model_allows(p, &tl, &cols) { "allowed" } else { "denied" };
                    out.push(format!("access {a} {} on {t}: model says {m}, server {denied:?}", p.name));
                }
            }
        }
        conn.disconnect().await.ok();
    }
    out
}

/// Replays `seq` under a fresh prefix; the disagreements at its end.
async fn replay(flavour: Flavour, prefix: &str, seq: &[String]) -> Vec<String> {
    let sb = sandbox(flavour);
    apply(sb, prefix, &gen::setup(flavour)).await;
    apply(sb, prefix, seq).await;
    let found = disagreements(flavour, prefix, &mut Counts::default()).await;
    apply(sb, prefix, &gen::cleanup(flavour)).await;
    found
}

/// Deletes statements while the failure persists (one pass per size, until nothing goes).
async fn shrink(flavour: Flavour, tag: &str, mut seq: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut n = 0;
    loop {
        let mut removed = false;
        let mut i = 0;
        while i < seq.len() {
            let mut shorter = seq.clone();
            shorter.remove(i);
            n += 1;
            let f = replay(flavour, &format!("ds{tag}{n}z"), &shorter).await;
            if f.is_empty() {
                i += 1;
            } else {
                seq = shorter;
                found = f;
                removed = true;
            }
        }
        if !removed {
            break;
        }
    }
    if found.is_empty() {
        n += 1;
        found = replay(flavour, &format!("ds{tag}{n}z"), &seq).await;
    }
    (seq, found)
}

async fn differential(flavour: Flavour, tag: &str) {
    let seed = env_or("PRIVFENCE_DIFF_SEED", 20261205);
    let cases = env_or("PRIVFENCE_DIFF_CASES", 10) as usize;
    let steps = env_or("PRIVFENCE_DIFF_STEPS", 20) as usize;
    println!("{flavour}: differential seed {seed} ({cases} cases of {steps} statements); replay with PRIVFENCE_DIFF_SEED={seed}");
    let sb = sandbox(flavour);
    prepare_probes(sb).await;
    let mut rng = Rng(seed ^ (tag.as_bytes()[0] as u64) << 32 | 1);
    let mut counts = Counts::default();
    let started = Instant::now();
    let keep_going = std::env::var_os("PRIVFENCE_DIFF_KEEP_GOING").is_some();
    let mut surveyed = 0;
    for case in 0..cases {
        let prefix = format!("df{tag}{case}z");
        apply(sb, &prefix, &gen::setup(flavour)).await;
        counts.accounts += gen::USERS.len() + gen::ROLES.len();
        let mut applied: Vec<String> = Vec::new();
        for _ in 0..steps {
            let stmt = gen::statement(&mut rng, flavour, &applied);
            counts.statements += 1;
            if !apply(sb, &prefix, std::slice::from_ref(&stmt)).await[0] {
                continue;
            }
            applied.push(stmt);
            counts.checkpoints += 1;
            let found = disagreements(flavour, &prefix, &mut counts).await;
            if !found.is_empty() && keep_going {
                // Survey mode (scripts/differential.sh --keep-going): report, skip to the next case.
                let at = started.elapsed().as_secs_f64();
                let seq: Vec<String> = applied.iter().map(|s| gen::fill(s, "<P>")).collect();
                println!(
                    "{flavour}: seed {seed} case {case}: disagreement at {at:.1} s after {} statements:\n  {}\n  sequence: {}",
                    counts.statements,
                    found.join("\n  "),
                    seq.join("; ")
                );
                surveyed += 1;
                break;
            }
            if !found.is_empty() {
                let found_after = started.elapsed().as_secs_f64();
                println!(
                    "{flavour}: seed {seed}: first disagreement after {found_after:.1} s ({} statements, {} login probes); shrinking",
                    counts.statements, counts.probes
                );
                apply(sb, &prefix, &gen::cleanup(flavour)).await;
                let (seq, why) = shrink(flavour, tag, applied.clone()).await;
                let shown: Vec<String> = seq.iter().map(|s| format!("  {};", gen::fill(s, "<P>"))).collect();
                panic!(
                    "{flavour}: seed {seed} case {case}: privfence and the server disagree after {} statements; minimal sequence ({} statements, names under prefix <P>, after the setup of differential/gen.rs):\n{}\ndisagreements:\n  {}",
                    applied.len(),
                    seq.len(),
                    shown.join("\n"),
                    why.join("\n  ")
                );
            }
        }
        apply(sb, &prefix, &gen::cleanup(flavour)).await;
    }
    assert_eq!(surveyed, 0, "{flavour}: seed {seed}: {surveyed} case(s) with disagreements (survey mode)");
    println!(
        "{flavour}: seed {seed}: {} statements ({} applied checkpoints), {} accounts and roles, {} logins, {} login probes, {:.1} s: no disagreement",
        counts.statements,
        counts.checkpoints,
        counts.accounts,
        counts.logins,
        counts.probes,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_model_agrees_with_the_server() {
    differential(Flavour::MariaDb, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_model_agrees_with_the_server() {
    differential(Flavour::MySql, "y").await;
}
