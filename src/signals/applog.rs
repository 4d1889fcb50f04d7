//! Application logs: a line appended after the start that matches the operator's pattern is
//! an alarm. The line itself may carry personal data, so it goes to [`Alarm::statement`] (the
//! screen only); the citation names the file, the line number and the pattern.

use super::tail::Tail;
use super::{Alarm, AlarmKind};
use regex::Regex;
use std::path::Path;

/// One followed application log.
#[derive(Debug)]
pub struct AppLog {
    tail: Tail,
    pattern: Regex,
}

impl AppLog {
    /// Starts at the file's current end.
    pub fn open(path: &Path, pattern: Regex) -> std::io::Result<AppLog> {
        Ok(AppLog { tail: Tail::at_end(path)?, pattern })
    }

    /// The source name: `app log PATH`.
    pub fn source(&self) -> String {
        format!("app log {}", self.tail.path().display())
    }

    /// One alarm per new matching line.
    pub fn read(&mut self, server: &str) -> std::io::Result<Vec<Alarm>> {
        let name = self.tail.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mut out = Vec::new();
        for line in self.tail.read_lines()? {
            if !self.pattern.is_match(&line.text) {
                continue;
            }
            let at = match line.number {
                Some(n) => format!("line {n}"),
                None => format!("the line at byte {}", line.offset),
            };
            out.push(Alarm {
                kind: AlarmKind::AppLog,
                server: server.to_string(),
                source: self.source(),
                account: None,
                error: None,
                object: None,
                digest: None,
                statement: Some(line.text),
                cited: format!("{name} {at} matched /{}/", self.pattern.as_str()),
                count: 1,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn only_new_matching_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "ERROR old, before the start\n").unwrap();
        let mut log = AppLog::open(&p, Regex::new("(?i)denied|error").unwrap()).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"fine\nERROR 1142 for customer alice@example.com\n").unwrap();
        let alarms = log.read("primary").unwrap();
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].cited, "app.log line 3 matched /(?i)denied|error/");
        assert!(alarms[0].statement.as_deref().unwrap().contains("alice"));
        assert!(log.read("primary").unwrap().is_empty());
    }
}
