//! A sandbox: one primary, optionally one replica, in one folder; start, stop, restart, status.
//!
//! Folder layout: `sandbox.json` (state, no passwords), then one folder per server
//! (`primary/`, `replica/`, see [`super::server`]).

use super::folder::{prepare_dir, remove_files, temp_dir};
use super::process;
use super::replication::{self, ReplicationState};
use super::server::Server;
use super::state::{ServerState, State};
use super::{ensure_installed, template, Role, SandboxError, SandboxOptions, Topology};
use crate::db::Flavour;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Running sandbox servers and their folder.
#[derive(Debug)]
pub struct Sandbox {
    /// MySQL or MariaDB.
    pub flavour: Flavour,
    /// Single server, or primary plus replica.
    pub topology: Topology,
    /// The primary (the only server of a single-server sandbox).
    pub primary: Server,
    /// The replica, for [`Topology::PrimaryReplica`].
    pub replica: Option<Server>,
    /// The sandbox folder.
    pub dir: PathBuf,
    /// The folder was created by [`Sandbox::start`] in the temporary directory: it is removed
    /// by [`Sandbox::destroy`], by dropping the sandbox that created it, and by the supervisors
    /// when the watched process ends.
    pub temporary: bool,
    /// The process whose end stops the servers (see [`SandboxOptions::watch_pid`]).
    pub watch_pid: Option<u32>,
    /// The template the datadirs came from; it holds the replication password.
    template: PathBuf,
    /// Set on the value [`Sandbox::start`] returned for a temporary folder and cleared by
    /// [`Sandbox::destroy`]: only that value tears the sandbox down when dropped, never one
    /// read back with [`Sandbox::load`].
    drop_destroys: bool,
}

/// What [`Sandbox::status`] reports per server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// Primary or replica.
    pub role: Role,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The recorded pid.
    pub pid: u32,
    /// The process is alive and accepted an admin login.
    pub up: bool,
    /// `@@version`, when up.
    pub version: Option<String>,
    /// `@@read_only`, when up.
    pub read_only: Option<bool>,
    /// MySQL `@@gtid_executed` or MariaDB `@@gtid_current_pos`, when up.
    pub gtids: Option<String>,
    /// The replication threads, on a server that replicates.
    pub replication: Option<ReplicationState>,
    /// Why the server is not up, or what failed while reading its state.
    pub error: Option<String>,
}

impl Sandbox {
    /// Installs what is missing, makes sure the template exists, copies it and starts the
    /// servers (concurrently), then configures replication when asked for.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let flavour = opts.flavour;
        let binaries = tokio::task::spawn_blocking(move || ensure_installed(flavour))
            .await
            .map_err(|e| SandboxError::io("installing servers", std::io::Error::other(e.to_string())))??;
        let template = template::ensure(&binaries).await?;
        let (dir, temporary) = match &opts.dir {
            Some(d) => (prepare_dir(d)?, false),
            None => (temp_dir(flavour)?, true),
        };
        let admin = ("root", template.admin_password.as_str());
        let mk = |role: Role| Server::with_layout(&binaries, role, &dir.join(role.name()), admin, opts.extra_args.clone());
        let mut sandbox = Sandbox {
            flavour,
            topology: opts.topology,
            primary: mk(Role::Primary),
            replica: (opts.topology == Topology::PrimaryReplica).then(|| mk(Role::Replica)),
            dir: dir.clone(),
            temporary,
            watch_pid: opts.watch_pid,
            template: template.dir.clone(),
            drop_destroys: temporary,
        };
        let watch = watch_args(opts.watch_pid, temporary, &dir);
        let res = async {
            let p = provision(&mut sandbox.primary, &template, watch);
            match sandbox.replica.as_mut() {
                Some(r) => {
                    let (a, b) = tokio::join!(p, provision(r, &template, watch));
                    a.and(b)
                }
                None => p.await,
            }?;
            if let Some(r) = &sandbox.replica {
                replication::configure(&sandbox.primary, r, &template.repl_password).await?;
            }
            sandbox.save()
        }
        .await;
        if let Err(e) = res {
            // Stop what started; keep the folder (logs) for inspection.
            sandbox.drop_destroys = false;
            let _ = sandbox.stop();
            sandbox.kill_supervisors();
            return Err(e);
        }
        Ok(sandbox)
    }

    /// Reads a sandbox back from `DIR/sandbox.json` (for `status` and `down` in a later
    /// process). Dropping the result never stops anything.
    pub fn load(dir: &Path) -> Result<Sandbox, SandboxError> {
        let state = State::read(dir)?;
        let mut primary = None;
        let mut replica = None;
        for s in state.servers {
            let role = s.role;
            let server = s.into_server(&state.binaries)?;
            match role {
                Role::Primary => primary = Some(server),
                Role::Replica => replica = Some(server),
            }
        }
        let primary = primary.ok_or_else(|| SandboxError::State { dir: dir.into(), detail: "sandbox.json lists no primary".into() })?;
        Ok(Sandbox {
            flavour: state.flavour,
            topology: state.topology,
            primary,
            replica,
            dir: dir.to_path_buf(),
            temporary: state.temporary,
            watch_pid: state.watch_pid,
            template: state.template,
            drop_destroys: false,
        })
    }

    /// The servers, primary first.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        std::iter::once(&self.primary).chain(self.replica.as_ref())
    }

    /// The server with this role, if the sandbox has one.
    pub fn server(&self, role: Role) -> Option<&Server> {
        match role {
            Role::Primary => Some(&self.primary),
            Role::Replica => self.replica.as_ref(),
        }
    }

    /// Stops every server cleanly (replica first); the folder stays. Start them again with
    /// [`Sandbox::start_server`].
    pub fn stop(&self) -> Result<(), SandboxError> {
        let replica = self.replica.as_ref().map_or(Ok(()), Server::stop);
        self.primary.stop().and(replica)
    }

    /// Stops one server cleanly; the sandbox keeps its port and datadir.
    pub fn stop_server(&self, role: Role) -> Result<(), SandboxError> {
        self.server(role).map_or(Ok(()), Server::stop)
    }

    /// Starts a stopped server again with the same datadir, port and arguments. A replica
    /// resumes replicating by itself (its source settings live in its datadir).
    pub async fn start_server(&mut self, role: Role) -> Result<(), SandboxError> {
        let dir = self.dir.clone();
        let watch = watch_args(self.watch_pid, self.temporary, &dir);
        let server = self.server_mut(role)?;
        server.kill_supervisor();
        server.launch(watch).await?;
        self.save()
    }

    /// Stops and starts one server (same datadir, port and arguments).
    pub async fn restart_server(&mut self, role: Role) -> Result<(), SandboxError> {
        self.server_mut(role)?.stop()?;
        self.start_server(role).await
    }

    /// Stops the servers and removes the sandbox: the whole folder when it is temporary,
    /// otherwise only the files the sandbox created in it.
    ///
    /// The servers are killed (SIGKILL), not shut down: their data is deleted right after.
    pub fn destroy(mut self) -> Result<(), SandboxError> {
        self.drop_destroys = false;
        self.kill()?;
        self.kill_supervisors();
        remove_files(&self.dir, self.temporary)
    }

    fn kill(&self) -> Result<(), SandboxError> {
        let replica = self.replica.as_ref().map_or(Ok(()), Server::kill);
        self.primary.kill().and(replica)
    }

    /// Waits until the replica has applied everything the primary has executed so far
    /// (MySQL `WAIT_FOR_EXECUTED_GTID_SET`, MariaDB `MASTER_GTID_WAIT`).
    pub async fn wait_replica_caught_up(&self, timeout: Duration) -> Result<(), SandboxError> {
        let replica = self.replica.as_ref().ok_or_else(|| SandboxError::Replication {
            flavour: self.flavour,
            detail: "this sandbox has no replica; start it with Topology::PrimaryReplica".into(),
            log: self.primary.error_log.clone(),
        })?;
        replication::wait_caught_up(&self.primary, replica, timeout).await
    }

    /// The password of the `'repl'@'127.0.0.1'` replication account (from the template).
    pub fn repl_password(&self) -> Result<String, SandboxError> {
        let path = self.template.join("repl.password");
        std::fs::read_to_string(&path).map(|s| s.trim().to_string()).map_err(|e| SandboxError::io(format!("reading {}", path.display()), e))
    }

    /// Up or down, version, read-only, GTIDs and replication threads of every server.
    pub async fn status(&self) -> Vec<ServerStatus> {
        let mut out = Vec::new();
        for s in self.servers() {
            out.push(server_status(s).await);
        }
        out
    }

    /// How a person connects: one `--defaults-file` command per server (the option files hold
    /// the password, so it never appears on a command line).
    pub fn connect_help(&self) -> String {
        let mut text = format!("{} sandbox in {}\n", self.flavour, self.dir.display());
        for s in self.servers() {
            text.push_str(&format!("  {:<8} 127.0.0.1:{:<5}  {}\n", s.role.name(), s.port, s.client_script().display()));
        }
        let cmd = self.primary.client_command();
        let argv: Vec<String> =
            std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect();
        text.push_str(&format!(
            "Each `client` script runs the {} client with --defaults-file=<server folder>/client.cnf \
             (the primary's: {}).\nThe admin account is {}; its password is only in the client.cnf \
             files (mode 0600). Error logs: <server folder>/error.log.\n",
            self.flavour,
            argv.join(" "),
            self.primary.admin_user
        ));
        text
    }

    fn server_mut(&mut self, role: Role) -> Result<&mut Server, SandboxError> {
        let dir = self.dir.clone();
        match role {
            Role::Primary => Ok(&mut self.primary),
            Role::Replica => self.replica.as_mut().ok_or(SandboxError::State { dir, detail: "this sandbox has no replica".into() }),
        }
    }

    fn kill_supervisors(&mut self) {
        self.primary.kill_supervisor();
        if let Some(r) = self.replica.as_mut() {
            r.kill_supervisor();
        }
    }

    /// Writes `sandbox.json`.
    fn save(&self) -> Result<(), SandboxError> {
        State {
            format: super::state::FORMAT,
            flavour: self.flavour,
            topology: self.topology,
            temporary: self.temporary,
            watch_pid: self.watch_pid,
            template: self.template.clone(),
            updated_at: chrono::Utc::now().to_rfc3339(),
            binaries: self.primary.binaries.clone(),
            servers: self.servers().map(ServerState::from_server).collect(),
        }
        .write(&self.dir)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.drop_destroys {
            let _ = self.kill();
            self.kill_supervisors();
            let _ = remove_files(&self.dir, true);
        }
    }
}

/// Copies the template, writes `client.cnf` and starts one server.
async fn provision(server: &mut Server, template: &template::Template, watch: Option<(u32, Option<&Path>)>) -> Result<(), SandboxError> {
    std::fs::create_dir_all(&server.dir).map_err(|e| SandboxError::io(format!("creating {}", server.dir.display()), e))?;
    template.copy_datadir(server.flavour, &server.datadir).await?;
    server.launch(watch).await?;
    let cmd = server.client_command();
    let argv: Vec<String> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect();
    super::optfile::write_client_script(&server.client_script(), &argv)?;
    super::optfile::write_client(&server.client_cnf, &server.host, server.port, &server.admin_user, &server.admin_password)
}

/// What the supervisors get: the watched pid, and the folder to remove when it is temporary.
fn watch_args(watch_pid: Option<u32>, temporary: bool, dir: &Path) -> Option<(u32, Option<&Path>)> {
    watch_pid.map(|pid| (pid, temporary.then_some(dir)))
}

/// Reads one server's status; never fails (errors land in `ServerStatus::error`).
async fn server_status(s: &Server) -> ServerStatus {
    let mut st = ServerStatus {
        role: s.role,
        port: s.port,
        pid: s.pid,
        up: false,
        version: None,
        read_only: None,
        gtids: None,
        replication: None,
        error: None,
    };
    if !process::alive(s.pid) {
        st.error = Some(format!("not running (pid {} is gone)", s.pid));
        return st;
    }
    let gtid_var = match s.flavour {
        Flavour::MySql => "@@GLOBAL.gtid_executed",
        Flavour::MariaDb => "@@GLOBAL.gtid_current_pos",
    };
    let res: Result<_, mysql_async::Error> = async {
        let mut conn = tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(s.opts()))
            .await
            .map_err(|_| mysql_async::Error::Other("login timed out after 5 s".into()))??;
        let row: Option<(String, bool, String)> = conn.query_first(format!("SELECT @@version, @@read_only, {gtid_var}")).await?;
        let repl = replication::state(&mut conn, s.flavour).await?;
        let _ = conn.disconnect().await;
        Ok((row, repl))
    }
    .await;
    match res {
        Ok((row, repl)) => {
            st.up = true;
            if let Some((v, ro, g)) = row {
                st.version = Some(v);
                st.read_only = Some(ro);
                st.gtids = Some(g);
            }
            st.replication = repl;
        }
        Err(e) => st.error = Some(e.to_string()),
    }
    st
}
