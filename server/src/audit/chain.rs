//! The canonical row hash and the end-to-end verification walk (`docs/AUDIT.md`).

use sealpost_crypto::hash::{Digest, Sha256};

use crate::store::audit::{self as rows, AuditRow};
use crate::store::{Result, Store};

/// `prev_hash` of the first row: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// Length prefix meaning SQL NULL.
const NULL_LEN: u32 = 0xFFFF_FFFF;

fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            // A field longer than 4 GiB - 2 cannot be stored in SQLite anyway (1 GB limit);
            // saturate so a pathological value still hashes deterministically and differently
            // from NULL.
            let len = u32::try_from(bytes.len()).unwrap_or(NULL_LEN - 1);
            h.update(len.to_be_bytes());
            h.update(bytes);
        }
        None => h.update(NULL_LEN.to_be_bytes()),
    }
}

/// The canonical hash of a row: SHA-256 over `prev_hash` (as stored) followed by seq, ts,
/// actor, action, message_id, recipient_id, ip, user_agent, detail, each as a 32-bit
/// big-endian length and its UTF-8 bytes (NULL: length `0xFFFFFFFF`, no bytes). Integers are
/// written in decimal ASCII. `row.hash` is ignored.
pub fn row_hash(row: &AuditRow) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&row.prev_hash);
    put(&mut h, Some(row.seq.to_string().as_bytes()));
    put(&mut h, Some(row.ts.to_string().as_bytes()));
    put(&mut h, Some(row.actor.as_bytes()));
    put(&mut h, Some(row.action.as_bytes()));
    put(&mut h, row.message_id.as_deref().map(str::as_bytes));
    put(&mut h, row.recipient_id.as_deref().map(str::as_bytes));
    put(&mut h, row.ip.as_deref().map(str::as_bytes));
    put(&mut h, row.user_agent.as_deref().map(str::as_bytes));
    put(&mut h, Some(row.detail.as_bytes()));
    h.finalize().into()
}

/// How the chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The expected seq is missing; the next row present has `found`.
    Gap { found: i64 },
    /// The row's `prev_hash` is not the previous row's `hash`.
    PrevMismatch,
    /// The row's fields do not hash to its stored `hash` (the row was altered).
    HashMismatch,
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first bad sequence number (for a gap: the missing one).
    pub seq: i64,
    pub kind: BreakKind,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked before stopping (all rows when the chain holds).
    pub rows_checked: u64,
    /// Highest seq seen that verified, 0 for an empty log.
    pub last_seq: i64,
    /// Hash of the last verified row (the genesis hash for an empty log); publish it to
    /// anchor the log externally.
    pub head_hash: [u8; 32],
    /// `None` when the chain holds.
    pub broken: Option<Break>,
}

impl VerifyReport {
    /// Whether the whole chain verified.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

const PAGE: i64 = 1000;

/// Walk the whole log in seq order and report the first bad row. Deleting rows at the very
/// end (truncation) is not detectable from the chain alone; see `docs/AUDIT.md` (a signed
/// checkpoint kept elsewhere catches it: [`verify_from_anchor`]).
pub async fn verify(store: &Store) -> Result<VerifyReport> {
    verify_from_anchor(store, None)
        .await
        .map(|(report, _)| report)
}

/// [`verify`], also returning the hash of the row at `anchor` (a checkpoint's `seq`) if the
/// walk reached that row and it verified: 32 zero bytes for `anchor` 0, `None` when the log
/// ends before `anchor` or breaks at or before it.
pub async fn verify_from_anchor(
    store: &Store,
    anchor: Option<i64>,
) -> Result<(VerifyReport, Option<[u8; 32]>)> {
    // One read transaction: a consistent snapshot while writers keep appending.
    let mut tx = store.begin_read().await?;
    let mut report = VerifyReport {
        rows_checked: 0,
        last_seq: 0,
        head_hash: GENESIS_HASH,
        broken: None,
    };
    let mut anchored = (anchor == Some(0)).then_some(GENESIS_HASH);
    let mut expected_seq: i64 = 1;
    let mut after: i64 = i64::MIN;
    loop {
        let page = rows::page_after(&mut tx, after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let computed = row_hash(row);
            let kind = if row.seq != expected_seq {
                Some(BreakKind::Gap { found: row.seq })
            } else if row.prev_hash.as_slice() != report.head_hash.as_slice() {
                Some(BreakKind::PrevMismatch)
            } else if computed.as_slice() != row.hash.as_slice() {
                Some(BreakKind::HashMismatch)
            } else {
                None
            };
            if let Some(kind) = kind {
                report.broken = Some(Break {
                    seq: expected_seq,
                    kind,
                });
                return Ok((report, anchored));
            }
            report.rows_checked += 1;
            report.last_seq = row.seq;
            report.head_hash = computed;
            if anchor == Some(row.seq) {
                anchored = Some(computed);
            }
            expected_seq += 1;
        }
        after = page.last().map_or(after, |r| r.seq);
    }
    Ok((report, anchored))
}
