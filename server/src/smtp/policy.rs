//! Relay policy: who may hand mail to Sealpost over SMTP (no open relay, ever).
//!
//! A client may submit after SMTP AUTH with relay credentials, or when its IP is in
//! `smtp_allowed_networks`. TLS comes first for both AUTH and MAIL; `smtp_allow_loopback_plaintext`
//! relaxes that for loopback clients and for no one else. `smtp_allowed_sender_domains`
//! restricts envelope senders. Every refusal is audited with the client's IP
//! ([`Action::SmtpRefused`], [`Action::RelayAuthFailed`]), through the refusal log of
//! `crate::throttle`: per client, a few per window one by one, the rest counted.
//!
//! Failed AUTH spends the client's and the relay name's `smtp_auth_failures_per_minute`
//! budgets; once either is spent, AUTH is refused with `421 4.7.0` before any password is
//! checked. Password checks wait on their own semaphore (`AppState::password_limit`), not the
//! one recipients' passphrases use.

use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::json;
use zeroize::Zeroizing;

use super::session::{Identity, State};
use crate::app::AppState;
use crate::audit::{self, Action, Event};
use crate::clock::now_ms;
use crate::config::Config;
use crate::messages::EmailAddress;
use crate::store::relays;
use crate::throttle::{Disposition, Refused, RetryAfter};

/// Whether this session may AUTH and MAIL as far as TLS is concerned.
pub fn tls_satisfied(config: &Config, st: &State) -> bool {
    st.tls || (config.smtp_allow_loopback_plaintext && st.peer.to_canonical().is_loopback())
}

/// Whether `ip` is in one of the allowed client networks.
pub fn allowed_network(config: &Config, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    config
        .smtp_allowed_networks
        .iter()
        .any(|net| net.contains(&ip))
}

/// Whether the envelope sender's domain may relay (an empty list allows every domain).
pub fn sender_domain_allowed(config: &Config, from: &EmailAddress) -> bool {
    if config.smtp_allowed_sender_domains.is_empty() {
        return true;
    }
    let domain = from
        .as_str()
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default();
    config
        .smtp_allowed_sender_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

/// How an AUTH attempt ended.
#[derive(Debug)]
pub enum AuthResult {
    Ok(Identity),
    Failed,
    /// Too many failures from this client or for this relay name: close the session.
    Throttled(RetryAfter),
    /// The credential store could not be read: a temporary failure.
    Unavailable,
}

/// Check relay credentials (Argon2id, off the async runtime and bounded by the app's KDF
/// semaphore). Unknown and disabled relays cost the same as a wrong password. Audits the
/// outcome with the client's IP and the name tried (never the password).
pub async fn authenticate(
    app: &AppState,
    st: &State,
    name: &str,
    password: Zeroizing<String>,
) -> AuthResult {
    let name: String = name.chars().take(100).collect();
    let ip = st.peer.to_canonical();
    if let Err(wait) = app.throttle.smtp_auth_allowed(ip, &name) {
        refused_auth(app, st, &name, "throttled").await;
        return AuthResult::Throttled(wait);
    }
    let relay = match app.store.acquire().await {
        Ok(mut conn) => relays::find_by_name(&mut conn, &name).await,
        Err(e) => Err(e),
    };
    let relay = match relay {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read relay credentials");
            return AuthResult::Unavailable;
        }
    };
    let hash = match &relay {
        Some(r) => r.password_hash.clone(),
        None => match dummy_hash().await {
            Some(h) => h,
            None => return AuthResult::Unavailable,
        },
    };
    let verified = {
        let Ok(_permit) = app.password_limit.acquire().await else {
            return AuthResult::Unavailable;
        };
        tokio::task::spawn_blocking(move || sealpost_crypto::password::verify(&password, &hash))
            .await
            .unwrap_or(false)
    };
    let ctx = st.request_ctx();
    match relay {
        Some(relay) if verified && !relay.disabled => {
            let event = ctx
                .event_as(format!("relay:{}", relay.name), Action::RelayAuthenticated)
                .with_detail(json!({ "relay_id": relay.id, "relay": relay.name }));
            let result = async {
                let mut tx = app.store.begin_write().await?;
                relays::touch(&mut tx, relay.id, now_ms()).await?;
                audit::record(&mut tx, event).await?;
                tx.commit().await?;
                Ok::<_, crate::store::StoreError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot record a relay login");
                return AuthResult::Unavailable;
            }
            AuthResult::Ok(Identity {
                relay_id: relay.id,
                name: relay.name,
            })
        }
        other => {
            let reason = match other {
                None => "unknown relay",
                Some(r) if r.disabled => "relay disabled",
                Some(_) => "wrong password",
            };
            refused_auth(app, st, &name, reason).await;
            match app.throttle.smtp_auth_failed(ip, &name) {
                Ok(()) => AuthResult::Failed,
                Err(wait) => AuthResult::Throttled(wait),
            }
        }
    }
}

/// Audit a failed or refused AUTH (`relay_auth_failed`) within the refusal log's bounds.
async fn refused_auth(app: &AppState, st: &State, name: &str, reason: &str) {
    if app
        .throttle
        .refusals
        .note(Refused::RelayAuthFailed, Some(st.peer))
        == Disposition::Counted
    {
        return;
    }
    let event = st
        .request_ctx()
        .event_as("anonymous".to_owned(), Action::RelayAuthFailed)
        .with_detail(json!({ "relay": name, "reason": reason }));
    if let Err(e) = audit::append(&app.store, event).await {
        tracing::error!(error = %e, "cannot audit a failed relay login");
    }
}

/// A hash to verify against when the relay does not exist, so that an unknown name takes as
/// long as a wrong password.
async fn dummy_hash() -> Option<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Some(h.clone());
    }
    let hash = tokio::task::spawn_blocking(|| {
        sealpost_crypto::password::hash("sealpost-no-such-relay").ok()
    })
    .await
    .ok()
    .flatten()?;
    Some(DUMMY.get_or_init(|| hash).clone())
}

/// Audit a policy refusal (`smtp_refused`) with the client's IP. Never fails the session: an
/// audit error is logged.
pub async fn refuse(app: &AppState, st: &State, reason: &str, detail: Option<serde_json::Value>) {
    let mut fields = json!({ "reason": reason, "tls": st.tls });
    if let (Some(serde_json::Value::Object(extra)), Some(map)) = (detail, fields.as_object_mut()) {
        map.extend(extra);
    }
    if let (Some(id), Some(map)) = (&st.auth, fields.as_object_mut()) {
        map.insert("relay".into(), json!(id.name));
    }
    if app
        .throttle
        .refusals
        .note(Refused::SmtpRefused, Some(st.peer))
        == Disposition::Counted
    {
        return;
    }
    let event = st
        .request_ctx()
        .event_as("anonymous".to_owned(), Action::SmtpRefused)
        .with_detail(fields);
    if let Err(e) = audit::append(&app.store, event).await {
        tracing::error!(error = %e, reason, "cannot audit an SMTP refusal");
    }
}

/// Audit a refusal before any session state exists (connection limits).
pub async fn refuse_connection(app: &AppState, ip: IpAddr, reason: &str) {
    if app.throttle.refusals.note(Refused::SmtpRefused, Some(ip)) == Disposition::Counted {
        return;
    }
    let event = Event::new("anonymous", Action::SmtpRefused)
        .with_ip(ip.to_canonical())
        .with_detail(json!({ "reason": reason }));
    if let Err(e) = audit::append(&app.store, event).await {
        tracing::error!(error = %e, reason, "cannot audit an SMTP refusal");
    }
}
