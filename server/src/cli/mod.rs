//! The `sealpost` command line.
//!
//! Output contract (scripts and tests rely on it): results go to stdout, logs to stderr;
//! `token create` and `relay add` print the token or password as the last line; `serve` prints
//! `listening http=<addr>` (or `https=`) once the HTTP socket is bound, then at once
//! `listening smtp=<addr>` (and `listening smtps=<addr>` with `smtps_addr`). Exit codes: 0
//! success, 1 `audit verify` found a broken chain or a log that does not extend the checkpoint
//! it was given (or `audit checkpoint` refused to sign such a log), 2 any other failure (bad
//! config, database error, unknown user…).
//!
//! Every administrative change writes an audit event with actor `cli` in the same transaction
//! as the change. Each noun (`user`, `token`, `audit`, `relay`, `recipient`) has a file of its own here;
//! `serve` is [`crate::serve`].

mod audit;
mod recipient;
mod relay;
mod token;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use audit::AuditCommand;
pub use recipient::RecipientCommand;
pub use relay::RelayCommand;
pub use token::TokenCommand;
pub use user::UserCommand;

use crate::app::App;
use crate::config::Config;
use crate::{jobs, telemetry};

/// Sealpost: secure message pickup portal.
#[derive(Debug, Parser)]
#[command(name = "sealpost", version, about)]
pub struct Cli {
    /// Configuration file (default: $SEALPOST_CONFIG, else ./sealpost.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP and SMTP listeners until SIGTERM or Ctrl-C.
    Serve,
    #[command(flatten)]
    Admin(AdminCommand),
}

/// The commands that open the data directory, do one thing and exit.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check, export or checkpoint the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Shred expired and revoked messages now.
    Purge,
    /// Manage SMTP relay credentials (the MTAs that relay mail to Sealpost).
    Relay {
        #[command(subcommand)]
        command: RelayCommand,
    },
    /// Help the recipients of a message (unlock them after too many failed attempts).
    Recipient {
        #[command(subcommand)]
        command: RecipientCommand,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, warnings) = match Config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("sealpost: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealpost: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            eprintln!("sealpost: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Run one command with a loaded configuration.
pub async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let command = match command {
        Command::Serve => {
            crate::serve::serve(config).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Admin(command) => command,
    };
    let app = App::open(config).await?;
    let result = match command {
        AdminCommand::Migrate => {
            let version = crate::store::MIGRATOR
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            println!("database is at schema version {version}");
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::User { command } => user::run(&app, command).await,
        AdminCommand::Token { command } => token::run(&app, command).await,
        AdminCommand::Audit { command } => audit::run(&app, command).await,
        AdminCommand::Relay { command } => relay::run(&app, command).await,
        AdminCommand::Recipient { command } => recipient::run(&app, command).await,
        AdminCommand::Purge => purge(&app).await,
    };
    app.store().close().await;
    result
}

async fn purge(app: &App) -> anyhow::Result<ExitCode> {
    let report = jobs::purge_expired(app.store()).await?;
    println!(
        "purged {} expired and {} revoked messages",
        report.expired, report.revoked
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::store::users::Role;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_user_add() {
        let cli = Cli::try_parse_from([
            "sealpost", "user", "add", "--email", "a@b", "--role", "auditor",
        ]);
        match cli.map(|c| c.command) {
            Ok(Command::Admin(AdminCommand::User {
                command: UserCommand::Add { email, role },
            })) => {
                assert_eq!(email, "a@b");
                assert_eq!(role, Role::Auditor);
            }
            other => panic!("unexpected parse: {other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "sealpost", "user", "add", "--email", "a@b", "--role", "root"
            ])
            .is_err()
        );
    }
}
