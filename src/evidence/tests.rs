//! Unit tests of the pure parts: combining and ranking.

use super::*;
use crate::db::{ServerInfo, Version};

/// An empty MariaDB inventory, for tests that add objects.
pub(crate) fn inventory() -> Inventory {
    Inventory::empty(ServerInfo {
        flavour: Flavour::MariaDb,
        version: Version::new(10, 11, 0),
        version_string: "10.11.0-MariaDB".into(),
        version_comment: String::new(),
        managed: None,
        lower_case_table_names: 0,
        partial_revokes: false,
    })
}

fn item(usage: Usage, blind: usize) -> Evidence {
    Evidence { source: "s".into(), span: "x".into(), blind_spots: (0..blind).map(|i| format!("b{i}")).collect(), usage, rows: vec![] }
}

fn cand(user: &str, evidence: Vec<Evidence>) -> Candidate {
    Candidate { account: AccountName::new(user, "%"), usage: overall(&evidence), evidence, last_activity: None }
}

#[test]
fn used_beats_not_seen_beats_unknown() {
    assert_eq!(overall(&[]), Usage::Unknown, "no evidence is Unknown, never unused");
    assert_eq!(overall(&[item(Usage::Unknown, 0)]), Usage::Unknown);
    assert_eq!(overall(&[item(Usage::Unknown, 0), item(Usage::NotSeen, 2)]), Usage::NotSeen);
    assert_eq!(overall(&[item(Usage::NotSeen, 0), item(Usage::Used, 5)]), Usage::Used);
}

#[test]
fn rank_orders_not_seen_by_blind_spots_then_unknown_then_used() {
    let mut cs = vec![
        cand("used", vec![item(Usage::Used, 0)]),
        cand("unknown_b", vec![item(Usage::Unknown, 0)]),
        cand("notseen_weak", vec![item(Usage::NotSeen, 3), item(Usage::Unknown, 0)]),
        cand("unknown_a", vec![]),
        cand("notseen_strong", vec![item(Usage::NotSeen, 4), item(Usage::NotSeen, 1)]),
        cand("notseen_strong2", vec![item(Usage::NotSeen, 1)]),
    ];
    rank(&mut cs);
    let order: Vec<&str> = cs.iter().map(|c| c.account.user.as_str()).collect();
    assert_eq!(order, ["notseen_strong", "notseen_strong2", "notseen_weak", "unknown_a", "unknown_b", "used"]);
}

#[test]
fn users_group_candidates_and_name_namesakes() {
    let mut inv = inventory();
    for host in ["%", "10.%"] {
        inv.accounts.push(crate::model::Account {
            name: AccountName::new("app", host),
            is_role: false,
            locked: false,
            plugin: "mysql_native_password".into(),
            has_password: true,
        });
    }
    let users = Users::new(&inv, &[AccountName::new("app", "%"), AccountName::new("it's", "%")]);
    assert_eq!(users.names().cloned().collect::<Vec<_>>(), ["app", "it's"]);
    assert_eq!(users.sql_list(), "'app', 'it\\'s'");
    assert_eq!(users.shared_name("app").as_deref(), Some("counted per user name: 'app'@'%', 'app'@'10.%' share it"));
    assert_eq!(users.shared_name("it's"), None);
    assert_eq!(Users::new(&inv, &[]).sql_list(), "NULL");
}

#[test]
fn evidence_round_trips_through_json() {
    let c = cand("a", vec![item(Usage::NotSeen, 1)]);
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"usage\":\"not_seen\""), "{json}");
    let back: Candidate = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}
