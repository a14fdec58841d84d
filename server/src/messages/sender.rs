//! The sender's side: how a sender is named to recipients, what happened to a message they
//! sent, and withdrawing it.
//!
//! A sender is named by what Sealpost checked: the staff user of an API token, or the envelope
//! sender that an authenticated relay (or an allowed network) gave. The display name beside it
//! comes from the message's own `From:` header, which nobody vouched for, so
//! [`clean_display_name`] keeps it from passing for an address, a link or reordered text.

use serde::Serialize;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
use uuid::Uuid;

use super::{PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::{format_rfc3339, now_ms};
use crate::ids::MessageId;
use crate::store::{messages as rows, recipients};

/// The most characters of a display name shown.
const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// A sender's display name as notifications and pages show it, beside the address Sealpost
/// checked; `None` when nothing presentable is left.
///
/// Dropped: every word that could pass for an address or a link (one with `@`, `<` or `>`,
/// also in their full-width and other compatibility forms, with `://`, starting with `www.`,
/// or holding a domain name such as `yourbank.example`); control, format (bidi overrides,
/// zero-width characters, the byte order mark), private-use and unassigned characters. Any
/// run of spaces and line breaks becomes one space, and the name is cut to 64 characters.
pub fn clean_display_name(raw: &str) -> Option<String> {
    let visible: String = raw
        .chars()
        .filter_map(|c| match c.general_category_group() {
            _ if c.is_whitespace() => Some(' '),
            GeneralCategoryGroup::Other => None,
            GeneralCategoryGroup::Separator => Some(' '),
            _ => Some(c),
        })
        .collect();
    let words: Vec<&str> = visible
        .split_whitespace()
        .filter(|word| !looks_like_an_address(word))
        .collect();
    let name: String = words
        .join(" ")
        .chars()
        .take(MAX_DISPLAY_NAME_CHARS)
        .collect();
    let name = name.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':'));
    (!name.is_empty()).then(|| name.to_owned())
}

/// Whether `word` could be read as a mail address, a URL or a domain name.
fn looks_like_an_address(word: &str) -> bool {
    let folded: String = word.nfkc().flat_map(char::to_lowercase).collect();
    folded.contains(['@', '<', '>'])
        || folded.contains("://")
        || folded.starts_with("www.")
        || folded
            .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-'))
            .any(is_domain_name)
}

/// `label.label...tld` with a final label of at least two letters: `yourbank.example`, not
/// `Dr.` or `1.5`.
fn is_domain_name(text: &str) -> bool {
    let labels: Vec<&str> = text.trim_end_matches('.').split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty())
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    pub address: String,
    pub notified_at: Option<String>,
    pub first_opened_at: Option<String>,
    pub last_opened_at: Option<String>,
    pub open_count: i64,
    pub locked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SenderView {
    pub id: MessageId,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub purged_at: Option<String>,
    pub size: i64,
    pub recipients: Vec<RecipientView>,
}

/// One of the sender's own messages; anyone else's is `NotFound`.
pub async fn sender_view(
    app: &AppState,
    user_id: Uuid,
    message_id: MessageId,
) -> Result<SenderView, PickupError> {
    let mut tx = app.store.begin_read().await?;
    let m = rows::sender_message(&mut tx, &user_id.to_string(), message_id)
        .await?
        .ok_or(PickupError::NotFound)?;
    let recipients = recipients::recipients_of(&mut tx, m.id).await?;
    let fmt = |t: Option<i64>| t.map(format_rfc3339);
    Ok(SenderView {
        created_at: format_rfc3339(m.created_at),
        expires_at: format_rfc3339(m.expires_at),
        revoked_at: fmt(m.revoked_at),
        purged_at: fmt(m.purged_at),
        size: m.total_bytes,
        recipients: recipients
            .into_iter()
            .map(|r| RecipientView {
                address: r.address,
                notified_at: fmt(r.notified_at),
                first_opened_at: fmt(r.first_opened_at),
                last_opened_at: fmt(r.last_opened_at),
                open_count: r.open_count,
                locked: r.locked_at.is_some(),
            })
            .collect(),
        id: m.id,
    })
}

/// Withdraw a message: it stops opening at once, and its keys and ciphertext are shredded in
/// the same transaction; the WAL is then checkpointed, so no copy of them stays on disk.
pub async fn revoke(
    app: &AppState,
    user_id: Uuid,
    message_id: MessageId,
    ctx: &RequestCtx,
) -> Result<(), PickupError> {
    let id = message_id;
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    rows::sender_message(&mut tx, &user_id.to_string(), id)
        .await?
        .ok_or(PickupError::NotFound)?;
    if rows::revoke(&mut tx, id, now).await? {
        audit::record(&mut tx, ctx.event(Action::Revoked).with_message(id)).await?;
    }
    if crate::store::purge::shred(&mut tx, id, now).await? {
        audit::record(
            &mut tx,
            ctx.event(Action::Purged)
                .with_message(id)
                .with_detail(json!({ "reason": "revoked" })),
        )
        .await?;
    }
    tx.commit().await?;
    // Outside the transaction: the pages the shredding zeroed replace every older copy.
    let mut conn = app.store.acquire().await?;
    if !crate::store::purge::checkpoint(&mut conn).await? {
        tracing::warn!(
            message_id = %id,
            "the WAL could not be checkpointed after a revocation; the purge job tries again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::EmailAddress;
    use crate::smtp::session::Transaction;
    use crate::store::testing::{chunk_bytes, files_holding, wrapped_dek_of};
    use crate::testing::{SENDER, TestApp};

    /// A relayed message whose `From:` name poses as someone else, by an envelope sender the
    /// relay vouches for.
    const SPOOFED: &str = "From: \"IT Helpdesk <helpdesk@yourbank.example>\" <ann@clinic.example>\r\n\
                           To: bob@example.org\r\n\
                           Subject: Your account\r\n\
                           \r\n\
                           Please confirm your password.\r\n";

    #[tokio::test]
    async fn a_from_name_cannot_pose_as_another_sender() -> anyhow::Result<()> {
        let t = TestApp::new().await?;
        let envelope = Transaction {
            from: EmailAddress::parse("ann@clinic.example")?,
            rcpts: vec![EmailAddress::parse("bob@example.org")?],
        };
        let ctx = RequestCtx {
            actor: "relay:clinic".to_owned(),
            ..RequestCtx::default()
        };
        crate::smtp::mime::submit(t.state(), &envelope, SPOOFED.as_bytes().to_vec(), &ctx).await?;
        let mails = t.outbox()?;
        let mail = mails
            .last()
            .ok_or_else(|| anyhow::anyhow!("no notification"))?;
        assert_eq!(
            mail.subject,
            "A secure message from IT Helpdesk <ann@clinic.example> is waiting for you"
        );
        for body in [&mail.text, &mail.html] {
            assert!(!body.contains("yourbank"), "{body}");
            assert!(body.contains("ann@clinic.example"), "{body}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn revoking_leaves_no_copy_of_the_key_or_the_ciphertext_on_disk() -> anyhow::Result<()> {
        let t = TestApp::new().await?;
        let sender = t.add_sender(SENDER).await?;
        let submitted = t
            .submit(
                &sender,
                &["bob@example.org"],
                &"a confidential line\n".repeat(5000),
                None,
            )
            .await?;
        let id = submitted.id.to_string();
        let link = t.notification_to("bob@example.org")?;
        let wrapped = wrapped_dek_of(t.store(), &link.pickup_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no wrapped key"))?;
        // The key's ciphertext and tag (its first bytes, version and key id, are shared), and
        // a stretch from the middle of the body's first chunk.
        let key = &wrapped[wrapped.len() - 48..];
        let chunk = chunk_bytes(t.store(), &id, 1).await?;
        let chunk = &chunk[chunk.len() / 2..chunk.len() / 2 + 64];
        let db = crate::store::Store::sqlite_file(&t.config().database_url)
            .ok_or_else(|| anyhow::anyhow!("no database file"))?;
        assert!(!files_holding(&db, key)?.is_empty(), "the key is stored");
        assert!(
            !files_holding(&db, chunk)?.is_empty(),
            "the chunk is stored"
        );

        revoke(
            t.state(),
            sender.user_id,
            submitted.id,
            &RequestCtx::default(),
        )
        .await?;
        assert_eq!(
            files_holding(&db, key)?,
            Vec::<String>::new(),
            "wrapped key"
        );
        assert_eq!(
            files_holding(&db, chunk)?,
            Vec::<String>::new(),
            "ciphertext"
        );
        Ok(())
    }

    #[test]
    fn display_names_keep_names_and_lose_addresses() {
        for (raw, shown) in [
            ("Dr Ann Example", Some("Dr Ann Example")),
            ("  Ann\t\r\n  Example ", Some("Ann Example")),
            ("J.R.R. Tolkien", Some("J.R.R. Tolkien")),
            ("Zoë Ørsted-Ñúñez", Some("Zoë Ørsted-Ñúñez")),
            ("山田 太郎", Some("山田 太郎")),
            (
                "IT Helpdesk <helpdesk@yourbank.example>",
                Some("IT Helpdesk"),
            ),
            (
                "IT Helpdesk (helpdesk@yourbank.example)",
                Some("IT Helpdesk"),
            ),
            ("Ann, <ann@clinic.example>", Some("Ann")),
            ("helpdesk@yourbank.example", None),
            ("<helpdesk>", None),
            ("Security ＜team＠bank＞", Some("Security")),
            ("Support﹫bank", None),
            (
                "Log in at https://yourbank.example/login",
                Some("Log in at"),
            ),
            ("Visit www.yourbank", Some("Visit")),
            ("Billing yourbank.example", Some("Billing")),
            ("Billing YOURBANK.EXAMPLE.", Some("Billing")),
            ("helpdesk(at)yourbank.com Team", Some("Team")),
            ("ｙｏｕｒｂａｎｋ．ｃｏｍ Support", Some("Support")),
            ("Version 1.5", Some("Version 1.5")),
            ("", None),
            ("   ", None),
        ] {
            assert_eq!(clean_display_name(raw).as_deref(), shown, "{raw:?}");
        }
    }

    #[test]
    fn display_names_lose_invisible_and_reordering_characters() {
        // Right-to-left override, zero-width space and joiner, byte order mark, word joiner,
        // left-to-right isolate, a private-use character, NUL and DEL.
        let raw = "IT\u{202E}Help\u{200B}desk\u{200D}\u{FEFF} \u{2060}Team\u{2066}\u{E000}\0\x7f";
        assert_eq!(clean_display_name(raw).as_deref(), Some("ITHelpdesk Team"));
        // A paragraph separator or no-break space separates words like a space.
        assert_eq!(
            clean_display_name("Ann\u{2029}Example\u{00A0}MD").as_deref(),
            Some("Ann Example MD")
        );
        assert_eq!(clean_display_name("\u{202E}\u{200B}"), None);
    }

    #[test]
    fn display_names_are_bounded() {
        let long = "Ann ".repeat(100);
        let name = clean_display_name(&long).unwrap_or_default();
        assert!(name.chars().count() <= MAX_DISPLAY_NAME_CHARS, "{name}");
        assert!(
            name.starts_with("Ann Ann") && !name.ends_with(' '),
            "{name:?}"
        );
        let wide = "界".repeat(1000);
        assert_eq!(
            clean_display_name(&wide).map(|n| n.chars().count()),
            Some(MAX_DISPLAY_NAME_CHARS)
        );
    }
}
