//! The memory budget for messages being received. DATA is parsed whole, so every session in
//! the middle of a transfer holds its message in memory; the budget caps what all of them hold
//! together (`smtp_data_memory_bytes`), so a crowd of large transfers defers some (`452 4.3.1`,
//! the MTA retries) instead of growing the process without bound.
//!
//! What is counted is what is held, not the message's size: the receive buffer's capacity
//! (grown in doubling steps that are reserved before they are allocated), and while the message
//! is parsed and stored, its size once more for the decoded parts (transfer decoding never
//! makes a part larger than its encoded form). Encryption streams the parts in batches of about
//! 1 MiB, which the budget's margin covers.

use std::sync::Arc;

/// The memory that messages being received may take, together: a semaphore of KiB. A session
/// reserves more as its DATA grows and holds it until the message is stored; a transfer that
/// cannot reserve more is refused with `452 4.3.1` (try again later) instead of growing the
/// process without bound.
#[derive(Debug, Clone)]
pub struct DataBudget(Arc<tokio::sync::Semaphore>);

/// Memory reserved from a [`DataBudget`], returned when dropped.
#[derive(Debug)]
pub struct DataReservation {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    kib: usize,
}

impl DataBudget {
    pub fn new(bytes: u64) -> Self {
        let kib = usize::try_from(bytes / 1024)
            .unwrap_or(usize::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Self(Arc::new(tokio::sync::Semaphore::new(kib)))
    }

    /// An empty reservation to grow with [`DataBudget::reserve`].
    pub fn empty() -> DataReservation {
        DataReservation {
            permit: None,
            kib: 0,
        }
    }

    /// Grow `r` to cover `bytes`, without waiting. `false`: the budget is spent.
    pub fn reserve(&self, r: &mut DataReservation, bytes: usize) -> bool {
        // Reserve ahead in steps of 64 KiB to keep the semaphore out of the per-line path;
        // near the end of the budget, just what is needed.
        let needed = bytes.div_ceil(1024);
        if needed <= r.kib {
            return true;
        }
        let exact = needed - r.kib;
        for step in [exact.max(64), exact] {
            let Ok(permits) = u32::try_from(step) else {
                continue;
            };
            if let Ok(more) = Arc::clone(&self.0).try_acquire_many_owned(permits) {
                match &mut r.permit {
                    Some(permit) => permit.merge(more),
                    None => r.permit = Some(more),
                }
                r.kib += step;
                return true;
            }
        }
        false
    }
}
