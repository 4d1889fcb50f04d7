//! Issue 10's verdict matrix: each case run 20 times on MariaDB and 5 on MySQL, with no wrong
//! verdict. An app that keeps logging in and failing is restored; an idle app (pings and the
//! housekeeping pools and drivers do: `SELECT 1`, `SHOW VARIABLES`, information_schema) is
//! inconclusive; an app running statements on other tables through post-cut connections
//! passes; an app whose connections are killed during the watch and reconnect passes.
//!
//! The four cases of a round run at once, each in its own schema, account, service and
//! journal. The servers' statement consumers are turned on once for this binary (as a DBA
//! would), so concurrent turns do not turn them on and off under each other.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::journal::Verdict;
use privfence::model::ident::quote_str as qs;
use privfence::sandbox::Sandbox;
use std::time::Duration;
use support::session::*;
use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    RefusedLogins,
    Idle,
    OtherTables,
    KilledAndReconnected,
}

const CASES: [Case; 4] = [Case::RefusedLogins, Case::Idle, Case::OtherTables, Case::KilledAndReconnected];

impl Case {
    fn expected(self) -> Verdict {
        match self {
            Case::RefusedLogins => Verdict::Restored,
            Case::Idle => Verdict::Inconclusive,
            Case::OtherTables | Case::KilledAndReconnected => Verdict::Passed,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Case::RefusedLogins => "l",
            Case::Idle => "i",
            Case::OtherTables => "o",
            Case::KilledAndReconnected => "k",
        }
    }
}

/// The consumers a watch would turn on, turned on for the whole binary.
async fn history_on(sb: &Sandbox) {
    let mut s = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.expect("connect");
    let settings = privfence::signals::wanted_settings(&mut s).await.expect("settings");
    s.close().await;
    admin_exec(sb, &settings.into_iter().map(|w| w.enable_sql()).collect::<Vec<_>>()).await;
}

/// One case, one run: its own fixture, app and turn.
async fn run(sb: &'static Sandbox, case: Case, round: usize) -> (Case, Verdict, String) {
    let f = Fixture::create(sb, &format!("{}{}{round}", case.tag(), &sb.flavour.name()[..2])).await;
    let mut opts = test_options(sb, Duration::from_secs(2));
    opts.watch_settings = false;
    let app = match case {
        Case::RefusedLogins => {
            // Only a default role reaches the schema; the app starts once the cut is in force.
            f.role_only(sb).await;
            opts.window = Duration::from_secs(20);
            Some(f.late_app(&sb.primary, Duration::from_millis(1500)))
        }
        Case::Idle => {
            let housekeeping = [
                "SELECT 1",
                "SHOW VARIABLES LIKE 'version'",
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
                "SELECT @@version",
            ];
            let a = f.app(&sb.primary, &housekeeping);
            Some(tokio::spawn(async move { a }))
        }
        Case::OtherTables | Case::KilledAndReconnected => {
            let a = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders", "SELECT 1"]);
            Some(tokio::spawn(async move { a }))
        }
    };
    if case == Case::KilledAndReconnected {
        // Midway through the window, someone ends every connection of the account.
        let user = f.user.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let mut c = sb.primary.conn().await.expect("admin connection");
            let ids: Vec<u64> =
                c.query(format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = {}", qs(&user))).await.unwrap_or_default();
            for id in ids {
                let _ = c.query_drop(format!("KILL CONNECTION {id}")).await;
            }
            c.disconnect().await.ok();
        });
        opts.window = Duration::from_secs(3);
    }
    let r = turn(sb, &f, opts, &[]).await;
    if let Some(h) = app {
        h.await.expect("app").stop().await;
    }
    (case, r.verdict, format!("{}: {}", r.reason, r.evidence.join(" | ")))
}

async fn matrix(flavour: Flavour, rounds: usize) {
    let sb = sandbox(flavour);
    history_on(sb).await;
    let mut wrong = Vec::new();
    for round in 0..rounds {
        let runs: Vec<_> = CASES.iter().map(|c| tokio::spawn(run(sb, *c, round))).collect();
        for h in runs {
            let (case, verdict, why) = h.await.expect("run");
            if verdict != case.expected() {
                wrong.push(format!("round {round} {case:?}: {verdict:?} ({why})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{flavour}: {} wrong verdict(s) in {rounds} rounds:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_20_rounds() {
    matrix(Flavour::MariaDb, 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_5_rounds() {
    matrix(Flavour::MySql, 5).await
}
