//! The pickup flow in a real headless Chromium, driven over the DevTools protocol (CDP) on a
//! plain WebSocket: the notification link with its `#k=` fragment, "Email me a code", the code
//! from the outbox, the script filling in the link secret, the message page and a download.
//! Checks that the page logged no error and that the Content-Security-Policy blocked nothing.
//!
//! Skips (printing `skipping: chromium not installed`) when there is no `chromium` on `PATH`,
//! unless `SEALPOST_TEST_REQUIRE` is `all` or names `chromium`.

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Multipart, require_tool, spawn_app, target_dir};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Headless Chromium in its own process group and profile, ended when dropped.
struct Chromium {
    child: Child,
    /// `ws://127.0.0.1:<port>/devtools/browser/<id>`.
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    fn launch(binary: &Path) -> Self {
        let profile = tempfile::tempdir().expect("profile directory");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1000,1400",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        // Chromium announces its DevTools endpoint on stderr; keep draining it afterwards.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                    tx.send(url.to_owned()).ok();
                }
            }
        });
        let ws_url = match rx.recv_timeout(STEP_TIMEOUT) {
            Ok(url) => url,
            Err(e) => {
                kill_group(&mut child);
                panic!("chromium did not announce its DevTools endpoint: {e}");
            }
        };
        Self {
            child,
            ws_url,
            _profile: profile,
        }
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // Negative pid: the process group chromium leads (its renderers, GPU and utility
        // processes), which this test started.
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status()
            .ok();
        child.kill().ok();
        child.wait().ok();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A DevTools protocol connection to the browser, with flat sessions for pages.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Events not yet consumed by [`Cdp::wait_event`].
    queue: VecDeque<Value>,
    /// Every event received, for the final checks.
    history: Vec<Value>,
}

impl Cdp {
    fn connect(url: &str) -> Self {
        let (ws, _) = tungstenite::connect(url).expect("connect to the DevTools WebSocket");
        if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .expect("set read timeout");
        }
        Self {
            ws,
            next_id: 0,
            queue: VecDeque::new(),
            history: Vec::new(),
        }
    }

    /// Read one message, or `None` on a read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(text)) => {
                Some(serde_json::from_str(text.as_str()).expect("CDP message is JSON"))
            }
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection failed: {e}"),
        }
    }

    fn note_event(&mut self, message: Value) {
        self.history.push(message.clone());
        self.queue.push_back(message);
    }

    /// Call `method` (on a page `session`, or the browser) and return its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .expect("send a CDP command");
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            let Some(reply) = self.read() else { continue };
            if reply["id"] == id {
                assert!(
                    reply.get("error").is_none(),
                    "{method} failed: {}",
                    reply["error"]
                );
                return reply["result"].clone();
            }
            if reply.get("method").is_some() {
                self.note_event(reply);
            }
        }
        panic!("no answer to {method} within {STEP_TIMEOUT:?}");
    }

    /// Forget queued events named `method`.
    fn drop_queued(&mut self, method: &str) {
        self.queue.retain(|e| e["method"] != method);
    }

    /// The next event named `method` that satisfies `accept`.
    fn wait_event(&mut self, method: &str, accept: impl Fn(&Value) -> bool) -> Value {
        if let Some(pos) = self
            .queue
            .iter()
            .position(|e| e["method"] == method && accept(&e["params"]))
        {
            return self.queue.remove(pos).expect("queued event");
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            let Some(message) = self.read() else { continue };
            if message.get("method").is_none() {
                continue;
            }
            self.history.push(message.clone());
            if message["method"] == method && accept(&message["params"]) {
                return message;
            }
            self.queue.push_back(message);
        }
        panic!("no {method} event within {STEP_TIMEOUT:?}");
    }
}

/// A page (tab) attached over a flat session.
struct Page {
    cdp: Cdp,
    session: String,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.cdp.call(Some(&session), method, params)
    }

    /// Evaluate `expression` in the page and return its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "script {expression:?} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    fn eval_str(&mut self, expression: &str) -> String {
        self.eval(expression)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Run `action` (which navigates) and wait for the new page's load event.
    fn navigating(&mut self, action: impl FnOnce(&mut Self)) {
        self.cdp.drop_queued("Page.loadEventFired");
        action(self);
        self.cdp.wait_event("Page.loadEventFired", |_| true);
    }

    fn click(&mut self, selector: &str) {
        let found = self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return false; el.click(); return true; }})()",
            json!(selector)
        ));
        assert_eq!(found, json!(true), "nothing matches {selector}");
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        let png = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("screenshot is base64")
        };
        let dir = target_dir().join("e2e-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}

/// The headers Chromium sent with the last request to a URL ending in `suffix` (for
/// failure messages).
fn sent_headers(history: &[Value], suffix: &str) -> String {
    let Some(id) = history
        .iter()
        .rev()
        .find(|e| {
            e["method"] == "Network.requestWillBeSent"
                && e["params"]["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(suffix))
        })
        .map(|e| e["params"]["requestId"].clone())
    else {
        return "(request not seen)".to_owned();
    };
    history
        .iter()
        .rev()
        .find(|e| {
            e["method"] == "Network.requestWillBeSentExtraInfo" && e["params"]["requestId"] == id
        })
        .map_or_else(
            || "(no extra info)".to_owned(),
            |e| e["params"]["headers"].to_string(),
        )
}

/// Problems the page reported: exceptions, console errors, error log entries (failed loads, CSP
/// violations), blocked requests and CSP issues.
fn problems(history: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for event in history {
        let params = &event["params"];
        match event["method"].as_str().unwrap_or_default() {
            "Runtime.exceptionThrown" => {
                out.push(format!("exception: {}", params["exceptionDetails"]))
            }
            "Runtime.consoleAPICalled"
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                out.push(format!("console.{}: {}", params["type"], params["args"]));
            }
            "Log.entryAdded" if params["entry"]["level"] == "error" => {
                out.push(format!(
                    "log ({}): {} {}",
                    params["entry"]["source"], params["entry"]["text"], params["entry"]["url"]
                ));
            }
            "Network.loadingFailed"
                if params.get("blockedReason").is_some()
                    || params["corsErrorStatus"].is_object() =>
            {
                out.push(format!("blocked request: {params}"));
            }
            "Audits.issueAdded" if params["issue"]["code"] == "ContentSecurityPolicyIssue" => {
                out.push(format!("CSP: {}", params["issue"]["details"]));
            }
            _ => {}
        }
    }
    out
}

/// Proof: a recipient with a real browser and nothing but the notification email can pick the
/// message up: the script reads the secret from the `#k=` fragment (and removes it from the
/// address bar), the code step works, the open form is filled in for them, the message page
/// shows the text, the HTML in its frame and the attachments, and a download gives the bytes;
/// the page logs no error and the CSP blocks nothing the pages use (while still blocking an
/// injected inline script).
#[test]
fn pickup_in_headless_chromium() {
    let Some(chromium) = require_tool("chromium") else {
        return;
    };
    let app = spawn_app();
    let token = app.create_sender("sender@example.org");
    let recipient = "judy@example.net";
    let body_text = "Hello Judy, the signed contract is attached. Kind regards, Sam.";
    let pdf = b"%PDF-1.4\n% not really a PDF, but bytes to compare\n".repeat(50);
    let notes = b"line one\nline two\n".to_vec();
    let reply = app.submit_multipart(
        &token,
        &Multipart::new()
            .text("to", recipient)
            .text("subject", "Your contract")
            .text("text", body_text)
            .text(
                "html",
                "<h2>Hello Judy</h2><p>The <b>BrowserHtmlMarker</b> contract is attached.</p>",
            )
            .file("attachment", "contract.pdf", "application/pdf", pdf.clone())
            .file("attachment", "notes.txt", "text/plain", notes),
    );
    assert_eq!(reply.status, 201, "submit: {}", reply.text());
    let link = app.notification_link(recipient);

    let browser = Chromium::launch(&chromium);
    let mut cdp = Cdp::connect(&browser.ws_url);
    let downloads = tempfile::tempdir().expect("download directory");
    cdp.call(
        None,
        "Browser.setDownloadBehavior",
        json!({"behavior": "allowAndName", "downloadPath": downloads.path(), "eventsEnabled": true}),
    );
    let target = cdp.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let attached = cdp.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    let session = attached["sessionId"]
        .as_str()
        .expect("session id")
        .to_owned();
    let mut page = Page { cdp, session };
    for domain in ["Page", "Runtime", "Log", "Network", "Audits"] {
        page.call(&format!("{domain}.enable"), json!({}));
    }

    // 1. The link from the email, fragment and all.
    let url = link.url.clone();
    page.navigating(|p| {
        p.call("Page.navigate", json!({"url": url}));
    });
    assert_eq!(
        page.eval_str("location.pathname"),
        format!("/p/{}", link.pickup_id)
    );
    assert_eq!(
        page.eval_str("location.hash"),
        "",
        "the script did not remove the secret from the address bar"
    );
    assert_eq!(
        page.eval_str(&format!(
            "sessionStorage.getItem('sealpost:k:{}') || ''",
            link.pickup_id
        )),
        link.secret,
        "the script did not keep the secret for the next steps"
    );
    let landing = page.eval_str("document.body.innerText");
    assert!(landing.contains("sender@example.org"), "{landing}");
    page.screenshot("pickup-1-landing");

    // 2. Email me a code.
    let before = app.outbox().len();
    page.navigating(|p| p.click("form[action$='/code'] button[type=submit]"));
    assert_eq!(
        page.eval_str("location.pathname"),
        format!("/p/{}/code", link.pickup_id)
    );
    let text = page.eval_str("document.body.innerText");
    assert_eq!(
        app.outbox().len(),
        before + 1,
        "no code mail; the page says: {text}\nrequest headers sent: {}",
        sent_headers(&page.cdp.history, "/code")
    );
    let code = app.last_mail_to(recipient).code();
    page.screenshot("pickup-2-code");

    // 3. Enter the code.
    page.eval(&format!(
        "document.getElementById('code').value = {}; true",
        json!(code)
    ));
    page.navigating(|p| p.click("form[action$='/verify'] button[type=submit]"));
    let text = page.eval_str("document.body.innerText");
    assert!(text.contains("confirmed"), "verification failed: {text}");

    // 4. The script filled the secret in; the recipient only clicks.
    assert_eq!(
        page.eval_str("document.querySelector(\"input[name='k']\").value"),
        link.secret,
        "the open form's secret was not filled from the fragment"
    );
    assert_eq!(
        page.eval("document.getElementById('k-field').hidden"),
        json!(true),
        "the filled-in secret field is still shown"
    );
    page.screenshot("pickup-3-open-form");
    page.navigating(|p| p.click("form[action$='/open'] button[type=submit]"));

    // 5. The message.
    page.screenshot("pickup-4-message");
    let content = page.eval_str("document.body.textContent");
    assert!(
        content.contains("Your contract"),
        "subject missing: {content}"
    );
    assert!(content.contains(body_text), "text missing: {content}");
    assert!(
        content.contains("contract.pdf") && content.contains("notes.txt"),
        "attachments missing: {content}"
    );
    let srcdoc =
        page.eval_str("(document.querySelector('iframe.message-html') || {getAttribute: () => ''}).getAttribute('srcdoc') || ''");
    assert!(
        srcdoc.contains("BrowserHtmlMarker"),
        "HTML part not in the frame: {srcdoc:?}"
    );
    // The sanitised HTML renders in its sandboxed frame (an out-of-process frame, so a target
    // of its own): its text is there, and its origin is opaque (no access to the page).
    let targets = page.cdp.call(None, "Target.getTargets", json!({}));
    let frame = targets["targetInfos"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["type"] == "iframe" && t["url"] == "about:srcdoc")
        })
        .unwrap_or_else(|| panic!("no about:srcdoc frame among the targets: {targets}"))
        .clone();
    let attached = page.cdp.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": frame["targetId"], "flatten": true}),
    );
    let frame_session = attached["sessionId"]
        .as_str()
        .expect("frame session")
        .to_owned();
    let inside = page.cdp.call(
        Some(&frame_session),
        "Runtime.evaluate",
        json!({"expression": "JSON.stringify([document.body.innerText, self.origin])", "returnByValue": true}),
    );
    let inside: Vec<String> =
        serde_json::from_str(inside["result"]["value"].as_str().unwrap_or("[]"))
            .unwrap_or_default();
    assert!(
        inside
            .first()
            .is_some_and(|t| t.contains("BrowserHtmlMarker contract is attached")),
        "the HTML frame does not show the HTML part: {inside:?}"
    );
    assert_eq!(
        inside.get(1).map(String::as_str),
        Some("null"),
        "the HTML frame is not sandboxed into an opaque origin"
    );

    // 6. Download the PDF through its form.
    let clicked = page.eval(
        "(() => { const li = [...document.querySelectorAll('ul.attachments li')]
             .find(li => li.textContent.includes('contract.pdf'));
           if (!li) return false; li.querySelector('button[type=submit]').click(); return true; })()",
    );
    assert_eq!(clicked, json!(true), "no download button for contract.pdf");
    let done = page.cdp.wait_event("Browser.downloadProgress", |p| {
        p["state"] == "completed" || p["state"] == "canceled"
    });
    assert_eq!(done["params"]["state"], "completed", "download: {done}");
    let guid = done["params"]["guid"].as_str().expect("download guid");
    let downloaded = std::fs::read(downloads.path().join(guid)).expect("read the download");
    assert!(
        downloaded == pdf,
        "downloaded bytes differ from the attachment"
    );

    // 7. Nothing went wrong on any page.
    // Let pending events arrive: a round trip flushes what the browser already sent.
    page.eval("true");
    let found = problems(&page.cdp.history);
    assert!(
        found.is_empty(),
        "the pages reported problems:\n{}",
        found.join("\n")
    );

    // Control: the CSP is in force and its violations would be seen by the checks above.
    let ran = page.eval(
        "(() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1'; \
         document.body.appendChild(s); return window.__injected === 1; })()",
    );
    assert_eq!(ran, json!(false), "an injected inline script ran: no CSP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while problems(&page.cdp.history).is_empty() && Instant::now() < deadline {
        if let Some(message) = page.cdp.read()
            && message.get("method").is_some()
        {
            page.cdp.history.push(message);
        }
    }
    assert!(
        !problems(&page.cdp.history).is_empty(),
        "a blocked inline script was not reported: the checks above could not see CSP violations"
    );

    // Close the browser and wait (bounded) for its end of the connection; the drop guard
    // kills whatever is left.
    page.cdp.call(None, "Browser.close", json!({}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match page.cdp.ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    drop(browser);
}
