//! The header block: part 0 of every message, encrypted like any other part. It holds what
//! the pickup page shows besides the bodies (subject, sender's display name, part list with
//! file names) — protected information that must not sit in clear columns.

use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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

/// A file name as shown to the recipient and offered on download: the last path segment of
/// what the sender declared, without control characters and without invisible format
/// characters, at most 255 characters; `fallback` (cleaned the same way, else "attachment")
/// when nothing usable is left. Every source (API, SMTP, compose page) goes through this one
/// function.
///
/// Format characters (Unicode category Cf: bidi overrides and isolates such as U+202E, zero-width
/// spaces and joiners, the BOM, soft hyphens) and line or paragraph separators are removed,
/// so that a name reads as what it is: `invoice\u{202e}fdp.exe` would show as
/// "invoiceexe.pdf", and is offered as `invoicefdp.exe`.
pub fn clean_file_name(declared: Option<&str>, fallback: &str) -> String {
    let visible = |c: &char| {
        !matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
    };
    let clean = |s: &str| -> String {
        s.rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .chars()
            .filter(visible)
            .take(255)
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let usable = |n: &String| !n.is_empty() && n != "." && n != "..";
    let name = clean(declared.unwrap_or_default());
    if usable(&name) {
        return name;
    }
    let fallback = clean(fallback);
    if usable(&fallback) {
        fallback
    } else {
        "attachment".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::clean_file_name;

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(
            clean_file_name(Some("C:\\Users\\x\\report.pdf"), "d"),
            "report.pdf"
        );
        assert_eq!(clean_file_name(Some("../../etc/passwd"), "d"), "passwd");
        assert_eq!(clean_file_name(Some("a\r\nb.txt"), "d"), "ab.txt");
        assert_eq!(clean_file_name(Some("a\u{0}b"), "d"), "ab");
        assert_eq!(clean_file_name(Some(".."), "d"), "d");
        assert_eq!(clean_file_name(None, "x/y.eml"), "y.eml");
        assert_eq!(clean_file_name(None, ""), "attachment");
        assert_eq!(clean_file_name(Some(&"n".repeat(300)), "d").len(), 255);
    }

    #[test]
    fn file_names_lose_invisible_format_characters() {
        // Right-to-left override: "invoice\u{202e}fdp.exe" displays as "invoiceexe.pdf".
        assert_eq!(
            clean_file_name(Some("invoice\u{202e}fdp.exe"), "d"),
            "invoicefdp.exe"
        );
        // Isolates, embeddings and marks of the bidi algorithm.
        assert_eq!(
            clean_file_name(
                Some("a\u{2067}b\u{2069}\u{202b}c\u{202c}\u{200f}\u{061c}.txt"),
                "d"
            ),
            "abc.txt"
        );
        // Zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen, separators.
        assert_eq!(
            clean_file_name(
                Some("\u{feff}re\u{200b}po\u{200c}rt\u{200d}\u{2060}\u{ad}\u{2028}\u{2029}.pdf"),
                "d"
            ),
            "report.pdf"
        );
        assert_eq!(clean_file_name(Some("\u{202e}\u{200b}"), "x.eml"), "x.eml");
        // Visible characters of every script stay.
        assert_eq!(
            clean_file_name(Some("Отчёт 報告 تقرير.pdf"), "d"),
            "Отчёт 報告 تقرير.pdf"
        );
    }
}
