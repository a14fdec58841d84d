//! The bounds on a session that has not authenticated: a number of commands and a lifetime,
//! then `421 4.7.0` and close; neither applies once the session authenticated, nor to clients
//! of `smtp_allowed_networks`.

use std::time::Duration;

use super::{Client, MESSAGE, TestResult, env_with};
use crate::smtp::Outcome;
use crate::testing::TestApp;

/// Proof: a session that only sends NOOP (or RSET, HELP, unknown commands) before AUTH gets
/// `421 4.7.0` on the command after `smtp_unauthenticated_max_commands` and is closed.
#[tokio::test]
async fn noop_flood_before_auth_is_closed_with_421() -> TestResult {
    let env = env_with(TestApp::builder().set("smtp_unauthenticated_max_commands", 5)).await?;
    let mut c = Client::start(&env.ctx, "192.0.2.20", false).await?;
    c.cmd("NOOP", 250).await?;
    c.cmd("RSET", 250).await?;
    c.cmd("HELP", 214).await?;
    c.cmd("WHAT", 500).await?;
    c.cmd("NOOP", 250).await?;
    let text = c.cmd("NOOP", 421).await?;
    assert!(
        text.starts_with("4.7.0 Too many commands without authentication"),
        "{text}"
    );
    assert!(matches!(c.finished().await?, Outcome::Closed));
    Ok(())
}

/// Proof: commands do not extend an unauthenticated session's lifetime: a client sending NOOP
/// as fast as it can (far under the command cap, and each well within the command timeout)
/// gets `421 4.7.0` once `smtp_unauthenticated_timeout_secs` has passed; a silent one gets the
/// same, not the command timeout's `4.4.2`.
#[tokio::test]
async fn noop_does_not_keep_an_unauthenticated_session_alive() -> TestResult {
    let env = env_with(
        TestApp::builder()
            .set("smtp_unauthenticated_timeout_secs", 1)
            .set("smtp_unauthenticated_max_commands", u32::MAX),
    )
    .await?;
    let mut c = Client::start(&env.ctx, "192.0.2.21", false).await?;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // The server may already have answered 421 and closed: then this write fails, and
            // the reply is still there to read.
            c.send("NOOP\r\n").await.ok();
            let (code, text) = c.read_reply().await?;
            if code != 250 {
                return Ok::<_, Box<dyn std::error::Error>>((code, text));
            }
        }
    })
    .await;
    let (code, text) = closed.map_err(|_| "NOOP kept the session alive")??;
    assert_eq!(code, 421, "{text}");
    assert!(
        text.starts_with("4.7.0 Authentication not completed in time"),
        "{text}"
    );
    assert!(matches!(c.finished().await?, Outcome::Closed));

    let mut silent = Client::start(&env.ctx, "192.0.2.22", false).await?;
    let (code, text) = silent.read_reply().await?;
    assert_eq!((code, text.get(..5)), (421, Some("4.7.0")), "{text}");
    Ok(())
}

/// Proof: once authenticated (AUTH over TLS), a session is no longer bounded: with the
/// smallest command cap it sends many more commands and delivers. A client of
/// `smtp_allowed_networks`, which relays without AUTH, is never bounded.
#[tokio::test]
async fn authenticated_and_allowed_network_sessions_are_not_bounded() -> TestResult {
    let env = env_with(
        TestApp::builder()
            .set("smtp_unauthenticated_max_commands", 4)
            .set("smtp_allowed_networks", ["10.0.0.0/8"]),
    )
    .await?;
    let mut c = Client::authenticated(&env.ctx).await?;
    for _ in 0..10 {
        c.cmd("NOOP", 250).await?;
    }
    c.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    c.cmd("RCPT TO:<bob@example.net>", 250).await?;
    assert_eq!(c.data(MESSAGE).await?.0, 250);

    let mut allowed = Client::start(&env.ctx, "10.1.2.3", true).await?;
    allowed.cmd("EHLO exchange.clinic.example", 250).await?;
    for _ in 0..10 {
        allowed.cmd("NOOP", 250).await?;
    }
    allowed.cmd("MAIL FROM:<ann@clinic.example>", 250).await?;
    allowed.cmd("RCPT TO:<bob@example.net>", 250).await?;
    assert_eq!(allowed.data(MESSAGE).await?.0, 250);
    assert_eq!(env.message_count().await?, 2);
    Ok(())
}
