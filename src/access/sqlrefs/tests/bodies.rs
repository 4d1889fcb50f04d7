//! Tests of whole bodies (views, procedures, functions, triggers), dynamic SQL, diagnostics,
//! [`split_statements`] and the serialized shape.

use super::*;

#[test]
fn mariadb_canonical_view_definition() {
    let body = "select `shop`.`media`.`id` AS `id`,`o`.`x` AS `x` from (`shop`.`media` join `shop`.`orders` `o` \
                on(`o`.`id` = `shop`.`media`.`id`)) where `shop`.`media`.`id` > 1";
    let r = extract(body, "other");
    assert_eq!(show(&r), ["shop.media:select", "shop.orders:select"]);
    assert!(r.is_complete() && r.routines.is_empty(), "{r:?}");
    check(&[(
        "select `t`.`a` AS `a`,count(0) AS `n` from (`shop`.`t` left join `shop`.`u` on((`u`.`a` = `t`.`a`))) group by `t`.`a`",
        &["shop.t:select", "shop.u:select"],
    )]);
}

#[test]
fn mysql_view_definition_with_executable_comments() {
    check(&[
        (
            "/*!50001 select `o`.`id` AS `id` from (`shop`.`orders` `o` join `shop`.`items` `i` on((`i`.`order_id` = `o`.`id`))) */",
            &["shop.items:select", "shop.orders:select"],
        ),
        ("select 1 /*!80000 , (select 2 from `shop`.`hidden`) */ from `shop`.`t`", &["shop.hidden:select", "shop.t:select"]),
        ("select 1 /*M!100301 from `shop`.`m` */", &["shop.m:select"]),
        ("select 1 from t /* from secret */ -- from other\n# from third", &["d.t:select"]),
    ]);
}

#[test]
fn procedure_body() {
    let body = r#"BEGIN
  DECLARE done INT DEFAULT FALSE;
  DECLARE v_id INT;
  DECLARE cur CURSOR FOR SELECT id FROM shop.orders WHERE status = 'new';
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
      ROLLBACK;
      INSERT INTO audit.errors (msg) VALUES ('failed; FROM nowhere');
    END;
  SET @total = (SELECT COUNT(*) FROM shop.items);
  OPEN cur;
  read_loop: LOOP
    FETCH cur INTO v_id;
    IF done THEN LEAVE read_loop; END IF;
    UPDATE shop.orders o JOIN shop.customers c ON c.id = o.customer_id
      SET o.status = 'seen' WHERE o.id = v_id;
  END LOOP;
  CLOSE cur;
  WHILE (SELECT COUNT(*) FROM queue) > 0 DO
    DELETE FROM queue LIMIT 100;
  END WHILE;
  REPEAT SET v_id = v_id - 1; UNTIL v_id <= 0 END REPEAT;
  CASE v_id WHEN 0 THEN INSERT INTO archive SELECT * FROM shop.orders WHERE id = 0;
  ELSE DO 0; END CASE;
  CALL shop.recalc(v_id);
  CALL notify;
  SET @sql = CONCAT('SELECT * FROM ', @tbl);
  PREPARE stmt FROM @sql;
  EXECUTE stmt;
  DEALLOCATE PREPARE stmt;
  IF v_id > 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'bad'; END IF;
END"#;
    let r = extract(body, "app");
    assert_eq!(
        show(&r),
        [
            "app.archive:insert",
            "app.queue:select+delete",
            "audit.errors:insert",
            "shop.customers:select",
            "shop.items:select",
            "shop.orders:select+update",
        ]
    );
    assert_eq!(routines(body), ["proc d.notify", "proc shop.recalc"]);
    assert_eq!(r.unresolved, ["dynamic SQL (PREPARE stmt FROM): @sql"]);
}

#[test]
fn function_body() {
    let body = "BEGIN DECLARE n INT; SELECT COUNT(*) INTO n FROM orders WHERE customer = p_id; \
                RETURN (SELECT name FROM customers WHERE id = p_id) + n + discount(p_id) + util.fx(n); END";
    check(&[(body, &["d.customers:select", "d.orders:select"])]);
    assert_eq!(routines(body), ["func d.discount", "func util.fx"]);
}

#[test]
fn trigger_body_uses_new_and_old() {
    let body = "BEGIN
      IF NEW.qty > (SELECT stock FROM inventory WHERE sku = NEW.sku) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no stock';
      END IF;
      UPDATE inventory SET stock = stock - NEW.qty WHERE sku = NEW.sku;
      INSERT INTO order_log (order_id, old_qty, new_qty) VALUES (NEW.id, OLD.qty, NEW.qty);
    END";
    check(&[(body, &["d.inventory:select+update", "d.order_log:insert"])]);
    assert!(routines(body).is_empty());
}

#[test]
fn calls_and_function_candidates() {
    assert_eq!(routines("CALL p()"), ["proc d.p"]);
    assert_eq!(routines("CALL db.p"), ["proc db.p"]);
    assert_eq!(routines("CALL `we``ird`.`p q`(1)"), ["proc we`ird.p q"]);
    assert_eq!(
        routines("SELECT f(1), db.g(2), `h`(3), COUNT(*), concat('a', 'b'), IF(a, 1, 2), x IN (1) FROM t WHERE (a) AND NOT (b)"),
        ["func d.f", "func d.h", "func db.g"]
    );
    assert!(unresolved("CALL ;").iter().any(|u| u.contains("CALL")));
}

#[test]
fn dynamic_sql_is_unresolved() {
    assert_eq!(unresolved("PREPARE s FROM @q; EXECUTE s"), ["dynamic SQL (PREPARE s FROM): @q"]);
    assert_eq!(
        unresolved("EXECUTE IMMEDIATE CONCAT('DELETE FROM ', t)"),
        ["dynamic SQL (EXECUTE IMMEDIATE): CONCAT ( 'DELETE FROM ' , t )"]
    );
    assert_eq!(unresolved("EXECUTE other USING @a"), ["dynamic SQL: EXECUTE other runs a statement not prepared in this body"]);
    // The table set found so far is still reported.
    assert_eq!(show(&extract("DELETE FROM t; PREPARE s FROM @q", D)), ["d.t:delete"]);
}

#[test]
fn literal_dynamic_sql_is_analysed() {
    check(&[
        ("PREPARE s FROM 'DELETE FROM t WHERE id = ?'; EXECUTE s USING @id; DEALLOCATE PREPARE s", &["d.t:delete"]),
        ("EXECUTE IMMEDIATE 'INSERT INTO log VALUES (''it''''s'')'", &["d.log:insert"]),
        ("DROP PREPARE s", &[]),
    ]);
}

#[test]
fn unreadable_bodies_are_reported() {
    let r = extract("SELECT * FROM a; SELECT 'unterminated FROM b", D);
    assert_eq!(show(&r), ["d.a:select"]);
    assert!(r.unresolved[0].contains("unterminated string literal"), "{:?}", r.unresolved);
    let r = extract("SELECT * FROM t /* never closed", D);
    assert_eq!(show(&r), ["d.t:select"]);
    assert!(r.unresolved[0].contains("unterminated comment"), "{:?}", r.unresolved);
    let r = extract("SELECT * FROM (a JOIN b ON (1)", D);
    assert_eq!(show(&r), ["d.a:select", "d.b:select"]);
    assert!(r.unresolved[0].starts_with("unbalanced parentheses"), "{:?}", r.unresolved);
}

#[test]
fn unparseable_table_positions_are_reported() {
    assert_eq!(unresolved("SELECT * FROM WHERE x = 1"), ["cannot parse table reference near: WHERE x = 1"]);
    assert_eq!(unresolved("SELECT * FROM"), ["cannot parse table reference near: end of statement"]);
    assert_eq!(unresolved("SELECT * FROM a JOIN 'b'"), ["cannot parse table reference near: 'b'"]);
    assert_eq!(unresolved("DELETE FROM a.b.c"), ["cannot parse table reference near: a . b . c"]);
}

#[test]
fn from_as_a_function_argument_keyword() {
    check(&[
        ("SELECT EXTRACT(YEAR FROM d), TRIM(LEADING 'x' FROM s), SUBSTRING(s FROM 2 FOR 3) FROM t", &["d.t:select"]),
        ("SELECT TRIM(BOTH ' ' FROM (SELECT name FROM u LIMIT 1)) FROM t", &["d.t:select", "d.u:select"]),
        ("SELECT NTH_VALUE(x, 2) FROM FIRST OVER w FROM t WINDOW w AS (ORDER BY x)", &["d.t:select"]),
    ]);
}

#[test]
fn dml_words_in_other_clauses() {
    check(&[
        ("SELECT * FROM t FOR UPDATE", &["d.t:select"]),
        ("SELECT * FROM t FOR UPDATE OF t SKIP LOCKED", &["d.t:select"]),
        ("SELECT * FROM t LOCK IN SHARE MODE", &["d.t:select"]),
        ("SELECT * FROM t FOR SHARE NOWAIT", &["d.t:select"]),
    ]);
}

#[test]
fn keywords_ignore_case() {
    check(&[(
        "sElEcT * fRoM a jOiN b On 1; uPdAtE c sEt x = 1; iNsErT iNtO e vAlUeS (1); DeLeTe FrOm g",
        &["d.a:select", "d.b:select", "d.c:update", "d.e:insert", "d.g:delete"],
    )]);
}

#[test]
fn mariadb_sequences_are_tables() {
    check(&[(
        "SELECT NEXT VALUE FOR s1, PREVIOUS VALUE FOR db.s2, NEXTVAL(s3), LASTVAL(s4), SETVAL(s5, 10)",
        &["d.s1:insert", "d.s3:insert", "d.s4:select", "d.s5:insert", "db.s2:select"],
    )]);
}

#[test]
fn statements_not_analysed() {
    let r = extract("GRANT SELECT, UPDATE ON db.t TO 'u'@'%'", D);
    assert!(r.tables.is_empty());
    assert_eq!(r.unresolved.len(), 1);
    assert!(r.unresolved[0].starts_with("statement not analysed: GRANT SELECT"), "{:?}", r.unresolved);
    let r = extract("CREATE VIEW v AS SELECT * FROM t", D);
    assert_eq!(show(&r), ["d.t:select"]);
    assert!(r.unresolved[0].starts_with("statement not analysed: CREATE VIEW v"), "{:?}", r.unresolved);
    assert_eq!(unresolved("SET PASSWORD FOR 'u'@'h' = 'x'").len(), 1);
    assert_eq!(unresolved("RENAME USER a TO b").len(), 1);
    check(&[("SHOW TABLES FROM db", &[])]);
}

#[test]
fn split_statements_at_semicolons() {
    assert_eq!(split_statements("SELECT 1; SELECT ';' -- x;\n; BEGIN SELECT 2; END"), ["SELECT 1", "SELECT ';'", "BEGIN SELECT 2", "END"]);
    assert_eq!(split_statements("/*!50001 select 1 */; select 2;"), ["select 1", "select 2"]);
    assert_eq!(split_statements("SELECT 1; SELECT 'oops; x"), ["SELECT 1", "SELECT 'oops; x"]);
    assert!(split_statements(" ; -- nothing\n").is_empty());
}

#[test]
fn output_shape() {
    let r = extract("UPDATE t SET a = (SELECT 1 FROM u); CALL p", D);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "tables": [
                {"schema": "d", "name": "t", "ops": ["update"]},
                {"schema": "d", "name": "u", "ops": ["select"]},
            ],
            "routines": [{"schema": "d", "name": "p", "kind": "procedure"}],
            "unresolved": [],
        })
    );
    assert_eq!(r.tables[0].table(), TableName::new("d", "t"));
    assert_eq!(Op::References.privilege(), "REFERENCES");
}
