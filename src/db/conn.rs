//! Connecting like the mysql client: host/port/socket/user flags, option files (`--defaults-file`,
//! `~/.my.cnf` `[client]`), `MYSQL_PWD`, an interactive prompt, a `mysql://` URL, TLS modes.
//!
//! Resolution is split in two, in the spirit of ripgrep's low/high args: [`ConnectInput`] is what
//! the user typed (no I/O), [`ConnectInput::resolve`] reads files and the environment and yields
//! a [`ConnectSpec`]. A password is held in a [`Secret`] that never prints.

use super::mycnf::{self, OptionValues};
use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// A password. `Debug` and `Display` print `***`, so it cannot leak through formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The only way to read the value: at the driver boundary.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `--ssl-mode`, as in the mysql client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    Disabled,
    /// TLS when the server offers it, without certificate checks (the client's default).
    #[default]
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

/// What the user asked for, before any file or environment is read.
#[derive(Debug, Clone, Default)]
pub struct ConnectInput {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub socket: Option<PathBuf>,
    pub url: Option<String>,
    pub defaults_file: Option<PathBuf>,
    pub defaults_extra_file: Option<PathBuf>,
    pub no_defaults: bool,
    /// `-p`: prompt for the password on the terminal.
    pub ask_password: bool,
    pub ssl_mode: Option<SslMode>,
    pub ssl_ca: Option<PathBuf>,
    /// `--connect-timeout` (else option files' `connect-timeout`, seconds; else 10 s).
    pub connect_timeout: Option<std::time::Duration>,
    /// `--login-path NAME`: also read group `[NAME]`, and read `~/.mylogin.cnf` last
    /// (groups client, privfence, NAME), as the mysql client does.
    pub login_path: Option<String>,
}

/// How long opening a connection may take unless told otherwise (as the mysql client's
/// `connect-timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything needed to open a connection.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub host: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub user: String,
    pub password: Option<Secret>,
    pub ssl_mode: SslMode,
    pub ssl_ca: Option<PathBuf>,
    /// Bound on opening a connection (TCP, TLS and login).
    pub connect_timeout: std::time::Duration,
}

impl ConnectSpec {
    /// `user@host:port` or `user@unix:path`, for messages. Never includes the password.
    pub fn target(&self) -> String {
        match &self.socket {
            Some(s) => format!("{}@unix:{}", self.user, s.display()),
            None => format!("{}@{}:{}", self.user, self.host, self.port),
        }
    }
}

impl ConnectSpec {
    /// The same credentials and TLS settings for another server given as `HOST[:PORT]`
    /// (a replica: `--replica`).
    pub fn with_address(&self, addr: &str) -> Result<ConnectSpec> {
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| Error::BadInput(format!("{addr:?}: the port is not a number")))?),
            None => (addr.to_string(), 3306),
        };
        if host.is_empty() {
            return Err(Error::BadInput(format!("{addr:?}: expected HOST or HOST:PORT")));
        }
        Ok(ConnectSpec { host, port, socket: None, ..self.clone() })
    }
}

/// Where an option value came from, in increasing precedence.
struct Layered {
    files: OptionValues,
    url: OptionValues,
}

impl Layered {
    fn get(&self, key: &str) -> Option<&str> {
        self.url.get(key).or_else(|| self.files.get(key))
    }
}

impl ConnectInput {
    /// Reads option files, the URL and the environment (`env` is injectable for tests), and
    /// prompts for a password when `-p` was given.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnectSpec> {
        let files = self.read_option_files(env)?;
        let url = match &self.url {
            Some(u) => parse_url(u)?,
            None => OptionValues::default(),
        };
        let layered = Layered { files, url };
        let host = self.host.clone().or(layered.get("host").map(String::from)).unwrap_or_else(|| "localhost".into());
        let port = match self.port {
            Some(p) => p,
            None => match layered.get("port") {
                Some(p) => p.parse().map_err(|_| Error::BadInput(format!("port {p:?} is not a number")))?,
                None => 3306,
            },
        };
        let user = self.user.clone().or(layered.get("user").map(String::from)).or_else(|| env("USER")).unwrap_or_else(|| "root".into());
        let socket = self.socket.clone().or(layered.get("socket").map(PathBuf::from)).or_else(|| default_socket(&host));
        let password = if self.ask_password {
            Some(prompt_password(&user)?)
        } else {
            layered.get("password").map(Secret::new).or_else(|| env("MYSQL_PWD").map(Secret::new))
        };
        let ssl_mode = match self.ssl_mode {
            Some(m) => m,
            None => match layered.get("ssl-mode") {
                Some(m) => {
                    <SslMode as clap::ValueEnum>::from_str(m, true).map_err(|_| Error::BadInput(format!("unknown ssl-mode {m:?}")))?
                }
                None => SslMode::Preferred,
            },
        };
        let ssl_ca = self.ssl_ca.clone().or(layered.get("ssl-ca").map(PathBuf::from));
        let connect_timeout = match (self.connect_timeout, layered.get("connect-timeout")) {
            (Some(t), _) => t,
            (None, Some(v)) => std::time::Duration::from_secs(
                v.trim().parse().map_err(|_| Error::BadInput(format!("connect-timeout {v:?} is not a number of seconds")))?,
            ),
            (None, None) => DEFAULT_CONNECT_TIMEOUT,
        };
        // A socket only makes sense for localhost, as in the mysql client.
        let socket = if host == "localhost" { socket } else { None };
        Ok(ConnectSpec { host, port, socket, user, password, ssl_mode, ssl_ca, connect_timeout })
    }

    /// The options privfence reads from option files (and the login-path file), for
    /// `--print-defaults`.
    pub fn option_values(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<OptionValues> {
        self.read_option_files(env)
    }

    fn read_option_files(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<OptionValues> {
        let mut groups = vec!["client", "privfence"];
        groups.extend(self.login_path.as_deref());
        let mut values = self.read_plain_files(env, &groups)?;
        if let (Some(name), false) = (&self.login_path, self.no_defaults) {
            let path = super::mylogin::default_path(env)
                .ok_or_else(|| Error::BadInput("--login-path: no HOME to find ~/.mylogin.cnf in".into()))?;
            match super::mylogin::read(&path)? {
                Some(text) => {
                    if !text.lines().any(|l| l.trim().eq_ignore_ascii_case(&format!("[{name}]"))) {
                        return Err(Error::BadInput(format!("--login-path {name:?}: {} has no such login path", path.display())));
                    }
                    mycnf::read_str(&path, &text, &groups, &mut values)?;
                }
                None => {
                    return Err(Error::BadInput(format!(
                        "--login-path {name:?}: {} does not exist (mysql_config_editor set --login-path={name} ... writes it)",
                        path.display()
                    )))
                }
            }
        }
        Ok(values)
    }

    fn read_plain_files(&self, env: &dyn Fn(&str) -> Option<String>, groups: &[&str]) -> Result<OptionValues> {
        let mut values = OptionValues::default();
        // The mysql client's order (later files win): the global files, $MYSQL_HOME/my.cnf,
        // --defaults-extra-file, then the user's ~/.my.cnf. --defaults-file replaces them all.
        if let Some(f) = &self.defaults_file {
            mycnf::read_file(f, groups, &mut values)?;
            return Ok(values);
        }
        if self.no_defaults {
            return Ok(values);
        }
        let mut files: Vec<PathBuf> = vec!["/etc/my.cnf".into(), "/etc/mysql/my.cnf".into()];
        if let Some(home) = env("MYSQL_HOME") {
            files.push(PathBuf::from(home).join("my.cnf"));
        }
        for p in files.iter().filter(|p| p.exists()) {
            mycnf::read_file(p, groups, &mut values)?;
        }
        if let Some(f) = &self.defaults_extra_file {
            mycnf::read_file(f, groups, &mut values)?;
        }
        if let Some(home) = env("HOME") {
            let p = PathBuf::from(home).join(".my.cnf");
            if p.exists() {
                mycnf::read_file(&p, groups, &mut values)?;
            }
        }
        Ok(values)
    }
}

fn default_socket(host: &str) -> Option<PathBuf> {
    if host != "localhost" {
        return None;
    }
    ["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"].iter().map(PathBuf::from).find(|p| p.exists())
}

fn prompt_password(user: &str) -> Result<Secret> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(0) } != 1 {
        return Err(Error::BadInput(
            "-p needs a terminal on standard input to prompt for the password; in scripts use an option file (--defaults-file) or MYSQL_PWD".into(),
        ));
    }
    rpassword::prompt_password(format!("Enter password for {user}: ")).map(Secret::new).map_err(|e| Error::Io {
        what: "reading the password from the terminal (-p needs a terminal; use an option file or MYSQL_PWD in scripts)".into(),
        source: e,
    })
}

/// Parses `mysql://user[:password]@host[:port][/?ssl-mode=...&ssl-ca=...&socket=...]`.
/// A database path is refused: privfence never sets a default database on its connections.
pub fn parse_url(s: &str) -> Result<OptionValues> {
    let url = url::Url::parse(s).map_err(|e| Error::BadInput(format!("bad connection URL: {e}")))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(Error::BadInput(format!("connection URL scheme must be mysql:// or mariadb://, not {}://", url.scheme())));
    }
    let mut v = OptionValues::default();
    let decode = |s: &str| percent_decode(s);
    if !url.username().is_empty() {
        v.values.insert("user".into(), decode(url.username()));
    }
    if let Some(p) = url.password() {
        v.values.insert("password".into(), decode(p));
    }
    if let Some(h) = url.host_str() {
        v.values.insert("host".into(), h.trim_matches(|c| c == '[' || c == ']').to_string());
    }
    if let Some(p) = url.port() {
        v.values.insert("port".into(), p.to_string());
    }
    if !matches!(url.path(), "" | "/") {
        return Err(Error::BadInput(
            "connection URL must not name a database: privfence never sets a default database (replication and binlog filters act on it)"
                .into(),
        ));
    }
    for (k, val) in url.query_pairs() {
        let key = k.replace('_', "-").to_ascii_lowercase();
        if !matches!(key.as_str(), "ssl-mode" | "ssl-ca" | "socket") {
            return Err(Error::BadInput(format!("unknown connection URL parameter {k:?} (known: ssl-mode, ssl-ca, socket)")));
        }
        v.values.insert(key, val.into_owned());
    }
    Ok(v)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn secret_never_prints() {
        let spec = ConnectSpec {
            host: "h".into(),
            port: 1,
            socket: None,
            user: "u".into(),
            password: Some(Secret::new("hunter2")),
            ssl_mode: SslMode::Preferred,
            ssl_ca: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
        assert!(!spec.target().contains("hunter2"));
    }

    #[test]
    fn precedence_flags_url_files_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.cnf");
        std::fs::write(&f, "[client]\nuser=fileuser\npassword=filepw\nhost=filehost\nport=1111\nconnect_timeout=4\n").unwrap();
        let input = ConnectInput {
            defaults_file: Some(f),
            url: Some("mysql://urluser@urlhost:2222/?ssl-mode=disabled".into()),
            port: Some(3333),
            ..Default::default()
        };
        let env = |k: &str| (k == "MYSQL_PWD").then(|| "envpw".to_string());
        let spec = input.resolve(&env).unwrap();
        assert_eq!(spec.user, "urluser");
        assert_eq!(spec.host, "urlhost");
        assert_eq!(spec.port, 3333);
        assert_eq!(spec.password.unwrap().expose(), "filepw");
        assert_eq!(spec.ssl_mode, SslMode::Disabled);
        assert_eq!(spec.connect_timeout, std::time::Duration::from_secs(4), "connect-timeout from the option file");
    }

    #[test]
    fn mysql_pwd_is_the_last_resort() {
        let input = ConnectInput { host: Some("127.0.0.1".into()), no_defaults: true, ..Default::default() };
        let env = |k: &str| (k == "MYSQL_PWD").then(|| "envpw".to_string());
        assert_eq!(input.resolve(&env).unwrap().password.unwrap().expose(), "envpw");
        assert!(input.resolve(&no_env).unwrap().password.is_none());
    }

    #[test]
    fn url_rules() {
        assert!(parse_url("mysql://u@h/db").is_err());
        assert!(parse_url("postgres://u@h").is_err());
        assert!(parse_url("mysql://u@h/?bogus=1").is_err());
        let v = parse_url("mysql://u%40x:p%2Fw@h:3307/").unwrap();
        assert_eq!(v.get("user"), Some("u@x"));
        assert_eq!(v.get("password"), Some("p/w"));
        let err = parse_url("mysql://u:sekret@h/db").unwrap_err().to_string();
        assert!(!err.contains("sekret"));
    }
}
