//! Starting, watching and stopping server processes; small OS helpers (ports, random strings).
//!
//! Servers run in their own session (`setsid`), so a Ctrl-C in the terminal or the end of the
//! process that started them does not kill them by accident. When a sandbox must die with the
//! process that started it (tests), a tiny bash supervisor polls that process and, once it is
//! gone, stops the server and removes the sandbox's temporary folder. `PR_SET_PDEATHSIG` is not
//! an option: it fires when the spawning *thread* exits, and test threads end early.

use super::SandboxError;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the supervisor should do when the watched process is gone: stop the server (SIGTERM;
/// SIGKILL when its folder is deleted right after, as a clean shutdown would be wasted).
pub(crate) struct Watch<'a> {
    /// The process whose end ends the server (the test binary).
    pub pid: u32,
    /// `(server folder, sandbox folder)` to delete afterwards, for temporary sandboxes. The
    /// sandbox folder goes once no server folder (`*/data`) is left in it.
    pub cleanup: Option<(&'a Path, &'a Path)>,
}

/// A started server process.
pub(crate) struct Spawned {
    /// The server's own pid (the dynamic loader's pid for MySQL, which becomes `mysqld`).
    pub pid: u32,
    /// The supervisor's pid, when the server is watched.
    pub supervisor: Option<u32>,
}

/// The supervisor. Arguments: watched pid (0: none), console log, server folder, sandbox
/// folder, then the server's argv. Prints the server's pid on stdout, then detaches from it.
const SUPERVISOR: &str = r#"
w=$1 log=$2 sdir=$3 top=$4; shift 4
"$@" </dev/null >>"$log" 2>&1 &
s=$!
echo "$s"
exec >/dev/null 2>&1
[ "$w" = 0 ] && exit 0
while kill -0 "$w" 2>/dev/null; do
  if [ -n "$s" ] && ! kill -0 "$s" 2>/dev/null; then s=; fi
  sleep 0.5
done
if [ -n "$s" ]; then
  if [ -n "$sdir" ]; then kill -KILL "$s" 2>/dev/null; else kill -TERM "$s" 2>/dev/null; fi
  i=0; while kill -0 "$s" 2>/dev/null && [ $i -lt 240 ]; do sleep 0.25; i=$((i+1)); done
  kill -KILL "$s" 2>/dev/null
  wait "$s" 2>/dev/null
fi
[ -n "$sdir" ] && [ -d "$top" ] || exit 0
( flock 9; rm -rf "$sdir"; set -- "$top"/*/data; [ -e "$1" ] || rm -rf "$top" ) 9>>"$top/.cleanup.lock"
"#;

/// Starts `argv` in a new session, its output appended to `console_log`.
pub(crate) fn spawn_server(argv: &[OsString], console_log: &Path, watch: Option<&Watch<'_>>) -> Result<Spawned, SandboxError> {
    let (wpid, sdir, top) = match watch {
        Some(w) => match w.cleanup {
            Some((s, t)) => (w.pid, s.as_os_str().to_owned(), t.as_os_str().to_owned()),
            None => (w.pid, OsString::new(), OsString::new()),
        },
        None => (0, OsString::new(), OsString::new()),
    };
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(SUPERVISOR).arg("privfence-supervisor");
    cmd.arg(wpid.to_string()).arg(console_log).arg(sdir).arg(top).args(argv);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; it only fails if we already lead a process group,
    // which a freshly forked child never does.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| SandboxError::io("starting bash to run the server", e))?;
    let mut line = String::new();
    let read = child.stdout.take().map(|o| BufReader::new(o).read_line(&mut line));
    let pid = match (read, line.trim().parse::<u32>()) {
        (Some(Ok(_)), Ok(pid)) => pid,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SandboxError::io(
                "starting the server",
                std::io::Error::other(format!("the supervisor printed no pid (got {line:?})")),
            ));
        }
    };
    if watch.is_some() {
        let supervisor = child.id();
        // Reap the supervisor whenever it ends, so it never lingers as a zombie.
        std::thread::spawn(move || child.wait());
        Ok(Spawned { pid, supervisor: Some(supervisor) })
    } else {
        let _ = child.wait();
        Ok(Spawned { pid, supervisor: None })
    }
}

/// Whether `pid` is a live process (a zombie does not count).
pub(crate) fn alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()).is_none_or(|r| !r.starts_with('Z')),
        Err(_) => true,
    }
}

/// Sends `signal` to `pid`; no error if it is already gone.
pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    if pid != 0 {
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL and wait a little more. True when the process is gone.
pub(crate) fn terminate(pid: u32, grace: Duration) -> bool {
    if !alive(pid) {
        return true;
    }
    signal(pid, libc::SIGTERM);
    if wait_gone(pid, grace) {
        return true;
    }
    signal(pid, libc::SIGKILL);
    wait_gone(pid, Duration::from_secs(5))
}

/// SIGKILL and wait for the process to go. True when it is gone.
pub(crate) fn kill_now(pid: u32) -> bool {
    signal(pid, libc::SIGKILL);
    wait_gone(pid, Duration::from_secs(5))
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

/// A TCP port on 127.0.0.1 that was free a moment ago. The server may still lose a race for
/// it; callers retry on "address in use".
pub(crate) fn free_port() -> Result<u16, SandboxError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| SandboxError::io("finding a free port on 127.0.0.1", e))?;
    l.local_addr().map(|a| a.port()).map_err(|e| SandboxError::io("reading a bound port", e))
}

/// A random string of ASCII letters and digits, from `/dev/urandom`.
pub(crate) fn random_alnum(len: usize) -> Result<String, SandboxError> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| SandboxError::io("opening /dev/urandom", e))?;
    let mut out = String::with_capacity(len);
    let mut buf = [0_u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf).map_err(|e| SandboxError::io("reading /dev/urandom", e))?;
        // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
        out.extend(buf.iter().filter(|b| **b < 248).map(|b| CHARS[(*b % 62) as usize] as char).take(len - out.len()));
    }
    Ok(out)
}

/// The last `n` lines of a log file (or a note that it could not be read).
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({} could not be read: {e})", path.display()),
    }
}
