//! Sync-back's row writer on real servers, both flavours (issue 16; gh-ost #1633): with a
//! secondary unique key on the service's table, swaps of unique values, a key change, a
//! `REPLACE` clashing on both keys and a delete-then-reinsert of a unique value are applied
//! exactly (the copy equals the new table). Then a row changed on the copy behind sync-back's
//! back: the next update of it stops sync-back with a message naming the table and the key
//! (no other row data), and nothing of that transaction is applied, its position included;
//! likewise an insert whose key is already on the copy.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // prints what sync-back said

#[macro_use]
mod support;
#[path = "support/syncback.rs"]
mod common;

use common::*;
use mysql_async::prelude::*;
use privfence::db::Flavour;
use privfence::promote::run::Options;
use privfence::sandbox::Sandbox;
use std::time::Duration;
use support::*;

const ROW: &str = "SELECT CONCAT_WS('|', id, v, n, at) FROM svc_db.";

async fn on_new(sb: &Sandbox, stmts: &[&str]) {
    let mut c = support::replica(sb).conn().await.unwrap();
    for s in stmts {
        c.query_drop(*s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    c.disconnect().await.ok();
}

async fn assert_copy_equal(sb: &Sandbox, what: &str) {
    let new = rows(support::replica(sb), &format!("{ROW}items ORDER BY id")).await;
    let old = rows(&sb.primary, &format!("{ROW}_items_pf_archived ORDER BY id")).await;
    let missing: Vec<&String> = new.iter().filter(|r| !old.contains(r)).take(5).collect();
    let extra: Vec<&String> = old.iter().filter(|r| !new.contains(r)).take(5).collect();
    assert!(new == old, "{what}: the copy differs; missing {missing:?}, extra {extra:?}");
}

async fn position(sb: &Sandbox) -> Vec<String> {
    rows(&sb.primary, "SELECT CONCAT_WS(' ', file, pos, IFNULL(gtid, '-'), transactions, rows_applied) FROM privfence.syncback_position")
        .await
}

async fn writer_is_exact(flavour: Flavour) {
    let (sb, dir) = pair_with_service(flavour).await;
    // A secondary unique key on the service's table, on both servers (replicated).
    admin_exec(&sb, &["UPDATE svc_db.items SET v = CONCAT('v', id)".into(), "ALTER TABLE svc_db.items ADD UNIQUE KEY uv (v)".into()]).await;
    sb.wait_replica_caught_up(Duration::from_secs(30)).await.unwrap();
    let opts = Options { yes: true, archive_watch: Duration::from_millis(200), ..Options::default() };
    promote(&sb, dir.path(), opts).await.expect("promotion");
    let cnf = syncback_account(&sb, dir.path()).await;
    on_new(
        &sb,
        &[
            // A swap of unique values through a temporary one, in one transaction.
            "BEGIN",
            "UPDATE svc_db.items SET v = 'tmp' WHERE id = 1",
            "UPDATE svc_db.items SET v = 'v1' WHERE id = 2",
            "UPDATE svc_db.items SET v = 'v2' WHERE id = 1",
            "COMMIT",
            // A unique value moves to a new row.
            "DELETE FROM svc_db.items WHERE id = 3",
            "INSERT INTO svc_db.items VALUES (3000, 'v3', 1, NOW(6))",
            // A primary key change.
            "UPDATE svc_db.items SET id = 5000 WHERE id = 4",
            // A REPLACE clashing with one row on the primary key and another on the unique key.
            "REPLACE INTO svc_db.items VALUES (6, 'v7', 9, NOW(6))",
            // Many rows in one statement, then a unique value rotated across them.
            "INSERT INTO svc_db.items SELECT id + 10000, CONCAT('w', id), n, at FROM svc_db.items WHERE id BETWEEN 20 AND 60",
            "UPDATE svc_db.items SET v = CONCAT('r', v) WHERE id BETWEEN 10020 AND 10060",
            "DELETE FROM svc_db.items WHERE id BETWEEN 10030 AND 10040",
        ],
    )
    .await;
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "2s"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{flavour}: sync-back applies the unique-key workload: {}", text(&o));
    assert_copy_equal(&sb, "unique-key workload").await;

    // A row changed on the copy behind sync-back's back, then updated on the new server in a
    // transaction that also inserts a row.
    admin_exec(&sb, &["UPDATE svc_db._items_pf_archived SET id = 90000 WHERE id = 10".into()]).await;
    let before = position(&sb).await;
    on_new(
        &sb,
        &[
            "BEGIN",
            "INSERT INTO svc_db.items VALUES (2000, 'secret-2000', 1, NOW(6))",
            "UPDATE svc_db.items SET n = n + 1 WHERE id = 10",
            "COMMIT",
        ],
    )
    .await;
    for attempt in 0..2 {
        let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "2s"]).output().unwrap();
        let t = text(&o);
        println!("{flavour}: attempt {attempt}: {t}");
        assert_eq!(o.status.code(), Some(2), "{flavour}: a diverged copy stops sync-back: {t}");
        assert!(
            t.contains("diverged") && t.contains("_items_pf_archived") && t.contains("(id) = (10)") && t.contains("verify"),
            "{flavour}: the message names the table, the key and what to do: {t}"
        );
        assert!(!t.contains("secret-2000") && !t.contains("v10"), "{flavour}: no other row data in the message: {t}");
    }
    let got = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db._items_pf_archived WHERE id = 2000").await;
    assert!(got.is_empty(), "{flavour}: nothing of the stopped transaction was applied");
    assert_eq!(position(&sb).await, before, "{flavour}: the position did not move");

    // Put the row back: sync-back continues. Then an insert whose key is already on the copy.
    admin_exec(&sb, &["UPDATE svc_db._items_pf_archived SET id = 10 WHERE id = 90000".into()]).await;
    admin_exec(&sb, &["INSERT INTO svc_db._items_pf_archived VALUES (2001, 'x', 1, NOW(6))".into()]).await;
    on_new(&sb, &["INSERT INTO svc_db.items VALUES (2001, 'secret-2001', 1, NOW(6))"]).await;
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "2s"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{flavour}: a duplicate key stops sync-back: {t}");
    assert!(t.contains("(id) = (2001)") && !t.contains("secret-2001"), "{flavour}: names the key only: {t}");
    let got = rows(&sb.primary, "SELECT CAST(id AS CHAR) FROM svc_db._items_pf_archived WHERE id = 2000").await;
    // The repaired transaction and the clashing insert came in one batch: neither is applied.
    assert!(got.is_empty(), "{flavour}: nothing of the stopped batch was applied");
    admin_exec(&sb, &["DELETE FROM svc_db._items_pf_archived WHERE id = 2001".into()]).await;
    let o = syncback_cmd(&sb, dir.path(), &cnf, &["--exit-when-idle", "2s"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{flavour}: resynced, sync-back continues: {}", text(&o));
    assert_copy_equal(&sb, "after the divergences were repaired").await;
    sb.destroy().unwrap();
}

both_flavours!(sync_back_applies_exactly_and_stops_on_divergence, writer_is_exact);
