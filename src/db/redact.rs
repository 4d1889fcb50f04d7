//! `-v/--verbose`: every statement privfence sends, through `tracing` (target `privfence::sql`)
//! to stderr, with the string literals that can hold credentials replaced by `'<redacted>'`:
//! `IDENTIFIED [WITH plugin] BY|AS [PASSWORD] '...'`, `PASSWORD('...')`,
//! `SET PASSWORD ... = '...'`, `SOURCE_PASSWORD`/`MASTER_PASSWORD = '...'`. Redaction happens
//! before the event is built, so no subscriber ever sees the secret.

use std::sync::OnceLock;

/// The tracing target of sent statements.
pub const TARGET: &str = "privfence::sql";

fn pattern() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let lit = r#"(?:'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")"#;
        let lead = r"(?i:identified\s+via\s+\w+\s+using\s*(?:password\s*\(\s*)?|identified(?:\s+with\s+(?:'[^']*'|`[^`]*`|\w+))?\s+(?:by|as)(?:\s+password)?\s*|password\s*\(\s*|(?:source|master)_password\s*=\s*|set\s+password\b(?:[^=']|'(?:[^'\\]|\\.|'')*')*=\s*(?:password\s*\(\s*)?)";
        regex::Regex::new(&format!("({lead}){lit}")).expect("a valid pattern")
    })
}

/// The statement with credential literals replaced.
pub fn redact(sql: &str) -> String {
    pattern().replace_all(sql, "${1}'<redacted>'").into_owned()
}

/// Logs one statement sent to `server` (at DEBUG; nothing is built unless `-v` is on).
pub fn trace(server: &str, sql: &str) {
    if tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        tracing::debug!(target: TARGET, server, "{}", redact(sql));
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_redacted() {
        for (sql, secret) in [
            ("CREATE USER 'a'@'%' IDENTIFIED BY 's3cret'", "s3cret"),
            ("ALTER USER 'a'@'%' IDENTIFIED WITH caching_sha2_password BY 'p''w'", "p''w"),
            ("CREATE USER 'a'@'%' IDENTIFIED WITH 'mysql_native_password' AS '*0123456789ABCDEF'", "*0123"),
            ("GRANT USAGE ON *.* TO a IDENTIFIED BY PASSWORD '*ABCDEF'", "*ABCDEF"),
            ("SET PASSWORD FOR 'a'@'%' = PASSWORD('x\\'y')", "x\\'y"),
            ("SET PASSWORD FOR 'a'@'%' = 'plain'", "plain"),
            ("CHANGE REPLICATION SOURCE TO SOURCE_USER='r', SOURCE_PASSWORD = \"rpw\"", "rpw"),
            ("change master to master_password='mpw'", "mpw"),
            ("CREATE USER a IDENTIFIED VIA ed25519 USING 'edhash'", "edhash"),
        ] {
            let r = redact(sql);
            assert!(!r.contains(secret), "{sql} -> {r}");
            assert!(r.contains("'<redacted>'"), "{r}");
        }
        let plain = "GRANT SELECT ON `db`.`t` TO 'user'@'%'";
        assert_eq!(redact(plain), plain);
        assert_eq!(redact("SELECT 'password' FROM t"), "SELECT 'password' FROM t");
    }
}
