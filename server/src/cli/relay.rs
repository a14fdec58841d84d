//! `sealpost relay add|list|remove`: the credentials SMTP clients authenticate with.
//!
//! Output contract: `relay add` prints the generated password as the last line of stdout,
//! once; only its Argon2id hash is stored. Every change is audited (actor `cli`) in the same
//! transaction as the change.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use crate::app::{self, App};
use crate::audit::{self, Action, Event, actor};
use crate::clock;
use crate::store::relays;

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

/// Run one `relay` command.
pub async fn run(app: &App, command: RelayCommand) -> anyhow::Result<ExitCode> {
    match command {
        RelayCommand::Add { name } => relay_add(app, &name).await?,
        RelayCommand::List => relay_list(app).await?,
        RelayCommand::Remove { name } => relay_remove(app, &name).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A relay name: 1 to 64 of `A-Z a-z 0-9 . _ - @`, so it can be typed as a SASL user name in
/// any MTA's configuration without quoting.
pub fn check_relay_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        bail!("{name:?} is not a valid relay name (1-64 of A-Z a-z 0-9 . _ - @)");
    }
    Ok(())
}

/// Create a relay credential and print its generated password (last line).
pub async fn relay_add(app: &App, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    check_relay_name(name)?;
    let password = sealpost_crypto::password::generate();
    let hash = app::hash_password(password.clone()).await?;
    let mut tx = app.store().begin_write().await?;
    let relay = match relays::insert(&mut tx, name, &hash).await {
        Ok(r) => r,
        Err(e) if e.is_unique_violation() => bail!("a relay named {name} already exists"),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        Event::new(actor::CLI, Action::RelayAdded)
            .with_detail(json!({ "relay_id": relay.id, "relay": relay.name })),
    )
    .await?;
    tx.commit().await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "added SMTP relay {} (user name {}); its password, shown once:",
        relay.name, relay.name
    )?;
    writeln!(out, "{}", password.as_str())?;
    out.flush()?;
    Ok(())
}

/// List relays (never their hashes).
pub async fn relay_list(app: &App) -> anyhow::Result<()> {
    let mut conn = app.store().acquire().await?;
    let all = relays::list(&mut conn).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "name\tstatus\tcreated\tlast_used")?;
    for r in all {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            r.name,
            if r.disabled { "disabled" } else { "active" },
            clock::format_rfc3339(r.created_at),
            r.last_used_at
                .map_or_else(|| "never".to_owned(), clock::format_rfc3339)
        )?;
    }
    Ok(())
}

/// Delete a relay credential; sessions already authenticated with it end at their QUIT.
pub async fn relay_remove(app: &App, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    let mut tx = app.store().begin_write().await?;
    let Some(relay) = relays::remove(&mut tx, name).await? else {
        bail!("no relay named {name}");
    };
    audit::record(
        &mut tx,
        Event::new(actor::CLI, Action::RelayRemoved)
            .with_detail(json!({ "relay_id": relay.id, "relay": relay.name })),
    )
    .await?;
    tx.commit().await?;
    println!("removed SMTP relay {}", relay.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_relay_name;

    #[test]
    fn relay_names() {
        for ok in ["postfix-1", "exchange.online", "mta@clinic.example"] {
            assert!(check_relay_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "x\0", &"x".repeat(65), "naïve"] {
            assert!(check_relay_name(bad).is_err(), "{bad:?}");
        }
    }
}
