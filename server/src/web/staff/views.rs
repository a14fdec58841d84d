//! The askama views of the staff pages (`templates/staff/`).

use askama::Template;

use crate::web::page::Layout;

/// A message box on a page (`templates/pages/notice.html`).
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn error(text: String) -> Self {
        Self {
            kind: "error",
            text,
        }
    }
    pub fn warn(text: String) -> Self {
        Self { kind: "warn", text }
    }
    pub fn info(text: String) -> Self {
        Self { kind: "info", text }
    }
}

#[derive(Template)]
#[template(path = "staff/login.html")]
pub struct LoginPage<'a> {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub email: &'a str,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "staff/second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub csrf: &'a str,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "staff/home.html")]
pub struct HomePage<'a> {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub max_hours: u32,
    pub email: &'a str,
    pub role: &'a str,
    pub has_totp: bool,
    pub csrf: &'a str,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "staff/password.html")]
pub struct PasswordPage<'a> {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub email: &'a str,
    pub forced: bool,
    pub min_len: usize,
    pub csrf: &'a str,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "staff/enrol.html")]
pub struct EnrolPage<'a> {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub required: bool,
    /// No enrolment pending yet: the page offers to start one.
    pub not_started: bool,
    /// Made by the `qrcode` crate from the `otpauth://` URI: no user-supplied markup.
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub csrf: &'a str,
    pub notice: Option<Notice>,
}

#[derive(Template)]
#[template(path = "staff/recovery.html")]
pub struct RecoveryPage {
    pub layout: Layout,
    pub idle_minutes: u32,
    pub codes: Vec<String>,
}
