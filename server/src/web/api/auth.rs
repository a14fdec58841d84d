//! Bearer-token authentication for `/api/v1`.
//!
//! `Authorization: Bearer <token>` is looked up by its SHA-256 digest (only digests are
//! stored). A revoked token or a disabled user's token is the same as no token: 401 with
//! `WWW-Authenticate: Bearer`. Each authenticated request writes exactly one `token_used`
//! event (and touches `last_used_at`) in one write transaction; a presented but unknown token
//! writes `token_rejected`. The token itself is never logged or audited.
//!
//! Strangers cannot write the audit log at will with bad tokens: the lookup only reads, each
//! failure spends one unit of the client's `api_auth_failures_per_minute` budget (once it is
//! spent: `429` with `Retry-After`, before any lookup, until the budget refills), and
//! `token_rejected` and `throttled` events go through the refusal log, so one
//! client adds at most `audit_refusals_per_window` of them per window plus one
//! `refusals_counted` (see `crate::throttle`). The path in the event is cut to 256 characters.

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
use crate::throttle::{Disposition, Gate, Refused};
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

/// The longest request path kept in an audit event (the path is the client's).
const MAX_AUDITED_PATH: usize = 256;

/// A presented token was not accepted: spend the client's failure budget, audit within the
/// refusal log's bounds, and say why.
async fn rejected(state: &AppState, ctx: &RequestCtx, parts: &Parts) -> AppError {
    if let Some(Err(wait)) = ctx
        .ip
        .map(|ip| state.throttle.failed(Gate::ApiAuthFailure, ip))
    {
        return throttled(state, ctx, parts, wait).await;
    }
    if state.throttle.refusals.note(Refused::TokenRejected, ctx.ip) == Disposition::Audit {
        let event = ctx
            .event(Action::TokenRejected)
            .with_detail(json!({ "path": audited_path(parts) }));
        if let Err(e) = audit::append(&state.store, event).await {
            return e.into();
        }
    }
    AppError::Unauthorized
}

/// A client whose failure budget is spent: `429`, audited within the refusal log's bounds.
async fn throttled(
    state: &AppState,
    ctx: &RequestCtx,
    parts: &Parts,
    wait: crate::throttle::RetryAfter,
) -> AppError {
    if state.throttle.refusals.note(Refused::Throttled, ctx.ip) == Disposition::Audit {
        let event = ctx
            .event(Action::Throttled)
            .with_detail(json!({ "gate": "api_auth_failure", "path": audited_path(parts) }));
        if let Err(e) = audit::append(&state.store, event).await {
            return e.into();
        }
    }
    AppError::Throttled(wait)
}

fn audited_path(parts: &Parts) -> String {
    parts.uri.path().chars().take(MAX_AUDITED_PATH).collect()
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
        if let Some(wait) = ctx.ip.and_then(|ip| {
            state
                .throttle
                .failures_allowed(Gate::ApiAuthFailure, ip)
                .err()
        }) {
            return Err(throttled(state, &ctx, parts, wait).await);
        }
        let digest = sealpost_crypto::token::digest(token);
        let found = {
            let mut conn = state.store.acquire().await?;
            tokens::find_active(&mut conn, &digest).await?
        };
        let Some((token, user)) = found else {
            return Err(rejected(state, &ctx, parts).await);
        };
        let mut tx = state.store.begin_write().await?;
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
