//! The `[client]` option files that carry credentials to the command-line clients.
//!
//! Passwords go into private files (mode 0600) read with `--defaults-file`, never onto a command
//! line, where any user could read them from `/proc`. Values are double-quoted with `\\` and
//! `\"` escaped, which both clients' option-file parsers undo (checked by `tests/sandbox.rs`).

use super::SandboxError;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `[client]` host, port, user and password to `path` (created or replaced, mode 0600).
pub(crate) fn write_client(path: &Path, host: &str, port: u16, user: &str, password: &str) -> Result<(), SandboxError> {
    let text = format!(
        "# privfence sandbox: credentials for --defaults-file; keep this file private.\n\
         [client]\nhost={}\nport={port}\nuser={}\npassword={}\n",
        quote(host),
        quote(user),
        quote(password)
    );
    write_private(path, text.as_bytes())
}

/// Writes an executable shell script at `path` that runs `argv` plus the script's own
/// arguments, so a person can type `SANDBOX/primary/client -e '...'` instead of the long MySQL
/// loader command line. It holds no secret: the password stays in the option file it names.
pub(crate) fn write_client_script(path: &Path, argv: &[String]) -> Result<(), SandboxError> {
    let quoted: Vec<String> = argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    let text = format!(
        "#!/bin/sh\n# privfence sandbox: this server's client, logged in as the admin account.\n\
         unset MYSQL_PWD MYSQL_HOST MYSQL_TCP_PORT\nexec {} \"$@\"\n",
        quoted.join(" ")
    );
    write_private(path, text.as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| SandboxError::io(format!("making {} executable", path.display()), e))
}

/// Writes a file only its owner can read (created with mode 0600, never briefly wider).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let what = || format!("writing {}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| SandboxError::io(what(), e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SandboxError::io(what(), e))?;
    // An existing file keeps its old mode on open: narrow it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| SandboxError::io(what(), e))?;
    f.write_all(bytes).map_err(|e| SandboxError::io(what(), e))
}

/// Reads the `password` value back from a file written by [`write_client`].
pub(crate) fn read_password(path: &Path) -> Result<String, SandboxError> {
    let text = std::fs::read_to_string(path).map_err(|e| SandboxError::io(format!("reading {}", path.display()), e))?;
    text.lines().find_map(|l| l.strip_prefix("password=")).map(unquote).ok_or_else(|| SandboxError::State {
        dir: path.parent().unwrap_or(path).to_path_buf(),
        detail: format!("{} holds no password= line; recreate the sandbox", path.display()),
    })
}

/// Double-quotes an option value, escaping backslashes and double quotes.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Undoes [`quote`] (and accepts an unquoted value as is).
pub(crate) fn unquote(value: &str) -> String {
    let v = value.trim();
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        for v in ["plain", "with space", r#"q"uote"#, r"back\slash", "hash#x", "", "'single'"] {
            assert_eq!(unquote(&quote(v)), v);
        }
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
