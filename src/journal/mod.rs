//! The session journal: a durable, append-only record of everything a session does to a server,
//! written *before* it is done.
//!
//! One journal per service (a session spans many accounts). Each line is one JSON [`Entry`]; the
//! first is a [`Record::Header`] with the format version. Every change to a server is an
//! [`Record::Intent`] (fsynced before the statement runs) followed by an [`Record::Outcome`]
//! (fsynced after). A crash between the two leaves an intent without an outcome: recovery treats
//! the statement as possibly applied, which is safe because every inverse is idempotent or
//! tolerates "no such grant".
//!
//! What never goes in: passwords, password hashes (snapshots are canonical grant atoms, hashes
//! redacted), statement texts of applications (alarms are cited by digest and object).
//!
//! [`crash`] lets tests kill the process at each durable point.

pub mod crash;
mod state;

use crate::error::{Error, Result};
use crate::model::{AccountName, TableName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub use state::{AccountState, AccountStatus, FailsafeInfo, Op, State};

/// Version of the journal format. A journal of a newer format is refused, never guessed at.
pub const JOURNAL_FORMAT: u32 = 1;

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub record: Record,
}

/// A server the session changes, as the journal knows it (no credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRef {
    /// `primary`, or the replica's name.
    pub name: String,
    /// `user@host:port`.
    pub target: String,
    /// `server_uuid` (MySQL) or `server_id` (MariaDB), to recognise the server on resume.
    pub identity: String,
}

/// What a journaled statement is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A server setting turned on to gather evidence, or back off.
    Setting,
    /// The cut's forward statements.
    Cut,
    /// Ending connections (the cut's pre-cut connections, or the restore's cut-era ones).
    Kill,
    /// The restore's statements.
    Restore,
    /// A promotion's write fence (run without binary logging).
    Fence,
    /// Undoing promotion steps before the point of no return.
    Abort,
    /// Turning the replica into the service's server (after the point of no return).
    Promote,
    /// Arming and disarming the server-side fail-safe (schema, procedure, event, heartbeat).
    Failsafe,
}

/// One planned statement of an account's cut, with its inverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStep {
    pub id: String,
    /// `grant` or `revoke` (the forward statement's kind).
    pub kind: crate::plan::StepKind,
    pub forward: String,
    pub inverse: String,
}

/// The end of an account's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The window saw the account work on other tables, and no abnormality: the cut stays.
    Passed,
    /// An abnormality: the account's access was restored.
    Restored,
    /// No table activity from the account in the window: no evidence either way. The access was
    /// restored unless the operator chose to keep the cut.
    Inconclusive,
    /// Nothing was changed (the session stopped before the first statement).
    Abandoned,
    /// The operator rolled back a cut that had passed.
    RolledBack,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Restored => "restored",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Abandoned => "abandoned",
            Verdict::RolledBack => "rolled back",
        }
    }
}

/// The records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Header {
        format: u32,
        tool_version: String,
        service: String,
        /// The policy file, as given (for the report).
        policy: String,
        tables: Vec<TableName>,
    },
    /// The servers of a command run (each `start`, `resume`, `rollback` writes one).
    Topology {
        servers: Vec<ServerRef>,
    },
    /// An operator's choice or confirmation, in words.
    Note {
        account: Option<String>,
        text: String,
    },
    /// An account's turn begins: the plan and the exact grants to restore.
    AccountBegin {
        /// As the operator named it (`'u'@'h'`, or a bare user for all its host rows).
        account: String,
        accounts: Vec<AccountName>,
        /// Every grantee whose grants the plan changes (the accounts, their roles, PUBLIC).
        grantees: Vec<AccountName>,
        fingerprint: String,
        steps: Vec<JournalStep>,
        /// Canonical grant atoms of `grantees` before the cut (no hashes).
        snapshot: Vec<String>,
        /// Evidence of non-use that led to the choice (cited rows, no statement texts).
        evidence: Vec<String>,
    },
    /// A statement about to run.
    Intent {
        op: u64,
        server: String,
        phase: Phase,
        step: Option<String>,
        sql: String,
        /// For settings: the statement that turns it back off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undo: Option<String>,
    },
    /// What happened to it.
    Outcome {
        op: u64,
        ok: bool,
        error: Option<String>,
    },
    /// The highest processlist id at a moment: connections at or below it existed then.
    Watermark {
        server: String,
        purpose: String,
        id: u64,
        boot: i64,
    },
    /// The cut is in force everywhere: statements applied on every server, pre-cut connections
    /// gone. `after` is the grantees' canonical grants right after the cut.
    CutDone {
        after: Vec<String>,
    },
    WatchBegin {
        window_ms: u64,
        sources: Vec<String>,
    },
    RestoreBegin {
        reason: String,
    },
    /// The restore finished. `conflicts`: changes someone else made to the grantees meanwhile
    /// (kept); `exact`: the grants equal the snapshot (plus the conflicts).
    RestoreDone {
        exact: bool,
        conflicts: Vec<String>,
    },
    Verdict {
        verdict: Verdict,
        reason: String,
        evidence: Vec<String>,
        activity: u64,
    },
    /// An earlier turn becomes current again (rolling back an account whose cut passed).
    Reopen {
        turn: usize,
    },
    /// A promotion step began, was done, or was undone (by an abort); `detail` holds what the
    /// step saw and did (positions, checks, chunk sums; never credentials).
    Step {
        name: String,
        state: StepState,
        detail: serde_json::Value,
    },
    /// The server-side fail-safe of the current turn (or promotion): `arming` before its
    /// statements run (`detail`: server, schema, event, procedure, `after_ms`, the heartbeat
    /// statement run every second without binary logging), `armed` once the heartbeat runs,
    /// `fired` when privfence learns that the server restored by itself (`detail`: `fired_at`,
    /// `heartbeat_at`, `stale_ms`, `done_at`, `errors`), `disarmed` once event and procedure
    /// are dropped.
    Failsafe {
        name: String,
        state: FailsafeState,
        detail: serde_json::Value,
    },
    /// A promotion passed the point of no return: the replica is being promoted.
    PointOfNoReturn {
        gtid: String,
    },
}

/// Where a fail-safe stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailsafeState {
    Arming,
    Armed,
    Fired,
    Disarmed,
}

/// Where a promotion step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Begun,
    Done,
    Undone,
}

/// An open journal, holding an exclusive advisory lock on its file.
pub struct Journal {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
    next_op: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).field("entries", &self.entries.len()).finish()
    }
}

fn io(what: impl Into<String>, source: std::io::Error) -> Error {
    Error::Io { what: what.into(), source }
}

impl Journal {
    /// Opens `path`, creating it with `header` when it does not exist. An existing journal must
    /// be of a known format and for the same service.
    pub fn open_or_create(path: &Path, header: Record) -> Result<Journal> {
        if path.exists() {
            let j = Journal::open(path)?;
            if let (Record::Header { service: want, .. }, Some(Record::Header { service: have, .. })) =
                (&header, j.entries.first().map(|e| &e.record))
            {
                if want != have {
                    return Err(Error::BadInput(format!(
                        "{} is the journal of service {have:?}, not {want:?}; pass --journal with another path",
                        path.display()
                    )));
                }
            }
            return Ok(j);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
        }
        // The header is written and fsynced under a temporary name, then the file appears under
        // its own name complete (a hard link: never over another process's new journal). A
        // kill in between leaves no empty journal that every later run would refuse.
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&tmp)
            .map_err(|e| io(format!("creating journal {}", tmp.display()), e))?;
        lock(&file, path)?;
        let mut j = Journal { path: path.to_path_buf(), file, entries: Vec::new(), next_op: 1 };
        let linked = j.write(header).and_then(|_| {
            std::fs::hard_link(&tmp, path)
                .map_err(|e| io(format!("creating journal {} (another privfence created it meanwhile?)", path.display()), e))
        });
        let _ = std::fs::remove_file(&tmp);
        linked?;
        sync_dir(path)?;
        crash::point(&record_label(&j.entries[0].record));
        Ok(j)
    }

    /// Opens an existing journal for appending. A torn last line (the process died while
    /// writing it, before its fsync returned) is cut off: nothing after it was ever acted on.
    pub fn open(path: &Path) -> Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io(format!("opening journal {} (is the path right?)", path.display()), e))?;
        lock(&file, path)?;
        let (entries, good_len, torn) = read_entries(&file, path)?;
        if torn {
            file.set_len(good_len).map_err(|e| io(format!("cutting the torn last line of {}", path.display()), e))?;
            file.sync_all().map_err(|e| io(format!("syncing {}", path.display()), e))?;
        }
        match entries.first().map(|e| &e.record) {
            Some(Record::Header { format, .. }) if *format <= JOURNAL_FORMAT => {}
            Some(Record::Header { format, .. }) => {
                return Err(Error::BadInput(format!(
                    "{}: journal format {format} is newer than this privfence understands ({JOURNAL_FORMAT}); use a newer privfence",
                    path.display()
                )))
            }
            _ => return Err(Error::BadInput(format!("{}: not a privfence journal (no header line)", path.display()))),
        }
        let next_op = entries
            .iter()
            .filter_map(|e| match &e.record {
                Record::Intent { op, .. } => Some(*op),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Journal { path: path.to_path_buf(), file, entries, next_op })
    }

    /// Reads a journal without locking it (for `session status` while a session runs).
    pub fn read(path: &Path) -> Result<Vec<Entry>> {
        let file = File::open(path).map_err(|e| io(format!("opening journal {}", path.display()), e))?;
        Ok(read_entries(&file, path)?.0)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The session as the journal tells it.
    pub fn state(&self) -> State {
        State::fold(&self.entries)
    }

    /// Appends a record and fsyncs it before returning. Then passes a crash point.
    pub fn append(&mut self, record: Record) -> Result<&Entry> {
        self.write(record)?;
        let label = record_label(&self.entries.last().expect("just pushed").record);
        crash::point(&label);
        Ok(self.entries.last().expect("just pushed"))
    }

    /// Writes and fsyncs one record (no crash point: [`Journal::append`] adds it).
    fn write(&mut self, record: Record) -> Result<()> {
        let seq = self.entries.last().map_or(1, |e| e.seq + 1);
        let entry = Entry { seq, at: Utc::now(), record };
        let mut line = serde_json::to_string(&entry).expect("journal entries serialize");
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| io(format!("writing journal {}", self.path.display()), e))?;
        self.file.sync_data().map_err(|e| io(format!("syncing journal {}", self.path.display()), e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Allocates the number of the next statement.
    pub fn next_op(&mut self) -> u64 {
        let op = self.next_op;
        self.next_op += 1;
        op
    }
}

fn record_label(r: &Record) -> String {
    match r {
        Record::Intent { phase, step, .. } => format!("intent {phase:?} {}", step.as_deref().unwrap_or("")),
        Record::Outcome { op, ok, .. } => format!("outcome {op} ok={ok}"),
        Record::Watermark { server, purpose, .. } => format!("watermark {server} {purpose}"),
        Record::Step { name, state, .. } => format!("step {name} {state:?}").to_lowercase(),
        other => {
            let v = serde_json::to_value(other).expect("serializes");
            v.get("type").and_then(|t| t.as_str()).unwrap_or("record").to_string()
        }
    }
}

fn read_entries(file: &File, path: &Path) -> Result<(Vec<Entry>, u64, bool)> {
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| io(format!("reading journal {}", path.display()), e))?;
        if read == 0 {
            return Ok((entries, offset, false));
        }
        n += 1;
        let complete = line.ends_with('\n');
        match serde_json::from_str::<Entry>(line.trim_end()) {
            Ok(e) if complete => {
                entries.push(e);
                offset += read as u64;
            }
            // Only the last line can be torn: it was never acknowledged, so nothing acted on it.
            _ if !complete => return Ok((entries, offset, true)),
            Ok(_) => unreachable!("complete handled above"),
            Err(e) => {
                return Err(Error::BadInput(format!(
                    "{}:{n}: unreadable journal line ({e}); the journal was edited or damaged. Keep a copy and repair it by hand",
                    path.display()
                )))
            }
        }
    }
}

/// An exclusive advisory lock: two privfence processes on one machine never share a journal.
fn lock(file: &File, path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid, open file descriptor; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(Error::BadInput(format!(
            "{} is in use by another privfence process on this machine; wait for it, or check `privfence session status`",
            path.display()
        )));
    }
    Ok(())
}

/// Fsyncs the folder so a new journal's name itself survives a crash.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(format!("syncing folder {}", dir.display()), e))
}

/// The default journal path of a service: `$XDG_STATE_HOME/privfence/<service>.journal`
/// (`~/.local/state/privfence/...`).
pub fn default_path(service: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let safe: String = service.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    base.join("privfence").join(format!("{safe}.journal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Record {
        Record::Header {
            format: JOURNAL_FORMAT,
            tool_version: "t".into(),
            service: "media".into(),
            policy: "p.toml".into(),
            tables: vec![],
        }
    }

    #[test]
    fn appends_survive_reopen_and_torn_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j/media.journal");
        {
            let mut j = Journal::open_or_create(&p, header()).unwrap();
            let op = j.next_op();
            j.append(Record::Intent {
                op,
                server: "primary".into(),
                phase: Phase::Cut,
                step: Some("01-grant".into()),
                sql: "GRANT 1".into(),
                undo: None,
            })
            .unwrap();
        }
        // A torn write: half a line at the end.
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{\"seq\":3,\"at\":").unwrap();
        let mut j = Journal::open(&p).unwrap();
        assert_eq!(j.entries().len(), 2);
        assert_eq!(j.next_op(), 2);
        j.append(Record::Outcome { op: 1, ok: true, error: None }).unwrap();
        let again = Journal::read(&p).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again[2].seq, 3);
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("media.journal");
        let _j = Journal::open_or_create(&p, header()).unwrap();
        let e = Journal::open(&p).unwrap_err().to_string();
        assert!(e.contains("in use by another privfence process"), "{e}");
    }

    #[test]
    fn other_services_and_newer_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("media.journal");
        drop(Journal::open_or_create(&p, header()).unwrap());
        let other = Record::Header { format: 1, tool_version: "t".into(), service: "billing".into(), policy: "p".into(), tables: vec![] };
        assert!(Journal::open_or_create(&p, other).unwrap_err().to_string().contains("journal of service \"media\""));
        let text = std::fs::read_to_string(&p).unwrap().replace("\"format\":1", "\"format\":99");
        std::fs::write(&p, text).unwrap();
        assert!(Journal::open(&p).unwrap_err().to_string().contains("newer than this privfence"));
    }

    #[test]
    fn garbage_in_the_middle_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("media.journal");
        drop(Journal::open_or_create(&p, header()).unwrap());
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("not json\n{}\n");
        std::fs::write(&p, text).unwrap();
        let e = Journal::open(&p).unwrap_err().to_string();
        assert!(e.contains(":2: unreadable journal line"), "{e}");
    }
}
