//! `sealpost audit verify|export|checkpoint|checkpoints|public-key`: check the hash chain end
//! to end (exit 1 naming the first bad sequence number), and that the log extends a signed
//! checkpoint kept elsewhere (exit 1 naming what failed); export events as JSON lines or CSV
//! (the export is itself audited); sign a checkpoint (audited), list the stored ones, print
//! the key that verifies them.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use serde_json::json;

use crate::app::App;
use crate::audit::checkpoint::{self, MAX_NOTE_BYTES, SignError, VerifierKey};
use crate::audit::{self, Action, Event, ExportFormat, actor};
use crate::clock;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain end to end; exit 1 naming the first bad seq if it is broken.
    /// With --checkpoint, also that the log still extends that checkpoint (exit 1 naming what
    /// failed: a bad signature, deleted rows, a rewritten chain).
    Verify {
        /// A checkpoint kept outside the database (from `sealpost audit checkpoint`, or a
        /// witness's mail).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The key that signed it, as `sealpost audit public-key` prints it; by default this
        /// instance's checkpoint key.
        #[arg(long, value_name = "PUBLIC_KEY", requires = "checkpoint")]
        key: Option<String>,
    },
    /// Sign a checkpoint of the log's head (audited as checkpoint_signed) and print it.
    Checkpoint {
        /// Write the checkpoint to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the newest stored checkpoints, newest first: seq, time signed, head hash.
    Checkpoints {
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Print the public key that verifies this instance's checkpoints.
    PublicKey,
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
        AuditCommand::Verify {
            checkpoint: None, ..
        } => audit_verify(app).await,
        AuditCommand::Verify {
            checkpoint: Some(path),
            key,
        } => verify_checkpoint(app, &path, key.as_deref()).await,
        AuditCommand::Export { format, since } => audit_export(app, format, since.as_deref()).await,
        AuditCommand::Checkpoint { out } => sign_checkpoint(app, out.as_deref()).await,
        AuditCommand::Checkpoints { limit } => list_checkpoints(app, limit).await,
        AuditCommand::PublicKey => {
            println!("{}", app.state().checkpoint_key.verifier());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Sign, store and print (or write) a checkpoint; exit 1 when the log does not hold.
async fn sign_checkpoint(app: &App, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let signed = match checkpoint::sign(
        app.store(),
        &app.state().checkpoint_key,
        &app.config().checkpoint_origin,
        actor::CLI,
    )
    .await
    {
        Ok(signed) => signed,
        Err(SignError::Store(e)) => return Err(e.into()),
        Err(refused) => {
            println!("{refused}");
            return Ok(ExitCode::from(1));
        }
    };
    match out {
        Some(path) => {
            std::fs::write(path, &signed.note)
                .with_context(|| format!("cannot write the checkpoint to {}", path.display()))?;
            println!(
                "checkpoint at seq {} written to {}",
                signed.checkpoint.seq,
                path.display()
            );
        }
        None => print!("{}", signed.note),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_checkpoints(app: &App, limit: u32) -> anyhow::Result<ExitCode> {
    for row in checkpoint::latest(app.store(), limit).await? {
        println!(
            "{}\t{}\t{}",
            row.seq,
            clock::format_rfc3339(row.signed_at),
            base64::engine::general_purpose::STANDARD.encode(&row.head_hash)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint file's bytes, at most one more than a checkpoint may have.
fn read_checkpoint_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read checkpoint file {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_NOTE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read checkpoint file {}", path.display()))?;
    Ok(bytes)
}

/// `audit verify --checkpoint`: the signature, the origin, then the chain against the
/// checkpoint's head. Exit 1 with `checkpoint does not verify: <what failed>`.
async fn verify_checkpoint(app: &App, path: &Path, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(text) => VerifierKey::parse(text).context("--key is not a checkpoint public key")?,
        None => app.state().checkpoint_key.verifier(),
    };
    let bytes = read_checkpoint_file(path)?;
    let refuse = |reason: &dyn std::fmt::Display| {
        println!("checkpoint does not verify: {reason}");
        Ok(ExitCode::from(1))
    };
    let signed = match checkpoint::open(&bytes, &key) {
        Ok(signed) => signed,
        Err(e) => return refuse(&e),
    };
    let origin = &app.config().checkpoint_origin;
    if &signed.origin != origin {
        return refuse(&format_args!(
            "it is a checkpoint of {:?}, and this log is {origin:?} (checkpoint_origin)",
            signed.origin
        ));
    }
    let comparison = checkpoint::compare(app.store(), &signed).await?;
    if let Some(mismatch) = comparison.mismatch {
        return refuse(&mismatch);
    }
    let report = comparison.report;
    println!(
        "audit chain ok: {} events, head seq {} hash {}",
        report.rows_checked,
        report.last_seq,
        hex::encode(report.head_hash)
    );
    println!(
        "checkpoint ok: the log extends the checkpoint of {} at seq {}, signed {} by {}",
        signed.origin,
        signed.seq,
        clock::format_rfc3339(signed.time),
        key.label()
    );
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
