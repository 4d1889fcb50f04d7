//! The demo's sample monolith: a `shop` schema in which a media service's tables are still
//! reachable by other services' accounts through every kind of path privfence analyses.
//!
//! Loaded only into sandboxes (it creates accounts with throwaway passwords).

use crate::db::Flavour;

/// The example policy for the sample (also checked in as `policies/shop-media.toml`).
pub const POLICY: &str = include_str!("../policies/shop-media.toml");

/// The media service's tables, as a pattern.
pub const SERVICE_TABLES: &str = "shop.media_*";

/// Statements that build the sample, in order. `{default_role}` differs by flavour.
pub fn sample_sql(flavour: Flavour) -> Vec<String> {
    let set_default = |role: &str, user: &str| match flavour {
        Flavour::MariaDb => format!("SET DEFAULT ROLE {role} FOR {user}"),
        Flavour::MySql => format!("SET DEFAULT ROLE {role} TO {user}"),
    };
    let mut v: Vec<String> = [
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2)) ENGINE=InnoDB",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB",
        "CREATE TABLE shop.media_attachments (id INT PRIMARY KEY, order_id INT, url VARCHAR(200), \
         FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE shop.media_variants (id INT PRIMARY KEY, attachment_id INT, size VARCHAR(20)) ENGINE=InnoDB",
        "CREATE USER 'svc_media'@'%' IDENTIFIED BY 'demo-media-pw'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON shop.media_attachments TO 'svc_media'@'%'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON shop.media_variants TO 'svc_media'@'%'",
        "CREATE USER 'svc_orders'@'%' IDENTIFIED BY 'demo-orders-pw'",
        "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON shop.* TO 'svc_orders'@'%'",
        "CREATE USER 'svc_reports'@'%' IDENTIFIED BY 'demo-reports-pw'",
        "GRANT SELECT ON `sho%`.* TO 'svc_reports'@'%'",
        "CREATE USER 'svc_billing'@'%' IDENTIFIED BY 'demo-billing-pw'",
        "GRANT SELECT, DELETE ON shop.orders TO 'svc_billing'@'%'",
        "CREATE ROLE media_reader",
        "GRANT SELECT ON shop.media_attachments TO media_reader",
        "CREATE USER 'svc_search'@'%' IDENTIFIED BY 'demo-search-pw'",
        "GRANT media_reader TO 'svc_search'@'%'",
        "CREATE USER 'bi'@'%' IDENTIFIED BY 'demo-bi-pw'",
        "CREATE DEFINER='svc_orders'@'%' SQL SECURITY DEFINER VIEW shop.order_media AS \
         SELECT o.id, o.total, m.url FROM shop.orders o JOIN shop.media_attachments m ON m.order_id = o.id",
        "GRANT SELECT ON shop.order_media TO 'bi'@'%'",
        "CREATE USER 'cron'@'localhost' IDENTIFIED BY 'demo-cron-pw'",
        "CREATE DEFINER='svc_orders'@'%' PROCEDURE shop.purge_old_media() SQL SECURITY DEFINER \
         DELETE FROM shop.media_variants WHERE id < 0",
        "GRANT EXECUTE ON PROCEDURE shop.purge_old_media TO 'cron'@'localhost'",
        "CREATE USER 'backup'@'localhost' IDENTIFIED BY 'demo-backup-pw'",
        "GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO 'backup'@'localhost'",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(set_default("media_reader", "'svc_search'@'%'"));
    v
}
