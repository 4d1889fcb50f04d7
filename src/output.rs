//! The one output object. Data goes to stdout, progress and status to stderr; both are plain
//! writers so tests can capture them in memory. A closed stdout (`| head`) is not an error.

use std::io::{self, Write};

/// `--format`: how data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// Versioned JSON (see docs/formats.md).
    Json,
}

/// Where a command writes.
pub struct Output {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
}

impl Output {
    /// stdout and stderr of the process.
    pub fn stdio() -> Output {
        Output { out: Box::new(io::stdout()), err: Box::new(io::stderr()) }
    }

    /// Any two writers (tests use `Vec<u8>`).
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Output {
        Output { out, err }
    }

    /// Writes data (a table, a JSON document). A broken pipe is ignored.
    pub fn data(&mut self, text: &str) {
        if let Err(e) = self.out.write_all(text.as_bytes()).and_then(|_| self.out.flush()) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                let _ = writeln!(self.err, "privfence: cannot write output: {e}");
            }
        }
    }

    /// Writes a status line to stderr.
    pub fn status(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }

    /// Writes a warning to stderr.
    pub fn warn(&mut self, text: &str) {
        let _ = writeln!(self.err, "warning: {text}");
    }
}
