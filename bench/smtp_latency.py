#!/usr/bin/env python3
"""Time from end of DATA (the final CRLF "." CRLF sent) to the server's reply, per message.

Usage: smtp_latency.py HOST PORT SESSIONS MESSAGES_PER_SESSION SIZE

SESSIONS parallel SMTP sessions each send MESSAGES_PER_SESSION messages of about SIZE bytes
(plain SMTP, one recipient) one after another on one connection. Prints one JSON line:
{"messages": n, "failed": n, "p50_ms": x, "p90_ms": x, "p99_ms": x, "max_ms": x, "wall_s": x}.
"""

import json
import socket
import sys
import threading
import time


def reply(f):
    """Read one (possibly multi-line) SMTP reply; returns (code, last line)."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4:
            raise ConnectionError("short reply %r" % line)
        if line[3:4] == b" ":
            return int(line[:3]), line.decode("ascii", "replace").strip()


def expect(f, code):
    got, line = reply(f)
    if got != code:
        raise RuntimeError("expected %d, got %s" % (code, line))


def message(session, n, size):
    head = (
        "From: <bench@clinic.example>\r\n"
        "To: <rcpt-%d-%d@example.net>\r\n"
        "Subject: latency %d/%d\r\n"
        "Message-ID: <lat-%d-%d@clinic.example>\r\n\r\n" % (session, n, session, n, session, n)
    ).encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789 " * 2 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def session(host, port, sno, count, size, out, failed):
    try:
        s = socket.create_connection((host, port), timeout=120)
        f = s.makefile("rb")
        expect(f, 220)
        s.sendall(b"EHLO latency.bench\r\n")
        expect(f, 250)
        for n in range(count):
            s.sendall(b"MAIL FROM:<bench@clinic.example>\r\n")
            expect(f, 250)
            s.sendall(b"RCPT TO:<rcpt-%d-%d@example.net>\r\n" % (sno, n))
            expect(f, 250)
            s.sendall(b"DATA\r\n")
            expect(f, 354)
            s.sendall(message(sno, n, size))
            t0 = time.perf_counter()
            s.sendall(b".\r\n")
            code, line = reply(f)
            elapsed = time.perf_counter() - t0
            if code != 250:
                failed.append(line)
                continue
            out.append(elapsed)
        s.sendall(b"QUIT\r\n")
        s.close()
    except Exception as e:  # a failed session is counted, not hidden
        failed.append(repr(e))


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def main():
    host, port, sessions, per_session, size = sys.argv[1:6]
    port, sessions, per_session, size = int(port), int(sessions), int(per_session), int(size)
    out, failed = [], []
    started = time.perf_counter()
    threads = [
        threading.Thread(target=session, args=(host, port, i, per_session, size, out, failed))
        for i in range(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    values = sorted(out)
    print(
        json.dumps(
            {
                "messages": len(values),
                "failed": len(failed),
                "first_failure": failed[0] if failed else None,
                "p50_ms": round(percentile(values, 50) * 1000, 2),
                "p90_ms": round(percentile(values, 90) * 1000, 2),
                "p99_ms": round(percentile(values, 99) * 1000, 2),
                "max_ms": round(values[-1] * 1000, 2) if values else None,
                "wall_s": round(wall, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
