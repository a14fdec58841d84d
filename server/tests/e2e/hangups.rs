//! Clients that hang up mid-request, as mobile clients do all the time: every write path must
//! keep working for everyone else afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use serde_json::json;

use crate::common::{self, App, AppBuilder, pseudo_random_bytes, require_tool};
use crate::{SENDER, submit_ok};

/// Requests in each burst of hang-ups.
const HANGUPS: usize = 240;
/// Threads sending them at once.
const CLIENTS: usize = 8;

/// Send `request` on a fresh connection, wait `delay` (a hang-up delay, not a wait for the
/// server), then close both directions without reading the reply.
fn hang_up(addr: &str, request: &[u8], delay: Duration) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    if stream.write_all(request).is_err() {
        return;
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A form post with a session cookie, as a raw HTTP/1.1 request.
fn form_post(addr: &str, path: &str, cookie: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An API submission as a raw HTTP/1.1 request.
fn api_post(addr: &str, token: &str, recipient: &str) -> Vec<u8> {
    let body =
        json!({"to": [recipient], "subject": "hang-up", "text": "sent by a client that hangs up"})
            .to_string();
    format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// SMTP sessions (STARTTLS, AUTH) that hang up at a different step each, then one that
/// delivers; prints `delivered <code>` for the last.
const SMTP_SCRIPT: &str = r#"
import smtplib, ssl, sys, random
host, port, user, password, sender, rcpt, seed = sys.argv[1:8]
rng = random.Random(int(seed))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
body = b"Subject: hang-up\r\n\r\n" + b"a line of the body\r\n" * 2000
for i in range(24):
    s = smtplib.SMTP(host, int(port), timeout=30)
    s.ehlo("hangup.test"); s.starttls(context=ctx); s.ehlo("hangup.test"); s.login(user, password)
    s.mail(sender); s.rcpt(rcpt)
    step = rng.randrange(3)
    if step >= 1:
        s.putcmd("data"); s.getreply()
        s.send(body[: rng.randrange(len(body))])
    if step == 2:
        s.send(b"\r\n.\r\n")
    s.sock.close()
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.ehlo("hangup.test"); s.starttls(context=ctx); s.ehlo("hangup.test"); s.login(user, password)
    code, resp = s.sendmail(sender, [rcpt], body), None
    print("delivered", "250" if code == {} else code)
"#;

/// Proof (issue: a client that hangs up can stop every write): bursts of pickups (`open`,
/// `code`) and API submissions whose clients close the socket after a random delay, and SMTP
/// sessions that hang up before, during and right after DATA; afterwards a normal open, an API
/// submission and an SMTP message all succeed, and the server logged no `500` and no
/// transaction error.
#[test]
fn clients_hanging_up_mid_request_do_not_stop_writes() {
    let Some(_) = require_tool("python3") else {
        return;
    };
    // Every request comes from 127.0.0.1: lift the per-client pickup budget, which this test
    // is not about.
    let app: App = AppBuilder::default()
        .env("SEALPOST_PICKUP_POSTS_PER_MINUTE", "100000")
        .spawn();
    let token = app.create_sender(SENDER);
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let recipients: Vec<String> = (0..3).map(|i| format!("r{i}@example.net")).collect();
    let mut opened = Vec::new();
    for r in &recipients {
        submit_ok(&app.submit_json(&token, &json!({"to": [r], "subject": "s", "text": "hello"})));
        let link = app.notification_link(r);
        let cookie = app.verify_by_code(&link, r);
        opened.push((link, cookie));
    }

    let seed = u64::from(std::process::id()) ^ 0x4841_4E47;
    println!("hang-up delays from seed {seed:#x}");
    let delays = pseudo_random_bytes(HANGUPS, seed);
    let requests: Vec<Vec<u8>> = (0..HANGUPS)
        .map(|i| {
            let (link, cookie) = &opened[i % opened.len()];
            match i % 4 {
                0 | 1 => form_post(
                    &addr,
                    &format!("/p/{}/open", link.pickup_id),
                    cookie,
                    &format!("k={}", link.secret),
                ),
                2 => form_post(&addr, &format!("/p/{}/code", link.pickup_id), cookie, ""),
                _ => api_post(&addr, &token, &recipients[i % recipients.len()]),
            }
        })
        .collect();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (requests, delays, addr) = (&requests, &delays, addr.as_str());
            scope.spawn(move || {
                for i in (client..HANGUPS).step_by(CLIENTS) {
                    let delay = Duration::from_micros(u64::from(delays[i] % 16) * 1000);
                    hang_up(addr, &requests[i], delay);
                }
            });
        }
    });

    let (host, port) = common::smtp_addr(&app)
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    let password = common::add_relay(&app, "hangups");
    let out = std::process::Command::new("python3")
        .args(["-c", SMTP_SCRIPT, &host, &port, "hangups", &password])
        .args([SENDER, "smtp@example.net", &seed.to_string()])
        .output()
        .expect("run python3");
    let smtp_out = common::text(&out.stdout);
    assert!(
        out.status.success() && smtp_out.contains("delivered 250"),
        "SMTP after hang-ups: {smtp_out}\n{}\nserver log:\n{}",
        common::text(&out.stderr),
        app.log()
    );

    // Everything still writes: a fresh API submission, its pickup, and an open of an old one.
    let fresh = "after@example.net";
    submit_ok(&app.submit_json(
        &token,
        &json!({"to": [fresh], "subject": "s", "text": "after"}),
    ));
    app.open_link(&app.notification_link(fresh), fresh);
    let (link, cookie) = &opened[0];
    let page = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(cookie),
    );
    assert_eq!(
        page.status,
        200,
        "open after hang-ups: {}",
        page.page_text()
    );
    app.open_link(
        &app.notification_link("smtp@example.net"),
        "smtp@example.net",
    );

    let log = app.log();
    for bad in [
        "request failed",
        "status=500",
        "within a transaction",
        "request task",
    ] {
        assert!(!log.contains(bad), "the server logged {bad:?}:\n{log}");
    }
    app.assert_audit_verifies();
    // Drain any half-read reply so the test leaves no socket behind.
    let mut probe = TcpStream::connect(&addr).expect("connect");
    let _ = probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut reply = String::new();
    let _ = probe.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}
