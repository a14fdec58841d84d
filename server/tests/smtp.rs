//! The SMTP listener of the real `sealpost` binary, driven by real clients: Python's `smtplib`
//! (STARTTLS with the generated self-signed certificate, AUTH with credentials from
//! `sealpost relay add`, a message with an attachment and a non-ASCII subject), then the
//! pickup flow over HTTP confirming the content byte for byte.
//!
//! `swaks` does the same with a file attachment. `python3` is on every development machine,
//! `swaks` often not; a missing tool makes its test print why and pass, unless
//! `SEALPOST_TEST_REQUIRE=all` (CI), where it fails.

mod common;

use std::process::Command;

use common::{App, AppBuilder, require_tool, text};

const RECIPIENT: &str = "bob@example.net";
const SENDER: &str = "ann@clinic.example";
const SUBJECT: &str = "Befund für Sie – 診断結果";

/// `(host, port)` of the `listening <listener>=` address, and the password of a new relay
/// `relay`.
fn listener_and_relay(app: &App, listener: &str, relay: &str) -> (String, String, String) {
    let addr = common::listening_addr(app, listener);
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let password = common::add_relay(app, relay);
    (host.to_owned(), port.to_owned(), password)
}

/// Run a Python script with arguments; returns (success, stdout, stderr).
fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Run an smtplib script that prints `tls <version>` once its connection is encrypted; panics
/// (with the server's log) unless it succeeds over TLS 1.2 or 1.3. Returns its stdout.
fn send_over_tls(app: &App, script: &str, args: &[&str]) -> String {
    let (ok, out, err) = python(script, args);
    assert!(
        ok,
        "smtplib failed:\n{out}\n{err}\nserver log:\n{}",
        app.log()
    );
    assert!(
        out.lines()
            .any(|l| l == "tls TLSv1.3" || l == "tls TLSv1.2"),
        "{out}"
    );
    out
}

const SEND_SCRIPT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage

host, port, user, password, sender, rcpt, subject = sys.argv[1:8]
msg = EmailMessage()
msg["From"] = "Ann Example <%s>" % sender
msg["To"] = rcpt
msg["Subject"] = subject
msg.set_content("Hello Bob,\n.a line starting with a dot\nthe results are attached.\n")
msg.add_attachment(bytes(range(256)) * 64, maintype="application",
                   subtype="octet-stream", filename="results.bin")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the self-signed certificate; real relays pin its fingerprint
with smtplib.SMTP(host, int(port), timeout=60) as s:
    s.ehlo("python.test")
    assert "auth" not in s.esmtp_features, "AUTH offered before STARTTLS"
    s.starttls(context=ctx)
    s.ehlo("python.test")
    print("tls", s.sock.version())
    s.login(user, password)
    s.mail(sender)
    code, resp = s.rcpt(rcpt)
    assert code == 250, (code, resp)
    code, resp = s.data(msg.as_bytes())
    print(code, resp.decode())
"#;

const REFUSED_SCRIPT: &str = r#"
import smtplib, ssl, sys
host, port = sys.argv[1:3]
with smtplib.SMTP(host, int(port), timeout=60) as s:
    s.ehlo("python.test")
    print("plain-mail", s.mail("ann@clinic.example")[0])
    s.rset()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("python.test")
    print("tls-mail", s.mail("ann@clinic.example")[0])
    try:
        s.login("python", "wrong password")
    except smtplib.SMTPAuthenticationError as e:
        print("login", e.smtp_code)
"#;

/// Proof: smtplib does STARTTLS (TLS 1.2+) and AUTH with relay credentials from the CLI, sends
/// a message with an attachment and a non-ASCII subject, and gets `250 2.0.0 <id> queued`;
/// the notification is then in the outbox, and the pickup flow shows the subject and text and
/// returns the attachment byte for byte, plus the original message as `original.eml`.
#[test]
fn smtplib_starttls_auth_and_pickup() {
    if require_tool("python3").is_none() {
        return;
    }
    let app = AppBuilder::default().spawn();
    let (host, port, password) = listener_and_relay(&app, "smtp", "python");
    let out = send_over_tls(
        &app,
        SEND_SCRIPT,
        &[
            &host, &port, "python", &password, SENDER, RECIPIENT, SUBJECT,
        ],
    );
    let id = queued_id(&out);
    assert!(uuid_like(&id), "{id}");

    // The notification was written before the 250.
    let got = app.pick_up(&app.notification_link(RECIPIENT), RECIPIENT);
    assert!(got.text.contains(SUBJECT), "subject: {}", got.text);
    assert!(got.text.contains(SENDER), "sender: {}", got.text);
    assert!(
        got.text.contains(".a line starting with a dot"),
        "dot-unstuffed text: {}",
        got.text
    );
    assert_eq!(got.names(), ["results.bin", "original.eml"]);
    let expected: Vec<u8> = (0..64).flat_map(|_| 0..=255u8).collect();
    assert!(
        got.file("results.bin") == expected,
        "attachment bytes differ"
    );
    let original = text(got.file("original.eml"));
    assert!(
        original.contains("Subject: Befund =?utf-8?") && original.contains("results.bin"),
        "original.eml holds the whole message:\n{original}"
    );

    app.assert_audited(
        None,
        &[
            "relay_added",
            "relay_authenticated",
            "message_submitted",
            "notification_sent",
        ],
    );
    app.assert_audit_verifies();
}

/// The `250 2.0.0 <id> queued` reply's message id.
fn queued_id(out: &str) -> String {
    let last = out.lines().last().unwrap_or_default();
    last.strip_prefix("250 2.0.0 ")
        .and_then(|r| r.strip_suffix(" queued"))
        .unwrap_or_else(|| panic!("unexpected DATA reply: {out}"))
        .to_owned()
}

/// Proof: a message relayed with a staff user's address as its envelope sender belongs to
/// that user: its status is in their API view and they can revoke it, while another sender
/// gets `404`; mail from an address that is no staff user's belongs to nobody (`404` for
/// every sender). Before, relayed mail belonged to nobody at all.
#[test]
fn relayed_mail_belongs_to_the_staff_user_of_its_envelope_sender() {
    if require_tool("python3").is_none() {
        return;
    }
    let app = AppBuilder::default().spawn();
    let owner = app.create_sender(SENDER);
    let other = app.create_sender("carl@clinic.example");
    let (host, port, password) = listener_and_relay(&app, "smtp", "python");
    let send = |from: &str| {
        queued_id(&send_over_tls(
            &app,
            SEND_SCRIPT,
            &[&host, &port, "python", &password, from, RECIPIENT, SUBJECT],
        ))
    };
    let id = send(SENDER);
    let status = app.message_status(&owner, &id);
    assert_eq!(status.status, 200, "{}", status.text());
    assert_eq!(status.json()["recipients"][0]["address"], RECIPIENT);
    assert_eq!(app.message_status(&other, &id).status, 404);
    assert_eq!(app.revoke(&owner, &id).status, 204);

    let stranger = send("someone@elsewhere.example");
    for token in [&owner, &other] {
        assert_eq!(app.message_status(token, &stranger).status, 404);
    }
}

const SMTPS_SCRIPT: &str = r#"
import smtplib, ssl, sys
host, port, user, password, sender, rcpt = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=60) as s:
    s.ehlo("python.test")
    print("tls", s.sock.version())
    print("starttls-offered", "starttls" in s.esmtp_features)
    print("auth", s.esmtp_features.get("auth", "").strip())
    s.login(user, password)
    body = "Subject: implicit TLS\r\nFrom: %s\r\nTo: %s\r\n\r\nSent over port-465-style TLS.\r\n" % (sender, rcpt)
    refused = s.sendmail(sender, [rcpt], body)
    print("sent", refused)
"#;

/// Proof: the optional implicit-TLS listener (`smtps_addr`, port 465 style) speaks TLS from
/// the first byte: smtplib's `SMTP_SSL` gets TLS 1.2+, AUTH is offered at once and STARTTLS is
/// not, the message is accepted and opens. The self-signed certificate names the host in its
/// subject CN as well as in its alternative names (some MTAs match the CN only).
#[test]
fn implicit_tls_listener_accepts_smtplib_smtp_ssl() {
    if require_tool("python3").is_none() || require_tool("openssl").is_none() {
        return;
    }
    let app = AppBuilder::default()
        .env("SEALPOST_SMTPS_ADDR", "127.0.0.1:0")
        .spawn();
    let (host, port, password) = listener_and_relay(&app, "smtps", "smtps");
    let out = send_over_tls(
        &app,
        SMTPS_SCRIPT,
        &[&host, &port, "smtps", &password, SENDER, RECIPIENT],
    );
    assert!(out.contains("starttls-offered False"), "{out}");
    assert!(out.contains("auth PLAIN LOGIN"), "{out}");
    assert!(out.contains("sent {}"), "every recipient accepted: {out}");

    let opened = app.open_link(&app.notification_link(RECIPIENT), RECIPIENT);
    let page = &opened.page;
    assert!(
        page.page_text().contains("Sent over port-465-style TLS."),
        "{}",
        page.page_text()
    );

    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(app.data_dir.join("smtp-tls-cert.pem"))
        .output()
        .expect("run openssl");
    let subject = text(&subject.stdout);
    assert!(
        subject.trim() == "subject=CN = 127.0.0.1" || subject.trim() == "subject=CN=127.0.0.1",
        "{subject}"
    );
}

/// Proof: without TLS, MAIL gets 530; with TLS but no AUTH, MAIL gets 530 too (no open relay);
/// a wrong password gets 535 (smtplib tries it with PLAIN and LOGIN). Each refusal is audited with the client's IP.
#[test]
fn smtplib_is_refused_without_tls_or_auth() {
    if require_tool("python3").is_none() {
        return;
    }
    let app = AppBuilder::default().spawn();
    let (host, port, _) = listener_and_relay(&app, "smtp", "python");
    let (ok, out, err) = python(REFUSED_SCRIPT, &[&host, &port]);
    assert!(ok, "python failed:\n{out}\n{err}");
    assert!(out.contains("plain-mail 530"), "{out}");
    assert!(out.contains("tls-mail 530"), "{out}");
    assert!(out.contains("login 535"), "{out}");
    let events = app.audit_events();
    let refused = events
        .iter()
        .filter(|e| e["action"] == "smtp_refused" || e["action"] == "relay_auth_failed")
        .filter(|e| e["ip"] == "127.0.0.1")
        .count();
    // smtplib's login() tries PLAIN, then LOGIN: two failed logins.
    assert_eq!(refused, 4, "{events:?}");
    assert!(app.outbox().is_empty());
}

/// Proof: `relay list` shows the relay (never a hash) and `relay remove` deletes it.
#[test]
fn relay_cli_add_list_remove() {
    let app = AppBuilder::default().spawn();
    let password = common::add_relay(&app, "postfix-1");
    assert_eq!(password.len(), 24, "{password}");
    assert!(
        password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{password}"
    );
    let dup = app.cli(&["relay", "add", "--name", "POSTFIX-1"]);
    assert_eq!(dup.status.code(), Some(2), "duplicate names are refused");
    let list = text(&app.cli(&["relay", "list"]).stdout);
    assert!(list.contains("postfix-1\tactive"), "{list}");
    assert!(!list.contains("argon2"), "{list}");
    let removed = app.cli(&["relay", "remove", "--name", "postfix-1"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let list = text(&app.cli(&["relay", "list"]).stdout);
    assert!(!list.contains("postfix-1"), "{list}");
    let again = app.cli(&["relay", "remove", "--name", "postfix-1"]);
    assert_eq!(again.status.code(), Some(2));
}

/// Proof: `swaks` (STARTTLS, AUTH PLAIN, an attachment) gets `250 2.0.0 <id> queued` and the
/// attachment opens byte for byte. swaks is optional on development machines; CI requires it.
#[test]
fn swaks_starttls_auth_and_pickup() {
    if require_tool("swaks").is_none() {
        return;
    }
    let app = AppBuilder::default().spawn();
    let addr = common::smtp_addr(&app);
    let password = common::add_relay(&app, "swaks");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = app.data_dir.with_file_name("upload.bin");
    std::fs::write(&file, &bytes).expect("write the attachment");
    let out = Command::new("swaks")
        .args(["--server", &addr, "--tls", "--auth", "PLAIN"])
        .args(["--auth-user", "swaks", "--auth-password", &password])
        .args(["--from", SENDER, "--to", RECIPIENT])
        .args(["--header", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_von_swaks?="])
        .args(["--body", "Hello from swaks"])
        .args(["--attach-type", "application/octet-stream"])
        .args(["--attach-name", "data.bin"])
        .arg("--attach")
        .arg(&file)
        .output()
        .expect("run swaks");
    let transcript = text(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{transcript}\n{}",
        text(&out.stderr)
    );
    assert!(
        transcript.contains("<~  250 2.0.0 ") && transcript.contains(" queued"),
        "{transcript}"
    );

    let got = app.pick_up(&app.notification_link(RECIPIENT), RECIPIENT);
    assert!(got.text.contains("Grüße von swaks"), "{}", got.text);
    assert!(got.text.contains("Hello from swaks"), "{}", got.text);
    assert_eq!(got.names().first(), Some(&"data.bin"), "{:?}", got.names());
    assert!(got.file("data.bin") == bytes, "attachment bytes differ");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
