//! Options a sender sets in a relayed message, because an SMTP client has no other place for
//! them: the header `X-Sealpost-Expires: 7d` (days; `2w` for weeks; a bare number is days),
//! or, for mail programs that cannot add headers, a tag in the subject such as
//! `[expires 7d]`. The header wins when both are given. Sealpost takes them out before it
//! stores the message: every `X-Sealpost-*` field leaves the stored original, and the tag
//! leaves the subject. A value it cannot read refuses the message with a reason, instead of
//! storing it under an expiry nobody asked for.

use std::borrow::Cow;

use crate::messages::Refusal;

/// The header the expiry is read from.
const EXPIRES: &str = "x-sealpost-expires";
/// Every header with this prefix is Sealpost's and is removed.
const PREFIX: &[u8] = b"x-sealpost-";

/// What the sender asked for, and the message without the asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    pub expires_in_days: Option<u32>,
    /// The subject without the tag.
    pub subject: String,
    /// The raw message without `X-Sealpost-*` fields, when it had any.
    pub stripped: Option<Vec<u8>>,
}

/// Read the options of `raw`, whose parsed subject is `subject`.
pub fn read(raw: &[u8], subject: &str) -> Result<SenderOptions, Refusal> {
    let (header_value, stripped) = own_fields(raw);
    let (subject, tag) = without_tag(subject);
    let expires_in_days = match (header_value, tag) {
        (Some(value), _) => Some(days(&value, "X-Sealpost-Expires")?),
        (None, Some(value)) => Some(days(&value, "the subject's [expires …] tag")?),
        (None, None) => None,
    };
    Ok(SenderOptions {
        expires_in_days,
        subject,
        stripped,
    })
}

/// `7d`, `7 days`, `2w`, `7`: a number of days.
fn days(value: &str, field: &'static str) -> Result<u32, Refusal> {
    let value = value.trim().to_ascii_lowercase();
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let unit = value[digits.len()..].trim();
    let per = match unit {
        "" | "d" | "day" | "days" => 1,
        "w" | "week" | "weeks" => 7,
        _ => 0,
    };
    match digits.parse::<u32>() {
        Ok(n) if per > 0 => Ok(n.saturating_mul(per)),
        _ => Err(Refusal::InvalidField {
            field: field.to_owned(),
            reason: Cow::Borrowed("must be a number of days such as 7d, or of weeks such as 2w"),
        }),
    }
}

/// The value of the (first) `X-Sealpost-Expires` field, and the message without any
/// `X-Sealpost-*` field (folded continuation lines included), if it had one.
fn own_fields(raw: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
    let head_end = find(raw, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| find(raw, b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    let mut kept = Vec::with_capacity(raw.len());
    let (mut value, mut removed, mut dropping) = (None, false, false);
    let mut at = 0;
    while at < head_end {
        let end = raw[at..head_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head_end, |i| at + i + 1);
        let line = &raw[at..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping =
                line.len() >= PREFIX.len() && line[..PREFIX.len()].eq_ignore_ascii_case(PREFIX);
            if dropping && value.is_none() {
                let text = String::from_utf8_lossy(line);
                if let Some((name, v)) = text.split_once(':')
                    && name.trim().eq_ignore_ascii_case(EXPIRES)
                {
                    value = Some(v.trim().to_owned());
                }
            }
        }
        if dropping {
            removed = true;
        } else {
            kept.extend_from_slice(line);
        }
        at = end;
    }
    kept.extend_from_slice(&raw[head_end..]);
    (value, removed.then_some(kept))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The subject without an `[expires …]` tag (case-insensitive), and the tag's value.
fn without_tag(subject: &str) -> (String, Option<String>) {
    let lower = subject.to_ascii_lowercase();
    let Some(start) = lower.find("[expires") else {
        return (subject.to_owned(), None);
    };
    let Some(len) = lower[start..].find(']') else {
        return (subject.to_owned(), None);
    };
    let value = subject[start + "[expires".len()..start + len]
        .trim()
        .to_owned();
    let rest = format!("{}{}", &subject[..start], &subject[start + len + 1..]);
    (
        rest.split_whitespace().collect::<Vec<_>>().join(" "),
        Some(value),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] =
        b"From: ann@clinic.example\r\nX-Sealpost-Expires: 2w\r\nSubject: Results\r\n\
        x-sealpost-note: one\r\n two\r\n\r\nbody\r\nX-Sealpost-Expires: 99d\r\n";

    /// Proof: the header gives the expiry (weeks as 7 days each), every `X-Sealpost-*` field
    /// (folded lines too) leaves the header and nothing else does, and the body is untouched
    /// even where it looks like such a field.
    #[test]
    fn the_header_sets_the_expiry_and_leaves_the_stored_message() -> Result<(), Refusal> {
        let options = read(MESSAGE, "Results [expires 3d]")?;
        assert_eq!(options.expires_in_days, Some(14));
        assert_eq!(options.subject, "Results");
        let stripped = options.stripped.unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&stripped),
            "From: ann@clinic.example\r\nSubject: Results\r\n\r\nbody\r\nX-Sealpost-Expires: 99d\r\n"
        );
        Ok(())
    }

    /// Proof: without the header, the subject's tag sets the expiry (any case, anywhere in
    /// the subject) and leaves the subject; without either, nothing changes.
    #[test]
    fn the_subject_tag_sets_the_expiry_and_leaves_the_subject() -> Result<(), Refusal> {
        let raw = b"Subject: x\r\n\r\nbody";
        let options = read(raw, "Lab results [Expires 7d] for Ann")?;
        assert_eq!(options.expires_in_days, Some(7));
        assert_eq!(options.subject, "Lab results for Ann");
        assert_eq!(options.stripped, None);
        let plain = read(raw, "Lab results")?;
        assert_eq!(plain.expires_in_days, None);
        assert_eq!(plain.subject, "Lab results");
        Ok(())
    }

    /// Proof: a value that is not a number of days or weeks is refused, naming the field.
    #[test]
    fn an_unreadable_expiry_is_refused() {
        for bad in ["soon", "7m", "-1d", ""] {
            let raw = format!("X-Sealpost-Expires: {bad}\r\n\r\nbody");
            let refused = read(raw.as_bytes(), "s");
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("X-Sealpost-Expires")),
                "{bad:?}: {refused:?}"
            );
        }
        assert!(read(b"Subject: s\r\n\r\n", "s [expires never]").is_err());
    }
}
