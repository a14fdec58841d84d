//! The `sealpost` command line.
//!
//! Output contract (scripts and tests rely on it): results go to stdout, logs to stderr;
//! `token create` and `relay add` print the token or password as the last line; `serve` prints
//! `listening http=<addr>` (or `https=`) once the HTTP socket is bound, then at once
//! `listening smtp=<addr>` (and `listening smtps=<addr>` with `smtps_addr`). Exit codes: 0 success, 1 `audit verify` found a broken
//! chain, 2 any other failure (bad config, database error, unknown user…).
//!
//! Every administrative change writes an audit event with actor `cli` in the same transaction
//! as the change.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::app::{self, App};
use crate::audit::{self, Action, Event, ExportFormat, actor};
use crate::clock;
use crate::config::Config;
use crate::store::tokens;
use crate::store::users::{self, Role};
use crate::{jobs, smtp, telemetry, web};

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
    /// Check or export the audit log.
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
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Add a relay; its generated password is the last line of output, shown once.
    Add {
        #[arg(long)]
        name: String,
    },
    /// List relays.
    List,
    /// Remove a relay (it can no longer authenticate).
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints a generated password once.
    Add {
        #[arg(long)]
        email: String,
        /// sender, admin or auditor
        #[arg(long)]
        role: Role,
    },
    /// List users.
    List,
    /// Disable a user (their tokens stop working at once).
    Disable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the token is the last line of output, shown once.
    Create {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain end to end; exit 1 naming the first bad seq if it is broken.
    Verify,
    /// Write events to stdout.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
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
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let app = App::open(config).await?;
            let version = crate::store::MIGRATOR
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            println!("database is at schema version {version}");
            app.store().close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => {
            let app = App::open(config).await?;
            let result = match command {
                UserCommand::Add { email, role } => user_add(&app, &email, role).await,
                UserCommand::List => user_list(&app).await,
                UserCommand::Disable { email } => user_disable(&app, &email).await,
            };
            app.store().close().await;
            result
        }
        Command::Token {
            command: TokenCommand::Create { email },
        } => {
            let app = App::open(config).await?;
            let result = token_create(&app, &email).await;
            app.store().close().await;
            result
        }
        Command::Audit { command } => {
            let app = App::open(config).await?;
            let result = match command {
                AuditCommand::Verify => audit_verify(&app).await,
                AuditCommand::Export { format, since } => {
                    audit_export(&app, format, since.as_deref()).await
                }
            };
            app.store().close().await;
            result
        }
        Command::Relay { command } => {
            let app = App::open(config).await?;
            let result = match command {
                RelayCommand::Add { name } => smtp::admin::relay_add(&app, &name).await,
                RelayCommand::List => smtp::admin::relay_list(&app).await,
                RelayCommand::Remove { name } => smtp::admin::relay_remove(&app, &name).await,
            };
            app.store().close().await;
            result.map(|()| ExitCode::SUCCESS)
        }
        Command::Purge => {
            let app = App::open(config).await?;
            let report = jobs::purge_expired(app.store()).await?;
            println!(
                "purged {} expired and {} revoked messages",
                report.expired, report.revoked
            );
            app.store().close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let app = App::build(config).await?;
    // No listener runs yet, so every message still `receiving` lost its writer in a crash.
    let removed = crate::messages::cleanup_stale(app.store(), 0).await?;
    if removed > 0 {
        tracing::warn!(
            count = removed,
            "removed messages whose upload was cut off by a restart"
        );
    }
    let http_addr = app.config().http_addr;
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen on {http_addr}"))?;
    let bound = listener.local_addr()?;
    let scheme = match web::check_listener_policy(bound, app.config())? {
        web::Scheme::Http => "http",
        web::Scheme::Https => "https",
    };
    // SMTP: STARTTLS certificate (generated on first run) and listeners, bound before the
    // `listening` lines so that a client reading them can connect at once.
    let (acceptor, _fingerprint) = crate::tls::smtp_acceptor(app.config())?;
    let smtp_addr = app.config().smtp_addr;
    let smtp_listener = tokio::net::TcpListener::bind(smtp_addr)
        .await
        .with_context(|| format!("cannot listen on {smtp_addr} (SMTP)"))?;
    let smtps_listener = match app.config().smtps_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (SMTPS)"))?,
        ),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {scheme}={bound}")?;
        writeln!(out, "listening smtp={}", smtp_listener.local_addr()?)?;
        if let Some(l) = &smtps_listener {
            writeln!(out, "listening smtps={}", l.local_addr()?)?;
        }
        out.flush()?;
    }
    let jobs = tokio::spawn(jobs::run_periodic(
        app.store().clone(),
        Duration::from_secs(600),
    ));
    // One signal stops every listener; a listener that fails stops the others too.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        rx.wait_for(|s| *s).await.ok();
    };
    let signal = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.send_replace(true);
        })
    };
    let smtp_server = smtp::SmtpServer::new(app.state().clone(), Some(acceptor));
    let (http, smtp_result, smtps_result) = tokio::join!(
        async {
            let r = app
                .serve_http(listener, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
        async {
            let r = smtp_server
                .serve(smtp_listener, false, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
        async {
            let Some(l) = smtps_listener else {
                return Ok(());
            };
            let r = smtp_server
                .serve(l, true, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
    );
    signal.abort();
    jobs.abort();
    app.store().close().await;
    http.and(smtp_result)
        .and(smtps_result)
        .map(|()| ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn user_add(app: &App, email: &str, role: Role) -> anyhow::Result<ExitCode> {
    let email = email.trim();
    app::check_staff_email(email)?;
    let password = sealpost_crypto::password::generate();
    let hash = app::hash_password(password.clone()).await?;
    let mut tx = app.store().begin_write().await?;
    let user = match users::insert(&mut tx, email, role, &hash).await {
        Ok(user) => user,
        Err(e) if e.is_unique_violation() => bail!("a user with email {email} already exists"),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        Event::new(actor::CLI, Action::UserAdded).with_detail(json!({
            "user_id": user.id,
            "email": user.email,
            "role": role.as_str(),
        })),
    )
    .await?;
    tx.commit().await?;
    println!("added {role} {}", user.email);
    println!("password: {}", password.as_str());
    Ok(ExitCode::SUCCESS)
}

async fn user_list(app: &App) -> anyhow::Result<ExitCode> {
    let mut conn = app.store().acquire().await?;
    let all = users::list(&mut conn).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "email\trole\tstatus\tcreated")?;
    for user in all {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            user.email,
            user.role,
            if user.disabled { "disabled" } else { "active" },
            clock::format_rfc3339(user.created_at)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn user_disable(app: &App, email: &str) -> anyhow::Result<ExitCode> {
    let email = email.trim();
    let mut tx = app.store().begin_write().await?;
    let Some(user) = users::set_disabled(&mut tx, email, true).await? else {
        bail!("no user with email {email}");
    };
    audit::record(
        &mut tx,
        Event::new(actor::CLI, Action::UserDisabled)
            .with_detail(json!({ "user_id": user.id, "email": user.email })),
    )
    .await?;
    tx.commit().await?;
    println!("disabled {}", user.email);
    Ok(ExitCode::SUCCESS)
}

async fn token_create(app: &App, email: &str) -> anyhow::Result<ExitCode> {
    let email = email.trim();
    let token = sealpost_crypto::token::generate();
    let digest = sealpost_crypto::token::digest(&token);
    let mut tx = app.store().begin_write().await?;
    let Some(user) = users::find_by_email(&mut tx, email).await? else {
        bail!("no user with email {email}");
    };
    if user.disabled {
        bail!("user {email} is disabled");
    }
    let created = tokens::insert(&mut tx, user.id, &digest).await?;
    audit::record(
        &mut tx,
        Event::new(actor::CLI, Action::TokenCreated).with_detail(json!({
            "token_id": created.id,
            "user_id": user.id,
            "email": user.email,
        })),
    )
    .await?;
    tx.commit().await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created API token {} for {} (shown once, store it now):",
        created.id, user.email
    )?;
    writeln!(out, "{}", token.as_str())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(app: &App) -> anyhow::Result<ExitCode> {
    let report = audit::verify(app.store()).await?;
    match &report.broken {
        None => {
            println!(
                "audit chain ok: {} events, head seq {} hash {}",
                report.rows_checked,
                report.last_seq,
                hex::encode(report.head_hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(broken) => {
            println!(
                "audit chain broken at seq {} ({:?})",
                broken.seq, broken.kind
            );
            Ok(ExitCode::from(1))
        }
    }
}

async fn audit_export(
    app: &App,
    format: ExportFormat,
    since: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let since_ms = match since {
        Some(text) => Some(
            clock::parse_rfc3339(text)
                .with_context(|| format!("--since {text:?} is not an RFC 3339 date-time"))?,
        ),
        None => None,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let count = audit::export(app.store(), format, since_ms, &mut out).await?;
    drop(out);
    audit::append(
        app.store(),
        Event::new(actor::CLI, Action::AuditExported).with_detail(json!({
            "format": match format { ExportFormat::Jsonl => "jsonl", ExportFormat::Csv => "csv" },
            "since": since,
            "events": count,
        })),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

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
            Ok(Command::User {
                command: UserCommand::Add { email, role },
            }) => {
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
