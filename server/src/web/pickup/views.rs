//! The pickup pages' templates and the HTML sanitiser for message bodies.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use askama::Template;
use time::OffsetDateTime;

use crate::web::page::Layout;

/// A short message above a form.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `error`, `warn` or `ok` (a CSS class).
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn error(text: impl Into<String>) -> Option<Self> {
        Some(Self {
            kind: "error",
            text: text.into(),
        })
    }
}

#[derive(Template)]
#[template(path = "pages/landing.html")]
pub struct LandingPage<'a> {
    pub layout: Layout,
    pub pickup_id: &'a str,
    pub sender: &'a str,
    pub masked_recipient: &'a str,
    pub expires: String,
    pub passphrase_required: bool,
    /// Show the open form rather than "email me a code" (passphrase messages, or already
    /// verified in this session).
    pub show_open_form: bool,
    pub notice: Option<Notice>,
}

/// A recipient locked for every client: when and how it can be unlocked.
#[derive(Template)]
#[template(path = "pages/locked.html")]
pub struct LockedPage<'a> {
    pub layout: Layout,
    pub pickup_id: &'a str,
    pub sender: &'a str,
    pub masked_recipient: &'a str,
    pub expires: String,
    /// When a code can unlock it (already now if `code_now`).
    pub code_from: String,
    pub code_now: bool,
}

#[derive(Template)]
#[template(path = "pages/code.html")]
pub struct CodePage<'a> {
    pub layout: Layout,
    pub pickup_id: &'a str,
    pub masked_recipient: &'a str,
    /// Set right after a code was sent.
    pub valid_minutes: Option<u32>,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "pages/open.html")]
pub struct OpenPage<'a> {
    pub layout: Layout,
    pub pickup_id: &'a str,
    pub passphrase_required: bool,
    pub notice: Option<Notice>,
}

/// One attachment row.
#[derive(Debug)]
pub struct AttachmentRow {
    pub part_no: u32,
    pub filename: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage<'a> {
    pub layout: Layout,
    pub pickup_id: &'a str,
    pub subject: &'a str,
    pub sender: String,
    pub sent: String,
    pub expires: String,
    pub text: Option<&'a str>,
    /// Sanitised HTML for the sandboxed frame (escaped once more into `srcdoc` by askama).
    pub html: Option<String>,
    pub attachments: Vec<AttachmentRow>,
    /// The link secret and passphrase, carried in the download forms' hidden fields. This page
    /// is `no-store`.
    pub k: &'a str,
    pub passphrase: Option<&'a str>,
}

/// `12 March 2026, 14:05 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {} {}, {:02}:{:02} UTC",
        t.day(),
        t.month(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// `1.4 MB`, `512 bytes`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return if bytes == 1 {
            "1 byte".to_owned()
        } else {
            format!("{bytes} bytes")
        };
    }
    // Precision loss is irrelevant for a display size.
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// Image types allowed as inline `data:` images (no SVG: it can carry script and links).
const INLINE_IMAGE_TYPES: [&str; 4] = [
    "data:image/png",
    "data:image/jpeg",
    "data:image/gif",
    "data:image/webp",
];

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(HashSet::from(["http", "https", "mailto", "data"]))
        // A relative URL would resolve against this site inside the frame.
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .attribute_filter(filter_attribute);
    b
});

/// No remote images (they tell the sender's tracker when and where the message was read):
/// an `img` keeps only an inline raster `data:` source. `data:` URLs anywhere else go.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    let lower = value.trim_start().to_ascii_lowercase();
    if element == "img" && attribute == "src" {
        let inline = INLINE_IMAGE_TYPES.iter().any(|t| {
            lower
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with(';') || rest.starts_with(','))
        });
        return inline.then_some(Cow::Borrowed(value));
    }
    if lower.starts_with("data:") {
        return None;
    }
    Some(Cow::Borrowed(value))
}

/// Sanitise a message's HTML body for display in the sandboxed frame.
pub fn sanitize_html(raw: &str) -> String {
    SANITIZER.clean(raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_sanitised() {
        let out = sanitize_html(
            r#"<p onclick="x()">Hi <script>alert(1)</script><a href="https://example.org/">link</a>
            <img src="https://tracker.example/p.gif"><img src="data:image/png;base64,AAAA" alt="i">
            <a href="javascript:alert(1)">js</a><a href="data:text/html,x">d</a><a href="/api/v1">rel</a>
            <iframe src="https://x"></iframe><form action="https://x"><input name="a"></form>
            <style>body{}</style></p>"#,
        );
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("tracker.example"), "{out}");
        assert!(out.contains(r#"src="data:image/png;base64,AAAA""#), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(!out.contains("data:text/html"), "{out}");
        assert!(!out.contains("/api/v1"), "{out}");
        assert!(
            !out.contains("<iframe") && !out.contains("<form") && !out.contains("<input"),
            "{out}"
        );
        assert!(!out.contains("body{}"), "{out}");
        assert!(out.contains(r#"rel="noopener noreferrer""#), "{out}");
        assert!(out.contains(r#"target="_blank""#), "{out}");
        assert!(out.contains(r#"href="https://example.org/""#), "{out}");
    }

    #[test]
    fn sizes() {
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(1_400_000), "1.4 MB");
        assert_eq!(format_size(25_000), "25 KB");
    }
}
