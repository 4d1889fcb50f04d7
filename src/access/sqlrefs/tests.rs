//! Table-driven tests of [`extract`], one construct per test: queries and writes here, stored
//! program bodies, view definitions, dynamic SQL and diagnostics in `bodies`.

use super::*;

mod bodies;

/// Default schema of every case.
const D: &str = "d";

/// `schema.name:op+op` per table, in output order.
fn show(r: &BodyRefs) -> Vec<String> {
    let ops = |t: &TableRef| t.ops.iter().map(|o| o.privilege().to_lowercase()).collect::<Vec<_>>().join("+");
    r.tables.iter().map(|t| format!("{}.{}:{}", t.schema, t.name, ops(t))).collect()
}

/// Each body must give exactly these tables and leave nothing unresolved.
fn check(cases: &[(&str, &[&str])]) {
    for (body, want) in cases {
        let r = extract(body, D);
        assert_eq!(show(&r), *want, "body: {body}");
        assert!(r.is_complete(), "body: {body}: {:?}", r.unresolved);
    }
}

/// `(schema, name)` pairs, for names whose rendering would be ambiguous.
fn names(body: &str) -> Vec<(String, String)> {
    extract(body, D).tables.into_iter().map(|t| (t.schema, t.name)).collect()
}

fn routines(body: &str) -> Vec<String> {
    let kind = |k: RoutineKind| if k == RoutineKind::Procedure { "proc" } else { "func" };
    extract(body, D).routines.iter().map(|r| format!("{} {}.{}", kind(r.kind), r.schema, r.name)).collect()
}

fn unresolved(body: &str) -> Vec<String> {
    extract(body, D).unresolved
}

#[test]
fn from_and_join_variants() {
    check(&[
        ("SELECT * FROM t", &["d.t:select"]),
        ("select a from t1, t2 AS x, t3 y where x.a = y.b", &["d.t1:select", "d.t2:select", "d.t3:select"]),
        (
            "SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id) RIGHT OUTER JOIN e ON 1 \
             CROSS JOIN f NATURAL JOIN g NATURAL LEFT OUTER JOIN h STRAIGHT_JOIN i INNER JOIN j ON 1",
            &["d.a:select", "d.b:select", "d.c:select", "d.e:select", "d.f:select", "d.g:select", "d.h:select", "d.i:select", "d.j:select"],
        ),
        ("SELECT STRAIGHT_JOIN * FROM a STRAIGHT_JOIN b ON 1", &["d.a:select", "d.b:select"]),
        ("SELECT * FROM (a, b) JOIN ((c JOIN e ON 1)) ON 1", &["d.a:select", "d.b:select", "d.c:select", "d.e:select"]),
        ("select 1 from dual", &[]),
        ("SELECT 1 + 2", &[]),
    ]);
}

#[test]
fn index_hints_and_partitions_do_not_end_the_list() {
    check(&[
        (
            "SELECT * FROM t1 USE INDEX (i1) FORCE INDEX FOR JOIN (i2), t2 IGNORE KEY FOR ORDER BY (i3) WHERE 1",
            &["d.t1:select", "d.t2:select"],
        ),
        ("SELECT * FROM t PARTITION (p0, p1) AS x, u", &["d.t:select", "d.u:select"]),
        ("SELECT * FROM t1 FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01', t2", &["d.t1:select", "d.t2:select"]),
        ("SELECT * FROM {OJ t1 LEFT OUTER JOIN t2 ON t1.a = t2.a}, t3", &["d.t1:select", "d.t2:select", "d.t3:select"]),
    ]);
}

#[test]
fn qualified_names() {
    check(&[
        ("SELECT * FROM db.t", &["db.t:select"]),
        ("SELECT * FROM `db`.`t`", &["db.t:select"]),
        ("SELECT * FROM `db`.t JOIN db2 . `u` ON 1", &["db.t:select", "db2.u:select"]),
        ("SELECT t.from, t.select FROM db.`select`, t", &["d.t:select", "db.select:select"]),
    ]);
}

#[test]
fn hostile_names_come_out_exactly() {
    let pair = |s: &str, n: &str| (s.to_string(), n.to_string());
    assert_eq!(names("SELECT * FROM `we``ird`.`t a b`"), [pair("we`ird", "t a b")]);
    assert_eq!(names("SELECT * FROM `my%db`.`x_y`"), [pair("my%db", "x_y")]);
    assert_eq!(names("SELECT * FROM `ünï`.`表`"), [pair("ünï", "表")]);
    assert_eq!(names("SELECT * FROM ünï.表"), [pair("ünï", "表")]);
    assert_eq!(names("SELECT * FROM `a.b`.`c.d`"), [pair("a.b", "c.d")]);
    assert_eq!(names(r#"SELECT * FROM `it's "q"\`"#), [pair(D, r#"it's "q"\"#)]);
    assert_eq!(names("SELECT * FROM 1abc, $t, `-- x`"), [pair(D, "$t"), pair(D, "-- x"), pair(D, "1abc")]);
}

#[test]
fn column_references_are_not_tables() {
    check(&[
        ("SELECT t.col, db.t.col, NEW.x FROM t WHERE db.t.col = 1", &["d.t:select"]),
        ("SET NEW.total = NEW.qty * OLD.price", &[]),
        ("INSERT INTO audit (id, old_v, new_v) VALUES (OLD.id, OLD.v, NEW.v)", &["d.audit:insert"]),
    ]);
}

#[test]
fn subqueries_in_any_clause() {
    check(&[
        (
            "SELECT (SELECT MAX(x) FROM a) FROM b WHERE c1 IN (SELECT y FROM c) \
             AND EXISTS (SELECT 1 FROM e WHERE e.k = b.k) GROUP BY z \
             HAVING COUNT(*) > (SELECT COUNT(*) FROM f) ORDER BY (SELECT 1 FROM g LIMIT 1)",
            &["d.a:select", "d.b:select", "d.c:select", "d.e:select", "d.f:select", "d.g:select"],
        ),
        ("SELECT * FROM a JOIN b ON b.id = (SELECT MIN(id) FROM c), e", &["d.a:select", "d.b:select", "d.c:select", "d.e:select"]),
        ("SELECT * FROM a UNION ALL SELECT * FROM b EXCEPT SELECT * FROM c", &["d.a:select", "d.b:select", "d.c:select"]),
    ]);
}

#[test]
fn cte_names_are_not_tables() {
    check(&[
        ("WITH c AS (SELECT * FROM t) SELECT * FROM c JOIN u ON 1", &["d.t:select", "d.u:select"]),
        (
            "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5), \
             s AS (SELECT * FROM v) SELECT * FROM r, s, db.r",
            &["d.v:select", "db.r:select"],
        ),
        ("WITH c AS (SELECT id FROM t) UPDATE u JOIN c ON u.id = c.id SET u.x = 1", &["d.t:select", "d.u:update"]),
        // CTE names are matched exactly: a differently-cased reference is kept (the safe side).
        ("WITH c AS (SELECT 1) SELECT * FROM C", &["d.C:select"]),
        ("SELECT a FROM t GROUP BY a WITH ROLLUP", &["d.t:select"]),
    ]);
}

#[test]
fn cte_scope_is_conservative() {
    check(&[
        // Without RECURSIVE, a CTE's own name inside its body is the base table.
        ("WITH t AS (SELECT * FROM t WHERE x) SELECT * FROM t", &["d.t:select"]),
        ("WITH t AS (SELECT 1) SELECT * FROM u", &["d.u:select"]),
        // A CTE declared in a subquery does not hide a table of that name outside it.
        ("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) x JOIN c ON 1", &["d.c:select"]),
        ("SELECT * FROM c WHERE x IN (WITH c AS (SELECT 1) SELECT * FROM c)", &["d.c:select"]),
    ]);
    assert!(extract("WITH t AS (SELECT 1) SELECT * FROM t", D).tables.is_empty());
}

#[test]
fn derived_tables_and_table_functions() {
    check(&[
        ("SELECT * FROM (SELECT * FROM a) AS x JOIN b ON 1, (SELECT 1 FROM c) y", &["d.a:select", "d.b:select", "d.c:select"]),
        ("SELECT * FROM ((SELECT * FROM a) UNION (SELECT * FROM b)) x", &["d.a:select", "d.b:select"]),
        ("SELECT * FROM t, JSON_TABLE(t.doc, '$[*]' COLUMNS (id INT PATH '$.id')) AS jt", &["d.t:select"]),
        ("SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.x = a.x) AS l", &["d.a:select", "d.b:select"]),
        ("SELECT * FROM (VALUES ROW(1), ROW(2)) AS v", &[]),
        ("SELECT * FROM (TABLE a) x", &["d.a:select"]),
    ]);
}

#[test]
fn select_into_a_variable_is_not_a_table() {
    check(&[
        ("SELECT a INTO @v FROM t", &["d.t:select"]),
        ("SELECT a, b INTO v1, v2 FROM t WHERE id = 1", &["d.t:select"]),
        ("SELECT a FROM t INTO @v", &["d.t:select"]),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", &["d.t:select"]),
        ("FETCH c INTO a, b", &[]),
    ]);
}

#[test]
fn update_targets() {
    check(&[
        ("UPDATE t SET a = a + 1", &["d.t:update"]),
        ("UPDATE LOW_PRIORITY IGNORE db.t AS x SET x.a = 1 WHERE x.id IN (SELECT id FROM u)", &["d.u:select", "db.t:update"]),
        ("UPDATE a JOIN b ON a.id = b.id SET a.x = b.y", &["d.a:update", "d.b:select"]),
        ("UPDATE a, b AS bb SET a.x = 1, bb.y = (SELECT 2 FROM c)", &["d.a:update", "d.b:update", "d.c:select"]),
        ("UPDATE a JOIN b ON 1 SET d.a.x = b.y", &["d.a:update", "d.b:select"]),
        ("UPDATE t SET a = (SELECT MAX(a) FROM u) ORDER BY id LIMIT 1", &["d.t:update", "d.u:select"]),
        ("UPDATE t FOR PORTION OF p FROM '2001-01-01' TO '2002-01-01' SET a = 1", &["d.t:update"]),
        ("UPDATE t1, (SELECT id FROM s) AS x SET t1.a = x.b WHERE t1.id = x.id", &["d.s:select", "d.t1:update"]),
    ]);
}

#[test]
fn update_targets_fall_back_to_every_table() {
    check(&[
        ("UPDATE a, b SET x = 1", &["d.a:update", "d.b:update"]),
        ("UPDATE a JOIN b ON 1 SET zz.x = 1", &["d.a:update", "d.b:update"]),
    ]);
}

#[test]
fn insert_forms() {
    check(&[
        ("INSERT INTO t VALUES (1, 'a')", &["d.t:insert"]),
        ("INSERT t (a, b) VALUES (1, 2), (3, 4)", &["d.t:insert"]),
        ("INSERT LOW_PRIORITY IGNORE INTO db.t SET a = 1", &["db.t:insert"]),
        ("INSERT INTO t (a) SELECT a FROM u WHERE a > 0", &["d.t:insert", "d.u:select"]),
        ("INSERT INTO t TABLE u", &["d.t:insert", "d.u:select"]),
        ("INSERT INTO t WITH c AS (SELECT * FROM u) SELECT * FROM c", &["d.t:insert", "d.u:select"]),
    ]);
}

#[test]
fn insert_on_duplicate_key_update() {
    check(&[
        ("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) + 1", &["d.t:insert+update"]),
        ("INSERT INTO t SELECT * FROM u ON DUPLICATE KEY UPDATE t.b = u.b, c = 2", &["d.t:insert+update", "d.u:select"]),
        ("INSERT INTO t VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a", &["d.t:insert+update"]),
    ]);
}

#[test]
fn replace_statement_and_functions() {
    check(&[
        ("REPLACE INTO t VALUES (1)", &["d.t:insert+delete"]),
        ("REPLACE t SELECT * FROM u", &["d.t:insert+delete", "d.u:select"]),
        ("SELECT REPLACE(a, 'x', 'y'), INSERT(a, 1, 2, 'z') FROM t", &["d.t:select"]),
        ("CREATE OR REPLACE TABLE t2 (id INT)", &["d.t2:create"]),
    ]);
    assert!(routines("SELECT REPLACE(a, 'x', 'y'), INSERT(a, 1, 2, 'z') FROM t").is_empty());
}

#[test]
fn delete_single_table() {
    check(&[
        ("DELETE FROM t WHERE id = 1", &["d.t:delete"]),
        ("DELETE LOW_PRIORITY QUICK IGNORE FROM db.t WHERE id IN (SELECT id FROM u)", &["d.u:select", "db.t:delete"]),
        ("DELETE FROM t AS x WHERE x.id = 1 ORDER BY id LIMIT 1", &["d.t:delete"]),
        ("DELETE HISTORY FROM t BEFORE SYSTEM_TIME '2020-01-01'", &["d.t:delete"]),
        ("DELETE FROM t FOR PORTION OF p FROM '2001-01-01' TO '2002-01-01'", &["d.t:delete"]),
    ]);
}

#[test]
fn delete_multi_table() {
    check(&[
        ("DELETE a, b FROM a JOIN b ON a.id = b.id JOIN c ON c.id = a.id", &["d.a:delete", "d.b:delete", "d.c:select"]),
        ("DELETE x FROM t1 AS x JOIN t2 y ON x.id = y.id", &["d.t1:delete", "d.t2:select"]),
        ("DELETE x.*, y.* FROM t1 x, t2 y WHERE 1", &["d.t1:delete", "d.t2:delete"]),
        ("DELETE FROM a, b USING a JOIN b JOIN c WHERE 1", &["d.a:delete", "d.b:delete", "d.c:select"]),
        ("DELETE FROM x USING t1 AS x JOIN t2 ON 1", &["d.t1:delete", "d.t2:select"]),
        ("DELETE db.t FROM db.t JOIN u ON 1", &["d.u:select", "db.t:delete"]),
        // A target matching no table of the list is recorded as written.
        ("DELETE ghost FROM t", &["d.ghost:delete", "d.t:select"]),
    ]);
}

#[test]
fn create_and_drop_table() {
    check(&[
        (
            "CREATE TABLE t (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES db.parent (id) \
             ON DELETE CASCADE ON UPDATE CASCADE)",
            &["d.t:create", "db.parent:references"],
        ),
        ("CREATE TEMPORARY TABLE IF NOT EXISTS tmp AS SELECT * FROM src", &["d.src:select", "d.tmp:insert+create"]),
        ("CREATE TABLE t2 LIKE t1", &["d.t1:select", "d.t2:create"]),
        ("CREATE TABLE t2 (LIKE t1)", &["d.t1:select", "d.t2:create"]),
        ("DROP TEMPORARY TABLE IF EXISTS a, db.b", &["d.a:drop", "db.b:drop"]),
        ("CREATE UNIQUE INDEX i ON t (a)", &["d.t:index"]),
        ("DROP INDEX i ON db.t", &["db.t:index"]),
    ]);
}

#[test]
fn alter_rename_and_truncate() {
    check(&[
        ("ALTER TABLE t ADD COLUMN c INT, ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (id)", &["d.p:references", "d.t:alter"]),
        ("ALTER TABLE t RENAME TO t_old", &["d.t:drop+alter", "d.t_old:insert+create"]),
        ("ALTER TABLE t RENAME COLUMN a TO b", &["d.t:alter"]),
        ("RENAME TABLE a TO b, db.c TO db.e", &["d.a:drop+alter", "d.b:insert+create", "db.c:drop+alter", "db.e:insert+create"]),
        ("TRUNCATE TABLE t", &["d.t:delete+drop"]),
        ("truncate db.t", &["db.t:delete+drop"]),
        ("SELECT TRUNCATE(x, 2), truncate FROM t", &["d.t:select"]),
    ]);
}

#[test]
fn load_data() {
    check(&[
        ("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ','", &["d.t:insert"]),
        ("LOAD DATA INFILE 'x' REPLACE INTO TABLE db.t", &["db.t:insert+delete"]),
        ("LOAD XML INFILE 'x' IGNORE INTO TABLE t ROWS IDENTIFIED BY '<r>'", &["d.t:insert"]),
    ]);
}

#[test]
fn table_statement_and_maintenance() {
    check(&[
        ("TABLE t", &["d.t:select"]),
        ("TABLE db.t ORDER BY a LIMIT 1", &["db.t:select"]),
        ("SELECT * FROM a UNION TABLE b", &["d.a:select", "d.b:select"]),
        ("ANALYZE TABLE a, b", &["d.a:select+insert", "d.b:select+insert"]),
        ("OPTIMIZE NO_WRITE_TO_BINLOG TABLE a", &["d.a:select+insert"]),
        ("CHECK TABLE a QUICK", &["d.a:select"]),
        ("LOCK TABLES a READ, b AS x WRITE", &["d.a:select", "d.b:select"]),
    ]);
}
