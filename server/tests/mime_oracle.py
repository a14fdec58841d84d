"""The oracle of server/tests/mime_oracle.rs: Python's `email` package (policy=default).

Python parses each message (structure, header parameters, transfer decoding); this script
applies to Python's tree the same reader's rules that `smtp::mime` documents (which parts are
body text, which are attachments, how they are named) and prints one JSON line per input.

    python3 mime_oracle.py messages FILE...       one line per message:
        {"file", "text", "html", "attachments": [{"name", "subject", "ctype", "message",
         "b64" | "tree"}]} or {"file", "error"}
    python3 mime_oracle.py trees CTYPE=FILE...    one line per file: {"file", "tree"}, the
        tree of FILE's bytes read as the body of a part of type CTYPE

The rules (mirrored from `smtp::mime`):
- a `message/*` part is one attachment, kept whole; `message/rfc822` and `message/global` are
  named after their inner subject when no file name is declared; one sent base64 or
  quoted-printable encoded (RFC 2046 forbids it) is the message Python decodes from it;
- a multipart part is walked into, depth first; a multipart that Python could not split (no
  boundary, or no boundary line found) is read as `text/plain`;
- a `text/plain` or `text/html` part whose disposition is not `attachment` is body text;
  several are joined with "\n\n" (text) or "\n<hr>\n" (HTML);
- every other part, and a body part with a file name, is an attachment: its transfer-decoded
  bytes, named by `filename`, else `name`, else (uuencoded) the name on its `begin` line;
- body text is decoded with its `charset`; none, ASCII or an unknown charset read as UTF-8,
  with replacement characters for bytes that do not decode;
- where Python gives up on base64 whose length is one more than a multiple of four (it then
  returns the encoded text), the last character is dropped and the rest decoded.
"""

import base64
import codecs
import email
import email.errors
import email.policy
import hashlib
import json
import re
import sys

POLICY = email.policy.default
ASCII_NAMES = {"ascii", "us-ascii", "ansi_x3.4-1968", "646", "us"}
UU = {"x-uuencode", "uuencode", "uue", "x-uue"}


def safe(s):
    """A str that JSON can carry (lone surrogates from undecodable bytes replaced)."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def strip_eol(b):
    return b.rstrip(b"\r\n")


def tree(m):
    """Header fields and the tree of content, leaves as SHA-256 of their decoded bytes.

    Trailing line endings of a leaf are not compared: Python leaves the one before an enclosing
    boundary on the last part of a nested message, where RFC 2046 section 5.1.1 gives it to the
    boundary.
    """
    node = {"h": [[safe(k), safe(str(v) if not isinstance(v, str) else v)]
                  for k, v in m.raw_items()]}
    if m.is_multipart():
        node["p"] = [tree(c) for c in m.get_payload()]
    else:
        payload = m.get_payload(decode=True) or b""
        node["b"] = hashlib.sha256(strip_eol(payload)).hexdigest()
    return node


def payload_bytes(part):
    payload = part.get_payload(decode=True) or b""
    if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in part.defects):
        symbols = re.sub(rb"[^A-Za-z0-9+/]", b"", payload)[:-1]
        payload = base64.b64decode(symbols + b"=" * (-len(symbols) % 4))
    return payload


def text_of(part):
    payload = payload_bytes(part)
    charset = (part.get_param("charset") or "").strip().lower()
    if isinstance(charset, tuple):
        charset = ""
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


def summarise(msg):
    text, html, attachments = [], [], []

    def walk(part):
        ctype = part.get_content_type()
        maintype = part.get_content_maintype()
        filename = part.get_filename()
        if maintype == "message":
            is_message = ctype in ("message/rfc822", "message/global")
            subject = None
            payload = part.get_payload()
            cte = str(part.get("content-transfer-encoding", "")).strip().lower()
            if cte in ("base64", "quoted-printable") and isinstance(payload, list) and payload \
                    and not payload[0].keys():
                encoded = email.message_from_string(
                    "Content-Transfer-Encoding: %s\n\n%s" % (cte, payload[0].get_payload()),
                    policy=POLICY)
                payload = [email.message_from_bytes(payload_bytes(encoded), policy=POLICY)]
            if is_message and isinstance(payload, list) and payload:
                subject = payload[0].get("subject")
                subject = safe(str(subject)) if subject is not None else None
            attachments.append({
                "name": safe(filename) if filename is not None else None,
                "subject": subject,
                "ctype": ctype,
                "message": is_message,
                "tree": tree_of_payload(part, payload),
            })
            return
        if part.is_multipart():
            for child in part.get_payload():
                walk(child)
            return
        if maintype == "multipart":
            ctype = "text/plain"
        is_body = (part.get_content_disposition() != "attachment"
                   and ctype in ("text/plain", "text/html"))
        if is_body and ctype == "text/plain":
            text.append(text_of(part))
        elif is_body:
            html.append(text_of(part))
        if not is_body or filename is not None:
            cte = str(part.get("content-transfer-encoding", "")).strip().lower()
            name = filename
            if name is None and cte in UU:
                name = uu_name(part)
            attachments.append({
                "name": safe(name) if name is not None else None,
                "subject": None,
                "ctype": ctype,
                "message": False,
                "b64": base64.b64encode(payload_bytes(part)).decode(),
            })

    walk(msg)
    return {
        "text": safe("\n\n".join(text)) if text else None,
        "html": safe("\n<hr>\n".join(html)) if html else None,
        "attachments": attachments,
    }


def tree_of_payload(part, payload=None):
    payload = part.get_payload() if payload is None else payload
    if isinstance(payload, list):
        return [tree(m) for m in payload]
    data = part.get_payload(decode=True) or b""
    return hashlib.sha256(strip_eol(data)).hexdigest()


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    for arg in args:
        if mode == "messages":
            rec = {"file": arg}
            try:
                with open(arg, "rb") as f:
                    msg = email.message_from_bytes(f.read(), policy=POLICY)
                rec.update(summarise(msg))
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
