//! The store: every SQL statement Sealpost runs lives under this module.
//!
//! [`Store`] wraps a SQLite pool configured for durability (WAL, `synchronous=FULL`, foreign
//! keys on, 5 s busy timeout). Repository functions (in [`users`], [`tokens`], [`audit`], …)
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

pub mod audit;
pub mod messages;
pub mod purge;
pub mod relays;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

pub use sqlx::SqliteConnection;

/// The migrations under `migrations/sqlite/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// A write transaction started with `BEGIN IMMEDIATE`. Derefs to `SqliteConnection`.
pub type WriteTx = Transaction<'static, Sqlite>;

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

/// The database handle. Cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
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
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Apply pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Start a write transaction with `BEGIN IMMEDIATE` (takes SQLite's write lock now). Use it
    /// for every read-then-write sequence. Commit with `tx.commit().await`; dropping it rolls
    /// back.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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

/// Parse an id read back from a TEXT column.
pub(crate) fn parse_id(table: &'static str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt {
        table,
        reason: format!("invalid id {text:?}"),
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A migrated store on a fresh temp-dir SQLite file.

    use super::*;

    /// Keep the `TempDir` alive as long as the store.
    pub(crate) async fn temp_store() -> Result<(Store, tempfile::TempDir)> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Sqlx(sqlx::Error::Io(e)))?;
        let store = Store::open_path(&dir.path().join("test.db")).await?;
        store.migrate().await?;
        Ok((store, dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(sync, 2, "synchronous=FULL");
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
}
