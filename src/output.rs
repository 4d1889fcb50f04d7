//! The one output object. Data goes to stdout, progress and status to stderr; both are plain
//! writers so tests can capture them in memory. A closed stdout (`| head`) is not an error.
//!
//! Progress bars (`indicatif`) are drawn only when stderr is a terminal and the command did
//! not ask for quiet or machine-readable output ([`Output::allow_bars`]): a cron job, a pipe,
//! `--quiet` and `--format json` get nothing, not even a last line.

use std::io::{self, Write};
use std::sync::Mutex;

/// Warnings raised where no output object is at hand (reading option files while resolving a
/// connection), written to stderr before the next line any [`Output`] writes.
static DEFERRED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Queues a warning for the next line an [`Output`] writes.
pub fn defer_warning(text: String) {
    if let Ok(mut d) = DEFERRED.lock() {
        d.push(text);
    }
}

/// `--format`: how data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// Versioned JSON (see docs/formats.md; schemas in docs/schemas/).
    Json,
    /// Tab-separated values: a header line, raw names, escapes as in `mysql --batch`.
    Tsv,
}

/// Where a command writes.
pub struct Output {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    /// stderr is a terminal: progress lines rewrite themselves in place.
    live: bool,
    /// A progress line is on screen and must be cleared before the next status line.
    progress_shown: bool,
    /// Progress bars may be drawn (a terminal, and neither `--quiet` nor JSON asked for).
    bars: bool,
    /// The bar on screen, if any: status lines are written above it, not through it.
    bar: Option<indicatif::ProgressBar>,
}

/// A progress bar for long work, from [`Output::bar`]: on a terminal only; elsewhere every
/// call does nothing ([`Bar::is_drawn`] says which, so a caller can print plain lines instead).
/// Dropped or [`Bar::finish`]ed, it leaves no line behind.
pub struct Bar(Option<indicatif::ProgressBar>);

/// What a [`Bar`] counts, and so how it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarStyle {
    /// `LABEL [====>   ] 12/40 (3s, 9s left)`: items (servers, accounts).
    Count,
    /// `LABEL [====>   ] 12,000/40,000 rows (2,345/s, 12s left)`: rows, with their rate.
    Rows,
    /// `LABEL [====>   ] 12/40 s · MESSAGE`: a window of seconds; the message says what was
    /// seen so far (set with [`Bar::set_message`]).
    Seconds,
}

impl BarStyle {
    fn template(self) -> &'static str {
        match self {
            BarStyle::Count => "{msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
            BarStyle::Rows => "{msg} [{bar:30}] {human_pos}/{human_len} rows ({per_sec:0}, {eta} left)",
            BarStyle::Seconds => "{prefix} [{bar:30}] {pos}/{len} s · {msg}",
        }
    }
}

impl Bar {
    /// Whether the bar is on screen (`false`: a hidden bar, every call does nothing).
    pub fn is_drawn(&self) -> bool {
        self.0.is_some()
    }

    /// Sets the amount of work (when it is known only once the work has begun).
    pub fn set_total(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }

    /// Sets how much is done.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    /// Sets the text beside the bar (its label, or with [`BarStyle::Seconds`] what was seen).
    pub fn set_message(&self, text: &str) {
        if let Some(b) = &self.0 {
            b.set_message(text.to_string());
        }
    }

    /// Starts the rate and time-left estimates afresh from here (after a jump: work done by an
    /// earlier run is not this run's speed).
    pub fn restart_rate(&self) {
        if let Some(b) = &self.0 {
            b.reset_eta();
        }
    }

    /// Removes the bar.
    pub fn finish(self) {}
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Output {
    /// stdout and stderr of the process.
    pub fn stdio() -> Output {
        use std::io::IsTerminal;
        let live = io::stderr().is_terminal();
        Output { out: Box::new(io::stdout()), err: Box::new(io::stderr()), live, progress_shown: false, bars: live, bar: None }
    }

    /// Any two writers (tests use `Vec<u8>`).
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Output {
        Output { out, err, live: false, progress_shown: false, bars: false, bar: None }
    }

    /// Whether progress bars may be drawn: a command turns them off for `--quiet` and for
    /// machine-readable formats (they are never drawn off a terminal anyway).
    pub fn allow_bars(&mut self, allowed: bool) {
        self.bars = allowed && self.live;
    }

    /// A progress bar over `total` units of `what` (see [`Bar`]); a hidden one unless
    /// [`Self::allow_bars`] and stderr is a terminal.
    pub fn bar(&mut self, total: u64, what: &str) -> Bar {
        self.bar_styled(total, what, BarStyle::Count)
    }

    /// [`Self::bar`] in a given style: `what` is its label (with [`BarStyle::Seconds`], the
    /// text before the bar; the message after it starts empty).
    pub fn bar_styled(&mut self, total: u64, what: &str, style: BarStyle) -> Bar {
        if !self.bars {
            return Bar(None);
        }
        self.clear_progress();
        let template = indicatif::ProgressStyle::with_template(style.template())
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let b = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr()).with_style(template);
        let b = match style {
            BarStyle::Seconds => b.with_prefix(what.to_string()),
            BarStyle::Count | BarStyle::Rows => b.with_message(what.to_string()),
        };
        self.bar = Some(b.clone());
        Bar(Some(b))
    }

    /// Writes one line to stderr, above the progress bar when one is on screen.
    fn err_line(&mut self, text: &str) {
        match self.bar.as_ref().filter(|b| !b.is_finished()).cloned() {
            Some(b) => b.suspend(|| {
                let _ = writeln!(self.err, "{text}");
            }),
            None => {
                self.bar = None;
                let _ = writeln!(self.err, "{text}");
            }
        }
    }

    /// Writes the deferred warnings (see [`defer_warning`]) first.
    fn flush_deferred(&mut self) {
        let pending: Vec<String> = DEFERRED.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        for w in pending {
            let _ = writeln!(self.err, "warning: {w}");
        }
    }

    /// Writes data (a table, a JSON document). A broken pipe is ignored.
    pub fn data(&mut self, text: &str) {
        self.flush_deferred();
        if let Err(e) = self.out.write_all(text.as_bytes()).and_then(|_| self.out.flush()) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                let _ = writeln!(self.err, "privfence: cannot write output: {e}");
            }
        }
    }

    /// Writes a status line to stderr.
    pub fn status(&mut self, text: &str) {
        self.clear_progress();
        self.flush_deferred();
        self.err_line(text);
    }

    /// Writes a warning to stderr.
    pub fn warn(&mut self, text: &str) {
        self.clear_progress();
        self.flush_deferred();
        self.err_line(&format!("warning: {text}"));
    }

    /// A live status line: rewritten in place on a terminal, a plain line otherwise (callers
    /// rate-limit it).
    pub fn progress(&mut self, text: &str) {
        if self.live {
            let _ = write!(self.err, "\r\x1b[K{text}");
            let _ = self.err.flush();
            self.progress_shown = true;
        } else {
            let _ = writeln!(self.err, "{text}");
        }
    }

    /// Asks a yes/no question on the terminal (`question? [y/N]`); anything but yes is no.
    pub fn ask(&mut self, question: &str) -> bool {
        self.status(&format!("{question}? [y/N]"));
        let mut line = String::new();
        let _ = io::stdin().read_line(&mut line);
        matches!(line.trim(), "y" | "Y" | "yes" | "YES")
    }

    /// Whether a person is watching (stderr is a terminal).
    pub fn is_live(&self) -> bool {
        self.live
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            let _ = write!(self.err, "\r\x1b[K");
            self.progress_shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BarStyle, Output};

    #[test]
    fn every_bar_style_is_a_valid_template() {
        for s in [BarStyle::Count, BarStyle::Rows, BarStyle::Seconds] {
            assert!(indicatif::ProgressStyle::with_template(s.template()).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn off_a_terminal_a_bar_is_hidden_and_says_so() {
        let mut out = Output::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
        out.allow_bars(true);
        let bar = out.bar_styled(10, "rows", BarStyle::Rows);
        assert!(!bar.is_drawn());
        bar.set_message("nothing drawn");
        bar.set(5);
    }
}
