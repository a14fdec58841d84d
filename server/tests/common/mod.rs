//! Helpers shared by the black-box tests (`tests/e2e.rs`, `tests/browser.rs`): the real
//! `sealpost` binary on a free port in a temporary data directory, the CLI, a small HTTP
//! client, the file outbox, and read-only looks at the SQLite database.
//!
//! Nothing here waits by sleeping: the server is ready when it prints `listening http=<addr>`,
//! and the API answers only after a notification is in the outbox.

#![expect(
    clippy::disallowed_methods,
    reason = "black-box tests find tools on PATH, read SEALPOST_TEST_REQUIRE and inspect the database file directly"
)]
#![allow(
    dead_code,
    reason = "each test crate includes this module and uses a different part of it"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// How long the server may take to print `listening http=`.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one HTTP exchange may take (a 20 MiB upload or download included).
const HTTP_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// The binary and its CLI

/// A `sealpost` command with no inherited `SEALPOST_*` variables, data in `data_dir`, run from
/// the data directory's parent (so no stray `sealpost.toml` is read).
pub fn sealpost(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealpost"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEALPOST_") {
            cmd.env_remove(&key);
        }
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

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The target directory (`target/`), for artefacts a human may want to look at.
pub fn target_dir() -> PathBuf {
    // CARGO_BIN_EXE_sealpost is <target>/<profile>/sealpost.
    let exe = Path::new(env!("CARGO_BIN_EXE_sealpost"));
    exe.parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
}

// ---------------------------------------------------------------------------------------------
// Optional external tools

/// The path of `name` on `PATH`, or `None` after printing `skipping: <name> not installed`.
/// Panics instead when `SEALPOST_TEST_REQUIRE` is `all` or a comma list naming the tool (CI
/// sets it so a missing tool cannot pass silently).
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_some() {
        return found;
    }
    let required = std::env::var("SEALPOST_TEST_REQUIRE").unwrap_or_default();
    let required = required
        .split(',')
        .map(str::trim)
        .any(|t| t == "all" || t == name);
    assert!(
        !required,
        "{name} is not installed, but SEALPOST_TEST_REQUIRE requires it"
    );
    eprintln!("skipping: {name} not installed");
    println!("skipping: {name} not installed");
    None
}

// ---------------------------------------------------------------------------------------------
// The server

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
                        root,
                        data_dir,
                        base_url,
                        child: Some(child),
                        log,
                        http: agent(),
                        env: self.env,
                        outbox_cache: Mutex::default(),
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

/// Everything a child process wrote, appended by reader threads.
type SharedLog = Arc<Mutex<Vec<u8>>>;

/// A running `sealpost serve`, killed when dropped.
#[derive(Debug)]
pub struct App {
    /// Holds the data directory (and is deleted with it).
    root: TempDir,
    /// `SEALPOST_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:<port>`, also the configured `SEALPOST_BASE_URL`.
    pub base_url: String,
    child: Option<Child>,
    /// Everything the server wrote to stdout and stderr so far.
    log: SharedLog,
    http: ureq::Agent,
    env: Vec<(String, String)>,
    /// Outbox mails already parsed, by path (a mail is renamed into place whole and never
    /// changes afterwards).
    outbox_cache: Mutex<BTreeMap<PathBuf, Mail>>,
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

    // -- HTTP ------------------------------------------------------------------------------

    /// `GET path`, no redirects followed.
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    /// `GET path` with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.http.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::from(req.call())
    }

    /// A browser-like form post: `Origin` is this site; `cookie` is sent when given.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)], cookie: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url(path))
            .header("Origin", &self.base_url);
        if let Some(cookie) = cookie {
            req = req.header("Cookie", cookie);
        }
        Reply::from(req.send_form(fields.iter().copied()))
    }

    /// `POST path` with a raw body and content type; `token` as a bearer token when given.
    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", content_type);
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        Reply::from(req.send(body))
    }

    /// `POST path` over a raw socket, for bodies the server may refuse before reading them
    /// whole: with `expect_continue` the body is sent only after `100 Continue` (as curl does
    /// for large bodies), so a refusal arrives before any of it; without, a write error after
    /// the server stopped reading is tolerated and the response read anyway. Returns the reply
    /// and whether the server closed the connection before taking the whole body.
    pub fn post_raw_socket(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
        expect_continue: bool,
    ) -> (Reply, bool) {
        use std::io::Write;
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .expect("read timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
            body.len(),
            if expect_continue {
                "Expect: 100-continue\r\n"
            } else {
                ""
            }
        );
        stream
            .write_all(head.as_bytes())
            .expect("write request head");
        let mut received = Vec::new();
        if expect_continue {
            // Read the interim or final response head.
            let mut buf = [0_u8; 4096];
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).expect("read response head");
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
            if received.starts_with(b"HTTP/1.1 100") {
                received.clear();
            } else {
                let reply = parse_http(&read_rest(&mut stream, received));
                return (reply, true);
            }
        }
        let cut_short = stream.write_all(body).is_err();
        let reply = parse_http(&read_rest(&mut stream, received));
        (reply, cut_short)
    }

    /// `POST /api/v1/messages` with a JSON body.
    pub fn submit_json(&self, token: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("serialize JSON");
        self.post_raw("/api/v1/messages", Some(token), "application/json", &bytes)
    }

    /// `POST /api/v1/messages` as `multipart/form-data`.
    pub fn submit_multipart(&self, token: &str, form: &Multipart) -> Reply {
        let (content_type, body) = form.encode();
        self.post_raw("/api/v1/messages", Some(token), &content_type, &body)
    }

    /// `GET /api/v1/messages/{id}` as the sender.
    pub fn message_status(&self, token: &str, id: &str) -> Reply {
        self.get_with(
            &format!("/api/v1/messages/{id}"),
            &[("Authorization", &format!("Bearer {token}"))],
        )
    }

    /// `DELETE /api/v1/messages/{id}` as the sender.
    pub fn revoke(&self, token: &str, id: &str) -> Reply {
        let req = self
            .http
            .delete(self.url(&format!("/api/v1/messages/{id}")))
            .header("Authorization", format!("Bearer {token}"));
        Reply::from(req.call())
    }

    // -- Outbox ----------------------------------------------------------------------------

    /// Every mail in the outbox, oldest first (file names are UUIDv7, so they sort by time).
    pub fn outbox(&self) -> Vec<Mail> {
        let dir = self.data_dir.join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        let mut cache = self
            .outbox_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        paths
            .iter()
            .map(|p| {
                cache
                    .entry(p.clone())
                    .or_insert_with(|| Mail::read(p))
                    .clone()
            })
            .collect()
    }

    /// The newest mail to `address`; panics if there is none.
    pub fn last_mail_to(&self, address: &str) -> Mail {
        self.outbox()
            .into_iter()
            .rev()
            .find(|m| m.to.eq_ignore_ascii_case(address))
            .unwrap_or_else(|| panic!("no mail to {address} in the outbox"))
    }

    /// The pickup link of the newest notification to `address`.
    pub fn notification_link(&self, address: &str) -> PickupLink {
        let mail = self
            .outbox()
            .into_iter()
            .rev()
            .find(|m| m.to.eq_ignore_ascii_case(address) && m.text.contains("/p/"))
            .unwrap_or_else(|| panic!("no notification to {address} in the outbox"));
        mail.link(&self.base_url)
    }

    /// Ask for a one-time code for `link`, read it from the outbox, verify it; returns the
    /// session cookie (`name=value`).
    pub fn verify_by_code(&self, link: &PickupLink, address: &str) -> String {
        let before = self.outbox().len();
        let reply = self.post_form(&format!("/p/{}/code", link.pickup_id), &[], None);
        assert_eq!(reply.status, 200, "POST code: {}", reply.page_text());
        let outbox = self.outbox();
        assert_eq!(
            outbox.len(),
            before + 1,
            "POST /code answered 200 but did not put exactly one mail in the outbox"
        );
        let code = self.last_mail_to(address).code();
        let reply = self.post_form(
            &format!("/p/{}/verify", link.pickup_id),
            &[("code", &code)],
            None,
        );
        assert_eq!(reply.status, 200, "POST verify: {}", reply.page_text());
        reply
            .session_cookie()
            .expect("a successful verification sets a session cookie")
    }
}

/// A message opened through the pickup flow, as its recipient.
#[derive(Debug)]
pub struct Opened {
    pub link: PickupLink,
    /// The verified session cookie (`name=value`).
    pub cookie: String,
    /// The opened message's page (status 200).
    pub page: Reply,
}

impl App {
    /// The whole pickup flow for `link`: a code by email, verify it, open with the link
    /// secret. Panics unless the message opens.
    pub fn open_link(&self, link: &PickupLink, address: &str) -> Opened {
        let cookie = self.verify_by_code(link, address);
        let page = self.post_form(
            &format!("/p/{}/open", link.pickup_id),
            &[("k", &link.secret)],
            Some(&cookie),
        );
        assert_eq!(
            page.status,
            200,
            "open {} for {address}: {}",
            link.pickup_id,
            page.page_text()
        );
        Opened {
            link: link.clone(),
            cookie,
            page,
        }
    }

    /// Download attachment `part_no` of an opened message (the reply, whatever its status).
    pub fn download(&self, opened: &Opened, part_no: u32) -> Reply {
        self.post_form(
            &format!("/p/{}/attachments/{part_no}", opened.link.pickup_id),
            &[("k", &opened.link.secret)],
            Some(&opened.cookie),
        )
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into()
}

// ---------------------------------------------------------------------------------------------
// HTTP replies and request bodies

/// An HTTP response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl From<Result<ureq::http::Response<ureq::Body>, ureq::Error>> for Reply {
    fn from(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Self {
        let response = result.unwrap_or_else(|e| panic!("HTTP request failed: {e}"));
        let (parts, body) = response.into_parts();
        let body = body
            .into_with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("reading the response body failed: {e}"));
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), text(v.as_bytes())))
            .collect();
        Self {
            status: parts.status.as_u16(),
            headers,
            body,
        }
    }
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        text(&self.body)
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The first `Set-Cookie` as `name=value`, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.header("set-cookie")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
    }

    /// The visible text of an HTML page, tags removed and entities of interest decoded;
    /// whitespace collapsed. Good enough for assertions on our own templates.
    pub fn page_text(&self) -> String {
        html_text(&self.text())
    }

    /// The text of the first `<h1>` of an HTML page.
    pub fn h1(&self) -> String {
        let body = self.text();
        let Some(start) = body.find("<h1") else {
            return String::new();
        };
        let rest = &body[start..];
        let end = rest.find("</h1>").unwrap_or(rest.len());
        html_text(&rest[..end])
    }

    /// For a JSON error: assert the documented shape `{"error": code, "message": text}` with a
    /// non-empty message, and return `(error, message)`.
    pub fn json_error(&self) -> (String, String) {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "status {}: error content type {ct:?}, body {}",
            self.status,
            self.text()
        );
        let json = self.json();
        let error = json["error"].as_str().unwrap_or_default().to_owned();
        let message = json["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            !error.is_empty() && message.trim().len() > 5,
            "status {}: unreadable error body {json}",
            self.status
        );
        (error, message)
    }

    /// For an HTML error page: assert it is HTML with a heading, and return its text.
    pub fn html_error(&self) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("text/html"),
            "status {}: content type {ct:?}, body {}",
            self.status,
            self.text()
        );
        let h1 = self.h1();
        assert!(
            !h1.trim().is_empty(),
            "status {}: page without a heading: {}",
            self.status,
            self.text()
        );
        self.page_text()
    }
}

fn read_rest(stream: &mut std::net::TcpStream, mut received: Vec<u8>) -> Vec<u8> {
    let mut buf = [0_u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            // A reset after the response arrived ends the read like EOF.
            Err(e) if !received.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                break;
            }
            Err(e) => panic!(
                "reading the response failed after {} bytes: {e}",
                received.len()
            ),
        }
    }
    received
}

/// Parse a whole HTTP/1.1 response (Content-Length, chunked, or up to EOF).
fn parse_http(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response head in {:?}", text(raw)));
    let head = text(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(text(&rest[..eol]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let start = eol + 2;
            out.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
            rest = rest.get(start + size + 2..).unwrap_or_default();
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Strip tags, decode the common entities, collapse whitespace.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    let out = html_unescape(&out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decode the entities askama and ammonia write.
/// The attachment rows of a message page: `(part_no, filename)`.
pub fn attachments(page: &Reply) -> Vec<(u32, String)> {
    let html = page.text();
    let mut out = Vec::new();
    let mut rest = html.as_str();
    while let Some(pos) = rest.find("class=\"name\" id=\"att-") {
        rest = &rest[pos + "class=\"name\" id=\"att-".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let part_no: u32 = digits.parse().expect("attachment part number");
        let start = rest.find('>').expect("end of span tag") + 1;
        let end = rest.find("</span>").expect("end of span");
        out.push((part_no, html_unescape(&rest[start..end])));
    }
    out
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// A `multipart/form-data` body built by hand (text fields and files).
#[derive(Debug, Default)]
pub struct Multipart {
    parts: Vec<FormPart>,
}

#[derive(Debug)]
struct FormPart {
    name: String,
    /// `(filename, content type)` for a file field.
    file: Option<(String, String)>,
    bytes: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Self {
        Self::default()
    }

    /// A text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.push(FormPart {
            name: name.to_owned(),
            file: None,
            bytes: value.as_bytes().to_vec(),
        });
        self
    }

    /// A file field.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: Vec<u8>) -> Self {
        self.parts.push(FormPart {
            name: name.to_owned(),
            file: Some((filename.to_owned(), content_type.to_owned())),
            bytes,
        });
        self
    }

    /// `(content type with boundary, body)`.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = "----sealpost-e2e-7f3a9c1d5b2e8f40a6c4e1b7d9f2a3c5";
        let mut body = Vec::new();
        for part in &self.parts {
            let name = &part.name;
            let head = match &part.file {
                None => format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                ),
                Some((filename, content_type)) => format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                     filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                ),
            };
            body.extend_from_slice(head.as_bytes());
            body.extend_from_slice(&part.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox mails

/// One `.eml` from the outbox, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub path: PathBuf,
    pub raw: Vec<u8>,
    pub to: String,
    pub subject: String,
    /// The decoded text/plain body.
    pub text: String,
    /// The decoded text/html body.
    pub html: String,
}

/// The parts of a pickup link `<base>/p/<pickup_id>#k=<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupLink {
    pub pickup_id: String,
    pub secret: String,
    /// The whole link.
    pub url: String,
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl Mail {
    pub fn read(path: &Path) -> Self {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{} is not a parseable mail", path.display()));
        let to = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        let subject = parsed.subject().unwrap_or_default().to_owned();
        let text = parsed
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let html = parsed
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            raw,
            to,
            subject,
            text,
            html,
        }
    }

    /// The pickup link in the text part; panics if there is none.
    pub fn link(&self, base_url: &str) -> PickupLink {
        let prefix = format!("{base_url}/p/");
        let start = self
            .text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no link {prefix}… in the mail:\n{}", self.text))
            + prefix.len();
        let rest = &self.text.as_bytes()[start..];
        let id_len = rest.iter().take_while(|b| is_b64url(**b)).count();
        let pickup_id = text(&rest[..id_len]);
        let after = &self.text[start + id_len..];
        let secret_part = after
            .strip_prefix("#k=")
            .unwrap_or_else(|| panic!("link without #k= in the mail:\n{}", self.text));
        let secret_len = secret_part.bytes().take_while(|b| is_b64url(*b)).count();
        let secret = secret_part[..secret_len].to_owned();
        assert!(!pickup_id.is_empty(), "empty pickup id in {}", self.text);
        assert_eq!(
            secret.len(),
            22,
            "link secret {secret:?} is not 22 characters"
        );
        PickupLink {
            url: format!("{prefix}{pickup_id}#k={secret}"),
            pickup_id,
            secret,
        }
    }

    /// The one 6-digit number in the text part (the one-time code); panics unless exactly one.
    pub fn code(&self) -> String {
        let codes = digit_runs(&self.text, 6);
        assert_eq!(
            codes.len(),
            1,
            "expected one 6-digit code in the mail:\n{}",
            self.text
        );
        codes[0].clone()
    }
}

/// Runs of exactly `len` ASCII digits (not part of a longer run).
pub fn digit_runs(s: &str, len: usize) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == len {
                out.push(s[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `code` appears in `log` as a number of its own, not counting fractional seconds of
/// timestamps (`…:56.123456Z`), which are six digits after a dot.
pub fn log_mentions_code(log: &str, code: &str) -> bool {
    let bytes = log.as_bytes();
    let mut from = 0;
    while let Some(pos) = log[from..].find(code) {
        let at = from + pos;
        let end = at + code.len();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(end).copied();
        let standalone = !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && !after.is_some_and(|b| b.is_ascii_digit());
        if standalone {
            return true;
        }
        from = at + 1;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Files and bytes

/// Deterministic pseudo-random bytes (SplitMix64), so a failure can be reproduced.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A marker unique to this test run: `<label>-<pid>-<nanos>`.
pub fn canary(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos:x}", std::process::id())
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for file in files_under(from) {
        let rel = file.strip_prefix(from).expect("file under the source");
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::copy(&file, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    }
}

// ---------------------------------------------------------------------------------------------
// The database, from outside

/// A connection pool to the SQLite file; `read_only` for looking without touching.
pub async fn open_db(path: &Path, read_only: bool) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(30));
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Every row of every table, each row rendered with SQLite's `quote()`, sorted; keyed by
/// table name.
pub async fn db_dump(pool: &sqlx::SqlitePool) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .expect("list tables");
    let mut dump = BTreeMap::new();
    for (table,) in tables {
        let columns: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(&table)
                .fetch_all(pool)
                .await
                .expect("list columns");
        let expr = columns
            .iter()
            .map(|(c,)| format!("'{c}=' || quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || ' ' || ");
        let sql = format!("SELECT {expr} FROM \"{table}\" ORDER BY 1");
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("dump {table}: {e}"));
        dump.insert(table, rows.into_iter().map(|(r,)| r).collect());
    }
    dump
}

/// A readable difference between two dumps (empty when equal).
pub fn dump_diff(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let b = before.get(name).unwrap_or(&empty);
        let a = after.get(name).unwrap_or(&empty);
        for row in b.iter().filter(|r| !a.contains(r)) {
            out.push_str(&format!("{name}: - {row}\n"));
        }
        for row in a.iter().filter(|r| !b.contains(r)) {
            out.push_str(&format!("{name}: + {row}\n"));
        }
    }
    out
}
