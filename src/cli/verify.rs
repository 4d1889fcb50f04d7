//! `privfence verify` and `privfence backfill`: two independent servers holding a service's
//! tables during a dual-write or new-database-first migration (docs/migrations.md).

use super::args::{ConnectArgs, FormatArgs};
use crate::db::{ConnectSpec, Server};
use crate::error::ExitCode;
use crate::journal::{self, Journal, Record, JOURNAL_FORMAT};
use crate::model::TableName;
use crate::output::{Bar, BarStyle, Format, Output};
use crate::report::verify as render;
use crate::verify::backfill::{self, BackfillOptions};
use crate::verify::throttle::{LagBy, LagOptions};
use crate::verify::{definition, verify, Progress, VerifyOptions, VerifyReport, Work};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The two servers and the service, shared by `verify` and `backfill`.
#[derive(Debug, clap::Args)]
pub struct MigrationArgs {
    /// A policy file or folder.
    #[arg(long)]
    pub policy: PathBuf,
    /// The service whose tables are compared or copied.
    #[arg(long)]
    pub service: String,
    /// The old store: HOST:PORT or a mysql:// URL (credentials from the connection flags).
    #[arg(long)]
    pub from: String,
    /// The new store: HOST:PORT or a mysql:// URL.
    #[arg(long)]
    pub to: String,
    /// Option file with the credentials for `--from` (instead of the connection flags').
    #[arg(long)]
    pub from_defaults_file: Option<PathBuf>,
    /// Option file with the credentials for `--to`.
    #[arg(long)]
    pub to_defaults_file: Option<PathBuf>,
    /// The tombstone table of each table on the target, e.g. `{table}_tombstones`.
    #[arg(long)]
    pub tombstones: Option<String>,
    /// Rows per chunk [default: 5000 to compare; a backfill starts at 100 and then sizes each
    /// chunk so its transaction on the target takes about 500 ms (500 to 20,000 rows, at most
    /// 24 MiB). Given, every chunk has this size].
    #[arg(long)]
    pub chunk_rows: Option<u64>,
    /// The wait before a differing chunk is read again.
    #[arg(long, value_parser = super::args::parse_duration, default_value = "500ms")]
    pub recheck_delay: Duration,
    /// Where the Markdown and JSON reports go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub m: MigrationArgs,
    /// Compare in rounds this far apart, until a round finds the servers equal (or `--rounds`).
    #[arg(long, value_parser = super::args::parse_duration)]
    pub watch: Option<Duration>,
    /// With `--watch`: at most this many rounds (0: until equal).
    #[arg(long, default_value_t = 0)]
    pub rounds: u32,
    /// Write the result as Prometheus metrics to this file.
    #[arg(long)]
    pub prom_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub m: MigrationArgs,
    /// Rows per second, at most.
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Pause while the target's Threads_running is above this.
    #[arg(long, default_value_t = 64)]
    pub max_threads_running: u64,
    /// Pause while a replica of the target is further behind than this (measured by GTID, or
    /// by a heartbeat row with `--lag-by heartbeat`; never Seconds_Behind_Master).
    #[arg(long, value_parser = super::args::parse_duration)]
    pub max_lag: Option<Duration>,
    /// With `--max-lag`: how a replica's lag is measured. `gtid`: the target's GTID position
    /// after each chunk, looked for on the replica. `heartbeat`: each chunk's transaction also
    /// writes a row of `privfence`.`backfill_heartbeat` on the target (created through the
    /// journal), read on each replica; for replicas without comparable GTIDs.
    #[arg(long, value_enum, default_value_t = LagBy::Gtid, requires = "max_lag")]
    pub lag_by: LagBy,
    /// With `--max-lag`: a replica of the target, HOST:PORT (repeatable; credentials of `--to`)
    /// [default: the replicas the target lists in SHOW REPLICAS / SHOW SLAVE HOSTS].
    #[arg(long, requires = "max_lag")]
    pub replica: Vec<String>,
    /// Count what would be copied; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start over: the existing journal is kept aside, not continued.
    #[arg(long)]
    pub restart: bool,
    /// After a verify passed: delete the tombstones in batches (needs `--tombstones`).
    #[arg(long)]
    pub cleanup_tombstones: bool,
    /// The backfill's journal [default: $XDG_STATE_HOME/privfence/SERVICE.backfill.journal].
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

fn spec(m: &MigrationArgs, given: &str, defaults_file: &Option<PathBuf>) -> anyhow::Result<ConnectSpec> {
    super::args::server_at(&m.connect, given, defaults_file)
}

/// Connects to both servers and resolves the service's tables on the source.
async fn context(m: &MigrationArgs) -> anyhow::Result<(Server, Server, Vec<TableName>)> {
    let policy = crate::policy::load(&m.policy, chrono::Local::now().date_naive()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let svc = policy.service(&m.service).ok_or_else(|| anyhow::anyhow!("no service {:?} in {}", m.service, m.policy.display()))?.clone();
    let mut from = Server::connect(&spec(m, &m.from, &m.from_defaults_file)?).await?;
    let to = Server::connect(&spec(m, &m.to, &m.to_defaults_file)?).await?;
    let inv = crate::inventory::take(&mut from).await?;
    let tables = definition::without_tombstone_tables(&crate::session::guide::service_tables(&inv, &svc), m.tombstones.as_deref());
    if tables.is_empty() {
        anyhow::bail!("service {:?} matches no table on the source {}", m.service, from.target);
    }
    Ok((from, to, tables))
}

fn verify_opts(m: &MigrationArgs) -> VerifyOptions {
    VerifyOptions {
        chunk_rows: m.chunk_rows.unwrap_or(VerifyOptions::default().chunk_rows),
        recheck_delay: m.recheck_delay,
        ..VerifyOptions::default()
    }
}

fn write_reports(dir: &Path, stem: &str, md: &str, json: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create the report folder {}: {e}", dir.display()))?;
    let stem = format!("{stem}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    std::fs::write(dir.join(format!("{stem}.md")), md)?;
    let path = dir.join(format!("{stem}.json"));
    std::fs::write(&path, json)?;
    Ok(path)
}

/// A journal left without a complete header line by a run killed while creating it (the file is
/// created before its header is written and fsynced): nothing was acted on under it, so it is
/// removed and created afresh instead of blocking every rerun.
fn forget_headerless(path: &Path, out: &mut Output) -> anyhow::Result<()> {
    if path.exists() && Journal::read(path).is_ok_and(|e| e.is_empty()) {
        std::fs::remove_file(path)?;
        out.status(&format!("the journal {} had no header (its first run was killed while creating it): started afresh", path.display()));
    }
    Ok(())
}

fn code(v: &VerifyReport) -> ExitCode {
    if v.is_equal() {
        ExitCode::Ok
    } else {
        ExitCode::Found
    }
}

pub async fn run_verify(a: VerifyArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    no_tsv(&a.m)?;
    let (from, to, tables) = context(&a.m).await?;
    let opts = verify_opts(&a.m);
    let mut round = 0u32;
    let mut first_differing: Option<u32> = None;
    loop {
        round += 1;
        let mut shown = Shown::new(out, a.m.format.format);
        let v = verify(&from, &to, &tables, a.m.tombstones.as_deref(), &opts, &mut |p: &Progress| shown.show(p)).await;
        shown.finish();
        let v = v?;
        let json = render::verify_json(&v)?;
        let path = write_reports(
            &a.m.out,
            &format!("verify-{}", a.m.service),
            &format!("# privfence verify\n\n```\n{}```\n", render::verify_text(&v)),
            &json,
        )?;
        if let Some(p) = &a.prom_file {
            write_atomically(p, &prom(&v, round))?;
        }
        match a.m.format.format {
            Format::Json => out.data(&format!("{}\n", json.trim_end())),
            Format::Table | Format::Tsv => out.data(&format!("{}\n", render::verify_text(&v).trim_end())),
        }
        let differing = v.keys.len() + v.keys_not_listed;
        if !v.is_equal() {
            first_differing.get_or_insert(round);
        }
        let state = if v.is_equal() { "equal".to_string() } else { format!("{differing} keys differ in {} ranges", v.ranges.len()) };
        out.status(&format!("round {round}: {state}; report {}", path.display()));
        let last = a.watch.is_none() || (a.rounds > 0 && round >= a.rounds);
        if v.is_equal() || last {
            if a.watch.is_some() {
                out.status(&match (v.is_equal(), first_differing) {
                    (true, Some(f)) => format!("converged: equal in round {round} (differed from round {f})"),
                    (true, None) => format!("converged: equal in round {round}"),
                    (false, _) => format!("not converged: {differing} keys still differ after {round} rounds"),
                });
            }
            return Ok(code(&v));
        }
        let wait = a.watch.unwrap_or_default();
        out.status(&format!("round {}: in {:?}", round + 1, wait));
        tokio::time::sleep(wait).await;
    }
}

/// The Prometheus text of one round: the report's metrics and the round's own.
fn prom(v: &VerifyReport, round: u32) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        "{}# HELP privfence_verify_round The watch round these metrics come from.\n# TYPE privfence_verify_round gauge\nprivfence_verify_round {round}\n\
         # TYPE privfence_verify_rows_source gauge\nprivfence_verify_rows_source {}\n\
         # TYPE privfence_verify_rows_target gauge\nprivfence_verify_rows_target {}\n\
         # TYPE privfence_verify_duration_seconds gauge\nprivfence_verify_duration_seconds {:.3}\n\
         # TYPE privfence_verify_last_run_timestamp_seconds gauge\nprivfence_verify_last_run_timestamp_seconds {now}\n",
        render::verify_prom(v),
        v.rows_source,
        v.rows_target,
        v.took_ms as f64 / 1000.0
    )
}

/// Writes `text` to a temporary file beside `path`, fsyncs it and renames it over `path`: a
/// scraper (node_exporter's textfile collector) reads the old file or the new one, never half.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let name = path.file_name().ok_or_else(|| anyhow::anyhow!("--prom-file {}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write --prom-file {}: {e}", path.display())
    })
}

pub async fn run_backfill(a: BackfillArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    no_tsv(&a.m)?;
    let (from, to, tables) = context(&a.m).await?;
    let path = a.journal.clone().unwrap_or_else(|| journal::default_path(&format!("{}.backfill", a.m.service)));
    if a.restart && path.exists() {
        let aside = path.with_extension(format!("restarted-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")));
        std::fs::rename(&path, &aside)?;
        out.status(&format!("the earlier journal is kept as {}", aside.display()));
    }
    let header = Record::Header {
        format: JOURNAL_FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        service: a.m.service.clone(),
        policy: a.m.policy.display().to_string(),
        tables: tables.clone(),
    };
    forget_headerless(&path, out)?;
    if a.cleanup_tombstones {
        let pattern = a.m.tombstones.clone().ok_or_else(|| anyhow::anyhow!("--cleanup-tombstones needs --tombstones PATTERN"))?;
        let mut j = Journal::open_or_create(&path, header)?;
        let mut shown = Shown::new(out, a.m.format.format);
        let done =
            backfill::cleanup_tombstones(&from, &to, &tables, &pattern, &mut j, &verify_opts(&a.m), &mut |p: &Progress| shown.show(p))
                .await;
        shown.finish();
        let (v, batches) = done?;
        out.data(&format!("{}\n", render::verify_text(&v).trim_end()));
        out.status(&format!("tombstones deleted in {batches} batches"));
        return Ok(ExitCode::Ok);
    }
    let opts = BackfillOptions {
        chunk_rows: a.m.chunk_rows.unwrap_or(BackfillOptions::default().chunk_rows),
        adaptive: a.m.chunk_rows.is_none(),
        max_rate: a.max_rate,
        max_threads_running: a.max_threads_running,
        dry_run: a.dry_run,
        lag: a.max_lag.map(|max| LagOptions { max, replicas: a.replica.clone(), by: a.lag_by }),
        verify: verify_opts(&a.m),
    };
    let mut j = if a.dry_run { None } else { Some(Journal::open_or_create(&path, header)?) };
    let mut shown = Shown::new(out, a.m.format.format);
    let r = backfill::backfill(&from, &to, &tables, a.m.tombstones.as_deref(), j.as_mut(), &opts, &mut |p: &Progress| shown.show(p)).await;
    shown.finish();
    let r = r?;
    let json = render::backfill_json(&r)?;
    let report = write_reports(
        &a.m.out,
        &format!("backfill-{}", a.m.service),
        &format!("# privfence backfill\n\n```\n{}```\n", render::backfill_text(&r)),
        &json,
    )?;
    match a.m.format.format {
        Format::Json => out.data(&format!("{}\n", json.trim_end())),
        Format::Table | Format::Tsv => out.data(&format!("{}\n", render::backfill_text(&r).trim_end())),
    }
    out.status(&format!("report {}; journal {}", report.display(), path.display()));
    Ok(r.verify.as_ref().map_or(ExitCode::Ok, code))
}

/// Verify and backfill reports are ranges and sums, not rows: refused before any work.
fn no_tsv(m: &MigrationArgs) -> anyhow::Result<()> {
    if m.format.format == Format::Tsv {
        anyhow::bail!("--format tsv is not available for verify and backfill (their reports are not tables): use --format json");
    }
    Ok(())
}

/// Off a terminal (or with `--format json`), a progress line at most this often (and at once
/// when a table begins, a brake starts holding the copy, or keys are found differing).
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Draws a verify's, a backfill's or a cleanup's [`Progress`]: on a terminal a bar over the
/// rows (done of the estimate, rows/s, time left; a brake's reason as its message), else plain
/// status lines, rate-limited, with the rate and time left worked out here.
struct Shown<'o> {
    out: &'o mut Output,
    bar: Option<Bar>,
    /// The work under way, its estimate, and where this run started it (rows, time).
    work: Option<(Work, u64)>,
    from: (u64, Instant),
    /// The last rows reported and a line not printed yet (rate-limited), for [`Shown::finish`].
    done: u64,
    pending: Option<String>,
    last_line: Option<Instant>,
    /// A brake is holding the copy (its first report is printed at once).
    held: bool,
}

impl<'o> Shown<'o> {
    fn new(out: &'o mut Output, format: Format) -> Shown<'o> {
        out.allow_bars(format != Format::Json);
        Shown { out, bar: None, work: None, from: (0, Instant::now()), done: 0, pending: None, last_line: None, held: false }
    }

    fn show(&mut self, p: &Progress) {
        match p {
            Progress::Started { work, total, done } => {
                self.finish();
                self.work = Some((*work, *total));
                (self.from, self.done) = ((*done, Instant::now()), *done);
                let bar = self.out.bar_styled((*total).max(*done), work.noun(), BarStyle::Rows);
                bar.set(*done);
                bar.restart_rate();
                self.bar = bar.is_drawn().then_some(bar);
                if self.bar.is_none() {
                    self.line(&p.to_string(), true);
                }
            }
            Progress::Rows { table, copied, done, work } => {
                self.done = *done;
                self.held = false;
                if let Some(b) = &self.bar {
                    b.set_total(self.work.map_or(0, |w| w.1).max(*done));
                    b.set(*done);
                    b.set_message(&match work {
                        Work::Copy => format!("{table}: {copied} copied"),
                        Work::Verify | Work::Cleanup => format!("{}: {table}", work.noun()),
                    });
                } else {
                    let line = format!("{p}{}", self.rate());
                    self.line(&line, false);
                }
            }
            Progress::Throttled { brake, .. } => {
                match &self.bar {
                    Some(b) => b.set_message(&format!("paused: {brake}")),
                    None => self.line(&p.to_string(), !self.held),
                }
                self.held = true;
            }
            Progress::Table { .. } | Progress::Differs { .. } => match &self.bar {
                Some(_) => self.out.status(&p.to_string()),
                None => self.line(&p.to_string(), true),
            },
        }
    }

    /// `, N rows/s, ETA N s (estimate)` for a plain line.
    fn rate(&self) -> String {
        let secs = self.from.1.elapsed().as_secs_f64().max(0.001);
        let rate = self.done.saturating_sub(self.from.0) as f64 / secs;
        let left = self.work.map_or(0, |w| w.1).saturating_sub(self.done);
        if rate > 0.0 {
            format!(", {rate:.0} rows/s, ETA {:.0} s (estimate)", left as f64 / rate)
        } else {
            String::new()
        }
    }

    /// A plain line: printed now if `now` (after the one held back, if any) or if none was
    /// for [`LINE_EVERY`], else held back (the next one replaces it).
    fn line(&mut self, text: &str, now: bool) {
        if now || self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
            if let Some(held_back) = self.pending.take().filter(|_| now) {
                self.out.progress(&held_back);
            }
            self.out.progress(text);
            self.last_line = Some(Instant::now());
            self.pending = None;
        } else {
            self.pending = Some(text.to_string());
        }
    }

    /// Removes the bar, or prints the last line held back by the rate limit.
    fn finish(&mut self) {
        self.bar = None;
        if let Some(text) = self.pending.take() {
            self.out.progress(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Brake;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn off_a_terminal_lines_are_rate_limited_but_a_brake_and_the_last_line_are_not_lost() {
        let err = Captured::default();
        let mut out = Output::new(Box::new(std::io::sink()), Box::new(err.clone()));
        let t = TableName::new("shop", "orders");
        let rows = |done| Progress::Rows { work: Work::Copy, table: t.clone(), done, copied: done / 2 };
        let brake = Brake::ThreadsRunning { running: 90, max: 64 };
        let mut shown = Shown::new(&mut out, Format::Table);
        shown.show(&Progress::Started { work: Work::Copy, total: 1000, done: 0 });
        for done in [100, 200, 300] {
            shown.show(&rows(done));
        }
        for _ in 0..3 {
            shown.show(&Progress::Throttled { table: t.clone(), brake: brake.clone() });
        }
        shown.show(&rows(400));
        shown.finish();
        let text = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "backfill: about 1000 rows");
        // Held back until the brake: the last rows line before it, then the brake once.
        assert!(lines[1].starts_with("`shop`.`orders`: 300 rows read, 150 copied, ") && lines[1].ends_with(" s (estimate)"), "{text}");
        assert_eq!(lines[2], "`shop`.`orders`: the target has 90 threads running (more than 64): waiting");
        // The last line, held back by the rate limit, is printed at the end.
        assert!(lines[3].starts_with("`shop`.`orders`: 400 rows read, 200 copied"), "{text}");
        assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    }
}
