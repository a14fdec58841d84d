//! Checkpoints against a real store: signing, and each way a log can fail to extend one.

use serde_json::json;

use super::*;
use crate::audit::{actor, append, row_hash};
use crate::store::testing::{audit_rows, audited, exec, rewrite_audit_row, temp_store};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ORIGIN: &str = "sealpost.example.org/audit";

fn key() -> CheckpointKey {
    match CheckpointKey::from_seed(ORIGIN, &[5; 32]) {
        Ok(key) => key,
        Err(e) => panic!("test key: {e}"),
    }
}

async fn grow(store: &Store, n: usize) -> TestResult {
    for i in 0..n {
        append(
            store,
            Event::new(actor::CLI, Action::UserAdded).with_detail(json!({ "i": i })),
        )
        .await?;
    }
    Ok(())
}

async fn mismatch(store: &Store, checkpoint: &Checkpoint) -> Result<Option<Mismatch>, StoreError> {
    Ok(compare(store, checkpoint).await?.mismatch)
}

#[tokio::test]
async fn a_signed_checkpoint_is_stored_audited_and_extended() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 5).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    assert_eq!(signed.checkpoint.seq, 5);
    assert_eq!(
        open(signed.note.as_bytes(), &key().verifier())?,
        signed.checkpoint
    );

    let events = audited(&store, "checkpoint_signed").await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, 6);
    let detail: serde_json::Value = serde_json::from_str(&events[0].detail)?;
    assert_eq!(detail["seq"], 5);
    assert_eq!(detail["head"], hex::encode(signed.checkpoint.head));
    assert_eq!(detail["key"], key().verifier().label());
    let rows = audit_rows(&store).await?;
    assert_eq!(rows[4].hash, signed.checkpoint.head);

    let stored = latest(&store, 10).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].note, signed.note);

    assert_eq!(mismatch(&store, &signed.checkpoint).await?, None);
    grow(&store, 3).await?;
    let comparison = compare(&store, &signed.checkpoint).await?;
    assert_eq!(comparison.mismatch, None);
    assert_eq!(comparison.report.last_seq, 9);
    Ok(())
}

#[tokio::test]
async fn an_empty_log_has_a_checkpoint_too() -> TestResult {
    let (store, _dir) = temp_store().await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    assert_eq!(signed.checkpoint.seq, 0);
    assert_eq!(signed.checkpoint.head, GENESIS_HASH);
    assert_eq!(mismatch(&store, &signed.checkpoint).await?, None);
    Ok(())
}

#[tokio::test]
async fn an_altered_row_breaks_the_chain() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 6).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    exec(
        &store,
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
    )
    .await?;
    let found = mismatch(&store, &signed.checkpoint).await?;
    assert_eq!(
        found,
        Some(Mismatch::ChainBroken {
            at: Break {
                seq: 3,
                kind: BreakKind::HashMismatch
            },
            checkpoint_seq: 6
        })
    );
    assert_eq!(
        found.map(|m| m.to_string()).unwrap_or_default(),
        "audit chain broken at seq 3 (HashMismatch)"
    );
    Ok(())
}

#[tokio::test]
async fn deleted_newest_rows_are_truncation() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 12).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    exec(&store, "DELETE FROM audit_events WHERE seq > 3").await?;
    let found = mismatch(&store, &signed.checkpoint).await?;
    assert_eq!(
        found,
        Some(Mismatch::Truncated {
            last_seq: 3,
            checkpoint_seq: 12
        })
    );
    assert!(
        found
            .map(|m| m.to_string())
            .unwrap_or_default()
            .starts_with(
                "the log ends at seq 3, before the checkpoint's seq 12: rows were deleted"
            )
    );
    Ok(())
}

/// An insider changes row 2 and recomputes every hash after it: the chain verifies, the
/// checkpoint does not.
#[tokio::test]
async fn a_consistently_recomputed_chain_is_a_rewrite() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 5).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    let mut prev = GENESIS_HASH.to_vec();
    for mut row in audit_rows(&store).await? {
        if row.seq == 2 {
            row.detail = r#"{"i":"rewritten"}"#.to_owned();
        }
        row.prev_hash = prev;
        row.hash = row_hash(&row).to_vec();
        prev = row.hash.clone();
        rewrite_audit_row(&store, &row).await?;
    }
    assert!(
        chain::verify(&store).await?.ok(),
        "the rewrite is consistent"
    );
    let found = mismatch(&store, &signed.checkpoint).await?;
    assert_eq!(found, Some(Mismatch::Rewritten { seq: 5 }));
    assert!(
        found
            .map(|m| m.to_string())
            .unwrap_or_default()
            .starts_with("row 5's hash differs from the checkpoint: the chain was rewritten")
    );
    Ok(())
}

#[tokio::test]
async fn a_break_after_the_checkpoint_is_named_as_such() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 3).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    grow(&store, 3).await?;
    exec(
        &store,
        "UPDATE audit_events SET ip = '192.0.2.9' WHERE seq = 6",
    )
    .await?;
    let found = mismatch(&store, &signed.checkpoint).await?;
    assert_eq!(
        found.map(|m| m.to_string()).unwrap_or_default(),
        "audit chain broken at seq 6 (HashMismatch), after the checkpoint's seq 3, which still \
         matches"
    );
    Ok(())
}

/// No checkpoint is signed over a broken chain, nor over a log that no longer extends the
/// newest stored checkpoint; nothing is stored or audited then.
#[tokio::test]
async fn signing_refuses_a_log_that_does_not_hold() -> TestResult {
    let (store, _dir) = temp_store().await?;
    grow(&store, 4).await?;
    exec(&store, "UPDATE audit_events SET actor = 'x' WHERE seq = 2").await?;
    let refused = sign(&store, &key(), ORIGIN, actor::CLI).await;
    assert!(
        matches!(refused, Err(SignError::Broken(Break { seq: 2, .. }))),
        "{refused:?}"
    );

    let (store, _dir) = temp_store().await?;
    grow(&store, 12).await?;
    sign(&store, &key(), ORIGIN, actor::CLI).await?;
    exec(&store, "DELETE FROM audit_events WHERE seq > 2").await?;
    let refused = sign(&store, &key(), ORIGIN, actor::CLI).await;
    match refused {
        Err(e @ SignError::Diverged { seq: 12, .. }) => {
            assert!(e.to_string().contains("the log ends at seq 2"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(latest(&store, 10).await?.len(), 1);
    assert!(audited(&store, "checkpoint_signed").await?.is_empty());

    // A stored checkpoint by another key (the key was replaced) does not stop signing.
    let (store, _dir) = temp_store().await?;
    grow(&store, 2).await?;
    let old = CheckpointKey::from_seed(ORIGIN, &[6; 32])?;
    sign(&store, &old, ORIGIN, actor::CLI).await?;
    let signed = sign(&store, &key(), ORIGIN, actor::CLI).await?;
    assert_eq!(signed.checkpoint.seq, 3);
    Ok(())
}

#[tokio::test]
async fn due_after_the_interval_and_only_when_the_log_grew() -> TestResult {
    let (store, _dir) = temp_store().await?;
    let hour = 3_600_000;
    let now = now_ms();
    assert!(!due(&store, hour, now).await?, "an empty log");
    grow(&store, 1).await?;
    assert!(due(&store, hour, now).await?, "nothing signed yet");
    let signed_at = sign(&store, &key(), ORIGIN, actor::SYSTEM)
        .await?
        .checkpoint
        .time;
    let later = signed_at + hour;
    assert!(!due(&store, hour, later).await?, "only its own event since");
    grow(&store, 1).await?;
    assert!(
        !due(&store, hour, later - 1).await?,
        "the interval has not passed"
    );
    assert!(due(&store, hour, later).await?);
    Ok(())
}

/// The example of `docs/AUDIT.md` ("Checkpoints"), made by `sealpost audit checkpoint`, opens
/// with the public key shown there: the documented format is the implemented one.
#[test]
fn the_documented_example_verifies() -> TestResult {
    const PUBLIC_KEY: &str =
        "sealpost.example.org/audit+cdf46aec+AdwuWdP00DJ48MIXJxEiNjKIZVUMnN7S8qR1ZpPoYC9Z";
    const NOTE: &str = "sealpost.example.org/audit\n\
        12\n\
        Qo5/LJJ7Sofnj5DC29Ca/kLX2IIQNiV/OD2j2Iq1KXk=\n\
        2026-12-02T13:33:00.256Z\n\
        \n\
        \u{2014} sealpost.example.org/audit zfRq7EPC/aGnVngehA47sBKkdqjCtJfKnDGX4nh5ZVOOhxoZXZ36O8dfLe1m/12o3kD6B5t401LPlv9UDyB+eBR/kAA=\n";
    let key = VerifierKey::parse(PUBLIC_KEY)?;
    let checkpoint = open(NOTE.as_bytes(), &key)?;
    assert_eq!(checkpoint.origin, "sealpost.example.org/audit");
    assert_eq!(checkpoint.seq, 12);
    assert_eq!(
        hex::encode(checkpoint.head),
        "428e7f2c927b4a87e78f90c2dbd09afe42d7d8821036257f383da3d88ab52979"
    );
    assert_eq!(
        open(NOTE.replacen("\n12\n", "\n13\n", 1).as_bytes(), &key),
        Err(OpenError::Signature(SignatureError::Bad {
            key: key.label()
        }))
    );
    Ok(())
}
