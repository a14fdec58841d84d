//! HTTP as a client sees it: requests to the running [`App`] (plain HTTP over `ureq`, or a raw
//! socket for bodies the server may refuse early), [`Reply`] with helpers for the documented
//! error shapes, the visible text of our pages, and `multipart/form-data` bodies.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use super::app::App;
use super::files::text;

/// How long one HTTP exchange may take (a 20 MiB upload or download included).
const HTTP_TIMEOUT: Duration = Duration::from_secs(180);

/// The client of [`App`]: no redirects followed, error statuses returned as replies.
pub(super) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into()
}

impl App {
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

    /// A browser-like form post, as [`App::post_form`], from the local address `from` (any
    /// loopback address, such as 127.0.0.2: another client as the server sees it), over a raw
    /// socket bound to it.
    pub fn post_form_from(
        &self,
        from: std::net::IpAddr,
        path: &str,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> Reply {
        use std::io::Write;
        let addr = self.base_url.trim_start_matches("http://");
        let server: std::net::SocketAddr = addr.parse().expect("server address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("tokio runtime");
        let mut stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(std::net::SocketAddr::new(from, 0))
                .unwrap_or_else(|e| panic!("bind {from}: {e}"));
            let stream = socket.connect(server).await.expect("connect");
            let stream = stream.into_std().expect("std stream");
            stream.set_nonblocking(false).expect("blocking");
            stream
        });
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .expect("read timeout");
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().copied())
            .finish();
        let cookie = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             {cookie}Connection: close\r\n\r\n{body}",
            self.base_url,
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write request");
        parse_http(&read_rest(&mut stream, Vec::new()))
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
}

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

/// Decode the entities askama and ammonia write.
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
