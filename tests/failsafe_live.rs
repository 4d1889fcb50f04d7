//! Fail-safe cuts (issue 13), against a primary and a replica of both flavours, through the
//! binary as an operator runs it: SIGINT and SIGHUP in the middle of a watch restore at once
//! (exit 3, exact grants on both servers, the pooled app works again); a second SIGINT during
//! the restore stops it resumably (exit 4, then `session resume`); owners and exempt accounts
//! are refused before anything changes.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::journal::{Journal, Record};
use privfence::sandbox::Sandbox;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::session::{common_args, privfence, privfence_command, Fixture};
use support::*;

fn start_args(sb: &Sandbox, f: &Fixture, reports: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["session".to_string(), "start".into()];
    a.extend(common_args(sb, f, reports, true));
    a.extend(["--account", &f.account(), "--yes", "--kill-connections", "--poll", "50ms"].iter().map(|s| s.to_string()));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String]) -> std::process::Output {
    privfence(args, &[])
}

/// Starts privfence in the background, its output in files of the fixture's folder.
fn spawn(args: &[String], env: &[(&str, String)], f: &Fixture, name: &str) -> Child {
    let out = std::fs::File::create(f.dir.path().join(format!("{name}.out"))).unwrap();
    let err = std::fs::File::create(f.dir.path().join(format!("{name}.err"))).unwrap();
    privfence_command(args, env).stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("spawn privfence")
}

fn output_of(f: &Fixture, name: &str) -> String {
    let o = std::fs::read_to_string(f.dir.path().join(format!("{name}.out"))).unwrap_or_default();
    let e = std::fs::read_to_string(f.dir.path().join(format!("{name}.err"))).unwrap_or_default();
    format!("{o}{e}")
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn journal_types(f: &Fixture) -> Vec<Record> {
    Journal::read(&f.journal()).map(|e| e.into_iter().map(|e| e.record).collect()).unwrap_or_default()
}

fn has(f: &Fixture, ty: &str) -> bool {
    journal_types(f).iter().any(|r| serde_json::to_value(r).unwrap()["type"] == ty)
}

async fn wait_journal(f: &Fixture, ty: &str, timeout: Duration, child: &mut Child, name: &str) {
    let end = Instant::now() + timeout;
    while !has(f, ty) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("privfence ended ({st}) before {ty}: {}", output_of(f, name));
        }
        assert!(Instant::now() < end, "no {ty} in the journal within {timeout:?}: {}", output_of(f, name));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_verdict(f: &Fixture) -> Option<String> {
    journal_types(f).iter().rev().find_map(|r| match r {
        Record::Verdict { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// Grants equal `before` on the primary and (once caught up) on the replica.
async fn exact_everywhere(sb: &Sandbox, f: &Fixture, before: &BTreeSet<String>, what: &str) {
    assert_eq!(&f.canonical(&sb.primary).await, before, "{what}: grants exactly as before on the primary");
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    assert_eq!(&f.canonical(replica(sb)).await, before, "{what}: grants exactly as before on the replica");
}

/// SIGINT, then SIGHUP, in the middle of a watch: exit 3 within 5 s citing the signal, exact
/// grants on both servers, and the pooled app (default schema = the monolith's, its
/// connections opened during the cut) works again.
async fn signal_mid_watch(flavour: Flavour) {
    let sb = pair(flavour);
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGHUP, "SIGHUP")] {
        let f = Fixture::create(sb, &format!("sig{}{}", name[3..].to_lowercase(), flavour.name())).await;
        sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
        let before = f.canonical(&sb.primary).await;
        let reports = f.dir.path().join("reports");
        let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
        app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.expect("the app works before the cut");
        let mut child = spawn(&start_args(sb, &f, &reports, &["--window", "60s"]), &[], &f, "start");
        wait_journal(&f, "watch_begin", Duration::from_secs(60), &mut child, "start").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        signal(&child, sig);
        let st = wait_exit(&mut child, Duration::from_secs(5)).await;
        let took = t.elapsed();
        assert_eq!(st.and_then(|s| s.code()), Some(3), "{name}: exit 3 within 5 s (took {took:?}): {}", output_of(&f, "start"));
        let reason = last_verdict(&f).unwrap_or_default();
        assert!(reason.contains(&format!("interrupted ({name})")), "{name}: the verdict says why: {reason}");
        exact_everywhere(sb, &f, &before, name).await;
        let ok = app.wait_success_after(Instant::now(), Duration::from_secs(2)).await;
        let stats = app.stop().await;
        assert!(ok.is_some(), "{name}: the app works after the restore: {stats:?}");
        let status = run(&[
            "session".into(),
            "status".into(),
            "--service".into(),
            f.service(),
            "--journal".into(),
            f.journal().display().to_string(),
        ]);
        assert_eq!(status.status.code(), Some(0), "{name}: status is clean: {}", text(&status));
    }
}

both_flavours!(sigint_and_sighup_mid_watch_restore_at_once, signal_mid_watch);

/// A second SIGINT while the restore runs stops it between statements (exit 4, saying how to
/// go on); `session resume` then finishes it exactly.
async fn second_sigint(flavour: Flavour) {
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("sig2{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    // The restore stalls 3 s right after its first journal line, so the second SIGINT lands in it.
    let env = [("PRIVFENCE_STALL_AT_LABEL", "restore_begin:3000".to_string())];
    let mut child = spawn(&start_args(sb, &f, &reports, &["--window", "60s"]), &env, &f, "start");
    wait_journal(&f, "watch_begin", Duration::from_secs(60), &mut child, "start").await;
    signal(&child, libc::SIGINT);
    wait_journal(&f, "restore_begin", Duration::from_secs(5), &mut child, "start").await;
    signal(&child, libc::SIGINT);
    let st = wait_exit(&mut child, Duration::from_secs(10)).await;
    let said = output_of(&f, "start");
    assert_eq!(st.and_then(|s| s.code()), Some(4), "a second SIGINT stops the restore: {said}");
    assert!(said.contains("session resume"), "it says how to go on: {said}");
    assert!(!has(&f, "restore_done"), "the restore did not finish");
    let status =
        run(&["session".into(), "status".into(), "--service".into(), f.service(), "--journal".into(), f.journal().display().to_string()]);
    assert_eq!(status.status.code(), Some(4), "status: the journal needs attention: {}", text(&status));
    assert!(
        text(&status).contains("fail-safe is armed on the primary and no privfence is running"),
        "status says the fail-safe is armed and when it fires: {}",
        text(&status)
    );
    let mut args = vec!["session".to_string(), "resume".into()];
    args.extend(common_args(sb, &f, &reports, true));
    let r = run(&args);
    assert_eq!(r.status.code(), Some(3), "resume finishes the restore: {}", text(&r));
    exact_everywhere(sb, &f, &before, "after resume").await;
}

both_flavours!(a_second_sigint_stops_the_restore_resumably, second_sigint);

/// `plan` and `session start` refuse a service's owner (exit 2, nothing changed), and an exempt
/// account unless `--even-if-exempt`.
async fn owners_and_exempt(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("own{}", flavour.name())).await;
    let owner = format!("'pfo_{}'@'%'", f.tag);
    let exempt = format!("pfx_{}", f.tag);
    admin_exec(sb, &[format!("CREATE USER '{exempt}'@'%'"), format!("GRANT SELECT ON `{}`.* TO '{exempt}'@'%'", f.schema)]).await;
    let policy = std::fs::read_to_string(f.policy()).unwrap();
    std::fs::write(
        f.policy(),
        format!("{policy}[[service.{}.exempt]]\naccount = \"{exempt}\"\nreason = \"reporting, until Q3\"\n", f.service()),
    )
    .unwrap();
    let reports = f.dir.path().join("reports");
    let cnf = sb.primary.client_cnf.display().to_string();
    let plan = |acct: &str, extra: &[&str]| {
        let mut a: Vec<String> = ["plan", "--policy", &f.policy().display().to_string(), "--service", &f.service(), "--account", acct]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--defaults-file".to_string(), cnf.clone()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        run(&a)
    };
    let o = plan(&owner, &[]);
    assert_eq!(o.status.code(), Some(2), "an owner is refused: {}", text(&o));
    assert!(text(&o).contains("is an owner of service"), "{}", text(&o));
    let o = plan(&exempt, &[]);
    assert_eq!(o.status.code(), Some(2), "an exempt account is refused: {}", text(&o));
    assert!(text(&o).contains("--even-if-exempt"), "{}", text(&o));
    let o = plan(&exempt, &["--even-if-exempt"]);
    assert_eq!(o.status.code(), Some(0), "--even-if-exempt plans it: {}", text(&o));
    let owner_name = privfence::model::AccountName::new(format!("pfo_{}", f.tag), "%");
    let before_owner = {
        let mut s = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.unwrap();
        let c = privfence::engine::snapshot::read(&mut s, std::slice::from_ref(&owner_name)).await.unwrap();
        s.close().await;
        c
    };
    let mut args = vec!["session".to_string(), "start".into()];
    args.extend(common_args(sb, &f, &reports, true));
    args.extend(["--account".to_string(), owner.clone(), "--yes".into()]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "session start refuses an owner: {}", text(&o));
    assert!(text(&o).contains("is an owner of service"), "{}", text(&o));
    assert!(!f.journal().exists() || journal_types(&f).iter().all(|r| !matches!(r, Record::AccountBegin { .. })), "nothing journaled");
    let mut s = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.unwrap();
    let now = privfence::engine::snapshot::read(&mut s, std::slice::from_ref(&owner_name)).await.unwrap();
    s.close().await;
    assert_eq!(now, before_owner, "the owner's grants are untouched");
}

both_flavours!(owners_and_exempt_accounts_are_refused, owners_and_exempt);

/// Polls until the account's grants on the primary equal `before`; the time it took.
async fn wait_restored(sb: &Sandbox, f: &Fixture, before: &BTreeSet<String>, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if &f.canonical(&sb.primary).await == before {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn count(s: &privfence::sandbox::Server, sql: &str) -> i64 {
    let mut c = privfence::db::Server::connect(&admin_spec(s)).await.expect("connect");
    let n: Option<i64> = c.first("test count", sql).await.expect("count");
    c.close().await;
    n.unwrap_or(0)
}

/// `kill -9` of privfence in the middle of a watch, and nobody resumes: within
/// `--failsafe-after` + 10 s the server has restored the account by itself (grants equal the
/// snapshot on the primary and the replica) and the pooled app, whose connections were opened
/// during the cut with the monolith's schema as default, works again. A later `resume`
/// reports the fail-safe and exits 3; the event and procedure are gone from both servers.
#[allow(clippy::print_stderr)] // the measured time, for people
async fn kill9_mid_watch(flavour: Flavour) {
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("k9{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.expect("the app works before the cut");
    let mut child = spawn(&start_args(sb, &f, &reports, &["--window", "120s", "--failsafe-after", "4s"]), &[], &f, "start");
    wait_journal(&f, "watch_begin", Duration::from_secs(60), &mut child, "start").await;
    assert!(journal_types(&f).iter().any(|r| matches!(r, Record::Failsafe { .. })), "the fail-safe was armed");
    assert_ne!(f.canonical(&sb.primary).await, before, "the cut is in force");
    app.wait_success_after(Instant::now(), Duration::from_secs(5)).await.expect("the app works on other tables during the cut");
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let t = Instant::now();
    let took = wait_restored(sb, &f, &before, Duration::from_secs(14)).await;
    assert!(took.is_some(), "the server restored the account within failsafe-after + 10 s: {}", output_of(&f, "start"));
    let took = t.elapsed();
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    assert_eq!(f.canonical(replica(sb)).await, before, "the restore reached the replica");
    let ok = app.wait_success_after(Instant::now(), Duration::from_secs(3)).await;
    let stats = app.stop().await;
    assert!(ok.is_some(), "the pooled app works again after the fail-safe: {stats:?}");
    assert!(
        count(&sb.primary, "SELECT COUNT(*) FROM privfence.fired WHERE done_at IS NOT NULL").await >= 1,
        "the fail-safe recorded that it fired"
    );
    eprintln!("{}: restored by the server {took:?} after kill -9 (failsafe-after 4s)", flavour.name());
    let mut args = vec!["session".to_string(), "resume".into()];
    args.extend(common_args(sb, &f, &reports, true));
    let r = run(&args);
    assert_eq!(r.status.code(), Some(3), "resume closes the turn as restored: {}", text(&r));
    assert!(text(&r).contains("server-side fail-safe after"), "resume cites the fail-safe: {}", text(&r));
    assert!(last_verdict(&f).unwrap_or_default().starts_with("server-side fail-safe after"));
    exact_everywhere(sb, &f, &before, "after resume").await;
    let events = "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'privfence'";
    let procs = "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'privfence'";
    assert_eq!(count(&sb.primary, events).await, 0, "disarmed: no event left on the primary");
    assert_eq!(count(&sb.primary, procs).await, 0, "disarmed: no procedure left on the primary");
    assert_eq!(count(replica(sb), events).await, 0, "no event left on the replica");
    let status =
        run(&["session".into(), "status".into(), "--service".into(), f.service(), "--journal".into(), f.journal().display().to_string()]);
    assert_eq!(status.status.code(), Some(0), "status is clean: {}", text(&status));
}

both_flavours!(kill9_mid_watch_the_server_restores_by_itself, kill9_mid_watch);

/// SIGSTOP for longer than `--failsafe-after` (a hang): the server restores the account; after
/// SIGCONT privfence notices, neither re-cuts nor passes, and exits 3 citing the fail-safe.
async fn sigstop_hang(flavour: Flavour) {
    let sb = pair(flavour);
    let f = Fixture::create(sb, &format!("stop{}", flavour.name())).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.expect("replica caught up");
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let mut child = spawn(&start_args(sb, &f, &reports, &["--window", "20s", "--failsafe-after", "3s"]), &[], &f, "start");
    wait_journal(&f, "watch_begin", Duration::from_secs(60), &mut child, "start").await;
    signal(&child, libc::SIGSTOP);
    let took = wait_restored(sb, &f, &before, Duration::from_secs(13)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&child, libc::SIGCONT);
    assert!(took.is_some(), "the server restored the account while privfence hung");
    let st = wait_exit(&mut child, Duration::from_secs(30)).await;
    let said = output_of(&f, "start");
    assert_eq!(st.and_then(|s| s.code()), Some(3), "privfence notices and exits 3: {said}");
    let reason = last_verdict(&f).unwrap_or_default();
    assert!(reason.starts_with("server-side fail-safe after"), "the verdict cites the fail-safe: {reason}\n{said}");
    let records = journal_types(&f);
    let steps = records.iter().find_map(|r| if let Record::AccountBegin { steps, .. } = r { Some(steps.len()) } else { None });
    let cut_statements = records.iter().filter(|r| matches!(r, Record::Intent { phase: privfence::journal::Phase::Cut, .. })).count();
    assert_eq!(Some(cut_statements), steps, "no re-cut after the hang");
    assert!(!records.iter().any(|r| matches!(r, Record::Verdict { verdict: privfence::journal::Verdict::Passed, .. })), "never passed");
    exact_everywhere(sb, &f, &before, "after the hang").await;
    let ok = app.wait_success_after(Instant::now(), Duration::from_secs(3)).await;
    let stats = app.stop().await;
    assert!(ok.is_some(), "the app works: {stats:?}");
}

both_flavours!(sigstop_longer_than_failsafe_after_then_sigcont, sigstop_hang);

/// A primary started with `event_scheduler=DISABLED`: the cut is refused before anything
/// changes (exit 2, saying why and what to do), unless `--no-failsafe`.
async fn unarmable(flavour: Flavour) {
    let mut o = privfence::sandbox::SandboxOptions::new(flavour, privfence::sandbox::Topology::Single);
    o.extra_args = vec!["--event-scheduler=DISABLED".into()];
    let sb = Sandbox::start(o).await.expect("a server with event_scheduler=DISABLED");
    let f = Fixture::create(&sb, &format!("dis{}", flavour.name())).await;
    let before = f.canonical(&sb.primary).await;
    let reports = f.dir.path().join("reports");
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let o = run(&start_args(&sb, &f, &reports, &["--window", "2s"]));
    assert_eq!(o.status.code(), Some(2), "refused: {}", text(&o));
    assert!(text(&o).contains("DISABLED") && text(&o).contains("--no-failsafe"), "it says why and what to do: {}", text(&o));
    assert!(text(&o).contains("nothing was changed"), "{}", text(&o));
    assert_eq!(f.canonical(&sb.primary).await, before, "nothing changed");
    assert!(!journal_types(&f).iter().any(|r| matches!(r, Record::Intent { phase: privfence::journal::Phase::Cut, .. })));
    let o = run(&start_args(&sb, &f, &reports, &["--window", "2s", "--no-failsafe"]));
    app.stop().await;
    assert_eq!(o.status.code(), Some(0), "--no-failsafe cuts (and the app on other tables passes): {}", text(&o));
    assert_ne!(f.canonical(&sb.primary).await, before, "the cut stays");
    sb.destroy().expect("destroy");
}

both_flavours!(an_unarmable_server_refuses_the_cut_unless_no_failsafe, unarmable);

/// `privfence failsafe status|remove`: after a turn the schema holds no armed fail-safe;
/// `remove` refuses while one is armed, then drops the schema.
async fn remove_schema(flavour: Flavour) {
    let sb =
        Sandbox::start(privfence::sandbox::SandboxOptions::new(flavour, privfence::sandbox::Topology::Single)).await.expect("a server");
    let f = Fixture::create(&sb, &format!("rm{}", flavour.name())).await;
    let reports = f.dir.path().join("reports");
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    let o = run(&start_args(&sb, &f, &reports, &["--window", "2s"]));
    app.stop().await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cnf = sb.primary.client_cnf.display().to_string();
    let journal = f.dir.path().join("schema.journal").display().to_string();
    let fs =
        |verb: &str| run(&["failsafe".into(), verb.into(), "--defaults-file".into(), cnf.clone(), "--journal".into(), journal.clone()]);
    let st = fs("status");
    assert_eq!(st.status.code(), Some(0), "nothing armed after the turn: {}", text(&st));
    let exists = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'privfence'";
    assert_eq!(count(&sb.primary, exists).await, 1, "the schema was created on first use");
    admin_exec(&sb, &["CREATE EVENT privfence.failsafe_test ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1".to_string()]).await;
    let r = fs("remove");
    assert_eq!(r.status.code(), Some(2), "refused while armed: {}", text(&r));
    assert_eq!(count(&sb.primary, exists).await, 1);
    admin_exec(&sb, &["DROP EVENT privfence.failsafe_test".to_string()]).await;
    let r = fs("remove");
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    assert_eq!(count(&sb.primary, exists).await, 0, "the schema is gone");
    sb.destroy().expect("destroy");
}

both_flavours!(failsafe_remove_drops_the_schema, remove_schema);

/// Connecting is bounded: a server that accepts the TCP connection and never answers fails the
/// command (exit 2) after `--connect-timeout`, or after the option file's `connect-timeout`.
#[test]
fn connecting_is_bounded() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let t = Instant::now();
    let o = run(&[
        "inventory".into(),
        "--no-defaults".into(),
        "-h".into(),
        "127.0.0.1".into(),
        "-P".into(),
        port.clone(),
        "-u".into(),
        "x".into(),
        "--connect-timeout".into(),
        "1s".into(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(t.elapsed() < Duration::from_secs(6), "gave up after about 1 s: {:?}", t.elapsed());
    assert!(text(&o).contains("--connect-timeout"), "{}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("c.cnf");
    std::fs::write(&cnf, format!("[client]\nhost=127.0.0.1\nport={port}\nuser=x\nconnect-timeout=1\n")).unwrap();
    let t = Instant::now();
    let o = run(&["inventory".into(), "--defaults-file".into(), cnf.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(t.elapsed() < Duration::from_secs(6), "the option file's connect-timeout applies: {:?}", t.elapsed());
    drop(silent);
}
