//! Issue 4's proof: Debian's Postfix as a real smarthost client of Sealpost's SMTP listener.
//!
//! The test runs a private Postfix instance (its own `config_directory`, `queue_directory` and
//! `data_directory` in a temporary directory; the system instance and `/etc/postfix` are not
//! touched) that relays to Sealpost's SMTP port on 127.0.0.1 (by `relayhost`, and by
//! deploy/postfix.md's transport map and `sealpost` transport), with TLS required and
//! Sealpost's self-signed certificate pinned by its SHA-256 fingerprint, and SASL credentials
//! from `sealpost relay add`. A wrong pin must stop delivery before AUTH. A MIME message goes in with Postfix's `sendmail`; the test waits
//! for Sealpost's notification in the file outbox and opens the message through the pickup
//! flow, checking the text and the attachment byte for byte. Nothing leaves loopback: the
//! instance listens on no port (no `smtpd` in its `master.cf`) and relays only to Sealpost.
//!
//! Postfix must run as root (its `master` starts as root and drops to `mail_owner`). Without
//! `/usr/sbin/postfix` the test prints why and passes, unless `SEALPOST_TEST_REQUIRE` is `all`
//! or names `postfix` (CI), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{AppBuilder, pseudo_random_bytes, text};
use sha2::{Digest as _, Sha256};

const POSTFIX: &str = "/usr/sbin/postfix";
const SENDMAIL: &str = "/usr/sbin/sendmail";
const SENDER: &str = "sender@clinic.example";
const RECIPIENT: &str = "bob@example.org";
const SUBJECT: &str = "Lab results via Postfix";
const BODY_LINE: &str = "Hello Bob, your results are attached (relayed by Postfix).";
/// How long Postfix may take to pick the message up and relay it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `Some(())` when Postfix is installed, under [`common::require`] with the name `postfix`.
fn require_postfix() -> Option<()> {
    common::require("postfix", || {
        if Path::new(POSTFIX).is_file() && Path::new(SENDMAIL).is_file() {
            Ok(())
        } else {
            Err(format!("postfix not installed ({POSTFIX} missing)"))
        }
    })
}

/// SHA-256 of the first certificate in a PEM file, as `AB:CD:…` (upper-case hex with colons,
/// the form of `openssl x509 -fingerprint -sha256` and `smtp_tls_fingerprint_cert_match`).
fn pem_fingerprint(pem: &Path) -> String {
    let pem = std::fs::read_to_string(pem).unwrap_or_else(|e| panic!("{}: {e}", pem.display()));
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("base64 certificate");
    Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `s` without ANSI colour sequences (`ESC [ ... m`), as `tracing` writes them.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A private Postfix instance in a temporary directory, stopped when dropped.
struct Postfix {
    /// Holds the configuration, queue and data directories.
    root: tempfile::TempDir,
    config_dir: PathBuf,
    started: bool,
}

impl Postfix {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temporary directory");
        // Postfix's unprivileged processes (mail_owner) must be able to reach the queue.
        set_mode(root.path(), 0o755);
        let config_dir = root.path().join("etc");
        for dir in ["etc", "queue", "data"] {
            std::fs::create_dir(root.path().join(dir)).expect("create directory");
        }
        Self {
            root,
            config_dir,
            started: false,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Write `main.cf`, `master.cf` and `sasl_passwd` for relaying to Sealpost's SMTP `port`
    /// with `fingerprint` pinned and `password` for the relay `postfix-test`; create the
    /// queue directories (`set-permissions`), `check`, and `start` the instance.
    fn start(routing: Routing, port: &str, fingerprint: &str, password: &str) -> Self {
        let mut pf = Self::new();
        let nexthop = format!("[127.0.0.1]:{port}");
        std::fs::write(
            pf.config_dir.join("main.cf"),
            main_cf(&pf, routing, &nexthop, fingerprint),
        )
        .expect("write main.cf");
        std::fs::write(
            pf.config_dir.join("master.cf"),
            master_cf(routing, fingerprint),
        )
        .expect("write master.cf");
        if routing == Routing::TransportMap {
            let domain = RECIPIENT.rsplit_once('@').expect("address").1;
            std::fs::write(
                pf.config_dir.join("transport"),
                format!("{domain} sealpost:{nexthop}\n"),
            )
            .expect("write transport");
        }
        // The SASL lookup key is the next hop exactly as written in relayhost/transport.
        let sasl = pf.config_dir.join("sasl_passwd");
        std::fs::write(&sasl, format!("{nexthop} postfix-test:{password}\n"))
            .expect("write sasl_passwd");
        set_mode(&sasl, 0o600);

        pf.postfix_ok(&["set-permissions"]);
        pf.postfix_ok(&["check"]);
        let out = pf.postfix(&["start"]);
        // Stop it on drop even if `start` reported a failure after starting the master.
        pf.started = true;
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\nmail log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            pf.maillog()
        );
        pf
    }

    /// Inject `message` with Postfix's `sendmail` (postdrop, pickup, cleanup, qmgr, smtp).
    fn send(&self, message: &[u8]) {
        let message_file = self.path("message.eml");
        std::fs::write(&message_file, message).expect("write message");
        let out = Command::new(SENDMAIL)
            .arg("-C")
            .arg(&self.config_dir)
            .args(["-f", SENDER, RECIPIENT])
            .env_remove("MAIL_CONFIG")
            .stdin(std::fs::File::open(&message_file).expect("open message"))
            .output()
            .expect("run sendmail");
        assert!(
            out.status.success(),
            "sendmail failed: {}{}\nmail log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.maillog()
        );
    }

    /// Wait (bounded) until the mail log has a line containing `needle`; returns the log.
    fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.maillog();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in Postfix's mail log within {timeout:?}:\n{log}\nqueue:\n{}",
                self.queue()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `postfix -c <config_dir> <args>`.
    fn postfix(&self, args: &[&str]) -> Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .env_remove("MAIL_CONFIG")
            .output()
            .unwrap_or_else(|e| panic!("cannot run postfix {args:?}: {e}"))
    }

    /// Run `postfix <args>` and panic (with the mail log) unless it succeeds.
    fn postfix_ok(&self, args: &[&str]) -> String {
        let out = self.postfix(args);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "postfix {args:?} failed:\n{all}\nmail log:\n{}",
            self.maillog()
        );
        all
    }

    /// What Postfix logged (`maillog_file`, written by `postlogd`).
    fn maillog(&self) -> String {
        std::fs::read_to_string(self.path("maillog")).unwrap_or_default()
    }

    /// What `postqueue -p` shows (for failure messages).
    fn queue(&self) -> String {
        Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("-p")
            .output()
            .map(|o| format!("{}{}", text(&o.stdout), text(&o.stderr)))
            .unwrap_or_else(|e| format!("postqueue: {e}"))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.started {
            let out = self.postfix(&["stop"]);
            if !out.status.success() {
                eprintln!(
                    "postfix stop failed: {}{}",
                    text(&out.stdout),
                    text(&out.stderr)
                );
            }
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// `main.cf` for the private instance: relay everything to Sealpost with TLS required, the
/// certificate pinned, and SASL credentials from `sasl_passwd`.
fn main_cf(pf: &Postfix, routing: Routing, nexthop: &str, fingerprint: &str) -> String {
    let dir = |name: &str| pf.path(name).display().to_string();
    let route = match routing {
        // Everything to Sealpost, with the TLS policy for all SMTP deliveries.
        Routing::Relayhost => format!(
            "\
relayhost = {nexthop}
smtp_tls_security_level = fingerprint
smtp_tls_fingerprint_digest = sha256
smtp_tls_fingerprint_cert_match = {fingerprint}
smtp_tls_mandatory_protocols = >=TLSv1.2
"
        ),
        // deploy/postfix.md: only the mapped domain goes to Sealpost, through the `sealpost`
        // transport that carries the TLS policy (see `master_cf`). Anything else would be
        // delivered by Postfix itself: here it bounces, so nothing can leave loopback.
        Routing::TransportMap => format!(
            "\
relayhost =
transport_maps = texthash:{transport}
default_transport = error:5.7.1 only the transport map routes in this test
",
            transport = pf.config_dir.join("transport").display(),
        ),
    };
    format!(
        "\
compatibility_level = 3.6
config_directory = {config}
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {maillog}
maillog_file_prefixes = {root}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = sealpost-test.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_transport = error:5.1.1 no local delivery
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
biff = no
smtputf8_enable = no
{route}smtp_tls_loglevel = 1
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:{sasl}
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
smtp_sasl_mechanism_filter = plain, login
",
        config = pf.config_dir.display(),
        queue = dir("queue"),
        data = dir("data"),
        maillog = dir("maillog"),
        root = pf.root.path().display(),
        sasl = pf.config_dir.join("sasl_passwd").display(),
    )
}

/// How the private instance routes mail to Sealpost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// `relayhost = [127.0.0.1]:<port>`, TLS policy in `main.cf`.
    Relayhost,
    /// deploy/postfix.md's recipe: a transport map entry `example.org
    /// sealpost:[127.0.0.1]:<port>` and a `sealpost` transport in `master.cf` with the TLS
    /// policy as `-o` options.
    TransportMap,
}

/// `MASTER_CF`, plus for [`Routing::TransportMap`] the `sealpost` transport of
/// deploy/postfix.md.
fn master_cf(routing: Routing, fingerprint: &str) -> String {
    match routing {
        Routing::Relayhost => MASTER_CF.to_owned(),
        Routing::TransportMap => format!(
            "{MASTER_CF}\
sealpost  unix  -       -       n       -       -       smtp
  -o smtp_tls_security_level=fingerprint
  -o smtp_tls_fingerprint_digest=sha256
  -o smtp_tls_fingerprint_cert_match={fingerprint}
  -o smtp_tls_mandatory_protocols=>=TLSv1.2
  -o smtp_sasl_auth_enable=yes
"
        ),
    }
}

/// `master.cf` with only the services a local injection and an outgoing relay need, none
/// chrooted (the queue directory is a temporary directory without a chroot environment) and
/// no `smtpd` listener.
const MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// A MIME message: a text part and a small binary attachment (base64, 76-column lines).
fn mime_message(attachment: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let boundary = "=_sealpost-postfix-test-5c1e";
    format!(
        "From: Clinic <{SENDER}>\n\
         To: Bob <{RECIPIENT}>\n\
         Subject: {SUBJECT}\n\
         Date: Mon, 01 Jan 2024 10:00:00 +0000\n\
         Message-ID: <postfix-test@clinic.example>\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\
         \n\
         --{boundary}\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 7bit\n\
         \n\
         {BODY_LINE}\n\
         .a line starting with a dot\n\
         \n\
         --{boundary}\n\
         Content-Type: application/octet-stream\n\
         Content-Disposition: attachment; filename=\"results.bin\"\n\
         Content-Transfer-Encoding: base64\n\
         \n\
         {}\n\
         --{boundary}--\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// Proof: a private Postfix instance relays a locally injected MIME message to Sealpost over
/// STARTTLS (certificate pinned by SHA-256 fingerprint) with SASL AUTH; Sealpost answers
/// `250 2.0.0 <id> queued`, the notification is in the outbox, and the pickup flow shows the
/// subject and text and returns the attachment byte for byte. The audit log records the relay
/// login over TLS.
#[test]
fn postfix_relays_to_sealpost_over_tls_with_auth() {
    if require_postfix().is_none() {
        return;
    }
    relay_and_pick_up(Routing::Relayhost);
}

/// Proof: deploy/postfix.md's recipe as written (a transport map entry for the recipient's
/// domain to a dedicated `sealpost` transport whose `master.cf` `-o` options pin the
/// certificate and enable SASL) relays the same way.
#[test]
fn postfix_recipe_transport_map_relays_to_sealpost() {
    if require_postfix().is_none() {
        return;
    }
    relay_and_pick_up(Routing::TransportMap);
}

/// Start Sealpost and a Postfix instance routing by `routing`, send the MIME message through
/// Postfix, and check Postfix's log, the pickup flow and Sealpost's audit log.
fn relay_and_pick_up(routing: Routing) {
    let started = Instant::now();
    let app = AppBuilder::default().spawn();
    let addr = common::smtp_addr(&app);
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    assert_eq!(host, "127.0.0.1", "Sealpost's SMTP listener is on loopback");
    let password = common::add_relay(&app, "postfix-test");

    // The fingerprint to pin, from the certificate file; Sealpost logs the same value.
    let fingerprint = pem_fingerprint(&app.data_dir.join("smtp-tls-cert.pem"));
    assert!(
        strip_ansi(&app.log()).contains(&format!("sha256={fingerprint}")),
        "Sealpost's log does not show the fingerprint {fingerprint}:\n{}",
        app.log()
    );

    let pf = Postfix::start(routing, port, &fingerprint, &password);
    let attachment = pseudo_random_bytes(3000, 4);
    pf.send(&mime_message(&attachment));

    // Postfix's queue is outside Sealpost: poll (bounded) for the notification.
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let link = loop {
        if let Some(link) = app.find_notification_link(RECIPIENT) {
            break link;
        }
        assert!(
            Instant::now() < deadline,
            "no notification in Sealpost's outbox within {DELIVERY_TIMEOUT:?}\n\
             queue:\n{}\nmail log:\n{}\nSealpost log:\n{}",
            pf.queue(),
            pf.maillog(),
            app.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("delivered after {:?}", started.elapsed());

    // Postfix's view: a verified (pinned) TLS connection, and Sealpost's 250 ... queued.
    let maillog = pf.wait_for_log("status=sent", Duration::from_secs(10));
    println!("postfix mail log:\n{maillog}");
    assert!(
        maillog.contains(&format!(
            "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{port}"
        )),
        "Postfix did not verify the pinned certificate:\n{maillog}"
    );
    let sent = maillog
        .lines()
        .find(|l| l.contains("status=sent"))
        .unwrap_or_else(|| panic!("no status=sent in the mail log:\n{maillog}"));
    assert!(
        sent.contains(&format!("relay=127.0.0.1[127.0.0.1]:{port}"))
            && sent.contains("(250 2.0.0 ")
            && sent.contains(" queued)"),
        "{sent}"
    );

    // The pickup flow.
    let got = app.pick_up(&link, RECIPIENT);
    assert!(got.text.contains(SUBJECT), "subject: {}", got.text);
    assert!(got.text.contains(SENDER), "sender: {}", got.text);
    assert!(got.text.contains(BODY_LINE), "text: {}", got.text);
    assert!(
        got.text.contains(".a line starting with a dot"),
        "dot-unstuffed text: {}",
        got.text
    );
    assert_eq!(got.names(), ["results.bin", "original.eml"]);
    assert!(
        got.file("results.bin") == attachment,
        "attachment bytes differ"
    );

    // Sealpost's audit log: the relay logged in (over TLS: `tls=yes`) and the message came in.
    let events = app.audit_events();
    let login = events
        .iter()
        .find(|e| e["action"] == "relay_authenticated")
        .unwrap_or_else(|| panic!("no relay_authenticated event: {events:?}"));
    let login_text = login.to_string();
    assert!(
        login_text.contains("relay:postfix-test")
            && login_text.contains("smtp helo=sealpost-test.localdomain tls=yes")
            && login["ip"] == "127.0.0.1",
        "{login}"
    );
    app.assert_audited(None, &["message_submitted", "notification_sent"]);
    assert!(
        !events
            .iter()
            .any(|e| e["action"] == "smtp_refused" || e["action"] == "relay_auth_failed"),
        "{events:?}"
    );
    app.assert_audit_verifies();
    println!("total {:?}", started.elapsed());
}

/// Proof that the pin is enforced: with a fingerprint that is not Sealpost's certificate,
/// Postfix refuses the TLS session before AUTH (it never sends the password), defers the
/// message, and nothing reaches Sealpost: no AUTH attempt (neither a login nor a failed one is
/// audited), no message, an empty outbox.
#[test]
fn postfix_with_a_wrong_pin_does_not_relay() {
    if require_postfix().is_none() {
        return;
    }
    let app = AppBuilder::default().spawn();
    let addr = common::smtp_addr(&app);
    let (_, port) = addr.rsplit_once(':').expect("host:port");
    let password = common::add_relay(&app, "postfix-test");
    let real = pem_fingerprint(&app.data_dir.join("smtp-tls-cert.pem"));
    let wrong = vec!["00"; 32].join(":");
    assert_ne!(real, wrong);

    let pf = Postfix::start(Routing::Relayhost, port, &wrong, &password);
    pf.send(&mime_message(b"must not arrive"));
    let maillog = pf.wait_for_log("status=deferred", DELIVERY_TIMEOUT);
    println!("postfix mail log:\n{maillog}");
    assert!(
        maillog.contains("Server certificate not verified"),
        "{maillog}"
    );
    assert!(!maillog.contains("status=sent"), "{maillog}");
    assert!(app.outbox().is_empty(), "a notification went out");
    let events = app.audit_events();
    assert!(
        !events.iter().any(|e| e["action"] == "relay_authenticated"
            || e["action"] == "relay_auth_failed"
            || e["action"] == "message_submitted"),
        "{events:?}"
    );
}
