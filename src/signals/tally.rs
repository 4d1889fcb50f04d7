//! One alarm per error, whichever source sees it first.
//!
//! Counters (MySQL's error summary, MariaDB's `Access_denied_errors`) never miss an error but
//! name no table; detail sources (statement history, sql_errlog) name the table but can miss
//! one (a full history ring, a closed connection, a remote server). Both usually see the same
//! error, in either order: the client gets its error before the history row is written.
//!
//! So each counter keeps three numbers: how much it rose since the start (`counted`), how many
//! detail sightings it matched (`explained`), and how many errors were alarmed from the counter
//! alone (`alarmed`). A detail is news unless it explains an error already alarmed; a counter
//! alarms for whatever neither explains. The monitor reads counters first, then details, and
//! re-reads the details once before alarming from a counter alone.

use std::collections::BTreeMap;

/// A counter's identity: whose errors, and which error numbers it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    pub user: String,
    /// `None` for per-user counters (`USER_STATISTICS`).
    pub host: Option<String>,
    /// The error numbers the counter counts (one for MySQL's summary; for MariaDB's
    /// `Access_denied_errors`, the ones seen to move it).
    pub codes: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
struct KeyState {
    counted: u64,
    explained: u64,
    alarmed: u64,
}

impl KeyState {
    fn unexplained(&self) -> u64 {
        self.counted.saturating_sub(self.explained + self.alarmed)
    }
}

/// The bookkeeping of every counter of the watched account.
#[derive(Debug, Default)]
pub struct Tally {
    keys: BTreeMap<CounterKey, KeyState>,
}

impl Tally {
    /// A counter rose by `by` since the previous poll.
    pub fn rise(&mut self, key: CounterKey, by: u64) {
        self.keys.entry(key).or_default().counted += by;
    }

    /// A detail source saw an error of the watched account. Returns true when it is news
    /// (alarm it), false when it explains an error a counter already alarmed.
    pub fn detail(&mut self, user: &str, host: Option<&str>, code: u32) -> bool {
        // The 1142 a definer view raises inside is counted by MySQL's summary next to the 1356
        // the caller gets, but only the 1356 reaches the history.
        if code == 1356 {
            if let Some(inner) = self.find(user, host, 1142).filter(|k| self.keys[k].unexplained() > 0) {
                self.keys.get_mut(&inner).expect("found").explained += 1;
            }
        }
        let Some(key) = self.find(user, host, code) else { return true };
        let state = self.keys.get_mut(&key).expect("found");
        state.explained += 1;
        if state.alarmed > 0 {
            state.alarmed -= 1;
            return false;
        }
        true
    }

    /// Counters that rose by more than the details explain, and by how much.
    pub fn unexplained(&self) -> Vec<(CounterKey, u64)> {
        self.keys.iter().filter(|(_, s)| s.unexplained() > 0).map(|(k, s)| (k.clone(), s.unexplained())).collect()
    }

    /// Records that `n` errors of `key` were alarmed from the counter alone.
    pub fn alarmed(&mut self, key: &CounterKey, n: u64) {
        if let Some(s) = self.keys.get_mut(key) {
            s.alarmed += n;
        }
    }

    /// The errors counted so far: per counter the larger of what it counted and what details
    /// explained, plus `extra` detail errors no counter covers.
    pub fn errors(&self, extra: u64) -> u64 {
        self.keys.values().map(|s| s.counted.max(s.explained)).sum::<u64>() + extra
    }

    /// The counter this sighting belongs to: same user, same host (when both know it), and
    /// counting this error number; one with unexplained rises first.
    fn find(&self, user: &str, host: Option<&str>, code: u32) -> Option<CounterKey> {
        let all: Vec<_> = self
            .keys
            .iter()
            .filter(|(k, _)| k.user == user && k.codes.contains(&code) && (k.host.is_none() || host.is_none() || k.host.as_deref() == host))
            .collect();
        all.iter().find(|(_, s)| s.unexplained() > 0 || s.alarmed > 0).or(all.first()).map(|(k, _)| (*k).clone())
    }

    /// Whether a counter for this error exists (details of counted errors are not "extra").
    pub fn covers(&self, user: &str, host: Option<&str>, code: u32) -> bool {
        self.find(user, host, code).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: u32) -> CounterKey {
        CounterKey { user: "svc".into(), host: Some("localhost".into()), codes: vec![code] }
    }

    #[test]
    fn counter_then_detail_is_one_alarm() {
        let mut t = Tally::default();
        t.rise(key(1142), 1);
        assert_eq!(t.unexplained(), vec![(key(1142), 1)]);
        t.alarmed(&key(1142), 1);
        assert!(t.unexplained().is_empty());
        assert!(!t.detail("svc", Some("localhost"), 1142), "a late detail explains the counter's alarm");
        assert!(t.detail("svc", Some("localhost"), 1142), "a second error is news");
        assert_eq!(t.errors(0), 2);
    }

    #[test]
    fn detail_then_counter_is_one_alarm() {
        let mut t = Tally::default();
        t.rise(key(1142), 0);
        assert!(t.detail("svc", Some("localhost"), 1142));
        t.rise(key(1142), 1);
        assert!(t.unexplained().is_empty());
        assert_eq!(t.errors(0), 1);
    }

    #[test]
    fn same_poll_and_inner_errors() {
        let mut t = Tally::default();
        t.rise(key(1142), 1);
        t.rise(key(1356), 1);
        assert!(t.detail("svc", Some("localhost"), 1356));
        assert!(t.unexplained().is_empty(), "the 1356 explains the definer view's inner 1142 too");
        assert!(t.detail("svc", Some("localhost"), 1044), "no counter for 1044: news");
        assert!(!t.covers("svc", Some("localhost"), 1044));
        let user_level = CounterKey { user: "svc".into(), host: None, codes: vec![1142, 1356] };
        t.rise(user_level.clone(), 2);
        assert!(t.covers("svc", Some("10.0.0.1"), 1142));
    }
}
