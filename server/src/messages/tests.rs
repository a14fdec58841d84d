//! The domain's own tests: the functions of this module called directly, over a real
//! [`TestApp`] (migrated SQLite in a temp dir, file outbox). They prove the rules the contract
//! in `mod.rs` states — lockout counting, code expiry, reuse and rate, what a draft leaves
//! behind — so the HTTP and SMTP tests only prove how each outcome is rendered.
//!
//! Time is not faked: the domain reads the clock (`crate::clock::now_ms`), so where a test
//! needs time to have passed it moves the stored time instead (`store::testing`). Nothing
//! sleeps. The lockout rules (per client and per recipient, back-off, unlock) are proved in
//! `tests/lockout.rs`.

mod lockout;

use std::net::IpAddr;

use sealpost_crypto::{LinkSecret, Passphrase};

use super::*;
use crate::app::AppState;
use crate::audit;
use crate::clock::now_ms;
use crate::ids::{MessageId, PickupId, RecipientId};
use crate::store::testing as rows;
use crate::testing::{PickupLink, SENDER, TestApp, TestAppBuilder, TestSender};

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

/// An anonymous web visitor from `ip`.
fn from(ip: [u8; 4]) -> RequestCtx {
    RequestCtx {
        ip: Some(IpAddr::from(ip)),
        ..visitor()
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
    /// A message without a passphrase, a client blocked after `threshold` failures.
    async fn new(threshold: u32) -> Result<Self> {
        Self::with(threshold, None).await
    }

    async fn with(threshold: u32, passphrase: Option<&str>) -> Result<Self> {
        Self::built(
            TestApp::builder().set("lockout_threshold", threshold),
            passphrase,
        )
        .await
    }

    /// A message to [`RECIPIENT`] on an instance with `settings`.
    async fn built(settings: TestAppBuilder, passphrase: Option<&str>) -> Result<Self> {
        let t = settings.build().await?;
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
        self.code_for(&visitor()).await
    }

    /// Email a code at the request of `ctx` (the only client that may enter it).
    async fn code_for(&self, ctx: &RequestCtx) -> Result<String> {
        request_code(self.app(), self.pickup(), ctx).await?;
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
        self.open_as(&visitor(), secret, passphrase, verified).await
    }

    async fn open_as(
        &self,
        ctx: &RequestCtx,
        secret: &LinkSecret,
        passphrase: Option<&str>,
        verified: Option<RecipientId>,
    ) -> std::result::Result<Opened, PickupError> {
        let passphrase = passphrase.map(|p| Passphrase::new(p.to_owned()));
        open(self.app(), self.pickup(), secret, passphrase, verified, ctx).await
    }

    /// Let `ms` milliseconds pass for this recipient's lockout and codes.
    async fn pass(&self, ms: i64) -> Result {
        Ok(rows::pass_time(self.t.store(), self.pickup().as_str(), ms).await?)
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

/// The time a refusal or a wrong entry says the client must wait until, if any.
fn wait_of<T>(result: &std::result::Result<T, PickupError>) -> Option<time::OffsetDateTime> {
    match result {
        Err(PickupError::WrongCode(a) | PickupError::WrongSecret(a)) => a.wait_until,
        Err(PickupError::SlowDown { until }) => Some(*until),
        _ => None,
    }
}

impl Fixture {
    /// Let the wait that `result` imposes pass (nothing when it imposes none).
    async fn wait_out<T>(&self, result: &std::result::Result<T, PickupError>) -> Result {
        if let Some(until) = wait_of(result) {
            let ms = crate::clock::to_ms(until) - now_ms() + 1;
            if ms > 0 {
                self.pass(ms).await?;
            }
        }
        Ok(())
    }
}

/// Proof: with the client's block far away, a code is dead after 5 wrong entries (`code_left`
/// counts them down from 4, the client waiting out its back-off in between) and then refuses
/// even the right code, uncounted; a new code works.
#[tokio::test]
async fn a_code_dies_after_five_wrong_entries() -> Result {
    let f = Fixture::new(10).await?;
    let code = f.code().await?;
    let wrong = other_code(&code);
    for left in [4, 3, 2, 1, 0] {
        let err = verify_code(f.app(), f.pickup(), wrong, &visitor()).await;
        assert!(
            matches!(err, Err(PickupError::WrongCode(Attempts { code_left: Some(l), .. })) if l == left),
            "{err:?}"
        );
        f.wait_out(&err).await?;
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
/// one is `PassphraseRequired` (not counted), and wrong ones count like a wrong secret: at
/// `lockout_threshold` the client is blocked, and then even the right passphrase is refused
/// from it.
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

    for remaining in [2, 1] {
        let err = f.open(&f.secret()?, Some("wrong"), None).await;
        assert!(
            matches!(err, Err(PickupError::WrongSecret(Attempts { remaining: r, then: Limit::Blocked { .. }, .. })) if r == remaining),
            "{err:?}"
        );
    }
    let err = f.open(&f.secret()?, Some("wrong"), None).await;
    assert!(matches!(err, Err(PickupError::Blocked { .. })), "{err:?}");
    let err = f.open(&f.secret()?, Some(PASSPHRASE), None).await;
    assert!(matches!(err, Err(PickupError::Blocked { .. })), "{err:?}");
    assert_eq!(f.failures().await?, (3, false));
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

/// Proof: a client gets at most `codes_per_client_per_hour` (3) codes an hour for a
/// recipient: its 4th request is `TooManyCodes`, naming when the first leaves the hour, sends
/// nothing and is audited as `code_failed` (reason `rate_limited`). Other clients still get
/// theirs, until the recipient's `codes_per_recipient_per_hour` (10) from all clients together
/// are sent.
#[tokio::test]
async fn codes_are_bounded_per_client_and_per_recipient() -> Result {
    let f = Fixture::new(10).await?;
    let first_at = now_ms();
    for _ in 0..3 {
        request_code(f.app(), f.pickup(), &visitor()).await?;
    }
    let mails = f.t.outbox()?.len();
    let err = request_code(f.app(), f.pickup(), &visitor()).await;
    let Err(PickupError::TooManyCodes { until }) = err else {
        panic!("the 4th code of one client: {err:?}");
    };
    let until_ms = i64::try_from(until.unix_timestamp_nanos() / 1_000_000)?;
    assert!(
        (first_at + 3_600_000..=now_ms() + 3_600_000).contains(&until_ms),
        "{until} is not an hour after the first code"
    );
    assert_eq!(f.t.outbox()?.len(), mails, "a refused request sent mail");
    let failed = rows::audited(f.t.store(), "code_failed").await?;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].detail.contains("rate_limited"), "{failed:?}");

    for host in 2..=4 {
        let others = if host == 4 { 1 } else { 3 };
        for _ in 0..others {
            request_code(f.app(), f.pickup(), &from([127, 0, 0, host])).await?;
        }
    }
    assert_eq!(f.audited("code_sent").await?, 10);
    let err = request_code(f.app(), f.pickup(), &from([127, 0, 0, 5])).await;
    assert!(
        matches!(err, Err(PickupError::TooManyCodes { .. })),
        "the recipient's 11th code: {err:?}"
    );
    assert_eq!(f.t.outbox()?.len(), mails + 7);
    Ok(())
}

/// Proof: a code can be entered only from the client that asked for it. A stranger that asks
/// for its own code and spends its wrong entries on it, or enters codes without having asked
/// (`CodeExpired`, nothing counted against the recipient's code), leaves the recipient's own
/// code working.
#[tokio::test]
async fn a_stranger_cannot_spend_the_recipients_code() -> Result {
    let f = Fixture::new(20).await?;
    let stranger = from([127, 0, 0, 2]);
    let code = f.code().await?;
    let err = verify_code(f.app(), f.pickup(), &code, &stranger).await;
    assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
    let theirs = f.code_for(&stranger).await?;
    let wrong = if theirs == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..crate::messages::pickup::CODE_MAX_ATTEMPTS {
        let err = verify_code(f.app(), f.pickup(), wrong, &stranger).await;
        assert!(matches!(err, Err(PickupError::WrongCode(_))), "{err:?}");
        f.wait_out(&err).await?;
    }
    let err = verify_code(f.app(), f.pickup(), &theirs, &stranger).await;
    assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
    verify_code(f.app(), f.pickup(), &code, &visitor()).await?;
    Ok(())
}

/// Proof: entering a code when none was ever sent is `CodeExpired` and audited
/// (`verify_failed`, reason `no_code`), like any other code that cannot be checked.
#[tokio::test]
async fn a_code_entered_before_any_was_sent_is_audited() -> Result {
    let f = Fixture::new(10).await?;
    let err = verify_code(f.app(), f.pickup(), "123456", &visitor()).await;
    assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
    let failed = rows::audited(f.t.store(), "verify_failed").await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].detail.contains("no_code"), "{failed:?}");
    assert_eq!(f.failures().await?, (0, false));
    Ok(())
}

/// Proof: refusals a stranger can repeat at will — a dead code entered again and again, codes
/// asked for beyond the hourly limit — are audited one by one only `audit_refusals_per_window`
/// times per client and window; the rest are counted into one `refusals_counted` event each.
#[tokio::test]
async fn repeated_code_refusals_are_counted_not_audited_one_by_one() -> Result {
    let f = Fixture::new(10).await?;
    let stranger = from([127, 0, 0, 2]);
    for _ in 0..2 {
        request_code(f.app(), f.pickup(), &stranger).await?;
    }
    let code = f.code_for(&stranger).await?;
    verify_code(f.app(), f.pickup(), &code, &stranger).await?;
    for _ in 0..20 {
        let err = verify_code(f.app(), f.pickup(), &code, &stranger).await;
        assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
        let err = request_code(f.app(), f.pickup(), &stranger).await;
        assert!(
            matches!(err, Err(PickupError::TooManyCodes { .. })),
            "{err:?}"
        );
    }
    assert_eq!(f.audited("verify_failed").await?, 3);
    assert_eq!(f.audited("code_failed").await?, 3);
    crate::jobs::flush_refusals(f.t.store(), &f.app().throttle, true).await?;
    let counted = rows::audited(f.t.store(), "refusals_counted").await?;
    assert_eq!(counted.len(), 2, "{counted:?}");
    assert!(
        counted.iter().all(|e| e.detail.contains("\"count\":17")),
        "{counted:?}"
    );
    Ok(())
}

/// Proof: a code request while the outbound relay is down stores no code and so uses up none
/// of the hourly ones: after six failed requests (each `Unavailable`, audited `code_failed`,
/// none `TooManyCodes`), the client's three codes can still be sent once the relay is back.
#[tokio::test]
async fn a_relay_outage_does_not_use_up_the_hourly_codes() -> Result {
    let f = Fixture::new(10).await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut down = f.app().clone();
    down.mailer = crate::notify::Mailer::new(
        &crate::config::Outbound::Smtp {
            implicit_tls: false,
            host: "127.0.0.1".to_owned(),
            port: closed,
            username: None,
            password: None,
        },
        &f.t.config().outbox_dir(),
        "Sealpost <sealpost@localhost>",
    )?;
    for _ in 0..6 {
        let err = request_code(&down, f.pickup(), &visitor()).await;
        assert!(matches!(err, Err(PickupError::Unavailable(_))), "{err:?}");
    }
    assert_eq!(rows::count_rows(f.t.store(), "access_codes").await?, 0);
    assert_eq!(f.audited("code_failed").await?, 6);
    for _ in 0..3 {
        request_code(f.app(), f.pickup(), &visitor()).await?;
    }
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

/// Proof: concurrent opens each audit their own open count — together 1, 2, 3 and 4 — not a
/// count read before the others were recorded.
#[tokio::test]
async fn concurrent_opens_audit_their_own_open_count() -> Result {
    let f = Fixture::new(10).await?;
    let verified = f.verified().await?;
    let secret = f.secret()?;
    let opens = (0..4).map(|_| f.open(&secret, None, Some(verified)));
    for opened in futures_util::future::join_all(opens).await {
        opened?;
    }
    let mut counts: Vec<String> = rows::audited(f.t.store(), "opened")
        .await?
        .into_iter()
        .map(|r| r.detail)
        .collect();
    counts.sort();
    let expected: Vec<String> = (1..=4)
        .map(|n| format!("{{\"address\":\"{RECIPIENT}\",\"open_count\":{n}}}"))
        .collect();
    assert_eq!(counts, expected);
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
