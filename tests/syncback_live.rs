//! Sync-back on real servers, both flavours: a promotion under the workload, then the workload
//! on the new server while `privfence sync-back` is killed with SIGKILL at random points and
//! started again; at the end the old copy equals the new table (compare's chunk sums and row by
//! row), and on MySQL the position counted every transaction exactly once. A DDL on the new
//! server stops sync-back with the statement named, and `promote run --sync-back` refuses before
//! the point of no return when the replica's binlog_row_image is MINIMAL.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints the run's measurements

#[macro_use]
mod support;
#[path = "support/syncback.rs"]
mod common;

use common::*;
use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::engine::node::Node;
use privfence::journal::Journal;
use privfence::model::TableName;
use privfence::promote::run::{self, Options};
use privfence::sandbox::Sandbox;
use privfence::workload::{Workload, WorkloadSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

const STATEMENTS: [&str; 3] = [
    "INSERT INTO items (id, v, n, at) VALUES (FLOOR(RAND() * 300), UUID(), 1, NOW(6)) ON DUPLICATE KEY UPDATE n = n + 1, v = UUID()",
    "UPDATE items SET n = n + 1, at = NOW(6) WHERE id = FLOOR(RAND() * 300)",
    "DELETE FROM items WHERE id = FLOOR(RAND() * 300) AND n % 3 = 0",
];

fn workload(s: &privfence::sandbox::Server, name: &str) -> Workload {
    let opts = mysql_async::OptsBuilder::from_opts(s.opts_as("svc_owner", "pw-owner")).db_name(Some("svc_db")).into();
    Workload::spawn(WorkloadSpec {
        name: name.into(),
        opts,
        statements: STATEMENTS.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_millis(5),
        pool_size: 3,
    })
}

/// The copy equals the new table: compare's whole-table sums, and row by row.
async fn assert_equal(sb: &Sandbox, what: &str) {
    let replica = support::replica(sb);
    let mut new = privfence::db::Server::connect(&admin_spec(replica)).await.unwrap();
    let mut new2 = new.another().await.unwrap();
    let mut old = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.unwrap();
    let mut old2 = old.another().await.unwrap();
    let (t_new, t_old) = (TableName::new("svc_db", "items"), TableName::new("svc_db", "_items_pf_archived"));
    let q_new = privfence::compare::table::TableQueries::read(&mut new, &mut new2, "new", &t_new).await.unwrap();
    let q_old = privfence::compare::table::TableQueries::read(&mut old, &mut old2, "old", &t_old).await.unwrap();
    let (a, b) = (q_new.sum(&mut new, None, None).await.unwrap(), q_old.sum(&mut old, None, None).await.unwrap());
    let row = "SELECT CONCAT_WS('|', id, v, n, at) FROM svc_db.";
    let (ra, rb) =
        (rows(replica, &format!("{row}items ORDER BY id")).await, rows(&sb.primary, &format!("{row}_items_pf_archived ORDER BY id")).await);
    let missing: Vec<&String> = ra.iter().filter(|r| !rb.contains(r)).take(5).collect();
    let extra: Vec<&String> = rb.iter().filter(|r| !ra.contains(r)).take(5).collect();
    assert!(
        a.rows == b.rows && a.checksum == b.checksum && ra == rb,
        "{what}: old copy differs: {a:?} vs {b:?}; missing {missing:?}; extra {extra:?}"
    );
}

/// A small deterministic generator (no dependency): milliseconds for the kills.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

async fn sync_back_under_kills(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    // The promotion runs while the service writes on the primary.
    let before = workload(&sb.primary, "old");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `--sync-back`: the preflight proves sync-back can start (as the admin here).
    let opts =
        Options { yes: true, archive_watch: Duration::from_millis(200), sync_back: Some(admin_spec(&sb.primary)), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    before.stop().await;
    let cnf = syncback_account(&sb, dir.path()).await;
    // Another account that may write the copy: refused up front, naming it (the check reads
    // the access model, which needs these on the old primary).
    let intruder = [
        "SET SESSION sql_log_bin = 0".to_string(),
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO 'pf_syncback'@'%'".into(),
        "CREATE USER 'intruder'@'%' IDENTIFIED BY 'pw-i'".into(),
        "GRANT INSERT ON svc_db._items_pf_archived TO 'intruder'@'%'".into(),
    ];
    admin_exec(&sb, &intruder).await;
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "1s"]).output().unwrap();
    assert!(o.status.code() == Some(2) && text(&o).contains("'intruder'@'%' may write"), "refused: {}", text(&o));
    admin_exec(&sb, &["SET SESSION sql_log_bin = 0".into(), "DROP USER 'intruder'@'%'".into()]).await;
    let after = workload(replica, "new");
    let mut seed = u64::from(std::process::id()) ^ Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9;
    let runs = 12;
    let mut killed_at = Vec::new();
    for k in 0..runs {
        let mut c = syncback_cmd(&sb, dir.path(), &cnf, &[]);
        if k % 3 == 1 {
            // Between a batch's rows and its position, inside the target transaction.
            c.env("PRIVFENCE_CRASH_AT_LABEL", "syncback rows written");
        }
        let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        // Killed while it applies: a random moment after its stream started.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("starting at") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let started = rx.recv_timeout(Duration::from_secs(20)).is_ok();
        tokio::time::sleep(Duration::from_millis(20 + next(&mut seed) % 600)).await;
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let err = reader.join().unwrap();
        assert!(started || k % 3 == 1, "run {k} started its stream: {err}");
        assert!(!err.contains("refused") && !err.contains("privfence: "), "run {k} failed: {err}");
        killed_at.push(rows(&sb.primary, "SELECT CAST(rows_applied AS CHAR) FROM privfence.syncback_position").await.join(""));
    }
    let stats = after.stop().await;
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "2s"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "the last run catches up: {}", text(&o));
    println!("{flavour}: last run: {}", text(&o));
    println!("{flavour}: workload on the new server: {stats:?}");
    assert_equal(&sb, "after SIGKILLs").await;
    let applied =
        rows(&sb.primary, "SELECT CONCAT(transactions, ' ', rows_applied) FROM privfence.syncback_position WHERE service = 'svc'").await;
    println!("{flavour}: {runs} SIGKILLs (rows applied at each: {killed_at:?}); applied (transactions rows) {applied:?}");
    if flavour == Flavour::MySql {
        // Every transaction of the new server after the start, counted once.
        let st = run::PromoteState::fold(&Journal::read(&dir.path().join("svc.promote.journal")).unwrap());
        let start = st.detail("catch-up")["sync_back_from"]["gtid"].as_str().unwrap().to_string();
        let sql = format!("SELECT CAST(GTID_SUBTRACT(@@GLOBAL.gtid_executed, '{start}') AS CHAR)");
        let rest = privfence::syncback::position::GtidSet::parse(&rows(replica, &sql).await[0]).unwrap();
        let n: u64 = rest
            .members()
            .iter()
            .flat_map(|m| m.split(':').skip(1).map(|iv| iv.to_string()).collect::<Vec<_>>())
            .map(|iv| match iv.split_once('-') {
                Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
                None => 1,
            })
            .sum();
        assert_eq!(applied[0].split(' ').next().unwrap().parse::<u64>().unwrap(), n, "each transaction counted exactly once");
    }
    ddl_stops(&sb, dir.path(), &cnf).await;
    sb.destroy().unwrap();
}

/// `ALTER TABLE ... ADD COLUMN` on the new server stops sync-back, naming the statement, before
/// any later row is applied; a restart stops at the same place.
async fn ddl_stops(sb: &Sandbox, dir: &Path, cnf: &Path) {
    let replica = support::replica(sb);
    let mut c = replica.conn().await.unwrap();
    c.query_drop("INSERT INTO svc_db.items VALUES (1000, 'before-ddl', 1, NOW(6))").await.unwrap();
    c.query_drop("ALTER TABLE svc_db.items ADD COLUMN extra INT").await.unwrap();
    c.query_drop("INSERT INTO svc_db.items VALUES (1001, 'after-ddl', 1, NOW(6), 7)").await.unwrap();
    c.disconnect().await.ok();
    for attempt in 0..2 {
        let o = syncback_cmd(sb, dir, cnf, &["--exit-when-idle", "2s"]).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "attempt {attempt}: a DDL stops sync-back: {t}");
        assert!(t.contains("ALTER TABLE svc_db.items ADD COLUMN extra INT"), "attempt {attempt}: the statement is named: {t}");
    }
    let got = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db._items_pf_archived WHERE id >= 1000 ORDER BY id").await;
    assert_eq!(got, vec!["1000".to_string()], "the row before the DDL is applied, the one after it is not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_comes_back_through_sigkills_mariadb() {
    sync_back_under_kills(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_comes_back_through_sigkills_mysql() {
    sync_back_under_kills(Flavour::MySql).await;
}

/// The reader delivers every committed transaction of a busy binary log.
async fn reader_reads_all(flavour: Flavour) {
    let sb = sandbox(flavour);
    let db = format!("sbr_{}", std::process::id());
    admin_exec(sb, &[format!("CREATE DATABASE {db}"), format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))")]).await;
    let mut s = privfence::db::Server::connect(&admin_spec(&sb.primary)).await.unwrap();
    let start = privfence::syncback::check::current_position(&mut s).await.unwrap();
    let mut c = sb.primary.conn().await.unwrap();
    c.query_drop("SET SESSION binlog_format = 'ROW'").await.unwrap();
    for i in 0..3000 {
        c.query_drop(format!("INSERT INTO {db}.t VALUES ({i}, 'x')")).await.unwrap();
    }
    let watched = [TableName::new(&db, "t")];
    let mut r = privfence::syncback::stream::open(&admin_spec(&sb.primary), flavour, &start, 3_999_999_001, &watched).await.unwrap();
    let (mut txns, mut rows) = (0, 0);
    while let Ok(Ok(Some(item))) = tokio::time::timeout(Duration::from_secs(3), r.next()).await {
        if let privfence::syncback::stream::Item::Commit { txn, .. } = item {
            txns += 1;
            rows += txn.changes.len();
        }
    }
    assert_eq!(rows, 3000, "{flavour}: rows read ({txns} transactions)");
}

both_flavours!(reader_delivers_every_row, reader_reads_all);

/// `promote run --sync-back` refuses before the point of no return when the replica's binary
/// log would not carry whole rows (binlog_row_image=MINIMAL): nothing is journaled as done and
/// the replica still replicates.
async fn refuses_minimal_row_image(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    let mut c = replica.conn().await.unwrap();
    c.query_drop("SET GLOBAL binlog_row_image = 'MINIMAL'").await.unwrap();
    c.disconnect().await.ok();
    let opts = Options { yes: true, sync_back: Some(admin_spec(&sb.primary)), ..Options::default() };
    let e = promote(&sb, dir.path(), opts).await.expect_err("refused");
    assert!(matches!(e, privfence::error::Error::Refused(_)) && e.to_string().contains("binlog_row_image"), "{e}");
    let st = run::PromoteState::fold(&Journal::read(&dir.path().join("svc.promote.journal")).unwrap());
    assert!(st.steps.is_empty() && !st.point_of_no_return, "nothing journaled: {:?}", st.steps);
    let mut rep = Node::connect(&admin_spec(replica), "replica1").await.unwrap();
    let h = rep.replica_health().await.unwrap().expect("still a replica");
    assert!(h.io_running && h.sql_running);
    rep.server.close().await;
    sb.destroy().unwrap();
}

both_flavours!(promote_with_sync_back_refuses_minimal_row_image, refuses_minimal_row_image);

/// The lag benchmarks' set-up: the rate and duration from the environment
/// (`PRIVFENCE_BENCH_ROWS_PER_S`, default 2000; `PRIVFENCE_BENCH_SECONDS`, default 20), a promoted
/// pair and sync-back's account.
async fn bench_setup(flavour: Flavour) -> (u64, u64, Sandbox, tempfile::TempDir, PathBuf) {
    let rate: u64 = std::env::var("PRIVFENCE_BENCH_ROWS_PER_S").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let secs: u64 = std::env::var("PRIVFENCE_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let (sb, dir) = pair_with_service(flavour).await;
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    let cnf = syncback_account(&sb, dir.path()).await;
    (rate, secs, sb, dir, cnf)
}

/// The `q` quantile of sorted lags in seconds, in milliseconds.
fn percentile_ms(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize] * 1000.0
}

/// Benchmark (scripts/bench-syncback.sh, `--ignored`): sync-back's lag at a steady rate of row
/// changes on the new server (`PRIVFENCE_BENCH_ROWS_PER_S`, default 2000; for
/// `PRIVFENCE_BENCH_SECONDS`, default 20). Each row carries its commit time on the new server
/// (`NOW(6)`); the old copy is polled every 10 ms and each row's lag is its arrival there minus
/// that time (both servers on this machine's clock; the poll adds at most 10 ms).
async fn lag_bench(flavour: Flavour) {
    let (rate, secs, sb, dir, cnf) = bench_setup(flavour).await;
    let replica = support::replica(&sb);
    let mut sync =
        syncback_cmd(&sb, dir.path(), &cnf, &[]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // 20 rows per statement, statements spread evenly over the second, from 2 writers.
    let per_stmt = 20u64;
    let stmts_per_s = (rate / per_stmt).max(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let opts = replica.opts_as("svc_owner", "pw-owner");
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(opts).await.unwrap();
            let every = Duration::from_secs_f64(2.0 / stmts_per_s as f64);
            let (mut next_at, mut k, mut written) = (Instant::now(), 0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let base = 1_000_000 + (w * 100_000_000) + k * per_stmt;
                let values: Vec<String> = (0..per_stmt).map(|i| format!("({}, 'bench', 1, NOW(6))", base + i)).collect();
                c.query_drop(format!("INSERT INTO svc_db.items VALUES {}", values.join(", "))).await.unwrap();
                written += per_stmt;
                k += 1;
                next_at += every;
                tokio::time::sleep_until(next_at.into()).await;
            }
            c.disconnect().await.ok();
            written
        }));
    }
    let mut lags: Vec<f64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut highest = [999_999u64, 100_999_999u64];
    let mut c = sb.primary.conn().await.unwrap();
    let started = Instant::now();
    let mut stopped_at = None;
    loop {
        // Each writer's ids grow in commit order: read past the highest seen, by primary key.
        for (w, high) in highest.iter_mut().enumerate() {
            let sql = format!(
                "SELECT id, UNIX_TIMESTAMP(at) FROM svc_db._items_pf_archived WHERE id > {} AND id < {} ORDER BY id",
                *high,
                1_000_000 + (w as u64 + 1) * 100_000_000
            );
            let rows: Vec<(u64, f64)> = c.query(sql).await.unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            for (id, at) in rows {
                if seen.insert(id) {
                    lags.push(now - at);
                }
                *high = (*high).max(id);
            }
        }
        if stopped_at.is_none() && started.elapsed() >= Duration::from_secs(secs) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    let cpu = std::fs::read_to_string(format!("/proc/{}/stat", sync.id()))
        .ok()
        .and_then(|t| {
            let f: Vec<u64> = t.rsplit(") ").next()?.split(' ').skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
            Some(f.iter().sum::<u64>() as f64 / 100.0)
        })
        .unwrap_or(0.0);
    println!("{flavour}: sync-back used {cpu:.1} s of CPU");
    let _ = sync.kill();
    let _ = sync.wait();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| percentile_ms(&lags, q);
    println!(
        "{flavour}: {written} rows written in {secs} s ({:.0}/s), {} arrived on the old copy; lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        written as f64 / secs as f64,
        lags.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    std::fs::write(
        std::env::var("PRIVFENCE_BENCH_OUT").unwrap_or_else(|_| "/dev/null".into()),
        format!("{flavour} {written} {secs} {} {:.0} {:.0} {:.0}\n", lags.len(), at(0.5), at(0.99), at(1.0)),
    )
    .ok();
    assert_eq!(lags.len() as u64, written, "every row arrived");
    assert!(at(0.99) < 1000.0, "p99 lag under 1 s");
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-syncback.sh"]
async fn bench_lag_mariadb() {
    lag_bench(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-syncback.sh"]
async fn bench_lag_mysql() {
    lag_bench(Flavour::MySql).await;
}

/// Benchmark (scripts/bench-syncback.sh `--mix`, `--ignored`): sync-back's lag under a mix of
/// inserts, updates and deletes (by statement 50/30/20, 20 rows each) at `PRIVFENCE_BENCH_ROWS_PER_S`
/// row changes a second for `PRIVFENCE_BENCH_SECONDS`. Inserts and updates set `at = NOW(6)`; the
/// old copy is polled every 10 ms for rows with a newer `at`, and each one's lag is its arrival
/// minus that time. Deletes carry no time: sync-back applies the stream in order, so a delete is
/// applied before the next insert or update behind it arrives, and the final row-by-row equality of
/// the copy proves every delete (and every update) was applied. Sync-back's own lag figures
/// (MySQL: commit timestamps in µs; MariaDB: whole seconds) are printed beside.
async fn lag_bench_mixed(flavour: Flavour) {
    let (rate, secs, sb, dir, cnf) = bench_setup(flavour).await;
    let replica = support::replica(&sb);
    let sync = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "3s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_stmt = 20u64;
    let stmts_per_s = (rate / per_stmt).max(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let opts = replica.opts_as("svc_owner", "pw-owner");
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(opts).await.unwrap();
            let every = Duration::from_secs_f64(2.0 / stmts_per_s as f64);
            let (mut next_at, mut k, mut changes) = (Instant::now(), 0u64, [0u64; 3]);
            let mut live: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
            // Per 10 statements: 5 inserts, 3 updates, 2 deletes.
            let cycle = ['I', 'U', 'I', 'D', 'I', 'U', 'I', 'U', 'D', 'I'];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kind = cycle[(k % 10) as usize];
                let sql = match kind {
                    'U' | 'D' if live.len() < 2 => None,
                    'U' => {
                        let base = live[(k as usize * 7) % live.len()];
                        changes[1] += per_stmt;
                        Some(format!("UPDATE svc_db.items SET n = n + 1, at = NOW(6) WHERE id >= {base} AND id < {}", base + per_stmt))
                    }
                    'D' => {
                        let base = live.pop_front().unwrap();
                        changes[2] += per_stmt;
                        Some(format!("DELETE FROM svc_db.items WHERE id >= {base} AND id < {}", base + per_stmt))
                    }
                    _ => {
                        let base = 1_000_000 + (w * 100_000_000) + k * per_stmt;
                        live.push_back(base);
                        changes[0] += per_stmt;
                        let values: Vec<String> = (0..per_stmt).map(|i| format!("({}, 'bench', 1, NOW(6))", base + i)).collect();
                        Some(format!("INSERT INTO svc_db.items VALUES {}", values.join(", ")))
                    }
                };
                if let Some(sql) = sql {
                    c.query_drop(sql).await.unwrap();
                }
                k += 1;
                next_at += every;
                tokio::time::sleep_until(next_at.into()).await;
            }
            c.disconnect().await.ok();
            changes
        }));
    }
    let mut lags: Vec<f64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut high = String::from("1970-01-01 00:00:00.000000");
    let mut c = sb.primary.conn().await.unwrap();
    let started = Instant::now();
    let mut stopped_at = None;
    loop {
        let sql = format!(
            "SELECT id, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), UNIX_TIMESTAMP(at) FROM svc_db._items_pf_archived WHERE at > '{high}' ORDER BY at"
        );
        let rows: Vec<(u64, String, f64)> = c.query(sql).await.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        for (id, at, ts) in rows {
            if seen.insert((id, at.clone())) {
                lags.push(now - ts);
            }
            if at > high {
                high = at;
            }
        }
        if stopped_at.is_none() && started.elapsed() >= Duration::from_secs(secs) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut changes = [0u64; 3];
    for w in writers {
        let c = w.await.unwrap();
        (0..3).for_each(|i| changes[i] += c[i]);
    }
    let out = tokio::task::spawn_blocking(move || sync.wait_with_output()).await.unwrap().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // The copy equals the new table, row by row: every insert, update and delete arrived.
    let row = "SELECT CONCAT_WS('|', id, v, n, at) FROM svc_db.";
    let (ra, rb) =
        (rows(replica, &format!("{row}items ORDER BY id")).await, rows(&sb.primary, &format!("{row}_items_pf_archived ORDER BY id")).await);
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| percentile_ms(&lags, q);
    let total: u64 = changes.iter().sum();
    println!(
        "{flavour} mixed: {total} row changes in {secs} s ({:.0}/s: {} inserted, {} updated, {} deleted); {} timed on arrival: \
         lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; sync-back's own: p50 {} ms, p99 {} ms; copy equal: {}",
        total as f64 / secs as f64,
        changes[0],
        changes[1],
        changes[2],
        lags.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        report["lag_p50_ms"],
        report["lag_p99_ms"],
        ra == rb
    );
    std::fs::write(
        std::env::var("PRIVFENCE_BENCH_OUT").unwrap_or_else(|_| "/dev/null".into()),
        format!(
            "{flavour}-mixed {total} {secs} {} {:.0} {:.0} {:.0} inserts={} updates={} deletes={} syncback_p99_ms={}\n",
            lags.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            changes[0],
            changes[1],
            changes[2],
            report["lag_p99_ms"]
        ),
    )
    .ok();
    assert!(ra == rb, "the old copy equals the new table after inserts, updates and deletes ({} vs {} rows)", ra.len(), rb.len());
    assert!(at(0.99) < 1000.0, "p99 lag under 1 s");
    sb.destroy().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-syncback.sh --mix"]
async fn bench_lag_mixed_mariadb() {
    lag_bench_mixed(Flavour::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-syncback.sh --mix"]
async fn bench_lag_mixed_mysql() {
    lag_bench_mixed(Flavour::MySql).await;
}

/// `privfence promote run --sync-back` through the command line: the preflight's sync-back
/// checks pass (its account granted on the archived name before the promotion), the promotion
/// completes, sync-back starts in the foreground and copies a write made on the new server;
/// SIGTERM ends it (exit 0).
async fn promote_then_sync_back_cli(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    let replica = support::replica(&sb);
    admin_exec(
        &sb,
        &[
            "SET SESSION sql_log_bin = 0".into(),
            "CREATE DATABASE IF NOT EXISTS privfence".into(),
            "CREATE USER 'pf_syncback'@'%' IDENTIFIED BY 'pw-sb'".into(),
            // The archived name does not exist yet: CREATE in the grant lets it be granted.
            "GRANT CREATE, SELECT, INSERT, UPDATE, DELETE ON svc_db._items_pf_archived TO 'pf_syncback'@'%'".into(),
            "GRANT CREATE, SELECT, INSERT, UPDATE ON privfence.syncback_position TO 'pf_syncback'@'%'".into(),
        ],
    )
    .await;
    let cnf = dir.path().join("sb.cnf");
    std::fs::write(&cnf, "[client]\nuser=pf_syncback\npassword=pw-sb\n").unwrap();
    std::fs::set_permissions(&cnf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(["promote", "run", "--policy"])
        .arg(dir.path().join("p.toml"))
        .args(["--service", "svc", "--primary", &format!("{}:{}", sb.primary.host, sb.primary.port)])
        .args(["--replica", &format!("{}:{}", replica.host, replica.port), "--yes", "--archive-watch", "200ms", "--no-failsafe"])
        .arg("--journal")
        .arg(dir.path().join("svc.promote.journal"))
        .arg("--defaults-file")
        .arg(&sb.primary.client_cnf)
        .arg("--sync-back")
        .arg("--sync-back-defaults-file")
        .arg(&cnf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("starting at") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(90)).is_ok();
    if started {
        let mut c = replica.conn().await.unwrap();
        c.query_drop("INSERT INTO svc_db.items VALUES (7000, 'via-cli', 1, NOW(6))").await.unwrap();
        c.disconnect().await.ok();
    }
    let mut copied = false;
    for _ in 0..50 {
        if started && !rows(&sb.primary, "SELECT v FROM svc_db._items_pf_archived WHERE id = 7000").await.is_empty() {
            copied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: signalling the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(started, "sync-back started after the promotion: {err}");
    assert!(copied, "the write on the new server reached the old copy: {err}");
    assert_eq!(status.code(), Some(0), "SIGTERM ends sync-back cleanly: {err}");
    sb.destroy().unwrap();
}

both_flavours!(promote_run_with_sync_back_copies_after_the_promotion, promote_then_sync_back_cli);
