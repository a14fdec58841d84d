use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::testing::{OutboxMail, TestApp, outbox_in};

const SECRET: &str = "QEFCQ0RFRkdISUpLTE1OTw";

fn notification(to: &str) -> Notification<'_> {
    Notification {
        to,
        sender_name: Some("Dr Ann Example"),
        sender_address: "ann@clinic.example",
        pickup_url: "https://pickup.example/p/AAAAAAAAAAAAAAAAAAAAAA",
        link_secret: SECRET,
        expires_at: time::macros::datetime!(2026-12-25 14:00 UTC),
        passphrase_required: false,
    }
}

/// The one mail a file mailer wrote into `dir`.
fn only_mail(dir: &Path) -> OutboxMail {
    let mails = outbox_in(dir).expect("a readable outbox of finished mails");
    assert_eq!(mails.len(), 1, "exactly one mail: {mails:?}");
    mails.into_iter().next().expect("one mail")
}

/// A mailer relaying to the SMTP server on loopback `port`.
fn relay_mailer(port: u16) -> Mailer {
    Mailer::new(
        &smtp_to(port),
        Path::new("/nonexistent"),
        "sealpost@localhost",
    )
    .expect("mailer")
}

#[tokio::test]
async fn file_outbox_gets_one_complete_notification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::new(
        &Outbound::File,
        &outbox,
        "Sealpost <sealpost@pickup.example>",
    )
    .expect("mailer");
    mailer
        .send_notification(&notification("bob@example.org"))
        .await
        .expect("sent");
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1, "exactly one file, no temporary left behind");
    let mail = only_mail(&outbox);
    assert_eq!(mail.path.extension().and_then(|e| e.to_str()), Some("eml"));
    let (subject, text, html) = (&mail.subject, &mail.text, &mail.html);
    assert_eq!(
        subject,
        "A secure message from Dr Ann Example <ann@clinic.example> is waiting for you"
    );
    let link = format!("https://pickup.example/p/AAAAAAAAAAAAAAAAAAAAAA#k={SECRET}");
    assert!(text.contains(&link), "{text}");
    assert!(html.contains(&link), "{html}");
    assert!(text.contains("25 December 2026, 14:00 UTC"), "{text}");
    let raw_text = String::from_utf8_lossy(&mail.raw);
    assert!(raw_text.contains("To: bob@example.org"));
    assert!(raw_text.contains("Auto-Submitted: auto-generated"));
    assert!(raw_text.contains("Message-ID: <"));
}

#[tokio::test]
async fn code_mail_carries_the_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = Mailer::new(&Outbound::File, dir.path(), "sealpost@localhost").expect("mailer");
    let mail = CodeMail {
        to: "bob@example.org",
        code: "042917",
        pickup_url: "https://x.example/p/a",
        valid_minutes: 10,
    };
    mailer.send_code(&mail).await.expect("sent");
    let sent = only_mail(dir.path());
    let (subject, text, html) = (&sent.subject, &sent.text, &sent.html);
    assert_eq!(subject, "Your Sealpost verification code");
    assert!(text.contains("042917") && html.contains("042917"));
    assert!(!format!("{mail:?}").contains("042917"));
    assert!(!format!("{:?}", notification("a@b.org")).contains(SECRET));
}

/// A minimal SMTP server that answers `data_reply` to the end of DATA and records the message.
async fn sink(data_reply: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let record = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            record.lock().expect("lock").push(std::mem::take(&mut data));
                            let _ = write
                                .write_all(format!("{data_reply}\r\n").as_bytes())
                                .await;
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, got)
}

fn smtp_to(port: u16) -> Outbound {
    Outbound::Smtp {
        implicit_tls: false,
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
    }
}

#[tokio::test]
async fn smtp_relay_on_loopback_receives_the_notification() {
    let (port, got) = sink("250 2.0.0 queued").await;
    let mailer = relay_mailer(port);
    mailer
        .send_notification(&notification("bob@example.org"))
        .await
        .expect("accepted");
    let got = got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("Subject: A secure message from"));
}

#[tokio::test]
async fn relay_refusals_are_temporary_or_permanent() {
    let (port, _) = sink("451 4.3.0 try later").await;
    let mailer = relay_mailer(port);
    let err = mailer
        .send_notification(&notification("bob@example.org"))
        .await
        .expect_err("refused");
    assert!(err.is_temporary(), "{err}");
    assert!(!err.to_string().contains(SECRET));

    let (port, _) = sink("554 5.7.1 no").await;
    let mailer = relay_mailer(port);
    let err = mailer
        .send_notification(&notification("bob@example.org"))
        .await
        .expect_err("refused");
    assert!(!err.is_temporary(), "{err}");

    // Nobody listening: temporary.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mailer = relay_mailer(closed);
    assert!(
        mailer
            .send_notification(&notification("bob@example.org"))
            .await
            .expect_err("no relay")
            .is_temporary()
    );
}

#[test]
fn remote_relays_require_tls_and_debug_hides_credentials() {
    let remote = Outbound::Smtp {
        implicit_tls: true,
        host: "mail.example.org".into(),
        port: 465,
        username: Some("user".into()),
        password: Some("hunter2".to_owned().into()),
    };
    let mailer = Mailer::new(&remote, Path::new("/x"), "sealpost@example.org").expect("mailer");
    let dbg = format!("{mailer:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(is_loopback("127.0.0.1") && is_loopback("localhost") && is_loopback("[::1]"));
    assert!(!is_loopback("mail.example.org") && !is_loopback("10.0.0.1"));
    assert!(Mailer::new(&Outbound::File, Path::new("/x"), "not an address").is_err());
}

#[tokio::test]
async fn a_hostile_sender_name_cannot_add_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = Mailer::new(&Outbound::File, dir.path(), "sealpost@localhost").expect("mailer");
    let mut n = notification("bob@example.org");
    n.sender_name = Some("Jane\r\nBcc: eve@evil.example");
    mailer.send_notification(&n).await.expect("sent");
    let raw = String::from_utf8_lossy(&only_mail(dir.path()).raw).into_owned();
    let headers = raw.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !headers
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{headers}"
    );
}

#[test]
fn sender_domain_is_the_base_url_host() {
    for (base_url, address) in [
        (
            "https://Pickup.Example.org:8443/sealpost",
            "sealpost@pickup.example.org",
        ),
        ("http://127.0.0.1:8080", "sealpost@localhost"),
        ("https://[::1]:8443", "sealpost@localhost"),
    ] {
        let (_dir, config) = TestApp::builder()
            .set("base_url", base_url)
            .config()
            .expect("config");
        let mailer = Mailer::from_config(&config).expect("mailer");
        assert_eq!(mailer.0.from.email.to_string(), address, "{base_url}");
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(unix)]
#[tokio::test]
async fn outbox_mails_and_their_directory_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::new(&Outbound::File, &outbox, "sealpost@localhost").expect("mailer");
    mailer
        .send_notification(&notification("bob@example.org"))
        .await
        .expect("sent");
    assert_eq!(mode(&outbox), 0o700);
    assert_eq!(mode(&only_mail(&outbox).path), 0o600);
}

#[cfg(unix)]
#[test]
fn preparing_the_outbox_removes_cut_off_writes_and_restricts_old_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    std::fs::create_dir(&outbox).expect("outbox");
    set_mode(&outbox, 0o755);
    let old = outbox.join("0190b0d4-0000-7000-8000-000000000000.eml");
    std::fs::write(&old, "To: bob@example.org\r\n\r\nold mail\r\n").expect("old mail");
    set_mode(&old, 0o644);
    for name in [
        ".0190b0d4-0000-7000-8000-000000000001.tmp",
        ".0190b0d4-0000-7000-8000-000000000002.tmp",
    ] {
        std::fs::write(outbox.join(name), "half a mail").expect("temporary file");
    }
    let other = outbox.join("README");
    std::fs::write(&other, "not a mail").expect("other file");
    set_mode(&other, 0o644);

    let prepared = outbox::prepare(&outbox).expect("prepared");
    assert_eq!(
        prepared,
        outbox::Prepared {
            removed_temporary: 2,
            restricted: 2
        }
    );
    let mut left: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            old.file_name().expect("name"),
            other.file_name().expect("name")
        ]
    );
    assert_eq!(
        (mode(&outbox), mode(&old), mode(&other)),
        (0o700, 0o600, 0o644)
    );
    // A second start finds nothing to do; a missing outbox is created private.
    assert_eq!(
        outbox::prepare(&outbox).expect("again"),
        outbox::Prepared::default()
    );
    let fresh = dir.path().join("fresh/outbox");
    assert_eq!(
        outbox::prepare(&fresh).expect("fresh"),
        outbox::Prepared::default()
    );
    assert_eq!(mode(&fresh), 0o700);
}

#[test]
fn the_file_outbox_serves_only_loopback_base_urls_unless_allowed() {
    let check = |settings: &[(&str, &str)]| {
        let mut builder = TestApp::builder();
        for (key, value) in settings {
            builder = builder.set(key, value);
        }
        let (_dir, config) = builder.config().expect("config");
        outbox::check_policy(&config)
    };
    assert!(check(&[]).is_ok(), "the default base URL is loopback");
    assert!(check(&[("base_url", "http://localhost:8080")]).is_ok());
    let error = check(&[("base_url", "https://pickup.example.org")])
        .expect_err("refused")
        .to_string();
    for needle in [
        "https://pickup.example.org",
        "SEALPOST_OUTBOUND=smtp://",
        "outbound_file_allow_public = true",
        "SEALPOST_OUTBOUND_FILE_ALLOW_PUBLIC=true",
    ] {
        assert!(error.contains(needle), "{error}");
    }
    assert!(
        check(&[("base_url", "http://0.0.0.0:8080")]).is_err(),
        "every address is not loopback"
    );
    assert!(
        check(&[
            ("base_url", "https://pickup.example.org"),
            ("outbound_file_allow_public", "true"),
        ])
        .is_ok()
    );
    assert!(
        check(&[
            ("base_url", "https://pickup.example.org"),
            ("outbound", "smtp://relay.example.org"),
        ])
        .is_ok()
    );
}
