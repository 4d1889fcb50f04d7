//! Issue 10, the false pass: an app whose only privilege in the monolith schema comes from its
//! default role, connecting with that schema as its default database. After the cut every
//! reconnect fails at login (1044); the watch must see those refused logins and restore at
//! once, and the app must connect again after the restore. Both flavours, with the sandbox's
//! defaults (MariaDB: performance_schema, userstat and sql_errlog on, statement history off
//! until the watch turns it on).
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::journal::Verdict;
use std::time::{Duration, Instant};
use support::session::*;
use support::*;

async fn refused_logins_restore(flavour: Flavour) {
    let sb = sandbox(flavour);
    let f = Fixture::create(sb, &format!("l{}", flavour.name())).await;
    f.role_only(sb).await;
    let before = f.canonical(&sb.primary).await;
    // The app works before the cut (checked once), then starts its pool after the cut is in
    // force: its only symptom is that it cannot log in (a pre-cut connection would be denied
    // its next statement first; that case is `session_live`'s).
    let probe = f.app(&sb.primary, &["SELECT COUNT(*) FROM svc_items"]);
    assert!(probe.wait_success_after(Instant::now(), Duration::from_secs(10)).await.is_some(), "{flavour}: the app works before the cut");
    probe.stop().await;
    let late = f.late_app(&sb.primary, Duration::from_secs(2));
    let started = Instant::now();
    let r = turn(sb, &f, test_options(sb, Duration::from_secs(20)), &[]).await;
    let took = started.elapsed();
    let app = late.await.expect("the app");
    assert_eq!(r.verdict, Verdict::Restored, "{flavour}: {r:?}");
    assert!(r.reason.contains("refused login"), "{flavour}: the reason names the refused logins: {r:?}");
    assert!(r.evidence.iter().any(|e| e.contains("1044")), "{flavour}: the verdict cites the refused logins: {r:?}");
    assert!(took < Duration::from_secs(15), "{flavour}: restored long before the window's end ({took:?})");
    let restore = r.restore.as_ref().expect("restored");
    assert!(restore.exact, "{flavour}: {restore:?}");
    assert_eq!(f.canonical(&sb.primary).await, before, "{flavour}: grants exactly as before");
    let t = Instant::now();
    let ok = app.wait_success_after(t, Duration::from_secs(2)).await;
    let stats = app.stop().await;
    let outage = stats.outages.first().and_then(|o| Some(o.recovered?.duration_since(o.first_denied)));
    assert!(ok.is_some(), "{flavour}: the app connects and reads again within 2 s of the restore: {stats:?}");
    assert!(stats.denied > 0, "{flavour}: the app's logins were refused during the cut: {stats:?}");
    // The same latency as a denied statement's (tests/session_live.rs): a restore within
    // milliseconds of the first refused login; measured in benches/outage.rs.
    assert!(outage.is_some_and(|o| o < Duration::from_secs(2)), "{flavour}: outage {outage:?}, restore {:?}", restore.took);
}

both_flavours!(an_app_that_can_no_longer_log_in_is_restored, refused_logins_restore);
