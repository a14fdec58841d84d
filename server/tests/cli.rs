//! Black-box tests of the real `sealpost` binary's command line in a temporary directory:
//! commands, exit codes, and `serve` starting and stopping.

mod common;

use common::{AppBuilder, Db, sealpost, text};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `sealpost <args>` with data in `dir/data` (see [`common::cli`]).
fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::cli(&dir.join("data"), args)
}

#[test]
fn user_token_audit_verify_and_tampering() -> TestResult {
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
    );
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
    );
    assert_eq!(out.status.code(), Some(2), "duplicate email must fail");
    assert!(text(&out.stderr).contains("already exists"));

    let out = run(dir, &["token", "create", "--email", "sender@example.org"]);
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

    let out = run(dir, &["user", "list"]);
    assert!(text(&out.stdout).contains("sender@example.org\tsender\tactive"));

    let out = run(dir, &["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("audit chain ok: 2 events"));

    let out = run(dir, &["audit", "export", "--format", "jsonl"]);
    assert!(out.status.success());
    let exported = text(&out.stdout);
    assert_eq!(exported.lines().count(), 2, "{exported}");
    assert!(exported.contains("\"action\":\"token_created\""));
    assert!(
        !exported.contains(&token),
        "token leaked into the audit log"
    );

    // Only the token's SHA-256 is stored.
    let db = Db::writable(&dir.join("data").join("sealpost.db"));
    assert_eq!(
        db.token_hashes(),
        [sealpost_crypto::hash::sha256(token.as_bytes()).to_vec()]
    );

    // Tamper with event 2 (the token creation): verify must fail naming seq 2.
    db.tamper("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2");
    drop(db);

    let out = run(dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("audit chain broken at seq 2"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

/// Proof: on a fresh data directory `serve` announces the first admin before it listens,
/// answers `/healthz` (and 404 elsewhere), and exits cleanly on SIGTERM; a second start does
/// not create another admin.
#[test]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let mut app = AppBuilder::default().spawn();
    let log = app.log();
    let admin = log.find("created first admin admin@localhost");
    let listening = log.find("listening http=");
    assert!(
        admin.is_some() && admin < listening,
        "first-run admin not announced before listening: {log}"
    );

    let health = app.get("/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(health.text().ends_with("ok"), "{}", health.text());

    let missing = app.get("/no-such-page");
    assert_eq!(missing.status, 404, "{}", missing.text());

    // Graceful shutdown on SIGTERM: `stop` asserts a successful exit within its bound.
    app.stop();

    // A second start does not create another admin.
    let out = app.cli(&["user", "list"]);
    assert_eq!(text(&out.stdout).matches("admin@localhost").count(), 1);
}

#[test]
fn serve_refuses_plain_http_on_a_public_address() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = sealpost(&tmp.path().join("data"))
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

/// Proof: the file outbox, which keeps link secrets and codes in clear, refuses a public base
/// URL unless allowed, is announced as development-only, and a restart after a crash removes
/// the temporary files of cut-off writes and restricts what an older version left readable.
#[test]
fn serve_keeps_the_file_outbox_local_and_private() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mut child = sealpost(&tmp.path().join("data"))
        .arg("serve")
        .env("SEALPOST_HTTP_ADDR", "127.0.0.1:0")
        .env("SEALPOST_SMTP_ADDR", "127.0.0.1:0")
        .env("SEALPOST_BASE_URL", "https://pickup.example.org")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Until it exits, or says it listens: a server that started is stopped, not waited for.
    let stdout = std::io::BufReader::new(child.stdout.take().ok_or("stdout")?);
    let listening = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        .any(|line| line.starts_with("listening"));
    if listening {
        child.kill()?;
    }
    let out = child.wait_with_output()?;
    assert!(
        !listening,
        "serve started with the file outbox and a public base URL"
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for needle in [
        "refusing the file outbox with base_url https://pickup.example.org",
        "SEALPOST_OUTBOUND=smtp://",
        "SEALPOST_OUTBOUND_FILE_ALLOW_PUBLIC=true",
    ] {
        assert!(stderr.contains(needle), "{stderr}");
    }

    let mut app = AppBuilder::default()
        .env("SEALPOST_BASE_URL", "https://pickup.example.org")
        .env("SEALPOST_OUTBOUND_FILE_ALLOW_PUBLIC", "true")
        .spawn();
    let log = app.log();
    assert!(
        log.contains("outbound = file, for development only"),
        "no warning: {log}"
    );
    app.kill();
    let outbox = app.data_dir.join("outbox");
    let cut_off = outbox.join(".0190b0d4-0000-7000-8000-000000000000.tmp");
    std::fs::write(&cut_off, "half a mail with a link secret")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755))?;
    }
    app.restart();
    assert!(!cut_off.exists(), "a cut-off write is removed at start");
    assert!(
        app.log()
            .contains("removed outbox files whose writing was cut off"),
        "{}",
        app.log()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outbox)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "outbox restricted to its owner");
    }
    Ok(())
}

#[test]
fn invalid_config_fails_fast() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = sealpost(&tmp.path().join("data"))
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

/// Proof: `recipient unlock --message <id> --address <addr>` lifts that recipient's lock (its
/// landing page answers 200 again, the other recipient's stays 423), prints the address
/// unlocked, and is audited `unlocked` with actor `cli`; without `--address` it unlocks every
/// recipient; an unknown message, an address that is not a recipient, or text that is not a
/// message id exits 2 and says so.
#[test]
fn recipient_unlock_lifts_a_lock() {
    let app = AppBuilder::default().spawn();
    let token = app.create_sender("sender@example.org");
    let reply = app.submit_json(
        &token,
        &serde_json::json!({"to": ["grace@example.net", "ada@example.net"], "subject": "s", "text": "t"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap_or_default().to_owned();
    let landing = |address: &str| format!("/p/{}", app.notification_link(address).pickup_id);
    let db = Db::writable(&app.db_path());
    db.tamper("UPDATE recipients SET locked_at = 1, failed_attempts = 60");
    assert_eq!(app.get(&landing("grace@example.net")).status, 423);

    let out = app.cli(&[
        "recipient",
        "unlock",
        "--message",
        &id,
        "--address",
        "GRACE@example.net",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "unlocked grace@example.net\n");
    assert_eq!(app.get(&landing("grace@example.net")).status, 200);
    assert_eq!(app.get(&landing("ada@example.net")).status, 423);
    let events = app.audit_events();
    let unlocked: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "unlocked")
        .collect();
    assert_eq!(unlocked.len(), 1, "{unlocked:?}");
    assert_eq!(unlocked[0]["actor"], "cli");
    assert_eq!(unlocked[0]["message_id"], id.as_str());
    assert_eq!(unlocked[0]["detail"]["address"], "grace@example.net");
    assert_eq!(unlocked[0]["detail"]["was_locked"], true);

    let out = app.cli(&["recipient", "unlock", "--message", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "unlocked grace@example.net\nunlocked ada@example.net\n"
    );
    assert_eq!(app.get(&landing("ada@example.net")).status, 200);

    for (args, says) in [
        (
            vec!["--message", "0192f0e8-0000-7000-8000-000000000000"],
            "no message",
        ),
        (
            vec!["--message", id.as_str(), "--address", "nobody@example.net"],
            "has no recipient nobody@example.net",
        ),
        (vec!["--message", "grace"], "is not a message id"),
    ] {
        let out = app.cli(&[&["recipient", "unlock"][..], &args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    app.assert_audit_verifies();
}
