//! Integration tests of `privfence::notify` over a real D-Bus session bus, and of hook commands.
//!
//! Each notification test starts a private `dbus-daemon` (installing the `dbus` package first
//! when it is missing and we are root, as on a fresh CI machine) and, where the scenario needs
//! one, a listener that owns `org.freedesktop.Notifications` and records every call.
//!
//! `notify-rust` finds the bus only through the environment (`DBUS_SESSION_BUS_ADDRESS`,
//! `XDG_RUNTIME_DIR`), and changing the environment of a multithreaded test process is racy. So
//! the call under test runs in a child process: this same test binary, re-run with
//! `child_notify --exact --ignored` and its environment set at spawn. The child prints one
//! `PRIVFENCE-CHILD` line with the outcome; the parent asserts on it and on what the listener
//! recorded.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // the seed and child-process results are printed for people

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use privfence::notify::{self, Delivery, HookError, Notice, Urgency};
use zbus::export::futures_core::Stream;

/// Set in the child's environment: marks the run as a child and names the scenario.
const CHILD_MARKER: &str = "PRIVFENCE_TEST_NOTIFY_CHILD";
/// Prefix of the outcome line the child prints.
const CHILD_LINE: &str = "PRIVFENCE-CHILD\t";
const SUMMARY: &str = "privfence: grant drift on db1";
const BODY: &str = "2 accounts drifted; report /var/lib/privfence/reports/audit.md";

// ---------------------------------------------------------------------------------------------
// A private session bus.

/// A `dbus-daemon` of our own, killed on drop.
struct SessionBus {
    daemon: Child,
    address: String,
    /// Holds the config and the socket.
    _dir: tempfile::TempDir,
}

impl SessionBus {
    /// Starts a session bus with a minimal config (no service activation, so a missing daemon is
    /// reported at once instead of being looked for in `/usr/share/dbus-1/services`).
    fn start() -> SessionBus {
        ensure_dbus_daemon();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("session.conf");
        std::fs::write(&config, bus_config(dir.path())).expect("write bus config");
        // Its stderr (policy rejections, an fd-limit warning as root) goes to a file nobody has
        // to drain, read only if it fails to start.
        let log = dir.path().join("dbus-daemon.log");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("spawn dbus-daemon");
        let mut line = String::new();
        let stdout = daemon.stdout.take().expect("daemon stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read bus address");
        let address = line.trim().to_owned();
        if address.is_empty() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("dbus-daemon did not start: {log}");
        }
        SessionBus { daemon, address, _dir: dir }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A session-bus config that works as root in a container.
fn bus_config(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        dir.display()
    )
}

/// Makes sure `dbus-daemon` exists: installs the `dbus` package as root, else fails clearly.
fn ensure_dbus_daemon() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if has_dbus_daemon() {
            return Ok(());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("dbus-daemon not found: install dbus (apt-get install -y dbus)".into());
        }
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "dbus"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
        };
        if !install().is_ok_and(|s| s.success()) {
            let _ = Command::new("apt-get").arg("update").status();
            let _ = install();
        }
        if has_dbus_daemon() {
            Ok(())
        } else {
            Err("dbus-daemon still missing after `apt-get install -y dbus`".into())
        }
    });
    if let Err(why) = ready {
        panic!("{why}");
    }
}

fn has_dbus_daemon() -> bool {
    Command::new("dbus-daemon").arg("--version").output().is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------------------------------------
// A notification daemon stand-in that records calls.

/// One recorded `Notify` call.
#[derive(Debug, Clone)]
struct NotifyCall {
    app_name: String,
    summary: String,
    body: String,
    urgency: Option<u8>,
}

/// How the listener answers `Notify`.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// Like a real daemon: returns an id.
    Reply,
    /// Records the call and never replies: a hung daemon.
    Never,
}

/// Owns `org.freedesktop.Notifications` on `address` and records calls until dropped.
struct Listener {
    calls: Arc<Mutex<Vec<NotifyCall>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    async fn start(address: &str, answer: Answer) -> Listener {
        let conn = zbus::connection::Builder::address(address).build().await.expect("listener connects to the bus");
        // The stream exists before the name is owned, so no call can be missed.
        let stream = zbus::MessageStream::from(&conn);
        conn.request_name("org.freedesktop.Notifications").await.expect("own the name");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(conn, stream, calls.clone(), answer));
        Listener { calls, task }
    }

    fn calls(&self) -> Vec<NotifyCall> {
        self.calls.lock().unwrap().clone()
    }
}

async fn serve(conn: zbus::Connection, mut stream: zbus::MessageStream, calls: Arc<Mutex<Vec<NotifyCall>>>, answer: Answer) {
    while let Some(Ok(msg)) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        let header = msg.header();
        let is_ours = header.message_type() == zbus::message::Type::MethodCall
            && header.interface().is_some_and(|i| i.as_str() == "org.freedesktop.Notifications");
        if !is_ours {
            continue;
        }
        let member = header.member().map(|m| m.as_str().to_owned()).unwrap_or_default();
        let sent = match member.as_str() {
            "Notify" => {
                calls.lock().unwrap().push(decode_notify(&msg));
                if answer == Answer::Never {
                    continue;
                }
                conn.reply(&header, &(7u32,)).await
            }
            "GetCapabilities" => conn.reply(&header, &(vec!["body".to_owned()],)).await,
            "GetServerInformation" => conn.reply(&header, &("recorder", "privfence-tests", "0", "1.2")).await,
            "CloseNotification" => conn.reply(&header, &()).await,
            _ => {
                let name = "org.freedesktop.DBus.Error.UnknownMethod";
                conn.reply_error(&header, name, &(format!("no method {member}"),)).await
            }
        };
        sent.expect("listener replies");
    }
}

type NotifyArgs = (String, u32, String, String, String, Vec<String>, HashMap<String, zbus::OwnedVariant>, i32);

fn decode_notify(msg: &zbus::Message) -> NotifyCall {
    let (app_name, _replaces, _icon, summary, body, _actions, hints, _expire): NotifyArgs =
        msg.body().deserialize().expect("Notify arguments (susssasa{sv}i)");
    let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
    NotifyCall { app_name, summary, body, urgency }
}

// ---------------------------------------------------------------------------------------------
// The child process that calls `notify`.

/// What the child saw.
#[derive(Debug)]
struct Outcome {
    delivery: Delivery,
    elapsed: Duration,
}

/// Runs `notify` in a child process with `bus` as its session bus address (`None`: unset, and no
/// `$XDG_RUNTIME_DIR/bus` either).
async fn notify_in_child(bus: Option<&str>) -> Outcome {
    let runtime_dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args(["child_notify", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    if let Some(address) = bus {
        child.env("DBUS_SESSION_BUS_ADDRESS", address);
    }
    let out = child.output().await.expect("run child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints `test child_notify ... ` on the same line, before ours.
    let line = stdout.lines().find_map(|l| l.split_once(CHILD_LINE).map(|(_, rest)| rest));
    let Some(line) = line.filter(|_| out.status.success()) else {
        panic!("child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    };
    parse_outcome(line)
}

fn parse_outcome(line: &str) -> Outcome {
    let mut fields = line.splitn(3, '\t');
    let millis: u64 = fields.next().unwrap().parse().unwrap();
    let delivery = match (fields.next().unwrap(), fields.next().unwrap_or("")) {
        ("delivered", _) => Delivery::Delivered,
        (_, reason) => Delivery::Fallback(reason.to_owned()),
    };
    Outcome { delivery, elapsed: Duration::from_millis(millis) }
}

/// Not a test of its own: the body of the child process started by [`notify_in_child`].
#[tokio::test]
#[ignore = "child process of the notify tests, which run it"]
async fn child_notify() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let notice = Notice::new(SUMMARY, BODY).with_urgency(Urgency::Critical);
    let started = Instant::now();
    let delivery = notify::notify(&notice).await;
    let millis = started.elapsed().as_millis();
    let (kind, reason) = match delivery {
        Delivery::Delivered => ("delivered", String::new()),
        Delivery::Fallback(reason) => ("fallback", reason),
    };
    println!("{CHILD_LINE}{millis}\t{kind}\t{}", reason.replace('\n', " "));
}

fn fallback_reason(outcome: &Outcome) -> &str {
    match &outcome.delivery {
        Delivery::Fallback(reason) => reason,
        Delivery::Delivered => panic!("expected a fallback, got {outcome:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Notification scenarios.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_is_delivered_to_the_daemon_on_the_session_bus() {
    let bus = SessionBus::start();
    let listener = Listener::start(&bus.address, Answer::Reply).await;
    let outcome = notify_in_child(Some(&bus.address)).await;
    assert_eq!(outcome.delivery, Delivery::Delivered, "{outcome:?}");
    let calls = listener.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].app_name, "privfence");
    assert_eq!(calls[0].summary, SUMMARY);
    assert_eq!(calls[0].body, BODY);
    assert_eq!(calls[0].urgency, Some(2), "Critical is urgency 2");
}

#[tokio::test]
async fn no_session_bus_falls_back_at_once() {
    let outcome = notify_in_child(None).await;
    let reason = fallback_reason(&outcome);
    assert!(reason.starts_with("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset"), "{reason}");
    assert!(outcome.elapsed < Duration::from_secs(1), "{outcome:?}");
}

#[tokio::test]
async fn dead_bus_address_falls_back_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = format!("unix:path={}", dir.path().join("no-such-bus").display());
    let outcome = notify_in_child(Some(&address)).await;
    let reason = fallback_reason(&outcome);
    assert!(reason.starts_with("cannot reach the D-Bus session bus"), "{reason}");
    assert!(reason.contains("no-such-bus"), "{reason}");
    assert!(outcome.elapsed < Duration::from_secs(5), "{outcome:?}");
}

#[tokio::test]
async fn bus_without_notification_daemon_falls_back() {
    let bus = SessionBus::start();
    let outcome = notify_in_child(Some(&bus.address)).await;
    let reason = fallback_reason(&outcome);
    assert!(reason.contains("no notification daemon owns org.freedesktop.Notifications"), "{reason}");
    assert!(outcome.elapsed < Duration::from_secs(5), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_daemon_is_abandoned_after_the_timeout() {
    let bus = SessionBus::start();
    let listener = Listener::start(&bus.address, Answer::Never).await;
    let outcome = notify_in_child(Some(&bus.address)).await;
    let reason = fallback_reason(&outcome);
    assert!(reason.contains("did not answer within 5s"), "{reason}");
    assert!(outcome.elapsed >= notify::NOTIFY_TIMEOUT, "{outcome:?}");
    assert!(outcome.elapsed < notify::NOTIFY_TIMEOUT + Duration::from_secs(2), "{outcome:?}");
    assert_eq!(listener.calls().len(), 1, "the call reached the daemon");
}

// ---------------------------------------------------------------------------------------------
// Hooks.

fn report_in(dir: &Path) -> PathBuf {
    let report = dir.join("audit 2024-05-01.md");
    std::fs::write(&report, "# drift\n").expect("write report");
    report
}

#[tokio::test]
async fn hook_gets_report_path_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_in(dir.path());
    let out = dir.path().join("seen");
    let cmd = format!(r#"printf '%s|%s|%s|%s\n' "$1" "$PRIVFENCE_REPORT" "$PRIVFENCE_EXIT" "$PRIVFENCE_SUMMARY" > '{}'"#, out.display());
    let env = [(notify::ENV_EXIT, "1"), (notify::ENV_SUMMARY, "drift on db1")];
    let status = notify::run_hook(&cmd, &report, &env, notify::HOOK_TIMEOUT).await.unwrap();
    assert!(status.success(), "{status:?}");
    let seen = std::fs::read_to_string(&out).expect("hook wrote its file");
    let path = report.display();
    assert_eq!(seen, format!("{path}|{path}|1|drift on db1\n"));
}

#[tokio::test]
async fn failing_hook_reports_its_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_in(dir.path());
    let status = notify::run_hook("exit 3", &report, &[], notify::HOOK_TIMEOUT).await.unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(notify::describe_status(&status), "exit 3");
}

#[tokio::test]
async fn slow_hook_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_in(dir.path());
    let pidfile = dir.path().join("sleep.pid");
    let cmd = format!("sleep 30 & echo $! > '{}'; wait", pidfile.display());
    let started = Instant::now();
    let err = notify::run_hook(&cmd, &report, &[], Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, HookError::TimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("was killed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pidfile).expect("pid of the background sleep");
    assert!(process_is_gone(pid.trim()), "background sleep {pid} survived");
}

/// Gone or a zombie (PID 1 in a container may not reap orphans promptly).
fn process_is_gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
        if matches!(state, None | Some("Z" | "X")) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn unstartable_hook_is_a_spawn_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = report_in(dir.path());
    let err = notify::run_hook("echo \0", &report, &[], notify::HOOK_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, HookError::Spawn { .. }), "{err:?}");
}
