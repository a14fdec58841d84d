//! Staff pages: `/login` (password, then the TOTP or recovery code), `/staff` (the signed-in
//! landing page), `/account/password`, `/account/totp` and `/logout` (here or everywhere).
//!
//! Thin, like every handler: forms are parsed here and handed to [`crate::staff`], which
//! decides and audits. The session holds only a [`StaffSession`] (ids, times, a CSRF token).
//! Every staff request re-checks it ([`staff::check_session`]: idle and absolute limits,
//! "signed out everywhere"); a user who must change their password or enrol TOTP is sent
//! there and can reach nothing else.
//!
//! Posts are refused cross-site by [`super::security::csrf`] like every form; those made with
//! a staff session must also carry the session's `csrf` token.

mod views;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use self::views::{
    EnrolPage, HomePage, LoginPage, Notice, PasswordPage, RecoveryPage, SecondFactorPage,
};
use super::page::{Layout, PageForm, render};
use super::{AppError, AppState};
use crate::messages::RequestCtx;
use crate::staff::{self, AfterPassword, Ended, SigninError, Staff, StaffSession};

/// The session key of the staff sign-in.
const KEY: &str = "staff";

/// The staff routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", get(code_page).post(code))
        .route("/staff", get(home))
        .route("/account/password", get(password_page).post(password))
        .route("/account/totp", get(totp_page).post(totp))
        .route("/account/totp/start", post(totp_start))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::internal("session store", e)
}

async fn load(session: &Session) -> Result<Option<StaffSession>, AppError> {
    session
        .get::<StaffSession>(KEY)
        .await
        .map_err(session_error)
}

async fn store(session: &Session, staff: &StaffSession) -> Result<(), AppError> {
    session.insert(KEY, staff).await.map_err(session_error)
}

/// Move a form field into a wiped-on-drop string.
fn take(field: &mut String) -> Zeroizing<String> {
    Zeroizing::new(std::mem::take(field))
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Which page a request is for, for the "must do this first" rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Home,
    Password,
    Totp,
    Logout,
}

/// The signed-in staff user of this request, or the response to give instead (the sign-in
/// page, or the password change / enrolment the user must do first).
async fn signed_in(
    app: &AppState,
    session: &Session,
    ctx: &RequestCtx,
    page: Page,
) -> Result<Result<Staff, Response>, AppError> {
    let Some(current) = load(session).await? else {
        return Ok(Err(see_other("/login")));
    };
    if current.pending_second_factor {
        return Ok(Err(see_other("/login/code")));
    }
    let staff = match staff::check_session(app, &current, ctx).await? {
        Ok(staff) => staff,
        Err(ended) => {
            session.flush().await.map_err(session_error)?;
            let why = match ended {
                Ended::Idle => "idle",
                Ended::Absolute => "expired",
                Ended::Revoked => "signed_out",
            };
            return Ok(Err(see_other(&format!("/login?ended={why}"))));
        }
    };
    store(session, &staff.session).await?;
    if page != Page::Logout {
        if staff.must_change_password && page != Page::Password {
            return Ok(Err(see_other("/account/password")));
        }
        if !staff.must_change_password && staff.must_enrol && page != Page::Totp {
            return Ok(Err(see_other("/account/totp")));
        }
    }
    Ok(Ok(staff))
}

/// Refuse a staff post without the session's token (403).
fn check_csrf(staff: &StaffSession, token: &str) -> Result<(), AppError> {
    let expected = staff.csrf.as_bytes();
    let given = token.as_bytes();
    // Compared in full whatever the first difference, so timing says nothing.
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        tracing::info!("refused a staff post without its CSRF token");
        Err(AppError::Forbidden)
    }
}

fn idle(app: &AppState) -> u32 {
    app.config.session_idle_minutes
}

#[derive(Debug, Deserialize)]
struct EndedQuery {
    ended: Option<String>,
}

/// `GET /login`.
async fn login_page(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<EndedQuery>,
) -> Result<Response, AppError> {
    if load(&session)
        .await?
        .is_some_and(|s| !s.pending_second_factor)
    {
        return Ok(see_other("/staff"));
    }
    let notice = match q.ended.as_deref() {
        Some("idle") => Some(Notice::warn(format!(
            "You were signed out after {} minutes without activity.",
            idle(&app)
        ))),
        Some("expired") => Some(Notice::warn(format!(
            "You were signed out {} hours after signing in. Please sign in again.",
            app.config.staff_session_max_hours
        ))),
        Some("signed_out") => Some(Notice::info("You are signed out.".to_owned())),
        _ => None,
    };
    Ok(login_response(&app, StatusCode::OK, "", notice))
}

fn login_response(
    app: &AppState,
    status: StatusCode,
    email: &str,
    notice: Option<Notice>,
) -> Response {
    render(
        status,
        &LoginPage {
            layout: Layout::new(),
            idle_minutes: idle(app),
            email,
            notice,
        },
    )
}

/// A sign-in refusal as a page: 401 with the one message, or 429 with `Retry-After`.
fn refusal(
    app: &AppState,
    err: SigninError,
    email: &str,
    second: Option<&StaffSession>,
) -> Result<Response, AppError> {
    let (status, wait) = match &err {
        SigninError::Refused => (StatusCode::UNAUTHORIZED, None),
        SigninError::Throttled(wait) => (StatusCode::TOO_MANY_REQUESTS, Some(wait.seconds())),
        SigninError::Store(_) | SigninError::Internal(_) => {
            return Err(AppError::internal("staff sign-in", err));
        }
    };
    let notice = Some(Notice::error(err.to_string()));
    let mut response = match second {
        Some(pending) => render(
            status,
            &SecondFactorPage {
                layout: Layout::new(),
                idle_minutes: idle(app),
                csrf: &pending.csrf,
                notice,
            },
        ),
        None => login_response(app, status, email, notice),
    };
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    Ok(response)
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the password step. The session id is cycled whenever it is accepted.
async fn login(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(mut form): PageForm<LoginForm>,
) -> Result<Response, AppError> {
    let email: String = form.email.chars().take(320).collect();
    match staff::sign_in_password(&app, &email, take(&mut form.password), &ctx).await {
        Ok(next) => {
            session.cycle_id().await.map_err(session_error)?;
            let (staff, to) = match next {
                AfterPassword::SecondFactor(s) => (s, "/login/code"),
                AfterPassword::SignedIn(s) => (s, "/staff"),
            };
            store(&session, &staff).await?;
            Ok(see_other(to))
        }
        Err(e) => refusal(&app, e, &email, None),
    }
}

/// `GET /login/code`.
async fn code_page(State(app): State<AppState>, session: Session) -> Result<Response, AppError> {
    let Some(pending) = load(&session).await?.filter(|s| s.pending_second_factor) else {
        return Ok(see_other("/login"));
    };
    Ok(render(
        StatusCode::OK,
        &SecondFactorPage {
            layout: Layout::new(),
            idle_minutes: idle(&app),
            csrf: &pending.csrf,
            notice: None,
        },
    ))
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// `POST /login/code`: the TOTP or recovery code step.
async fn code(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, AppError> {
    let Some(pending) = load(&session).await?.filter(|s| s.pending_second_factor) else {
        return Ok(see_other("/login"));
    };
    check_csrf(&pending, &form.csrf)?;
    // A pending sign-in is bounded by the idle limit like a session.
    let idle_ms = i64::from(app.config.session_idle_minutes) * 60_000;
    if crate::clock::now_ms() - pending.last_seen > idle_ms {
        session.flush().await.map_err(session_error)?;
        return Ok(see_other("/login?ended=idle"));
    }
    match staff::sign_in_second_factor(&app, &pending, &form.code, &ctx).await {
        Ok(staff) => {
            session.cycle_id().await.map_err(session_error)?;
            store(&session, &staff).await?;
            Ok(see_other("/staff"))
        }
        Err(e) => refusal(&app, e, "", Some(&pending)),
    }
}

/// `GET /staff`: who is signed in, and the account links.
async fn home(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
) -> Result<Response, AppError> {
    let staff = match signed_in(&app, &session, &ctx, Page::Home).await? {
        Ok(staff) => staff,
        Err(response) => return Ok(response),
    };
    Ok(home_response(&app, &staff, None))
}

fn home_response(app: &AppState, staff: &Staff, notice: Option<Notice>) -> Response {
    render(
        StatusCode::OK,
        &HomePage {
            layout: Layout::new(),
            idle_minutes: idle(app),
            max_hours: app.config.staff_session_max_hours,
            email: &staff.user.email,
            role: staff.user.role.as_str(),
            has_totp: staff.has_totp,
            csrf: &staff.session.csrf,
            notice,
        },
    )
}

fn password_response(
    app: &AppState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    render(
        status,
        &PasswordPage {
            layout: Layout::new(),
            idle_minutes: idle(app),
            email: &staff.user.email,
            forced: staff.must_change_password,
            min_len: staff::MIN_PASSWORD_LEN,
            csrf: &staff.session.csrf,
            notice,
        },
    )
}

/// `GET /account/password`.
async fn password_page(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
) -> Result<Response, AppError> {
    match signed_in(&app, &session, &ctx, Page::Password).await? {
        Ok(staff) => Ok(password_response(&app, &staff, StatusCode::OK, None)),
        Err(response) => Ok(response),
    }
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/password`.
async fn password(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(mut form): PageForm<PasswordForm>,
) -> Result<Response, AppError> {
    let mut staff = match signed_in(&app, &session, &ctx, Page::Password).await? {
        Ok(staff) => staff,
        Err(response) => return Ok(response),
    };
    check_csrf(&staff.session, &form.csrf)?;
    match staff::change_password(
        &app,
        &staff,
        take(&mut form.current),
        take(&mut form.new),
        take(&mut form.confirm),
        &ctx,
    )
    .await
    {
        Ok(generation) => {
            staff.session.generation = generation;
            session.cycle_id().await.map_err(session_error)?;
            store(&session, &staff.session).await?;
            Ok(see_other("/staff"))
        }
        Err(staff::PasswordChangeError::Store(e)) => Err(e.into()),
        Err(e @ staff::PasswordChangeError::Internal(_)) => {
            Err(AppError::internal("password change", e))
        }
        Err(e) => Ok(password_response(
            &app,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Notice::error(e.to_string())),
        )),
    }
}

async fn enrol_response(
    app: &AppState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<Response, AppError> {
    let enrolment = staff::enrolment(app, &staff.user, false)
        .await
        .map_err(|e| AppError::internal("TOTP enrolment", e))?;
    if enrolment.done {
        return Ok(home_response(
            app,
            staff,
            Some(Notice::info(
                "Your authenticator app is already set up.".to_owned(),
            )),
        ));
    }
    Ok(render(
        status,
        &EnrolPage {
            layout: Layout::new(),
            idle_minutes: idle(app),
            required: staff.must_enrol,
            not_started: enrolment.not_started,
            qr_svg: &enrolment.qr_svg,
            secret: &enrolment.secret,
            csrf: &staff.session.csrf,
            notice,
        },
    ))
}

/// `POST /account/totp/start`: make the pending secret, then show it (`GET /account/totp`).
async fn totp_start(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, AppError> {
    let staff = match signed_in(&app, &session, &ctx, Page::Totp).await? {
        Ok(staff) => staff,
        Err(response) => return Ok(response),
    };
    check_csrf(&staff.session, &form.csrf)?;
    staff::enrolment(&app, &staff.user, true)
        .await
        .map_err(|e| AppError::internal("TOTP enrolment", e))?;
    Ok(see_other("/account/totp"))
}

/// `GET /account/totp`: the QR code and the key of a pending enrolment, or the offer to
/// start one (a GET writes nothing: invariant 4).
async fn totp_page(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
) -> Result<Response, AppError> {
    match signed_in(&app, &session, &ctx, Page::Totp).await? {
        Ok(staff) => enrol_response(&app, &staff, StatusCode::OK, None).await,
        Err(response) => Ok(response),
    }
}

/// `POST /account/totp`: confirm with a first code; shows the recovery codes once.
async fn totp(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, AppError> {
    let staff = match signed_in(&app, &session, &ctx, Page::Totp).await? {
        Ok(staff) => staff,
        Err(response) => return Ok(response),
    };
    check_csrf(&staff.session, &form.csrf)?;
    match staff::confirm_enrolment(&app, &staff.user, &form.code, &ctx).await {
        Ok(Some(codes)) => Ok(render(
            StatusCode::OK,
            &RecoveryPage {
                layout: Layout::new(),
                idle_minutes: idle(&app),
                codes,
            },
        )),
        Ok(None) => Ok(see_other("/staff")),
        Err(SigninError::Refused) => {
            enrol_response(
                &app,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Notice::error(
                    "That code is not right. Check the time on your phone, and enter the \
                     code the app shows now."
                        .to_owned(),
                )),
            )
            .await
        }
        Err(e) => Err(AppError::internal("TOTP enrolment", e)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    app: AppState,
    session: Session,
    ctx: RequestCtx,
    form: CsrfForm,
    everywhere: bool,
) -> Result<Response, AppError> {
    let staff = match signed_in(&app, &session, &ctx, Page::Logout).await? {
        Ok(staff) => staff,
        Err(response) => return Ok(response),
    };
    check_csrf(&staff.session, &form.csrf)?;
    staff::sign_out(&app, &staff, everywhere, &ctx).await?;
    session.flush().await.map_err(session_error)?;
    Ok(see_other("/login?ended=signed_out"))
}

/// `POST /logout`.
async fn logout(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, AppError> {
    sign_out(app, session, ctx, form, false).await
}

/// `POST /logout/everywhere`: ends every session of the user.
async fn logout_everywhere(
    State(app): State<AppState>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, AppError> {
    sign_out(app, session, ctx, form, true).await
}
