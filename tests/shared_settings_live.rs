//! Global settings two privfence processes share on one server (`engine::shared`), on both
//! flavours:
//!
//! - a turn that turned `event_scheduler` on leaves it on while another run's fail-safe event is
//!   still armed there (its process may be dead: that fail-safe must still fire), and `session
//!   resume` turns it off once no fail-safe needs it;
//! - a turn that turned the watch's settings on leaves them on while another privfence watch runs
//!   on the server, and `session resume` turns them off once that watch has ended;
//! - a watch whose relied-on setting is turned off under it (by an operator, or a privfence
//!   older than this rule) raises an alarm at its next poll instead of going silent.
//!
//! Each test has its own sandbox flavour's server settings to itself: this binary's tests change
//! global settings, so they run one after another (a mutex).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use mysql_async::prelude::*;
use privfence::db::{Flavour, Server};
use privfence::journal::{Journal, State};
use privfence::sandbox::Sandbox;
use privfence::signals::{AlarmKind, Monitor, SignalFiles, WatchTarget};
use std::time::Duration;
use support::session::{common_args, privfence, test_options, turn, Fixture};
use support::*;

/// Global settings are the server's: one test at a time per binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn global(sb: &Sandbox, sql: &str) -> String {
    let mut c = sb.primary.conn().await.expect("admin connection");
    let v: Option<String> = c.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.disconnect().await.ok();
    v.unwrap_or_default()
}

fn settings_on(f: &Fixture) -> Vec<String> {
    State::fold(&Journal::read(&f.journal()).expect("journal")).settings_on.into_iter().map(|(_, name, _)| name).collect()
}

fn resume(sb: &Sandbox, f: &Fixture) -> String {
    let reports = f.dir.path().join("reports");
    let mut args = vec!["session".to_string(), "resume".into()];
    args.extend(common_args(sb, f, &reports, false));
    let out = privfence(&args, &[]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "session resume: {text}");
    text
}

/// A watch of another account, standing for another privfence process's watch.
async fn other_watch(sb: &Sandbox, user: &str) -> Monitor {
    let target = WatchTarget { user: user.into(), tables: vec![], dependents: vec![], since_connection: u64::MAX };
    Monitor::start(&admin_spec(&sb.primary), "primary", target, SignalFiles::default()).await.expect("monitor")
}

async fn event_scheduler_stays_on_for_another_fail_safe(flavour: Flavour) {
    let _one = SERIAL.lock().await;
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("es{}", &flavour.name()[..2])).await;
    // Another run's armed fail-safe, whose process is gone: only its event is left.
    let other = format!("`privfence`.`failsafe_other_{}`", &flavour.name()[..2]);
    admin_exec(
        sb,
        &[
            "SET GLOBAL event_scheduler = OFF".into(),
            "CREATE DATABASE IF NOT EXISTS `privfence`".into(),
            format!("CREATE EVENT {other} ON SCHEDULE EVERY 1 HOUR ON COMPLETION PRESERVE ENABLE DO SELECT 1"),
        ],
    )
    .await;
    let mut opts = test_options(sb, Duration::from_secs(1));
    opts.failsafe = Some(Duration::from_secs(30));
    opts.watch_settings = false;
    let r = turn(sb, &f, opts, &[]).await;
    assert_eq!(global(sb, "SELECT @@GLOBAL.event_scheduler").await.to_uppercase(), "ON", "left on for the other fail-safe ({r:?})");
    assert_eq!(settings_on(&f), ["event_scheduler"], "still journaled as on");

    admin_exec(sb, &[format!("DROP EVENT {other}")]).await;
    let said = resume(sb, &f);
    assert_eq!(global(sb, "SELECT @@GLOBAL.event_scheduler").await.to_uppercase(), "OFF", "resume turned it off: {said}");
    assert!(settings_on(&f).is_empty(), "{said}");
}

async fn watch_settings_stay_on_for_another_watch(flavour: Flavour) {
    let _one = SERIAL.lock().await;
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("ws{}", &flavour.name()[..2])).await;
    // Everything the watch would turn on is off, as on a server with the defaults.
    let mut s = Server::connect(&admin_spec(&sb.primary)).await.expect("connect");
    admin_exec(sb, &["UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME LIKE 'events_statements%'".into()]).await;
    if flavour == Flavour::MariaDb {
        admin_exec(sb, &["SET GLOBAL userstat = 0".into()]).await;
    }
    let wanted = privfence::signals::wanted_settings(&mut s).await.expect("wanted settings");
    s.close().await;
    assert!(!wanted.is_empty(), "the watch has settings to turn on");

    let watching = other_watch(sb, "pf_someone_else").await;
    let opts = test_options(sb, Duration::from_secs(1));
    let r = turn(sb, &f, opts, &[]).await;
    let on = settings_on(&f);
    assert_eq!(on.len(), wanted.len(), "every setting the turn turned on is still on, and journaled so ({r:?}): {on:?}");
    let history = global(sb, "SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'events_statements_history'").await;
    assert_eq!(history, "YES", "the other watch keeps its statement history");

    watching.close().await;
    let said = resume(sb, &f);
    assert!(settings_on(&f).is_empty(), "{said}");
    let history = global(sb, "SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'events_statements_history'").await;
    assert_eq!(history, "NO", "resume turned it back off once no watch relies on it: {said}");
    if flavour == Flavour::MariaDb {
        assert_eq!(global(sb, "SELECT @@GLOBAL.userstat").await, "0", "{said}");
    }
}

async fn a_setting_turned_off_under_a_watch_is_an_alarm(flavour: Flavour) {
    let _one = SERIAL.lock().await;
    let sb = sandbox(flavour);
    let mut s = Server::connect(&admin_spec(&sb.primary)).await.expect("connect");
    let wanted = privfence::signals::wanted_settings(&mut s).await.expect("wanted settings");
    s.close().await;
    admin_exec(sb, &wanted.iter().map(|w| w.enable_sql()).collect::<Vec<_>>()).await;
    let mut knobs = vec!["UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME LIKE 'events_statements_history%'"];
    if flavour == Flavour::MariaDb {
        knobs.push("SET GLOBAL userstat = 0");
    }
    for off in knobs {
        admin_exec(sb, &wanted.iter().map(|w| w.enable_sql()).collect::<Vec<_>>()).await;
        if flavour == Flavour::MariaDb {
            admin_exec(sb, &["SET GLOBAL userstat = 1".into()]).await;
        }
        let mut m = other_watch(sb, "pf_watched").await;
        let quiet = m.poll().await.expect("poll");
        assert!(quiet.alarms.is_empty(), "{off}: nothing yet: {:?}", quiet.alarms);
        admin_exec(sb, &[off.to_string()]).await;
        let p = m.poll().await.expect("poll");
        let a = p.alarms.iter().find(|a| a.kind == AlarmKind::SettingOff).unwrap_or_else(|| panic!("{off}: no alarm: {:?}", p.alarms));
        assert!(a.cited.contains("is off now"), "{}", a.cited);
        let again = m.poll().await.expect("poll");
        assert!(again.alarms.iter().all(|a| a.kind != AlarmKind::SettingOff), "{off}: raised once: {:?}", again.alarms);
        m.close().await;
    }
    admin_exec(sb, &wanted.iter().map(|w| w.disable_sql()).collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_event_scheduler_stays_on_for_another_fail_safe() {
    event_scheduler_stays_on_for_another_fail_safe(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_event_scheduler_stays_on_for_another_fail_safe() {
    event_scheduler_stays_on_for_another_fail_safe(Flavour::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_watch_settings_stay_on_for_another_watch() {
    watch_settings_stay_on_for_another_watch(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_watch_settings_stay_on_for_another_watch() {
    watch_settings_stay_on_for_another_watch(Flavour::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_setting_turned_off_under_a_watch_is_an_alarm() {
    a_setting_turned_off_under_a_watch_is_an_alarm(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_setting_turned_off_under_a_watch_is_an_alarm() {
    a_setting_turned_off_under_a_watch_is_an_alarm(Flavour::MySql).await;
}
