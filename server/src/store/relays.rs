//! SMTP relay credentials (the MTAs that relay mail to Sealpost as a smarthost).
//!
//! Names compare case-insensitively (`COLLATE NOCASE`). Only an Argon2id PHC hash made by
//! `sealpost_crypto::password::hash` is stored; [`Relay`]'s `Debug` omits it. Whether a
//! relay may submit is decided by `smtp::policy`, not here.

use std::fmt;

use uuid::Uuid;

use super::{Result, SqliteConnection, new_id};
use crate::clock::{UnixMillis, now_ms};

/// A relay credential row.
#[derive(Clone, sqlx::FromRow)]
pub struct Relay {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
    pub disabled: bool,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Insert a relay. Fails with a unique violation
/// ([`super::StoreError::is_unique_violation`]) when the name is taken.
pub async fn insert(conn: &mut SqliteConnection, name: &str, password_hash: &str) -> Result<Relay> {
    let relay = Relay {
        id: new_id(),
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
        created_at: now_ms(),
        last_used_at: None,
        disabled: false,
    };
    sqlx::query(
        "INSERT INTO relays (id, name, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, 0)",
    )
    .bind(relay.id.to_string())
    .bind(&relay.name)
    .bind(&relay.password_hash)
    .bind(relay.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(relay)
}

/// The relay called `name` (case-insensitive), disabled or not.
pub async fn find_by_name(conn: &mut SqliteConnection, name: &str) -> Result<Option<Relay>> {
    let row: Option<Relay> = sqlx::query_as("SELECT * FROM relays WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row)
}

/// Every relay, by name.
pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<Relay>> {
    let rows: Vec<Relay> = sqlx::query_as("SELECT * FROM relays ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows)
}

/// Delete the relay called `name`; returns it, or `None` if there was none.
pub async fn remove(conn: &mut SqliteConnection, name: &str) -> Result<Option<Relay>> {
    let Some(relay) = find_by_name(conn, name).await? else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM relays WHERE id = ?")
        .bind(relay.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(Some(relay))
}

/// Record a successful login.
pub async fn touch(conn: &mut SqliteConnection, id: Uuid, at: UnixMillis) -> Result<()> {
    sqlx::query("UPDATE relays SET last_used_at = ? WHERE id = ?")
        .bind(at)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn insert_find_list_remove() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        let relay = insert(&mut conn, "postfix-1", "$argon2id$x").await?;
        assert!(format!("{relay:?}").contains("[redacted]"));
        assert!(!format!("{relay:?}").contains("argon2"));
        let dup = insert(&mut conn, "POSTFIX-1", "h").await;
        assert!(matches!(dup, Err(e) if e.is_unique_violation()));
        let found = find_by_name(&mut conn, "Postfix-1").await?;
        assert_eq!(found.map(|r| r.id), Some(relay.id));
        touch(&mut conn, relay.id, 42).await?;
        let all = list(&mut conn).await?;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].last_used_at, Some(42));
        assert!(remove(&mut conn, "postfix-1").await?.is_some());
        assert!(remove(&mut conn, "postfix-1").await?.is_none());
        assert!(find_by_name(&mut conn, "postfix-1").await?.is_none());
        Ok(())
    }
}
