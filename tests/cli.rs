//! The `privfence` binary as a user runs it: exit codes, clear errors that change nothing, no
//! secrets in any output, option files, and refusing to answer when its account cannot see
//! everything.
#![allow(clippy::disallowed_methods)] // tests set up servers and play applications through the driver (clippy.toml)

mod support;

use privfence::db::Flavour;
use std::process::{Command, Output};
use support::*;

fn privfence(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_privfence"));
    c.args(args).env_remove("MYSQL_PWD").env("HOME", "/nonexistent").stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run privfence")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Password hashes of either flavour: `*` + 40 hex (mysql_native_password), `$A$005$`
/// (caching_sha2_password).
fn has_hash(s: &str) -> bool {
    let b = s.as_bytes();
    let native = b.windows(41).any(|w| w[0] == b'*' && w[1..].iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    native || s.contains("$A$005$")
}

#[test]
fn bad_table_patterns_fail_before_connecting() {
    // Port 1 is closed: the pattern error must come first.
    let o = privfence(&["access", "a b.c", "-h", "127.0.0.1", "-P", "1"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("column 2"), "{}", text(&o));
    let o = privfence(&["access", "nodot", "-h", "127.0.0.1", "-P", "1"], &[]);
    assert!(text(&o).contains("not schema.table"), "{}", text(&o));
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let o = privfence(&["inventory", "-h", "127.0.0.1", "-P", "1", "-u", "someone"], &[("MYSQL_PWD", "s3cret-unreachable")]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("cannot connect to someone@127.0.0.1:1"), "{t}");
    assert!(!t.contains("s3cret-unreachable"));
}

#[test]
fn urls_naming_a_database_are_refused() {
    let o = privfence(&["inventory", "--url", "mysql://u:pw-in-url@127.0.0.1:1/main"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("must not name a database"), "{t}");
    assert!(!t.contains("pw-in-url"));
}

#[test]
fn password_prompt_needs_a_terminal() {
    let o = privfence(&["inventory", "-h", "127.0.0.1", "-P", "1", "-p"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("needs a terminal"), "{}", text(&o));
}

fn port(f: Flavour) -> String {
    sandbox(f).primary.port.to_string()
}

fn no_secrets_in_output(f: Flavour) {
    let sb = sandbox(f);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(admin_exec(
        sb,
        &[
            format!("CREATE USER 'pfcli_{}'@'%' IDENTIFIED BY 'app-secret-pw'", f.name()),
            format!("GRANT SELECT ON mysql.* TO 'pfcli_{}'@'%'", f.name()),
        ],
    ));
    let p = port(f);
    let pw = sb.primary.admin_password.clone();
    for fmt in ["json", "table"] {
        let o = privfence(
            &["inventory", "--verify", "--format", fmt, "-h", "127.0.0.1", "-P", &p, "-u", "root", "--no-defaults"],
            &[("MYSQL_PWD", &pw)],
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{f} {fmt}: {t}");
        assert!(!t.contains(&pw), "{f}: admin password printed");
        assert!(!t.contains("app-secret-pw"));
        assert!(!has_hash(&t), "{f} {fmt}: a password hash was printed");
    }
    // The same through the sandbox's option file.
    let cnf = sb.primary.client_cnf.to_string_lossy().into_owned();
    let o = privfence(&["access", "mysql.db", "--defaults-file", &cnf, "--format", "json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("access JSON");
    let e = &json["entries"][0];
    assert!(
        e["account"]["user"].is_string() && e["table"]["schema"] == "mysql" && e["privileges"].is_array() && e["via"]["kind"].is_string(),
        "{e}"
    );
    // A wrong password: a clear error, no password.
    let o = privfence(&["inventory", "-h", "127.0.0.1", "-P", &p, "-u", "root", "--no-defaults"], &[("MYSQL_PWD", "wrong-secret-xyz")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("Access denied"), "{}", text(&o));
    assert!(!text(&o).contains("wrong-secret-xyz"));
    // An account that may read the grant tables but not see every object: refused, not clean.
    let user = format!("pfcli_{}", f.name());
    let o = privfence(&["inventory", "-h", "127.0.0.1", "-P", &p, "-u", &user, "--no-defaults"], &[("MYSQL_PWD", "app-secret-pw")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("see every table") && t.contains("see view definitions") && t.contains("privfence doctor"), "{t}");
    let o = privfence(&["doctor", "-h", "127.0.0.1", "-P", &p, "-u", &user, "--no-defaults"], &[("MYSQL_PWD", "app-secret-pw")]);
    assert_eq!(o.status.code(), Some(1), "doctor exits 1 when something is missing: {}", text(&o));
    assert!(text(&o).contains("MISSING"));
    let o = privfence(&["doctor", "--defaults-file", &cnf], &[]);
    assert_eq!(o.status.code(), Some(0), "the admin has everything: {}", text(&o));
    // An unknown table: exit 2 and a clear message.
    let o = privfence(&["access", "nosuch.table", "--defaults-file", &cnf], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no table matches nosuch.table"), "{}", text(&o));
}

#[test]
fn mariadb_no_secrets_and_clear_refusals() {
    no_secrets_in_output(Flavour::MariaDb);
}

#[test]
fn mysql_no_secrets_and_clear_refusals() {
    no_secrets_in_output(Flavour::MySql);
}

/// Issue 14: the mysql client's conventions.
#[test]
fn a_password_on_the_command_line_is_refused_without_repeating_it() {
    for args in
        [&["inventory", "-psecret-pw", "-h", "127.0.0.1", "-P", "1"][..], &["inventory", "--password=secret-pw", "-h", "127.0.0.1"][..]]
    {
        let o = privfence(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("no password on the command line") && text(&o).contains("option file"), "{}", text(&o));
        assert!(!text(&o).contains("secret-pw"), "the secret is never repeated: {}", text(&o));
        assert!(!text(&o).contains("cannot connect"), "refused before anything else: {}", text(&o));
    }
}

/// Only `-p` itself takes the rest of its argument: `-u-pf_reader` is a user name, and
/// `-vpSECRET` is a password as the client reads it (refused without repeating it).
#[test]
fn an_option_value_starting_with_p_is_not_a_password() {
    for args in [
        &["inventory", "-u-pf_reader", "-h", "127.0.0.1", "-P", "1", "--no-defaults"][..],
        &["inventory", "-vu-pf_reader", "-h", "127.0.0.1", "-P", "1", "--no-defaults"][..],
        &["inventory", "--user=-pf_reader", "-h", "127.0.0.1", "-P", "1", "--no-defaults"][..],
    ] {
        let o = privfence(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("cannot connect"), "{args:?}: accepted as the user name: {}", text(&o));
    }
    let o = privfence(&["inventory", "-vpsecret-pw", "-h", "127.0.0.1", "-P", "1", "--no-defaults"], &[]);
    assert!(text(&o).contains("no password on the command line"), "{}", text(&o));
    assert!(!text(&o).contains("secret-pw"), "{}", text(&o));
}

#[test]
fn enum_values_in_any_case() {
    let o = privfence(&["inventory", "--ssl-mode", "required", "--format", "JSON", "-h", "127.0.0.1", "-P", "1", "--no-defaults"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot connect"), "the values were accepted; only the connection failed: {}", text(&o));
}

#[test]
fn a_world_writable_option_file_is_ignored_with_the_clients_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("extra.cnf");
    // Were it read, privfence would try port 2 instead of port 1.
    std::fs::write(&f, "[client]\nport = 2\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = privfence(&["inventory", "-h", "127.0.0.1", "-P", "1", "--defaults-extra-file", f.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&format!("World-writable config file '{}' is ignored.", f.display())), "{}", text(&o));
    let o = privfence(&["inventory", "-h", "127.0.0.1", "--defaults-file", f.to_str().unwrap()], &[]);
    assert!(text(&o).contains("is ignored") && !text(&o).contains(":2"), "the port in it is not used: {}", text(&o));
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    let o = privfence(&["completions", "bash"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bash = String::from_utf8_lossy(&o.stdout);
    assert!(bash.contains("_privfence") && bash.contains("--defaults-file") && bash.contains("session"), "{bash}");
    let o = privfence(&["completions", "ZSH"], &[]);
    assert_eq!(o.status.code(), Some(0), "any case: {}", text(&o));
    let o = privfence(&["man"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH privfence 1"), "{}", text(&o));
    let o = privfence(&["inventory", "--help"], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Connection (as the mysql client):"), "help is grouped: {}", text(&o));
}

#[test]
fn print_defaults_masks_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.cnf");
    std::fs::write(&f, "[client]\nuser=fileuser\npassword=pd-s3cret\nport=1111\n[other]\nuser=no\n").unwrap();
    let o = privfence(&["inventory", "--defaults-file", f.to_str().unwrap(), "--print-defaults"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("--user=fileuser") && t.contains("--port=1111") && t.contains("--password=*****"), "{t}");
    assert!(!t.contains("pd-s3cret") && !t.contains("user=no"), "{t}");
    // Every command with connection flags stops at --print-defaults, before connecting.
    let o = privfence(&["failsafe", "remove", "--defaults-file", f.to_str().unwrap(), "--print-defaults"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("--user=fileuser"), "{}", text(&o));
}

#[test]
fn login_path_file_is_read_and_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let login = dir.path().join(".mylogin.cnf");
    let content = "[client]\nuser = \"lp_user\"\n[prod]\nhost = \"db1.example\"\npassword = \"lp-s3cret\"\n";
    std::fs::write(&login, privfence::db::mylogin::encrypt(content, *b"abcdefghijklmnopqrst")).unwrap();
    std::fs::set_permissions(&login, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [("MYSQL_TEST_LOGIN_FILE", login.to_str().unwrap())];
    let o = privfence(&["inventory", "--login-path", "prod", "--print-defaults"], &env);
    let t = text(&o);
    assert!(t.contains("--host=db1.example") && t.contains("--user=lp_user") && t.contains("--password=*****"), "{t}");
    assert!(!t.contains("lp-s3cret"), "{t}");
    let o = privfence(&["inventory", "--login-path", "nosuch", "-h", "127.0.0.1", "-P", "1"], &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no such login path"), "{}", text(&o));
}
