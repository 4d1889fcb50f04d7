//! Following a growing text file: only what was appended after the start, complete lines only,
//! across rotation and truncation.
//!
//! The file is read through its open handle, which follows it when it is renamed (the
//! sql_errlog plugin renames `sql_errors.log` to `.001` past its size limit; logrotate renames
//! too): the rest of the old file is read from the handle, then the new file at the path from
//! its start. A file that shrank under the same inode was truncated in place (`copytruncate`)
//! and is read again from its start. A last line without its newline waits for the next read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files up to this size have their lines counted at the start, so lines can be cited by number.
const COUNT_LINES_UP_TO: u64 = 64 << 20;

/// One complete line read from a followed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, without its newline (invalid UTF-8 replaced).
    pub text: String,
    /// 1-based line number in the file it was read from, when known.
    pub number: Option<u64>,
    /// Byte offset of the line's start in that file.
    pub offset: u64,
}

/// A followed file.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    /// The open handle (`None` while the file does not exist).
    file: Option<File>,
    /// Device and inode of the open file, to notice a rename.
    id: (u64, u64),
    /// Bytes consumed from the open file (complete lines and the partial one).
    offset: u64,
    /// A last line without its newline yet.
    partial: Vec<u8>,
    /// Lines consumed so far in the open file, when known.
    lines: Option<u64>,
}

impl Tail {
    /// Starts following at the file's current end. A missing file is followed from the start
    /// of whatever file appears at the path later.
    pub fn at_end(path: &Path) -> io::Result<Tail> {
        let mut tail = Tail { path: path.to_path_buf(), file: None, id: (0, 0), offset: 0, partial: Vec::new(), lines: Some(0) };
        match File::open(path) {
            Ok(mut f) => {
                let meta = f.metadata()?;
                tail.id = (meta.dev(), meta.ino());
                tail.offset = meta.len();
                tail.lines = if meta.len() <= COUNT_LINES_UP_TO { Some(count_lines(&mut f, meta.len())?) } else { None };
                tail.file = Some(f);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(tail)
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The complete lines appended since the previous read.
    pub fn read_lines(&mut self) -> io::Result<Vec<Line>> {
        let mut out = Vec::new();
        if self.file.is_some() {
            self.drain(&mut out)?;
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if self.file.is_none() || (meta.dev(), meta.ino()) != self.id => {
                // Rotated (or created): what the old handle held ends here, even without a newline.
                self.flush_partial(&mut out);
                self.reopen()?;
                self.drain(&mut out)?;
            }
            Ok(meta) if meta.len() < self.offset => {
                self.partial.clear();
                self.offset = 0;
                self.lines = Some(0);
                self.drain(&mut out)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    fn reopen(&mut self) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(f) => {
                let meta = f.metadata()?;
                self.id = (meta.dev(), meta.ino());
                self.file = Some(f);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.file = None,
            Err(e) => return Err(e),
        }
        self.offset = 0;
        self.lines = Some(0);
        Ok(())
    }

    /// Reads the open file from the offset to its end and splits off complete lines.
    fn drain(&mut self, out: &mut Vec<Line>) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let start_of_partial = self.offset - self.partial.len() as u64;
        self.offset += buf.len() as u64;
        let mut pending = std::mem::take(&mut self.partial);
        pending.extend_from_slice(&buf);
        let mut line_start = start_of_partial;
        let mut rest: &[u8] = &pending;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(&rest[..i]).into_owned();
            out.push(self.line(text, line_start));
            line_start += i as u64 + 1;
            rest = &rest[i + 1..];
        }
        self.partial = rest.to_vec();
        Ok(())
    }

    fn flush_partial(&mut self, out: &mut Vec<Line>) {
        if !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            let offset = self.offset - text.len() as u64;
            out.push(self.line(text, offset));
        }
    }

    fn line(&mut self, text: String, offset: u64) -> Line {
        self.lines = self.lines.map(|n| n + 1);
        Line { text: text.trim_end_matches('\r').to_string(), number: self.lines, offset }
    }
}

fn count_lines(f: &mut File, len: u64) -> io::Result<u64> {
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    f.seek(SeekFrom::Start(0))?;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let got = f.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        n += buf[..got].iter().filter(|b| **b == b'\n').count() as u64;
        left -= got as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(s.as_bytes()).unwrap();
    }

    fn texts(lines: Vec<Line>) -> Vec<(String, Option<u64>)> {
        lines.into_iter().map(|l| (l.text, l.number)).collect()
    }

    #[test]
    fn new_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "old 1\nold 2\n");
        let mut t = Tail::at_end(&p).unwrap();
        assert!(t.read_lines().unwrap().is_empty());
        append(&p, "new 3\npart");
        assert_eq!(texts(t.read_lines().unwrap()), vec![("new 3".into(), Some(3))]);
        append(&p, "ial 4\n");
        let l = t.read_lines().unwrap();
        assert_eq!((l[0].text.as_str(), l[0].number, l[0].offset), ("partial 4", Some(4), 18));
    }

    #[test]
    fn rotation_truncation_and_late_creation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.log");
        let mut t = Tail::at_end(&p).unwrap();
        append(&p, "first\n");
        assert_eq!(texts(t.read_lines().unwrap()), vec![("first".into(), Some(1))]);
        append(&p, "before rotation\nunterminated");
        std::fs::rename(&p, dir.path().join("e.log.001")).unwrap();
        append(&p, "after rotation\n");
        let got = texts(t.read_lines().unwrap());
        assert_eq!(got, vec![("before rotation".into(), Some(2)), ("unterminated".into(), Some(3)), ("after rotation".into(), Some(1))]);
        std::fs::write(&p, "").unwrap();
        append(&p, "x\n");
        assert_eq!(texts(t.read_lines().unwrap()), vec![("x".into(), Some(1))]);
    }
}
