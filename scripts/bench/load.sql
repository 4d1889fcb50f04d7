-- Bulk-loads the benchmark's accounts and grants into a sandbox server (either flavour).
-- Run by scripts/bench-inventory.sh through the flavour's client, after it has sent:
--
--   SET @accounts = N, @schemas = S, @tables_per_schema = T;      (N a multiple of 20)
--   SET @account_table = 'global_priv' (MariaDB, whose mysql.user is a view) or 'user' (MySQL);
--   CREATE TABLE for bench_s01.t01 .. bench_sSS.tTT, each (id INT PRIMARY KEY, c1 INT, c2 ...);
--   CREATE DATABASE bench_meta and bench_meta.seq (n INT PRIMARY KEY) holding 0 .. 10*N-1
--   (MariaDB: from the sequence engine's seq_0_to_M; MySQL: a recursive CTE).
-- and before it sends scripts/bench/finish.sql (which clones, cleans up and flushes), a
-- flavour-specific GRANT to the monitoring template bench_tpl1@'%'.
--
-- Why not GRANT statements: each one rebuilds the server's in-memory ACL structures, so 100,000
-- of them take many minutes. Instead one real CREATE USER / GRANT per kind of row makes a
-- template row, and multi-row INSERT ... SELECT clones it into the grant tables with only the
-- key columns (host, user, db, table_name) replaced. Every other column (privilege flags, the
-- Priv JSON, authentication, timestamps, grantor) comes from the template, so the rows have
-- exactly the server's own shape. FLUSH PRIVILEGES then loads them all at once.
--
-- What it makes, for N accounts:
--   accounts     app_00000 ...: hosts '%' (40%), '10.0.%' (20%), one 10.x.y.z or 172.16.y.z
--                address (20%), 'localhost' (10%), '192.168.%' (10%). Every 17th is locked;
--                every 25th other one has global PROCESS, REPLICATION CLIENT (and the flavour's
--                extra monitoring privilege). All have a password.
--   table grants exactly 10*N mysql.tables_priv rows: within each group of 10 accounts, 0, 1,
--                2, 3, 5, 8, 12, 15, 24 and 30 (average 10), each on a distinct table; 55%
--                SELECT, 25% SELECT/INSERT/UPDATE/DELETE, 12% with DDL too, 5% SELECT WITH
--                GRANT OPTION, 3% SELECT plus UPDATE (c1) (one mysql.columns_priv row each).
--   schema       every 5th account one schema grant (SELECT; DML and EXECUTE; or ALL) and every
--   grants       20th also SELECT on the pattern `bench\_s1%`: N/5 + N/20 mysql.db rows.

SET SESSION sql_log_bin = 0;
SET SESSION group_concat_max_len = 1048576;

DELIMITER ;;
-- INSERT INTO mysql.<tbl> SELECT <every column> <src>: the key columns come from the generated
-- row `g`, all others from the template row `t`. Does nothing for a table this flavour lacks
-- (global_grants on MariaDB).
CREATE PROCEDURE bench_meta.clone(IN tbl VARCHAR(64), IN src TEXT)
BEGIN
    SET @bench_cols = NULL;
    SELECT GROUP_CONCAT(
               IF(LOWER(COLUMN_NAME) IN ('host', 'user', 'db', 'table_name'),
                  CONCAT('g.', LOWER(COLUMN_NAME)),
                  CONCAT('t.`', COLUMN_NAME, '`'))
               ORDER BY ORDINAL_POSITION SEPARATOR ', ')
      INTO @bench_cols
      FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = tbl;
    IF @bench_cols IS NOT NULL THEN
        SET @bench_sql = CONCAT('INSERT INTO mysql.`', tbl, '` SELECT ', @bench_cols, ' ', src);
        PREPARE bench_stmt FROM @bench_sql;
        EXECUTE bench_stmt;
        DEALLOCATE PREPARE bench_stmt;
    END IF;
END;;
DELIMITER ;

-- Template accounts: 0 plain, 1 monitoring (the caller adds one more privilege), 2 locked.
CREATE USER 'bench_tpl0'@'%' IDENTIFIED BY 'bench-password-0';
CREATE USER 'bench_tpl1'@'%' IDENTIFIED BY 'bench-password-1';
CREATE USER 'bench_tpl2'@'%' IDENTIFIED BY 'bench-password-2' ACCOUNT LOCK;
GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'bench_tpl1'@'%';

-- Template grants, one per kind, all held by bench_tpl0@'%'. Table kind k is on bench_s01.t0<k+1>.
GRANT SELECT ON bench_s01.t01 TO 'bench_tpl0'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON bench_s01.t02 TO 'bench_tpl0'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON bench_s01.t03 TO 'bench_tpl0'@'%';
GRANT SELECT ON bench_s01.t04 TO 'bench_tpl0'@'%' WITH GRANT OPTION;
GRANT SELECT, UPDATE (c1) ON bench_s01.t05 TO 'bench_tpl0'@'%';
GRANT SELECT ON bench_s01.* TO 'bench_tpl0'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON bench_s02.* TO 'bench_tpl0'@'%';
GRANT ALL ON bench_s03.* TO 'bench_tpl0'@'%';
GRANT SELECT ON `bench\_s1%`.* TO 'bench_tpl0'@'%';

-- Accounts: number, name, host, template kind.
CREATE TABLE bench_meta.acct (n INT PRIMARY KEY, user VARCHAR(80), host VARCHAR(255), kind INT);
INSERT INTO bench_meta.acct
SELECT n,
       CONCAT('app_', LPAD(n, 5, '0')),
       CASE n % 10
           WHEN 4 THEN '10.0.%'
           WHEN 5 THEN '10.0.%'
           WHEN 6 THEN CONCAT('10.', 1 + n % 200, '.', (n DIV 200) % 250, '.', 1 + n % 250)
           WHEN 7 THEN CONCAT('172.16.', (n DIV 250) % 250, '.', 1 + n % 250)
           WHEN 8 THEN 'localhost'
           WHEN 9 THEN '192.168.%'
           ELSE '%'
       END,
       CASE WHEN n % 17 = 0 THEN 2 WHEN n % 25 = 0 THEN 1 ELSE 0 END
  FROM bench_meta.seq
 WHERE n < @accounts;

-- Table grants. Rows n = 0 .. 10N-1 come in groups of 100 per 10 accounts; slot k of a group
-- takes rows lo .. hi-1. Slots are permuted per group ((3k + group) mod 10) so that the number
-- of grants does not follow the host pattern. Table j of account a is number (37a + 13j) mod
-- (S*T): distinct for j < 30 because 13 and S*T are coprime (the caller checks).
CREATE TABLE bench_meta.slot (slot INT PRIMARY KEY, lo INT, hi INT);
INSERT INTO bench_meta.slot VALUES
    (0, 0, 0), (1, 0, 1), (2, 1, 3), (3, 3, 6), (4, 6, 11),
    (5, 11, 19), (6, 19, 31), (7, 31, 46), (8, 46, 70), (9, 70, 100);
CREATE TABLE bench_meta.tg (
    host VARCHAR(255), user VARCHAR(80), db VARCHAR(64), table_name VARCHAR(64), kind INT,
    PRIMARY KEY (user, db, table_name));
INSERT INTO bench_meta.tg
SELECT a.host, a.user,
       CONCAT('bench_s', LPAD(x.t DIV @tables_per_schema + 1, 2, '0')),
       CONCAT('t', LPAD(x.t % @tables_per_schema + 1, 2, '0')),
       CASE WHEN x.h < 55 THEN 0 WHEN x.h < 80 THEN 1 WHEN x.h < 92 THEN 2 WHEN x.h < 97 THEN 3 ELSE 4 END
  FROM (SELECT y.acct,
               (y.acct * 37 + y.j * 13) % (@schemas * @tables_per_schema) AS t,
               (y.acct * 7 + y.j * 31) % 100 AS h
          FROM (SELECT s.n DIV 100 * 10 + (k.slot * 3 + s.n DIV 100) % 10 AS acct,
                       s.n % 100 - k.lo AS j
                  FROM bench_meta.seq s
                  JOIN bench_meta.slot k ON s.n % 100 >= k.lo AND s.n % 100 < k.hi
                 WHERE s.n < @accounts * 10) y) x
  JOIN bench_meta.acct a ON a.n = x.acct;

-- Schema grants: account, schema (or pattern), and the template's schema to copy.
CREATE TABLE bench_meta.sg (
    host VARCHAR(255), user VARCHAR(80), db VARCHAR(64), tdb VARCHAR(64),
    PRIMARY KEY (user, db));
INSERT INTO bench_meta.sg
SELECT host, user,
       CONCAT('bench_s', LPAD((n DIV 5) % @schemas + 1, 2, '0')),
       CONCAT('bench_s0', (n DIV 5) % 3 + 1)
  FROM bench_meta.acct
 WHERE n % 5 = 0;
INSERT INTO bench_meta.sg
SELECT host, user, 'bench\\_s1%', 'bench\\_s1%' FROM bench_meta.acct WHERE n % 20 = 0;
