//! `sealpost token create`: API tokens. The token is printed once as the last line of output;
//! only its digest is stored, and the creation is audited (actor `cli`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Action, Event, actor};
use crate::store::{tokens, users};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the token is the last line of output, shown once.
    Create {
        #[arg(long)]
        email: String,
    },
}

/// Run one `token` command.
pub async fn run(app: &App, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { email } => token_create(app, &email).await,
    }
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
