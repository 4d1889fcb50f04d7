//! The one runner of external commands: hooks, `--check` commands, go commands, notification
//! commands. Every command runs through `sh -c` in its own process group with stdin closed; on
//! timeout (or if the future is dropped) the whole group is killed, so `sh -c 'curl ...; sleep
//! 999'` leaves nothing behind. A command that exits non-zero is not an error here: its status is
//! returned for the caller to judge.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

/// Why a command did not produce an exit status.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// `sh` could not be started (missing shell, a NUL byte in the command or an argument).
    #[error("cannot start `{cmd}` with sh -c: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    /// The command was started but waiting for it failed.
    #[error("lost track of `{cmd}`: {source}")]
    Wait {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran past its time limit; it and everything it started were killed (SIGKILL).
    #[error("`{cmd}` was still running after {timeout:?} and was killed with its process group; make it faster or run slow work in the background")]
    TimedOut { cmd: String, timeout: Duration },
}

/// Where a command's standard output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Discarded.
    Null,
    /// To privfence's standard error (hooks: stdout stays privfence's data).
    Stderr,
}

/// An external command: `sh -c CMD $0 ARGS...` with extra environment.
#[derive(Debug, Clone)]
pub struct Command {
    pub cmd: String,
    /// `$0` for the shell (names the command in its own error messages).
    pub name: &'static str,
    pub args: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    pub stdout: Stdout,
}

impl Command {
    pub fn shell(cmd: &str) -> Command {
        Command { cmd: cmd.to_string(), name: "privfence-hook", args: Vec::new(), env: Vec::new(), stdout: Stdout::Stderr }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Command {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Command {
        self.env.push((k.to_string(), v.into()));
        self
    }

    pub fn stdout(mut self, s: Stdout) -> Command {
        self.stdout = s;
        self
    }

    fn tokio(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(&self.cmd).arg(self.name).args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        match self.stdout {
            Stdout::Null => c.stdout(Stdio::null()),
            Stdout::Stderr => c.stdout(Stdio::from(std::io::stderr())),
        };
        c.process_group(0);
        c
    }

    /// Runs the command, bounded by `timeout`.
    pub async fn run(&self, timeout: Duration) -> Result<ExitStatus, CommandError> {
        let mut child = self.tokio().spawn().map_err(|source| CommandError::Spawn { cmd: self.cmd.clone(), source })?;
        let mut group = GroupKiller(child.id());
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => {
                group.disarm();
                status.map_err(|source| CommandError::Wait { cmd: self.cmd.clone(), source })
            }
            Err(_elapsed) => {
                group.kill();
                // Reap it; SIGKILL cannot be ignored, so this returns promptly.
                let _ = child.wait().await;
                Err(CommandError::TimedOut { cmd: self.cmd.clone(), timeout })
            }
        }
    }

    /// [`Command::run`], where anything but exit 0 is an error message naming the command.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        match self.run(timeout).await {
            Ok(st) if st.success() => Ok(()),
            Ok(st) => Err(format!("`{}` exited with {}", self.cmd, describe_status(&st))),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Kills a command's process group when dropped while armed: on timeout and on cancellation.
///
/// Armed only while the leader is unreaped, so its id cannot have been reused by then.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    /// The command finished normally; leave anything it backgrounded alone.
    fn disarm(&mut self) {
        self.0 = None;
    }

    /// Sends SIGKILL to the whole group now.
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Describes an exit status for messages: `exit 3` or `killed by signal 9`.
#[must_use]
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("pf-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("late");
        let cmd = format!("(sleep 1; touch '{}') & sleep 30", marker.display());
        let err = Command::shell(&cmd).stdout(Stdout::Null).run(Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the backgrounded child was killed with its group");
        assert_eq!(
            Command::shell("exit 3").stdout(Stdout::Null).check(Duration::from_secs(5)).await.unwrap_err(),
            "`exit 3` exited with exit 3"
        );
        assert!(Command::shell("test \"$1\" = x && test \"$V\" = y").arg("x").env("V", "y").check(Duration::from_secs(5)).await.is_ok());
    }
}
