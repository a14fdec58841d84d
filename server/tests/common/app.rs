//! The real `sealpost` binary: CLI commands against a data directory, and `sealpost serve` on a
//! free loopback port in a fresh temporary data directory ([`App`]), with its log captured.
//!
//! Nothing here waits by sleeping for the server: it is ready when it prints `listening
//! http=<addr>`, and `listening smtp=` comes in the same write.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::env;
use super::files::text;
use super::outbox::OutboxCache;

/// How long the server may take to print `listening http=`.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A `sealpost` command with no inherited `SEALPOST_*` variables, data in `data_dir`, run from
/// the data directory's parent (so no stray `sealpost.toml` is read).
pub fn sealpost(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealpost"));
    for key in env::sealpost_names() {
        cmd.env_remove(&key);
    }
    cmd.current_dir(data_dir.parent().unwrap_or(data_dir))
        .env("SEALPOST_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn");
    cmd
}

/// Run a CLI command against `data_dir` and return its output (whatever the exit code).
pub fn cli(data_dir: &Path, args: &[&str]) -> Output {
    sealpost(data_dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sealpost {args:?}: {e}"))
}

/// Settings for [`spawn_app`]; extra `SEALPOST_*` (or other) environment variables.
#[derive(Debug, Default)]
pub struct AppBuilder {
    env: Vec<(String, String)>,
}

impl AppBuilder {
    /// Set an environment variable for the server (and the CLI commands run through the app).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Start `sealpost serve` and wait until it listens.
    pub fn spawn(self) -> App {
        let root = tempfile::tempdir().expect("temporary directory");
        let data_dir = root.path().join("data");
        // The port is chosen here so that the base URL (and so the `Origin` a browser sends)
        // matches the bound address. Another process could take it in between; then try again.
        let mut last_log = String::new();
        for _ in 0..3 {
            match try_spawn(&data_dir, free_port(), &self.env) {
                Ok((child, base_url, log)) => {
                    return App {
                        _root: root,
                        data_dir,
                        base_url,
                        child: Some(child),
                        log,
                        http: super::http::agent(),
                        env: self.env,
                        outbox_cache: OutboxCache::default(),
                    };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("sealpost serve did not start:\n{last_log}");
    }
}

/// Start `sealpost serve` on a free loopback port with a file outbox, in a fresh temporary
/// data directory.
pub fn spawn_app() -> App {
    AppBuilder::default().spawn()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Everything a child process wrote, appended by reader threads.
type SharedLog = Arc<Mutex<Vec<u8>>>;

/// One attempt at starting the server: `Ok` once it printed `listening http=`, `Err(log)` if
/// it exited before.
fn try_spawn(
    data_dir: &Path,
    port: u16,
    env: &[(String, String)],
) -> Result<(Child, String, SharedLog), String> {
    let base_url = format!("http://127.0.0.1:{port}");
    let mut cmd = sealpost(data_dir);
    cmd.arg("serve")
        .env("SEALPOST_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("SEALPOST_SMTP_ADDR", "127.0.0.1:0")
        .env("SEALPOST_BASE_URL", &base_url)
        .env("SEALPOST_OUTBOUND", "file")
        // Verbose on purpose: the tests check that even debug logs carry no secret.
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().expect("spawn sealpost serve");
    let log = Arc::new(Mutex::new(Vec::new()));

    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Ok(mut log) = log.lock() {
                            log.extend_from_slice(&line);
                        }
                        // The receiver is gone once the server is up; keep logging.
                        tx.send(text(&line)).ok();
                    }
                }
            }
        });
    }
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = [0_u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut log) = log.lock() {
                            log.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
        });
    }

    let snapshot = |log: &SharedLog| text(&log.lock().map(|l| l.clone()).unwrap_or_default());
    loop {
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => {
                if let Some(addr) = line.trim().strip_prefix("listening http=") {
                    assert_eq!(
                        addr,
                        format!("127.0.0.1:{port}"),
                        "bound a different address"
                    );
                    return Ok((child, base_url, log));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the server exited.
                child.wait().ok();
                return Err(snapshot(&log));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "sealpost serve printed no `listening http=` in {START_TIMEOUT:?}:\n{}",
                    snapshot(&log)
                );
            }
        }
    }
}

/// A running `sealpost serve`, killed when dropped.
#[derive(Debug)]
pub struct App {
    /// Holds the data directory (and is deleted with it).
    _root: TempDir,
    /// `SEALPOST_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:<port>`, also the configured `SEALPOST_BASE_URL`.
    pub base_url: String,
    child: Option<Child>,
    /// Everything the server wrote to stdout and stderr so far.
    log: SharedLog,
    pub(super) http: ureq::Agent,
    env: Vec<(String, String)>,
    pub(super) outbox_cache: OutboxCache,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The `listening smtp=` address. `serve` prints it in the same write as the HTTP line
/// [`spawn_app`] waits for, so it is in the log at most a moment after start-up.
pub fn smtp_addr(app: &App) -> String {
    listening_addr(app, "smtp")
}

/// The address of a `listening <name>=<addr>` line of `serve` (`smtp`, `smtps`).
pub fn listening_addr(app: &App, name: &str) -> String {
    let prefix = format!("listening {name}=");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.log();
        if let Some(addr) = log
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        {
            return addr.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{prefix}` line:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sealpost relay add --name <name>`: the password is the last line of stdout.
pub fn add_relay(app: &App, name: &str) -> String {
    let out = app.cli(&["relay", "add", "--name", name]);
    assert!(
        out.status.success(),
        "relay add failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .last()
        .expect("a password line")
        .trim()
        .to_owned()
}

impl App {
    /// `<base_url><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("sealpost.db")
    }

    /// The server's stdout and stderr so far.
    pub fn log(&self) -> String {
        text(&self.log.lock().map(|l| l.clone()).unwrap_or_default())
    }

    /// Run a CLI command against this app's data directory (with the app's extra settings).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = sealpost(&self.data_dir);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd.args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run sealpost {args:?}: {e}"))
    }

    /// Kill the server with SIGKILL (no shutdown of any kind) and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL sealpost serve");
            child.wait().expect("reap sealpost serve");
        }
    }

    /// Start `sealpost serve` again on the same data directory and HTTP port (so links in the
    /// outbox stay valid); the SMTP port is new. The log starts afresh.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: the server is still running");
        let port: u16 = self
            .base_url
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("base URL ends in a port");
        match try_spawn(&self.data_dir, port, &self.env) {
            Ok((child, _, log)) => {
                self.child = Some(child);
                self.log = log;
            }
            Err(log) => panic!("sealpost serve did not restart:\n{log}"),
        }
    }

    /// Stop the server with SIGTERM and wait (bounded) for a clean exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            tx.send(child.wait()).ok();
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(exit)) => assert!(exit.success(), "sealpost serve exited with {exit:?}"),
            Ok(Err(e)) => panic!("waiting for sealpost serve: {e}"),
            Err(_) => {
                Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .ok();
                panic!("sealpost serve did not stop within 60 s of SIGTERM");
            }
        }
    }

    /// Add a sender with the CLI and create an API token for them; returns the token.
    pub fn create_sender(&self, email: &str) -> String {
        let out = self.cli(&["user", "add", "--email", email, "--role", "sender"]);
        assert!(
            out.status.success(),
            "user add: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("password: "));
        let out = self.cli(&["token", "create", "--email", email]);
        assert!(
            out.status.success(),
            "token create: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        let token = stdout.lines().last().expect("token line").trim().to_owned();
        assert!(token.len() > 20, "unexpected token line {token:?}");
        token
    }

    /// The audit log as JSON values (`sealpost audit export --format jsonl`).
    pub fn audit_events(&self) -> Vec<Value> {
        let out = self.cli(&["audit", "export", "--format", "jsonl"]);
        assert!(out.status.success(), "audit export: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("audit export line is JSON"))
            .collect()
    }

    /// Assert that the audit log holds an event of each of `expected` (about `message_id`,
    /// when given).
    pub fn assert_audited(&self, message_id: Option<&str>, expected: &[&str]) {
        let actions: Vec<String> = self
            .audit_events()
            .iter()
            .filter(|e| message_id.is_none_or(|id| e["message_id"] == id))
            .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
            .collect();
        for expected in expected {
            assert!(
                actions.iter().any(|a| a == expected),
                "no {expected} audit event{}: {actions:?}",
                message_id.map_or_else(String::new, |id| format!(" for message {id}"))
            );
        }
    }

    /// Assert that `sealpost audit verify` exits 0 on this data directory.
    pub fn assert_audit_verifies(&self) {
        let audit = self.cli(&["audit", "verify"]);
        assert!(
            audit.status.success(),
            "audit verify: {}{}",
            text(&audit.stdout),
            text(&audit.stderr)
        );
    }
}
