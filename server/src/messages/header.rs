//! The header block: part 0 of every message, encrypted like any other part. It holds what
//! the pickup page shows besides the bodies (subject, sender's display name, part list with
//! file names) — protected information that must not sit in clear columns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    Text,
    Html,
    Attachment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartEntry {
    pub part_no: u32,
    pub kind: PartKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
}

/// Serialised as JSON into part 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeaderBlock {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    pub parts: Vec<PartEntry>,
}

/// An attachment as listed to the recipient.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentInfo {
    pub part_no: u32,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

impl HeaderBlock {
    pub fn attachments(&self) -> Vec<AttachmentInfo> {
        self.parts
            .iter()
            .filter(|p| p.kind == PartKind::Attachment)
            .map(|p| AttachmentInfo {
                part_no: p.part_no,
                filename: p
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("attachment-{}", p.part_no)),
                content_type: p.content_type.clone(),
                size: p.size,
            })
            .collect()
    }

    pub fn first(&self, kind: PartKind) -> Option<&PartEntry> {
        self.parts.iter().find(|p| p.kind == kind)
    }
}
