//! The MIME structure of a raw message: where each part's header block and body lie, and
//! which parts a multipart holds (RFC 2045, RFC 2046 section 5.1).
//!
//! The rules are those of Python's `email.feedparser`, which the differential test uses as
//! its oracle, because they are the ones RFC 2046 describes:
//! - a header block is the lines up to the first empty line; a line that is neither a header
//!   field (`name:`, or `name :` as RFC 5322 section 4.5.3 allows), a continuation (leading
//!   space or tab) nor an mbox `From ` line ends it, and belongs to the body;
//! - a boundary line is `--boundary`, optionally `--`, optionally spaces or tabs, alone on its
//!   line; text that merely contains the boundary is content;
//! - the line ending before a boundary line belongs to the boundary;
//! - the boundary of every enclosing multipart ends a part too, at any depth, so a nested
//!   multipart or message without its own closing line cannot swallow the parts after it;
//! - a multipart without a `boundary` parameter, or whose first boundary line never comes, is
//!   one opaque part whose body is its text.
//!
//! Header fields themselves (parameters, RFC 2231 continuations, encoded words, folding) are
//! read by `mail-parser`.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{ContentType, HeaderName, HeaderValue, MessageParser};

use super::decode::Encoding;

/// Multiparts nested deeper than this are kept as one opaque part: the parse stays bounded on
/// hostile input.
const MAX_DEPTH: usize = 32;

/// One MIME entity: the fields that matter here and where its body lies.
#[derive(Debug)]
pub(super) struct Entity<'a> {
    pub fields: Fields,
    /// The body as it stands in the message (still transfer-encoded).
    pub body: &'a [u8],
    /// The parts of a multipart that was split; `None` for every other entity.
    pub parts: Option<Vec<Entity<'a>>>,
}

/// What is read from an entity's header block.
#[derive(Debug, Default)]
pub(super) struct Fields {
    /// `type/subtype` in lower case, with the defaults of RFC 2045 section 5.2 applied.
    pub mime_type: String,
    pub boundary: Option<String>,
    pub charset: Option<String>,
    /// `Content-Disposition: attachment`.
    pub is_attachment: bool,
    /// `filename` of Content-Disposition, else `name` of Content-Type.
    pub file_name: Option<String>,
    pub encoding: Encoding,
    pub subject: Option<String>,
    /// The display name and address of the first mailbox of `From:`.
    pub from: Option<(String, String)>,
    /// The block had at least one header field.
    pub has_headers: bool,
}

/// Parse `data` as one message.
pub(super) fn parse(data: &[u8]) -> Entity<'_> {
    let mut active = Vec::new();
    Parser { data }.entity(0, &mut active, "text/plain", 0).0
}

/// Only the header block of `data` (a nested message), for its subject.
pub(super) fn header_fields(data: &[u8]) -> Fields {
    let parser = Parser { data };
    let (block, _) = parser.header_block(0, &[]);
    read_fields(block, "text/plain")
}

struct Parser<'a> {
    data: &'a [u8],
}

/// A line at `pos`: where its content ends (before `\r\n` or `\n`) and where the next begins.
fn line_at(data: &[u8], pos: usize) -> (usize, usize) {
    match data[pos..].iter().position(|&b| b == b'\n') {
        Some(i) => {
            let end = pos + i;
            let content_end = if end > pos && data[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            (content_end, end + 1)
        }
        None => (data.len(), data.len()),
    }
}

/// `Some(is_close)` when `line` is a delimiter line of `boundary`.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    rest.iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then_some(close)
}

fn is_header_line(line: &[u8]) -> bool {
    if line.starts_with(b"From ") || line.starts_with(b" ") || line.starts_with(b"\t") {
        return true;
    }
    let name_len = line
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')
        .unwrap_or(line.len());
    // White space before the colon is obsolete syntax that must be accepted (RFC 5322, 4.5.3).
    let rest = line[name_len..].trim_ascii_start();
    name_len > 0 && rest.first() == Some(&b':')
}

/// One trailing line ending removed (it belongs to the boundary that follows).
fn strip_eol(body: &[u8]) -> &[u8] {
    body.strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"))
        .unwrap_or(body)
}

impl<'a> Parser<'a> {
    fn ends_part(&self, line: &[u8], active: &[Vec<u8>]) -> bool {
        active.iter().any(|b| delimiter(line, b).is_some())
    }

    /// The header block from `pos`: its lines (for `mail-parser`) and where the body starts.
    fn header_block(&self, pos: usize, active: &[Vec<u8>]) -> (Vec<u8>, usize) {
        let mut block = Vec::new();
        let mut p = pos;
        while p < self.data.len() {
            let (end, next) = line_at(self.data, p);
            let line = &self.data[p..end];
            if line.is_empty() {
                return (block, next);
            }
            if self.ends_part(line, active) || !is_header_line(line) {
                break;
            }
            // An mbox `From ` line and a continuation with nothing to continue are no field.
            let continues = line[0] == b' ' || line[0] == b'\t';
            if continues && !block.is_empty() {
                // Unfolded here (RFC 5322, 2.2.3): mail-parser misreads a parameter whose
                // value is on the next line (`boundary=` CRLF ` "b"`).
                block.truncate(block.len() - 2);
            }
            let no_field = line.starts_with(b"From ") || (continues && block.is_empty());
            if !no_field {
                block.extend_from_slice(line);
                block.extend_from_slice(b"\r\n");
            }
            p = next;
        }
        (block, p)
    }

    /// Lines from `pos` up to the first that ends a part under `active` (or the end).
    fn scan(&self, mut pos: usize, active: &[Vec<u8>]) -> usize {
        while pos < self.data.len() {
            let (end, next) = line_at(self.data, pos);
            if self.ends_part(&self.data[pos..end], active) {
                return pos;
            }
            pos = next;
        }
        pos
    }

    /// The entity at `pos` and where it ends: at the line that ended it, or the end of data.
    fn entity(
        &self,
        pos: usize,
        active: &mut Vec<Vec<u8>>,
        default_type: &str,
        depth: usize,
    ) -> (Entity<'a>, usize) {
        let (block, body_start) = self.header_block(pos, active);
        let fields = read_fields(block, default_type);
        // A boundary cannot end in white space (RFC 2046, 5.1.1): what follows it on a
        // delimiter line is transport padding, so trailing white space is dropped.
        let boundary = fields
            .mime_type
            .starts_with("multipart/")
            .then(|| fields.boundary.as_deref().map(str::trim_end))
            .flatten()
            .filter(|b| !b.is_empty() && depth < MAX_DEPTH)
            .map(str::to_owned);
        if let Some(boundary) = boundary {
            return self.multipart(fields, body_start, boundary.into_bytes(), active, depth);
        }
        let end = self.scan(body_start, active);
        let entity = Entity {
            fields,
            body: &self.data[body_start..end],
            parts: None,
        };
        (entity, end)
    }

    fn multipart(
        &self,
        fields: Fields,
        body_start: usize,
        boundary: Vec<u8>,
        active: &mut Vec<Vec<u8>>,
        depth: usize,
    ) -> (Entity<'a>, usize) {
        let len = self.data.len();
        let opaque = |fields: Fields, body_end: usize, end: usize| {
            let entity = Entity {
                fields,
                body: &self.data[body_start..body_end],
                parts: None,
            };
            (entity, end)
        };
        // The preamble, up to the first delimiter line.
        let mut p = body_start;
        loop {
            if p >= len {
                return opaque(fields, len, len);
            }
            let (end, next) = line_at(self.data, p);
            let line = &self.data[p..end];
            if self.ends_part(line, active) {
                return opaque(fields, p, p);
            }
            match delimiter(line, &boundary) {
                Some(true) => return opaque(fields, p, self.scan(next, active)),
                Some(false) => break,
                None => p = next,
            }
        }
        let child_type = if fields.mime_type == "multipart/digest" {
            "message/rfc822"
        } else {
            "text/plain"
        };
        let mut parts = Vec::new();
        let end = loop {
            // `p` is at a delimiter line; repeated delimiter lines make no empty parts.
            while p < len {
                let (end, next) = line_at(self.data, p);
                let line = &self.data[p..end];
                if self.ends_part(line, active) || delimiter(line, &boundary).is_none() {
                    break;
                }
                p = next;
            }
            active.push(boundary.clone());
            let (mut part, part_end) = self.entity(p, active, child_type, depth + 1);
            active.pop();
            part.body = strip_eol(part.body);
            parts.push(part);
            p = part_end;
            if p >= len {
                break len;
            }
            let (end, next) = line_at(self.data, p);
            let line = &self.data[p..end];
            if self.ends_part(line, active) {
                break p;
            }
            match delimiter(line, &boundary) {
                Some(false) => {}
                // After the closing line, the epilogue up to an enclosing boundary.
                Some(true) | None => break self.scan(next, active),
            }
        };
        let entity = Entity {
            fields,
            body: &self.data[body_start..end],
            parts: Some(parts),
        };
        (entity, end)
    }
}

/// The first field named `name` (as Python's `email` does; `mail-parser` looks at the last).
fn first<'h, 'x>(
    headers: &'h [mail_parser::Header<'x>],
    name: &HeaderName<'_>,
) -> Option<&'h HeaderValue<'x>> {
    headers.iter().find(|h| &h.name == name).map(|h| &h.value)
}

/// A parameter split into RFC 2231 continuations (`name*0*=utf-8''%E4%B8; name*1*=%AD`),
/// from the first field `field` of the unfolded header `block`. mail-parser decodes each
/// piece on its own, so a character split between pieces, or any piece after the first in a
/// charset other than UTF-8, comes out garbled; RFC 2231 section 4.1 joins the octets first.
fn continued_param(block: &[u8], field: &str, param: &str) -> Option<String> {
    let line = block.split(|&b| b == b'\n').find(|l| {
        l.len() > field.len()
            && l[..field.len()].eq_ignore_ascii_case(field.as_bytes())
            && l[field.len()..].trim_ascii_start().starts_with(b":")
    })?;
    let line = String::from_utf8_lossy(line);
    let mut pieces: Vec<(u32, bool, &str)> = Vec::new();
    let mut rest = line.split_once(';')?.1;
    while !rest.is_empty() {
        // One `name=value`, the value a token or a quoted string.
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let next = quoted[end..].trim_start_matches('"');
            (&quoted[..end], next.split_once(';').map_or("", |(_, n)| n))
        } else {
            after.split_once(';').unwrap_or((after, ""))
        };
        rest = next;
        let name = name.trim();
        let Some((key, index)) = name.split_once('*') else {
            continue;
        };
        if !key.eq_ignore_ascii_case(param) {
            continue;
        }
        let (index, extended) = match index.strip_suffix('*') {
            Some(i) => (i, true),
            None => (index, false),
        };
        if let Ok(index) = index.parse::<u32>() {
            pieces.push((index, extended, value.trim()));
        }
    }
    if pieces.len() < 2 {
        return None;
    }
    pieces.sort_by_key(|p| p.0);
    let mut charset = None;
    let mut octets = Vec::new();
    for (i, (_, extended, value)) in pieces.iter().enumerate() {
        let mut value = *value;
        if i == 0 && *extended {
            let mut parts = value.splitn(3, '\'');
            if let (Some(cs), Some(_lang), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                charset = Some(cs);
                value = v;
            }
        }
        if *extended {
            octets.extend(percent_encoding::percent_decode_str(value));
        } else {
            octets.extend_from_slice(value.as_bytes());
        }
    }
    let decode = charset.and_then(|c| charset_decoder(c.as_bytes()));
    Some(match decode {
        Some(decode) => decode(&octets),
        None => String::from_utf8_lossy(&octets).into_owned(),
    })
}

fn read_fields(block: Vec<u8>, default_type: &str) -> Fields {
    let continued_filename = continued_param(&block, "Content-Disposition", "filename");
    let continued_name = continued_param(&block, "Content-Type", "name");
    let mut raw = block;
    raw.extend_from_slice(b"\r\n");
    let Some(message) = MessageParser::new().parse_headers(&raw) else {
        return Fields {
            mime_type: default_type.to_owned(),
            ..Fields::default()
        };
    };
    let headers = message.headers();
    let content_type: Option<&ContentType<'_>> =
        first(headers, &HeaderName::ContentType).and_then(HeaderValue::as_content_type);
    let mime_type = match (first(headers, &HeaderName::ContentType), content_type) {
        (None, _) => default_type.to_owned(),
        (Some(_), Some(ct)) => match ct.subtype() {
            Some(sub) if !ct.ctype().is_empty() && !sub.is_empty() => {
                format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
            }
            _ => "text/plain".to_owned(),
        },
        (Some(_), None) => "text/plain".to_owned(),
    };
    let disposition =
        first(headers, &HeaderName::ContentDisposition).and_then(HeaderValue::as_content_type);
    let encoding = first(headers, &HeaderName::ContentTransferEncoding)
        .and_then(HeaderValue::as_text)
        .map_or(Encoding::Identity, |v| Encoding::from_header(Some(v)));
    let param = |ct: Option<&ContentType<'_>>, name: &str| {
        ct.and_then(|ct| ct.attribute(name)).map(str::to_owned)
    };
    Fields {
        mime_type,
        boundary: param(content_type, "boundary"),
        charset: param(content_type, "charset"),
        is_attachment: disposition.is_some_and(ContentType::is_attachment),
        file_name: continued_filename
            .or_else(|| param(disposition, "filename"))
            .or(continued_name)
            .or_else(|| param(content_type, "name")),
        encoding,
        subject: first(headers, &HeaderName::Subject)
            .and_then(HeaderValue::as_text)
            .map(str::to_owned),
        from: first(headers, &HeaderName::From)
            .and_then(HeaderValue::as_address)
            .and_then(|a| a.first())
            .and_then(|a| Some((a.name()?.to_owned(), a.address()?.to_owned()))),
        has_headers: !headers.is_empty(),
    }
}
