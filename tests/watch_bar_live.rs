//! The session watch's progress through the built binary, both flavours (issue 14 item 3): on a
//! terminal (a pseudo-terminal from util-linux `script`) a bar over the window's seconds with
//! the counters as its message; off a terminal the plain status line, and no bar.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::sandbox::Sandbox;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::session::*;
use support::*;

/// Runs `cmd` on a pseudo-terminal (util-linux `script`): what a person at a terminal would see,
/// stdout and stderr together, and the exit code. The environment is `cmd`'s own (set again).
fn on_a_terminal(cmd: &Command) -> (Option<i32>, String) {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(quote).collect();
    let mut script = Command::new("script");
    script.args(["-qefc", &line.join(" "), "/dev/null"]).stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let o = script.output().expect("util-linux script (a pseudo-terminal for the command)");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `session start` of the fixture's account with a 3 s window.
fn start(sb: &Sandbox, f: &Fixture, reports: &Path) -> Command {
    let mut a = vec!["session".to_string(), "start".into()];
    a.extend(common_args(sb, f, reports, false));
    a.extend(["--account", &f.account(), "--yes", "--kill-connections", "--window", "3s", "--poll", "50ms"].iter().map(|s| s.to_string()));
    privfence_command(&a, &[])
}

async fn watch_bar(flavour: Flavour) {
    let sb = sandbox(flavour);
    // On a terminal: the bar, its seconds and the counters; no plain status line.
    let f = Fixture::create(sb, &format!("wb{}", flavour.name())).await;
    let app = f.app(&sb.primary, &["SELECT COUNT(*) FROM orders"]);
    app.wait_success_after(Instant::now(), Duration::from_secs(10)).await.expect("the app works before the cut");
    let (code, screen) = on_a_terminal(&start(sb, &f, &f.dir.path().join("reports")));
    app.stop().await;
    assert!(matches!(code, Some(0 | 5)), "passed or inconclusive: {code:?} {screen}");
    let bar = screen
        .split('\r')
        .find(|l| l.contains("watching ") && l.contains(" s · table statements "))
        .unwrap_or_else(|| panic!("{screen:?}"));
    assert!(bar.contains("/3 s · ") && bar.contains("privilege errors ") && bar.contains("connections "), "{bar:?}");
    assert!(!screen.contains("s left · table statements"), "no plain status line under the bar: {screen:?}");
    // Off a terminal: the plain status line, no bar and no escape sequence.
    let g = Fixture::create(sb, &format!("wp{}", flavour.name())).await;
    let o = start(sb, &g, &g.dir.path().join("reports")).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 5)), "{err}");
    assert!(err.lines().any(|l| l.starts_with("watching ") && l.contains("s left · table statements ")), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b') && !err.contains(" s · table statements "), "no bar off a terminal: {err:?}");
}
both_flavours!(the_watch_draws_a_bar_over_its_window_on_a_terminal_only, watch_bar);
