-- Second half of the benchmark load (see scripts/bench/load.sql): clones the template rows
-- into the grant tables, drops the templates and the staging schema, reloads the ACL caches.

SET SESSION sql_log_bin = 0;

-- Accounts (and on MySQL their dynamic privileges), then schema, table and column grants.
CALL bench_meta.clone(@account_table,
    CONCAT('FROM bench_meta.acct g JOIN mysql.`', @account_table,
           '` t ON t.User = CONCAT(''bench_tpl'', g.kind) AND t.Host = ''%'''));
CALL bench_meta.clone('global_grants',
    'FROM bench_meta.acct g JOIN mysql.global_grants t ON t.USER = CONCAT(''bench_tpl'', g.kind) AND t.HOST = ''%''');
CALL bench_meta.clone('db',
    'FROM bench_meta.sg g JOIN mysql.db t ON t.User = ''bench_tpl0'' AND t.Host = ''%'' AND t.Db = g.tdb');
CALL bench_meta.clone('tables_priv',
    'FROM bench_meta.tg g JOIN mysql.tables_priv t ON t.User = ''bench_tpl0'' AND t.Host = ''%''
        AND t.Db = ''bench_s01'' AND t.Table_name = CONCAT(''t0'', g.kind + 1)');
CALL bench_meta.clone('columns_priv',
    'FROM bench_meta.tg g JOIN mysql.columns_priv t ON t.User = ''bench_tpl0'' AND t.Host = ''%''
        AND t.Db = ''bench_s01'' AND t.Table_name = CONCAT(''t0'', g.kind + 1)');

DROP USER 'bench_tpl0'@'%', 'bench_tpl1'@'%', 'bench_tpl2'@'%';
DROP DATABASE bench_meta;
FLUSH PRIVILEGES;
