//! Output a person (or a script) can read, against real servers, both flavours: `--format tsv`,
//! `--summary`, `--account`/`--exclude-account`, `access --policy --service`, escalations grouped
//! per user; all with the hostile-name corpus (backtick, quotes, `%`, `_`, space, non-ASCII) in
//! user names, schema and table names.
#![allow(clippy::disallowed_methods)] // tests set up servers through the driver (clippy.toml)

#[macro_use]
mod support;

use privfence::db::Flavour;
use privfence::model::ident::{quote_ident as qi, quote_str as qs};
use privfence::report::tsv::unescape;
use serde_json::Value;
use std::process::{Command, Output};
use support::*;

fn privfence(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_privfence"))
        .args(args)
        .env_remove("MYSQL_PWD")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", "/nonexistent")
        .env("COLUMNS", "400")
        .output()
        .expect("run privfence")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A TSV document as rows of unescaped fields keyed by the header; checks every line has as
/// many fields as the header.
fn tsv(o: &Output) -> Vec<std::collections::BTreeMap<String, String>> {
    let s = String::from_utf8(o.stdout.clone()).expect("UTF-8");
    let mut lines = s.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), header.len(), "line {l:?} of\n{s}");
            header.iter().zip(f).map(|(h, v)| (h.to_string(), unescape(v))).collect()
        })
        .collect()
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

struct Names {
    schema: String,
    table: String,
    /// SELECT on the table, from any host.
    hostile: String,
    /// SELECT on the schema, from host `10.0.0._` (a literal host pattern with a wildcard).
    hostile2: String,
    owner: String,
    exempt: String,
    /// CREATE USER on two host rows.
    esc: String,
}

fn names(flavour: Flavour) -> Names {
    let tag = match flavour {
        Flavour::MariaDb => "m",
        Flavour::MySql => "y",
    };
    Names {
        schema: format!("pfr h`ö'st \"{tag}"),
        table: format!("t`a b'c\"ü %_{tag}"),
        hostile: format!("pfr`b'q\"d %_ ü{tag}"),
        hostile2: format!("pfr2 `'\"%_ é{tag}"),
        owner: format!("pfr_own_{tag}"),
        exempt: format!("pfr_ex_{tag}"),
        esc: format!("pfr_esc_{tag}"),
    }
}

async fn setup(sb: &privfence::sandbox::Sandbox, n: &Names) {
    let t = format!("{}.{}", qi(&n.schema), qi(&n.table));
    let mut sql = vec![format!("CREATE DATABASE {}", qi(&n.schema)), format!("CREATE TABLE {t} (id INT PRIMARY KEY)")];
    for (u, h) in
        [(&n.hostile, "%"), (&n.hostile2, "10.0.0._"), (&n.owner, "%"), (&n.exempt, "%"), (&n.esc, "localhost"), (&n.esc, "127.0.0.1")]
    {
        sql.push(format!("CREATE USER {}@{} IDENTIFIED BY 'pw'", qs(u), qs(h)));
    }
    sql.push(format!("GRANT SELECT ON {t} TO {}@'%'", qs(&n.hostile)));
    sql.push(format!("GRANT SELECT, INSERT ON {}.* TO {}@'10.0.0._'", qi(&n.schema), qs(&n.hostile2)));
    sql.push(format!("GRANT ALL ON {t} TO {}@'%'", qs(&n.owner)));
    sql.push(format!("GRANT SELECT ON {t} TO {}@'%'", qs(&n.exempt)));
    for h in ["localhost", "127.0.0.1"] {
        sql.push(format!("GRANT CREATE USER ON *.* TO {}@{}", qs(&n.esc), qs(h)));
    }
    admin_exec(sb, &sql).await;
}

async fn readable(flavour: Flavour) {
    let sb = sandbox(flavour);
    let n = names(flavour);
    setup(sb, &n).await;
    let cnf = sb.primary.client_cnf.to_string_lossy().into_owned();
    let pattern = format!("{}.{}", qi(&n.schema), qi(&n.table));
    let access = |extra: &[&str]| {
        let mut args = vec!["access", pattern.as_str(), "--defaults-file", cnf.as_str()];
        args.extend_from_slice(extra);
        let o = privfence(&args);
        assert_eq!(o.status.code(), Some(0), "{flavour}: access {extra:?}: {}", text(&o));
        o
    };

    // TSV: raw names, one access path per line.
    let rows = tsv(&access(&["--format", "tsv"]));
    let row = |user: &str| rows.iter().find(|r| r["record"] == "access" && r["user"] == user).cloned();
    let h = row(&n.hostile).unwrap_or_else(|| panic!("{flavour}: {} in {rows:#?}", n.hostile));
    assert_eq!((h["host"].as_str(), h["schema"].as_str(), h["table"].as_str()), ("%", n.schema.as_str(), n.table.as_str()));
    assert_eq!((h["privileges"].as_str(), h["path"].as_str()), ("SELECT", "table"));
    let h2 = row(&n.hostile2).expect("the schema-wide grantee");
    assert_eq!((h2["host"].as_str(), h2["path"].as_str()), ("10.0.0._", "schema"));

    // --account: a glob where `%` and `_` are literal characters; --exclude-account.
    let only = "pfr`b'q\"d %_ ü*@%".to_string();
    let rows = tsv(&access(&["--format", "tsv", "--account", &only]));
    let users: Vec<&str> = rows.iter().map(|r| r["user"].as_str()).collect();
    assert_eq!(users, vec![n.hostile.as_str()], "{flavour}: --account {only:?}");
    let rows = tsv(&access(&["--format", "tsv", "--account", "pfr*", "--exclude-account", "*@10.0.0.?"]));
    assert!(rows.iter().any(|r| r["user"] == n.hostile), "{flavour}: {rows:#?}");
    assert!(!rows.iter().any(|r| r["user"] == n.hostile2), "{flavour}: excluded: {rows:#?}");

    // --summary, JSON: one row per account.
    let o = access(&["--summary", "--format", "json", "--account", "pfr*"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "access_summary");
    validate("access-summary.json", &v);
    let full: Value = serde_json::from_slice(&access(&["--format", "json"]).stdout).unwrap();
    validate("access.json", &full);
    let acc = |user: &str| v["accounts"].as_array().unwrap().iter().find(|a| a["account"]["user"] == user).cloned();
    let h = acc(&n.hostile).unwrap_or_else(|| panic!("{flavour}: {v:#}"));
    assert_eq!(
        (h["tables"].as_u64(), h["privileges"].clone(), h["paths"].clone()),
        (Some(1), serde_json::json!(["SELECT"]), serde_json::json!(["table"]))
    );
    let e = acc(&n.esc).expect("the escalating account");
    assert_eq!(e["escalations"], serde_json::json!(["create_user"]));
    assert_eq!(
        v["accounts"].as_array().unwrap().iter().filter(|a| a["account"]["user"] == n.esc.as_str()).count(),
        2,
        "one row per account"
    );

    // Escalations in the table: one row for the user's two host rows, the sentence once.
    let o = access(&["--account", &format!("{}@*", n.esc)]);
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(t.contains(&format!("'{}'@ '127.0.0.1', 'localhost'", n.esc)), "{flavour}: grouped hosts:\n{t}");
    assert_eq!(t.matches("CREATE USER: can create").count(), 1, "{flavour}: the sentence once:\n{t}");

    // --policy --service: owners and exempt accounts hidden; no TABLE needed.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        format!(
            "[service.svc]\ntables = [{}]\nowners = [\"'{}'@'%'\"]\n[[service.svc.exempt]]\naccount = \"'{}'@'%'\"\nreason = \"reporting\"\n",
            toml_str(&pattern),
            n.owner,
            n.exempt
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let o = privfence(&["access", "--policy", p, "--service", "svc", "--summary", "--format", "tsv", "--defaults-file", &cnf]);
    assert_eq!(o.status.code(), Some(0), "{flavour}: {}", text(&o));
    let rows = tsv(&o);
    let users: Vec<&str> = rows.iter().map(|r| r["user"].as_str()).collect();
    assert!(users.contains(&n.hostile.as_str()) && users.contains(&n.hostile2.as_str()), "{flavour}: {users:?}");
    assert!(!users.contains(&n.owner.as_str()) && !users.contains(&n.exempt.as_str()), "{flavour}: owner/exempt shown: {users:?}");

    // audit: the same names through --summary and TSV; the filter never changes the exit code.
    let reports = dir.path().join("reports");
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "--policy", p, "--out", reports.to_str().unwrap(), "--defaults-file", cnf.as_str()];
        args.extend_from_slice(extra);
        privfence(&args)
    };
    let o = audit(&["--summary", "--format", "tsv", "--account", &only]);
    assert_eq!(o.status.code(), Some(1), "{flavour}: drift: {}", text(&o));
    let rows = tsv(&o);
    assert_eq!(rows.len(), 1, "{flavour}: {rows:#?}");
    assert_eq!((rows[0]["user"].as_str(), rows[0]["host"].as_str()), (n.hostile.as_str(), "%"));
    assert!(rows[0]["kinds"].contains("unexpected_access"), "{rows:#?}");
    let o = audit(&["--format", "tsv", "--exclude-account", "*"]);
    assert_eq!(o.status.code(), Some(1), "{flavour}: the filter hides, the verdict stays: {}", text(&o));
    assert!(tsv(&o).iter().all(|r| r["user"].is_empty()), "{flavour}: only account-less findings remain");
    let o = audit(&["--format", "tsv"]);
    let rows = tsv(&o);
    let f = rows.iter().find(|r| r["user"] == n.hostile2).unwrap_or_else(|| panic!("{flavour}: {rows:#?}"));
    assert_eq!((f["host"].as_str(), f["schema"].as_str(), f["table"].as_str()), ("10.0.0._", n.schema.as_str(), n.table.as_str()));
    let o = audit(&["--summary", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{flavour}: {e}: {}", text(&o)));
    assert_eq!((v["kind"].as_str(), v["exit_code"].as_u64()), (Some("audit_summary"), Some(1)));
    validate("audit-summary.json", &v);
    let o = audit(&["--format", "json"]);
    validate("audit.json", &serde_json::from_slice(&o.stdout).unwrap());
    let o = privfence(&["readers", "--policy", p, "--service", "svc", "--format", "json", "--defaults-file", &cnf]);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{flavour}: readers: {}", text(&o));
    validate("readers.json", &serde_json::from_slice(&o.stdout).unwrap());
    let o = privfence(&["inventory", "--format", "json", "--defaults-file", &cnf]);
    validate("inventory.json", &serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o))));
}

/// `-v` shows the reads; `--login-path` connects with mysql_config_editor's obfuscated file.
async fn verbose_and_login_path(flavour: Flavour) {
    let sb = sandbox(flavour);
    let cnf = std::fs::read_to_string(&sb.primary.client_cnf).unwrap();
    assert!(cnf.contains("[client]"), "{cnf}");
    let dir = tempfile::tempdir().unwrap();
    let login = dir.path().join("mylogin.cnf");
    std::fs::write(&login, privfence::db::mylogin::encrypt(&cnf.replace("[client]", "[sandbox]"), *b"privfence-test-key-1")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&login, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_privfence"))
            .args(args)
            .env_remove("MYSQL_PWD")
            .env("HOME", "/nonexistent")
            .env("MYSQL_TEST_LOGIN_FILE", &login)
            .output()
            .unwrap()
    };
    let o = run(&["-v", "doctor", "--login-path", "sandbox", "--format", "json"]);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{flavour}: {}", text(&o));
    validate("doctor.json", &serde_json::from_slice(&o.stdout).unwrap());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("DEBUG") && err.contains("SELECT"), "{flavour}: -v: {err}");
    let o = run(&["inventory", "--login-path", "sandbox", "--print-defaults"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--password=*****") && out.contains(&format!("--port={}", sb.primary.port)), "{flavour}: {out}");
    std::fs::set_permissions(&login, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["doctor", "--login-path", "sandbox"]);
    assert_eq!(o.status.code(), Some(2), "{flavour}: {}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
}

/// `doctor` prints the GRANT statements that give a bare account what it lacks; once an
/// administrator runs them, nothing is missing.
async fn doctor_grants(flavour: Flavour) {
    let sb = sandbox(flavour);
    let user = format!("pfr_doc_{}", &flavour.name()[..2]);
    admin_exec(sb, &[format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-doc'"), format!("GRANT SELECT ON mysql.* TO '{user}'@'%'")]).await;
    let url = format!("mysql://{user}:pw-doc@127.0.0.1:{}/", sb.primary.port);
    let o = privfence(&["doctor", "--url", &url]);
    assert_eq!(o.status.code(), Some(1), "{flavour}: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let grants: Vec<String> =
        out.lines().map(str::trim).filter(|l| l.starts_with("GRANT ")).map(|l| l.trim_end_matches(';').to_string()).collect();
    assert!(grants.iter().any(|g| g.contains("SHOW VIEW") && g.ends_with(&format!("TO '{user}'@'%'"))), "{flavour}: {out}");
    assert!(!out.contains("pw-doc"), "{out}");
    admin_exec(sb, &grants).await;
    let o = privfence(&["doctor", "--url", &url, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    validate("doctor.json", &v);
    assert_eq!(v["grants"], serde_json::json!([]), "{flavour}: after the GRANTs nothing is missing: {v:#}");
    assert_eq!(o.status.code(), Some(0), "{flavour}: {}", text(&o));
}

both_flavours!(readable_output, readable);
both_flavours!(doctor_prints_grants, doctor_grants);
both_flavours!(verbose_and_login_path_live, verbose_and_login_path);
