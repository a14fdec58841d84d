//! API bearer tokens. Only the SHA-256 of a token is stored (`sealpost_crypto::token::digest`);
//! the token itself is shown once at creation and never kept.

use uuid::Uuid;

use super::users::User;
use super::{Result, SqliteConnection, new_id};
use crate::clock::{UnixMillis, now_ms};

/// A token row (without its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiToken {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub user_id: Uuid,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

/// A token and its user in one row: the token's columns renamed where the user has one of
/// the same name.
#[derive(sqlx::FromRow)]
struct ActiveToken {
    #[sqlx(rename = "token_id", try_from = "String")]
    id: Uuid,
    #[sqlx(rename = "token_created_at")]
    created_at: UnixMillis,
    last_used_at: Option<UnixMillis>,
    revoked_at: Option<UnixMillis>,
    #[sqlx(flatten)]
    user: User,
}

/// Store a new token for `user_id` under its digest.
pub async fn insert(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    token_hash: &[u8; 32],
) -> Result<ApiToken> {
    let token = ApiToken {
        id: new_id(),
        user_id,
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query("INSERT INTO api_tokens (id, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)")
        .bind(token.id.to_string())
        .bind(user_id.to_string())
        .bind(token_hash.as_slice())
        .bind(token.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(token)
}

/// Look up an unrevoked token by digest, together with its user, and only if that user is
/// not disabled. This is the whole authentication query for the API.
pub async fn find_active(
    conn: &mut SqliteConnection,
    token_hash: &[u8; 32],
) -> Result<Option<(ApiToken, User)>> {
    let row: Option<ActiveToken> = sqlx::query_as(
        "SELECT t.id AS token_id, t.created_at AS token_created_at, t.last_used_at, \
                t.revoked_at, u.id, u.email, u.role, u.password_hash, u.disabled, u.created_at \
         FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| {
        let token = ApiToken {
            id: row.id,
            user_id: row.user.id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        };
        (token, row.user)
    }))
}

/// Record that a token was used now.
pub async fn touch(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Revoke a token. Returns whether an unrevoked token was revoked.
pub async fn revoke(conn: &mut SqliteConnection, id: Uuid) -> Result<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// A user's tokens, newest first.
pub async fn list_for_user(conn: &mut SqliteConnection, user_id: Uuid) -> Result<Vec<ApiToken>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, created_at, last_used_at, revoked_at FROM api_tokens \
         WHERE user_id = ? ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id.to_string())
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::users::{self, Role};

    #[tokio::test]
    async fn lifecycle() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        let user = users::insert(&mut conn, "s@example.org", Role::Sender, "h").await?;
        let hash = [7u8; 32];
        let token = insert(&mut conn, user.id, &hash).await?;

        let found = find_active(&mut conn, &hash).await?;
        assert_eq!(
            found.as_ref().map(|(t, u)| (t.id, u.id)),
            Some((token.id, user.id))
        );
        assert!(find_active(&mut conn, &[8u8; 32]).await?.is_none());

        touch(&mut conn, token.id).await?;
        let listed = list_for_user(&mut conn, user.id).await?;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());

        // a disabled user's token no longer authenticates
        users::set_disabled(&mut conn, "s@example.org", true).await?;
        assert!(find_active(&mut conn, &hash).await?.is_none());
        users::set_disabled(&mut conn, "s@example.org", false).await?;
        assert!(find_active(&mut conn, &hash).await?.is_some());

        assert!(revoke(&mut conn, token.id).await?);
        assert!(!revoke(&mut conn, token.id).await?);
        assert!(find_active(&mut conn, &hash).await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn token_for_missing_user_is_a_constraint_violation() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        match insert(&mut conn, new_id(), &[1u8; 32]).await {
            Err(e) => assert!(e.is_constraint_violation(), "{e:?}"),
            Ok(_) => panic!("orphan token accepted"),
        }
        Ok(())
    }
}
