//! Black-box tests of the real `sealpost` binary in a temporary directory.

#![expect(
    clippy::disallowed_methods,
    reason = "black-box tests read the environment and inspect the database file directly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A `sealpost` command isolated in `dir`: no inherited `SEALPOST_*` variables, data in
/// `dir/data`, no config file.
fn sealpost(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealpost"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEALPOST_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .env("SEALPOST_DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "warn");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
    sealpost(dir).args(args).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn user_token_audit_verify_and_tampering() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();

    let out = run(
        dir,
        &[
            "user",
            "add",
            "--email",
            "sender@example.org",
            "--role",
            "sender",
        ],
    )?;
    assert!(
        out.status.success(),
        "user add failed: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("password: "), "{stdout}");

    let out = run(
        dir,
        &[
            "user",
            "add",
            "--email",
            "SENDER@example.org",
            "--role",
            "admin",
        ],
    )?;
    assert_eq!(out.status.code(), Some(2), "duplicate email must fail");
    assert!(text(&out.stderr).contains("already exists"));

    let out = run(dir, &["token", "create", "--email", "sender@example.org"])?;
    assert!(
        out.status.success(),
        "token create failed: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let token = stdout.lines().last().ok_or("no output")?.trim().to_owned();
    assert!(
        token.starts_with("sp_") && token.len() > 40,
        "token line: {token:?}"
    );

    let out = run(dir, &["user", "list"])?;
    assert!(text(&out.stdout).contains("sender@example.org\tsender\tactive"));

    let out = run(dir, &["audit", "verify"])?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("audit chain ok: 2 events"));

    let out = run(dir, &["audit", "export", "--format", "jsonl"])?;
    assert!(out.status.success());
    let exported = text(&out.stdout);
    assert_eq!(exported.lines().count(), 2, "{exported}");
    assert!(exported.contains("\"action\":\"token_created\""));
    assert!(
        !exported.contains(&token),
        "token leaked into the audit log"
    );

    // Only the token's SHA-256 is stored.
    let db = dir.join("data").join("sealpost.db");
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&db))
            .await?;
    let (stored,): (Vec<u8>,) = sqlx::query_as("SELECT token_hash FROM api_tokens")
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        stored,
        sealpost_crypto::hash::sha256(token.as_bytes()).to_vec()
    );

    // Tamper with event 2 (the token creation): verify must fail naming seq 2.
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .execute(&pool)
        .await?;
    pool.close().await;

    let out = run(dir, &["audit", "verify"])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("audit chain broken at seq 2"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

/// Kills the child if the test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

fn http_get(addr: &str, path: &str) -> Result<String, std::io::Error> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn serve_answers_healthz_and_stops_on_sigterm() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let child = sealpost(tmp.path())
        .arg("serve")
        .env("SEALPOST_HTTP_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut server = Server(child);
    let stdout = server.0.stdout.take().ok_or("no stdout")?;

    // Read stdout on a thread so a hung server fails the test instead of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(60))?;
        if let Some(addr) = line.strip_prefix("listening http=") {
            break addr.trim().to_owned();
        }
        lines.push(line);
    };
    assert!(
        lines
            .iter()
            .any(|l| l.contains("created first admin admin@localhost")),
        "first-run admin not announced: {lines:?}"
    );

    let response = http_get(&addr, "/healthz")?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    let response = http_get(&addr, "/no-such-page")?;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    // Graceful shutdown on SIGTERM.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()?;
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.0.try_wait()? {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            return Err("server did not stop after SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");

    // A second start does not create another admin.
    let out = run(tmp.path(), &["user", "list"])?;
    assert_eq!(text(&out.stdout).matches("admin@localhost").count(), 1);
    Ok(())
}

#[test]
fn serve_refuses_plain_http_on_a_public_address() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = sealpost(tmp.path())
        .arg("serve")
        .env("SEALPOST_HTTP_ADDR", "0.0.0.0:0")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refusing to serve plain HTTP"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("listening"));
    Ok(())
}

#[test]
fn invalid_config_fails_fast() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = sealpost(tmp.path())
        .args(["audit", "verify"])
        .env("SEALPOST_MAX_RECIPIENTS", "lots")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("SEALPOST_MAX_RECIPIENTS"));
    assert!(
        !tmp.path().join("data").exists(),
        "nothing created on a config error"
    );
    Ok(())
}
