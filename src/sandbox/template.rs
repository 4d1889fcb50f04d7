//! The cached template datadir: initialised and set up once per flavour and version, then
//! copied for every new instance (a copy starts in about a second; initialising takes several).
//!
//! Lives in `${PRIVFENCE_CACHE:-$HOME/.cache/privfence}/templates/<flavour>-<version>-t<N>/`
//! (`N` is [`FORMAT`]: bump it when the set-up changes, so stale templates are not reused):
//!
//! ```text
//! data/           the datadir, cleanly shut down; MySQL's auto.cnf removed so every copy gets
//!                 its own server_uuid
//! admin.password  the admin (root) password, mode 0600
//! repl.password   the replication account's password, mode 0600
//! init.log, error.log, console.log   logs of the build, for reference
//! ```
//!
//! Set-up: the default accounts stay as installed, except that anonymous accounts are dropped
//! (they would shadow logins from 127.0.0.1; tests that need them create them), every `root`
//! account gets the random admin password, `'root'@'127.0.0.1'` has `ALL PRIVILEGES ... WITH
//! GRANT OPTION`, and `'repl'@'127.0.0.1'` has `REPLICATION SLAVE`. Then the binary logs and
//! GTID history are reset, so every copy starts with an empty, identical history.
//!
//! A template is built in a scratch folder and renamed into place, under a `flock`, so
//! concurrent test binaries neither race nor see a half-built template.

use super::process;
use super::server::Server;
use super::{cache_dir, note, optfile, Binaries, Role, SandboxError};
use crate::db::Flavour;
use mysql_async::prelude::Queryable;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// Version of the template set-up; part of the folder name.
pub const FORMAT: u32 = 1;

/// A ready template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template folder.
    pub dir: PathBuf,
    /// The admin (`root`) password every copy shares.
    pub admin_password: String,
    /// The password of `'repl'@'127.0.0.1'`, for `CHANGE MASTER` / `CHANGE REPLICATION SOURCE`.
    pub repl_password: String,
}

impl Template {
    /// Copies the datadir to `dest` (which must not exist yet).
    pub(crate) async fn copy_datadir(&self, flavour: Flavour, dest: &Path) -> Result<(), SandboxError> {
        let out = tokio::process::Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(self.dir.join("data"))
            .arg(dest)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| SandboxError::io("running cp", e))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(SandboxError::io(format!("copying the template datadir to {}", dest.display()), std::io::Error::other(msg)));
        }
        if flavour == Flavour::MySql {
            // A fresh server_uuid per instance; MySQL replication refuses equal UUIDs.
            let _ = std::fs::remove_file(dest.join("auto.cnf"));
        }
        Ok(())
    }
}

/// Returns the template for these binaries, building it first when it is not cached.
pub async fn ensure(b: &Binaries) -> Result<Template, SandboxError> {
    let root = cache_dir().join("templates");
    let safe: String = b.version.chars().map(|c| if c.is_ascii_alphanumeric() || ".-+_".contains(c) { c } else { '_' }).collect();
    let name = format!("{}-{safe}-t{FORMAT}", b.flavour.name());
    let dir = root.join(&name);
    if let Some(t) = load(&dir)? {
        return Ok(t);
    }
    std::fs::create_dir_all(&root).map_err(|e| SandboxError::io(format!("creating {}", root.display()), e))?;
    let _lock = lock(root.join(format!(".{name}.lock"))).await?;
    if let Some(t) = load(&dir)? {
        return Ok(t);
    }
    // Holding the lock, no one else builds this template: earlier scratch folders are leftovers
    // of failed or interrupted builds.
    let prefix = format!(".build-{name}-");
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let scratch = root.join(format!("{prefix}{}", process::random_alnum(8)?));
    let started = Instant::now();
    build(b, &scratch).await?;
    std::fs::rename(&scratch, &dir).map_err(|e| SandboxError::io(format!("renaming {} into place", scratch.display()), e))?;
    note(&format!("built the {} {} template in {:.1} s: {}", b.flavour, b.version, started.elapsed().as_secs_f64(), dir.display()));
    load(&dir)?.ok_or_else(|| template_error(b.flavour, &dir, "the template vanished right after it was built".into()))
}

/// Reads a complete template, or `None` when the folder does not exist.
fn load(dir: &Path) -> Result<Option<Template>, SandboxError> {
    if !dir.join("data").is_dir() {
        return Ok(None);
    }
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map(|s| s.trim().to_string())
            .map_err(|e| SandboxError::io(format!("reading {}; delete {} to rebuild it", dir.join(f).display(), dir.display()), e))
    };
    Ok(Some(Template { dir: dir.to_path_buf(), admin_password: read("admin.password")?, repl_password: read("repl.password")? }))
}

/// Takes an exclusive `flock` on `path` (blocking in a worker thread); released on drop.
async fn lock(path: PathBuf) -> Result<std::fs::File, SandboxError> {
    let what = format!("locking {}", path.display());
    let res = tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        // SAFETY: flock on a descriptor we own; it stays open as long as the returned File.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    })
    .await;
    match res {
        Ok(r) => r.map_err(|e| SandboxError::io(what, e)),
        Err(e) => Err(SandboxError::io(what, std::io::Error::other(e.to_string()))),
    }
}

/// Initialises, starts, sets up and cleanly stops a new datadir in `scratch`.
async fn build(b: &Binaries, scratch: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(scratch).map_err(|e| SandboxError::io(format!("creating {}", scratch.display()), e))?;
    initialise(b, scratch).await?;
    let admin_password = process::random_alnum(20)?;
    let repl_password = process::random_alnum(20)?;
    let mut server = Server::with_layout(b, Role::Primary, scratch, ("root", ""), Vec::new());
    // Watch our own pid: if this process dies mid-build, the build server dies too.
    server.launch(Some((std::process::id(), None))).await.map_err(|e| template_error(b.flavour, scratch, e.to_string()))?;
    let setup = set_up(&server, &admin_password, &repl_password).await;
    let stopped = server.stop();
    server.kill_supervisor();
    setup.map_err(|e| template_error(b.flavour, scratch, e.to_string()))?;
    stopped.map_err(|e| template_error(b.flavour, scratch, e.to_string()))?;
    let _ = std::fs::remove_file(server.datadir.join("auto.cnf"));
    optfile::write_private(&scratch.join("admin.password"), admin_password.as_bytes())?;
    optfile::write_private(&scratch.join("repl.password"), repl_password.as_bytes())?;
    Ok(())
}

/// Runs `mariadb-install-db` or `mysqld --initialize-insecure` into `scratch/data`.
async fn initialise(b: &Binaries, scratch: &Path) -> Result<(), SandboxError> {
    let datadir = scratch.join("data");
    let log = scratch.join("init.log");
    let cmd = match &b.install_db {
        Some(install_db) => {
            let mut c = b.command(install_db);
            c.arg("--no-defaults").arg(format!("--datadir={}", datadir.display()));
            c.arg("--auth-root-authentication-method=normal").arg("--innodb-log-file-size=16M");
            if super::install::is_root() {
                c.arg("--user=root");
            }
            c
        }
        None => {
            let mut c = b.command(&b.server);
            c.args(b.server_base_args());
            c.arg("--initialize-insecure").arg(format!("--datadir={}", datadir.display()));
            c.arg(format!("--log-error={}", log.display())).arg("--innodb-redo-log-capacity=16M");
            c
        }
    };
    let out = tokio::process::Command::from(cmd)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| SandboxError::io("running the datadir initialiser", e))?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    let _ = std::fs::OpenOptions::new().create(true).append(true).open(&log).and_then(|mut f| std::io::Write::write_all(&mut f, &text));
    if out.status.success() {
        return Ok(());
    }
    Err(template_error(
        b.flavour,
        scratch,
        format!("initialising the datadir exited with {}:\n{}", out.status, process::log_tail(&log, 25)),
    ))
}

/// Drops anonymous accounts, sets the admin password on every root account, creates the admin
/// and replication accounts for 127.0.0.1 and resets the binary logs.
async fn set_up(server: &Server, admin_password: &str, repl_password: &str) -> Result<(), SandboxError> {
    let mut conn = server.conn().await?;
    let err = |e| server.sql_error("setting up the template accounts", e);
    let anonymous: Vec<String> = conn.query("SELECT host FROM mysql.user WHERE user = ''").await.map_err(err)?;
    let roots: Vec<String> = conn.query("SELECT host FROM mysql.user WHERE user = 'root'").await.map_err(err)?;
    let pw = literal(admin_password);
    let mut sql: Vec<String> = anonymous.iter().map(|h| format!("DROP USER ''@{}", literal(h))).collect();
    sql.extend(roots.iter().map(|h| format!("ALTER USER 'root'@{} IDENTIFIED BY {pw}", literal(h))));
    if !roots.iter().any(|h| h == "127.0.0.1") {
        sql.push(format!("CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY {pw}"));
    }
    sql.push("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION".into());
    sql.push(format!("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY {}", literal(repl_password)));
    sql.push("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'".into());
    sql.push(match server.flavour {
        Flavour::MySql => "RESET BINARY LOGS AND GTIDS".into(),
        Flavour::MariaDb => "RESET MASTER".into(),
    });
    for stmt in &sql {
        conn.query_drop(stmt).await.map_err(err)?;
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// A single-quoted SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn template_error(flavour: Flavour, dir: &Path, detail: String) -> SandboxError {
    SandboxError::Template { flavour, dir: dir.to_path_buf(), detail }
}
