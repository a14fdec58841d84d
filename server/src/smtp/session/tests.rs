//! Session tests over `tokio::io::duplex`, against a real migrated SQLite store and file outbox
//! in a temp dir ([`TestApp`]). `cmd("MAIL FROM:<a@b>", 250)` sends one line and checks the
//! reply code.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

use super::{Outcome, Session, State};
use crate::app::AppState;
use crate::config::Config;
use crate::smtp::{DataBudget, Limits, SmtpContext};
use crate::store::testing as rows;
use crate::testing::{TestApp, TestAppBuilder};

mod unauthenticated;

type TestResult = Result<(), Box<dyn StdError>>;

const RELAY: &str = "postfix-1";
const PASSWORD: &str = "correct horse battery staple";
const MAX_BYTES: u64 = 8 * 1024;
const MAX_RCPTS: u32 = 3;

struct Env {
    app: AppState,
    ctx: SmtpContext,
    config: Config,
    test: TestApp,
}

async fn env() -> Result<Env, Box<dyn StdError>> {
    env_with(TestApp::builder()).await
}

/// An instance with small limits and the relay [`RELAY`], and an SMTP context over it with
/// the STARTTLS acceptor and a short command timeout.
async fn env_with(settings: TestAppBuilder) -> Result<Env, Box<dyn StdError>> {
    let test = settings
        .set("max_message_bytes", MAX_BYTES)
        .set("max_recipients", MAX_RCPTS)
        .build()
        .await?;
    test.add_relay(RELAY, PASSWORD).await?;
    let config = test.config().clone();
    let (acceptor, _) = crate::tls::smtp_acceptor(&config)?;
    let mut limits = Limits::from_config(&config);
    limits.command_timeout = Duration::from_secs(5);
    let state = test.state().clone();
    let ctx = SmtpContext::new(state.clone(), Some(acceptor), limits);
    Ok(Env {
        app: state,
        ctx,
        config,
        test,
    })
}

/// The client end of a session running in a task.
struct Client {
    io: BufReader<DuplexStream>,
    task: JoinHandle<std::io::Result<Outcome<DuplexStream>>>,
}

impl Client {
    /// A session from `peer`; `tls`: as if STARTTLS had already been done. Reads the greeting.
    async fn start(ctx: &SmtpContext, peer: &str, tls: bool) -> Result<Self, Box<dyn StdError>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: IpAddr = peer.parse()?;
        let session = Session::new(server, ctx.clone(), State::new(peer, tls, ctx, None));
        let task = tokio::spawn(session.run(true));
        let mut c = Self {
            io: BufReader::new(client),
            task,
        };
        let (code, _) = c.read_reply().await?;
        assert_eq!(code, 220, "greeting");
        Ok(c)
    }

    /// A TLS session that said EHLO and authenticated.
    async fn authenticated(ctx: &SmtpContext) -> Result<Self, Box<dyn StdError>> {
        let mut c = Self::start(ctx, "192.0.2.10", true).await?;
        c.cmd("EHLO relay.example.org", 250).await?;
        let plain = STANDARD.encode(format!("\0{RELAY}\0{PASSWORD}"));
        c.cmd(&format!("AUTH PLAIN {plain}"), 235).await?;
        Ok(c)
    }

    async fn send(&mut self, raw: &str) -> std::io::Result<()> {
        self.io.get_mut().write_all(raw.as_bytes()).await
    }

    /// One (possibly multi-line) reply: its code and its lines' texts joined by `\n`.
    async fn read_reply(&mut self) -> Result<(u16, String), Box<dyn StdError>> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
                .await??;
            if n == 0 {
                return Err("connection closed while waiting for a reply".into());
            }
            let code: u16 = line.get(..3).ok_or("short reply")?.parse()?;
            text.push(line.get(4..).unwrap_or_default().trim_end().to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text.join("\n")));
            }
        }
    }

    /// Send one command line and check the reply code; returns the reply text.
    async fn cmd(&mut self, line: &str, code: u16) -> Result<String, Box<dyn StdError>> {
        self.send(&format!("{line}\r\n")).await?;
        let (got, text) = self.read_reply().await?;
        assert_eq!(got, code, "{line:?} answered {got} {text}");
        Ok(text)
    }

    /// `DATA`, expect 354, send `message` (ending in `CRLF . CRLF`); the reply to its end.
    async fn data(&mut self, message: &str) -> Result<(u16, String), Box<dyn StdError>> {
        self.cmd("DATA", 354).await?;
        self.send(message).await?;
        self.read_reply().await
    }

    /// The session's end (after QUIT or a 421).
    async fn finished(self) -> Result<Outcome<DuplexStream>, Box<dyn StdError>> {
        Ok(tokio::time::timeout(Duration::from_secs(10), self.task).await???)
    }
}

impl Env {
    /// Mails in the outbox.
    fn outbox_count(&self) -> Result<usize, Box<dyn StdError>> {
        Ok(self.test.outbox()?.len())
    }

    async fn message_count(&self) -> Result<i64, Box<dyn StdError>> {
        Ok(rows::count_rows(&self.app.store, "messages").await?)
    }

    /// Every audit event with this action, in order.
    async fn audited(&self, action: &str) -> Result<Vec<Audited>, Box<dyn StdError>> {
        Ok(rows::audited(&self.app.store, action)
            .await?
            .into_iter()
            .map(|r| Audited {
                ip: r.ip.unwrap_or_default(),
                detail: r.detail,
            })
            .collect())
    }
}

/// What the SMTP tests check of an audit event: the client's IP and the detail text.
#[derive(Debug)]
struct Audited {
    ip: String,
    detail: String,
}

const MESSAGE: &str = concat!(
    "From: Ann Example <ann@clinic.example>\r\n",
    "To: bob@example.net\r\n",
    "Subject: =?utf-8?q?Befund_f=C3=BCr_Sie?=\r\n",
    "MIME-Version: 1.0\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n",
    "\r\n",
    "--b\r\n",
    "Content-Type: text/plain; charset=utf-8\r\n",
    "\r\n",
    "Hello Bob\r\n",
    "..a line that starts with a dot\r\n",
    "--b\r\n",
    "Content-Type: text/csv; name=lab.csv\r\n",
    "Content-Disposition: attachment; filename=lab.csv\r\n",
    "\r\n",
    "a,b\r\n",
    "--b--\r\n",
    ".\r\n",
);

#[tokio::test]
async fn ehlo_advertises_extensions_and_auth_only_after_tls() -> TestResult {
    let env = env().await?;
    let mut plain = Client::start(&env.ctx, "192.0.2.10", false).await?;
    let ehlo = plain.cmd("EHLO relay.example.org", 250).await?;
    for ext in [
        "PIPELINING",
        "SIZE 8192",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(ehlo.lines().any(|l| l == ext), "{ext} missing: {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "AUTH offered before TLS: {ehlo}");
    plain.cmd("HELO relay.example.org", 250).await?;

    let mut tls = Client::start(&env.ctx, "192.0.2.10", true).await?;
    let ehlo = tls.cmd("EHLO relay.example.org", 250).await?;
    assert!(ehlo.lines().any(|l| l == "AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "STARTTLS offered twice: {ehlo}");
    tls.cmd("STARTTLS", 503).await?;
    Ok(())
}

#[tokio::test]
async fn auth_and_mail_before_starttls_are_refused_and_audited() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.10", false).await?;
    c.cmd("EHLO relay.example.org", 250).await?;
    let plain = STANDARD.encode(format!("\0{RELAY}\0{PASSWORD}"));
    let text = c.cmd(&format!("AUTH PLAIN {plain}"), 530).await?;
    assert!(
        text.starts_with("5.7.0 Must issue a STARTTLS command first"),
        "{text}"
    );
    let text = c.cmd("MAIL FROM:<ann@clinic.example>", 530).await?;
    assert!(text.starts_with("5.7.0"), "{text}");
    c.cmd("QUIT", 221).await?;
    let refused = env.audited("smtp_refused").await?;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|e| e.ip == "192.0.2.10"), "{refused:?}");
    assert!(
        refused[0].detail.contains("AUTH before STARTTLS"),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn starttls_hands_the_stream_back_and_drops_pipelined_input() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.10", false).await?;
    c.cmd("EHLO relay.example.org", 250).await?;
    // A command injected behind STARTTLS in the same packet must not be answered.
    c.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        .await?;
    let (code, text) = c.read_reply().await?;
    assert_eq!(code, 220, "{text}");
    match c.finished().await? {
        Outcome::StartTls(_, state) => {
            assert!(!state.tls && state.tx.is_none());
            let after = state.after_tls();
            assert!(after.tls && after.helo.is_none() && after.auth.is_none());
        }
        Outcome::Closed => return Err("expected the STARTTLS outcome".into()),
    }
    Ok(())
}

#[tokio::test]
async fn open_relay_attempt_is_refused() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "203.0.113.9", true).await?;
    c.cmd("EHLO spammer.example", 250).await?;
    let text = c.cmd("MAIL FROM:<someone@anywhere.example>", 530).await?;
    assert!(text.starts_with("5.7.0 Authentication required"), "{text}");
    c.cmd("RCPT TO:<victim@example.net>", 503).await?;
    c.cmd("DATA", 503).await?;
    c.cmd("QUIT", 221).await?;
    let refused = env.audited("smtp_refused").await?;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].ip, "203.0.113.9");
    assert!(
        refused[0].detail.contains("without authentication"),
        "{refused:?}"
    );
    assert_eq!(env.message_count().await?, 0);
    Ok(())
}

#[tokio::test]
async fn auth_plain_and_login_check_relay_credentials() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.10", true).await?;
    c.cmd("AUTH PLAIN AHgAeQ==", 503).await?; // before EHLO
    c.cmd("EHLO relay.example.org", 250).await?;
    let wrong = STANDARD.encode(format!("\0{RELAY}\0not it"));
    let text = c.cmd(&format!("AUTH PLAIN {wrong}"), 535).await?;
    assert!(text.starts_with("5.7.8"), "{text}");
    let unknown = STANDARD.encode(format!("\0nobody\0{PASSWORD}"));
    c.cmd(&format!("AUTH PLAIN {unknown}"), 535).await?;
    c.cmd("AUTH PLAIN !!!", 501).await?;
    c.cmd("AUTH CRAM-MD5", 504).await?;
    // PLAIN without an initial response, cancelled.
    c.cmd("AUTH PLAIN", 334).await?;
    c.cmd("*", 501).await?;
    // LOGIN, step by step.
    let user_prompt = c.cmd("AUTH LOGIN", 334).await?;
    assert_eq!(STANDARD.decode(user_prompt)?, b"Username:");
    c.cmd(&STANDARD.encode(RELAY), 334).await?;
    c.cmd(&STANDARD.encode(PASSWORD), 235).await?;
    c.cmd("AUTH LOGIN", 503).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    let failed = env.audited("relay_auth_failed").await?;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|e| e.ip == "192.0.2.10" && !e.detail.contains("not it"))
    );
    assert_eq!(env.audited("relay_authenticated").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_message_is_committed_and_notified_before_250() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    c.cmd("MAIL FROM:<ann@clinic.example> SIZE=600 BODY=8BITMIME", 250)
        .await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    c.cmd("RCPT TO:<carol@example.net>", 250).await?;
    let (code, text) = c.data(MESSAGE).await?;
    assert_eq!(code, 250, "{text}");
    let id = text
        .strip_prefix("2.0.0 ")
        .and_then(|t| t.strip_suffix(" queued"))
        .ok_or(format!("unexpected 250 text {text:?}"))?;
    uuid::Uuid::parse_str(id)?;
    // By the time of the 250, both notifications are in the outbox and the message is ready.
    assert_eq!(env.outbox_count()?, 2);
    let stored = rows::messages(&env.app.store).await?;
    let stored: Vec<_> = stored.iter().filter(|m| m.id == id).collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (
            stored[0].state.as_str(),
            stored[0].source.as_str(),
            stored[0].sender_address.as_str()
        ),
        ("ready", "smtp", "ann@clinic.example")
    );
    let submitted = env.audited("message_submitted").await?;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].ip, "192.0.2.10");
    // The session goes on: a second transaction.
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RSET", 250).await?;
    c.cmd("QUIT", 221).await?;
    assert!(matches!(c.finished().await?, Outcome::Closed));
    Ok(())
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    c.send(concat!(
        "MAIL FROM:<ann@clinic.example>\r\n",
        "RCPT TO:<bob@example.net>\r\n",
        "RCPT TO:<not an address>\r\n",
        "RCPT TO:<carol@example.net>\r\n",
        "DATA\r\n",
    ))
    .await?;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(c.read_reply().await?.0);
    }
    assert_eq!(codes, [250, 250, 501, 250, 354]);
    c.send(&format!("{MESSAGE}NOOP\r\nQUIT\r\n")).await?;
    assert_eq!(c.read_reply().await?.0, 250);
    assert_eq!(c.read_reply().await?.0, 250);
    assert_eq!(c.read_reply().await?.0, 221);
    assert_eq!(env.outbox_count()?, 2);
    Ok(())
}

#[tokio::test]
async fn commands_out_of_order_get_503() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.10", true).await?;
    let text = c.cmd("MAIL FROM:<ann@clinic.example>", 503).await?;
    assert!(text.starts_with("5.5.1"), "{text}");
    c.cmd("EHLO relay.example.org", 250).await?;
    let plain = STANDARD.encode(format!("\0{RELAY}\0{PASSWORD}"));
    c.cmd(&format!("AUTH PLAIN {plain}"), 235).await?;
    c.cmd("RCPT TO:<bob@example.net>", 503).await?;
    c.cmd("DATA", 503).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 503).await?;
    let text = c.cmd("DATA", 554).await?;
    assert!(text.starts_with("5.5.1 No valid recipients"), "{text}");
    // EHLO resets the transaction.
    c.cmd("EHLO relay.example.org", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 503).await?;
    Ok(())
}

#[tokio::test]
async fn bad_syntax_and_unknown_commands() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    let text = c.cmd("FOO bar", 500).await?;
    assert!(text.starts_with("5.5.1"), "{text}");
    c.cmd("EHLO", 501).await?;
    c.cmd("MAIL FROM:ann@clinic.example", 501).await?;
    c.cmd("MAIL FROM:<not-an-address>", 553).await?;
    c.cmd("MAIL FROM:<>", 553).await?;
    c.cmd("MAIL FROM:<ann@clinic.example> SIZE=abc", 501)
        .await?;
    c.cmd("MAIL FROM:<ann@clinic.example> BODY=BINARYMIME", 555)
        .await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    let text = c.cmd("RCPT TO:<bob@@example.net>", 501).await?;
    assert!(text.starts_with("5.1.3"), "{text}");
    c.cmd("NOOP", 250).await?;
    // Errors count toward the session's limit; a fresh session for the rest.
    let mut c = Client::authenticated(&env.ctx).await?;
    c.cmd("EXPN staff", 502).await?;
    c.cmd("LHLO relay.example.org", 500).await?;
    c.cmd(&format!("NOOP {}", "x".repeat(5000)), 500).await?;
    c.cmd("NOOP", 250).await?;
    Ok(())
}

#[tokio::test]
async fn misc_verbs() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.10", false).await?;
    c.cmd("NOOP", 250).await?;
    c.cmd("RSET", 250).await?;
    c.cmd("VRFY bob", 252).await?;
    c.cmd("HELP", 214).await?;
    c.cmd("QUIT", 221).await?;
    assert!(matches!(c.finished().await?, Outcome::Closed));
    Ok(())
}

#[tokio::test]
async fn oversize_messages_get_552_and_nothing_is_kept() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    let text = c
        .cmd("MAIL FROM:<ann@clinic.example> SIZE=100000", 552)
        .await?;
    assert!(text.starts_with("5.3.4"), "{text}");
    // No SIZE declared: the limit holds while reading.
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    c.cmd("DATA", 354).await?;
    let line = format!("{}\r\n", "x".repeat(998));
    let mut body = String::from("Subject: big\r\n\r\n");
    for _ in 0..20 {
        body.push_str(&line);
    }
    body.push_str(".\r\n");
    c.send(&body).await?;
    let (code, text) = c.read_reply().await?;
    assert_eq!((code, text.get(..5)), (552, Some("5.3.4")), "{text}");
    // The session is still in step.
    c.cmd("NOOP", 250).await?;
    assert_eq!(env.message_count().await?, 0);
    assert_eq!(env.outbox_count()?, 0);
    Ok(())
}

/// The memory for messages being received is shared by all sessions: while others hold it
/// all, a transfer is read to its end, refused with `452 4.3.1` (try later) and nothing is
/// kept; once it is free again the same message is accepted.
#[tokio::test]
async fn data_beyond_the_shared_memory_budget_gets_452_then_succeeds() -> TestResult {
    let env = env().await?;
    let mut limits = Limits::from_config(&env.config);
    limits.command_timeout = Duration::from_secs(5);
    // Enough for one message's buffer and its decoded parts, nothing more.
    const BUDGET: u64 = 128 * 1024;
    limits.data_memory_bytes = BUDGET;
    let ctx = SmtpContext::new(env.app.clone(), env.ctx.tls.clone(), limits);
    // Other sessions' messages hold the whole budget.
    let mut others = DataBudget::empty();
    assert!(ctx.data_budget.reserve(&mut others, BUDGET as usize));
    let mut c = Client::authenticated(&ctx).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    let (code, text) = c.data(MESSAGE).await?;
    assert_eq!((code, text.get(..5)), (452, Some("4.3.1")), "{text}");
    c.cmd("NOOP", 250).await?;
    assert_eq!(env.message_count().await?, 0);
    assert_eq!(env.outbox_count()?, 0);

    drop(others);
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    let (code, text) = c.data(MESSAGE).await?;
    assert_eq!(code, 250, "{text}");
    assert_eq!(env.message_count().await?, 1);
    // The message's memory was returned once it was stored.
    let mut all = DataBudget::empty();
    assert!(ctx.data_budget.reserve(&mut all, BUDGET as usize));
    Ok(())
}

/// The budget counts what a transfer really holds (the receive buffer's capacity, then the
/// decoded parts beside it while it is stored), not the message's size: a 200 KiB message does
/// not fit a 300 KiB budget (`452`), although its size alone would; a 1 MiB budget lets it
/// through to the submission, whose own size limit (this instance's small one) then refuses it
/// with `552`, a refusal that is not about memory.
#[tokio::test]
async fn the_memory_budget_counts_what_a_transfer_holds() -> TestResult {
    let env = env().await?;
    let body = format!(
        "Subject: big\r\n\r\n{}.\r\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(3_200)
    );
    assert!((200 << 10..210 << 10).contains(&body.len()));
    for (budget, expected) in [(300_u64 << 10, 452), (1 << 20, 552)] {
        let mut limits = Limits::from_config(&env.config);
        limits.data_memory_bytes = budget;
        limits.max_message_bytes = 1 << 20;
        let ctx = SmtpContext::new(env.app.clone(), env.ctx.tls.clone(), limits);
        let mut c = Client::authenticated(&ctx).await?;
        c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
        c.cmd("RCPT TO:<bob@example.net>", 250).await?;
        c.cmd("DATA", 354).await?;
        c.send(&body).await?;
        let (code, text) = c.read_reply().await?;
        assert_eq!(code, expected, "budget {budget}: {text}");
    }
    assert_eq!(env.message_count().await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_too_long_data_line_is_drained_and_refused() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    c.cmd("DATA", 354).await?;
    c.send(&format!(
        "Subject: x\r\n\r\n{}\r\nok\r\n.\r\n",
        "y".repeat(1500)
    ))
    .await?;
    let (code, text) = c.read_reply().await?;
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("4.5.3.1.6"), "{text}");
    c.cmd("NOOP", 250).await?;
    assert_eq!(env.message_count().await?, 0);
    Ok(())
}

#[tokio::test]
async fn too_many_recipients_get_452() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    for i in 0..MAX_RCPTS {
        c.cmd(&format!("RCPT TO:<r{i}@example.net>"), 250).await?;
    }
    let text = c.cmd("RCPT TO:<one-more@example.net>", 452).await?;
    assert!(text.starts_with("4.5.3"), "{text}");
    assert_eq!(c.data(MESSAGE).await?.0, 250);
    assert_eq!(env.outbox_count()?, MAX_RCPTS as usize);
    Ok(())
}

#[tokio::test]
async fn too_many_errors_close_the_session() -> TestResult {
    let env = env().await?;
    let mut c = Client::start(&env.ctx, "192.0.2.66", false).await?;
    for _ in 0..crate::smtp::MAX_BAD_COMMANDS {
        c.cmd("WHAT", 500).await?;
    }
    let (code, text) = c.read_reply().await?;
    assert_eq!(code, 421, "{text}");
    assert!(matches!(c.finished().await?, Outcome::Closed));
    let refused = env.audited("smtp_refused").await?;
    assert!(
        refused
            .iter()
            .any(|e| e.ip == "192.0.2.66" && e.detail.contains("too many errors"))
    );
    Ok(())
}

#[tokio::test]
async fn idle_sessions_time_out_with_421() -> TestResult {
    let env = env().await?;
    let mut limits = (*env.ctx.limits).clone();
    limits.command_timeout = Duration::from_millis(100);
    let ctx = SmtpContext::new(env.app.clone(), None, limits);
    let mut c = Client::start(&ctx, "192.0.2.10", false).await?;
    let (code, text) = c.read_reply().await?;
    assert_eq!((code, text.get(..5)), (421, Some("4.4.2")), "{text}");
    assert!(matches!(c.finished().await?, Outcome::Closed));
    Ok(())
}

#[tokio::test]
async fn allowed_networks_and_sender_domains() -> TestResult {
    let env = env_with(
        TestApp::builder()
            .set("smtp_allowed_networks", ["10.0.0.0/8"])
            .set("smtp_allowed_sender_domains", ["clinic.example"]),
    )
    .await?;
    let mut c = Client::start(&env.ctx, "10.1.2.3", true).await?;
    c.cmd("EHLO exchange.clinic.example", 250).await?;
    c.cmd("MAIL FROM:<ann@other.example>", 550).await?;
    c.cmd("MAIL FROM:<ann@Clinic.Example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    assert_eq!(c.data(MESSAGE).await?.0, 250);
    // Outside the network, the same client needs AUTH.
    let mut outside = Client::start(&env.ctx, "11.1.2.3", true).await?;
    outside.cmd("EHLO exchange.clinic.example", 250).await?;
    outside.cmd("MAIL FROM:<ann@clinic.example>", 530).await?;
    let refused = env.audited("smtp_refused").await?;
    assert!(
        refused
            .iter()
            .any(|e| e.ip == "10.1.2.3" && e.detail.contains("sender domain"))
    );
    Ok(())
}

#[tokio::test]
async fn plaintext_is_relaxed_for_loopback_only() -> TestResult {
    let env = env_with(TestApp::builder().set("smtp_allow_loopback_plaintext", true)).await?;
    let mut local = Client::start(&env.ctx, "127.0.0.1", false).await?;
    let ehlo = local.cmd("EHLO localhost", 250).await?;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    let plain = STANDARD.encode(format!("\0{RELAY}\0{PASSWORD}"));
    local.cmd(&format!("AUTH PLAIN {plain}"), 235).await?;
    local.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;

    let mut remote = Client::start(&env.ctx, "192.0.2.10", false).await?;
    let ehlo = remote.cmd("EHLO relay.example.org", 250).await?;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    remote.cmd(&format!("AUTH PLAIN {plain}"), 530).await?;
    // An IPv4-mapped IPv6 loopback is loopback too, but a public one is not.
    let mut mapped = Client::start(&env.ctx, "::ffff:127.0.0.1", false).await?;
    mapped.cmd("EHLO localhost", 250).await?;
    mapped.cmd(&format!("AUTH PLAIN {plain}"), 235).await?;
    Ok(())
}

#[tokio::test]
async fn a_message_that_is_not_mime_is_refused_with_554() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    let (code, text) = c.data(".\r\n").await?;
    assert_eq!((code, text.get(..5)), (554, Some("5.6.0")), "{text}");
    assert_eq!(env.message_count().await?, 0);
    Ok(())
}

/// Proof: `X-Sealpost-Expires: 2w` sets the expiry (14 days) of a relayed message, and a
/// subject's `[expires 3d]` tag does when there is no header (the tag leaves the subject); an
/// unreadable value is refused with `550 5.6.0`-class reply naming the header, and nothing is
/// stored.
#[tokio::test]
async fn sender_options_in_headers_and_subject_set_the_expiry() -> TestResult {
    let env = env().await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    let mut send = async |head: &str| -> Result<(u16, String), Box<dyn StdError>> {
        c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
        c.cmd("RCPT TO:<bob@example.net>", 250).await?;
        let message =
            format!("From: ann@clinic.example\r\nTo: bob@example.net\r\n{head}\r\nhello\r\n.\r\n");
        c.data(&message).await
    };
    let queued = |text: &str| {
        text.strip_prefix("2.0.0 ")
            .and_then(|t| t.strip_suffix(" queued"))
            .map(str::to_owned)
            .ok_or(format!("unexpected reply {text:?}"))
    };
    let (code, text) = send("X-Sealpost-Expires: 2w\r\nSubject: results\r\n").await?;
    assert_eq!(code, 250, "{text}");
    let by_header = queued(&text)?;
    let (code, text) = send("Subject: results [expires 3d]\r\n").await?;
    assert_eq!(code, 250, "{text}");
    let by_tag = queued(&text)?;
    assert_eq!(rows::lifetime_days(&env.app.store, &by_header).await?, 14);
    assert_eq!(rows::lifetime_days(&env.app.store, &by_tag).await?, 3);

    let stored = env.message_count().await?;
    let (code, text) = send("X-Sealpost-Expires: soon\r\nSubject: s\r\n").await?;
    assert!((500..600).contains(&code), "{code} {text}");
    assert!(text.contains("X-Sealpost-Expires"), "{text}");
    assert_eq!(env.message_count().await?, stored);
    Ok(())
}
