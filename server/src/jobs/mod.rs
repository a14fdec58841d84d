//! Background maintenance: expiry and crypto-shredding of finished messages, session cleanup,
//! old mails of the development outbox, the counted-refusal events of `crate::throttle`, and
//! the periodic signed checkpoint of the audit log (mailed to `checkpoint_mail_to`).
//!
//! Jobs are plain async functions so the CLI (`sealpost purge`) and the periodic task in
//! `serve` run the same code. Each message is shredded in its own short `BEGIN IMMEDIATE`
//! transaction together with its audit events, so the write lock is never held for long and a
//! crash leaves every message either fully shredded and audited or untouched.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::app::AppState;
use crate::audit::checkpoint;
use crate::audit::{self, Action, Event, actor};
use crate::clock::now_ms;
use crate::config::{Config, Outbound};
use crate::notify::outbox;
use crate::store::purge::{self, PurgeReason};
use crate::store::sessions::SqliteSessionStore;
use crate::store::{Result, Store};
use crate::throttle::Throttle;

/// What a purge run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Messages shredded because they expired.
    pub expired: u64,
    /// Messages shredded because they were revoked.
    pub revoked: u64,
}

const BATCH: i64 = 100;

/// Shred every message past `expires_at` (auditing `expired` then `purged`) and every revoked
/// message not yet shredded (auditing `purged`), then checkpoint the WAL so that no copy of
/// what was shredded stays on disk. Safe to run concurrently with itself.
pub async fn purge_expired(store: &Store) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    loop {
        let now = now_ms();
        let due = {
            let mut conn = store.acquire().await?;
            purge::due(&mut conn, now, BATCH).await?
        };
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for item in due {
            let mut tx = store.begin_write().await?;
            if !purge::shred(&mut tx, item.message_id, now).await? {
                continue; // another purger got there first
            }
            progressed = true;
            if item.reason == PurgeReason::Expired {
                audit::record(
                    &mut tx,
                    Event::new(actor::SYSTEM, Action::Expired).with_message(item.message_id),
                )
                .await?;
                report.expired += 1;
            } else {
                report.revoked += 1;
            }
            let reason = match item.reason {
                PurgeReason::Expired => "expired",
                PurgeReason::Revoked => "revoked",
            };
            audit::record(
                &mut tx,
                Event::new(actor::SYSTEM, Action::Purged)
                    .with_message(item.message_id)
                    .with_detail(json!({ "reason": reason })),
            )
            .await?;
            tx.commit().await?;
        }
        if !progressed {
            break;
        }
    }
    // Also after a run that shredded nothing: a checkpoint that an earlier shredding could not
    // finish is tried again.
    let mut conn = store.acquire().await?;
    if !purge::checkpoint(&mut conn).await? {
        tracing::warn!("the WAL could not be checkpointed after shredding; trying again later");
    }
    Ok(report)
}

/// Delete outbox mails older than `outbound_file_retention_hours` (with `outbound = file`;
/// otherwise there is no outbox). Returns how many.
pub async fn prune_outbox(config: &Config) -> std::io::Result<u64> {
    if !matches!(config.outbound, Outbound::File) {
        return Ok(0);
    }
    let dir = config.outbox_dir();
    let keep = Duration::from_secs(u64::from(config.outbound_file_retention_hours) * 3600);
    tokio::task::spawn_blocking(move || outbox::prune(&dir, keep))
        .await
        .map_err(std::io::Error::other)?
}

/// Sign a checkpoint of the audit log when one is due (`checkpoint_interval_minutes` since the
/// newest, and the log grew since: [`checkpoint::due`]), and mail it to `checkpoint_mail_to`.
/// Returns the seq signed. A failed mail is logged, not retried: the checkpoint is stored, and
/// the next one goes out at the next interval.
pub async fn checkpoint_if_due(app: &AppState) -> anyhow::Result<Option<i64>> {
    let config = &app.config;
    if config.checkpoint_interval_minutes == 0 {
        return Ok(None);
    }
    let every_ms = i64::from(config.checkpoint_interval_minutes) * 60_000;
    if !checkpoint::due(&app.store, every_ms, now_ms()).await? {
        return Ok(None);
    }
    let signed = checkpoint::sign(
        &app.store,
        &app.checkpoint_key,
        &config.checkpoint_origin,
        actor::SYSTEM,
    )
    .await?;
    let seq = signed.checkpoint.seq;
    if let Some(to) = &config.checkpoint_mail_to {
        let sent = app
            .mailer
            .send_checkpoint(to, &signed.checkpoint.origin, seq, &signed.note)
            .await;
        if let Err(e) = sent {
            tracing::error!(seq, error = %e, "could not mail the audit checkpoint to checkpoint_mail_to");
        }
    }
    Ok(Some(seq))
}

/// How often [`run_periodic`] runs in `serve`: every 10 minutes, or as often as checkpoints
/// are due when that is more often.
pub fn period(config: &Config) -> Duration {
    let ten_minutes = Duration::from_secs(600);
    match config.checkpoint_interval_minutes {
        0 => ten_minutes,
        minutes => ten_minutes.min(Duration::from_secs(u64::from(minutes) * 60)),
    }
}

/// One round of every periodic job: purge, stale uploads, expired sessions, old outbox
/// mails, the audit checkpoint. Errors are logged; the next round tries again.
pub async fn run_once(app: &AppState) {
    let store = &app.store;
    match purge_expired(store).await {
        Ok(r) if r.expired + r.revoked > 0 => {
            tracing::info!(expired = r.expired, revoked = r.revoked, "purged messages");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, cause = ?e, "purge failed"),
    }
    match crate::messages::cleanup_stale(store, crate::messages::STALE_AFTER_MS).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(count = n, "removed messages whose upload never finished"),
        Err(e) => tracing::error!(error = %e, "cleanup of unfinished messages failed"),
    }
    if let Err(e) = SqliteSessionStore::new(store).delete_expired_count().await {
        tracing::error!(error = %e, "session cleanup failed");
    }
    match prune_outbox(&app.config).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "deleted old mails from the outbox"),
        Err(e) => tracing::error!(error = %e, "outbox cleanup failed"),
    }
    match checkpoint_if_due(app).await {
        Ok(Some(seq)) => tracing::info!(seq, "signed an audit checkpoint"),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %format!("{e:#}"), "no audit checkpoint signed"),
    }
}

/// Write the `refusals_counted` events of the windows that have ended (of every window with
/// `all`, at shutdown) in one transaction, and forget clients whose rate budgets are full.
pub async fn flush_refusals(store: &Store, throttle: &Throttle, all: bool) -> Result<usize> {
    throttle.forget_idle();
    let events = throttle.refusals.take_due(all);
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len();
    let mut tx = store.begin_write().await?;
    audit::record_all(&mut tx, events).await?;
    tx.commit().await?;
    Ok(n)
}

/// [`flush_refusals`] every second until the task is dropped.
pub async fn run_refusal_flush(store: Store, throttle: Arc<Throttle>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = flush_refusals(&store, &throttle, false).await {
            tracing::error!(error = %e, "could not audit counted refusals");
        }
    }
}

/// Run [`run_once`] now and then every `every`, until the task is dropped.
pub async fn run_periodic(app: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        run_once(&app).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{
        audit_rows, audited, chunks_of, exec, files_holding, temp_store, wrapped_dek,
    };
    use crate::testing::{SENDER, TestApp};

    const OLD: &str = "00000000-0000-7000-8000-00000000001a";
    const REV: &str = "00000000-0000-7000-8000-00000000002b";
    const LIVE: &str = "00000000-0000-7000-8000-00000000003c";

    #[tokio::test]
    async fn shreds_expired_and_revoked_messages_only() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        // OLD expired, REV revoked but not expired, LIVE neither.
        exec(
            &store,
            &"INSERT INTO messages (id, sender_address, source, created_at, expires_at, revoked_at) VALUES \
             ('m-old', 'a@x', 'api', 0, 1, NULL), \
             ('m-rev', 'a@x', 'api', 0, 9999999999999, 5), \
             ('m-live', 'a@x', 'api', 0, 9999999999999, NULL); \
             INSERT INTO parts (message_id, part_no, header, plain_len) VALUES \
             ('m-old', 0, x'0000000000000000', 3), ('m-live', 0, x'0000000000000000', 3); \
             INSERT INTO chunks (message_id, part_no, seq, bytes) VALUES \
             ('m-old', 0, 0, x'01'), ('m-live', 0, 0, x'02'); \
             INSERT INTO recipients (id, message_id, address, pickup_id, wrapped_dek) VALUES \
             ('r-old', 'm-old', 'b@x', 'AAAAAAAAAAAAAAAAAAAAAA', x'AA'), \
             ('r-live', 'm-live', 'b@x', 'BBBBBBBBBBBBBBBBBBBBBB', x'BB');"
                .replace("m-old", OLD)
                .replace("m-rev", REV)
                .replace("m-live", LIVE),
        )
        .await?;

        let report = purge_expired(&store).await?;
        assert_eq!(
            report,
            PurgeReport {
                expired: 1,
                revoked: 1
            }
        );
        // Second run finds nothing.
        assert_eq!(purge_expired(&store).await?, PurgeReport::default());

        assert_eq!(chunks_of(&store, OLD).await?, 0);
        assert_eq!(chunks_of(&store, LIVE).await?, 1);
        assert!(wrapped_dek(&store, "r-old").await?.is_none());
        assert!(wrapped_dek(&store, "r-live").await?.is_some());
        let rows = audit_rows(&store).await?;
        let actions: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.message_id.as_deref()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("expired", Some(OLD)),
                ("purged", Some(OLD)),
                ("purged", Some(REV)),
            ]
        );
        assert!(audit::verify(&store).await?.ok());
        Ok(())
    }

    #[tokio::test]
    async fn purging_leaves_no_copy_on_disk() -> Result<()> {
        let (store, dir) = temp_store().await?;
        let key = b"wrapped-key-canary-0123456789abcdef-0123456789abcdef";
        let chunk = b"ciphertext-canary-0123456789abcdef-0123456789abcdef";
        exec(
            &store,
            &format!(
                "INSERT INTO messages (id, sender_address, source, created_at, expires_at) \
                 VALUES ('{OLD}', 'a@x', 'api', 0, 1); \
                 INSERT INTO parts (message_id, part_no, header, plain_len) \
                 VALUES ('{OLD}', 0, x'0000000000000000', 3); \
                 INSERT INTO chunks (message_id, part_no, seq, bytes) \
                 VALUES ('{OLD}', 0, 0, x'{}'); \
                 INSERT INTO recipients (id, message_id, address, pickup_id, wrapped_dek) \
                 VALUES ('r-old', '{OLD}', 'b@x', 'AAAAAAAAAAAAAAAAAAAAAA', x'{}');",
                hex::encode(chunk),
                hex::encode(key),
                OLD = OLD,
            ),
        )
        .await?;
        let db = dir.path().join("test.db");
        assert!(!files_holding(&db, key)?.is_empty());
        assert!(!files_holding(&db, chunk)?.is_empty());
        assert_eq!(purge_expired(&store).await?.expired, 1);
        assert_eq!(files_holding(&db, key)?, Vec::<String>::new());
        assert_eq!(files_holding(&db, chunk)?, Vec::<String>::new());
        Ok(())
    }

    /// Backdate the outbox mail at `path` by `hours`.
    fn age(path: &std::path::Path, hours: u64) -> std::io::Result<()> {
        let then = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
        std::fs::File::options()
            .write(true)
            .open(path)?
            .set_modified(then)
    }

    #[tokio::test]
    async fn old_outbox_mails_are_deleted_by_the_periodic_jobs() -> anyhow::Result<()> {
        let t = TestApp::new().await?;
        let sender = t.add_sender(SENDER).await?;
        t.submit(&sender, &["old@example.org"], "hello", None)
            .await?;
        t.submit(&sender, &["new@example.org"], "hello", None)
            .await?;
        let mails = t.outbox()?;
        assert_eq!(mails.len(), 2);
        age(&mails[0].path, 25)?;
        age(&mails[1].path, 23)?;
        run_once(t.state()).await;
        let left: Vec<String> = t.outbox()?.into_iter().map(|m| m.to).collect();
        assert_eq!(left, ["new@example.org"], "24 hours by default");

        let t = TestApp::builder()
            .set("outbound_file_retention_hours", 48)
            .build()
            .await?;
        let sender = t.add_sender(SENDER).await?;
        t.submit(&sender, &["old@example.org"], "hello", None)
            .await?;
        age(&t.outbox()?[0].path, 25)?;
        run_once(t.state()).await;
        assert_eq!(
            t.outbox()?.len(),
            1,
            "kept for outbound_file_retention_hours"
        );
        Ok(())
    }

    /// Proof (checkpoints): the periodic jobs sign a checkpoint when none exists yet, mail it
    /// to `checkpoint_mail_to` as plain text that verifies byte for byte, and sign the next only
    /// once `checkpoint_interval_minutes` passed and the log grew; 0 turns them off.
    #[tokio::test]
    async fn periodic_checkpoints_are_signed_when_due_and_mailed() -> anyhow::Result<()> {
        let witness = "witness@example.org";
        let t = TestApp::builder()
            .set("checkpoint_mail_to", witness)
            .build()
            .await?;
        let event = || Event::new(actor::CLI, Action::UserAdded);
        run_once(t.state()).await;
        assert!(
            checkpoint::latest(t.store(), 5).await?.is_empty(),
            "an empty log"
        );

        audit::append(t.store(), event()).await?;
        audit::append(t.store(), event()).await?;
        run_once(t.state()).await;
        let stored = checkpoint::latest(t.store(), 5).await?;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].seq, 2);
        let mails: Vec<_> = t
            .outbox()?
            .into_iter()
            .filter(|m| m.to == witness)
            .collect();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            mails[0].subject,
            "Audit checkpoint: 127.0.0.1/audit at seq 2"
        );
        assert_eq!(mails[0].text, stored[0].note, "the body is the checkpoint");
        let opened = checkpoint::open(
            mails[0].text.as_bytes(),
            &t.state().checkpoint_key.verifier(),
        )?;
        assert_eq!(opened.seq, 2);
        let signed = audited(t.store(), "checkpoint_signed").await?;
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].actor, "system");

        run_once(t.state()).await;
        exec(
            t.store(),
            "UPDATE audit_checkpoints SET signed_at = signed_at - 3600000",
        )
        .await?;
        run_once(t.state()).await;
        assert_eq!(
            checkpoint::latest(t.store(), 5).await?.len(),
            1,
            "not before the interval, nor for its own event alone"
        );
        audit::append(t.store(), event()).await?;
        run_once(t.state()).await;
        let stored = checkpoint::latest(t.store(), 5).await?;
        assert_eq!(stored.iter().map(|c| c.seq).collect::<Vec<_>>(), [4, 2]);
        assert_eq!(t.outbox()?.iter().filter(|m| m.to == witness).count(), 2);

        let off = TestApp::builder()
            .set("checkpoint_interval_minutes", 0)
            .build()
            .await?;
        audit::append(off.store(), event()).await?;
        run_once(off.state()).await;
        assert!(checkpoint::latest(off.store(), 5).await?.is_empty());
        assert_eq!(period(off.config()), Duration::from_secs(600));
        let often = Config::builder()
            .set("checkpoint_interval_minutes", 2)
            .build()?;
        assert_eq!(period(&often), Duration::from_secs(120));
        Ok(())
    }
}
