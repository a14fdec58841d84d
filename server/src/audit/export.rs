//! Export of the audit log for SIEMs and auditors: JSON lines or CSV, in seq order.

use std::io::Write;

use serde::Serialize;

use crate::clock::{UnixMillis, format_rfc3339};
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{Store, StoreError};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write export")]
    Io(#[from] std::io::Error),
}

#[derive(Serialize)]
struct JsonRow<'a> {
    seq: i64,
    ts: UnixMillis,
    time: String,
    actor: &'a str,
    action: &'a str,
    message_id: Option<&'a str>,
    recipient_id: Option<&'a str>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    detail: serde_json::Value,
    prev_hash: String,
    hash: String,
}

fn write_jsonl(out: &mut dyn Write, row: &AuditRow) -> Result<(), ExportError> {
    let detail = serde_json::from_str(&row.detail)
        .unwrap_or_else(|_| serde_json::Value::String(row.detail.clone()));
    let json = JsonRow {
        seq: row.seq,
        ts: row.ts,
        time: format_rfc3339(row.ts),
        actor: &row.actor,
        action: &row.action,
        message_id: row.message_id.as_deref(),
        recipient_id: row.recipient_id.as_deref(),
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        detail,
        prev_hash: hex::encode(&row.prev_hash),
        hash: hex::encode(&row.hash),
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

const CSV_HEADER: &str =
    "seq,ts,time,actor,action,message_id,recipient_id,ip,user_agent,detail,prev_hash,hash\r\n";

/// Quote a CSV field (RFC 4180). Fields a spreadsheet would run as a formula (leading `=`,
/// `+`, `-`, `@`, tab, CR) get a leading `'`; the JSONL export is the exact record.
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn write_csv(out: &mut dyn Write, row: &AuditRow) -> Result<(), ExportError> {
    let fields = [
        row.seq.to_string(),
        row.ts.to_string(),
        format_rfc3339(row.ts),
        csv_field(&row.actor),
        csv_field(&row.action),
        csv_field(row.message_id.as_deref().unwrap_or("")),
        csv_field(row.recipient_id.as_deref().unwrap_or("")),
        csv_field(row.ip.as_deref().unwrap_or("")),
        csv_field(row.user_agent.as_deref().unwrap_or("")),
        csv_field(&row.detail),
        hex::encode(&row.prev_hash),
        hex::encode(&row.hash),
    ];
    out.write_all(fields.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    Ok(())
}

const PAGE: i64 = 1000;

/// Write every event (or those with `ts >= since`, Unix ms) to `out` in seq order. Returns the
/// number of events written.
pub async fn export(
    store: &Store,
    format: ExportFormat,
    since: Option<UnixMillis>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut tx = store.begin_read().await?;
    if format == ExportFormat::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut written = 0u64;
    let mut after = i64::MIN;
    loop {
        let page = match since {
            Some(since) => rows::page_after_since(&mut tx, after, since, PAGE).await?,
            None => rows::page_after(&mut tx, after, PAGE).await?,
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            match format {
                ExportFormat::Jsonl => write_jsonl(out, row)?,
                ExportFormat::Csv => write_csv(out, row)?,
            }
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_quoting_and_formula_guard() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(
            csv_field("{\"a\":1,\"b\":2}"),
            "\"{\"\"a\"\":1,\"\"b\"\":2}\""
        );
    }
}
