//! Long transactions and metadata locks on the service's tables.

use super::*;

/// A transaction on the primary.
pub(super) struct Trx {
    pub(super) id: String,
    pub(super) thread: u64,
    pub(super) age: u64,
    pub(super) state: String,
    pub(super) who: String,
    pub(super) query: String,
}

/// A metadata lock on a service table.
pub(super) struct Mdl {
    pub(super) table: TableName,
    /// `SHARED_READ`, `EXCLUSIVE`... (`MDL_` prefix removed).
    pub(super) mode: String,
    /// `TRANSACTION`, `STATEMENT`, `EXPLICIT`, or empty when the source does not say.
    pub(super) duration: String,
    pub(super) pending: bool,
    pub(super) thread: u64,
}

/// What the primary shows about transactions and locks.
pub(super) struct Locks {
    pub(super) max: Duration,
    pub(super) trxs: Vec<Trx>,
    /// `None`: metadata locks are not visible on this server; the reason and how to fix it.
    pub(super) mdl: std::result::Result<Vec<Mdl>, String>,
    /// Where the locks were read.
    pub(super) source: &'static str,
    /// Processlist: id → (user@host, seconds in the current statement, command).
    pub(super) threads: HashMap<u64, (String, u64, String)>,
}

pub(super) async fn observe_locks(primary: &mut Node, tables: &[TableName], max: Duration) -> Result<Locks> {
    let own = primary.server.connection_id();
    let trx_sql = format!(
        "SELECT t.trx_id, t.trx_mysql_thread_id, GREATEST(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), 0), t.trx_state, \
         IFNULL(CONCAT(p.USER, '@', p.HOST), ''), IFNULL(LEFT(t.trx_query, 120), '') \
         FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
         WHERE t.trx_mysql_thread_id <> {own}"
    );
    let trxs = primary
        .server
        .rows_as::<(String, u64, u64, String, String, String)>("reading the primary's transactions", &trx_sql)
        .await?
        .into_iter()
        .map(|(id, thread, age, state, who, query)| Trx { id, thread, age, state, who, query })
        .collect();
    let threads = primary
        .server
        .rows_as::<(u64, String, u64, String)>(
            "reading the primary's processlist",
            "SELECT ID, CONCAT(USER, '@', HOST), IFNULL(TIME, 0), IFNULL(COMMAND, '') FROM information_schema.PROCESSLIST",
        )
        .await?
        .into_iter()
        .map(|(id, who, time, cmd)| (id, (who, time, cmd)))
        .collect();
    let (source, mdl) = read_mdl(&mut primary.server, tables, own).await?;
    Ok(Locks { max, trxs, mdl, source, threads })
}

/// Metadata locks on `tables`, from `performance_schema.metadata_locks` or MariaDB's
/// `METADATA_LOCK_INFO` plugin, whichever is on.
pub(super) async fn read_mdl(
    server: &mut Server,
    tables: &[TableName],
    own: u64,
) -> Result<(&'static str, std::result::Result<Vec<Mdl>, String>)> {
    let ci = server.info.lower_case_table_names != 0;
    let schemas = schemas_of(tables, ci);
    if schemas.is_empty() {
        return Ok(("none", Ok(Vec::new())));
    }
    let in_schemas = schemas.iter().map(|s| quote_str(s)).collect::<Vec<_>>().join(", ");
    let mariadb = server.info.flavour == Flavour::MariaDb;
    let plugin = mariadb
        && server
            .first::<u64>(
                "looking for the metadata_lock_info plugin",
                "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'",
            )
            .await?
            .unwrap_or(0)
            > 0;
    let (source, sql) = if plugin {
        (
            "information_schema.METADATA_LOCK_INFO",
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, LOCK_MODE, IFNULL(LOCK_DURATION, ''), 'GRANTED', THREAD_ID \
                 FROM information_schema.METADATA_LOCK_INFO WHERE TABLE_SCHEMA IN ({in_schemas}) AND TABLE_NAME IS NOT NULL"
            ),
        )
    } else {
        let on: Option<(String, String, String)> = server
            .first(
                "checking the metadata lock instrument",
                "SELECT CONCAT(@@GLOBAL.performance_schema, ''), \
                 IFNULL((SELECT ENABLED FROM performance_schema.setup_instruments WHERE NAME = 'wait/lock/metadata/sql/mdl'), 'NO'), \
                 IFNULL((SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'global_instrumentation'), 'NO')",
            )
            .await?;
        let (ps, instrument, consumer) = on.unwrap_or_default();
        if ps != "1" || instrument != "YES" || consumer != "YES" {
            let how = if mariadb {
                "INSTALL SONAME 'metadata_lock_info', or start with performance_schema=ON and \
                 performance-schema-instrument='wait/lock/metadata/sql/mdl=ON'"
            } else {
                "UPDATE performance_schema.setup_instruments SET ENABLED = 'YES' WHERE NAME = 'wait/lock/metadata/sql/mdl'"
            };
            let why = format!(
                "metadata locks are not visible (performance_schema={ps}, instrument wait/lock/metadata/sql/mdl {instrument}, \
                 consumer global_instrumentation {consumer}); to see them: {how}"
            );
            return Ok(("none", Err(why)));
        }
        (
            "performance_schema.metadata_locks",
            format!(
                "SELECT ml.OBJECT_SCHEMA, ml.OBJECT_NAME, ml.LOCK_TYPE, ml.LOCK_DURATION, ml.LOCK_STATUS, IFNULL(t.PROCESSLIST_ID, 0) \
                 FROM performance_schema.metadata_locks ml LEFT JOIN performance_schema.threads t ON t.THREAD_ID = ml.OWNER_THREAD_ID \
                 WHERE ml.OBJECT_TYPE = 'TABLE' AND ml.OBJECT_SCHEMA IN ({in_schemas})"
            ),
        )
    };
    let wanted: HashSet<(String, String)> = tables.iter().map(|t| (fold(&t.schema, ci), fold(&t.name, ci))).collect();
    let rows = server.rows_as::<(String, String, String, String, String, u64)>("reading metadata locks", &sql).await?;
    let locks = rows
        .into_iter()
        .filter(|r| r.5 != own && wanted.contains(&(fold(&r.0, ci), fold(&r.1, ci))))
        .map(|(schema, name, mode, duration, status, thread)| Mdl {
            table: TableName::new(schema, name),
            mode: mode.trim_start_matches("MDL_").to_string(),
            duration: duration.trim_start_matches("MDL_").to_string(),
            pending: status.eq_ignore_ascii_case("PENDING"),
            thread,
        })
        .collect();
    Ok((source, Ok(locks)))
}

pub(super) fn long_transactions(l: &Locks) -> Check {
    let max = l.max.as_secs();
    let long: Vec<&Trx> = l.trxs.iter().filter(|t| t.age >= max).collect();
    if long.is_empty() {
        return Check::new(
            LONG_TRANSACTIONS,
            Status::Pass,
            format!("no transaction on the primary is {max} s old or older ({} open)", l.trxs.len()),
        );
    }
    let show = |t: &Trx, tables: &[&TableName]| {
        let on = if tables.is_empty() { String::new() } else { format!(", holding {}", names(tables)) };
        let q = if t.query.is_empty() { String::new() } else { format!(", running {:?}", t.query) };
        // MariaDB shows id 0 for a transaction that has not written yet.
        let id = if t.id == "0" { "read-only trx".to_string() } else { format!("trx {}", t.id) };
        format!("{id} of connection {} ({}), {} s old, {}{on}{q}", t.thread, t.who, t.age, t.state)
    };
    match &l.mdl {
        Ok(locks) => {
            let mut blocking = Vec::new();
            let mut elsewhere = Vec::new();
            for t in &long {
                let held: Vec<&TableName> = locks.iter().filter(|m| m.thread == t.thread).map(|m| &m.table).collect();
                if held.is_empty() {
                    elsewhere.push(show(t, &[]));
                } else {
                    blocking.push(show(t, &held));
                }
            }
            if blocking.is_empty() {
                return Check::new(
                    LONG_TRANSACTIONS,
                    Status::Pass,
                    format!(
                        "{} transaction(s) {max} s or older, none holding a service table ({}): {}",
                        long.len(),
                        l.source,
                        list(elsewhere, 5)
                    ),
                );
            }
            Check::new(
                LONG_TRANSACTIONS,
                Status::Fail,
                format!(
                    "the fence's LOCK TABLES would wait for: {}; let them finish, or end them (KILL), before the promotion",
                    list(blocking, 5)
                ),
            )
        }
        Err(why) => Check::new(
            LONG_TRANSACTIONS,
            Status::Warn,
            format!(
                "{} transaction(s) {max} s or older: {}; {why}, so privfence cannot tell whether they hold the service's tables \
                 (the fence's lock wait is bounded and undone if it times out)",
                long.len(),
                list(long.iter().map(|t| show(t, &[])), 5)
            ),
        ),
    }
}

/// Lock modes of DDL and `LOCK TABLES`: held by someone else, the fence cannot drain.
pub(super) const STRONG_MODES: &[&str] = &["EXCLUSIVE", "SHARED_NO_READ_WRITE", "SHARED_NO_WRITE", "SHARED_UPGRADABLE", "SHARED_READ_ONLY"];

pub(super) fn metadata_locks(l: &Locks) -> Check {
    let locks = match &l.mdl {
        Ok(locks) => locks,
        Err(why) => return Check::new(METADATA_LOCKS, Status::Warn, format!("{why}; the fence's lock wait stays bounded")),
    };
    let max = l.max.as_secs();
    let age = |thread: u64| l.trxs.iter().filter(|t| t.thread == thread).map(|t| t.age).max().unwrap_or(0);
    let mut f = Vec::new();
    let mut short = 0;
    for m in locks {
        let (who, time, _) = l.threads.get(&m.thread).cloned().unwrap_or_default();
        let old = age(m.thread).max(time) >= max;
        let strong = STRONG_MODES.contains(&m.mode.as_str()) || m.duration == "EXPLICIT";
        if m.pending || strong || old {
            let what = if m.pending { "waits for" } else { "holds" };
            let dur = if m.duration.is_empty() { String::new() } else { format!(" ({})", m.duration) };
            f.push((
                Status::Fail,
                format!("connection {} ({who}) {what} {}{dur} on {} for {} s", m.thread, m.mode, m.table.sql(), age(m.thread).max(time)),
            ));
        } else {
            short += 1;
        }
    }
    let tail =
        if short > 0 { format!("; {short} short-lived lock(s) of running statements (normal for a live service)") } else { String::new() };
    let mut check =
        Check::from_findings(METADATA_LOCKS, f, format!("no lock on the service's tables blocks the fence ({}){tail}", l.source));
    if check.status == Status::Fail {
        check.detail.push_str(&format!("{tail}; finish or end these sessions (KILL) before the promotion"));
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Accounts that can write the replica despite read_only; managed services
