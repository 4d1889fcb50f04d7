//! Server flavour and version detection.
//!
//! MySQL and MariaDB share a wire protocol and most SQL, but differ in the grant tables, privilege
//! names, role storage and signal sources. Everything flavour-specific branches on [`ServerInfo`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which server family we talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// Oracle MySQL (8.0 and later are supported).
    MySql,
    /// MariaDB (10.5 and later are supported; 10.11 is tested).
    MariaDb,
}

impl Flavour {
    /// Short lowercase name used in file names, JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::MySql => "mysql",
            Flavour::MariaDb => "mariadb",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::MySql => "MySQL",
            Flavour::MariaDb => "MariaDB",
        })
    }
}

/// A `major.minor.patch` server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version { major, minor, patch }
    }

    /// Parses the leading `X.Y.Z` of a `@@version` string such as `10.11.6-MariaDB-0+deb12u1`.
    pub fn parse_prefix(s: &str) -> Option<Version> {
        let head: String = s.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let mut it = head.split('.').filter(|p| !p.is_empty()).map(|p| p.parse::<u32>());
        let major = it.next()?.ok()?;
        let minor = it.next().and_then(|r| r.ok()).unwrap_or(0);
        let patch = it.next().and_then(|r| r.ok()).unwrap_or(0);
        Some(Version { major, minor, patch })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What privfence learned about a server right after connecting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub flavour: Flavour,
    pub version: Version,
    /// The full `@@version` string, for reports.
    pub version_string: String,
    /// `@@version_comment`, which names managed services and distributions.
    pub version_comment: String,
    /// A managed service (RDS, Aurora, Azure, Cloud SQL) was recognised: no SUPER, and some
    /// operations (killing sessions, replication control) go through provider procedures.
    pub managed: Option<String>,
    /// `@@lower_case_table_names`: how table and schema names compare.
    pub lower_case_table_names: u8,
    /// MySQL `@@partial_revokes`: when on, `_` and `%` in grant schema names are literal.
    pub partial_revokes: bool,
}

impl ServerInfo {
    /// Decides flavour and version from `@@version` and `@@version_comment`.
    pub fn detect_flavour(version: &str, comment: &str) -> Flavour {
        let both = format!("{version} {comment}").to_ascii_lowercase();
        if both.contains("mariadb") {
            Flavour::MariaDb
        } else {
            Flavour::MySql
        }
    }

    /// Recognises managed services from what they expose in version strings and basedir.
    pub fn detect_managed(version: &str, comment: &str, basedir: &str) -> Option<String> {
        let all = format!("{version} {comment} {basedir}").to_ascii_lowercase();
        if all.contains("aurora") {
            Some("Amazon Aurora".into())
        } else if basedir.starts_with("/rdsdbbin") || all.contains("rds") {
            Some("Amazon RDS".into())
        } else if all.contains("azure") {
            Some("Azure Database".into())
        } else if all.contains("google") || all.contains("cloudsql") {
            Some("Google Cloud SQL".into())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(Version::parse_prefix("10.11.6-MariaDB-0+deb12u1"), Some(Version::new(10, 11, 6)));
        assert_eq!(Version::parse_prefix("9.7.4"), Some(Version::new(9, 7, 4)));
        assert_eq!(Version::parse_prefix("8.0"), Some(Version::new(8, 0, 0)));
        assert_eq!(Version::parse_prefix("x"), None);
    }

    #[test]
    fn detects_flavour_and_managed() {
        assert_eq!(ServerInfo::detect_flavour("10.11.6-MariaDB", ""), Flavour::MariaDb);
        assert_eq!(ServerInfo::detect_flavour("9.7.4", "(Debian)"), Flavour::MySql);
        assert_eq!(ServerInfo::detect_managed("8.0.35", "Source distribution", "/rdsdbbin/mysql/"), Some("Amazon RDS".into()));
        assert_eq!(ServerInfo::detect_managed("9.7.4", "(Debian)", "/usr"), None);
    }
}
