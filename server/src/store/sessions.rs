//! `tower_sessions::SessionStore` over our own SQLite pool (table `sessions`).
//!
//! `tower-sessions-sqlx-store` pins an older sqlx, so this small implementation replaces it.
//! The session map is stored as JSON; it must only ever hold ids and flags (which staff user,
//! which recipient has verified), never a link secret, passphrase or key (invariant 2).
//! Expired rows are invisible to [`SessionStore::load`] and removed by
//! [`SqliteSessionStore::delete_expired`], which `serve` runs periodically.
//!
//! Its writes go through the pool, not [`super::Store::begin_write`], so they are not synced
//! before they return (`synchronous=NORMAL`): a power cut can lose the newest sessions, and
//! their recipients verify again. Nothing that is acknowledged or audited lives here.

use async_trait::async_trait;
use sqlx::SqlitePool;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::clock::{from_ms, now_ms, to_ms};

/// Sessions in the `sessions` table.
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    pool: SqlitePool,
}

impl SqliteSessionStore {
    /// A session store sharing `store`'s pool.
    pub fn new(store: &super::Store) -> Self {
        Self {
            pool: store.pool().clone(),
        }
    }

    /// Delete every expired session; returns how many were removed.
    pub async fn delete_expired_count(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE expiry_date <= ?")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    serde_json::to_vec(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        // Ids are 128 random bits; a collision is astronomically unlikely but handled anyway by
        // drawing a new id rather than overwriting someone else's session.
        for _ in 0..8 {
            let done = sqlx::query(
                "INSERT INTO sessions (id, data, expiry_date) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(&data)
            .bind(to_ms(record.expiry_date))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(
            "could not allocate a unique session id".to_owned(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, data, expiry_date) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(record.id.to_string())
        .bind(encode(record)?)
        .bind(to_ms(record.expiry_date))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT data, expiry_date FROM sessions WHERE id = ? AND expiry_date > ?",
        )
        .bind(session_id.to_string())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some((data, expiry_ms)) = row else {
            return Ok(None);
        };
        let data = serde_json::from_slice(&data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date: OffsetDateTime = from_ms(expiry_ms)
            .ok_or_else(|| session_store::Error::Decode("expiry out of range".to_owned()))?;
        Ok(Some(Record {
            id: *session_id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for SqliteSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.delete_expired_count().await.map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::testing::temp_store;

    fn record(expiry: OffsetDateTime) -> Record {
        let mut data = HashMap::new();
        data.insert("user_id".to_owned(), serde_json::json!("u-1"));
        Record {
            id: Id::default(),
            data,
            expiry_date: expiry,
        }
    }

    #[tokio::test]
    async fn create_load_save_delete() -> Result<(), Box<dyn std::error::Error>> {
        let (store, _dir) = temp_store().await?;
        let sessions = SqliteSessionStore::new(&store);
        let later = OffsetDateTime::now_utc() + time::Duration::minutes(15);
        let mut rec = record(later);
        sessions.create(&mut rec).await?;

        let loaded = sessions.load(&rec.id).await?.ok_or("session missing")?;
        assert_eq!(loaded.data, rec.data);
        assert_eq!(to_ms(loaded.expiry_date), to_ms(rec.expiry_date));

        rec.data
            .insert("verified".to_owned(), serde_json::json!(true));
        sessions.save(&rec).await?;
        let loaded = sessions.load(&rec.id).await?.ok_or("session missing")?;
        assert_eq!(loaded.data.get("verified"), Some(&serde_json::json!(true)));

        sessions.delete(&rec.id).await?;
        assert!(sessions.load(&rec.id).await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn create_never_overwrites_an_existing_id() -> Result<(), Box<dyn std::error::Error>> {
        let (store, _dir) = temp_store().await?;
        let sessions = SqliteSessionStore::new(&store);
        let later = OffsetDateTime::now_utc() + time::Duration::minutes(15);
        let mut first = record(later);
        sessions.create(&mut first).await?;
        let mut second = record(later);
        second.id = first.id;
        second.data.insert("other".to_owned(), serde_json::json!(1));
        sessions.create(&mut second).await?;
        assert_ne!(first.id, second.id);
        let loaded = sessions.load(&first.id).await?.ok_or("session missing")?;
        assert!(!loaded.data.contains_key("other"));
        Ok(())
    }

    #[tokio::test]
    async fn expired_sessions_are_hidden_and_deleted() -> Result<(), Box<dyn std::error::Error>> {
        let (store, _dir) = temp_store().await?;
        let sessions = SqliteSessionStore::new(&store);
        let past = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let future = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let mut old = record(past);
        let mut live = record(future);
        sessions.create(&mut old).await?;
        sessions.create(&mut live).await?;
        assert!(sessions.load(&old.id).await?.is_none());
        assert_eq!(sessions.delete_expired_count().await?, 1);
        assert!(sessions.load(&live.id).await?.is_some());
        Ok(())
    }
}
