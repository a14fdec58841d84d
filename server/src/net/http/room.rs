//! Making room on a full listener. When every place of `http_max_connections` is taken, a new
//! connection does not simply lose to the ones already there: the connection that has waited
//! longest for a request without sending a whole one (a client trickling its request head,
//! one slow with its TLS handshake, a keep-alive connection with nothing more to ask) is
//! closed, and the new connection takes its place: the place in the total cap passes from
//! the one to the other at once, so a freed place cannot go to anyone else in between, and
//! the closed connection counts for nothing in the moment it takes to end. A connection
//! whose request is being handled is never closed for room; when all are, the new
//! connection is refused.
//!
//! So clients that hold connections open without finishing requests, from however many
//! addresses, cannot keep real requests out: each new connection pushes out the stalest one,
//! and a real client needs its place only for the moment it takes to send its request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::idle::Activity;

/// The open connections of one listener, each with the means to close it.
#[derive(Debug, Default)]
pub(super) struct Room {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

#[derive(Debug)]
struct Entry {
    activity: Activity,
    close: Arc<Notify>,
    /// The connection's place in the total cap, until it is handed to a new connection
    /// (then the connection is closing and is not chosen again).
    place: Option<OwnedSemaphorePermit>,
}

/// A connection's entry in its [`Room`]; dropping it removes the entry.
#[derive(Debug)]
pub(super) struct Registration {
    id: u64,
    room: Arc<Room>,
    close: Arc<Notify>,
    activity: Activity,
}

impl Room {
    /// Enter a connection with its `activity` and its `place` in the total cap, which the room
    /// holds from now on.
    pub(super) fn enter(
        self: &Arc<Self>,
        activity: Activity,
        place: OwnedSemaphorePermit,
    ) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().insert(
            id,
            Entry {
                activity: activity.clone(),
                close: Arc::clone(&close),
                place: Some(place),
            },
        );
        Registration {
            id,
            room: Arc::clone(self),
            close,
            activity,
        }
    }

    /// Ask the connection that has waited longest for a request to close, and take its
    /// place in the total cap for a new connection. `None` when every connection has a
    /// request being handled (or is closing already).
    pub(super) fn push_out_stalest(&self) -> Option<OwnedSemaphorePermit> {
        let mut open = self.lock();
        let (_, entry) = open
            .values_mut()
            .filter(|e| e.place.is_some())
            .filter_map(|e| e.activity.waiting_since().map(|since| (since, e)))
            .min_by_key(|(since, _)| *since)?;
        // Stored if the connection is not waiting on it yet.
        entry.close.notify_one();
        entry.place.take()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registration {
    /// The connection's activity, as entered.
    pub(super) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Resolves when the connection was chosen to make room.
    pub(super) async fn pushed_out(&self) {
        self.close.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.room.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proof: the connection waiting longest is chosen, then the next; one with a request
    /// being handled never is, and when only such ones are left nothing is. A chosen
    /// connection learns it (`pushed_out` resolves).
    #[tokio::test]
    async fn the_stalest_waiting_connection_makes_room() {
        let room = Arc::new(Room::default());
        let places = Arc::new(tokio::sync::Semaphore::new(3));
        let place = || {
            Arc::clone(&places)
                .try_acquire_owned()
                .expect("a free place")
        };
        // Made one after another, so each has waited a little less than the one before.
        let (oldest, busy_one, newest) = (Activity::new(), Activity::new(), Activity::new());
        let first = room.enter(oldest, place());
        let busy = room.enter(busy_one.clone(), place());
        let _handling = busy_one.busy();
        let last = room.enter(newest, place());

        let handed = room.push_out_stalest();
        assert!(handed.is_some());
        first.pushed_out().await;
        assert_eq!(places.available_permits(), 0, "the place was not handed on");
        drop(handed);
        assert_eq!(places.available_permits(), 1);
        assert!(room.push_out_stalest().is_some());
        last.pushed_out().await;
        assert!(room.push_out_stalest().is_none(), "chose a busy connection");
        drop((first, last));
        assert!(room.push_out_stalest().is_none());
        drop(busy);
        assert!(room.lock().is_empty());
        assert_eq!(places.available_permits(), 3);
    }
}
