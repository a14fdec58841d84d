//! `smtp::mime::parse` against Python's `email` package (`policy=default`) as the oracle:
//! for every message of a corpus, the text and HTML bodies and every attachment's bytes and
//! file name. The parser runs in-process; `mime_oracle.py` beside this file prints what
//! Python reads.
//!
//! What "equal" means:
//! - **Which parts count.** Python decides the structure (where parts begin and end, header
//!   parameters, transfer decoding); the oracle then applies to Python's tree the reader's
//!   rules of `smtp::mime` (its module doc): `message/*` parts are one attachment each, kept
//!   whole; multiparts are walked depth first, and one Python cannot split is read as
//!   `text/plain`; a `text/plain` or `text/html` part not marked `attachment` is body text,
//!   and a named one is an attachment too; every other part is an attachment. Attachments
//!   are compared in order.
//! - **Bytes.** An attachment's bytes are equal to Python's `get_payload(decode=True)`, byte
//!   for byte.
//! - **Nested messages.** Python keeps no bytes of a `message/*` part, only the message it
//!   parsed. Ours are equal when Python, reading our bytes as the body of a part of the same
//!   type, finds the same header fields and the same tree with the same decoded leaves;
//!   trailing line endings of a leaf are not compared (Python leaves the one before an
//!   enclosing boundary on a nested message's last part, RFC 2046 section 5.1.1 gives it to
//!   the boundary).
//! - **Names.** `clean_file_name` of the name Python reads (`filename`, else `name`, else the
//!   `begin` line of a uuencoded part) must be our name. An unnamed part is `attachment-N`; an
//!   unnamed nested message is named after its subject as Python decodes it, path separators
//!   made `_`, plus `.eml`, or `message-N.eml` (N: the attachment's position, from 1).
//! - **Text.** The body parts decoded with their charset (none, ASCII or unknown: UTF-8 with
//!   replacement characters), joined with "\n\n" (HTML: "\n<hr>\n"), equal as strings.
//! - **Where Python is wrong**, the oracle corrects it by a stated rule and still lets Python
//!   do the reading: obsolete `Name :` header syntax, a padded Content-Transfer-Encoding
//!   value, base64 followed by text that is not base64, base64 one character too long,
//!   encoded `message/*` parts, the line ending before a boundary on a multipart Python could
//!   not split, unquoted encoded-word file names, and trailing empty blocks of
//!   `message/delivery-status` (each spelled out in `mime_oracle.py`).
//! - A message with no header field at all is refused by Sealpost (`Refusal::NotAMessage`)
//!   and not compared; one that Python itself fails on is not compared either.
//!
//! Corpora: CPython's own `test_email` data (`msg_*.txt`) in the default suite, under
//! `common::require("cpython-email-corpus", …)`; and, for local runs only, the public fixtures
//! named by `SEALPOST_MIME_CORPUS=/path/to/corpus/mime` (never copied into the repository;
//! the test passes without looking when the variable is unset).
//!
//! Differences from Python before the parser was rewritten (mail-parser 0.11 alone, measured
//! with this oracle and these rules, so some are differences of rule rather than faults) and
//! after:
//!
//! | corpus | messages (refused) | attachments | before: attachments / messages with one, bodies, messages | after |
//! |---|---|---|---|---|
//! | CPython `test_email` | 48 (1) | 36 | 20 / 10, 12, 12 | 0 |
//! | `SEALPOST_MIME_CORPUS` (153 public fixtures) | 153 (1) | 113 | 27 / 25, 26, 44 | 0 |

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use sealpost_server::messages::clean_file_name;
use sealpost_server::smtp::mime::{Parsed, parse};
use serde_json::Value;

use common::{require_tool, text};

/// Proof: every message of CPython's e-mail test corpus parses to the same bodies and the
/// same attachments, byte for byte and name for name, as Python's `email` reads them.
#[test]
fn cpython_corpus_matches_python_email() {
    if require_tool("python3").is_none() {
        return;
    }
    let Some(files) = common::cpython_email_corpus() else {
        return;
    };
    let report = compare(&files);
    report.assert_clean("CPython test_email");
}

/// Proof: the public MIME fixtures (`SEALPOST_MIME_CORPUS`, local runs only) parse as Python's
/// `email` reads them.
#[test]
fn shared_corpus_matches_python_email() {
    let Some(dir) = common::env::var("SEALPOST_MIME_CORPUS") else {
        println!("skipping: SEALPOST_MIME_CORPUS is not set");
        return;
    };
    if require_tool("python3").is_none() {
        return;
    }
    let mut files = Vec::new();
    walk(Path::new(&dir), &mut files);
    files.retain(|p| {
        p.parent() != Some(Path::new(&dir))
            || !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("README.md" | "SOURCES.tsv")
            )
    });
    files.sort();
    assert!(!files.is_empty(), "no file under {dir}");
    let report = compare(&files);
    report.assert_clean(&dir);
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Run the oracle script; one JSON value per output line.
fn oracle(mode: &str, args: &[String]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime_oracle.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(mode)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "mime_oracle.py {mode} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[derive(Debug, Default)]
struct Report {
    messages: usize,
    python_errors: Vec<String>,
    /// Messages with no header field, which `parse` refuses (`Refusal::NotAMessage`).
    refused: Vec<String>,
    attachments: usize,
    attachments_mismatched: usize,
    messages_with_attachments_mismatched: usize,
    /// Messages with any difference: an attachment, the text or the HTML.
    messages_affected: usize,
    text_mismatched: usize,
    lines: Vec<String>,
}

impl Report {
    fn assert_clean(&self, corpus: &str) {
        println!(
            "{corpus}: {} messages ({} python errors, {} refused without header), {} \
             attachments; mismatched: {} attachments in {} messages, {} text or HTML bodies; \
             {} messages differ in all",
            self.messages,
            self.python_errors.len(),
            self.refused.len(),
            self.attachments,
            self.attachments_mismatched,
            self.messages_with_attachments_mismatched,
            self.text_mismatched,
            self.messages_affected
        );
        for line in &self.python_errors {
            println!("  python error {line}");
        }
        for line in &self.refused {
            println!("  refused {line}");
        }
        for line in &self.lines {
            println!("  {line}");
        }
        assert!(
            self.messages_affected == 0,
            "{corpus}: {} attachments in {} messages and {} text bodies differ from Python:\n{}",
            self.attachments_mismatched,
            self.messages_affected,
            self.text_mismatched,
            self.lines.join("\n")
        );
    }
}

/// One attachment of ours, as compared.
struct Ours<'a> {
    name: &'a str,
    bytes: &'a [u8],
}

fn compare(files: &[PathBuf]) -> Report {
    let args: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let expected = oracle("messages", &args);
    assert_eq!(expected.len(), files.len(), "one oracle line per file");
    let parsed: Vec<Option<Parsed>> = files
        .iter()
        .map(|p| parse(&std::fs::read(p).expect("read a corpus file")))
        .collect();

    // Our nested messages, read back by Python (one call for the whole corpus).
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut tree_args = Vec::new();
    for (i, (exp, ours)) in expected.iter().zip(&parsed).enumerate() {
        let (Some(atts), Some(ours)) = (exp["attachments"].as_array(), ours) else {
            continue;
        };
        for (j, (e, a)) in atts.iter().zip(&ours.attachments).enumerate() {
            if e["message"].as_bool() == Some(true) || e.get("tree").is_some() {
                let path = dir.path().join(format!("{i}-{j}"));
                std::fs::write(&path, &a.bytes).expect("write a nested message");
                let ctype = e["ctype"].as_str().unwrap_or("message/rfc822");
                tree_args.push(format!("{ctype}={}", path.display()));
            }
        }
    }
    let trees: HashMap<String, Value> = oracle("trees", &tree_args)
        .into_iter()
        .map(|v| {
            (
                v["file"].as_str().unwrap_or_default().to_owned(),
                v["tree"].clone(),
            )
        })
        .collect();

    let mut report = Report::default();
    for (i, ((file, exp), ours)) in files.iter().zip(&expected).zip(&parsed).enumerate() {
        let name = file.display();
        report.messages += 1;
        if let Some(err) = exp["error"].as_str() {
            report.python_errors.push(format!("{name}: {err}"));
            continue;
        }
        let atts: &[Value] = exp["attachments"].as_array().map_or(&[], Vec::as_slice);
        let Some(ours) = ours else {
            if exp["headers"].as_u64() == Some(0) {
                report.refused.push(name.to_string());
            } else {
                // Refused as not a message: every attachment is lost.
                report.attachments += atts.len();
                report.attachments_mismatched += atts.len();
                report.messages_with_attachments_mismatched += usize::from(!atts.is_empty());
                report.messages_affected += 1;
                report.lines.push(format!("{name}: not parsed at all"));
            }
            continue;
        };
        let mut affected = false;
        let mut attachment_affected = false;
        for (what, theirs, mine) in [
            ("text", exp["text"].as_str(), ours.text.as_deref()),
            ("html", exp["html"].as_str(), ours.html.as_deref()),
        ] {
            if theirs != mine {
                affected = true;
                report.text_mismatched += 1;
                report.lines.push(format!(
                    "{name}: {what} differs: python {} ours {}",
                    preview(theirs),
                    preview(mine)
                ));
            }
        }
        let ours_atts: Vec<Ours<'_>> = ours
            .attachments
            .iter()
            .map(|a| Ours {
                name: &a.filename,
                bytes: &a.bytes,
            })
            .collect();
        report.attachments += atts.len();
        for j in 0..atts.len().max(ours_atts.len()) {
            let problem = match (atts.get(j), ours_atts.get(j)) {
                (Some(e), None) => Some(format!("missing {}", describe(e))),
                (None, Some(a)) => Some(format!("extra {:?} ({} bytes)", a.name, a.bytes.len())),
                (Some(e), Some(a)) => {
                    let want_name = expected_name(e, j);
                    let mut problems = Vec::new();
                    if want_name != a.name {
                        problems.push(format!("name {:?}, python {want_name:?}", a.name));
                    }
                    if e.get("tree").is_some() {
                        let key = dir.path().join(format!("{i}-{j}")).display().to_string();
                        if trees.get(&key) != Some(&e["tree"]) {
                            problems.push(format!(
                                "nested message differs ({} bytes): python {} ours {}",
                                a.bytes.len(),
                                short(&e["tree"]),
                                trees.get(&key).map(short).unwrap_or_default()
                            ));
                        }
                    } else {
                        let want = base64::engine::general_purpose::STANDARD
                            .decode(e["b64"].as_str().unwrap_or_default())
                            .expect("base64 from the oracle");
                        if want != a.bytes {
                            problems.push(format!(
                                "bytes differ: {} bytes, python {} bytes{}",
                                a.bytes.len(),
                                want.len(),
                                first_difference(a.bytes, &want)
                            ));
                        }
                    }
                    (!problems.is_empty()).then(|| format!("{:?}: {}", a.name, problems.join("; ")))
                }
                (None, None) => None,
            };
            if let Some(problem) = problem {
                affected = true;
                attachment_affected = true;
                report.attachments_mismatched += 1;
                report
                    .lines
                    .push(format!("{name}: attachment {}: {problem}", j + 1));
            }
        }
        report.messages_affected += usize::from(affected);
        report.messages_with_attachments_mismatched += usize::from(attachment_affected);
    }
    report
}

/// The name we must give the oracle's attachment number `index` (from 0).
fn expected_name(e: &Value, index: usize) -> String {
    let fallback = if e["message"].as_bool() == Some(true) {
        match e["subject"]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(subject) => format!("{}.eml", subject.replace(['/', '\\'], "_")),
            None => format!("message-{}.eml", index + 1),
        }
    } else {
        format!("attachment-{}", index + 1)
    };
    clean_file_name(e["name"].as_str(), &fallback)
}

fn describe(e: &Value) -> String {
    format!(
        "{} {:?}",
        e["ctype"].as_str().unwrap_or_default(),
        e["name"]
            .as_str()
            .or(e["subject"].as_str())
            .unwrap_or("(unnamed)")
    )
}

fn preview(s: Option<&str>) -> String {
    match s {
        None => "none".to_owned(),
        Some(s) => {
            let cut: String = s.chars().take(60).collect();
            format!("{} chars {cut:?}", s.chars().count())
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(160).collect()
}

fn first_difference(ours: &[u8], want: &[u8]) -> String {
    let at = ours
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(want.len()));
    let show = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.min(b.len())..(at + 24).min(b.len())]).into_owned()
    };
    format!(
        ", first difference at {at}: ours {:?} python {:?}",
        show(ours),
        show(want)
    )
}
