//! Property test of the planner on real servers: random grant sets (wildcard schema patterns,
//! roles with and without default, MariaDB PUBLIC, column grants, hostile names) over a random
//! schema. Invariants: after the forward statements the account is denied every privilege on
//! the service's tables and everything else probes exactly as before; after the inverse the
//! canonical grants (of the account, its roles and PUBLIC) are identical.
//!
//! CI runs a few cases; `PRIVFENCE_PROP_CASES=50` runs more, `PRIVFENCE_PROP_SEED=n` replays one
//! run. The seed is printed first, and every failure names it.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)
#![allow(clippy::print_stdout)] // the seed and child-process results are printed for people

mod support;

use privfence::db::Flavour;
use privfence::model::ident::quote_ident as qi;
use privfence::model::{AccountName, SchemaPattern, TableName};
use privfence::plan::{self, PlanOptions};
use std::net::Ipv4Addr;
use support::*;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn subset(&mut self, xs: &[&'static str]) -> Vec<&'static str> {
        let v: Vec<&str> = xs.iter().copied().filter(|_| self.chance(50)).collect();
        if v.is_empty() {
            vec![xs[self.below(xs.len())]]
        } else {
            v
        }
    }
}

const SCHEMA_STEMS: &[&str] = &["sh_op", "m%x", "q'uo\"te", "ün ï", "b`t"];
const TABLE_NAMES: &[&str] = &["media_1", "media x", "orders", "t_%", "ódd 'q'"];
const TABLE_PRIVS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "CREATE VIEW", "TRIGGER"];
const SCHEMA_ONLY: &[&str] = &["CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE"];

struct Case {
    schema: String,
    tables: Vec<TableName>,
    service: Vec<TableName>,
    sql: Vec<String>,
    account: AccountName,
}

fn case(rng: &mut Rng, flavour: Flavour, tag: &str, n: usize) -> Case {
    let stem = rng.pick(SCHEMA_STEMS);
    let schema = format!("pp{tag}{n}_{stem}");
    let other = format!("pp{tag}{n}_{stem}x");
    let mut tables = Vec::new();
    for t in TABLE_NAMES {
        tables.push(TableName::new(&schema, *t));
    }
    tables.push(TableName::new(&other, "orders"));
    let service: Vec<TableName> = tables.iter().filter(|t| t.schema == schema && t.name.starts_with("media")).cloned().collect();
    let account = AccountName::new(format!("pp{tag}{n}_u"), "%");
    let mut sql = vec![
        format!("CREATE DATABASE {}", qi(&schema)),
        format!("CREATE DATABASE {}", qi(&other)),
        probe_procedure(&schema),
        probe_procedure(&other),
    ];
    for t in &tables {
        sql.push(format!("CREATE TABLE {} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB", t.sql()));
    }
    sql.push(format!("CREATE USER {} IDENTIFIED BY 'pw-{}'", account.sql(), account.user));
    let role = match flavour {
        Flavour::MariaDb => qi(&format!("pp{tag}{n}_r")),
        Flavour::MySql => format!("{}@'%'", qi(&format!("pp{tag}{n}_r"))),
    };
    let mut role_made = false;
    for _ in 0..1 + rng.below(4) {
        let grantee = if rng.chance(25) {
            if !role_made {
                sql.push(format!("CREATE ROLE {role}"));
                sql.push(format!("GRANT {role} TO {}", account.sql()));
                if rng.chance(60) {
                    sql.push(match flavour {
                        Flavour::MariaDb => format!("SET DEFAULT ROLE {role} FOR {}", account.sql()),
                        Flavour::MySql => format!("SET DEFAULT ROLE {role} TO {}", account.sql()),
                    });
                }
                role_made = true;
            }
            role.clone()
        } else {
            account.sql()
        };
        let t = rng.pick(&tables).clone();
        match rng.below(5) {
            0 => sql.push(format!("GRANT {} ON {} TO {grantee}", rng.subset(TABLE_PRIVS).join(", "), t.sql())),
            1 => sql.push(format!("GRANT SELECT (id), UPDATE (v) ON {} TO {grantee}", t.sql())),
            2 => {
                let mut privs = rng.subset(TABLE_PRIVS);
                if rng.chance(50) {
                    privs.extend(rng.subset(SCHEMA_ONLY));
                }
                sql.push(format!("GRANT {} ON {}.* TO {grantee}", privs.join(", "), SchemaPattern::exact(&schema).sql()));
            }
            3 => {
                // A wildcard pattern that matches the service schema (and `other`).
                let pat = match rng.below(3) {
                    0 => format!("{}%", SchemaPattern::exact(&format!("pp{tag}{n}_")).0),
                    1 => format!("pp{tag}{n}_%"),
                    _ => format!("{}_%", &SchemaPattern::exact(&schema).0),
                };
                let mut privs = rng.subset(&["SELECT", "INSERT", "UPDATE", "DELETE"]);
                if rng.chance(40) {
                    privs.extend(rng.subset(SCHEMA_ONLY));
                }
                sql.push(format!("GRANT {} ON {}.* TO {grantee}", privs.join(", "), qi(&pat)));
            }
            _ => {
                if flavour == Flavour::MariaDb && rng.chance(30) {
                    sql.push(format!("GRANT SELECT ON {} TO PUBLIC", t.sql()));
                } else {
                    sql.push(format!("GRANT {} ON {} TO {grantee}", rng.subset(&["SELECT", "INSERT", "DELETE"]).join(", "), t.sql()));
                }
            }
        }
    }
    Case { schema, tables, service, sql, account }
}

/// A failing case in full: its grants, the plan and the inverse.
fn describe(n: usize, c: &Case, p: &plan::Plan) -> String {
    format!(
        "grants of case {n}:\n  {}\nplan:\n  {}\ninverse:\n  {}",
        c.sql.join(";\n  "),
        p.forward().join(";\n  "),
        p.inverse().join(";\n  ")
    )
}

async fn try_exec(sb: &privfence::sandbox::Sandbox, stmts: &[String]) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let mut c = sb.primary.conn().await.map_err(|e| e.to_string())?;
    for s in stmts {
        c.query_drop(s).await.map_err(|e| format!("{s}: {e}"))?;
    }
    c.disconnect().await.ok();
    Ok(())
}

async fn property(flavour: Flavour, tag: &str) {
    let seed: u64 = std::env::var("PRIVFENCE_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    let cases: usize = std::env::var("PRIVFENCE_PROP_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    println!("{flavour}: seed {seed}, {cases} cases (replay with PRIVFENCE_PROP_SEED={seed})");
    let mut rng = Rng(seed);
    let sb = sandbox(flavour);
    prepare_probes(sb).await;
    let mut failures = Vec::new();
    let mut refused = 0usize;
    for n in 0..cases {
        let c = case(&mut rng, flavour, tag, n);
        admin_exec(sb, &c.sql).await;
        let dir = tempfile::tempdir().unwrap();
        let pol = dir.path().join("p.toml");
        let pattern = format!("{}.media*", qi(&c.schema)).replace('\\', "\\\\").replace('"', "\\\"");
        std::fs::write(&pol, format!("[service.media]\ntables = [\"{pattern}\"]\nowners = [\"owner\"]\n")).unwrap();
        let policy = privfence::policy::load(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()).unwrap();
        let (_, inv) = inventory(sb).await;
        let opts = PlanOptions { include_everyone: true, ..Default::default() };
        let p = match plan::build(&inv, &policy, "media", &c.account.sql(), &opts) {
            Ok(p) => p,
            // An honest refusal, listing what the rewrite would change: allowed, but counted.
            Err(e @ plan::PlanError::WouldChange { .. }) => {
                println!("case {n}: refused: {e}");
                refused += 1;
                continue;
            }
            Err(e) => {
                failures.push(format!("seed {seed} case {n}: no plan: {e}\n{:#?}", c.sql));
                continue;
            }
        };
        let who: Vec<AccountName> = inv
            .accounts
            .iter()
            .map(|a| a.name.clone())
            .filter(|a| a.user.starts_with(&format!("pp{tag}{n}_")) || a.user == "PUBLIC")
            .collect();
        let before_grants = canonical(&inv, &who);
        let ip = Ipv4Addr::new(127, 0, 2, 10 + n as u8);
        let before = observe(sb, &c.account, ip, &c.schema, &c.tables).await;
        if let Err(e) = try_exec(sb, &p.forward()).await {
            failures.push(format!("seed {seed} case {n}: forward failed: {e}"));
            failures.push(describe(n, &c, &p));
            break;
        }
        let after = observe(sb, &c.account, ip, &c.schema, &c.tables).await;
        // A declared change: no privilege left in the schema, so it cannot be the default one.
        let no_default_db = p.changes.iter().any(|x| x.detail.contains("default database"));
        if no_default_db {
            let refused = login_from_db(&sb.primary, &c.account.user, &format!("pw-{}", c.account.user), ip, &c.schema).await;
            if !matches!(refused, Err(mysql_async::Error::Server(ref e)) if e.code == 1044) {
                failures.push(format!(
                    "seed {seed} case {n}: the plan says the schema can no longer be the default database, but the login gave {:?}",
                    refused.map(|_| ())
                ));
            }
        }
        for ((name, b), (_, a)) in before.iter().zip(&after) {
            if no_default_db && name.starts_with("default schema") {
                continue;
            }
            let on_service = c.service.iter().any(|t| name.ends_with(&t.to_string()));
            let table_probe = !name.contains("TEMPORARY") && !name.contains("LOCK TABLES") && !name.contains("EXECUTE");
            // Declared: a non-default role's privileges become active at login (gains only).
            let activated = p.changes.iter().any(|x| x.detail.contains("active at every login"));
            if activated && !on_service && b.is_some() && a.is_none() {
                continue;
            }
            if on_service && table_probe && a.is_none() {
                failures.push(format!("seed {seed} case {n}: still allowed after the cut: {name}"));
            } else if !on_service && b.is_none() != a.is_none() {
                failures.push(format!("seed {seed} case {n}: {name} changed from {b:?} to {a:?}"));
            }
        }
        if let Err(e) = try_exec(sb, &p.inverse()).await {
            failures.push(format!("seed {seed} case {n}: inverse failed: {e}"));
        }
        let (_, inv2) = inventory(sb).await;
        let after_grants = canonical(&inv2, &who);
        if before_grants != after_grants {
            failures.push(format!(
                "seed {seed} case {n}: inverse not exact: lost {:?} gained {:?}",
                before_grants.difference(&after_grants).collect::<Vec<_>>(),
                after_grants.difference(&before_grants).collect::<Vec<_>>()
            ));
        }
        if !failures.is_empty() {
            failures.push(describe(n, &c, &p));
            break;
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        refused * 4 <= cases.max(4),
        "{flavour}: seed {seed}: {refused} of {cases} cases refused; the planner should handle most shapes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_random_grant_sets() {
    property(Flavour::MariaDb, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_random_grant_sets() {
    property(Flavour::MySql, "y").await;
}
