//! `sandbox.json`: what a later process (`status`, `down`, a person) needs to find a sandbox.
//!
//! Holds flavour, ports, pids and paths, never a password: those stay in the 0600 `client.cnf`
//! files. Versioned by `format`; a reader refuses formats it does not know.

use super::server::Server;
use super::{Binaries, Role, SandboxError, Topology};
use crate::db::Flavour;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The current `sandbox.json` format.
pub(crate) const FORMAT: u32 = 1;

/// The state file's name inside the sandbox folder.
pub(crate) const FILE: &str = "sandbox.json";

/// The whole state file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub format: u32,
    #[serde(with = "flavour_name")]
    pub flavour: Flavour,
    pub topology: Topology,
    /// The folder is a temporary one, removed when the sandbox is destroyed or its watched
    /// process ends.
    pub temporary: bool,
    /// The process whose end stops the servers, if any.
    pub watch_pid: Option<u32>,
    /// The template the datadirs were copied from (it also holds the replication password).
    pub template: PathBuf,
    /// When the file was last written (at start, and after each server restart). Absent from
    /// files written before it existed: those must still load, or `sandbox down` could not
    /// remove an older sandbox.
    #[serde(default)]
    pub updated_at: String,
    pub binaries: Binaries,
    pub servers: Vec<ServerState>,
}

/// One server in the state file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerState {
    pub role: Role,
    pub server_id: u32,
    pub port: u16,
    pub pid: u32,
    pub supervisor_pid: Option<u32>,
    pub dir: PathBuf,
    pub datadir: PathBuf,
    pub socket: PathBuf,
    pub error_log: PathBuf,
    pub sql_errlog: Option<PathBuf>,
    pub client_cnf: PathBuf,
    pub admin_user: String,
    pub extra_args: Vec<String>,
    /// The server's full argument list, for a person reading the file.
    pub command_line: Vec<String>,
}

impl ServerState {
    pub(crate) fn from_server(s: &Server) -> ServerState {
        ServerState {
            role: s.role,
            server_id: s.server_id,
            port: s.port,
            pid: s.pid,
            supervisor_pid: s.supervisor_pid,
            dir: s.dir.clone(),
            datadir: s.datadir.clone(),
            socket: s.socket.clone(),
            error_log: s.error_log.clone(),
            sql_errlog: s.sql_errlog.clone(),
            client_cnf: s.client_cnf.clone(),
            admin_user: s.admin_user.clone(),
            extra_args: s.extra_args.clone(),
            command_line: s.server_args(),
        }
    }

    /// Rebuilds the server, reading the admin password from its `client.cnf`.
    pub(crate) fn into_server(self, binaries: &Binaries) -> Result<Server, SandboxError> {
        let admin_password = super::optfile::read_password(&self.client_cnf)?;
        let mut s = Server::with_layout(binaries, self.role, &self.dir, (&self.admin_user, &admin_password), self.extra_args);
        s.server_id = self.server_id;
        s.port = self.port;
        s.pid = self.pid;
        s.supervisor_pid = self.supervisor_pid;
        s.datadir = self.datadir;
        s.socket = self.socket;
        s.error_log = self.error_log;
        s.sql_errlog = self.sql_errlog;
        s.client_cnf = self.client_cnf;
        Ok(s)
    }
}

impl State {
    /// Writes the file atomically (temporary file, then rename).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), SandboxError> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let json = serde_json::to_string_pretty(self).map_err(|e| SandboxError::State { dir: dir.into(), detail: e.to_string() })?;
        std::fs::write(&tmp, format!("{json}\n")).map_err(|e| SandboxError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| SandboxError::io(format!("writing {}", path.display()), e))
    }

    /// Reads and checks the file.
    pub(crate) fn read(dir: &Path) -> Result<State, SandboxError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| SandboxError::State {
            dir: dir.into(),
            detail: format!("cannot read {FILE} ({e}); is this a sandbox folder? Start one first"),
        })?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| SandboxError::State { dir: dir.into(), detail: format!("{FILE} is not valid: {e}") })?;
        if state.format != FORMAT {
            return Err(SandboxError::State {
                dir: dir.into(),
                detail: format!("{FILE} has format {}, this privfence reads {FORMAT}", state.format),
            });
        }
        Ok(state)
    }
}

/// Serde for [`Flavour`] as its short name (`mysql`, `mariadb`); `Flavour` itself only
/// serializes.
pub(crate) mod flavour_name {
    use crate::db::Flavour;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(f: &Flavour, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(f.name())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Flavour, D::Error> {
        match String::deserialize(d)?.as_str() {
            "mysql" => Ok(Flavour::MySql),
            "mariadb" => Ok(Flavour::MariaDb),
            other => Err(serde::de::Error::custom(format!("unknown flavour {other:?}"))),
        }
    }
}
