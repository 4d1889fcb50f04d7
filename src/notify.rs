//! Telling someone: desktop notifications and hook commands.
//!
//! Two channels, both best-effort and bounded in time, so that a scheduled `audit` (or, later, a
//! guided session announcing a verdict or a restore) never hangs or fails because nobody could
//! be told:
//!
//! - [`notify`] sends a desktop notification over the D-Bus session bus through `notify-rust`
//!   (app name [`APP_NAME`]). It never fails and never panics: where no notification service
//!   exists it returns [`Delivery::Fallback`] with a reason for the caller to print as a warning.
//! - [`run_hook`] runs an operator's command through `sh -c` with the report path as `"$1"` and
//!   in the environment, for every other channel (mail, chat webhook, pager).
//!
//! # Finding the session bus
//!
//! `notify-rust` always connects through `zbus::Connection::session()`, which reads
//! `DBUS_SESSION_BUS_ADDRESS` and, when it is unset, falls back to `$XDG_RUNTIME_DIR/bus`
//! (`/run/user/$EUID/bus` without `XDG_RUNTIME_DIR`). [`notify`] checks the same places first so
//! that a cron job, which has neither, gets a clear reason at once instead of a socket error.
//!
//! # Hook output
//!
//! A hook's stdin is `/dev/null`, its stdout goes to privfence's **stderr** (stdout carries the
//! report data, `--format json` must stay parseable) and its stderr is inherited.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

/// The application name sent with every notification (desktops group notifications by it).
pub const APP_NAME: &str = "privfence";

/// How long [`notify`] may take, connection and call together.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on a hook command (`--exec`).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable carrying the report path to a hook (also passed as `"$1"`).
pub const ENV_REPORT: &str = "PRIVFENCE_REPORT";

/// Environment variable carrying the command's exit code to a hook (`0`, `1`, `2`...).
pub const ENV_EXIT: &str = "PRIVFENCE_EXIT";

/// Environment variable carrying a one-line summary to a hook.
pub const ENV_SUMMARY: &str = "PRIVFENCE_SUMMARY";

/// The D-Bus name a notification daemon owns (freedesktop Desktop Notifications spec).
const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";

/// How urgent a notification is; maps to the spec's `urgency` hint (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    /// Informational, e.g. a session step completed.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Needs a human: drift found, an account restored. Daemons keep these on screen.
    Critical,
}

/// A notification to send: what the desktop shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line, shown in bold (e.g. "privfence: grant drift on 3 servers").
    pub summary: String,
    /// Detail, a few lines at most (e.g. the report path).
    pub body: String,
    /// Lets the daemon decide how insistent to be.
    pub urgency: Urgency,
}

impl Notice {
    /// A notice of [`Urgency::Normal`].
    pub fn new(summary: impl Into<String>, body: impl Into<String>) -> Self {
        Notice { summary: summary.into(), body: body.into(), urgency: Urgency::Normal }
    }

    /// The same notice with another urgency.
    #[must_use]
    pub fn with_urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = urgency;
        self
    }
}

/// How a notification went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A notification daemon accepted it.
    Delivered,
    /// No notification service (no session bus, no daemon, or the call failed or timed out): the
    /// reason, for a warning.
    Fallback(String),
}

impl Delivery {
    /// Whether a daemon accepted the notification.
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered)
    }
}

/// Why no notification could be delivered; rendered into [`Delivery::Fallback`].
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    /// Neither the variable nor the default socket: typical of cron and system services.
    #[error(
        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset and no socket at {socket}); \
         desktop notifications need a user session, use --exec for other channels"
    )]
    NoSessionBus { socket: String },
    /// The address exists but nothing answers there.
    #[error("cannot reach the D-Bus session bus ({address}): {detail}")]
    Unreachable { address: String, detail: String },
    /// The bus works but no notification daemon runs on it.
    #[error("no notification daemon owns {NOTIFICATIONS_NAME} on the session bus ({address})")]
    NoDaemon { address: String },
    /// The bus or the daemon did not answer in time.
    #[error("the notification service ({address}) did not answer within {limit:?}")]
    TimedOut { address: String, limit: Duration },
    /// Any other D-Bus error from the call.
    #[error("the notification call failed ({address}): {detail}")]
    CallFailed { address: String, detail: String },
    /// A programming error: [`notify`] needs a Tokio runtime.
    #[error("notification not sent: not running inside a Tokio runtime")]
    NoRuntime,
    /// `notify-rust` or `zbus` panicked; contained so the caller carries on.
    #[error("notification not sent: the D-Bus client panicked")]
    Panicked,
}

/// Sends a desktop notification, bounded by [`NOTIFY_TIMEOUT`].
///
/// Never fails the caller, never hangs, never panics: every problem becomes a
/// [`Delivery::Fallback`] reason. Must be called inside a Tokio runtime.
pub async fn notify(notice: &Notice) -> Delivery {
    notify_within(notice, NOTIFY_TIMEOUT).await
}

/// [`notify`] with another bound on the whole attempt.
pub async fn notify_within(notice: &Notice, limit: Duration) -> Delivery {
    match try_notify(notice, limit).await {
        Ok(()) => Delivery::Delivered,
        Err(why) => Delivery::Fallback(why.to_string()),
    }
}

/// Checks for a bus, then sends on a separate task so that a panic or a stall stays contained.
async fn try_notify(notice: &Notice, limit: Duration) -> Result<(), Unavailable> {
    let address = session_bus_address(|name| std::env::var_os(name), euid())?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Unavailable::NoRuntime)?;
    let notification = to_notification(notice);
    let mut task = runtime.spawn(async move {
        // The handle only keeps the connection open for action callbacks; we need none.
        notification.show_async().await.map(drop).map_err(|e| e.to_string())
    });
    match tokio::time::timeout(limit, &mut task).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(detail))) => Err(classify(address, detail)),
        Ok(Err(_join)) => Err(Unavailable::Panicked),
        Err(_elapsed) => {
            task.abort();
            Err(Unavailable::TimedOut { address, limit })
        }
    }
}

/// Builds the `notify-rust` notification for a notice.
fn to_notification(notice: &Notice) -> notify_rust::Notification {
    let urgency = match notice.urgency {
        Urgency::Low => notify_rust::Urgency::Low,
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    };
    notify_rust::Notification::new().appname(APP_NAME).summary(&notice.summary).body(&notice.body).urgency(urgency).finalize()
}

/// The session bus address zbus will use, or why there is none.
///
/// Mirrors `zbus::Address::session()`: a set `DBUS_SESSION_BUS_ADDRESS` wins (even if it turns out
/// to be unreachable); otherwise `$XDG_RUNTIME_DIR/bus`, or `/run/user/$EUID/bus`, if it exists.
fn session_bus_address(var: impl Fn(&str) -> Option<std::ffi::OsString>, euid: u32) -> Result<String, Unavailable> {
    if let Some(address) = var("DBUS_SESSION_BUS_ADDRESS") {
        return Ok(address.to_string_lossy().into_owned());
    }
    let runtime_dir = var("XDG_RUNTIME_DIR").map_or_else(|| format!("/run/user/{euid}"), |dir| dir.to_string_lossy().into_owned());
    let socket = format!("{runtime_dir}/bus");
    if Path::new(&socket).exists() {
        Ok(format!("unix:path={socket}"))
    } else {
        Err(Unavailable::NoSessionBus { socket })
    }
}

/// Sorts a `notify-rust` error (only its text is public) into a reason.
fn classify(address: String, detail: String) -> Unavailable {
    let no_owner = ["org.freedesktop.DBus.Error.ServiceUnknown", "NameHasNoOwner"];
    let unreachable = ["failed to connect", "address error", "D-Bus handshake failed", "I/O error"];
    if no_owner.iter().any(|needle| detail.contains(needle)) {
        Unavailable::NoDaemon { address }
    } else if unreachable.iter().any(|needle| detail.contains(needle)) {
        Unavailable::Unreachable { address, detail }
    } else {
        Unavailable::CallFailed { address, detail }
    }
}

/// The effective user id, for the `/run/user/$EUID/bus` default.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a hook command did not produce an exit status (the engine's command runner's error).
pub type HookError = crate::engine::command::CommandError;

pub use crate::engine::command::describe_status;

/// Runs `cmd` through `sh -c` with `report_path` as `"$1"` and in [`ENV_REPORT`], plus `env`
/// (by convention [`ENV_EXIT`] and [`ENV_SUMMARY`]), bounded by `timeout` ([`HOOK_TIMEOUT`] is
/// the default), through the engine's one command runner ([`crate::engine::command`]): its own
/// process group, killed whole on timeout or cancellation. A hook that exits non-zero is not an
/// error here: its status is returned for the caller to judge. Output: see the module docs.
pub async fn run_hook(cmd: &str, report_path: &Path, env: &[(&str, &str)], timeout: Duration) -> Result<ExitStatus, HookError> {
    let mut c = crate::engine::command::Command::shell(cmd).arg(report_path).env(ENV_REPORT, report_path);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.run(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn explicit_address_wins_even_if_unreachable() {
        let address = session_bus_address(vars(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x")]), 0);
        assert_eq!(address.unwrap(), "unix:path=/x");
    }

    #[test]
    fn no_variable_and_no_socket_is_no_session_bus() {
        let why = session_bus_address(vars(&[("XDG_RUNTIME_DIR", "/nonexistent/pf")]), 0);
        let text = why.unwrap_err().to_string();
        assert!(text.starts_with("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset"), "{text}");
        assert!(text.contains("/nonexistent/pf/bus"), "{text}");
    }

    #[test]
    fn default_socket_follows_euid() {
        let why = session_bus_address(vars(&[]), 4_000_000_001).unwrap_err().to_string();
        assert!(why.contains("/run/user/4000000001/bus"), "{why}");
    }

    #[test]
    fn errors_are_classified() {
        let a = || "unix:path=/b".to_owned();
        let unknown = "org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable";
        assert!(matches!(classify(a(), unknown.into()), Unavailable::NoDaemon { .. }));
        let refused = "failed to connect to `unix:path=/b`: Connection refused";
        assert!(matches!(classify(a(), refused.into()), Unavailable::Unreachable { .. }));
        assert!(matches!(classify(a(), "odd".into()), Unavailable::CallFailed { .. }));
    }

    #[test]
    fn statuses_are_described() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_status(&ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(describe_status(&ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
