//! The store: every SQL statement Sealpost runs lives under this module.
//!
//! [`Store`] wraps a SQLite pool configured for durability (WAL, group commit: every write
//! transaction is synced to disk before its `commit` returns, see `durable.rs`; foreign keys on,
//! 5 s busy timeout). Repository functions (in [`users`], [`tokens`], [`audit`], …)
//! take a `&mut SqliteConnection`, so a caller can run several of them in one transaction:
//!
//! ```no_run
//! # async fn demo(store: &sealpost_server::store::Store) -> Result<(), sealpost_server::store::StoreError> {
//! let mut tx = store.begin_write().await?;
//! // users::insert(&mut tx, ..).await?; audit::record(&mut tx, ..).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! Any transaction that reads and then writes (the audit chain, lockout counters, code
//! attempts) must come from [`Store::begin_write`], which issues `BEGIN IMMEDIATE`: SQLite
//! then takes the write lock up front, so two such transactions are serialized instead of
//! failing with `SQLITE_BUSY` on upgrade or, worse, both reading the same "last" row.
//!
//! Rules: no business decisions here (who may do what is for the callers); ids are UUIDv7
//! TEXT, times INTEGER Unix ms UTC (see [`crate::clock`]); never store plaintext content.

#![expect(
    clippy::disallowed_methods,
    reason = "the store is the one place SQL is written"
)]

pub mod audit;
pub mod checkpoints;
pub mod codes;
mod durable;
pub mod messages;
pub mod parts;
pub mod pickup_failures;
pub mod purge;
pub mod recipients;
pub mod relays;
pub mod sessions;
pub mod staff_auth;
pub mod tokens;
pub mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

pub use sqlx::SqliteConnection;

/// The migrations under `migrations/sqlite/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// A write transaction started with `BEGIN IMMEDIATE` on the store's one writer connection.
/// Derefs to `SqliteConnection`; commit with [`WriteTx::commit`]. Dropping it rolls back (in
/// the background; the next writer waits for that).
///
/// Cancellation-safe: any future that holds the writer (`begin_write`, a statement in the
/// transaction, `commit`) may be dropped at any `.await`, e.g. when an HTTP client hangs up.
/// A statement already handed to SQLite's worker thread still runs after its future is gone,
/// so the writer is marked [`WriterConn::open`] *before* `BEGIN` is sent and stays marked until
/// a `COMMIT` or `ROLLBACK` is known to have finished; the next turn rolls back whatever a
/// dropped turn may have left open.
pub struct WriteTx {
    /// `None` only once committed or dropped.
    writer: Option<tokio::sync::OwnedMutexGuard<WriterConn>>,
    durability: Arc<durable::Durability>,
}

/// The connection all of this process's write transactions run on, one at a time.
#[derive(Debug)]
struct WriterConn {
    conn: SqliteConnection,
    /// A transaction may be open on `conn`: a `BEGIN` was sent and no `COMMIT` or `ROLLBACK`
    /// is known to have finished since (the turn was dropped mid-statement, its `WriteTx` was
    /// dropped without a runtime to roll it back, or `COMMIT` failed). The next turn rolls
    /// back before its own `BEGIN`.
    open: bool,
}

impl WriterConn {
    /// End whatever transaction a dropped or failed turn may have left open.
    async fn settle(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        match sqlx::query("ROLLBACK").execute(&mut self.conn).await {
            Ok(_) => {}
            // The dropped turn's COMMIT or ROLLBACK did finish after all.
            Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {}
            Err(e) => return Err(e.into()),
        }
        self.open = false;
        Ok(())
    }
}

impl WriteTx {
    /// Commit, give the writer turn to the next in line, and return once the transaction is on
    /// disk (one WAL sync may cover several concurrent commits). If this future is dropped
    /// before `COMMIT` returns, the writer stays marked open and the next turn settles it: the
    /// transaction is then either committed or rolled back, never left open.
    pub async fn commit(mut self) -> Result<()> {
        let Some(mut writer) = self.writer.take() else {
            return Err(sqlx::Error::WorkerCrashed.into());
        };
        sqlx::query("COMMIT").execute(&mut writer.conn).await?;
        writer.open = false;
        drop(writer);
        self.durability.wait().await.map_err(sqlx::Error::Io)?;
        Ok(())
    }

    fn conn(&self) -> &SqliteConnection {
        &self
            .writer
            .as_ref()
            .expect("a WriteTx holds the writer until it ends")
            .conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        // Roll back now, still holding the writer, so SQLite's write lock is not kept until
        // some later writer comes along. Without a runtime the next `begin_write` does it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = writer.settle().await {
                    tracing::warn!(error = %e, "rolling back a write transaction failed");
                }
            });
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn()
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self
            .writer
            .as_mut()
            .expect("a WriteTx holds the writer until it ends")
            .conn
    }
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").finish_non_exhaustive()
    }
}

/// How long [`Store::begin_write`] waits for its turn before giving up. Turns are taken in
/// arrival order, so a writer waits only for those ahead of it: under a crowd of large
/// messages (every 1 MiB batch is a turn) that can be many seconds, and a short limit refused
/// messages that were merely queued (`451` for 11 of 20 concurrent 50 MB messages at 5 s). The
/// limit is there for a writer that hangs, not for a queue; SMTP clients wait up to ten
/// minutes for the reply to DATA (RFC 5321 4.5.3.2.6).
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors from the store. Constraint violations are recognisable with
/// [`StoreError::is_unique_violation`] / [`StoreError::is_constraint_violation`] so the web layer
/// can map them to 409 in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value this version cannot interpret (e.g. an unknown role). Indicates a
    /// newer schema or manual editing.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

impl StoreError {
    fn db_kind(&self) -> Option<sqlx::error::ErrorKind> {
        match self {
            Self::Sqlx(sqlx::Error::Database(db)) => Some(db.kind()),
            _ => None,
        }
    }

    /// A UNIQUE or PRIMARY KEY constraint failed (e.g. the email is already taken).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self.db_kind(),
            Some(sqlx::error::ErrorKind::UniqueViolation)
        )
    }

    /// Any integrity constraint failed (unique, foreign key, not null, check).
    pub fn is_constraint_violation(&self) -> bool {
        matches!(
            self.db_kind(),
            Some(
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::NotNullViolation
                    | sqlx::error::ErrorKind::CheckViolation
            )
        )
    }
}

/// Store result.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A size or count for an INTEGER column (SQLite's are signed 64-bit).
pub(crate) fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt {
        table: "messages",
        reason: "size out of range".into(),
    })
}

/// The database handle. Cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The one connection write transactions use, one at a time in arrival order. SQLite
    /// allows one writer anyway; with pooled writers, concurrent `BEGIN IMMEDIATE`s poll the
    /// lock through the busy handler's sleeps, and each also waits for a pooled connection.
    /// This connection's page cache also stays valid between transactions, as only it writes.
    writer: Arc<tokio::sync::Mutex<WriterConn>>,
    durability: Arc<durable::Durability>,
}

impl Store {
    /// Open (creating if missing) the SQLite database at `database_url` with Sealpost's
    /// durability settings. Does not migrate; call [`Store::migrate`].
    pub async fn open(database_url: &SecretString) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url.expose_secret())?;
        Self::open_with(options).await
    }

    /// The database file a `sqlite:` URL names (`None` for in-memory databases or bad URLs).
    pub fn sqlite_file(database_url: &SecretString) -> Option<std::path::PathBuf> {
        let options = SqliteConnectOptions::from_str(database_url.expose_secret()).ok()?;
        let path = options.get_filename();
        let name = path.to_string_lossy();
        (!name.is_empty() && name != ":memory:").then(|| path.to_owned())
    }

    /// Open the SQLite database file at `path` (creating it if missing).
    pub async fn open_path(path: &std::path::Path) -> Result<Self> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let file = options.get_filename();
        let name = file.to_string_lossy();
        let db = (!name.is_empty() && name != ":memory:").then(|| file.to_owned());
        // NORMAL: commits do not sync; `WriteTx::commit` syncs the WAL (group commit).
        // secure_delete: deleted rows (shredded keys and ciphertext) are overwritten with zeros
        // in their pages, and freed pages too, instead of lingering in free space.
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("secure_delete", "on")
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        let writer = WriterConn {
            conn: options.connect().await?,
            open: false,
        };
        Ok(Self {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            durability: Arc::new(durable::Durability::new(db)),
        })
    }

    /// Apply pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Start a write transaction with `BEGIN IMMEDIATE` (takes SQLite's write lock now). Use it
    /// for every read-then-write sequence. Commit with `tx.commit().await`; dropping it rolls
    /// back.
    ///
    /// Writers of this process take turns in arrival order; the turn is released when the
    /// transaction ends. Waiting longer than two minutes for a turn
    /// fails.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let mut writer =
            tokio::time::timeout(WRITE_TURN_TIMEOUT, Arc::clone(&self.writer).lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?;
        writer.settle().await?;
        // Marked before it is sent: if this future is dropped while `BEGIN` is queued, SQLite
        // still runs it, and the next turn must know to roll it back.
        writer.open = true;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut writer.conn)
            .await?;
        Ok(WriteTx {
            writer: Some(writer),
            durability: Arc::clone(&self.durability),
        })
    }

    /// Start a read transaction (a consistent snapshot across several reads).
    pub async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    /// A pooled connection for single statements outside a transaction.
    pub async fn acquire(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// The underlying pool, for code that needs it directly (e.g. [`sessions::SqliteSessionStore`]).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Close every connection (waits for in-flight queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A new random-and-time-ordered id (UUIDv7).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every commit is followed by a WAL sync covering it: one commit alone, one sync; many
    /// concurrent commits all end covered, with at most one sync each.
    #[tokio::test]
    async fn commits_are_synced_and_grouped() -> Result<()> {
        let (store, _dir) = testing::temp_store().await?;
        let (syncs, synced) = (store.durability.syncs(), store.durability.synced());
        let mut tx = store.begin_write().await?;
        sqlx::query("INSERT INTO sessions (id, data, expiry_date) VALUES ('one', x'', 0)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        assert_eq!(
            store.durability.syncs(),
            syncs + 1,
            "a commit alone is synced"
        );
        assert_eq!(store.durability.synced(), synced + 1);

        let before = store.durability.syncs();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.spawn(async move {
                let mut tx = store.begin_write().await?;
                sqlx::query("INSERT INTO sessions (id, data, expiry_date) VALUES (?, x'', 0)")
                    .bind(format!("s{i}"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| StoreError::Sqlx(sqlx::Error::Io(std::io::Error::other(e))))??;
        }
        let syncs = store.durability.syncs() - before;
        assert!((1..=64).contains(&syncs), "{syncs} syncs for 64 commits");
        assert_eq!(
            store.durability.synced(),
            synced + 65,
            "every commit is covered"
        );
        Ok(())
    }

    #[tokio::test]
    async fn pragmas_are_applied() -> Result<()> {
        let (store, _dir) = testing::temp_store().await?;
        let mut conn = store.acquire().await?;
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(mode, "wal");
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(
            sync, 1,
            "synchronous=NORMAL (commits are synced by the group commit)"
        );
        let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(fk, 1);
        Ok(())
    }

    #[tokio::test]
    async fn begin_write_serializes_and_rolls_back_on_drop() -> Result<()> {
        let (store, _dir) = testing::temp_store().await?;
        {
            let mut tx = store.begin_write().await?;
            sqlx::query("INSERT INTO sessions (id, data, expiry_date) VALUES ('x', x'', 0)")
                .execute(&mut *tx)
                .await?;
            // dropped without commit
        }
        let mut conn = store.acquire().await?;
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(n, 0);
        Ok(())
    }

    /// Proof (cancellation): a write turn dropped at any `.await` — while `BEGIN` is queued,
    /// mid-statement, or while `COMMIT` is queued — never leaves the writer inside a
    /// transaction: the next turn begins, writes and commits normally.
    #[tokio::test]
    async fn a_write_turn_dropped_at_any_await_leaves_the_writer_usable() -> Result<()> {
        use futures_util::FutureExt as _;

        let (store, _dir) = testing::temp_store().await?;
        let insert = |id: &'static str| {
            sqlx::query("INSERT INTO sessions (id, data, expiry_date) VALUES (?, x'', 0)").bind(id)
        };
        let count = async |store: &Store| -> Result<i64> {
            let mut conn = store.acquire().await?;
            let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
                .fetch_one(&mut *conn)
                .await?;
            Ok(n)
        };
        let next_turn_works = async |store: &Store, id: &'static str| -> Result<()> {
            let mut tx = store.begin_write().await?;
            insert(id).execute(&mut *tx).await?;
            tx.commit().await
        };

        // How often each kind of turn was really dropped mid-way (a poll can also finish it).
        let mut dropped = [0_u32; 3];
        for _ in 0..50 {
            // Dropped after one poll: the lock is free, so `BEGIN` is handed to the worker.
            dropped[0] += u32::from(store.begin_write().now_or_never().is_none());
            next_turn_works(&store, "after-begin").await?;

            // Dropped while a statement of the transaction runs.
            let mut tx = store.begin_write().await?;
            dropped[1] += u32::from(insert("mid").execute(&mut *tx).now_or_never().is_none());
            drop(tx);
            next_turn_works(&store, "after-statement").await?;

            // Dropped while `COMMIT` is queued: committed or rolled back, never left open.
            let mut tx = store.begin_write().await?;
            insert("at-commit").execute(&mut *tx).await?;
            dropped[2] += u32::from(tx.commit().now_or_never().is_none());
            next_turn_works(&store, "after-commit").await?;

            let mut tx = store.begin_write().await?;
            sqlx::query("DELETE FROM sessions")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            assert_eq!(count(&store).await?, 0);
        }
        assert!(
            dropped.iter().all(|&n| n > 0),
            "dropped mid-way: {dropped:?}"
        );
        Ok(())
    }
}
