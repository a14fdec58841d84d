//! Signed checkpoints of the audit log: what the hash chain alone cannot prove.
//!
//! The chain shows that no row was changed, removed from the middle or reordered, but not that
//! the newest rows are still there, nor that someone with write access did not recompute the
//! whole chain, nor that an older copy of the database was not put back. A checkpoint anchors
//! the head: an Ed25519 signature over (origin, newest seq, its hash, time) in the C2SP
//! signed-note format (`docs/AUDIT.md`, "Checkpoints"). Kept outside the database (mailed to a
//! witness, saved by an auditor), it lets [`compare`] tell whether today's log still extends
//! it.
//!
//! The key is loaded at start-up beside the server key (`crate::app`), never from the
//! database. Signed checkpoints are stored too ([`crate::store::checkpoints`]), for listing and
//! for the check before the next signing; verification never trusts that copy.
//!
//! Never sign a log that does not verify: [`sign`] walks the chain first and refuses a broken
//! one, or one that no longer extends the newest stored checkpoint.

mod key;
mod note;

use std::fmt;

use serde_json::json;

pub use key::{CheckpointKey, KeyError, VerifierKey, valid_name};
pub use note::{Checkpoint, MAX_NOTE_BYTES, NoteError, SignatureError, SignedNote};

use super::chain::{self, Break, BreakKind, GENESIS_HASH, VerifyReport};
use super::{Action, Event};
use crate::clock::{UnixMillis, now_ms};
use crate::store::checkpoints::{self as stored, StoredCheckpoint};
use crate::store::{Store, StoreError};

/// Why a checkpoint's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Parse `bytes` as a checkpoint and check that `key` signed it.
pub fn open(bytes: &[u8], key: &VerifierKey) -> Result<Checkpoint, OpenError> {
    let note = SignedNote::parse(bytes)?;
    let checkpoint = Checkpoint::parse_body(&note.body)?;
    note.verify(key)?;
    Ok(checkpoint)
}

/// How the log fails to extend a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The chain itself breaks (at, before or after the checkpoint's row).
    ChainBroken { at: Break, checkpoint_seq: i64 },
    /// The chain holds but ends before the checkpoint's row.
    Truncated { last_seq: i64, checkpoint_seq: i64 },
    /// The chain holds and has the checkpoint's row, with another hash.
    Rewritten { seq: i64 },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChainBroken { at, checkpoint_seq } => {
                write!(f, "audit chain broken at seq {} ({:?})", at.seq, at.kind)?;
                if at.seq > *checkpoint_seq {
                    write!(
                        f,
                        ", after the checkpoint's seq {checkpoint_seq}, which still matches"
                    )?;
                }
                Ok(())
            }
            Self::Truncated {
                last_seq,
                checkpoint_seq,
            } => write!(
                f,
                "the log ends at seq {last_seq}, before the checkpoint's seq {checkpoint_seq}: \
                 rows were deleted, or an older copy of the database was restored"
            ),
            Self::Rewritten { seq } => write!(
                f,
                "row {seq}'s hash differs from the checkpoint: the chain was rewritten (or an \
                 older copy of the database was restored and has grown since)"
            ),
        }
    }
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The walk of the whole chain.
    pub report: VerifyReport,
    /// `None` when the log verifies and extends the checkpoint.
    pub mismatch: Option<Mismatch>,
}

/// Walk the whole chain and compare it with `checkpoint`: the log extends it when the chain
/// verifies from the first row to the current head and its row at the checkpoint's `seq` has
/// the checkpoint's hash. The origin is the caller's to compare.
pub async fn compare(store: &Store, checkpoint: &Checkpoint) -> Result<Comparison, StoreError> {
    let checkpoint_seq = checkpoint.seq;
    let (report, anchored) = chain::verify_from_anchor(store, Some(checkpoint_seq)).await?;
    let mismatch = match (anchored, &report.broken) {
        (Some(hash), _) if hash != checkpoint.head => Some(Mismatch::Rewritten {
            seq: checkpoint_seq,
        }),
        (_, Some(at)) => Some(Mismatch::ChainBroken {
            at: at.clone(),
            checkpoint_seq,
        }),
        (None, None) => Some(Mismatch::Truncated {
            last_seq: report.last_seq,
            checkpoint_seq,
        }),
        (Some(_), None) => None,
    };
    Ok(Comparison { report, mismatch })
}

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit chain broken at seq {} ({:?}): no checkpoint signed", .0.seq, .0.kind)]
    Broken(Break),
    #[error(
        "the log does not extend the newest stored checkpoint (seq {seq}): {mismatch}; no \
         checkpoint signed"
    )]
    Diverged { seq: i64, mismatch: Mismatch },
}

/// A checkpoint just signed and stored.
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    /// The signed note's text.
    pub note: String,
}

/// Check the log, then sign a checkpoint of its head with `key`, store it, and audit
/// `checkpoint_signed` (actor `actor`) in the same transaction. The checkpoint covers the rows
/// before that event.
///
/// The check: the chain must verify, and, when the newest stored checkpoint is signed by
/// `key`, extend it. It runs before the write transaction, so as not to hold the write lock
/// for a walk of the whole log; rows appended meanwhile are this process's or another
/// Sealpost's, appended through [`super::record`].
pub async fn sign(
    store: &Store,
    key: &CheckpointKey,
    origin: &str,
    actor: &str,
) -> Result<Signed, SignError> {
    check_before_signing(store, key).await?;
    let mut tx = store.begin_write().await?;
    let (seq, head) = match crate::store::audit::last(&mut tx).await? {
        Some((seq, hash)) => match <[u8; 32]>::try_from(hash.as_slice()) {
            Ok(head) => (seq, head),
            Err(_) => {
                return Err(SignError::Broken(Break {
                    seq,
                    kind: BreakKind::HashMismatch,
                }));
            }
        },
        None => (0, GENESIS_HASH),
    };
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        seq,
        head,
        time: now_ms(),
    };
    let note = SignedNote::sign(checkpoint.body(), key).encode();
    stored::insert(
        &mut tx,
        &StoredCheckpoint {
            seq,
            head_hash: head.to_vec(),
            signed_at: checkpoint.time,
            note: note.clone(),
        },
    )
    .await?;
    super::record(
        &mut tx,
        Event::new(actor, Action::CheckpointSigned).with_detail(json!({
            "seq": seq,
            "head": hex::encode(head),
            "origin": origin,
            "key": key.verifier().label(),
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Signed { checkpoint, note })
}

async fn check_before_signing(store: &Store, key: &CheckpointKey) -> Result<(), SignError> {
    let newest = {
        let mut conn = store.acquire().await?;
        stored::latest(&mut conn, 1).await?.pop()
    };
    let verifier = key.verifier();
    let anchor = newest.and_then(|row| match open(row.note.as_bytes(), &verifier) {
        Ok(checkpoint) => Some(checkpoint),
        Err(e) => {
            tracing::warn!(
                seq = row.seq,
                error = %e,
                "the newest stored checkpoint does not open with this checkpoint key; \
                 checking the chain alone"
            );
            None
        }
    });
    match anchor {
        Some(checkpoint) => match compare(store, &checkpoint).await?.mismatch {
            None => Ok(()),
            Some(mismatch) => Err(SignError::Diverged {
                seq: checkpoint.seq,
                mismatch,
            }),
        },
        None => match chain::verify(store).await?.broken {
            None => Ok(()),
            Some(at) => Err(SignError::Broken(at)),
        },
    }
}

/// Whether the periodic job should sign now: the log is not empty, and either nothing was
/// signed yet or `every_ms` passed since the newest checkpoint and the log grew beyond that
/// checkpoint's own `checkpoint_signed` event (an idle log gets no new checkpoints).
pub async fn due(store: &Store, every_ms: i64, now: UnixMillis) -> Result<bool, StoreError> {
    let mut conn = store.acquire().await?;
    let Some((head, _)) = crate::store::audit::last(&mut conn).await? else {
        return Ok(false);
    };
    Ok(match stored::latest(&mut conn, 1).await?.pop() {
        None => true,
        Some(newest) => now >= newest.signed_at.saturating_add(every_ms) && head > newest.seq + 1,
    })
}

/// The newest `limit` stored checkpoints, newest first.
pub async fn latest(store: &Store, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut conn = store.acquire().await?;
    stored::latest(&mut conn, i64::from(limit)).await
}

#[cfg(test)]
mod tests;
