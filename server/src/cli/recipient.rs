//! `sealpost recipient unlock`: lift a recipient's lockout (after too many failed attempts
//! from all clients together) and forget every client's failed attempts at it, for an admin
//! answering a recipient who cannot wait for the cool-down. Audited `unlocked` (actor `cli`)
//! in the same transaction as the change.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::app::App;
use crate::audit::actor;
use crate::ids::MessageId;
use crate::messages::{self, EmailAddress, PickupError, RequestCtx, UnlockBy};

#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// Unlock the recipients of a message (all of them, or the one at --address).
    Unlock {
        /// The message id (as the API returned it).
        #[arg(long, value_name = "ID")]
        message: String,
        /// Only this recipient.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<String>,
    },
}

/// Run one `recipient` command.
pub async fn run(app: &App, command: RecipientCommand) -> anyhow::Result<ExitCode> {
    match command {
        RecipientCommand::Unlock { message, address } => {
            unlock(app, &message, address.as_deref()).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn unlock(app: &App, message: &str, address: Option<&str>) -> anyhow::Result<()> {
    let id: MessageId = message
        .trim()
        .parse()
        .with_context(|| format!("{message:?} is not a message id"))?;
    let address = address
        .map(|a| EmailAddress::parse(a.trim()))
        .transpose()
        .context("--address is not an email address")?;
    let ctx = RequestCtx {
        actor: actor::CLI.to_owned(),
        ..RequestCtx::default()
    };
    let unlocked = match messages::unlock(
        app.state(),
        UnlockBy::Admin,
        id,
        address.as_ref().map(EmailAddress::as_str),
        &ctx,
    )
    .await
    {
        Ok(unlocked) => unlocked,
        Err(PickupError::NotFound) => match &address {
            Some(a) => bail!("message {id} has no recipient {}", a.as_str()),
            None => bail!("no message {id}"),
        },
        Err(e) => return Err(e.into()),
    };
    for address in unlocked {
        println!("unlocked {address}");
    }
    Ok(())
}
