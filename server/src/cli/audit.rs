//! `sealpost audit verify|export`: check the hash chain end to end (exit 1 naming the first
//! bad sequence number), or export events as JSON lines or CSV (the export is itself audited).

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Action, Event, ExportFormat, actor};
use crate::clock;

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

/// Run one `audit` command.
pub async fn run(app: &App, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => audit_verify(app).await,
        AuditCommand::Export { format, since } => audit_export(app, format, since.as_deref()).await,
    }
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
