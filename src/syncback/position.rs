//! Where sync-back stands in the new server's binary log: a MySQL GTID set (the transactions
//! fully handled), or a MariaDB file and offset; both carry the file and offset for people.
//! Pure: parsing, adding one transaction, rendering.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A position in the new server's binary log: the next event to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Binary log file name (`binlog.000003`).
    pub file: String,
    /// Offset of the next event in `file`.
    pub pos: u64,
    /// MySQL: every transaction handled, as a GTID set (`None` on MariaDB, which resumes by
    /// file and offset: its GTID stream needs the replication protocol's capabilities that
    /// the driver does not announce).
    pub gtid: Option<String>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.gtid {
            Some(g) => write!(f, "GTID set {g} ({}:{})", self.file, self.pos),
            None => write!(f, "{}:{}", self.file, self.pos),
        }
    }
}

/// A MySQL GTID set: per source UUID, closed intervals of transaction numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    members: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parses `uuid:1-5:7,uuid2:1-3` (white space and new lines allowed, as the server prints it).
    pub fn parse(text: &str) -> Result<GtidSet> {
        let mut set = GtidSet::default();
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for member in compact.split(',').filter(|m| !m.is_empty()) {
            let mut parts = member.split(':');
            let uuid = parts.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 {
                return Err(Error::BadInput(format!("not a GTID set member: {member:?}")));
            }
            for iv in parts {
                let bad = || Error::BadInput(format!("not a GTID interval: {iv:?} in {member:?}"));
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                    None => {
                        let n = iv.parse().map_err(|_| bad())?;
                        (n, n)
                    }
                };
                if a == 0 || b < a {
                    return Err(bad());
                }
                set.add_range(&uuid, a, b);
            }
        }
        Ok(set)
    }

    /// Adds one transaction.
    pub fn add(&mut self, uuid: &str, gno: u64) {
        self.add_range(uuid, gno, gno);
    }

    fn add_range(&mut self, uuid: &str, a: u64, b: u64) {
        let ivs = self.members.entry(uuid.to_ascii_lowercase()).or_default();
        ivs.push((a, b));
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    /// Whether the set holds this transaction.
    pub fn contains(&self, uuid: &str, gno: u64) -> bool {
        self.members.get(&uuid.to_ascii_lowercase()).is_some_and(|v| v.iter().any(|&(a, b)| a <= gno && gno <= b))
    }

    /// Whether every transaction of `other` is in this set.
    pub fn contains_set(&self, other: &GtidSet) -> bool {
        other
            .members
            .iter()
            .all(|(u, ivs)| ivs.iter().all(|&(a, b)| self.members.get(u).is_some_and(|mine| mine.iter().any(|&(x, y)| x <= a && b <= y))))
    }

    /// The members, for the binary log request (`uuid:a-b:c-d` each).
    pub fn members(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|(u, ivs)| {
                let list: Vec<String> = ivs.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
                format!("{u}:{}", list.join(":"))
            })
            .collect()
    }
}

impl std::fmt::Display for GtidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.members().join(","))
    }
}

/// Formats a GTID event's 16-byte source id as a UUID.
pub fn uuid_text(sid: &[u8; 16]) -> String {
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn parse_add_render() {
        let mut s = GtidSet::parse(&format!("{U}:1-5:7,\n 4e11fa47-71ca-11e1-9e33-c80aa9429562:2")).unwrap();
        assert!(s.contains(U, 3) && !s.contains(U, 6));
        s.add(U, 6);
        assert_eq!(s.to_string(), format!("{U}:1-7,4e11fa47-71ca-11e1-9e33-c80aa9429562:2"));
        s.add("4E11FA47-71CA-11E1-9E33-C80AA9429562", 1);
        assert!(s.to_string().ends_with(":1-2"));
        assert!(GtidSet::parse("").unwrap().members().is_empty());
        assert!(GtidSet::parse("x:1").is_err());
        assert!(GtidSet::parse(&format!("{U}:5-3")).is_err());
    }

    #[test]
    fn containment() {
        let big = GtidSet::parse(&format!("{U}:1-10")).unwrap();
        assert!(big.contains_set(&GtidSet::parse(&format!("{U}:2-4:9")).unwrap()));
        assert!(!big.contains_set(&GtidSet::parse(&format!("{U}:2-11")).unwrap()));
        assert!(big.contains_set(&GtidSet::default()));
    }

    #[test]
    fn uuids() {
        let sid = [0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62];
        assert_eq!(uuid_text(&sid), U);
    }
}
