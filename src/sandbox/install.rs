//! Finding the server and client programs of each flavour, installing them when missing.
//!
//! MariaDB comes from the machine's own Debian archive and lives in `/usr`. MySQL 9 is not in
//! Debian bookworm: `scripts/install-servers.sh mysql` unpacks Debian unstable's packages into a
//! private root under the cache folder, and every MySQL program runs through that root's own
//! dynamic loader (bookworm's glibc is too old for it). [`Binaries`] hides that difference.

use super::{cache_dir, note, SandboxError};
use crate::db::Flavour;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// How to run one flavour's server, its datadir initialiser and its command-line client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binaries {
    /// Which server family these programs belong to.
    #[serde(with = "super::state::flavour_name")]
    pub flavour: Flavour,
    /// The server program (`mariadbd`, or MySQL's `mysqld` inside the private root).
    pub server: PathBuf,
    /// The command-line client (`mariadb` or `mysql`).
    pub client: PathBuf,
    /// MariaDB's `mariadb-install-db`. `None` for MySQL, whose server initialises a datadir
    /// itself (`--initialize-insecure`).
    pub install_db: Option<PathBuf>,
    /// The private root MySQL was unpacked into; its `usr` is the server's `--basedir`, and its
    /// message files and plugins must be named explicitly, or the server would look in `/usr`,
    /// where MariaDB's files live.
    pub mysql_root: Option<PathBuf>,
    /// The dynamic loader and library folder of the private root. Debian unstable's binaries need
    /// a newer glibc than the machine's, so they run as `LOADER --library-path DIR PROGRAM`.
    pub loader: Option<Loader>,
    /// What the server's `--version` reports, e.g. `10.11.19-MariaDB-0+deb12u1` or `9.7.4-2`.
    /// Templates are cached per version, so an upgrade never reuses an old datadir.
    pub version: String,
}

/// A private dynamic loader and the libraries it must use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loader {
    /// `ROOT/usr/lib/<triplet>/ld-linux-*.so.*`.
    pub path: PathBuf,
    /// `ROOT/usr/lib/<triplet>`, passed as `--library-path`.
    pub library_path: PathBuf,
}

impl Binaries {
    /// The argv prefix that runs `program` (through the private loader when there is one).
    pub fn argv(&self, program: &Path) -> Vec<OsString> {
        let mut argv = Vec::new();
        if let Some(l) = &self.loader {
            argv.push(l.path.clone().into_os_string());
            argv.push("--library-path".into());
            argv.push(l.library_path.clone().into_os_string());
        }
        argv.push(program.as_os_str().to_owned());
        argv
    }

    /// A [`Command`] that runs `program` (through the private loader when there is one).
    pub fn command(&self, program: &Path) -> Command {
        let argv = self.argv(program);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    }

    /// The client program, with no arguments yet. `--defaults-file` or `--no-defaults` must be
    /// the first argument appended.
    pub fn client_command(&self) -> Command {
        let mut cmd = self.command(&self.client);
        cmd.env_remove("MYSQL_PWD").env_remove("MYSQL_HOST").env_remove("MYSQL_TCP_PORT");
        cmd
    }

    /// The arguments every server start and datadir initialisation begins with: `--no-defaults`
    /// (it must come first) and, for the private MySQL, where its own files are.
    pub fn server_base_args(&self) -> Vec<String> {
        let mut args = vec!["--no-defaults".to_string()];
        if let Some(root) = &self.mysql_root {
            let usr = root.join("usr");
            args.push(format!("--basedir={}", usr.display()));
            args.push(format!("--lc-messages-dir={}", usr.join("share/mysql").display()));
            args.push(format!("--plugin-dir={}", usr.join("lib/mysql/plugin").display()));
        }
        if is_root() {
            // The server refuses to run as root unless told to; as another user it warns.
            args.push("--user=root".to_string());
        }
        args
    }

    /// The version's `major.minor`, e.g. `(10, 11)`.
    pub fn major_minor(&self) -> (u32, u32) {
        let v = crate::db::Version::parse_prefix(&self.version).unwrap_or(crate::db::Version::new(0, 0, 0));
        (v.major, v.minor)
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Finds the programs for `flavour`, running `scripts/install-servers.sh` first when they are
/// missing. Blocking: an install can take a minute.
pub fn ensure_installed(flavour: Flavour) -> Result<Binaries, SandboxError> {
    // Two sandboxes of one flavour starting at once must not run apt or the unpacker twice.
    static LOCKS: [Mutex<()>; 2] = [Mutex::new(()), Mutex::new(())];
    let _guard = LOCKS[flavour as usize].lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(b) = locate(flavour) {
        return Ok(b);
    }
    run_install_script(flavour)?;
    locate(flavour).map_err(|detail| SandboxError::NotInstalled { flavour, detail })
}

/// Finds already installed programs, without installing anything.
pub fn locate(flavour: Flavour) -> Result<Binaries, String> {
    match flavour {
        Flavour::MariaDb => locate_mariadb(),
        Flavour::MySql => locate_mysql(&mysql_root()),
    }
}

/// Where the install script unpacks MySQL.
pub fn mysql_root() -> PathBuf {
    cache_dir().join("mysql/root")
}

fn locate_mariadb() -> Result<Binaries, String> {
    let find = |name: &str| {
        find_program(name, &["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"])
            .ok_or_else(|| format!("`{name}` not found on PATH or in /usr/sbin, /usr/bin"))
    };
    let mut b = Binaries {
        flavour: Flavour::MariaDb,
        server: find("mariadbd")?,
        client: find("mariadb")?,
        install_db: Some(find("mariadb-install-db")?),
        mysql_root: None,
        loader: None,
        version: String::new(),
    };
    b.version = server_version(&b)?;
    Ok(b)
}

fn locate_mysql(root: &Path) -> Result<Binaries, String> {
    let server = root.join("usr/sbin/mysqld");
    if !server.is_file() {
        return Err(format!("{} is missing", server.display()));
    }
    let loader = find_loader(root)?;
    let mut b = Binaries {
        flavour: Flavour::MySql,
        server,
        client: root.join("usr/bin/mysql"),
        install_db: None,
        mysql_root: Some(root.to_path_buf()),
        loader: Some(loader),
        version: String::new(),
    };
    b.version = server_version(&b)?;
    Ok(b)
}

/// Finds `ROOT/usr/lib/<triplet>-linux-gnu/ld-linux*.so.*`.
fn find_loader(root: &Path) -> Result<Loader, String> {
    let lib = root.join("usr/lib");
    let entries = std::fs::read_dir(&lib).map_err(|e| format!("reading {}: {e}", lib.display()))?;
    for dir in entries.flatten().map(|e| e.path()) {
        if !dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("-linux-gnu")) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with("ld-linux") && name.contains(".so.") {
                return Ok(Loader { path: f.path(), library_path: dir });
            }
        }
    }
    Err(format!("no ld-linux loader under {}/*-linux-gnu", lib.display()))
}

fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(extra.iter().map(PathBuf::from)).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Runs `SERVER --version` and returns the word after `Ver`.
fn server_version(b: &Binaries) -> Result<String, String> {
    let out = b
        .command(&b.server)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {} --version: {e}", b.server.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "Ver");
    match words.next() {
        Some(v) if out.status.success() => Ok(v.to_string()),
        _ => Err(format!(
            "{} --version failed ({}): {}{}",
            b.server.display(),
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Runs `scripts/install-servers.sh FLAVOUR`, keeping its output for the error message.
fn run_install_script(flavour: Flavour) -> Result<(), SandboxError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-servers.sh");
    note(&format!("{flavour} is not installed; running {} {}", script.display(), flavour.name()));
    let out = Command::new("bash")
        .arg(&script)
        .arg(flavour.name())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SandboxError::NotInstalled { flavour, detail: format!("running {}: {e}", script.display()) })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    Err(SandboxError::NotInstalled {
        flavour,
        detail: format!("{} {} exited with {}:\n{}", script.display(), flavour.name(), out.status, tail.join("\n")),
    })
}
