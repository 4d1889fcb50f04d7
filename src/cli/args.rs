//! Flag groups shared by every command that talks to a server or prints data. Defined once,
//! flattened into each subcommand (like sqlx-cli's `ConnectOpts`).

use crate::db::{ConnectInput, SslMode};
use crate::output::Format;
use std::path::PathBuf;

/// How to reach the server, as with the mysql client. There is deliberately no way to pass a
/// password as an argument: use an option file, `MYSQL_PWD`, or `-p` to be prompted.
#[derive(Debug, Clone, Default, clap::Args)]
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
    /// Read this option file after the default ones.
    #[arg(long)]
    pub defaults_extra_file: Option<PathBuf>,
    /// Do not read ~/.my.cnf.
    #[arg(long)]
    pub no_defaults: bool,
    /// TLS mode, as in the mysql client.
    #[arg(long, value_enum)]
    pub ssl_mode: Option<SslMode>,
    /// CA certificate file for TLS verification.
    #[arg(long)]
    pub ssl_ca: Option<PathBuf>,
    /// Give up connecting after this long [default: option files' connect-timeout, else 10s].
    #[arg(long, value_parser = super::session::parse_duration)]
    pub connect_timeout: Option<std::time::Duration>,
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
        }
    }
}

/// How data is printed.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
