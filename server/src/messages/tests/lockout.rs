//! The lockout rules (`messages/lockout.rs`), called through the domain functions: failures
//! counted per client and per recipient, the back-off that refuses without counting, the
//! client block that lifts by itself, the recipient-wide lock that a new code lifts after the
//! cool-down, unlocking by the sender and an admin, and that every number reported is the one
//! the person then meets. Clients are loopback addresses: `127.0.0.2` a stranger, `127.0.0.3`
//! the recipient. Time passes by moving the stored times (`Fixture::pass`), never by sleeping.

use super::*;
use crate::jobs;

const STRANGER: [u8; 4] = [127, 0, 0, 2];
const HOME: [u8; 4] = [127, 0, 0, 3];
const OTHER: [u8; 4] = [127, 0, 0, 4];
const MINUTE: i64 = 60_000;

impl Fixture {
    /// A message with `passphrase` on an instance with these lockout settings.
    async fn lockout(settings: &[(&str, u32)], passphrase: Option<&str>) -> Result<Self> {
        let mut builder = TestApp::builder();
        for (key, value) in settings {
            builder = builder.set(key, *value);
        }
        Self::built(builder, passphrase).await
    }

    async fn verify_as(
        &self,
        ctx: &RequestCtx,
        code: &str,
    ) -> std::result::Result<Verified, PickupError> {
        verify_code(self.app(), self.pickup(), code, ctx).await
    }

    /// A wrong passphrase with the right link secret, from `ctx`.
    async fn wrong_passphrase(&self, ctx: &RequestCtx) -> std::result::Result<Opened, PickupError> {
        let secret =
            LinkSecret::parse(&self.link.secret).map_err(|e| PickupError::Internal(e.into()))?;
        self.open_as(ctx, &secret, Some("wrong guess"), None).await
    }

    /// `(client, failures, blocked)` of every client with failures on record.
    async fn clients(&self) -> Result<Vec<(String, i64, bool)>> {
        Ok(rows::client_failures(self.t.store(), self.pickup().as_str()).await?)
    }
}

/// What a wrong entry reported, or a panic naming what came instead.
fn attempts<T: std::fmt::Debug>(result: &std::result::Result<T, PickupError>) -> Attempts {
    match result {
        Err(PickupError::WrongCode(a) | PickupError::WrongSecret(a)) => *a,
        other => panic!("expected a counted wrong entry, got {other:?}"),
    }
}

/// Proof: a stranger who knows only the pickup id, guessing codes for a long time from
/// `127.0.0.2` (waiting out every back-off, blocked, and trying again when each block lifts,
/// for five hours), is never more than blocked itself: the recipient is not locked, and from
/// `127.0.0.3` gets a code and opens the message. Each counted guess is audited.
#[tokio::test]
async fn a_stranger_guessing_codes_does_not_lock_the_recipient_out() -> Result {
    let f = Fixture::new(10).await?;
    let stranger = from(STRANGER);
    let mut counted = 0;
    let new_code = || async {
        request_code(f.app(), f.pickup(), &stranger).await?;
        anyhow::Ok(other_code(&f.t.code_to(RECIPIENT)?))
    };
    for _hour in 0..5 {
        let mut wrong = new_code().await?;
        loop {
            let result = f.verify_as(&stranger, wrong).await;
            match &result {
                Err(PickupError::WrongCode(_)) => counted += 1,
                Err(PickupError::CodeExpired) => {
                    wrong = new_code().await?;
                    continue;
                }
                Err(PickupError::Blocked { .. }) => {
                    counted += 1;
                    break;
                }
                other => panic!("stranger: {other:?}"),
            }
            f.wait_out(&result).await?;
        }
        let refused = f.verify_as(&stranger, wrong).await;
        assert!(
            matches!(refused, Err(PickupError::Blocked { .. })),
            "{refused:?}"
        );
        f.pass(60 * MINUTE).await?;
    }
    assert_eq!(counted, 50, "10 wrong codes an hour for five hours");
    let wrong_codes = rows::audited(f.t.store(), "verify_failed")
        .await?
        .iter()
        .filter(|e| e.detail.contains("wrong_code"))
        .count();
    assert_eq!(wrong_codes, 50, "every counted guess audited");
    assert!(!f.failures().await?.1, "the recipient was locked");
    assert_eq!(f.audited("locked").await?, 0);

    let home = from(HOME);
    request_code(f.app(), f.pickup(), &home).await?;
    let code = f.t.code_to(RECIPIENT)?;
    let verified = f.verify_as(&home, &code).await?;
    let opened = f
        .open_as(&home, &f.secret()?, None, Some(verified.recipient_id))
        .await?;
    assert_eq!(opened.text.as_deref(), Some("the results"));
    assert!(audit::verify(f.t.store()).await?.ok());
    Ok(())
}

/// Proof: the same for passphrase guesses on a passphrase message (a stranger holding a
/// forwarded link): 40 guesses from `127.0.0.2` block that client only, and the recipient
/// opens from `127.0.0.3` with the right passphrase.
#[tokio::test]
async fn a_stranger_guessing_passphrases_does_not_lock_the_recipient_out() -> Result {
    let f = Fixture::with(10, Some(PASSPHRASE)).await?;
    let stranger = from(STRANGER);
    let mut blocked = 0;
    for _ in 0..40 {
        let result = f.wrong_passphrase(&stranger).await;
        match &result {
            Err(PickupError::WrongSecret(_)) => f.wait_out(&result).await?,
            Err(PickupError::Blocked { .. }) => blocked += 1,
            other => panic!("stranger: {other:?}"),
        }
    }
    assert_eq!(
        blocked, 31,
        "the 10th guess blocks, and the 30 after it are refused"
    );
    assert_eq!(f.audited("open_failed").await?, 10);
    assert_eq!(f.clients().await?, [("127.0.0.2".to_owned(), 10, true)]);
    assert!(!f.failures().await?.1);
    let opened = f
        .open_as(&from(HOME), &f.secret()?, Some(PASSPHRASE), None)
        .await?;
    assert_eq!(opened.text.as_deref(), Some("the results"));
    Ok(())
}

/// Proof: the back-off refuses without counting: after the 3rd wrong entry the client must
/// wait 1 s; an attempt before that is `SlowDown` (even with the right passphrase), changes no
/// counter and audits no failure; once the wait passed the attempt counts again and the next
/// wait is 2 s. Of many refusals from one client, the first `audit_refusals_per_window` are
/// audited as `throttled`, the rest counted into one `refusals_counted` event.
#[tokio::test]
async fn the_back_off_refuses_without_counting() -> Result {
    let f = Fixture::with(10, Some(PASSPHRASE)).await?;
    let client = from(STRANGER);
    for n in 1..=3 {
        let result = f.wrong_passphrase(&client).await;
        assert_eq!(attempts(&result).wait_until.is_some(), n == 3, "{result:?}");
    }
    let waited = wait_of(&f.wrong_passphrase(&client).await);
    let Some(until) = waited else {
        panic!("no wait after 3 wrong entries");
    };
    let wait = crate::clock::to_ms(until) - now_ms();
    assert!((1..=1000).contains(&wait), "{wait} ms");
    for _ in 0..9 {
        let refused = f
            .open_as(&client, &f.secret()?, Some(PASSPHRASE), None)
            .await;
        assert!(
            matches!(refused, Err(PickupError::SlowDown { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(f.clients().await?, [("127.0.0.2".to_owned(), 3, false)]);
    assert_eq!(f.audited("open_failed").await?, 3);
    assert_eq!(f.audited("throttled").await?, 3, "audited one by one");
    assert_eq!(
        jobs::flush_refusals(f.t.store(), &f.app().throttle, true).await?,
        1
    );
    let counted = rows::audited(f.t.store(), "refusals_counted").await?;
    assert!(
        counted.len() == 1
            && counted[0].detail.contains("\"kind\":\"pickup_blocked\"")
            && counted[0].detail.contains("\"count\":7"),
        "{counted:?}"
    );

    f.pass(1000).await?;
    let result = f.wrong_passphrase(&client).await;
    let next = attempts(&result)
        .wait_until
        .map(|t| crate::clock::to_ms(t) - now_ms());
    assert!(
        next.is_some_and(|ms| (1001..=2000).contains(&ms)),
        "{next:?}"
    );
    assert_eq!(f.clients().await?, [("127.0.0.2".to_owned(), 4, false)]);
    // Another client is not slowed down.
    f.open_as(&from(HOME), &f.secret()?, Some(PASSPHRASE), None)
        .await?;
    Ok(())
}

/// Proof: a client's block lifts by itself after `lockout_minutes`: blocked clients are
/// refused even the right passphrase until then (uncounted), and afterwards the same client
/// opens, and its failures start again from zero.
#[tokio::test]
async fn a_client_block_lifts_after_its_time() -> Result {
    let f = Fixture::lockout(
        &[("lockout_threshold", 3), ("lockout_minutes", 30)],
        Some(PASSPHRASE),
    )
    .await?;
    let client = from(STRANGER);
    for _ in 0..2 {
        let result = f.wrong_passphrase(&client).await;
        attempts(&result);
    }
    let blocked = f.wrong_passphrase(&client).await;
    let Err(PickupError::Blocked { until }) = blocked else {
        panic!("3rd wrong entry: {blocked:?}");
    };
    let left = crate::clock::to_ms(until) - now_ms();
    assert!((29 * MINUTE..=30 * MINUTE).contains(&left), "{left} ms");
    let blocked_events = rows::audited(f.t.store(), "open_failed").await?;
    assert!(
        blocked_events[2].detail.contains("blocked_until"),
        "{blocked_events:?}"
    );

    f.pass(29 * MINUTE).await?;
    let refused = f
        .open_as(&client, &f.secret()?, Some(PASSPHRASE), None)
        .await;
    assert!(
        matches!(refused, Err(PickupError::Blocked { .. })),
        "{refused:?}"
    );
    assert_eq!(f.audited("open_failed").await?, 3);

    f.pass(MINUTE).await?;
    let result = f.wrong_passphrase(&client).await;
    assert_eq!(attempts(&result).remaining, 2, "{result:?}");
    f.open_as(&client, &f.secret()?, Some(PASSPHRASE), None)
        .await?;
    assert!(
        f.clients().await?.is_empty(),
        "a success forgets the client's failures"
    );
    Ok(())
}

/// Proof: the recipient-wide lock comes only from several clients together
/// (`lockout_recipient_threshold`), is audited once, refuses every step of every client,
/// and lifts by a new code only after `lockout_cooldown_minutes`: before that the recipient
/// can ask for no code and a right code sent before the lock does not help; after it, a new
/// code lifts the lock (audited `unlocked`, actor the recipient) and clears every counter, and
/// the message opens.
#[tokio::test]
async fn the_recipient_lock_lifts_by_a_code_after_the_cool_down_and_not_before() -> Result {
    let f = Fixture::lockout(
        &[
            ("lockout_threshold", 3),
            ("lockout_recipient_threshold", 5),
            ("lockout_cooldown_minutes", 5),
        ],
        Some(PASSPHRASE),
    )
    .await?;
    let home = from(HOME);
    let early = {
        request_code(f.app(), f.pickup(), &home).await?;
        f.t.code_to(RECIPIENT)?
    };
    for _ in 0..2 {
        attempts(&f.wrong_passphrase(&from(STRANGER)).await);
    }
    let result = f.wrong_passphrase(&from(STRANGER)).await;
    assert!(
        matches!(result, Err(PickupError::Blocked { .. })),
        "{result:?}"
    );
    let result = f.wrong_passphrase(&from(OTHER)).await;
    assert_eq!(attempts(&result).remaining, 1);
    assert_eq!(attempts(&result).then, Limit::Locked);
    let locked = f.wrong_passphrase(&from(OTHER)).await;
    let Err(PickupError::Locked(lock)) = locked else {
        panic!("5th failure: {locked:?}");
    };
    assert!(!lock.code_now);
    assert_eq!(f.failures().await?, (5, true));
    assert_eq!(f.audited("locked").await?, 1);

    // Locked: every client, every step, even with the right code or passphrase.
    let err = f.verify_as(&home, &early).await;
    assert!(matches!(err, Err(PickupError::Locked(_))), "{err:?}");
    let err = request_code(f.app(), f.pickup(), &home).await;
    assert!(matches!(err, Err(PickupError::Locked(_))), "{err:?}");
    let err = f.open_as(&home, &f.secret()?, Some(PASSPHRASE), None).await;
    assert!(matches!(err, Err(PickupError::Locked(_))), "{err:?}");
    assert!(landing(f.app(), f.pickup()).await?.lock.is_some());
    let view = sender_view(f.app(), f.sender.user_id, f.message_id).await?;
    assert!(view.recipients[0].locked, "{view:?}");

    f.pass(5 * MINUTE - 1000).await?;
    let err = request_code(f.app(), f.pickup(), &home).await;
    assert!(
        matches!(err, Err(PickupError::Locked(l)) if !l.code_now),
        "{err:?}"
    );
    f.pass(1000).await?;
    let lock = landing(f.app(), f.pickup()).await?.lock;
    assert!(lock.is_some_and(|l| l.code_now), "{lock:?}");
    // A code sent before the lock (unused, not expired) proves nothing about now.
    let err = f.verify_as(&home, &early).await;
    assert!(matches!(err, Err(PickupError::CodeExpired)), "{err:?}");
    assert!(f.failures().await?.1);

    request_code(f.app(), f.pickup(), &home).await?;
    let code = f.t.code_to(RECIPIENT)?;
    let verified = f.verify_as(&home, &code).await?;
    assert!(verified.unlocked);
    assert_eq!(f.failures().await?, (0, false));
    assert!(f.clients().await?.is_empty(), "{:?}", f.clients().await?);
    let unlocked = rows::audited(f.t.store(), "unlocked").await?;
    assert_eq!(unlocked.len(), 1);
    assert_eq!(
        unlocked[0].actor,
        crate::audit::actor::recipient(verified.recipient_id)
    );
    assert!(
        unlocked[0].detail.contains("\"by\":\"code\""),
        "{unlocked:?}"
    );
    assert!(landing(f.app(), f.pickup()).await?.lock.is_none());
    // The stranger's block went with the lock.
    attempts(&f.wrong_passphrase(&from(STRANGER)).await);
    f.open_as(&home, &f.secret()?, Some(PASSPHRASE), None)
        .await?;
    assert!(audit::verify(f.t.store()).await?.ok());
    Ok(())
}

/// Proof: the sender unlocks through `unlock` (only their own message, only its recipients:
/// anything else is `NotFound`), and an admin unlocks any message; each lifts the lock and
/// every client's block at once (no cool-down), audited `unlocked` under the caller's actor.
#[tokio::test]
async fn the_sender_and_an_admin_unlock() -> Result {
    let f = Fixture::lockout(
        &[("lockout_threshold", 2), ("lockout_recipient_threshold", 3)],
        Some(PASSPHRASE),
    )
    .await?;
    let lock_out = || async {
        for client in [STRANGER, OTHER] {
            for _ in 0..2 {
                let _ = f.wrong_passphrase(&from(client)).await;
            }
        }
        assert!(f.failures().await?.1, "not locked");
        anyhow::Ok(())
    };
    lock_out().await?;
    let sender = RequestCtx {
        actor: format!("token:{SENDER}"),
        ..visitor()
    };
    let stranger = f.t.add_sender("other@example.org").await?;
    let err = unlock(
        f.app(),
        UnlockBy::Sender(stranger.user_id),
        f.message_id,
        None,
        &sender,
    )
    .await;
    assert!(matches!(err, Err(PickupError::NotFound)), "{err:?}");
    let err = unlock(
        f.app(),
        UnlockBy::Sender(f.sender.user_id),
        f.message_id,
        Some("nobody@example.org"),
        &sender,
    )
    .await;
    assert!(matches!(err, Err(PickupError::NotFound)), "{err:?}");
    assert!(f.failures().await?.1, "a refused unlock changed something");

    let done = unlock(
        f.app(),
        UnlockBy::Sender(f.sender.user_id),
        f.message_id,
        Some("PATIENT@example.org"),
        &sender,
    )
    .await?;
    assert_eq!(done, [RECIPIENT]);
    assert_eq!(f.failures().await?, (0, false));
    assert!(f.clients().await?.is_empty());
    // The blocked stranger may try again at once.
    attempts(&f.wrong_passphrase(&from(STRANGER)).await);

    lock_out().await?;
    let cli = RequestCtx {
        actor: crate::audit::actor::CLI.to_owned(),
        ..RequestCtx::default()
    };
    let done = unlock(f.app(), UnlockBy::Admin, f.message_id, None, &cli).await?;
    assert_eq!(done, [RECIPIENT]);
    f.open_as(&from(HOME), &f.secret()?, Some(PASSPHRASE), None)
        .await?;
    let actors: Vec<_> = rows::audited(f.t.store(), "unlocked")
        .await?
        .into_iter()
        .map(|r| r.actor)
        .collect();
    assert_eq!(actors, [format!("token:{SENDER}"), "cli".to_owned()]);
    Ok(())
}

/// Make `n` wrong entries from `ctx` with `wrong`, waiting out the back-off after each but the
/// last; returns what the last one reported.
async fn wrong_entries<T, F, Fut>(
    f: &Fixture,
    n: u32,
    mut attempt: F,
) -> Result<std::result::Result<T, PickupError>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, PickupError>>,
{
    let mut last = attempt().await;
    for _ in 1..n {
        f.wait_out(&last).await?;
        last = attempt().await;
    }
    Ok(last)
}

/// Proof: every number a wrong entry reports is the one the person then meets, exactly:
/// following `remaining` to the letter reaches its `then` at that count and not one before —
/// the wait (the next immediate try is refused), the client's block, and the lock for
/// everyone — and a code's `code_left` wrong entries are exactly what it still takes.
#[tokio::test]
async fn the_numbers_shown_are_the_ones_met() -> Result {
    // Codes: the wait, and the code's own tries.
    let f = Fixture::new(10).await?;
    let client = from(STRANGER);
    let code = f.code_for(&client).await?;
    let wrong = other_code(&code);
    let first = attempts(&f.verify_as(&client, wrong).await);
    assert_eq!(
        (first.code_left, first.remaining, first.then),
        (Some(4), 2, Limit::Wait)
    );
    // `remaining - 1` more: still no wait.
    let before = f.verify_as(&client, wrong).await;
    assert_eq!(attempts(&before).wait_until, None);
    // The `remaining`th: the wait begins; an immediate try is refused.
    let reached = f.verify_as(&client, wrong).await;
    assert!(attempts(&reached).wait_until.is_some(), "{reached:?}");
    let refused = f.verify_as(&client, wrong).await;
    assert!(
        matches!(refused, Err(PickupError::SlowDown { .. })),
        "{refused:?}"
    );
    // The code said it takes 4 more after the first: the 4th of them still counts (0 left),
    // and then the code is dead, even for the right code.
    f.wait_out(&reached).await?;
    let last = wrong_entries(&f, 2, || f.verify_as(&client, wrong)).await?;
    assert_eq!(attempts(&last).code_left, Some(0), "{last:?}");
    f.wait_out(&last).await?;
    let dead = f.verify_as(&client, &code).await;
    assert!(matches!(dead, Err(PickupError::CodeExpired)), "{dead:?}");

    // Secrets: the block, then the lock.
    let f = Fixture::lockout(
        &[("lockout_threshold", 6), ("lockout_recipient_threshold", 8)],
        Some(PASSPHRASE),
    )
    .await?;
    let one = from(STRANGER);
    let shown = attempts(&f.wrong_passphrase(&one).await);
    assert_eq!((shown.remaining, shown.then), (2, Limit::Wait));
    let at_wait = wrong_entries(&f, 2, || f.wrong_passphrase(&one)).await?;
    let shown = attempts(&at_wait);
    assert!(shown.wait_until.is_some());
    assert_eq!(
        (shown.remaining, shown.then),
        (3, Limit::Blocked { minutes: 60 })
    );
    f.wait_out(&at_wait).await?;
    let before = wrong_entries(&f, shown.remaining - 1, || f.wrong_passphrase(&one)).await?;
    assert_eq!(attempts(&before).remaining, 1);
    f.wait_out(&before).await?;
    let blocked = f.wrong_passphrase(&one).await;
    assert!(
        matches!(blocked, Err(PickupError::Blocked { .. })),
        "{blocked:?}"
    );

    let two = from(OTHER);
    let shown = attempts(&f.wrong_passphrase(&two).await);
    assert_eq!(
        (shown.remaining, shown.then),
        (1, Limit::Locked),
        "6 + 1 of 8"
    );
    let locked = f.wrong_passphrase(&two).await;
    assert!(matches!(locked, Err(PickupError::Locked(_))), "{locked:?}");
    Ok(())
}
