//! Guided sessions against real servers, both flavours: a cut that breaks an app is restored
//! exactly and the app works again within 2 s; a cut of an app using other tables passes; an
//! idle app is inconclusive; `privfence` killed with SIGKILL at every journal point, then
//! `resume` or `rollback`, leaves the account's grants exactly as before and its app working;
//! a two-operator lock; bad input changes nothing.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::journal::{Record, Verdict, JOURNAL_FORMAT};
use privfence::model::ident::quote_ident as qi;
use privfence::model::TableName;
use privfence::sandbox::{self, Sandbox};
use privfence::session::{self, Session};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::session::*;
use support::*;

fn tables(f: &Fixture, names: &[&str]) -> Vec<TableName> {
    names.iter().map(|n| TableName::new(&f.schema, *n)).collect()
}

async fn restored_and_app_recovers(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("r{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM svc_items", "SELECT COUNT(*) FROM orders"]);
    assert!(app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.is_some(), "the app works before the cut");
    let r = turn(sb, &f, test_options(sb, Duration::from_secs(10)), &[]).await;
    assert_eq!(r.verdict, Verdict::Restored, "{r:?}");
    assert!(r.evidence.iter().any(|e| e.contains("1142")), "the verdict cites the denied statement's signal row: {r:?}");
    let restore = r.restore.as_ref().expect("restored");
    assert!(restore.exact, "{restore:?}");
    assert_eq!(f.canonical(&sb.primary).await, before, "grants exactly as before");
    let t = Instant::now();
    let ok = app.wait_success_after(t, Duration::from_secs(2)).await;
    let stats = app.stop().await;
    assert!(ok.is_some(), "the app's statements succeed again within 2 s of the restore: {stats:?}");
    assert!(stats.denied > 0, "the app was denied during the cut: {stats:?}");
    let _ = tables(&f, &["svc_items"]);
}

both_flavours!(a_broken_app_is_restored, restored_and_app_recovers);

async fn passes_and_inconclusive(flavour: Flavour) {
    let sb = sandbox(flavour);
    // An app that uses only the monolith's tables passes, and its cut stays.
    let f = Fixture::create(sb, &format!("p{}", flavour.name())).await;
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders", "SELECT 1"]);
    let r = turn(sb, &f, test_options(sb, Duration::from_secs(3)), &[]).await;
    app.stop().await;
    assert_eq!(r.verdict, Verdict::Passed, "{r:?}");
    assert!(r.restore.is_none());
    assert!(!r.evidence.is_empty(), "a pass cites the activity rows: {r:?}");
    let now = f.canonical(&sb.primary).await;
    assert!(!now.iter().any(|a| a.contains(&format!("`{}`.*", f.schema))), "the schema grant is gone: {now:?}");
    // An idle app (pool pings only) is inconclusive, and restored.
    let g = Fixture::create(sb, &format!("i{}", flavour.name())).await;
    let before = g.canonical(&sb.primary).await;
    let idle = g.app(&sb.primary, &["SELECT 1"]);
    let r = turn(sb, &g, test_options(sb, Duration::from_secs(2)), &[]).await;
    idle.stop().await;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");
    assert!(r.restore.as_ref().is_some_and(|x| x.exact));
    assert_eq!(g.canonical(&sb.primary).await, before);
}

both_flavours!(pass_and_inconclusive, passes_and_inconclusive);

fn start_args(sb: &Sandbox, f: &Fixture, reports: &Path) -> Vec<String> {
    let mut a = vec!["session".to_string(), "start".into()];
    a.extend(common_args(sb, f, reports, false));
    a.extend(["--account", &f.account(), "--yes", "--kill-connections", "--window", "4s", "--poll", "50ms"].iter().map(|s| s.to_string()));
    a
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// SIGKILL at every crash point of a turn that ends in a restore, then `resume` or
/// `rollback` (alternating): the grants are exactly as before and the app works. Point N is
/// the N-th durable point (journal fsync, or a statement run before its outcome is written);
/// the loop goes on until a run has fewer than N points (how many connections the restore
/// ends varies with the app's reconnects).
async fn crash_everywhere(flavour: Flavour) {
    use std::os::unix::process::ExitStatusExt;
    let sb = sandbox(flavour);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let kinds = [
        "header",
        "topology",
        "note",
        "account_begin",
        "intent",
        "executed",
        "outcome",
        "watermark",
        "cut_done",
        "watch_begin",
        "restore_begin",
        "restore_done",
        "verdict",
    ];
    let mut n = 0;
    let mut extra: Vec<String> = Vec::new();
    loop {
        n += 1;
        // After the numbered points, any kind whose index moved past the end is crashed by label.
        let by_label = if extra.is_empty() { None } else { Some(extra.remove(0)) };
        let f = Fixture::create(sb, &format!("c{n}{}", flavour.name())).await;
        let before = f.canonical(&sb.primary).await;
        let reports = f.dir.path().join("reports");
        let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM svc_items"]);
        app.wait_success_after(Instant::now(), Duration::from_secs(5)).await.expect("the app works before the cut");
        let at = match &by_label {
            Some(kind) => ("PRIVFENCE_CRASH_AT_LABEL", kind.to_string()),
            None => ("PRIVFENCE_CRASH_AT", n.to_string()),
        };
        let o = privfence(&start_args(sb, &f, &reports), &[at, ("PRIVFENCE_CRASH_TRACE", "1".into())]);
        let label = String::from_utf8_lossy(&o.stderr)
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("privfence crash point "))
            .map(|l| l.split_once(": ").map_or(l, |x| x.1).to_string())
            .unwrap_or_default();
        if o.status.signal() != Some(9) {
            // This run had fewer points: every point was crashed at once.
            assert!(by_label.is_none(), "a {by_label:?} point exists: {}", text(&o));
            assert_eq!(o.status.code(), Some(3), "a turn without a crash is restored: {}", text(&o));
            app.stop().await;
            assert_eq!(f.canonical(&sb.primary).await, before);
            extra = kinds.iter().filter(|k| !seen.contains(**k)).map(|k| k.to_string()).collect();
            if extra.is_empty() {
                break;
            }
            continue;
        }
        seen.insert(label.split(' ').next().unwrap_or_default().to_string());
        let verb = if n % 2 == 0 { "resume" } else { "rollback" };
        let mut args = vec!["session".to_string(), verb.to_string()];
        args.extend(common_args(sb, &f, &reports, false));
        let r = privfence(&args, &[]);
        assert!(matches!(r.status.code(), Some(0) | Some(3)), "{verb} after a crash at point {n} ({label}) succeeds: {}", text(&r));
        assert_eq!(f.canonical(&sb.primary).await, before, "grants exactly as before after {verb} at point {n} ({label})");
        let t = Instant::now();
        let ok = app.wait_success_after(t, Duration::from_secs(2)).await;
        let stats = app.stop().await;
        assert!(ok.is_some(), "the app works after {verb} at point {n} ({label}): {stats:?}");
        let st = privfence(
            &["session".into(), "status".into(), "--service".into(), f.service(), "--journal".into(), f.journal().display().to_string()],
            &[],
        );
        assert_eq!(st.status.code(), Some(0), "status is clean after {verb} at point {n}: {}", text(&st));
        if by_label.is_some() && extra.is_empty() {
            break;
        }
    }
    assert!(n > 25, "a turn that ends in a restore passes many durable points (got {n})");
    for kind in kinds {
        assert!(seen.contains(kind), "a crash at a {kind} point was tested: {seen:?}");
    }
}

both_flavours!(sigkill_at_every_point_then_resume_or_rollback, crash_everywhere);

async fn lock_and_bad_input(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("l{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    // A second operator is refused while the lock is held.
    let mut holder = sb.primary.conn().await.unwrap();
    let got: Option<i64> = holder.query_first(format!("SELECT GET_LOCK('privfence:{}', 0)", f.service())).await.unwrap();
    assert_eq!(got, Some(1));
    let reports = f.dir.path().join("reports");
    let o = privfence(&start_args(sb, &f, &reports), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("another privfence session"), "{}", text(&o));
    holder.disconnect().await.ok();
    // Unknown accounts and services: clear errors, nothing changed, no journal entry for a turn.
    let mut args = start_args(sb, &f, &reports);
    let i = args.iter().position(|a| a == "--account").unwrap();
    args[i + 1] = "'nobody'@'%'".into();
    let o = privfence(&args, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nobody"), "{}", text(&o));
    let mut args = start_args(sb, &f, &reports);
    let i = args.iter().position(|a| a == "--service").unwrap();
    args[i + 1] = "no_such_service".into();
    let o = privfence(&args, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no service \"no_such_service\""), "{}", text(&o));
    assert_eq!(f.canonical(&sb.primary).await, before);
    // Resume with nothing to do.
    let o = privfence(
        &[vec!["session".into(), "status".into(), "--service".into(), f.service(), "--journal".into(), f.journal().display().to_string()]]
            .concat(),
        &[],
    );
    assert!(!text(&o).contains("interrupted"), "{}", text(&o));
}

both_flavours!(lock_and_bad_input, lock_and_bad_input);

/// A cut with a replica: an app that reads the service's table only from the replica is caught
/// there, and the restore reaches the replica (its grants equal the snapshot, the app works).
async fn replica_cut(flavour: Flavour) {
    let sb = pair(flavour);
    let replica = sb.replica.as_ref().expect("a replica");
    let f = Fixture::create(sb, &format!("rep{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let before = f.canonical(replica).await;
    assert_eq!(before, f.canonical(&sb.primary).await);
    let mut primary = privfence::engine::node::Node::connect(&admin_spec(&sb.primary), "primary").await.expect("connect");
    let found = primary.discover_replicas().await.expect("discover");
    assert_eq!(found, vec![format!("{}:{}", replica.host, replica.port)], "the primary reports its replica");
    primary.server.close().await;
    let app = f.app(replica, &["SELECT COUNT(*) FROM svc_items", "SELECT COUNT(*) FROM orders"]);
    app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.expect("the app works on the replica");
    let r = turn(sb, &f, test_options(sb, Duration::from_secs(10)), &[admin_spec(replica)]).await;
    assert_eq!(r.verdict, Verdict::Restored, "{r:?}");
    assert!(r.evidence.iter().any(|e| e.starts_with("replica1:")), "the alarm came from the replica: {r:?}");
    assert!(r.restore.as_ref().is_some_and(|x| x.exact), "{r:?}");
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    assert_eq!(f.canonical(replica).await, before, "the restore reached the replica");
    assert_eq!(f.canonical(&sb.primary).await, before);
    let ok = app.wait_success_after(Instant::now(), Duration::from_secs(2)).await;
    let stats = app.stop().await;
    assert!(ok.is_some(), "the replica app works again within 2 s: {stats:?}");
    assert!(stats.denied > 0, "the replica app was denied during the cut: {stats:?}");
}

both_flavours!(a_cut_reaches_the_replica_and_so_does_the_restore, replica_cut);

/// A server restart during the watch blinds the monitor: the session restores (once the
/// server is back) and the grants are exactly as before.
async fn restart_during_watch(flavour: Flavour) {
    let mut sb = Sandbox::start(sandbox::SandboxOptions::new(flavour, sandbox::Topology::Single)).await.expect("own sandbox");
    let f = Fixture::create(&sb, &format!("rs{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let today = chrono::Local::now().date_naive();
    let policy = privfence::policy::load(&f.policy(), today).expect("policy");
    let (server, inv) = inventory(&sb).await;
    server.close().await;
    let plan = privfence::plan::build(&inv, &policy, &f.service(), &f.account(), &Default::default()).expect("plan");
    let tables = session::guide::service_tables(&inv, policy.service(&f.service()).unwrap());
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: "test".into(),
        service: f.service(),
        policy: "p".into(),
        tables: tables.clone(),
    };
    let spec = admin_spec(&sb.primary);
    let opts = test_options(&sb, Duration::from_secs(30));
    let (journal, account) = (f.journal(), f.account());
    let task = tokio::spawn(async move {
        let mut s = Session::open(&journal, header, &spec, &[], opts).await.expect("open session");
        let r = s.cut_and_watch(&plan, &account, &tables, &[], vec![], &mut quiet()).await.expect("turn");
        s.close().await;
        r
    });
    // Restart once the watch has begun.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(f.journal()).unwrap_or_default();
        if text.contains("\"type\":\"watch_begin\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the watch began");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sb.restart_server(sandbox::Role::Primary).await.expect("restart");
    let r = tokio::time::timeout(Duration::from_secs(60), task).await.expect("the turn ends").expect("no panic");
    app.stop().await;
    assert_eq!(r.verdict, Verdict::Restored, "{r:?}");
    assert!(r.reason.contains("blind") || r.reason.contains("Restart"), "{r:?}");
    assert!(r.restore.as_ref().is_some_and(|x| x.exact), "{r:?}");
    assert_eq!(f.canonical(&sb.primary).await, before);
    sb.destroy().expect("destroy");
}

both_flavours!(a_restart_during_the_watch_ends_in_a_restore, restart_during_watch);

/// The demo's session: the reader is restored (and works again within 2 s), the app using
/// other tables passes, the idle one is inconclusive; every verdict cites signal rows.
async fn demo_verdicts(flavour: Flavour) {
    let seed = if flavour == Flavour::MariaDb { 11 } else { 12 };
    let sb = pair(flavour);
    // The demo's sample lives in `shop`; this binary's other tests use their own schemas.
    let mut sql = privfence::demo::sample_sql(flavour);
    sql.extend(privfence::demo::apps_sql());
    admin_exec(sb, &sql).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let work = tempfile::tempdir().unwrap();
    let turns = privfence::demo::session_demo(sb, seed, Duration::from_secs(4), work.path(), &mut quiet()).await.expect("demo session");
    assert_eq!(turns.len(), 3);
    for t in &turns {
        assert_eq!(t.result.verdict, t.behaviour.expected(), "{} ({:?}): {:?}", t.account, t.behaviour, t.result);
        assert!(!t.result.evidence.is_empty(), "the verdict of {} cites signal rows: {:?}", t.account, t.result);
    }
    let reader = &turns[0];
    assert!(reader.result.evidence.iter().any(|e| e.contains("1142")), "{:?}", reader.result);
    let back = reader.recovered_after.expect("the reader recovered");
    assert!(back <= Duration::from_secs(2), "the reader's statements succeed again within 2 s (took {back:?})");
    assert!(reader.result.restore.as_ref().is_some_and(|r| r.exact));
    assert!(turns[2].result.restore.as_ref().is_some_and(|r| r.exact), "the inconclusive cut is restored");
    let text = std::fs::read_to_string(work.path().join("media.journal")).unwrap();
    assert!(!text.contains("FROM media_attachments"), "no application statement text in the journal");
    let hash = regex::Regex::new(r"\*[0-9A-Fa-f]{40}|\$A\$0").unwrap();
    assert!(!hash.is_match(&text), "no password hash in the journal");
}

both_flavours!(the_demo_session_gives_three_verdicts, demo_verdicts);

/// `session start` without an account lists who can still touch the tables and ranks them by
/// evidence, changing nothing; `session status` reads the journal.
async fn candidates_listing(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("k{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    let mut args = vec!["session".to_string(), "start".into()];
    args.extend(common_args(sb, &f, &reports, false));
    let o = privfence(&args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("Who can still touch the service's tables"), "{out}");
    assert!(out.contains(&format!("'{}'@'%'", f.user)), "the app account is a candidate: {out}");
    assert!(out.contains("Candidates by evidence of non-use"), "{out}");
    assert!(text(&o).contains("pass --account"), "{}", text(&o));
    assert_eq!(f.canonical(&sb.primary).await, before, "listing changes nothing");
    let journal = std::fs::read_to_string(f.journal()).unwrap();
    assert!(!journal.contains("account_begin") && !journal.contains("\"intent\""), "{journal}");
}

both_flavours!(start_without_an_account_lists_and_ranks, candidates_listing);

/// Someone else changes the account's grants while its cut is in force: the rollback reports
/// the conflict, keeps that change, and undoes only what the session changed.
async fn conflicting_change(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("x{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let r = turn(sb, &f, test_options(sb, Duration::from_secs(2)), &[]).await;
    app.stop().await;
    assert_eq!(r.verdict, Verdict::Passed, "{r:?}");
    admin_exec(sb, &[format!("GRANT UPDATE ON {}.orders TO {}", qi(&f.schema), f.account())]).await;
    let reports = f.dir.path().join("reports");
    let mut args = vec!["session".to_string(), "rollback".into()];
    args.extend(common_args(sb, &f, &reports, false));
    args.extend(["--account".to_string(), f.account()]);
    let o = privfence(&args, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("changed since the cut, not by this session"), "{}", text(&o));
    let now = f.canonical(&sb.primary).await;
    let extra: BTreeSet<String> = now.difference(&before).cloned().collect();
    assert!(before.is_subset(&now), "every grant of the snapshot is back: {now:?}");
    assert_eq!(extra.len(), 1, "only the other change remains on top: {extra:?}");
    assert!(extra.iter().next().unwrap().contains("UPDATE"), "{extra:?}");
    let md = std::fs::read_to_string(reports.join(format!("session-{}.md", f.service()))).unwrap();
    assert!(md.contains("rolled back") && md.contains("changed by someone else"), "{md}");
}

both_flavours!(a_conflicting_change_is_kept_and_reported, conflicting_change);

/// A failing check command is an abnormality: the cut is restored at once.
async fn failing_check(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("ck{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let flag = f.dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let mut opts = test_options(sb, Duration::from_secs(20));
    opts.check = Some(format!("test -e '{}'", flag.display()));
    opts.check_every = Duration::from_millis(300);
    let flag2 = flag.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::fs::remove_file(flag2).ok();
    });
    let t = Instant::now();
    let r = turn(sb, &f, opts, &[]).await;
    app.stop().await;
    assert_eq!(r.verdict, Verdict::Restored, "{r:?}");
    assert!(r.reason.contains("check command failed"), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "restored long before the window's end");
    assert_eq!(f.canonical(&sb.primary).await, before);
}

both_flavours!(a_failing_check_command_restores, failing_check);

/// A server where privfence can read no privilege-error source (MySQL without
/// performance_schema): the cut is refused before anything changes.
async fn blind_server_refused(flavour: Flavour) {
    let mut opts = sandbox::SandboxOptions::new(flavour, sandbox::Topology::Single);
    opts.extra_args = vec!["--performance-schema=OFF".into()];
    if flavour == Flavour::MariaDb {
        // sql_errlog logs nothing at rate 0; privfence finds its file, but it shows nothing.
        opts.extra_args.extend(["--userstat=0".into(), "--sql-error-log-rate=0".into()]);
    }
    let sb = Sandbox::start(opts).await.expect("own sandbox");
    let f = Fixture::create(&sb, &format!("b{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    // By default the watch would turn userstat on (a source); here it may not.
    let mut args = start_args(&sb, &f, &reports);
    args.push("--no-watch-settings".into());
    let o = privfence(&args, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no privilege-error source"), "{}", text(&o));
    assert_eq!(f.canonical(&sb.primary).await, before, "nothing changed");
    let st = privfence(
        &["session".into(), "status".into(), "--service".into(), f.service(), "--journal".into(), f.journal().display().to_string()],
        &[],
    );
    assert_eq!(st.status.code(), Some(0), "the refused turn is closed: {}", text(&st));
    sb.destroy().expect("destroy");
}

both_flavours!(a_server_without_error_sources_is_refused, blind_server_refused);
