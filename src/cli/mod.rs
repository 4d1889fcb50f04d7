//! The command line: argument structs (clap) and one thin function per command. Each command
//! parses its arguments, resolves them into a context (credentials, connection), calls one core
//! function and hands the result to a renderer. No logic lives here.

pub mod access;
pub mod args;
pub mod audit;
pub mod demo;
pub mod doctor;
pub mod failsafe;
pub mod inventory;
pub mod plan;
pub mod promote;
pub mod readers;
pub mod sandbox;
pub mod session;
pub mod syncback;
pub mod verify;

use crate::db::{ConnectSpec, Server};
use crate::error::ExitCode;
use crate::output::Output;
use clap::{Parser, Subcommand};

/// privfence: make a service's tables private to its own account inside a shared MySQL or
/// MariaDB database, one account at a time, without ever losing a grant.
#[derive(Debug, Parser)]
#[command(name = "privfence", version, disable_help_flag = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help, global = true)]
    pub help: Option<bool>,
    /// Print each statement privfence sends to stderr (credential literals redacted).
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 found something (drift, a --verify mismatch, a missing privilege in doctor), 2 error, 3 restored, 4 journal needs attention, 5 inconclusive.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every account and what it holds, read from the grant tables.
    Inventory(inventory::InventoryArgs),
    /// Who can touch these tables, with which privileges, through which path.
    Access(access::AccessArgs),
    /// Check servers against policies: who can touch each service's tables besides its owners.
    Audit(audit::AuditArgs),
    /// The statements that cut one account off a service's tables, and their inverse (nothing is
    /// executed).
    Plan(plan::PlanArgs),
    /// What privfence's own account may do here, per command, and which signal sources exist.
    Doctor(doctor::DoctorArgs),
    /// Guided revoke sessions: cut one account, watch, restore automatically; resume or roll
    /// back after a crash.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// The server-side fail-safes of cuts: what the `privfence` schema holds, and removing it.
    #[command(subcommand)]
    Failsafe(failsafe::FailsafeCommand),
    /// Move an isolated service's tables onto their own server by replica promotion.
    #[command(subcommand)]
    Promote(Box<promote::PromoteCommand>),
    /// Compare a service's tables between two independent servers (dual writes, new database
    /// first): definitions, then key-range checksums; persisting differences by key.
    Verify(verify::VerifyArgs),
    /// Copy the rows the new store lacks, never overwriting, skipping tombstoned keys;
    /// resumable from its journal; ends with a verify.
    Backfill(verify::BackfillArgs),
    /// After a promotion: copy the new server's changes to the service's tables back to the old
    /// primary's copy (binary log stream, resumable, exactly once), until stopped.
    #[command(name = "sync-back")]
    SyncBack(Box<syncback::SyncBackArgs>),
    /// Which accounts can still read or write a service's tables, with the evidence of use.
    Readers(readers::ReadersArgs),
    /// Private MariaDB/MySQL servers on loopback, for trying privfence out.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// The main job on a throwaway sandbox: sample schema, app accounts, inventory and access.
    Demo(demo::DemoArgs),
    /// Shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "Example: privfence completions bash > /etc/bash_completion.d/privfence")]
    Completions {
        /// The shell.
        #[arg(value_enum, ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout.
    #[command(after_help = "Example: privfence man > /usr/local/share/man/man1/privfence.1")]
    Man,
}

/// A password given on the command line (`-pSECRET`, `--password=SECRET`): refused before
/// anything else, with a message that says where passwords go and never repeats the secret.
/// Arguments after `--` are not options.
pub fn inline_password(args: &[String]) -> Option<String> {
    let refusal = || {
        Some(
            "privfence takes no password on the command line (it would show in `ps` and shell history): put it in an \
             option file ([client] password = ..., mode 0600; --defaults-file or ~/.my.cnf), in MYSQL_PWD, or give -p alone \
             to be prompted"
                .into(),
        )
    };
    // clap takes no option value that starts with `-` as a separate argument (`-u -pf` is an
    // error there), so every argument that starts with one dash is a run of short options.
    for a in args.iter().skip(1).take_while(|a| *a != "--") {
        if a.starts_with("--password=") {
            return refusal();
        }
        let Some(cluster) = a.strip_prefix('-').filter(|c| !c.starts_with('-')) else { continue };
        // As the client reads `-vpSECRET`: short options in a row until one that takes a value,
        // which takes the rest (`-u-pf` is the user `-pf`); `-p` followed by anything is a password.
        for (i, c) in cluster.char_indices() {
            if c == 'p' {
                if i + 1 < cluster.len() {
                    return refusal();
                }
                break;
            }
            if VALUE_SHORTS.contains(&c) {
                break;
            }
        }
    }
    None
}

/// The short options that take a value (`-h host`, `-P port`, `-u user`, `-S socket`); checked
/// against the clap definitions by a unit test.
const VALUE_SHORTS: [char; 4] = ['h', 'P', 'u', 'S'];

/// `-v`: statements sent (target `privfence::sql`, see [`crate::db::redact`]) to stderr.
/// Without it no subscriber is installed and tracing costs one check per statement.
pub fn init_tracing(verbose: bool) {
    if !verbose {
        return;
    }
    use tracing_subscriber::prelude::*;
    let only_statements = tracing_subscriber::filter::Targets::new().with_target(crate::db::redact::TARGET, tracing::Level::DEBUG);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).with_target(false);
    let _ = tracing_subscriber::registry().with(layer.with_filter(only_statements)).try_init();
}

/// The connection flags of every command that has them (for `--print-defaults`, which must
/// stop every one of them before it does anything). No catch-all arm: a new command with
/// connection flags must be added here.
fn connect_args(c: &Command) -> Option<&args::ConnectArgs> {
    match c {
        Command::Inventory(a) => Some(&a.connect),
        Command::Access(a) => Some(&a.connect),
        Command::Audit(a) => Some(&a.connect),
        Command::Plan(a) => Some(&a.connect),
        Command::Doctor(a) => Some(&a.connect),
        Command::Readers(a) => Some(&a.connect),
        Command::Session(session::SessionCommand::Start(a)) => Some(&a.common.connect),
        Command::Session(session::SessionCommand::Resume(a) | session::SessionCommand::Rollback(a)) => Some(&a.common.connect),
        Command::Session(session::SessionCommand::Status(_)) => None,
        Command::Failsafe(failsafe::FailsafeCommand::Status(a) | failsafe::FailsafeCommand::Remove(a)) => Some(&a.connect),
        Command::Promote(c) => match c.as_ref() {
            promote::PromoteCommand::Plan(a)
            | promote::PromoteCommand::Run(a)
            | promote::PromoteCommand::Status(a)
            | promote::PromoteCommand::Resume(a)
            | promote::PromoteCommand::Abort(a)
            | promote::PromoteCommand::Revert(a)
            | promote::PromoteCommand::Cleanup(a) => Some(&a.connect),
        },
        Command::Verify(a) => Some(&a.m.connect),
        Command::Backfill(a) => Some(&a.m.connect),
        Command::SyncBack(a) => Some(&a.connect),
        Command::Sandbox(_) | Command::Demo(_) | Command::Completions { .. } | Command::Man => None,
    }
}

/// Runs one parsed command.
pub async fn run(cli: Cli, out: &mut Output) -> anyhow::Result<ExitCode> {
    if let Some(c) = connect_args(&cli.command).filter(|c| c.print_defaults) {
        out.data(&args::print_defaults(c)?);
        return Ok(ExitCode::Ok);
    }
    match cli.command {
        Command::Inventory(a) => inventory::run(a, out).await,
        Command::Access(a) => access::run(a, out).await,
        Command::Audit(a) => audit::run(a, out).await,
        Command::Doctor(a) => doctor::run(a, out).await,
        Command::Plan(a) => plan::run(a, out).await,
        Command::Session(c) => session::run(c, out).await,
        Command::Promote(c) => promote::run(*c, out).await,
        Command::Failsafe(c) => failsafe::run(c, out).await,
        Command::Verify(a) => verify::run_verify(a, out).await,
        Command::Backfill(a) => verify::run_backfill(a, out).await,
        Command::Readers(a) => readers::run(a, out).await,
        Command::SyncBack(a) => syncback::run(*a, out).await,
        Command::Sandbox(c) => sandbox::run(c, out).await,
        Command::Demo(a) => demo::run(a, out).await,
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "privfence", &mut buf);
            out.data(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::Ok)
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut buf)
                .map_err(|e| anyhow::anyhow!("rendering the manual page: {e}"))?;
            out.data(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::Ok)
        }
    }
}

/// Resolves connection flags and connects.
pub async fn connect(args: &args::ConnectArgs) -> anyhow::Result<Server> {
    let spec: ConnectSpec = args.input().resolve(&|k| std::env::var(k).ok())?;
    Ok(Server::connect(&spec).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_shorts_are_the_short_options_that_take_a_value() {
        fn walk(c: &clap::Command, out: &mut std::collections::BTreeSet<char>) {
            for a in c.get_arguments().filter(|a| !a.is_positional() && a.get_action().takes_values()) {
                out.extend(a.get_short_and_visible_aliases().into_iter().flatten());
            }
            c.get_subcommands().for_each(|s| walk(s, out));
        }
        let mut found = std::collections::BTreeSet::new();
        walk(&<super::Cli as clap::CommandFactory>::command(), &mut found);
        assert_eq!(found, super::VALUE_SHORTS.into_iter().collect());
    }

    #[test]
    fn only_p_itself_takes_a_password() {
        let refused = |args: &[&str]| {
            let mut v = vec!["privfence".to_string()];
            v.extend(args.iter().map(|s| s.to_string()));
            super::inline_password(&v).is_some()
        };
        assert!(refused(&["inventory", "-psecret"]));
        assert!(refused(&["inventory", "-vpsecret"]));
        assert!(refused(&["inventory", "--password=secret"]));
        assert!(!refused(&["inventory", "-p"]));
        assert!(!refused(&["inventory", "-vp"]));
        assert!(!refused(&["inventory", "-u-pf_reader"]), "the user -pf_reader");
        assert!(!refused(&["inventory", "-vu-pf_reader"]));
        assert!(!refused(&["inventory", "--user=-pf_reader"]));
        assert!(!refused(&["inventory", "--", "-psecret"]), "after --, not an option");
    }
}
