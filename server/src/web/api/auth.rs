//! Bearer-token authentication for `/api/v1`.
//!
//! `Authorization: Bearer <token>` is looked up by its SHA-256 digest (only digests are
//! stored). A revoked token or a disabled user's token is the same as no token: 401 with
//! `WWW-Authenticate: Bearer`. Each authenticated request writes exactly one `token_used`
//! event (and touches `last_used_at`) in one write transaction; a presented but unknown token
//! writes `token_rejected`. The token itself is never logged or audited.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{self, Action};
use crate::messages::{RequestCtx, Sender};
use crate::store::tokens;
use crate::store::users::User;
use crate::web::AppError;

/// The authenticated caller of an API request, with the audit context naming them.
#[derive(Debug)]
pub struct ApiUser {
    pub user: User,
    pub token_id: Uuid,
    /// Client IP and user agent, actor `token:<email>`.
    pub ctx: RequestCtx,
}

impl ApiUser {
    /// The caller as the sender of a submission.
    pub fn sender(&self) -> Sender {
        Sender {
            user_id: Some(self.user.id),
            address: self.user.email.clone(),
            display_name: None,
        }
    }
}

/// The token in an `Authorization: Bearer …` header, if there is one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(mut ctx) = RequestCtx::from_request_parts(parts, state).await;
        let Some(token) = bearer(parts) else {
            return Err(AppError::Unauthorized);
        };
        let digest = sealpost_crypto::token::digest(token);
        let mut tx = state.store.begin_write().await?;
        let Some((token, user)) = tokens::find_active(&mut tx, &digest).await? else {
            let event = ctx
                .event(Action::TokenRejected)
                .with_detail(json!({ "path": parts.uri.path() }));
            audit::record(&mut tx, event).await?;
            tx.commit().await?;
            return Err(AppError::Unauthorized);
        };
        ctx.actor = format!("token:{}", user.email);
        tokens::touch(&mut tx, token.id).await?;
        let event = ctx.event(Action::TokenUsed).with_detail(json!({
            "token_id": token.id,
            "user_id": user.id,
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
        }));
        audit::record(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Self {
            user,
            token_id: token.id,
            ctx,
        })
    }
}
