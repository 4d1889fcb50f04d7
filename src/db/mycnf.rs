//! MySQL option files (`my.cnf` syntax): `[group]` headers, `key = value`, `!include` and
//! `!includedir`, quoted values, `#` and `;` comments. Only what privfence needs to connect
//! like the mysql client: the `[client]` and `[privfence]` groups.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Values read from option files, keyed by normalised option name (`ssl-ca`, `user`, ...).
#[derive(Debug, Default, Clone)]
pub struct OptionValues {
    pub values: BTreeMap<String, String>,
}

impl OptionValues {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// Reads `groups` from `path` (and its includes) into `into`; later values win.
pub fn read_file(path: &Path, groups: &[&str], into: &mut OptionValues) -> Result<()> {
    read_nested(path, groups, into, 0)
}

fn read_nested(path: &Path, groups: &[&str], into: &mut OptionValues, depth: usize) -> Result<()> {
    if depth > 10 {
        return Err(opt_err(path, 0, "!include nesting deeper than 10 (a loop?)"));
    }
    if world_writable(path) {
        // As the mysql client does: anyone on the host could point privfence at their server.
        crate::output::defer_warning(format!("World-writable config file '{}' is ignored.", path.display()));
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| opt_err(path, 0, &format!("cannot read: {e}")))?;
    read_text(path, &text, groups, into, depth)
}

/// Reads `groups` from option-file text that came from `path` (the decrypted login-path file).
pub fn read_str(path: &Path, text: &str, groups: &[&str], into: &mut OptionValues) -> Result<()> {
    read_text(path, text, groups, into, 0)
}

fn read_text(path: &Path, text: &str, groups: &[&str], into: &mut OptionValues, depth: usize) -> Result<()> {
    let mut active = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = i + 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("!includedir") {
            include_dir(path, rest.trim(), groups, into, depth)?;
            continue;
        }
        if let Some(rest) = line.strip_prefix("!include") {
            let target = resolve(path, rest.trim());
            read_nested(&target, groups, into, depth + 1)?;
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            let name = group.strip_suffix(']').ok_or_else(|| opt_err(path, lineno, "unterminated group header"))?;
            active = groups.iter().any(|g| g.eq_ignore_ascii_case(name.trim()));
            continue;
        }
        if !active {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), parse_value(v.trim()).map_err(|m| opt_err(path, lineno, &m))?),
            None => (line, String::new()),
        };
        into.values.insert(key.replace('_', "-").to_ascii_lowercase(), value);
    }
    Ok(())
}

/// Writable by anyone (mode `o+w`): ignored, as the mysql client ignores it.
pub fn world_writable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
}

fn include_dir(path: &Path, dir: &str, groups: &[&str], into: &mut OptionValues, depth: usize) -> Result<()> {
    let dir = resolve(path, dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "cnf")).collect();
    files.sort();
    for f in files {
        read_nested(&f, groups, into, depth + 1)?;
    }
    Ok(())
}

fn resolve(base: &Path, target: &str) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() {
        p
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Strips quotes and trailing comments; handles `\` escapes inside quotes.
fn parse_value(v: &str) -> std::result::Result<String, String> {
    let mut chars = v.chars();
    match chars.next() {
        Some(q @ ('\'' | '"')) => {
            let mut out = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(o) => out.push(o),
                        None => return Err("unterminated escape".into()),
                    },
                    c if c == q => return Ok(out),
                    c => out.push(c),
                }
            }
            Err("unterminated quoted value".into())
        }
        _ => Ok(match v.find(" #") {
            Some(i) => v[..i].trim_end().to_string(),
            None => v.to_string(),
        }),
    }
}

fn opt_err(path: &Path, line: usize, message: &str) -> Error {
    Error::OptionFile { path: path.to_path_buf(), line, message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_client_group_with_includes() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.cnf");
        std::fs::write(&inc, "[client]\nssl_ca = /ca.pem\n").unwrap();
        let main = dir.path().join("my.cnf");
        std::fs::write(&main, "# c\n[mysqld]\nport=1\n[client]\nuser = app\npassword = \"p#w d\"\nport=3307 # comment\n!include inc.cnf\n")
            .unwrap();
        let mut v = OptionValues::default();
        read_file(&main, &["client"], &mut v).unwrap();
        assert_eq!(v.get("user"), Some("app"));
        assert_eq!(v.get("password"), Some("p#w d"));
        assert_eq!(v.get("port"), Some("3307"));
        assert_eq!(v.get("ssl-ca"), Some("/ca.pem"));
    }

    #[test]
    fn world_writable_files_are_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("my.cnf");
        std::fs::write(&f, "[client]\nhost = 10.9.9.9\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut v = OptionValues::default();
        read_file(&f, &["client"], &mut v).unwrap();
        assert_eq!(v.get("host"), None, "ignored");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        read_file(&f, &["client"], &mut v).unwrap();
        assert_eq!(v.get("host"), Some("10.9.9.9"));
    }

    #[test]
    fn reports_line_of_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("my.cnf");
        std::fs::write(&main, "[client]\nuser=a\npassword='oops\n").unwrap();
        let err = read_file(&main, &["client"], &mut OptionValues::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.ends_with("my.cnf:3: unterminated quoted value"), "{msg}");
        assert!(!msg.contains("oops"));
    }
}
