//! The file outbox (`<data_dir>/outbox/*.eml`) the server under test writes its mail to:
//! each [`Mail`] decoded, the pickup link of a notification, the one-time code of a code mail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::app::App;
use super::files::text;

/// Outbox mails already parsed, by path (a mail is renamed into place whole and never changes
/// afterwards).
pub(super) type OutboxCache = Mutex<BTreeMap<PathBuf, Mail>>;

impl App {
    /// Every mail in the outbox, oldest first (file names are UUIDv7, so they sort by time).
    pub fn outbox(&self) -> Vec<Mail> {
        let dir = self.data_dir.join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        let mut cache = self
            .outbox_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        paths
            .iter()
            .map(|p| {
                cache
                    .entry(p.clone())
                    .or_insert_with(|| Mail::read(p))
                    .clone()
            })
            .collect()
    }

    /// The newest mail to `address`; panics if there is none.
    pub fn last_mail_to(&self, address: &str) -> Mail {
        self.outbox()
            .into_iter()
            .rev()
            .find(|m| m.to.eq_ignore_ascii_case(address))
            .unwrap_or_else(|| panic!("no mail to {address} in the outbox"))
    }

    /// Every notification (a mail with a pickup link) in the outbox, oldest first; to
    /// `address` when given.
    pub fn notifications(&self, address: Option<&str>) -> Vec<Mail> {
        self.outbox()
            .into_iter()
            .filter(|m| address.is_none_or(|a| m.to.eq_ignore_ascii_case(a)))
            .filter(|m| m.text.contains("/p/"))
            .collect()
    }

    /// The pickup link of the newest notification to `address`, if there is one yet.
    pub fn find_notification_link(&self, address: &str) -> Option<PickupLink> {
        self.notifications(Some(address))
            .last()
            .map(|mail| mail.link(&self.base_url))
    }

    /// The pickup link of the newest notification to `address`; panics if there is none.
    pub fn notification_link(&self, address: &str) -> PickupLink {
        self.find_notification_link(address)
            .unwrap_or_else(|| panic!("no notification to {address} in the outbox"))
    }
}

/// One `.eml` from the outbox, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub path: PathBuf,
    pub raw: Vec<u8>,
    pub to: String,
    pub subject: String,
    /// The decoded text/plain body.
    pub text: String,
    /// The decoded text/html body.
    pub html: String,
}

/// The parts of a pickup link `<base>/p/<pickup_id>#k=<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupLink {
    pub pickup_id: String,
    pub secret: String,
    /// The whole link.
    pub url: String,
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl Mail {
    pub fn read(path: &Path) -> Self {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{} is not a parseable mail", path.display()));
        let to = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        let subject = parsed.subject().unwrap_or_default().to_owned();
        let text = parsed
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let html = parsed
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            raw,
            to,
            subject,
            text,
            html,
        }
    }

    /// The pickup link in the text part; panics if there is none.
    pub fn link(&self, base_url: &str) -> PickupLink {
        let prefix = format!("{base_url}/p/");
        let start = self
            .text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no link {prefix}… in the mail:\n{}", self.text))
            + prefix.len();
        let rest = &self.text.as_bytes()[start..];
        let id_len = rest.iter().take_while(|b| is_b64url(**b)).count();
        let pickup_id = text(&rest[..id_len]);
        let after = &self.text[start + id_len..];
        let secret_part = after
            .strip_prefix("#k=")
            .unwrap_or_else(|| panic!("link without #k= in the mail:\n{}", self.text));
        let secret_len = secret_part.bytes().take_while(|b| is_b64url(*b)).count();
        let secret = secret_part[..secret_len].to_owned();
        assert!(!pickup_id.is_empty(), "empty pickup id in {}", self.text);
        assert_eq!(
            secret.len(),
            22,
            "link secret {secret:?} is not 22 characters"
        );
        PickupLink {
            url: format!("{prefix}{pickup_id}#k={secret}"),
            pickup_id,
            secret,
        }
    }

    /// The one 6-digit number in the text part (the one-time code); panics unless exactly one.
    pub fn code(&self) -> String {
        let codes = digit_runs(&self.text, 6);
        assert_eq!(
            codes.len(),
            1,
            "expected one 6-digit code in the mail:\n{}",
            self.text
        );
        codes[0].clone()
    }
}

/// Runs of exactly `len` ASCII digits (not part of a longer run).
pub fn digit_runs(s: &str, len: usize) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == len {
                out.push(s[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}
