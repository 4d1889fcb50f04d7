//! Flag groups shared by every command that talks to a server or prints data. Defined once,
//! flattened into each subcommand (like sqlx-cli's `ConnectOpts`); and the value parsers
//! several commands share (durations, the fail-safe's delay, application logs).

use crate::db::{ConnectInput, SslMode};
use crate::output::Format;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the server, as with the mysql client. There is deliberately no way to pass a
/// password as an argument: use an option file, `MYSQL_PWD`, or `-p` to be prompted.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Connection (as the mysql client)")]
pub struct ConnectArgs {
    /// Server host name or address [default: localhost].
    #[arg(short = 'h', long, env = "MYSQL_HOST")]
    pub host: Option<String>,
    /// TCP port [default: 3306].
    #[arg(short = 'P', long, env = "MYSQL_TCP_PORT")]
    pub port: Option<u16>,
    /// Account to log in as [default: from option files, else $USER].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Unix socket (used when the host is localhost).
    #[arg(short = 'S', long)]
    pub socket: Option<PathBuf>,
    /// Prompt for the password on the terminal.
    #[arg(short = 'p', long = "password")]
    pub ask_password: bool,
    /// A `mysql://user@host:port/?ssl-mode=...` URL (a password in it is accepted, but prefer
    /// an option file: URLs end up in shell history).
    #[arg(long, env = "PRIVFENCE_URL", hide_env_values = true)]
    pub url: Option<String>,
    /// Read options only from this file (`[client]` and `[privfence]` groups).
    #[arg(long)]
    pub defaults_file: Option<PathBuf>,
    /// Read this option file after the global ones and before ~/.my.cnf (the client's order).
    #[arg(long)]
    pub defaults_extra_file: Option<PathBuf>,
    /// Read no option file (neither /etc/my.cnf, /etc/mysql/my.cnf nor ~/.my.cnf).
    #[arg(long)]
    pub no_defaults: bool,
    /// TLS mode, as in the mysql client (any case).
    #[arg(long, value_enum, ignore_case = true)]
    pub ssl_mode: Option<SslMode>,
    /// CA certificate file for TLS verification.
    #[arg(long)]
    pub ssl_ca: Option<PathBuf>,
    /// Give up connecting after this long [default: option files' connect-timeout, else 10s].
    #[arg(long, value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Also read group [NAME] of the option files, and ~/.mylogin.cnf (mysql_config_editor's
    /// obfuscated file, $MYSQL_TEST_LOGIN_FILE) last, with its [client], [privfence], [NAME].
    #[arg(long, value_name = "NAME")]
    pub login_path: Option<String>,
    /// Print the options privfence would read from option files (passwords masked) and exit.
    #[arg(long)]
    pub print_defaults: bool,
}

impl ConnectArgs {
    pub fn input(&self) -> ConnectInput {
        ConnectInput {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            socket: self.socket.clone(),
            url: self.url.clone(),
            defaults_file: self.defaults_file.clone(),
            defaults_extra_file: self.defaults_extra_file.clone(),
            no_defaults: self.no_defaults,
            ask_password: self.ask_password,
            ssl_mode: self.ssl_mode,
            ssl_ca: self.ssl_ca.clone(),
            connect_timeout: self.connect_timeout,
            login_path: self.login_path.clone(),
        }
    }
}

/// `--print-defaults`: the options read from option files as `--name=value` lines, passwords
/// as `*****` (as the mysql client prints them).
pub fn print_defaults(c: &ConnectArgs) -> anyhow::Result<String> {
    let values = c.input().option_values(&|k| std::env::var(k).ok())?;
    let mut s = String::from("privfence would read these options from option files:\n");
    for (k, v) in &values.values {
        let v = if k.contains("password") { "*****" } else { v.as_str() };
        s.push_str(&format!("--{k}={v}\n"));
    }
    Ok(s)
}

/// How data is printed.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Format::Table)]
    pub format: Format,
}

/// Which accounts a report shows (`access`, `audit`). Globs, not SQL `LIKE`: see
/// [`crate::report::filter`].
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Which accounts")]
pub struct AccountFilterArgs {
    /// Show only accounts matching this glob on user@host (`*` any run, `?` one character, `\`
    /// escapes; `%` and `_` match themselves; no `@`: any host); repeatable.
    #[arg(long = "account", value_name = "PATTERN")]
    pub account: Vec<String>,
    /// Hide accounts matching this glob (same syntax); repeatable.
    #[arg(long = "exclude-account", value_name = "PATTERN")]
    pub exclude_account: Vec<String>,
}

impl AccountFilterArgs {
    pub fn filter(&self) -> crate::report::filter::AccountFilter {
        crate::report::filter::AccountFilter::new(&self.account, &self.exclude_account)
    }
}

/// `15m`, `90s`, `500ms`, `2h`, `1h30m`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(Duration::from_secs_f64(secs.max(0.0)));
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let bad = || format!("{s:?} is not a duration (examples: 15m, 90s, 500ms, 2h, 1h30m)");
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += match unit.as_str() {
            "ms" => Duration::from_secs_f64(v / 1000.0),
            "s" => Duration::from_secs_f64(v),
            "m" => Duration::from_secs_f64(v * 60.0),
            "h" => Duration::from_secs_f64(v * 3600.0),
            "d" => Duration::from_secs_f64(v * 86400.0),
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

pub fn parse_failsafe_after(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(3) {
        return Err(format!("{s:?}: the fail-safe needs at least 3s (its heartbeat beats once a second)"));
    }
    Ok(d)
}

pub fn parse_app_log(s: &str) -> Result<(PathBuf, regex::Regex), String> {
    let (path, re) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected PATH=REGEX"))?;
    let re = regex::Regex::new(re).map_err(|e| format!("{re:?} is not a valid regular expression: {e}"))?;
    Ok((PathBuf::from(path), re))
}

/// A second server of a two-server command (`--from`/`--to` of verify, backfill and sync-back):
/// `given` is HOST:PORT or a mysql:// URL; credentials from `defaults_file` when given, else from
/// the connection flags.
pub fn server_at(connect: &ConnectArgs, given: &str, defaults_file: &Option<std::path::PathBuf>) -> anyhow::Result<crate::db::ConnectSpec> {
    let mut input = connect.input();
    if defaults_file.is_some() {
        input.defaults_file = defaults_file.clone();
    }
    if given.contains("://") {
        input.url = Some(given.to_string());
        return Ok(input.resolve(&|k| std::env::var(k).ok())?);
    }
    Ok(input.resolve(&|k| std::env::var(k).ok())?.with_address(given)?)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("5").is_ok());
        assert!(parse_duration("m").is_err());
    }
}
