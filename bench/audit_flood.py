#!/usr/bin/env python3
"""Flood Sealpost's unauthenticated entry points from one source address.

Each source is flooded for SECONDS from SOURCE_IP (127.0.0.2 by default: loopback too, so
the server sees another client than the tests' 127.0.0.1):

  token    GET /api/v1/messages/<4 kB id> with a bad bearer token
  code     POST /p/<id>/code (one-time codes beyond the hourly limit)
  verify   POST /p/<id>/verify with wrong codes
  smtp     SMTP sessions that try MAIL FROM without TLS or AUTH
  auth     SMTP STARTTLS + AUTH PLAIN with a wrong password

Prints one JSON object: for each source, the requests made and the replies by status.

  audit_flood.py HTTP_HOST:PORT SMTP_HOST:PORT PICKUP_ID [SECONDS] [SOURCE_IP] [SOURCES]
"""

import collections
import http.client
import json
import smtplib
import socket
import ssl
import sys
import time

http_addr, smtp_addr, pickup_id = sys.argv[1:4]
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
source_ip = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.2"
sources = sys.argv[6].split(",") if len(sys.argv) > 6 else ["token", "code", "verify", "smtp", "auth"]
http_host, http_port = http_addr.rsplit(":", 1)
smtp_host, smtp_port = smtp_addr.rsplit(":", 1)
origin = "http://%s" % http_addr


def http_request(method, path, body, headers):
    conn = http.client.HTTPConnection(http_host, int(http_port), timeout=10,
                                      source_address=(source_ip, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        return str(conn.getresponse().status)
    except OSError as e:
        return "error:" + type(e).__name__
    finally:
        conn.close()


def token():
    return http_request("GET", "/api/v1/messages/" + "a" * 4000, None,
                        {"Authorization": "Bearer not-a-token"})


def code():
    return http_request("POST", "/p/%s/code" % pickup_id, b"",
                     {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"})


def verify():
    return http_request("POST", "/p/%s/verify" % pickup_id, b"code=000000",
                     {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"})


def smtp():
    try:
        with smtplib.SMTP(smtp_host, int(smtp_port), timeout=10,
                          source_address=(source_ip, 0)) as s:
            s.ehlo("flood.test")
            return str(s.mail("flood@example.org")[0])
    except (OSError, smtplib.SMTPException) as e:
        return "error:" + type(e).__name__


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def auth():
    try:
        with smtplib.SMTP(smtp_host, int(smtp_port), timeout=10,
                          source_address=(source_ip, 0)) as s:
            s.ehlo("flood.test")
            s.starttls(context=ctx)
            s.ehlo("flood.test")
            try:
                s.login("flood-relay", "wrong password")
                return "235"
            except smtplib.SMTPAuthenticationError as e:
                return str(e.smtp_code)
    except smtplib.SMTPResponseException as e:
        return str(e.smtp_code)
    except (OSError, smtplib.SMTPException) as e:
        return "error:" + type(e).__name__


report = {}
for name in sources:
    fn = globals()[name]
    replies = collections.Counter()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        replies[fn()] += 1
        n += 1
    report[name] = {"requests": n, "replies": dict(replies)}
print(json.dumps(report))
