//! The domain's own tests: the functions of this module called directly, over a real
//! [`TestApp`] (migrated SQLite in a temp dir, file outbox). They prove the rules the contract
//! in `mod.rs` states — lockout counting, code expiry, reuse and rate, what a draft leaves
//! behind — so the HTTP and SMTP tests only prove how each outcome is rendered.
//!
//! Time is not faked: the domain reads the clock (`crate::clock::now_ms`), so where a test
//! needs time to have passed it moves the stored time instead (`store::testing`). Nothing
//! sleeps.

use sealpost_crypto::{LinkSecret, Passphrase};

use super::*;
use crate::app::AppState;
use crate::audit;
use crate::clock::now_ms;
use crate::ids::{MessageId, PickupId, RecipientId};
use crate::store::testing as rows;
use crate::testing::{PickupLink, SENDER, TestApp, TestSender};

type Result<T = ()> = anyhow::Result<T>;

const RECIPIENT: &str = "patient@example.org";
const PASSPHRASE: &str = "correct horse";

/// Who the tests act as: an anonymous web visitor.
fn visitor() -> RequestCtx {
    RequestCtx {
        actor: "anonymous".to_owned(),
        ..RequestCtx::default()
    }
}

/// One submitted message to [`RECIPIENT`], and the link from its notification.
struct Fixture {
    t: TestApp,
    sender: TestSender,
    message_id: MessageId,
    link: PickupLink,
    pickup: PickupId,
}

impl Fixture {
    /// A message without a passphrase, lockout after `threshold` failures.
    async fn new(threshold: u32) -> Result<Self> {
        Self::with(threshold, None).await
    }

    async fn with(threshold: u32, passphrase: Option<&str>) -> Result<Self> {
        let t = TestApp::builder()
            .set("lockout_threshold", threshold)
            .build()
            .await?;
        let sender = t.add_sender(SENDER).await?;
        let submitted = t
            .submit(&sender, &[RECIPIENT], "the results", passphrase)
            .await?;
        let link = t.notification_to(RECIPIENT)?;
        Ok(Self {
            pickup: link.pickup_id.parse()?,
            t,
            sender,
            message_id: submitted.id,
            link,
        })
    }

    fn app(&self) -> &AppState {
        self.t.state()
    }

    fn pickup(&self) -> &PickupId {
        &self.pickup
    }

    fn secret(&self) -> Result<LinkSecret> {
        Ok(LinkSecret::parse(&self.link.secret)?)
    }

    /// Email a code and read it from the outbox.
    async fn code(&self) -> Result<String> {
        request_code(self.app(), self.pickup(), &visitor()).await?;
        self.t.code_to(RECIPIENT)
    }

    /// A code by email, verified: the recipient id a session would hold.
    async fn verified(&self) -> Result<RecipientId> {
        let code = self.code().await?;
        Ok(verify_code(self.app(), self.pickup(), &code, &visitor())
            .await?
            .recipient_id)
    }

    async fn open(
        &self,
        secret: &LinkSecret,
        passphrase: Option<&str>,
        verified: Option<RecipientId>,
    ) -> std::result::Result<Opened, PickupError> {
        let passphrase = passphrase.map(|p| Passphrase::new(p.to_owned()));
        open(
            self.app(),
            self.pickup(),
            secret,
            passphrase,
            verified,
            &visitor(),
        )
        .await
    }

    /// `(failed_attempts, locked)` of the recipient.
    async fn failures(&self) -> Result<(i64, bool)> {
        Ok(rows::failures(self.t.store(), self.pickup().as_str()).await?)
    }

    /// How many audit events with `action` concern this message.
    async fn audited(&self, action: &str) -> Result<usize> {
        let id = self.message_id.to_string();
        Ok(rows::audited(self.t.store(), action)
            .await?
            .iter()
            .filter(|r| r.message_id.as_deref() == Some(id.as_str()))
            .count())
    }
}

/// A code other than `code`, of the same shape.
fn other_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

// ---- lockout ---------------------------------------------------------------------------------

/// Proof: each wrong link secret of a verified recipient counts, `remaining` counts down to
/// zero, the failure that reaches `lockout_threshold` locks (audited once as `locked`), and a
/// locked recipient is refused every step — even with the right secret — while the sender
/// sees it locked.
#[tokio::test]
async fn wrong_secrets_count_down_to_the_lockout() -> Result {
    let f = Fixture::new(3).await?;
    let verified = f.verified().await?;
    let wrong = LinkSecret::generate();

    let err = f.open(&wrong, None, Some(verified)).await;
    assert!(
        matches!(err, Err(PickupError::WrongSecret { remaining: 2 })),
        "{err:?}"
    );
    assert_eq!(f.failures().await?, (1, false));
    let err = f.open(&wrong, None, Some(verified)).await;
    assert!(
        matches!(err, Err(PickupError::WrongSecret { remaining: 1 })),
        "{err:?}"
    );
    let err = f.open(&wrong, None, Some(verified)).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    assert_eq!(f.failures().await?, (3, true));

    let err = f.open(&f.secret()?, None, Some(verified)).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    let err = landing(f.app(), f.pickup()).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    let err = request_code(f.app(), f.pickup(), &visitor()).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");

    // Refused while locked: not counted again.
    assert_eq!(f.failures().await?, (3, true));
    assert_eq!(f.audited("open_failed").await?, 3);
    assert_eq!(f.audited("locked").await?, 1);
    let view = sender_view(f.app(), f.sender.user_id, f.message_id).await?;
    assert!(view.recipients[0].locked, "{view:?}");
    assert!(audit::verify(f.t.store()).await?.ok());
    Ok(())
}

/// Proof: a wrong one-time code counts toward the same lockout, and `remaining` is the smaller
/// of what the lockout and the code allow (a code takes 5 wrong entries).
#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() -> Result {
    let f = Fixture::new(3).await?;
    let code = f.code().await?;
    let wrong = other_code(&code);
    for remaining in [2, 1] {
        let err = verify_code(f.app(), f.pickup(), wrong, &visitor()).await;
        assert!(
            matches!(err, Err(PickupError::WrongCode { remaining: r }) if r == remaining),
            "{err:?}"
        );
    }
    let err = verify_code(f.app(), f.pickup(), wrong, &visitor()).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    assert_eq!(f.failures().await?, (3, true));
    assert_eq!(f.audited("verify_failed").await?, 3);
    assert_eq!(f.audited("locked").await?, 1);
    // The right code no longer helps.
    let err = verify_code(f.app(), f.pickup(), &code, &visitor()).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    Ok(())
}

/// Proof: with the lockout far away, a code is dead after 5 wrong entries (`remaining` counts
/// them down from 4) and then refuses even the right code, uncounted; a new code works.
#[tokio::test]
async fn a_code_dies_after_five_wrong_entries() -> Result {
    let f = Fixture::new(10).await?;
    let code = f.code().await?;
    let wrong = other_code(&code);
    for remaining in [4, 3, 2, 1, 0] {
        let err = verify_code(f.app(), f.pickup(), wrong, &visitor()).await;
        assert!(
            matches!(err, Err(PickupError::WrongCode { remaining: r }) if r == remaining),
            "{err:?}"
        );
    }
    let err = verify_code(f.app(), f.pickup(), &code, &visitor()).await;
    assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
    assert_eq!(f.failures().await?, (5, false));
    f.verified().await?;
    Ok(())
}

/// Proof: opening a message without a passphrase needs the verified recipient; without it (or
/// with another recipient's id) it is `NotVerified`, and that is not counted as a guess.
#[tokio::test]
async fn opening_needs_the_verified_recipient_and_is_then_uncounted() -> Result {
    let f = Fixture::new(3).await?;
    for verified in [None, Some(RecipientId::generate())] {
        let err = f.open(&f.secret()?, None, verified).await;
        assert!(matches!(err, Err(PickupError::NotVerified)), "{err:?}");
    }
    assert_eq!(f.failures().await?, (0, false));
    assert_eq!(f.audited("open_failed").await?, 0);
    Ok(())
}

/// Proof: a passphrase takes the code's place: the right one opens without any code, a missing
/// one is `PassphraseRequired` (not counted), and wrong ones count toward the lockout like a
/// wrong secret.
#[tokio::test]
async fn a_passphrase_takes_the_place_of_the_code() -> Result {
    let f = Fixture::with(3, Some(PASSPHRASE)).await?;
    assert!(landing(f.app(), f.pickup()).await?.passphrase_required);
    let opened = f.open(&f.secret()?, Some(PASSPHRASE), None).await?;
    assert_eq!(opened.text.as_deref(), Some("the results"));

    let err = f.open(&f.secret()?, None, None).await;
    assert!(
        matches!(err, Err(PickupError::PassphraseRequired)),
        "{err:?}"
    );
    let err = f.open(&f.secret()?, Some(""), None).await;
    assert!(
        matches!(err, Err(PickupError::PassphraseRequired)),
        "{err:?}"
    );
    assert_eq!(f.failures().await?, (0, false));

    let err = f.open(&f.secret()?, Some("wrong"), None).await;
    assert!(
        matches!(err, Err(PickupError::WrongSecret { remaining: 2 })),
        "{err:?}"
    );
    let err = f.open(&f.secret()?, Some("wrong"), None).await;
    assert!(
        matches!(err, Err(PickupError::WrongSecret { remaining: 1 })),
        "{err:?}"
    );
    let err = f.open(&f.secret()?, Some("wrong"), None).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    let err = f.open(&f.secret()?, Some(PASSPHRASE), None).await;
    assert!(matches!(err, Err(PickupError::Locked)), "{err:?}");
    assert_eq!(f.failures().await?, (3, true));
    Ok(())
}

// ---- one-time codes --------------------------------------------------------------------------

/// Proof: a code opens the session once: used again, it is `CodeExpired`; a code whose ten
/// minutes are over is `CodeExpired` too (audited as `verify_failed`, not counted as a guess).
#[tokio::test]
async fn used_and_expired_codes_are_refused() -> Result {
    let f = Fixture::new(10).await?;
    let code = f.code().await?;
    verify_code(f.app(), f.pickup(), &code, &visitor()).await?;
    let err = verify_code(f.app(), f.pickup(), &code, &visitor()).await;
    assert!(
        matches!(err, Err(PickupError::CodeExpired)),
        "used: {err:?}"
    );

    let code = f.code().await?;
    let moved = rows::expire_codes(f.t.store(), f.pickup().as_str(), now_ms() - 1).await?;
    assert!(moved >= 1);
    let err = verify_code(f.app(), f.pickup(), &code, &visitor()).await;
    assert!(
        matches!(err, Err(PickupError::CodeExpired)),
        "expired: {err:?}"
    );
    assert_eq!(f.failures().await?, (0, false));
    assert_eq!(f.audited("verify_failed").await?, 2);
    assert_eq!(f.audited("verified").await?, 1);
    Ok(())
}

/// Proof: only the newest code counts: an older one is a wrong code once a newer was sent.
#[tokio::test]
async fn only_the_newest_code_counts() -> Result {
    let f = Fixture::new(10).await?;
    let first = f.code().await?;
    let second = f.code().await?;
    if first != second {
        let err = verify_code(f.app(), f.pickup(), &first, &visitor()).await;
        assert!(matches!(err, Err(PickupError::WrongCode { .. })), "{err:?}");
    }
    verify_code(f.app(), f.pickup(), &second, &visitor()).await?;
    Ok(())
}

/// Proof: a recipient gets at most 5 codes an hour: the 6th request is `TooManyRequests`,
/// sends nothing and is audited as `code_failed` (reason `rate_limited`).
#[tokio::test]
async fn at_most_five_codes_an_hour() -> Result {
    let f = Fixture::new(10).await?;
    for _ in 0..5 {
        request_code(f.app(), f.pickup(), &visitor()).await?;
    }
    let mails = f.t.outbox()?.len();
    let err = request_code(f.app(), f.pickup(), &visitor()).await;
    assert!(matches!(err, Err(PickupError::TooManyRequests)), "{err:?}");
    assert_eq!(f.t.outbox()?.len(), mails, "a refused request sent mail");
    assert_eq!(f.audited("code_sent").await?, 5);
    let failed = rows::audited(f.t.store(), "code_failed").await?;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].detail.contains("rate_limited"), "{failed:?}");
    Ok(())
}

// ---- opening, revoking, expiry ---------------------------------------------------------------

/// Proof: each open is recorded for the sender (first open, count) and audited `opened`.
#[tokio::test]
async fn each_open_is_recorded_for_the_sender() -> Result {
    let f = Fixture::new(10).await?;
    let verified = f.verified().await?;
    let view = sender_view(f.app(), f.sender.user_id, f.message_id).await?;
    assert!(view.recipients[0].notified_at.is_some(), "{view:?}");
    assert_eq!(view.recipients[0].open_count, 0);
    for _ in 0..2 {
        f.open(&f.secret()?, None, Some(verified)).await?;
    }
    let view = sender_view(f.app(), f.sender.user_id, f.message_id).await?;
    assert_eq!(view.recipients[0].open_count, 2, "{view:?}");
    assert!(view.recipients[0].first_opened_at.is_some(), "{view:?}");
    assert_eq!(f.audited("opened").await?, 2);
    assert!(audit::verify(f.t.store()).await?.ok());
    Ok(())
}

/// Proof: the checks come first and in order for every call: an unknown or malformed pickup id
/// is `NotFound`, a revoked message `Revoked` (and shredded), an expired one `Expired`; only
/// the sender sees their message.
#[tokio::test]
async fn unknown_revoked_and_expired_messages_are_refused() -> Result {
    let f = Fixture::new(10).await?;
    let err = landing(f.app(), &"AAAAAAAAAAAAAAAAAAAAAA".parse()?).await;
    assert!(matches!(err, Err(PickupError::NotFound)), "{err:?}");
    assert!("not a pickup id".parse::<PickupId>().is_err());
    let stranger = f.t.add_sender("other@example.org").await?;
    let err = sender_view(f.app(), stranger.user_id, f.message_id).await;
    assert!(matches!(err, Err(PickupError::NotFound)), "{err:?}");
    let err = revoke(f.app(), stranger.user_id, f.message_id, &visitor()).await;
    assert!(matches!(err, Err(PickupError::NotFound)), "{err:?}");

    let verified = f.verified().await?;
    revoke(f.app(), f.sender.user_id, f.message_id, &visitor()).await?;
    // Revoking twice is not an error.
    revoke(f.app(), f.sender.user_id, f.message_id, &visitor()).await?;
    let err = landing(f.app(), f.pickup()).await;
    assert!(matches!(err, Err(PickupError::Revoked)), "{err:?}");
    let err = f.open(&f.secret()?, None, Some(verified)).await;
    assert!(matches!(err, Err(PickupError::Revoked)), "{err:?}");
    let err = request_code(f.app(), f.pickup(), &visitor()).await;
    assert!(matches!(err, Err(PickupError::Revoked)), "{err:?}");
    let id = f.message_id.to_string();
    assert_eq!(rows::chunks_of(f.t.store(), &id).await?, 0, "not shredded");
    assert_eq!(f.audited("revoked").await?, 1);
    assert_eq!(f.audited("purged").await?, 1);
    let view = sender_view(f.app(), f.sender.user_id, f.message_id).await?;
    assert!(view.revoked_at.is_some(), "{view:?}");

    let g = Fixture::new(10).await?;
    rows::set_expires_at(g.t.store(), &g.message_id.to_string(), now_ms() - 1).await?;
    let err = landing(g.app(), g.pickup()).await;
    assert!(matches!(err, Err(PickupError::Expired)), "{err:?}");
    let err = request_code(g.app(), g.pickup(), &visitor()).await;
    assert!(matches!(err, Err(PickupError::Expired)), "{err:?}");
    Ok(())
}

// ---- drafts ----------------------------------------------------------------------------------

/// A draft from `sender` whose first part is big enough to be flushed: its rows are written
/// (state `receiving`).
async fn stored_draft(t: &TestApp, sender: &TestSender) -> Result<Draft> {
    let from = Sender {
        user_id: Some(sender.user_id),
        address: sender.email.clone(),
        display_name: None,
    };
    let mut draft = Draft::begin(t.state(), from, Source::Api);
    let big = vec![7u8; 3 << 20];
    draft
        .add_part(
            PartKind::Attachment,
            Some("big.bin".to_owned()),
            "application/octet-stream".to_owned(),
            &big,
        )
        .await?;
    let stored = rows::messages(t.store()).await?;
    assert!(
        stored
            .iter()
            .any(|m| m.id == draft.id().to_string() && m.state == "receiving"),
        "the draft was not flushed: {stored:?}"
    );
    Ok(draft)
}

async fn assert_nothing_stored(t: &TestApp) -> Result {
    for table in ["messages", "parts", "chunks", "recipients"] {
        assert_eq!(rows::count_rows(t.store(), table).await?, 0, "{table}");
    }
    Ok(())
}

/// Proof: an aborted draft leaves no row, even once its ciphertext was written; a commit that
/// is refused (no recipient) leaves none either, and is audited `submit_rejected`.
#[tokio::test]
async fn aborted_and_refused_drafts_leave_no_rows() -> Result {
    let t = TestApp::new().await?;
    let sender = t.add_sender(SENDER).await?;
    stored_draft(&t, &sender).await?.abort().await;
    assert_nothing_stored(&t).await?;

    let draft = stored_draft(&t, &sender).await?;
    let refused = draft
        .commit(
            NewMessage {
                recipients: Vec::new(),
                subject: "s".to_owned(),
                passphrase: None,
                expires_in_days: None,
            },
            &visitor(),
        )
        .await;
    assert!(
        matches!(refused, Err(SubmitError::Refused(_))),
        "{refused:?}"
    );
    assert_nothing_stored(&t).await?;
    assert_eq!(rows::audited(t.store(), "submit_rejected").await?.len(), 1);
    assert!(t.outbox()?.is_empty(), "a refused draft notified someone");
    Ok(())
}

/// Proof: `cleanup_stale` removes `receiving` messages older than its cut-off (a writer that
/// died: the draft is forgotten, never dropped) and nothing else: a younger upload stays until
/// the start-up pass (cut-off 0), and a committed message is never touched and still opens.
#[tokio::test]
async fn cleanup_stale_removes_receiving_messages_only() -> Result {
    let t = TestApp::new().await?;
    let sender = t.add_sender(SENDER).await?;
    let ready = t.submit(&sender, &[RECIPIENT], "kept", None).await?.id;
    let link = t.notification_to(RECIPIENT)?;

    let old = stored_draft(&t, &sender).await?;
    let old_id = old.id().to_string();
    std::mem::forget(old);
    rows::set_receiving_since(t.store(), &old_id, now_ms() - STALE_AFTER_MS - 1).await?;
    let young = stored_draft(&t, &sender).await?;
    let young_id = young.id().to_string();
    std::mem::forget(young);

    let ids = |rows: Vec<rows::MessageRow>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(cleanup_stale(t.store(), STALE_AFTER_MS).await?, 1);
    let left = ids(rows::messages(t.store()).await?);
    assert!(
        left.contains(&ready.to_string()) && left.contains(&young_id) && !left.contains(&old_id),
        "{left:?}"
    );
    assert_eq!(cleanup_stale(t.store(), 0).await?, 1);
    assert_eq!(ids(rows::messages(t.store()).await?), [ready.to_string()]);
    assert_eq!(rows::count_rows(t.store(), "recipients").await?, 1);
    landing(t.state(), &link.pickup_id.parse()?).await?;
    Ok(())
}
