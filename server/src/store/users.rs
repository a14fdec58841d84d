//! Staff accounts: senders, admins and auditors.
//!
//! Emails compare case-insensitively (the column is `COLLATE NOCASE`). Password hashes are
//! Argon2id PHC strings made by `sealpost_crypto::password::hash`; this module only stores
//! them and never logs them ([`User`]'s `Debug` omits the hash).

use std::fmt;

use uuid::Uuid;

use super::{Result, SqliteConnection, new_id};
use crate::clock::{UnixMillis, now_ms};

/// What a staff account may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    parse_err_ty = UnknownRole,
    parse_err_fn = UnknownRole::new
)]
pub enum Role {
    /// Sends messages and sees their own messages' status.
    Sender,
    /// Manages users, tokens and settings.
    Admin,
    /// Reads and exports the audit log.
    Auditor,
}

impl Role {
    /// The stored (and CLI) spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An unknown role name.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected sender, admin or auditor)")]
pub struct UnknownRole(pub String);

impl UnknownRole {
    fn new(s: &str) -> Self {
        Self(s.chars().take(64).collect())
    }
}

/// How a stored `role` column is read ([`User`]'s `FromRow`).
impl TryFrom<String> for Role {
    type Error = UnknownRole;

    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        s.parse()
    }
}

/// A staff account row.
#[derive(Clone, sqlx::FromRow)]
pub struct User {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: UnixMillis,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Insert a new user. Fails with a unique violation
/// ([`StoreError::is_unique_violation`]) when the email is taken.
pub async fn insert(
    conn: &mut SqliteConnection,
    email: &str,
    role: Role,
    password_hash: &str,
) -> Result<User> {
    let user = User {
        id: new_id(),
        email: email.to_owned(),
        role,
        password_hash: password_hash.to_owned(),
        disabled: false,
        created_at: now_ms(),
    };
    sqlx::query(
        "INSERT INTO users (id, email, role, password_hash, disabled, created_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(user.id.to_string())
    .bind(&user.email)
    .bind(role.as_str())
    .bind(&user.password_hash)
    .bind(user.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(user)
}

/// Find a user by email (case-insensitive).
pub async fn find_by_email(conn: &mut SqliteConnection, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, role, password_hash, disabled, created_at FROM users WHERE email = ?",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Find a user by id.
pub async fn find_by_id(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, role, password_hash, disabled, created_at FROM users WHERE id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?)
}

/// All users, oldest first.
pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, role, password_hash, disabled, created_at FROM users \
         ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Number of users (first-run detection).
pub async fn count(conn: &mut SqliteConnection) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n)
}

/// Enable or disable a user by email. Returns the updated user, or `None` if no such email.
pub async fn set_disabled(
    conn: &mut SqliteConnection,
    email: &str,
    disabled: bool,
) -> Result<Option<User>> {
    let done = sqlx::query("UPDATE users SET disabled = ? WHERE email = ?")
        .bind(disabled)
        .bind(email)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    find_by_email(conn, email).await
}

/// Replace a user's password hash. Returns whether the user exists.
pub async fn set_password_hash(
    conn: &mut SqliteConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<bool> {
    let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn insert_find_list_disable() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        assert_eq!(count(&mut conn).await?, 0);
        let a = insert(&mut conn, "Alice@Example.org", Role::Admin, "$argon2id$x").await?;
        insert(&mut conn, "bob@example.org", Role::Sender, "$argon2id$y").await?;

        let found = find_by_email(&mut conn, "alice@example.ORG").await?;
        assert_eq!(found.as_ref().map(|u| u.id), Some(a.id));
        assert_eq!(found.as_ref().map(|u| u.role), Some(Role::Admin));
        assert!(
            find_by_email(&mut conn, "nobody@example.org")
                .await?
                .is_none()
        );
        assert_eq!(
            find_by_id(&mut conn, a.id).await?.map(|u| u.email),
            Some(a.email.clone())
        );

        let all = list(&mut conn).await?;
        assert_eq!(all.len(), 2);
        assert_eq!(count(&mut conn).await?, 2);

        let disabled = set_disabled(&mut conn, "BOB@example.org", true).await?;
        assert_eq!(disabled.map(|u| u.disabled), Some(true));
        assert!(
            set_disabled(&mut conn, "ghost@example.org", true)
                .await?
                .is_none()
        );

        assert!(set_password_hash(&mut conn, a.id, "$argon2id$z").await?);
        assert!(!format!("{a:?}").contains("argon2id"));
        Ok(())
    }

    #[tokio::test]
    async fn duplicate_email_is_a_unique_violation() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        insert(&mut conn, "a@example.org", Role::Sender, "h").await?;
        match insert(&mut conn, "A@EXAMPLE.org", Role::Sender, "h").await {
            Err(e) => assert!(e.is_unique_violation(), "{e:?}"),
            Ok(_) => panic!("duplicate email accepted"),
        }
        Ok(())
    }
}
