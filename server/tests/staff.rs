//! Staff sign-in over HTTP against the real server: the first admin's printed password, the
//! forced password change, TOTP enrolment, the second step with TOTP and recovery codes,
//! refusals (each audited), the per-account lock across a restart, idle and absolute logoff
//! and "sign out everywhere". Times are moved in the database; nothing sleeps.

mod common;

use common::{App, AppBuilder, Db, Reply, spawn_app, text};

/// One browser: its cookie jar holds the session cookie.
struct Browser<'a> {
    app: &'a App,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a App) -> Self {
        Self { app, cookie: None }
    }

    fn keep(&mut self, reply: Reply) -> Reply {
        if let Some(cookie) = reply.session_cookie() {
            self.cookie = Some(cookie);
        }
        reply
    }

    fn get(&mut self, path: &str) -> Reply {
        let reply = match &self.cookie {
            Some(c) => self.app.get_with(path, &[("Cookie", c.as_str())]),
            None => self.app.get(path),
        };
        self.keep(reply)
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let reply = self.app.post_form(path, fields, self.cookie.as_deref());
        self.keep(reply)
    }

    /// The session id (the cookie's value), as the `sessions` table keys it.
    fn session_id(&self) -> String {
        let cookie = self.cookie.as_deref().expect("a session cookie");
        cookie
            .split_once('=')
            .map(|(_, v)| v)
            .unwrap_or(cookie)
            .to_owned()
    }

    /// Sign in with a password only (no second step expected).
    fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        self.post("/login", &[("email", email), ("password", password)])
    }

    /// Post a signed-in form: the page's CSRF token is read from `page` first.
    fn post_with_csrf(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
        let form = self.get(page);
        assert_eq!(form.status, 200, "{page}: {}", form.page_text());
        let token = csrf(&form);
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all)
    }
}

fn location(reply: &Reply) -> &str {
    reply.header("location").unwrap_or("")
}

/// The value of the hidden `csrf` field of a page.
fn csrf(page: &Reply) -> String {
    between(&page.text(), "name=\"csrf\" value=\"", "\"")
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).map(|i| i + start.len()).expect(start);
    let rest = &text[from..];
    rest[..rest.find(end).expect(end)].to_owned()
}

/// The first admin's one-time password, as `serve` printed it.
fn first_admin_password(app: &App) -> String {
    let log = app.log();
    let mut lines = log.lines();
    lines
        .by_ref()
        .find(|l| l.contains("created first admin admin@localhost"))
        .expect("first admin announced");
    lines.next().expect("password line").trim().to_owned()
}

/// The TOTP code of `secret` (base32) for time `at` (Unix seconds).
fn totp_code(secret: &str, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32 secret");
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("TOTP")
        .generate(at)
        .to_string()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

const REFUSED: &str = "The email address, password or code is not right";
const ADMIN: &str = "admin@localhost";
const NEW_PASSWORD: &str = "correct horse battery staple";

/// Proof: the first admin signs in with the printed password, must change it, must enrol
/// TOTP, is then signed in; signs in again with TOTP (a replayed code refused) and with a
/// recovery code (which works once). Every refusal is a readable page with the right status,
/// audited, and the audit chain verifies.
#[test]
fn first_admin_signs_in_changes_password_enrols_totp() {
    // Every refusal of this test audited one by one (the default bounds them per window).
    let app = AppBuilder::default()
        .env("SEALPOST_AUDIT_REFUSALS_PER_WINDOW", "20")
        .spawn();
    let password = first_admin_password(&app);
    let mut b = Browser::new(&app);

    let page = b.get("/login");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    let html = page.text();
    assert!(
        html.contains("<label for=\"email\">")
            && html.contains("autocomplete=\"current-password\"")
    );

    // Wrong password and unknown email: the same 401 refusal.
    let wrong = b.sign_in(ADMIN, "not the password at all");
    assert_eq!(wrong.status, 401);
    assert!(wrong.page_text().contains(REFUSED), "{}", wrong.page_text());
    let unknown = b.sign_in("nobody@example.org", "whatever-password");
    assert_eq!(unknown.status, 401);
    assert!(unknown.page_text().contains(REFUSED));
    assert!(b.cookie.is_none(), "a refused sign-in started a session");

    // A cross-site post is refused before anything happens.
    let forged = {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Reply::from(
            agent
                .post(app.url("/login"))
                .header("Origin", "https://evil.example")
                .send_form([("email", ADMIN), ("password", password.as_str())]),
        )
    };
    assert_eq!(forged.status, 403);

    // The printed password: signed in, but only the password change is reachable.
    let ok = b.sign_in(ADMIN, &password);
    assert_eq!(ok.status, 303, "{}", ok.page_text());
    assert_eq!(location(&ok), "/staff");
    let first_cookie = b.cookie.clone().expect("session cookie");
    assert_eq!(location(&b.get("/staff")), "/account/password");
    assert_eq!(location(&b.get("/account/totp")), "/account/password");

    // A post without the session's CSRF token: 403, nothing changed.
    let no_token = b.post(
        "/account/password",
        &[
            ("current", &password),
            ("new", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(no_token.status, 403, "{}", no_token.page_text());
    let short = b.post_with_csrf(
        "/account/password",
        "/account/password",
        &[
            ("current", &password),
            ("new", "short"),
            ("confirm", "short"),
        ],
    );
    assert_eq!(short.status, 422);
    assert!(short.page_text().contains("at least 12 characters"));
    let same = b.post_with_csrf(
        "/account/password",
        "/account/password",
        &[
            ("current", &password),
            ("new", &password),
            ("confirm", &password),
        ],
    );
    assert_eq!(same.status, 422);
    assert!(same.page_text().contains("must differ"));
    let changed = b.post_with_csrf(
        "/account/password",
        "/account/password",
        &[
            ("current", &password),
            ("new", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(changed.status, 303, "{}", changed.page_text());
    assert_ne!(
        b.cookie.as_deref(),
        Some(first_cookie.as_str()),
        "session id not cycled"
    );

    // Admins must enrol TOTP next.
    assert_eq!(location(&b.get("/staff")), "/account/totp");
    // A GET writes nothing (invariant 4): the key is made only by the POST that starts it.
    let offer = b.get("/account/totp");
    assert_eq!(offer.status, 200);
    assert!(!offer.text().contains("totp-secret"), "a GET made a key");
    let started = b.post_with_csrf("/account/totp", "/account/totp/start", &[]);
    assert_eq!(location(&started), "/account/totp");
    let enrol = b.get("/account/totp");
    assert_eq!(enrol.status, 200);
    assert!(enrol.text().contains("<svg"), "no inline SVG QR code");
    assert!(!enrol.text().contains("<?xml"));
    let secret = between(&enrol.text(), "<code id=\"totp-secret\">", "</code>");
    let bad = b.post_with_csrf("/account/totp", "/account/totp", &[("code", "12345x")]);
    assert_eq!(bad.status, 422);
    assert!(bad.page_text().contains("not right"));
    let first_code = totp_code(&secret, now_secs());
    let codes_page = b.post_with_csrf("/account/totp", "/account/totp", &[("code", &first_code)]);
    assert_eq!(codes_page.status, 200, "{}", codes_page.page_text());
    let recovery: Vec<String> = codes_page
        .text()
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find("</code>").expect("code end")].to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);

    let home = b.get("/staff");
    assert_eq!(home.status, 200);
    let text_home = home.page_text();
    assert!(
        text_home.contains("Signed in as admin@localhost") && text_home.contains("role admin"),
        "{text_home}"
    );
    assert!(text_home.contains("15 minutes"));
    // The idle warning script knows the limit; the server still decides.
    assert!(
        home.text()
            .contains("data-idle-minutes=\"15\" data-signed-in")
    );
    assert!(home.text().contains("src=\"/static/staff-"));

    let out = b.post_with_csrf("/staff", "/logout", &[]);
    assert_eq!(out.status, 303);
    assert_eq!(location(&b.get("/staff")), "/login");

    // Password, then TOTP: the code already used is refused, the next step's code works.
    let mut b = Browser::new(&app);
    let step1 = b.sign_in(ADMIN, NEW_PASSWORD);
    assert_eq!(location(&step1), "/login/code");
    assert_eq!(location(&b.get("/staff")), "/login/code");
    let replay = b.post_with_csrf("/login/code", "/login/code", &[("code", &first_code)]);
    assert_eq!(replay.status, 401);
    assert!(replay.page_text().contains(REFUSED));
    let next = totp_code(&secret, now_secs() + 30);
    let signed = b.post_with_csrf("/login/code", "/login/code", &[("code", &next)]);
    assert_eq!(signed.status, 303, "{}", signed.page_text());
    assert_eq!(b.get("/staff").status, 200);
    b.post_with_csrf("/staff", "/logout", &[]);

    // A recovery code signs in once.
    for (attempt, expected) in [(0, 303), (1, 401)] {
        let mut b = Browser::new(&app);
        assert_eq!(location(&b.sign_in(ADMIN, NEW_PASSWORD)), "/login/code");
        let reply = b.post_with_csrf("/login/code", "/login/code", &[("code", &recovery[0])]);
        assert_eq!(
            reply.status,
            expected,
            "recovery attempt {attempt}: {}",
            reply.page_text()
        );
    }

    let db = Db::read_only(&app.db_path());
    let failed = db.audit_details("staff_login_failed").join("\n");
    for reason in [
        "wrong_password",
        "unknown_email",
        "totp_replayed",
        "wrong_recovery_code",
    ] {
        assert!(failed.contains(reason), "no {reason} in {failed}");
    }
    assert_eq!(db.audit_details("staff_login").len(), 3);
    assert!(db.audit_details("staff_logout").len() >= 2);
    assert!(!db.audit_details("password_changed").is_empty());
    assert_eq!(db.rows_of("staff_recovery_codes"), 10);
    let verify = app.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    // Nothing secret in the log.
    assert!(!app.log().contains(NEW_PASSWORD));
    assert!(!app.log().contains(&secret));
}

/// Proof: after `staff_lockout_threshold` failures the account is locked, even for the right
/// password, across a restart; the lock lifts by itself (moved into the past here), and a
/// successful sign-in resets the count.
#[test]
fn account_lock_survives_restart_and_lifts() {
    let mut app = AppBuilder::default()
        .env("SEALPOST_STAFF_LOCKOUT_THRESHOLD", "3")
        .env("SEALPOST_STAFF_SIGNIN_FAILURES_PER_MINUTE", "100")
        .spawn();
    let password = first_admin_password(&app);
    for _ in 0..3 {
        assert_eq!(
            Browser::new(&app).sign_in(ADMIN, "wrong password!").status,
            401
        );
    }
    assert_eq!(Browser::new(&app).sign_in(ADMIN, &password).status, 401);
    app.kill();
    app.restart();
    let locked = Browser::new(&app).sign_in(ADMIN, &password);
    assert_eq!(locked.status, 401, "the lock did not survive the restart");
    assert!(locked.page_text().contains(REFUSED));
    {
        let db = Db::read_only(&app.db_path());
        assert!(
            db.audit_details("staff_login_failed")
                .join("\n")
                .contains("account_locked")
        );
    }
    let moved = Db::writable(&app.db_path())
        .tamper("UPDATE staff_signin_failures SET locked_until = 1, last_failed_at = 1");
    assert_eq!(moved, 1);
    let ok = Browser::new(&app).sign_in(ADMIN, &password);
    assert_eq!(ok.status, 303, "{}", ok.page_text());
    assert_eq!(
        Db::read_only(&app.db_path()).rows_of("staff_signin_failures"),
        0
    );
}

/// Proof: a failed sign-in budget per client IP: beyond it 429 with `Retry-After`, even for
/// the right password.
#[test]
fn failed_signins_per_ip_are_throttled() {
    let app = AppBuilder::default()
        .env("SEALPOST_STAFF_SIGNIN_FAILURES_PER_MINUTE", "2")
        .spawn();
    let password = first_admin_password(&app);
    assert_eq!(
        Browser::new(&app)
            .sign_in("x@example.org", "wrong-password")
            .status,
        401
    );
    assert_eq!(
        Browser::new(&app)
            .sign_in("y@example.org", "wrong-password")
            .status,
        401
    );
    let third = Browser::new(&app).sign_in("z@example.org", "wrong-password");
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_some());
    assert!(third.page_text().contains("Too many failed sign-ins"));
    assert_eq!(Browser::new(&app).sign_in(ADMIN, &password).status, 429);
    // A flood from one client adds a bounded number of audit rows per window.
    for _ in 0..20 {
        assert_eq!(Browser::new(&app).sign_in(ADMIN, "guess").status, 429);
    }
    let db = Db::read_only(&app.db_path());
    assert_eq!(db.audit_details("staff_login_failed").len(), 3);
    assert_eq!(db.audit_details("throttled").len(), 3);
}

fn add_sender(app: &App, email: &str) -> String {
    let out = app.cli(&["user", "add", "--email", email, "--role", "sender"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("password line")
        .trim()
        .to_owned()
}

/// Move a staff session's `field` (`last_seen`, `signed_in_at`) back by `ms`.
fn age_session(app: &App, session_id: &str, field: &str, ms: i64) {
    let sql = format!(
        "UPDATE sessions SET data = CAST(json_set(CAST(data AS TEXT), '$.staff.{field}', \
         json_extract(CAST(data AS TEXT), '$.staff.{field}') - {ms}) AS BLOB) WHERE id = '{session_id}'"
    );
    assert_eq!(
        Db::writable(&app.db_path()).tamper(&sql),
        1,
        "no session {session_id}"
    );
}

/// Proof: idle and absolute limits are checked on every staff request, and "sign out
/// everywhere" ends the user's other sessions. Senders need no TOTP and are signed in after
/// the password.
#[test]
fn idle_absolute_and_everywhere_logoff() {
    let app = spawn_app();
    let email = "sender@example.org";
    let password = add_sender(&app, email);
    let browsers: Vec<Browser<'_>> = (0..4)
        .map(|_| {
            let mut b = Browser::new(&app);
            let reply = b.sign_in(email, &password);
            assert_eq!(location(&reply), "/staff", "{}", reply.page_text());
            assert_eq!(b.get("/staff").status, 200);
            b
        })
        .collect();
    let [mut idle, mut old, mut here, mut there] =
        <[Browser<'_>; 4]>::try_from(browsers).unwrap_or_else(|_| panic!("four browsers"));

    age_session(&app, &idle.session_id(), "last_seen", 16 * 60_000);
    assert_eq!(location(&idle.get("/staff")), "/login?ended=idle");
    assert!(
        idle.get("/login?ended=idle")
            .page_text()
            .contains("15 minutes without activity")
    );
    assert_eq!(location(&idle.get("/staff")), "/login");

    age_session(
        &app,
        &old.session_id(),
        "signed_in_at",
        12 * 3_600_000 + 60_000,
    );
    assert_eq!(location(&old.get("/staff")), "/login?ended=expired");

    assert_eq!(there.get("/staff").status, 200);
    let everywhere = here.post_with_csrf("/staff", "/logout/everywhere", &[]);
    assert_eq!(everywhere.status, 303);
    assert_eq!(location(&there.get("/staff")), "/login?ended=signed_out");
    assert_eq!(location(&here.get("/staff")), "/login");

    let db = Db::read_only(&app.db_path());
    let reasons = db.audit_details("staff_logout").join("\n");
    for reason in ["idle", "absolute", "everywhere", "revoked"] {
        assert!(reasons.contains(reason), "no {reason} in {reasons}");
    }
}
