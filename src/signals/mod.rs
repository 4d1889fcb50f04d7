//! PLACEHOLDER written by the lead so that src/session compiles while the signals module is
//! being written: the agreed API, with no sources behind it. The signals engineer replaces this
//! file entirely, keeping these names and signatures, plus `Monitor::set_since_connection` and
//! `Monitor::name`, which the session needs (the monitors are started before the cut, for the
//! baseline; the post-cut watermark is set once the cut's statements have run).

use crate::db::ConnectSpec;
use crate::error::Result;
use crate::model::TableName;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct WatchTarget {
    pub user: String,
    pub tables: Vec<TableName>,
    pub dependents: Vec<TableName>,
    pub since_connection: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SignalFiles {
    pub sql_errlog: Option<PathBuf>,
    pub app_logs: Vec<(PathBuf, regex::Regex)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub name: String,
    pub covers: String,
    pub blind_spots: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Activity {
    pub statements: u64,
    pub errors: u64,
    pub connections: u32,
    pub cited: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmKind {
    PrivilegeError,
    Collateral,
    CounterReset,
    Restart,
    AppLog,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub server: String,
    pub source: String,
    pub account: Option<String>,
    pub error: Option<u32>,
    pub object: Option<String>,
    pub digest: Option<String>,
    #[serde(skip)]
    pub statement: Option<String>,
    pub cited: String,
}

#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub alarms: Vec<Alarm>,
    pub activity: Activity,
}

pub struct Monitor {
    name: String,
    target: WatchTarget,
    sources: Vec<SourceInfo>,
}

impl Monitor {
    pub async fn start(_spec: &ConnectSpec, name: &str, target: WatchTarget, _files: SignalFiles) -> Result<Monitor> {
        Ok(Monitor { name: name.into(), target, sources: Vec::new() })
    }

    pub async fn poll(&mut self) -> Result<Poll> {
        let _ = &self.target;
        Ok(Poll::default())
    }

    pub fn sources(&self) -> &[SourceInfo] {
        &self.sources
    }

    pub fn set_since_connection(&mut self, id: u64) {
        self.target.since_connection = id;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn close(self) {}
}
