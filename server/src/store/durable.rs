//! Group commit: every write transaction is on disk before [`super::WriteTx::commit`] returns,
//! and concurrent commits share one `fdatasync` of the WAL instead of taking one each.
//!
//! Connections run with `synchronous=NORMAL`: a commit appends its frames to the WAL (in the
//! page cache) without syncing, and SQLite itself syncs the WAL before every checkpoint and
//! the database file after it. [`Durability::wait`] then makes the commit durable: it syncs
//! the WAL file, unless a sync that *started after this commit* has already finished. So the
//! writer's turn is free for the next transaction while the disk flushes, and one flush covers
//! every commit that finished before it began. A commit that returned is durable exactly as
//! with `synchronous=FULL`; only the number of flushes changes.
//!
//! Which frames a sync covers: each commit takes a ticket after SQLite returned from `COMMIT`
//! (its frames are written). A sync reads the highest ticket before it starts, and once it
//! finishes every ticket up to that one is durable.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by every connection of one store.
#[derive(Debug)]
pub(crate) struct Durability {
    /// The database file; `None` for in-memory databases (nothing to sync).
    db: Option<PathBuf>,
    /// Tickets handed out: commits that have finished.
    committed: AtomicU64,
    /// Every ticket up to this one is on disk.
    synced: AtomicU64,
    /// Held while a sync runs; waiters queue here and most find their ticket covered.
    syncing: tokio::sync::Mutex<()>,
    /// Syncs performed (for tests).
    syncs: AtomicU64,
}

impl Durability {
    pub(crate) fn new(db: Option<PathBuf>) -> Self {
        Self {
            db,
            committed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
            syncs: AtomicU64::new(0),
        }
    }

    /// Call after a `COMMIT` succeeded; returns once that commit is on disk.
    pub(crate) async fn wait(&self) -> io::Result<()> {
        let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(db) = &self.db else {
            return Ok(());
        };
        let _syncing = self.syncing.lock().await;
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every commit with a ticket up to `covered` finished before this sync starts.
        let covered = self.committed.load(Ordering::SeqCst);
        let db = db.clone();
        tokio::task::spawn_blocking(move || sync_wal(&db))
            .await
            .map_err(io::Error::other)??;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    /// Syncs performed so far.
    #[cfg(test)]
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Commits made durable so far.
    #[cfg(test)]
    pub(crate) fn synced(&self) -> u64 {
        self.synced.load(Ordering::SeqCst)
    }
}

/// `fdatasync` the WAL, opened afresh each time: SQLite may have deleted and recreated it
/// (when the last connection closes it checkpoints, syncs the database file and removes the
/// WAL). Without a WAL every commit is already in the synced database file; sync that anyway.
/// Without either (a database that lives only in memory) there is nothing to sync.
fn sync_wal(db: &std::path::Path) -> io::Result<()> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for path in [std::path::Path::new(&wal), db] {
        match std::fs::File::open(path) {
            Ok(file) => return file.sync_data(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
