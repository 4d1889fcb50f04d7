//! The one output object. Data goes to stdout, progress and status to stderr; both are plain
//! writers so tests can capture them in memory. A closed stdout (`| head`) is not an error.

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
}

impl Output {
    /// stdout and stderr of the process.
    pub fn stdio() -> Output {
        use std::io::IsTerminal;
        Output { out: Box::new(io::stdout()), err: Box::new(io::stderr()), live: io::stderr().is_terminal(), progress_shown: false }
    }

    /// Any two writers (tests use `Vec<u8>`).
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Output {
        Output { out, err, live: false, progress_shown: false }
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
        let _ = writeln!(self.err, "{text}");
    }

    /// Writes a warning to stderr.
    pub fn warn(&mut self, text: &str) {
        self.clear_progress();
        self.flush_deferred();
        let _ = writeln!(self.err, "warning: {text}");
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
