//! A simulated application: a connection pool running a service's statements in a loop, recording
//! what happened. Used by the demo, the live tests and the benchmark to stand in for the real
//! service while an account is cut off and restored.
//!
//! # Behaviour
//!
//! - One [`mysql_async::Pool`] built from the spec's options, so its connections open with the
//!   app's default database, as a real pool's DSN would (which is exactly why cached schema
//!   privileges matter, see `mysql-facts.md` §3). The pool does **not** reset connections when
//!   they return (`COM_RESET_CONNECTION`, `mysql_async`'s default): common application pools
//!   (HikariCP, Go's `database/sql`) don't, and a reset could change what the session caches.
//! - `pool_size` workers share the pool. Each iteration takes one connection, runs every
//!   statement in order on it (one "request"), returns the connection and sleeps `interval`.
//!   Errors never shorten the sleep, so a broken server is not hammered.
//! - A privilege error ([`DENIED_CODES`]) counts as `denied`, opens an [`Outage`] when none is
//!   open, and keeps the connection, as a real pool would. The outage closes at the next success
//!   of the statements that were denied: with one statement, its next success; with several, an
//!   `orders` query that still works does not end an outage of the `users` query (a refused
//!   login, met when the pool reconnects, is cleared by any success).
//! - A connection error (the server ran `KILL CONNECTION`, restarted, or the network failed)
//!   counts as `failed`, ends the iteration and disconnects that connection, so the next
//!   iteration gets a fresh one. `mysql_async`'s pool also drops an idle connection whose socket
//!   the server closed (it checks the socket before lending it); the explicit disconnect covers a
//!   connection killed while in use, whose error packet would otherwise leave it looking healthy.
//! - Nothing is logged; the spec's `Debug` hides the password.
#![allow(clippy::disallowed_methods)] // a simulated application plays its statements through the driver (clippy.toml)

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Error codes that mean "access denied": they open an outage. Table, column, schema, routine,
/// view and definer denials (1142, 1143, 1044, 1370, 1356, 1345, 1449), missing global privilege
/// (1227), and refused logins (1045, 1698; locked account: MySQL 3118, MariaDB 4151), which a
/// pool meets when it reconnects.
pub const DENIED_CODES: &[u16] = &[1044, 1045, 1142, 1143, 1227, 1345, 1356, 1370, 1449, 1698, 3118, 4151];

/// Server error codes that mean the connection is gone even though an error packet arrived:
/// shutdown in progress (1053), MariaDB's "connection was killed" (1927), MySQL's "disconnected
/// by the server" (4031).
const GONE_CODES: &[u16] = &[1053, 1927, 4031];

/// How long a worker waits for a pooled connection before counting the attempt as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The statement index under which a failed connection attempt is recorded.
const LOGIN: usize = usize::MAX;

/// How many recent successes are kept for [`Workload::wait_success_after`].
const RECENT: usize = 1024;

/// What to run, as whom, how often.
#[derive(Clone)]
pub struct WorkloadSpec {
    /// A name for messages and reports (`shop-app`).
    pub name: String,
    /// Connection options: host, port, user, password and the default database (`db_name`).
    pub opts: Opts,
    /// The statements of one iteration, run in order on one connection.
    pub statements: Vec<String>,
    /// Pause between two iterations of one worker.
    pub interval: Duration,
    /// Connections in the pool, and workers sharing it (at least 1).
    pub pool_size: usize,
}

impl fmt::Debug for WorkloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadSpec")
            .field("name", &self.name)
            .field("user", &self.opts.user())
            .field("db_name", &self.opts.db_name())
            .field("statements", &self.statements)
            .field("interval", &self.interval)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// A period during which the app was denied: from the first privilege error until every statement
/// denied since has succeeded again.
#[derive(Debug, Clone)]
pub struct Outage {
    /// When the first denied statement returned.
    pub first_denied: Instant,
    /// When the success that closed it returned; `None` while the outage is open.
    pub recovered: Option<Instant>,
    /// Statements that failed (denied or otherwise) while the outage was open.
    pub failed_statements: u64,
}

/// Counters of one workload, as a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Statements that succeeded.
    pub ok: u64,
    /// Statements (and connection attempts) that failed for any reason, privilege errors included.
    pub failed: u64,
    /// The part of `failed` that were privilege errors ([`DENIED_CODES`]).
    pub denied: u64,
    /// The last error: server error code (client errors: 2013 for a lost connection, 2000
    /// otherwise) and message.
    pub last_error: Option<(u16, String)>,
    /// Outages in the order they began; the last one may be open.
    pub outages: Vec<Outage>,
    /// Server connection ids the workload has used, in the order first seen. More ids than
    /// `pool_size` means the pool reconnected.
    pub connection_ids: Vec<u32>,
}

impl Stats {
    /// The open outage, if any.
    pub fn open_outage(&self) -> Option<&Outage> {
        self.outages.last().filter(|o| o.recovered.is_none())
    }
}

/// What a worker records; guarded by one mutex.
#[derive(Default)]
struct State {
    stats: Stats,
    /// Statements (by index; [`LOGIN`] for a refused connection) denied during the open outage
    /// and not yet successful since.
    still_denied: BTreeSet<usize>,
    /// (started, finished) of the most recent successful statements, oldest first.
    recent_ok: VecDeque<(Instant, Instant)>,
}

/// State shared between the handle and the workers.
struct Shared {
    state: Mutex<State>,
    /// Woken after every recorded statement, for the `wait_*` methods.
    changed: Notify,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A worker that panicked mid-update leaves counters that are still meaningful.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn record_ok(&self, statement: usize, started: Instant, finished: Instant) {
        self.with(|s| {
            s.stats.ok += 1;
            s.still_denied.remove(&statement);
            s.still_denied.remove(&LOGIN);
            if let Some(o) = s.stats.outages.last_mut().filter(|o| o.recovered.is_none()) {
                if s.still_denied.is_empty() {
                    o.recovered = Some(finished);
                }
            }
            if s.recent_ok.len() == RECENT {
                s.recent_ok.pop_front();
            }
            s.recent_ok.push_back((started, finished));
        });
        self.changed.notify_waiters();
    }

    fn record_err(&self, statement: usize, code: u16, message: String, finished: Instant) {
        let denied = DENIED_CODES.contains(&code);
        self.with(|s| {
            if denied {
                s.still_denied.insert(statement);
            }
            s.stats.failed += 1;
            match s.stats.outages.last_mut().filter(|o| o.recovered.is_none()) {
                Some(o) => o.failed_statements += 1,
                None if denied => s.stats.outages.push(Outage { first_denied: finished, recovered: None, failed_statements: 1 }),
                None => {}
            }
            if denied {
                s.stats.denied += 1;
            }
            s.stats.last_error = Some((code, message));
        });
        self.changed.notify_waiters();
    }

    fn record_conn(&self, id: u32) {
        self.with(|s| {
            if !s.stats.connection_ids.contains(&id) {
                s.stats.connection_ids.push(id);
            }
        });
    }
}

/// A running simulated application.
pub struct Workload {
    name: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    pool: Pool,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload").field("name", &self.name).field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

impl Workload {
    /// Starts the workers on the current tokio runtime; they run until [`Workload::stop`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(spec: WorkloadSpec) -> Workload {
        let size = spec.pool_size.max(1);
        // min = max: the pool keeps every connection it opened (with min 0 and no idle TTL,
        // mysql_async would close each connection when it returns, reconnecting every time).
        let constraints = PoolConstraints::new(size, size).expect("min == max");
        let pool_opts = PoolOpts::default().with_constraints(constraints).with_reset_connection(false);
        let pool = Pool::new(OptsBuilder::from_opts(spec.opts.clone()).pool_opts(pool_opts));
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Notify::new() });
        let (stop, stopped) = watch::channel(false);
        let statements: Arc<[String]> = spec.statements.into();
        let workers = (0..size)
            .map(|_| {
                let worker = Worker { pool: pool.clone(), shared: shared.clone(), statements: statements.clone(), interval: spec.interval };
                tokio::spawn(worker.run(stopped.clone()))
            })
            .collect();
        Workload { name: spec.name, shared, stop, workers, pool }
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.with(|s| s.stats.clone())
    }

    /// Stops the workers after their current statement, closes the pool, returns the final
    /// counters.
    pub async fn stop(mut self) -> Stats {
        let _ = self.stop.send(true);
        for w in std::mem::take(&mut self.workers) {
            let _ = w.await;
        }
        let _ = self.pool.clone().disconnect().await;
        self.stats()
    }

    /// Waits until a statement that started at or after `after` succeeds; returns when it
    /// finished, or `None` when `timeout` passes first.
    pub async fn wait_success_after(&self, after: Instant, timeout: Duration) -> Option<Instant> {
        self.wait_for(timeout, |s| s.recent_ok.iter().filter(|(start, _)| *start >= after).map(|(_, end)| *end).min()).await
    }

    /// Waits for a privilege error: returns when the open outage began (at once if one is open),
    /// or `None` when `timeout` passes first.
    pub async fn wait_denied(&self, timeout: Duration) -> Option<Instant> {
        self.wait_for(timeout, |s| s.stats.open_outage().map(|o| o.first_denied)).await
    }

    /// Waits for a privilege error returned at or after `after` (an outage that began then, or
    /// one still open that saw it); `None` on timeout.
    pub async fn wait_denied_after(&self, after: Instant, timeout: Duration) -> Option<Instant> {
        self.wait_for(timeout, |s| s.stats.outages.iter().map(|o| o.first_denied).find(|t| *t >= after)).await
    }

    /// Evaluates `check` after every recorded statement until it answers or `timeout` passes.
    async fn wait_for<T>(&self, timeout: Duration, check: impl Fn(&State) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register before checking, so a statement recorded in between still wakes us.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.shared.with(|s| check(s)) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.with(|s| check(s));
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // Dropped without `stop`: let the workers end on their own; they drop their pool handles.
        let _ = self.stop.send(true);
    }
}

/// One worker: a loop of iterations over the shared pool.
struct Worker {
    pool: Pool,
    shared: Arc<Shared>,
    statements: Arc<[String]>,
    interval: Duration,
}

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            self.iteration().await;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Takes a connection, runs every statement on it, gives it back (or disconnects it if the
    /// server dropped it).
    async fn iteration(&self) {
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let (code, msg) = describe(&e);
                self.shared.record_err(LOGIN, code, msg, Instant::now());
                return;
            }
            Err(_) => {
                self.shared.record_err(LOGIN, 2013, format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()), Instant::now());
                return;
            }
        };
        self.shared.record_conn(conn.id());
        for (i, sql) in self.statements.iter().enumerate() {
            let started = Instant::now();
            match conn.query_drop(sql).await {
                Ok(()) => self.shared.record_ok(i, started, Instant::now()),
                Err(e) => {
                    let gone = e.is_fatal() || matches!(&e, mysql_async::Error::Server(s) if GONE_CODES.contains(&s.code));
                    let (code, msg) = describe(&e);
                    self.shared.record_err(i, code, msg, Instant::now());
                    if gone {
                        discard(conn).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Disconnects a connection the server dropped, so the pool opens a fresh one next time. The
/// farewell may fail on a dead socket; the pool forgets the connection either way.
async fn discard(conn: Conn) {
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
}

/// An error's code and message. Client-side errors get the classic client codes: 2013 (lost
/// connection) for I/O errors, 2000 otherwise. Messages never hold a password (the driver's do
/// not; server messages name accounts and tables).
fn describe(e: &mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.message.clone()),
        mysql_async::Error::Io(io) => (2013, io.to_string()),
        other => (2000, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared { state: Mutex::new(State::default()), changed: Notify::new() }
    }

    #[test]
    fn outages_open_on_denial_and_close_on_success() {
        let s = shared();
        let t0 = Instant::now();
        s.record_ok(0, t0, t0);
        s.record_err(0, 1146, "no such table".into(), t0);
        assert!(s.with(|st| st.stats.outages.is_empty()), "a non-privilege error opens no outage");
        let t1 = Instant::now();
        s.record_err(0, 1142, "denied".into(), t1);
        s.record_err(1, 2013, "lost".into(), t1);
        s.record_err(0, 1142, "denied".into(), t1);
        let st = s.with(|st| st.stats.clone());
        assert_eq!((st.ok, st.failed, st.denied), (1, 4, 2));
        assert_eq!(st.outages.len(), 1);
        assert_eq!(st.open_outage().map(|o| o.failed_statements), Some(3));
        let t2 = Instant::now();
        s.record_ok(1, t2, t2);
        assert!(s.with(|st| st.stats.open_outage().is_some()), "another statement's success leaves it open");
        s.record_ok(0, t2, t2);
        let st = s.with(|st| st.stats.clone());
        assert!(st.open_outage().is_none());
        assert_eq!(st.outages[0].recovered, Some(t2));
        s.record_err(LOGIN, 1045, "denied".into(), t2);
        assert_eq!(s.with(|st| st.stats.outages.len()), 2);
        s.record_ok(1, t2, t2);
        assert!(s.with(|st| st.stats.open_outage().is_none()), "any success shows the login works again");
    }

    #[test]
    fn spec_debug_hides_the_password() {
        let opts: Opts = OptsBuilder::default().user(Some("app")).pass(Some("s3cret-pw")).db_name(Some("shop")).into();
        let spec = WorkloadSpec { name: "x".into(), opts, statements: vec![], interval: Duration::from_millis(1), pool_size: 1 };
        let text = format!("{spec:?}");
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(text.contains("shop"), "{text}");
    }

    #[tokio::test]
    async fn waits_see_earlier_and_later_events() {
        let (stop, _rx) = watch::channel(false);
        let pool = Pool::new(OptsBuilder::default());
        let w = Workload { name: "t".into(), shared: Arc::new(shared()), stop, workers: vec![], pool };
        let before = Instant::now();
        assert_eq!(w.wait_denied(Duration::from_millis(20)).await, None);
        let s2 = w.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let t = Instant::now();
            s2.record_err(0, 1142, "denied".into(), t);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let t = Instant::now();
            s2.record_ok(0, t, t);
        });
        let denied = w.wait_denied(Duration::from_secs(5)).await.expect("denied seen");
        assert!(denied >= before);
        let ok = w.wait_success_after(denied, Duration::from_secs(5)).await.expect("success seen");
        assert!(ok >= denied);
        // Already happened: answered at once.
        assert_eq!(w.wait_success_after(denied, Duration::ZERO).await, Some(ok));
        assert_eq!(w.wait_denied_after(before, Duration::ZERO).await, Some(denied));
        assert_eq!(w.wait_success_after(Instant::now(), Duration::from_millis(10)).await, None);
    }
}
