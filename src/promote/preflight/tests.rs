use super::*;

#[test]
fn mariadb_errant_gtids() {
    // Seen: a write on the replica (server_id 2) after the primary's 0-1-3.
    assert_eq!(mariadb_errant("0-1-3,0-2-4", "0-1-3"), vec!["0-2-4"]);
    // Replayed on the primary with the replica's server_id: no longer errant.
    assert!(mariadb_errant("0-1-3,0-2-4", "0-2-4,0-1-5").is_empty());
    // Behind the primary is fine; ahead on the primary's own server_id is not.
    assert!(mariadb_errant("0-1-3", "0-1-9").is_empty());
    assert_eq!(mariadb_errant("0-1-9,1-1-2", "0-1-3,1-1-2"), vec!["0-1-9"]);
    assert!(mariadb_errant("", "0-1-3").is_empty());
}

fn t(s: &str, n: &str) -> TableName {
    TableName::new(s, n)
}

#[test]
fn table_rules() {
    assert!(table_rule_matches("shop.svc%", &t("shop", "svc_items"), true, false));
    assert!(!table_rule_matches("shop.svc%", &t("shop2", "svc_items"), true, false));
    assert!(table_rule_matches("sh_p.%", &t("shop", "x"), true, false));
    assert!(table_rule_matches("mysql.%", &t("mysql", "user"), true, false));
    assert!(table_rule_matches("Shop.T", &t("shop", "t"), false, true));
    assert!(!table_rule_matches("Shop.T", &t("shop", "t"), false, false));
    assert!(!table_rule_matches("shop", &t("shop", "t"), false, false));
}

#[test]
fn filters_that_drop_the_service_or_grants() {
    let svc = vec![t("shop", "svc_items")];
    let mut targets = svc.clone();
    targets.extend(grant_tables(Flavour::MySql));
    let worst = |f: &Filters| filter_findings(f, &svc, &targets, "1", false).iter().map(|x| x.0).max();
    assert_eq!(worst(&Filters::default()), None);
    let f = Filters { wild_ignore: vec!["shop.svc%".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail));
    let f = Filters { ignore_db: vec!["other".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Warn));
    let f = Filters { ignore_db: vec!["mysql".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail));
    let f = Filters { do_db: vec!["shop".into(), "mysql".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail), "default-database semantics drop grants run elsewhere");
    // Do-table filters must let the service and mysql.% through.
    let f = Filters { wild_do: vec!["shop.%".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail));
    let f = Filters { wild_do: vec!["shop.%".into(), "mysql.%".into()], ..Default::default() };
    assert_eq!(worst(&f), None);
    let f = Filters { ignore_table: vec!["shop.orders".into()], ..Default::default() };
    assert_eq!(worst(&f), None);
    let f = Filters { ignore_server_ids: vec!["1".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail));
    let f = Filters { rewrite_db: vec!["(shop,shop2)".into()], ..Default::default() };
    assert_eq!(worst(&f), Some(Status::Fail));
}

#[test]
fn binlog_filters_rules() {
    let schemas = vec!["shop".to_string(), "mysql".to_string()];
    assert!(binlog_findings(&[], &[], &schemas, false).is_empty());
    assert_eq!(binlog_findings(&["shop".into()], &[], &schemas, false)[0].0, Status::Fail);
    assert_eq!(binlog_findings(&[], &["logs".into()], &schemas, false)[0].0, Status::Warn);
    assert_eq!(binlog_findings(&[], &["Shop".into()], &schemas, true)[0].0, Status::Fail);
}

fn inventory(objects: crate::model::inventory::Objects) -> Inventory {
    Inventory {
        objects,
        ..Inventory::empty(crate::db::ServerInfo {
            flavour: Flavour::MySql,
            version: crate::db::Version::new(9, 7, 4),
            version_string: "9.7.4".into(),
            version_comment: String::new(),
            managed: None,
            lower_case_table_names: 0,
            partial_revokes: false,
        })
    }
}

#[test]
fn boundary_crossings() {
    use crate::model::inventory::{ForeignKey, Objects, Routine, Security, Table, Trigger, View};
    let table = |n: &str| Table { name: t("shop", n), is_view: false };
    let view = |n: &str, def: &str| View { name: t("shop", n), definer: None, security: Security::Definer, definition: def.into() };
    let proc_ = |n: &str, body: &str| Routine {
        kind: crate::model::RoutineKind::Procedure,
        schema: "shop".into(),
        name: n.into(),
        definer: None,
        security: Security::Definer,
        body: body.into(),
    };
    let base = Objects {
        schemas: vec!["shop".into()],
        tables: ["svc_items", "svc_notes", "orders", "svc_v", "report"].iter().map(|n| table(n)).collect(),
        ..Default::default()
    };
    let svc = vec![t("shop", "svc_items"), t("shop", "svc_notes"), t("shop", "svc_v")];
    let run = |o: Objects| boundary(&inventory(o), &svc);
    // Inside the service, or outside it, or reading system tables: fine.
    let mut o = base.clone();
    o.views.push(view("svc_v", "select `shop`.`svc_items`.`id` from `shop`.`svc_items` join svc_notes using (id)"));
    o.routines.push(proc_("p_other", "BEGIN SELECT * FROM orders; SELECT * FROM mysql.user; END"));
    o.foreign_keys.push(ForeignKey {
        name: "fk_in".into(),
        child: t("shop", "svc_notes"),
        parent: t("shop", "svc_items"),
        on_delete: "RESTRICT".into(),
        on_update: "RESTRICT".into(),
    });
    assert_eq!(run(o.clone()).status, Status::Pass, "{:?}", run(o.clone()));
    // A view outside reading a service view; a procedure calling one that reads the
    // service; a trigger on a service table writing elsewhere; a foreign key across.
    let mut x = o.clone();
    x.views.push(view("report", "select * from `shop`.`orders` join `shop`.`svc_v` using (id)"));
    x.routines.push(proc_("p_svc", "SELECT COUNT(*) FROM svc_items"));
    x.routines.push(proc_("p_calls", "BEGIN CALL p_svc(); INSERT INTO orders VALUES (1); END"));
    x.triggers.push(Trigger {
        schema: "shop".into(),
        name: "tr".into(),
        table: t("shop", "svc_items"),
        event: "INSERT".into(),
        definer: None,
        body: "INSERT INTO orders VALUES (NEW.id)".into(),
    });
    x.foreign_keys.push(ForeignKey {
        name: "fk_out".into(),
        child: t("shop", "svc_items"),
        parent: t("shop", "orders"),
        on_delete: "CASCADE".into(),
        on_update: "RESTRICT".into(),
    });
    let c = run(x);
    assert_eq!(c.status, Status::Fail);
    for needle in ["view `shop`.`report`", "procedure `shop`.`p_calls`", "trigger `shop`.`tr`", "`fk_out`"] {
        assert!(c.detail.contains(needle), "{needle} in {}", c.detail);
    }
    assert!(!c.detail.contains("p_svc`") && !c.detail.contains("p_other") && !c.detail.contains("fk_in"), "{}", c.detail);
}

#[test]
fn worst_status_wins() {
    let c = Check::from_findings("x", vec![(Status::Warn, "a".into()), (Status::Fail, "b".into())], "ok");
    assert_eq!((c.status, c.detail.as_str()), (Status::Fail, "a; b"));
    assert_eq!(Check::from_findings("x", vec![], "ok").status, Status::Pass);
    assert!(refuses(&[c]));
}
