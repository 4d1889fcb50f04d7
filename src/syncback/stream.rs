//! Reading the new server's binary log: a replication stream (`mysql_async`'s binlog stream)
//! started at a [`Position`], decoded into committed transactions holding the row changes of
//! the watched tables (full before and after images, never re-read from the source), and DDL
//! on those tables, which stops sync-back.
//!
//! MySQL is asked by GTID set (`COM_BINLOG_DUMP_GTID`): the server sends every transaction the
//! set lacks. MariaDB is asked by file and offset: without `@mariadb_slave_capability` the
//! server sends MySQL-compatible events only (its GTID events become `BEGIN` query events, its
//! GTID list and checkpoint events become dummy events, which are skipped), so the file and
//! offset after each commit is the position.

use super::position::{uuid_text, GtidSet, Position};
use crate::db::{ConnectSpec, Flavour};
use crate::error::{Error, Result};
use crate::model::TableName;
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::consts::ColumnType;
use mysql_async::{BinlogStream, BinlogStreamRequest, Value};
use std::collections::BTreeSet;
use std::str::FromStr;

/// One row change of a watched table, with its images as the binary log holds them.
#[derive(Debug, Clone)]
pub struct Change {
    /// The table on the new server.
    pub table: TableName,
    /// Before image (updates, deletes): every column.
    pub before: Option<Vec<Value>>,
    /// After image (inserts, updates): every column.
    pub after: Option<Vec<Value>>,
    /// Column types from the table map (to check against the target's columns).
    pub types: Vec<Option<ColumnType>>,
}

/// A committed transaction of the new server.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    /// Its changes to watched tables (often none: other tables' transactions only move the position).
    pub changes: Vec<Change>,
    /// Commit time on the new server, Unix microseconds (MySQL's GTID event), else seconds * 1e6.
    pub committed_us: u64,
}

/// What the reader found next.
#[derive(Debug)]
pub enum Item {
    /// A committed transaction and the position just after it.
    Commit { txn: Txn, end: Position },
    /// A statement on a watched table (DDL): sync-back must stop before it.
    Ddl { table: TableName, statement: String },
}

/// The decoding state over one stream.
pub struct Reader {
    stream: BinlogStream,
    flavour: Flavour,
    watched: BTreeSet<TableName>,
    file: String,
    pos: u64,
    gtids: GtidSet,
    pending: Txn,
    pending_gtid: Option<(String, u64)>,
    /// A format description arrived (from then on checksums are stripped from events).
    fde_seen: bool,
}

/// Opens a binary log stream on `spec` at `start`, as replica `server_id`.
pub async fn open(spec: &ConnectSpec, flavour: Flavour, start: &Position, server_id: u32, watched: &[TableName]) -> Result<Reader> {
    let conn = crate::db::server::raw_conn(spec).await?;
    let gtids = match (&start.gtid, flavour) {
        (Some(g), Flavour::MySql) => GtidSet::parse(g)?,
        _ => GtidSet::default(),
    };
    let sids: Vec<mysql_async::Sid<'static>> = gtids
        .members()
        .iter()
        .map(|m| mysql_async::Sid::from_str(m).map_err(|e| Error::BadInput(format!("GTID set member {m}: {e}"))))
        .collect::<Result<_>>()?;
    let req = BinlogStreamRequest::new(server_id);
    let req = match flavour {
        Flavour::MySql if start.gtid.is_some() => req.with_gtid().with_gtid_set(sids),
        _ => req.with_filename(start.file.as_bytes()).with_pos(start.pos),
    };
    let stream = conn
        .get_binlog_stream(req)
        .await
        .map_err(|e| Error::Binlog(format!("{}: the binary log stream could not start at {start}: {e}", spec.target())))?;
    Ok(Reader {
        stream,
        flavour,
        watched: watched.iter().cloned().collect(),
        file: start.file.clone(),
        pos: start.pos,
        gtids,
        pending: Txn::default(),
        pending_gtid: None,
        fde_seen: false,
    })
}

impl Reader {
    /// The next commit or DDL; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        loop {
            let ev = match self.stream.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Binlog(format!("reading the binary log: {e}"))),
                Some(Ok(ev)) => ev,
            };
            let h = ev.header();
            let data = ev.read_data().map_err(|e| Error::Binlog(format!("decoding a binary log event: {e}")))?;
            let mut commit = false;
            match data {
                Some(EventData::RotateEvent(r)) => {
                    // Before the format description the checksum is unknown and may trail the name.
                    let raw = r.name_raw();
                    self.file = if self.fde_seen {
                        String::from_utf8_lossy(raw).into_owned()
                    } else if !self.file.is_empty() && raw.starts_with(self.file.as_bytes()) {
                        self.file.clone()
                    } else {
                        log_name(raw)
                    };
                    self.pos = r.position();
                    continue;
                }
                Some(EventData::FormatDescriptionEvent(_)) => self.fde_seen = true,
                Some(EventData::GtidEvent(g)) => {
                    self.pending = Txn::default();
                    self.pending_gtid = Some((uuid_text(&g.sid()), g.gno()));
                    self.pending.committed_us = g.immediate_commit_timestamp();
                }
                Some(EventData::QueryEvent(q)) => {
                    let sql = q.query();
                    match classify(&sql) {
                        Query::Begin => {
                            self.pending.changes.clear();
                        }
                        Query::Commit => commit = true,
                        Query::Ignore => {}
                        Query::Account => commit = true,
                        Query::Other => {
                            if let Some(table) = ddl_target(&q.schema(), &sql, &self.watched) {
                                return Ok(Some(Item::Ddl { table, statement: sql.trim().chars().take(300).collect() }));
                            }
                            // A statement on other tables is a transaction of its own (MySQL
                            // DDL, MariaDB's non-transactional statements): the position moves.
                            commit = true;
                        }
                    }
                }
                Some(EventData::RowsEvent(r)) => self.rows(&r)?,
                Some(EventData::XidEvent(_)) => commit = true,
                _ => {}
            }
            if h.log_pos() > 0 {
                self.pos = u64::from(h.log_pos());
            }
            if commit {
                if self.pending.committed_us == 0 {
                    self.pending.committed_us = u64::from(h.timestamp()) * 1_000_000;
                }
                if let Some((uuid, gno)) = self.pending_gtid.take() {
                    self.gtids.add(&uuid, gno);
                }
                let gtid = (self.flavour == Flavour::MySql && !self.gtids.members().is_empty()).then(|| self.gtids.to_string());
                let txn = std::mem::take(&mut self.pending);
                return Ok(Some(Item::Commit { txn, end: Position { file: self.file.clone(), pos: self.pos, gtid } }));
            }
        }
    }

    /// Decodes one rows event of a watched table into changes (full images required).
    fn rows(&mut self, r: &RowsEventData<'_>) -> Result<()> {
        let Some(tme) = self.stream.get_tme(r.table_id()) else {
            return Err(Error::Binlog(format!("a rows event without its table map (table id {})", r.table_id())));
        };
        let table = TableName::new(tme.database_name(), tme.table_name());
        if !self.watched.contains(&table) {
            return Ok(());
        }
        let n = r.num_columns() as usize;
        if !full(r.columns_before_image(), n) || !full(r.columns_after_image(), n) {
            return Err(Error::Binlog(format!(
                "{table}: a row event without the full row image (binlog_row_image must be FULL on the new server)"
            )));
        }
        let types: Vec<Option<ColumnType>> = (0..tme.columns_count() as usize).map(|i| tme.get_column_type(i).ok().flatten()).collect();
        for row in r.rows(tme) {
            let (before, after) = row.map_err(|e| Error::Binlog(format!("{table}: decoding a row: {e}")))?;
            let values = |row: Option<mysql_async::binlog::row::BinlogRow>| -> Result<Option<Vec<Value>>> {
                let Some(row) = row else { return Ok(None) };
                row.unwrap()
                    .into_iter()
                    .map(|v| Value::try_from(v).map_err(|e| Error::Binlog(format!("{table}: a value sync-back cannot apply: {e}"))))
                    .collect::<Result<Vec<_>>>()
                    .map(Some)
            };
            self.pending.changes.push(Change {
                table: table.clone(),
                before: values(before)?,
                after: values(after)?,
                types: types.clone(),
            });
        }
        Ok(())
    }

    /// Ends the stream's connection.
    pub async fn close(self) {
        let _ = self.stream.close().await;
    }
}

/// A rotate event's file name when a checksum may trail it: the name ends after the six
/// digits of its extension.
fn log_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    match text.rfind('.') {
        Some(dot) => {
            let digits = text[dot + 1..].chars().take(6).take_while(char::is_ascii_digit).count();
            text[..dot + 1 + digits].to_string()
        }
        None => text.into_owned(),
    }
}

/// Whether a row image's column bitmap covers all `n` columns (absent: no such image).
fn full<I: IntoIterator>(bits: Option<I>, n: usize) -> bool
where
    I::Item: std::ops::Deref<Target = bool>,
{
    bits.is_none_or(|b| b.into_iter().take(n).filter(|x| **x).count() == n)
}

#[derive(Debug, PartialEq, Eq)]
enum Query {
    Begin,
    Commit,
    /// Transaction noise: savepoints, XA, MariaDB's dummy events replacing events the stream
    /// does not announce it understands.
    Ignore,
    /// GRANT, REVOKE, account statements: a transaction of their own, never DDL on a table.
    Account,
    Other,
}

const ACCOUNT_STATEMENTS: [&str; 9] =
    ["GRANT", "REVOKE", "CREATE USER", "ALTER USER", "DROP USER", "RENAME USER", "SET PASSWORD", "CREATE ROLE", "DROP ROLE"];

fn classify(sql: &str) -> Query {
    let t = sql.trim();
    let up: String = t.chars().take(24).collect::<String>().to_ascii_uppercase();
    if up == "BEGIN" || up.starts_with("START TRANSACTION") || up.starts_with("XA START") {
        Query::Begin
    } else if up == "COMMIT" || up.starts_with("XA COMMIT") || up.starts_with("XA END") || up.starts_with("XA PREPARE") {
        Query::Commit
    } else if up.starts_with("SAVEPOINT")
        || up.starts_with("ROLLBACK")
        || t.contains("Dummy event replacing event type")
        || t.starts_with('#')
    {
        Query::Ignore
    } else if ACCOUNT_STATEMENTS.iter().any(|w| up.starts_with(w)) {
        // Account and grant changes name tables but change no row or column of them.
        Query::Account
    } else {
        Query::Other
    }
}

/// The watched table a statement names (qualified, or unqualified in its default schema).
pub fn ddl_target(default_schema: &str, sql: &str, watched: &BTreeSet<TableName>) -> Option<TableName> {
    let text = sql.to_lowercase();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    for t in watched {
        let name = t.name.to_lowercase();
        let schema = t.schema.to_lowercase();
        for (i, _) in text.match_indices(&name) {
            let before = text[..i].trim_end_matches('`');
            let after = text[i + name.len()..].trim_start_matches('`');
            if before.chars().next_back().is_some_and(ident) || after.chars().next().is_some_and(ident) {
                continue;
            }
            let qualified = before.strip_suffix('.').map(|b| b.trim_end_matches('`'));
            let hit = match qualified {
                Some(b) => b.ends_with(&schema) && !b[..b.len() - schema.len()].chars().next_back().is_some_and(ident),
                None => default_schema.eq_ignore_ascii_case(&t.schema),
            };
            if hit {
                return Some(t.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_names() {
        assert_eq!(log_name(b"binlog.000002\x8a\x12y2"), "binlog.000002");
        assert_eq!(log_name(b"binlog.00000223\x12y"), "binlog.000002");
        assert_eq!(log_name(b"binlog.000010"), "binlog.000010");
    }

    #[test]
    fn statements() {
        assert_eq!(classify("BEGIN"), Query::Begin);
        assert_eq!(classify("COMMIT"), Query::Commit);
        assert_eq!(classify("# Dummy event replacing event type 160 that slave cannot handle."), Query::Ignore);
        assert_eq!(classify("ALTER TABLE t ADD COLUMN x INT"), Query::Other);
        assert_eq!(classify("GRANT SELECT ON svc_db.seq TO u"), Query::Account);
    }

    #[test]
    fn ddl_on_watched_tables() {
        let w: BTreeSet<TableName> = [TableName::new("svc_db", "seq")].into_iter().collect();
        assert!(ddl_target("", "ALTER TABLE `svc_db`.`seq` ADD COLUMN x INT", &w).is_some());
        assert!(ddl_target("svc_db", "alter table seq add column x int", &w).is_some());
        assert!(ddl_target("other", "alter table seq add column x int", &w).is_none());
        assert!(ddl_target("svc_db", "alter table seq2 add column x int", &w).is_none());
        assert!(ddl_target("", "ALTER TABLE my_svc_db.seq ADD x INT", &w).is_none());
        assert!(ddl_target("", "CREATE TABLE main_db.other (id INT)", &w).is_none());
    }
}
