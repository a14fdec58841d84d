//! `sealpost user add|list|disable`: staff accounts. `add` prints the generated password once;
//! every change is audited (actor `cli`) in the same transaction as the change.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use crate::app::{self, App};
use crate::audit::{self, Action, Event, actor};
use crate::clock;
use crate::store::users::{self, Role};

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

/// Run one `user` command.
pub async fn run(app: &App, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { email, role } => user_add(app, &email, role).await,
        UserCommand::List => user_list(app).await,
        UserCommand::Disable { email } => user_disable(app, &email).await,
    }
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
