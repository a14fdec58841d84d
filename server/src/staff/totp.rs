//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew) through
//! `totp-rs`, the enrolment QR code as inline SVG (`qrcode`), and recovery codes.

use serde_json::json;
use totp_rs::{Builder, Secret};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::SigninError;
use crate::app::AppState;
use crate::audit::{self, Action, actor};
use crate::clock::now_ms;
use crate::messages::RequestCtx;
use crate::store::staff_auth;
use crate::store::users::User;

/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// Name shown in authenticator apps.
const ISSUER: &str = "Sealpost";

/// What the enrolment page shows.
#[derive(Debug)]
pub struct Enrolment {
    /// The secret in base32, for typing into an app by hand.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/…` URI the QR code holds.
    pub uri: Zeroizing<String>,
    /// The QR code as an `<svg>` element.
    pub qr_svg: String,
    /// Already enrolled: nothing to show.
    pub done: bool,
    /// No enrolment is pending, and none was started (`start` was false): nothing to show
    /// but the offer to start one.
    pub not_started: bool,
}

fn totp_of(secret: &[u8]) -> Result<totp_rs::Totp, SigninError> {
    Builder::new()
        .with_secret(secret)
        .build()
        .map_err(|_| SigninError::Internal("stored TOTP secret is not usable"))
}

fn open(app: &AppState, user_id: Uuid, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SigninError> {
    sealpost_crypto::totp_secret::open(&app.server_key, user_id.as_bytes(), sealed)
        .map_err(|_| SigninError::Internal("stored TOTP secret does not open"))
}

/// Six ASCII digits, perhaps with a space in the middle.
pub(super) fn looks_like_totp(code: &str) -> bool {
    let digits: String = code.chars().filter(|c| *c != ' ').collect();
    digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The time step `code` is valid for now (one step of skew either way), if any.
pub(super) fn check(
    app: &AppState,
    user_id: Uuid,
    sealed: &[u8],
    code: &str,
) -> Result<Option<i64>, SigninError> {
    let secret = open(app, user_id, sealed)?;
    let totp = totp_of(&secret)?;
    let digits: String = code.chars().filter(|c| *c != ' ').collect();
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    Ok(totp
        .check(&digits, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// The stored form of a recovery code: SHA-256 of its normalised text (lower case, no
/// separators). The codes carry 80 random bits, so no slow hash is needed.
pub(super) fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    sealpost_crypto::hash::sha256(normal.as_bytes())
}

/// A new recovery code: 10 random bytes in hex, in four groups of five.
fn new_recovery_code() -> String {
    let hex = hex::encode(sealpost_crypto::random_bytes::<10>());
    let groups: Vec<&str> = (0..4).filter_map(|i| hex.get(i * 5..i * 5 + 5)).collect();
    groups.join("-")
}

fn qr_svg(uri: &str) -> Result<String, SigninError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| SigninError::Internal("cannot make the QR code"))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML: the element only, without the XML declaration.
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

pub(super) async fn enrolment(
    app: &AppState,
    user: &User,
    start: bool,
) -> Result<Enrolment, SigninError> {
    let nothing = |done: bool| Enrolment {
        secret: Zeroizing::new(String::new()),
        uri: Zeroizing::new(String::new()),
        qr_svg: String::new(),
        done,
        not_started: !done,
    };
    let row = {
        let mut conn = app.store.acquire().await?;
        staff_auth::totp(&mut conn, user.id).await?
    };
    let secret = match row {
        Some(row) if row.confirmed_at.is_some() => return Ok(nothing(true)),
        Some(row) => open(app, user.id, &row.sealed_secret)?,
        None if !start => return Ok(nothing(false)),
        None => {
            let secret = Zeroizing::new(sealpost_crypto::random_bytes::<20>().to_vec());
            let sealed =
                sealpost_crypto::totp_secret::seal(&app.server_key, user.id.as_bytes(), &secret);
            let mut tx = app.store.begin_write().await?;
            let put = staff_auth::put_pending_totp(&mut tx, user.id, &sealed, now_ms()).await?;
            tx.commit().await?;
            if !put {
                // Confirmed by another request meanwhile.
                return Ok(nothing(true));
            }
            secret
        }
    };
    let text = Zeroizing::new(Secret::from(secret.as_slice()).to_base32());
    let label = percent_encoding::utf8_percent_encode(
        &format!("{ISSUER}:{}", user.email),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    let uri = Zeroizing::new(format!(
        "otpauth://totp/{label}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30",
        text.as_str()
    ));
    Ok(Enrolment {
        qr_svg: qr_svg(&uri)?,
        secret: text,
        uri,
        done: false,
        not_started: false,
    })
}

pub(super) async fn confirm(
    app: &AppState,
    user: &User,
    code: &str,
    ctx: &RequestCtx,
) -> Result<Option<Vec<String>>, SigninError> {
    let row = {
        let mut conn = app.store.acquire().await?;
        staff_auth::totp(&mut conn, user.id).await?
    };
    let Some(row) = row.filter(|r| r.confirmed_at.is_none()) else {
        return Ok(None);
    };
    if !looks_like_totp(code.trim()) {
        return Err(SigninError::Refused);
    }
    let Some(step) = check(app, user.id, &row.sealed_secret, code.trim())? else {
        return Err(SigninError::Refused);
    };
    let codes: Vec<String> = (0..super::RECOVERY_CODES)
        .map(|_| new_recovery_code())
        .collect();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery_hash(c)).collect();
    let mut tx = app.store.begin_write().await?;
    if !staff_auth::accept_step(&mut tx, user.id, step, now_ms()).await? {
        return Err(SigninError::Refused);
    }
    staff_auth::replace_recovery_codes(&mut tx, user.id, &hashes).await?;
    audit::record(
        &mut tx,
        ctx.event_as(actor::user(user.id), Action::PasswordChanged)
            .with_detail(json!({
                "user_id": user.id,
                "credential": "totp",
                "change": "enrolled",
                "recovery_codes": super::RECOVERY_CODES,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_normalise_and_differ() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 23);
        assert_eq!(recovery_hash(&code), recovery_hash(&code.to_uppercase()));
        assert_eq!(recovery_hash(&code), recovery_hash(&code.replace('-', " ")));
        assert_ne!(code, new_recovery_code());
        assert!(looks_like_totp("123 456"));
        assert!(!looks_like_totp(&code));
    }
}
