"""The oracle of server/tests/mime_oracle.rs: Python's `email` package (policy=default).

Python parses each message (structure, header parameters, transfer decoding); this script
applies to Python's tree the same reader's rules that `smtp::mime` documents (which parts are
body text, which are attachments, how they are named) and prints one JSON line per input.

    python3 mime_oracle.py messages FILE...       one line per message:
        {"file", "headers", "text", "html", "attachments": [{"name", "subject", "ctype",
         "message", "b64" | "tree"}]}, or {"file", "error"} where Python itself fails
    python3 mime_oracle.py trees CTYPE=FILE...    one line per file: {"file", "tree"}, the
        tree of FILE's bytes read as the body of a part of type CTYPE

The reader's rules (mirrored from `smtp::mime`):
- a `message/*` part is one attachment, kept whole; `message/rfc822` and `message/global` are
  named after their inner subject when no file name is declared;
- a multipart part is walked into, depth first; a multipart that Python could not split (no
  boundary, or no boundary line found) is read as `text/plain`;
- a `text/plain` or `text/html` part whose disposition is not `attachment` is body text;
  several are joined with "\\n\\n" (text) or "\\n<hr>\\n" (HTML);
- every other part, and a body part with a file name, is an attachment: its transfer-decoded
  bytes, named by `filename`, else `name`, else (uuencoded) the name on its `begin` line;
- body text is decoded with its `charset`; none, ASCII or an unknown charset read as UTF-8,
  with replacement characters for bytes that do not decode.

Where Python reads a message in a way no mail client would, the oracle corrects Python by a
stated rule, and still lets Python do the reading:
- a header field name followed by white space before its colon (RFC 5322 section 4.5.3, an
  obsolete form parsers must accept) ends Python's header block: the white space is removed
  from the message's header block before Python reads it;
- a Content-Transfer-Encoding with white space around it (`base64 `) is not decoded by
  Python: the value is trimmed;
- base64 ends at the first line that is not base64 once data began (a list footer, or the
  rest of a part whose closing boundary is broken), and lines of text before the data are
  no data; Python decodes the letters of such lines as base64, so the oracle hands Python
  only the base64 lines. Where Python then gives up on a length of one more than a multiple
  of four (it returns the encoded text), the last character is dropped;
- a `message/*` part sent base64 or quoted-printable encoded (RFC 2046 forbids it) is the
  message Python decodes from it, not the encoded text read as a message;
- the line ending before a boundary belongs to the boundary (RFC 2046 section 5.1.1); Python
  leaves it on a multipart it could not split: the oracle removes it there;
- a file name given as an unquoted encoded word (`name==?koi8-r?B?...?=`), which Python's
  default policy cannot parse, is read with the compat32 policy and decoded with
  `email.header`;
- trailing empty header blocks of a `message/delivery-status` are not compared (Python makes
  one more of a blank line before the boundary).
"""

import base64
import codecs
import email
import email.errors
import email.header
import email.message
import email.policy
import hashlib
import json
import re
import sys

POLICY = email.policy.default
ASCII_NAMES = {"ascii", "us-ascii", "ansi_x3.4-1968", "646", "us"}
UU = {"x-uuencode", "uuencode", "uue", "x-uue"}
BASE64_LINE = re.compile(r"^[A-Za-z0-9+/= \t]*$")


def safe(s):
    """A str that JSON can carry (lone surrogates from undecodable bytes replaced)."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def strip_eol(b):
    return b.rstrip(b"\r\n")


def obsolete_names_fixed(raw):
    """`Name :` made `Name:` in the top header block."""
    lines = raw.splitlines(keepends=True)
    for i, line in enumerate(lines):
        fixed = re.sub(rb"^([!-9;-~]+)[ \t]+:", rb"\1:", line)
        if not re.match(rb"([!-9;-~]*:|[ \t]|From )", fixed) or not fixed.strip(b"\r\n"):
            break
        lines[i] = fixed
    return b"".join(lines)


def cte_of(part):
    return str(part.get("content-transfer-encoding", "")).strip().lower()


def base64_lines(text):
    """The lines of `text` that carry the base64 data (see the module doc)."""
    kept = []
    for line in text.splitlines():
        if BASE64_LINE.match(line):
            kept.append(line)
            if "=" in line:
                break
        elif any(l.strip() for l in kept):
            break
    return "\n".join(kept)


def payload_bytes(part):
    """Python's transfer decoding of a leaf, corrected as the module doc says."""
    cte = cte_of(part)
    raw = part.get_payload()
    if cte == "base64" and isinstance(raw, str):
        tmp = email.message.Message(policy=POLICY)
        tmp["Content-Transfer-Encoding"] = "base64"
        tmp.set_payload(base64_lines(raw))
        part = tmp
    elif cte != str(part.get("content-transfer-encoding", "")).lower():
        part.replace_header("Content-Transfer-Encoding", cte)
    payload = part.get_payload(decode=True) or b""
    if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in part.defects):
        symbols = re.sub(rb"[^A-Za-z0-9+/]", b"", payload)[:-1]
        payload = base64.b64decode(symbols + b"=" * (-len(symbols) % 4))
    return payload


def text_of(payload, part):
    charset = part.get_param("charset") or ""
    charset = charset.strip().lower() if isinstance(charset, str) else ""
    if not charset or charset in ASCII_NAMES:
        return payload.decode("utf-8", "replace")
    try:
        codecs.lookup(charset)
    except LookupError:
        return payload.decode("utf-8", "replace")
    return payload.decode(charset, "replace")


def uu_name(part):
    raw = part.get_payload(decode=False)
    if isinstance(raw, str):
        for line in raw.splitlines():
            m = re.match(r"begin [0-7]+ (.+)$", line)
            if m:
                return safe(m.group(1).strip())
    return None


def tree(m):
    """Header fields and the tree of content, leaves as SHA-256 of their decoded bytes.

    Trailing line endings of a leaf are not compared: Python leaves the one before an enclosing
    boundary on the last part of a nested message, where RFC 2046 section 5.1.1 gives it to the
    boundary.
    """
    node = {"h": [[safe(k), safe(str(v))] for k, v in m.raw_items()]}
    if m.is_multipart():
        node["p"] = [tree(c) for c in m.get_payload()]
    else:
        node["b"] = hashlib.sha256(strip_eol(m.get_payload(decode=True) or b"")).hexdigest()
    return node


EMPTY = {"h": [], "b": hashlib.sha256(b"").hexdigest()}


def tree_of_payload(part, payload=None):
    payload = part.get_payload() if payload is None else payload
    if isinstance(payload, list):
        trees = [tree(m) for m in payload]
        if part.get_content_type() == "message/delivery-status":
            while trees and trees[-1] == EMPTY:
                trees.pop()
        return trees
    return hashlib.sha256(strip_eol(part.get_payload(decode=True) or b"")).hexdigest()


def summarise(msg, compat):
    text, html, attachments = [], [], []
    compat_parts = list(compat.walk())

    def file_name(part, index):
        name = part.get_filename()
        if name is None and index < len(compat_parts):
            old = compat_parts[index].get_filename()
            if old is not None and "=?" in old:
                name = str(email.header.make_header(email.header.decode_header(old)))
        return safe(name) if name is not None else None

    def message(part, name):
        ctype = part.get_content_type()
        payload = part.get_payload()
        cte = cte_of(part)
        if cte in ("base64", "quoted-printable") and isinstance(payload, list) and payload \
                and not payload[0].keys():
            encoded = email.message.Message(policy=POLICY)
            encoded["Content-Transfer-Encoding"] = cte
            encoded.set_payload(payload[0].get_payload())
            payload = [email.message_from_bytes(payload_bytes(encoded), policy=POLICY)]
        is_message = ctype in ("message/rfc822", "message/global")
        subject = None
        if is_message and isinstance(payload, list) and payload:
            subject = payload[0].get("subject")
            subject = safe(str(subject)) if subject is not None else None
        attachments.append({
            "name": name,
            "subject": subject,
            "ctype": ctype,
            "message": is_message,
            "tree": tree_of_payload(part, payload),
        })

    def walk(part, in_multipart):
        index = walk.index
        walk.index += 1
        ctype = part.get_content_type()
        maintype = part.get_content_maintype()
        name = file_name(part, index)
        if maintype == "message":
            message(part, name)
            # Python's walk goes into the nested message; ours does not.
            walk.index += sum(1 for _ in part.walk()) - 1
            return
        if part.is_multipart():
            for child in part.get_payload():
                walk(child, True)
            return
        payload = payload_bytes(part)
        if maintype == "multipart":
            ctype = "text/plain"
            if in_multipart:
                for eol in (b"\r\n", b"\n"):
                    if payload.endswith(eol):
                        payload = payload[: -len(eol)]
                        break
        is_body = (part.get_content_disposition() != "attachment"
                   and ctype in ("text/plain", "text/html"))
        if is_body:
            (text if ctype == "text/plain" else html).append(text_of(payload, part))
        if not is_body or name is not None:
            if name is None and cte_of(part) in UU:
                name = uu_name(part)
            attachments.append({
                "name": name,
                "subject": None,
                "ctype": ctype,
                "message": False,
                "b64": base64.b64encode(payload).decode(),
            })

    walk.index = 0
    walk(msg, False)
    return {
        "text": safe("\n\n".join(text)) if text else None,
        "html": safe("\n<hr>\n".join(html)) if html else None,
        "attachments": attachments,
    }


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    for arg in args:
        if mode == "messages":
            rec = {"file": arg}
            try:
                with open(arg, "rb") as f:
                    raw = obsolete_names_fixed(f.read())
                msg = email.message_from_bytes(raw, policy=POLICY)
                compat = email.message_from_bytes(raw, policy=email.policy.compat32)
                rec.update(summarise(msg, compat), headers=len(msg.keys()))
            except Exception as e:  # Python itself failed on this message: not compared
                rec = {"file": arg, "error": "%s: %s" % (type(e).__name__, e)}
        else:
            ctype, _, path = arg.partition("=")
            with open(path, "rb") as f:
                body = f.read()
            eol = b"\r\n" if b"\r\n" in body else b"\n"
            wrapped = b"Content-Type: " + ctype.encode() + eol + eol + body
            part = email.message_from_bytes(wrapped, policy=POLICY)
            rec = {"file": path, "tree": tree_of_payload(part)}
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
