//! One sandbox server instance: its files, how to reach it, how to start it.
//!
//! Layout of a server's folder (`SANDBOX/primary/` or `SANDBOX/replica/`):
//!
//! ```text
//! data/            the datadir (a copy of the cached template)
//! error.log        the server's error log (--log-error)
//! console.log      anything the process printed before its error log was open
//! sql_errors.log   MariaDB only: the sql_errlog plugin's log of failed statements
//! mysqld.sock      Unix socket; mysqld.pid: pid file
//! client.cnf       [client] options with the admin credentials (mode 0600)
//! client           a script running the client with --defaults-file=client.cnf (mode 0700)
//! clients/         option files written by `Server::client_command_as` (mode 0600)
//! tmp/             the server's --tmpdir
//! ```

use super::process::{self, Watch};
use super::{optfile, Binaries, Role, SandboxError};
use crate::db::Flavour;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take from exec to its first successful login.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a clean shutdown may take before SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(60);

/// One running (or stopped) sandbox server.
#[derive(Clone)]
pub struct Server {
    /// MySQL or MariaDB.
    pub flavour: Flavour,
    /// Primary or replica.
    pub role: Role,
    /// `--server-id`: distinct per instance, or replication refuses to connect.
    pub server_id: u32,
    /// Always `127.0.0.1`: the servers listen on loopback only.
    pub host: String,
    /// The TCP port, picked free at first start and kept across restarts.
    pub port: u16,
    /// The Unix socket (`--socket`).
    pub socket: PathBuf,
    /// The server's own folder inside the sandbox folder.
    pub dir: PathBuf,
    /// The datadir.
    pub datadir: PathBuf,
    /// The error log (`--log-error`).
    pub error_log: PathBuf,
    /// MariaDB's sql_errlog file, where the plugin writes one line per failed statement
    /// (an absolute `--sql-error-log-filename`, so it lands exactly here; a relative name would
    /// land in the datadir). Rotated to `.001`... past 1 MB. `None` on MySQL.
    pub sql_errlog: Option<PathBuf>,
    /// The option file with the admin credentials, for `--defaults-file`.
    pub client_cnf: PathBuf,
    /// The admin account's user name (`root`; the account exists for `localhost`, `127.0.0.1`
    /// and the other default root hosts, all with the same password, because with name
    /// resolution on a TCP login from 127.0.0.1 is seen as host `localhost`).
    pub admin_user: String,
    /// The admin account's password (random per template; never written to `sandbox.json`).
    pub admin_password: String,
    /// The server's pid (the last one started; see [`Server::is_running`]).
    pub pid: u32,
    /// How long the last start took, from exec to the first successful login.
    pub started_in: Duration,
    /// The programs to run; the client commands need them.
    pub binaries: Binaries,
    /// Extra server arguments given at creation, kept so a restart uses the same ones.
    pub extra_args: Vec<String>,
    /// The supervisor that stops this server when the watched process ends; killed on
    /// restart and destroy so it cannot act on a pid that was reused.
    pub(crate) supervisor_pid: Option<u32>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("flavour", &self.flavour)
            .field("role", &self.role)
            .field("port", &self.port)
            .field("pid", &self.pid)
            .field("dir", &self.dir)
            .field("admin_user", &self.admin_user)
            .field("admin_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server description with the standard layout under `dir`; nothing is started.
    pub(crate) fn with_layout(binaries: &Binaries, role: Role, dir: &Path, admin: (&str, &str), extra_args: Vec<String>) -> Server {
        let mariadb = binaries.flavour == Flavour::MariaDb;
        Server {
            flavour: binaries.flavour,
            role,
            server_id: role.server_id(),
            host: "127.0.0.1".into(),
            port: 0,
            socket: dir.join("mysqld.sock"),
            dir: dir.to_path_buf(),
            datadir: dir.join("data"),
            error_log: dir.join("error.log"),
            sql_errlog: mariadb.then(|| dir.join("sql_errors.log")),
            client_cnf: dir.join("client.cnf"),
            admin_user: admin.0.into(),
            admin_password: admin.1.into(),
            pid: 0,
            started_in: Duration::ZERO,
            binaries: binaries.clone(),
            extra_args,
            supervisor_pid: None,
        }
    }

    /// Connection options: TCP to 127.0.0.1:port as the admin account, no default database.
    pub fn opts(&self) -> Opts {
        self.opts_as(&self.admin_user, &self.admin_password)
    }

    /// Connection options for another account on this server (TCP, no default database).
    pub fn opts_as(&self, user: &str, password: &str) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
            .db_name(None::<String>)
            .into()
    }

    /// privfence's connection spec for the admin account (TCP, no TLS: the sandbox is loopback).
    pub fn connect_spec(&self) -> crate::db::ConnectSpec {
        crate::db::ConnectSpec {
            host: self.host.clone(),
            port: self.port,
            socket: None,
            user: self.admin_user.clone(),
            password: Some(crate::db::Secret::new(self.admin_password.clone())),
            ssl_mode: crate::db::SslMode::Disabled,
            ssl_ca: None,
            connect_timeout: crate::db::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Opens a connection as the admin account.
    pub async fn conn(&self) -> Result<Conn, SandboxError> {
        Conn::new(self.opts()).await.map_err(|e| self.sql_error("connecting as the admin account", e))
    }

    /// The flavour's own client, with `--defaults-file` pointing at [`Server::client_cnf`]
    /// (host, port, admin user and password), so no password appears on a command line.
    /// Append further arguments such as `-e`, `-N`, `--bind-address`.
    pub fn client_command(&self) -> Command {
        let mut cmd = self.binaries.client_command();
        cmd.arg(format!("--defaults-file={}", self.client_cnf.display()));
        cmd
    }

    /// The client for another account: writes a private (0600) option file under `clients/`
    /// and points `--defaults-file` at it. `bind_address` sets the client's source address
    /// (e.g. `127.0.0.2`), so a test can log in "from" another loopback address: MySQL's client
    /// gets `--bind-address`; MariaDB's has no such option, so it connects through an in-process
    /// relay bound to that address (module `sandbox::relay`; it must be an IPv4 address).
    ///
    /// # Panics
    /// When the option file cannot be written (the sandbox folder is gone or read-only), or
    /// the relay cannot start (the address is not IPv4 or not local).
    pub fn client_command_as(&self, user: &str, password: &str, bind_address: Option<&str>) -> Command {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let safe: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(32).collect();
        let path = self.dir.join("clients").join(format!("{safe}-{}-{n}.cnf", std::process::id()));
        // MariaDB's client cannot bind a source address: it goes through a relay that does.
        let (port, native_bind) = match (bind_address, self.flavour) {
            (Some(addr), Flavour::MariaDb) => (self.relay_port(addr), None),
            (bind, _) => (self.port, bind),
        };
        if let Err(e) = optfile::write_client(&path, &self.host, port, user, password) {
            panic!("writing the client option file {}: {e}", path.display());
        }
        let mut cmd = self.binaries.client_command();
        cmd.arg(format!("--defaults-file={}", path.display()));
        if let Some(addr) = native_bind {
            cmd.arg(format!("--bind-address={addr}"));
        }
        cmd
    }

    /// A relay port that reaches this server from `addr` (see `sandbox::relay`).
    fn relay_port(&self, addr: &str) -> u16 {
        let ip: std::net::Ipv4Addr = addr.parse().unwrap_or_else(|_| panic!("bind address {addr:?} is not an IPv4 address"));
        super::relay::relay_port(self.port, ip).unwrap_or_else(|e| panic!("starting a relay from {addr} to port {}: {e}", self.port))
    }

    /// `client` in the server's folder: a script running [`Server::client_command`] with
    /// the arguments it is given, for people.
    pub fn client_script(&self) -> PathBuf {
        self.dir.join("client")
    }

    /// Whether the server process is alive (it may still be starting or stopping).
    pub fn is_running(&self) -> bool {
        process::alive(self.pid)
    }

    /// The full server argument list (after the program), built from the layout.
    pub fn server_args(&self) -> Vec<String> {
        let mut a = self.binaries.server_base_args();
        let path = |flag: &str, p: &Path| format!("--{flag}={}", p.display());
        a.extend([
            path("datadir", &self.datadir),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            path("socket", &self.socket),
            path("pid-file", &self.dir.join("mysqld.pid")),
            path("log-error", &self.error_log),
            // A private tmpdir: internal temporary tables of information_schema queries land
            // here, safe from anything that cleans the machine's /tmp.
            path("tmpdir", &self.dir.join("tmp")),
            format!("--server-id={}", self.server_id),
            // Fixed names: the default uses the host name, which differs between the machine
            // that built the template and the one that copies it.
            "--log-bin=binlog".into(),
            "--relay-log=relay-bin".into(),
            "--log-bin-trust-function-creators=1".into(),
            "--performance-schema=ON".into(),
            // Small redo logs keep template copies quick; durability does not matter here.
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--sync-binlog=0".into(),
        ]);
        match self.flavour {
            Flavour::MySql => a.extend([
                "--gtid-mode=ON".into(),
                "--enforce-gtid-consistency=ON".into(),
                "--mysqlx=OFF".into(),
                // Without it the Debian build aborts: its compiled-in folder does not exist.
                "--secure-file-priv=".into(),
                "--innodb-redo-log-capacity=16M".into(),
            ]),
            Flavour::MariaDb => {
                a.extend([
                    "--innodb-log-file-size=16M".into(),
                    "--userstat=1".into(),
                    // MySQL logs replicated changes by default; make MariaDB alike, so a promoted
                    // replica's binlog holds the whole history.
                    "--log-slave-updates=ON".into(),
                    "--plugin-load-add=sql_errlog".into(),
                ]);
                if let Some(f) = &self.sql_errlog {
                    a.push(path("sql-error-log-filename", f));
                }
            }
        }
        if self.role == Role::Replica {
            a.push("--read-only=ON".into());
            // So the primary can tell where its replicas listen (SHOW REPLICAS).
            a.push(format!("--report-host={}", self.host));
            a.push(format!("--report-port={}", self.port));
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Starts the server process and waits for an admin login, picking a new free port when
    /// `port` is 0 (or when the picked one was taken meanwhile).
    pub(crate) async fn launch(&mut self, watch: Option<(u32, Option<&Path>)>) -> Result<(), SandboxError> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| SandboxError::Io { what: format!("creating {}", tmp.display()), source: e })?;
        if self.socket.as_os_str().len() > 100 {
            return Err(SandboxError::State {
                dir: self.dir.clone(),
                detail: "the path is too long for a Unix socket (over 100 bytes); use a shorter sandbox folder".into(),
            });
        }
        let keep_port = self.port != 0;
        for attempt in 1..=3 {
            if !keep_port {
                self.port = process::free_port()?;
            }
            let log_len = std::fs::metadata(&self.error_log).map(|m| m.len()).unwrap_or(0);
            let started = Instant::now();
            let mut argv = self.binaries.argv(&self.binaries.server);
            argv.extend(self.server_args().into_iter().map(Into::into));
            let w = watch.map(|(pid, top)| Watch { pid, cleanup: top.map(|t| (self.dir.as_path(), t)) });
            let spawned = process::spawn_server(&argv, &self.dir.join("console.log"), w.as_ref())?;
            self.pid = spawned.pid;
            self.supervisor_pid = spawned.supervisor;
            match self.wait_ready(START_DEADLINE).await {
                Ok(()) => {
                    self.started_in = started.elapsed();
                    return Ok(());
                }
                Err(_) if !keep_port && attempt < 3 && !self.is_running() && self.lost_port_race(log_len) => {
                    self.kill_supervisor();
                }
                Err(e) => {
                    // Leave nothing half-started behind; the folder stays for inspection.
                    process::terminate(self.pid, Duration::from_secs(10));
                    self.kill_supervisor();
                    return Err(e);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Whether the error log written since `offset` says the port was taken.
    fn lost_port_race(&self, offset: u64) -> bool {
        let text = std::fs::read(&self.error_log).unwrap_or_default();
        let new = String::from_utf8_lossy(&text[(offset as usize).min(text.len())..]).into_owned();
        new.contains("Address already in use") || new.contains("Bind on TCP/IP port")
    }

    /// Polls until an admin login works, the process exits, or `limit` passes.
    async fn wait_ready(&self, limit: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + limit;
        let mut last = String::from("no connection attempt yet");
        loop {
            if !self.is_running() {
                return Err(self.start_error(format!("the process exited (pid {}); last connection error: {last}", self.pid)));
            }
            match tokio::time::timeout(Duration::from_secs(5), Conn::new(self.opts())).await {
                Ok(Ok(conn)) => {
                    let _ = conn.disconnect().await;
                    return Ok(());
                }
                Ok(Err(mysql_async::Error::Server(e))) if e.code == 1045 || e.code == 1698 => {
                    return Err(self.start_error(format!("the server is up but refused the admin login: {e}")));
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "login timed out after 5 s".into(),
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!("no admin login within {} s; last error: {last}", limit.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server cleanly (SIGTERM, then SIGKILL after 60 s).
    pub fn stop(&self) -> Result<(), SandboxError> {
        if process::terminate(self.pid, STOP_GRACE) {
            Ok(())
        } else {
            Err(SandboxError::Stop { flavour: self.flavour, role: self.role.name(), pid: self.pid })
        }
    }

    /// Kills the server at once (SIGKILL), for when its datadir is about to be deleted anyway.
    pub fn kill(&self) -> Result<(), SandboxError> {
        if process::kill_now(self.pid) {
            Ok(())
        } else {
            Err(SandboxError::Stop { flavour: self.flavour, role: self.role.name(), pid: self.pid })
        }
    }

    /// Ends the supervisor (not the server), so it cannot act later.
    pub(crate) fn kill_supervisor(&mut self) {
        if let Some(pid) = self.supervisor_pid.take() {
            process::signal(pid, libc::SIGTERM);
        }
    }

    pub(crate) fn start_error(&self, detail: String) -> SandboxError {
        SandboxError::Start {
            flavour: self.flavour,
            role: self.role.name(),
            detail,
            log: self.error_log.clone(),
            log_tail: process::log_tail(&self.error_log, 25),
        }
    }

    pub(crate) fn sql_error(&self, what: &str, source: mysql_async::Error) -> SandboxError {
        SandboxError::Sql { what: what.into(), flavour: self.flavour, port: self.port, source }
    }
}
