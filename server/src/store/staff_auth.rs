//! The staff sign-in tables: the per-user flags on `users` (`must_change_password`,
//! `session_generation`), `staff_totp`, `staff_recovery_codes` and `staff_signin_failures`.
//!
//! Rows only: what a failure count allows, whether a code is right and when a lock lifts is
//! decided by `crate::staff`. A TOTP secret arrives here already sealed.

use uuid::Uuid;

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;

/// The sign-in state of one user beyond the `users` row of [`super::users`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Flags {
    pub must_change_password: bool,
    pub session_generation: i64,
}

/// The flags of user `id` (`None` if there is no such user).
pub async fn flags(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Flags>> {
    Ok(
        sqlx::query_as("SELECT must_change_password, session_generation FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Set or clear `must_change_password`.
pub async fn set_must_change_password(
    conn: &mut SqliteConnection,
    id: Uuid,
    value: bool,
) -> Result<()> {
    sqlx::query("UPDATE users SET must_change_password = ? WHERE id = ?")
        .bind(value)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Bump the session generation (every existing session of the user ends); returns the new one.
pub async fn bump_generation(conn: &mut SqliteConnection, id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE users SET session_generation = session_generation + 1 WHERE id = ? \
         RETURNING session_generation",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// A user's TOTP row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Totp {
    pub sealed_secret: Vec<u8>,
    pub created_at: UnixMillis,
    pub confirmed_at: Option<UnixMillis>,
    pub last_step: i64,
}

/// The TOTP row of user `id`, confirmed or not.
pub async fn totp(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Totp>> {
    Ok(sqlx::query_as(
        "SELECT sealed_secret, created_at, confirmed_at, last_step FROM staff_totp \
         WHERE user_id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?)
}

/// Start (or restart) an enrolment: an unconfirmed secret. A confirmed one is never replaced
/// here; returns whether the row was written.
pub async fn put_pending_totp(
    conn: &mut SqliteConnection,
    id: Uuid,
    sealed_secret: &[u8],
    now: UnixMillis,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO staff_totp (user_id, sealed_secret, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
         created_at = excluded.created_at WHERE staff_totp.confirmed_at IS NULL",
    )
    .bind(id.to_string())
    .bind(sealed_secret)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Accept time step `step` for user `id` (and confirm a pending enrolment), but only if it is
/// newer than every step accepted before: returns `false` for a replayed step.
pub async fn accept_step(
    conn: &mut SqliteConnection,
    id: Uuid,
    step: i64,
    now: UnixMillis,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_totp SET last_step = ?, confirmed_at = COALESCE(confirmed_at, ?) \
         WHERE user_id = ? AND last_step < ?",
    )
    .bind(step)
    .bind(now)
    .bind(id.to_string())
    .bind(step)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replace the user's recovery codes by these hashes.
pub async fn replace_recovery_codes(
    conn: &mut SqliteConnection,
    id: Uuid,
    hashes: &[[u8; 32]],
) -> Result<()> {
    sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = ?")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    for hash in hashes {
        sqlx::query("INSERT INTO staff_recovery_codes (user_id, code_hash) VALUES (?, ?)")
            .bind(id.to_string())
            .bind(hash.as_slice())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Use the unused recovery code with this hash: returns whether there was one.
pub async fn use_recovery_code(
    conn: &mut SqliteConnection,
    id: Uuid,
    hash: &[u8; 32],
    now: UnixMillis,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_recovery_codes SET used_at = ? \
         WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(hash.as_slice())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unused recovery codes of a user.
pub async fn recovery_codes_left(conn: &mut SqliteConnection, id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM staff_recovery_codes WHERE user_id = ? AND used_at IS NULL",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// Failed sign-ins of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Failures {
    pub failures: i64,
    pub last_failed_at: UnixMillis,
    pub locked_until: Option<UnixMillis>,
}

/// The failed sign-ins of user `id`, if any are stored.
pub async fn failures(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Failures>> {
    Ok(sqlx::query_as(
        "SELECT failures, last_failed_at, locked_until FROM staff_signin_failures \
         WHERE user_id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?)
}

/// Store `row` as the failed sign-ins of user `id`.
pub async fn set_failures(conn: &mut SqliteConnection, id: Uuid, row: Failures) -> Result<()> {
    sqlx::query(
        "INSERT INTO staff_signin_failures (user_id, failures, last_failed_at, locked_until) \
         VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET failures = excluded.failures, \
         last_failed_at = excluded.last_failed_at, locked_until = excluded.locked_until",
    )
    .bind(id.to_string())
    .bind(row.failures)
    .bind(row.last_failed_at)
    .bind(row.locked_until)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forget the failed sign-ins of user `id` (after a successful one).
pub async fn clear_failures(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM staff_signin_failures WHERE user_id = ?")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::users::{self, Role};

    #[tokio::test]
    async fn steps_are_accepted_once_and_codes_used_once() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        let user = users::insert(&mut conn, "a@example.org", Role::Admin, "$argon2id$x").await?;
        assert!(put_pending_totp(&mut conn, user.id, b"sealed", 1).await?);
        assert!(accept_step(&mut conn, user.id, 100, 2).await?);
        assert!(!accept_step(&mut conn, user.id, 100, 3).await?, "replay");
        assert!(!accept_step(&mut conn, user.id, 99, 3).await?, "older step");
        assert!(accept_step(&mut conn, user.id, 101, 4).await?);
        assert_eq!(
            totp(&mut conn, user.id).await?.and_then(|t| t.confirmed_at),
            Some(2)
        );
        // A confirmed secret is not replaced by a new enrolment.
        assert!(!put_pending_totp(&mut conn, user.id, b"other", 5).await?);

        replace_recovery_codes(&mut conn, user.id, &[[1; 32], [2; 32]]).await?;
        assert!(use_recovery_code(&mut conn, user.id, &[1; 32], 6).await?);
        assert!(!use_recovery_code(&mut conn, user.id, &[1; 32], 7).await?);
        assert_eq!(recovery_codes_left(&mut conn, user.id).await?, 1);

        let before = flags(&mut conn, user.id)
            .await?
            .map(|f| f.session_generation);
        assert_eq!(
            bump_generation(&mut conn, user.id).await?,
            before.unwrap_or(0) + 1
        );
        Ok(())
    }
}
