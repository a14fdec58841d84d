#!/usr/bin/env python3
"""Slow clients against a running Sealpost: prints a Markdown table for docs/PERFORMANCE.md.

Usage: slow_clients.py HTTP_PORT SMTP_PORT [CONNECTIONS] [REQUESTS] [WAIT_S]

Everything is on loopback; other clients come from other 127.0.0.0/8 addresses.

1. CONNECTIONS (1,150) slow HTTP connections, each sending a request line and then one header
   byte every 5 s (slowloris), all from 127.0.0.2; then the same number spread over 46
   addresses (25 from each of 127.0.1.1 to 127.0.1.46). While they are held, REQUESTS (30)
   real requests `curl /healthz` from 127.0.0.1, one after another, each with a 5 s limit.
2. At the same time, for up to WAIT_S (90) seconds: how long the server keeps open a
   connection that sent half a request line (then nothing, or a byte every 5 s), and one
   kept alive after a response; and 20
   SMTP sessions from 127.0.0.4 that say EHLO and then only NOOP every 8 s, never AUTH.
"""

import select
import socket
import subprocess
import sys
import threading
import time

HTTP_PORT, SMTP_PORT = int(sys.argv[1]), int(sys.argv[2])
CONNECTIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 1150
REQUESTS = int(sys.argv[4]) if len(sys.argv) > 4 else 30
WAIT_S = float(sys.argv[5]) if len(sys.argv) > 5 else 90.0


def connect(src, port, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def is_closed(s):
    """Whether the peer closed (or reset) `s`, without waiting."""
    poll = select.poll()
    poll.register(s, select.POLLIN)
    if not poll.poll(0):
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def curl_run(n):
    """n requests from 127.0.0.1, one after another: (ok count, [seconds of the ok ones])."""
    ok, times = 0, []
    for _ in range(n):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "--max-time", "5",
             "-w", "%{http_code} %{time_total}", "http://127.0.0.1:%d/healthz" % HTTP_PORT],
            capture_output=True, text=True).stdout.split()
        if len(out) == 2 and out[0] == "200":
            ok += 1
            times.append(float(out[1]))
    return ok, times


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def curl_cell(n):
    ok, times = curl_run(n)
    if not ok:
        return "%d / %d" % (ok, n), "—"
    return "%d / %d" % (ok, n), "%.1f / %.1f ms" % (pct(times, 50) * 1000, max(times) * 1000)


class Slowloris:
    """Slow connections that trickle header bytes until stopped."""

    def __init__(self, sources):
        self.socks, self.failed = [], 0
        for src in sources:
            try:
                s = connect(src, HTTP_PORT)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
                self.socks.append(s)
            except OSError:
                self.failed += 1
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)
        self.thread.start()

    def trickle(self):
        while not self.stop.wait(5):
            for s in self.socks:
                try:
                    s.send(b"X", socket.MSG_DONTWAIT)
                except OSError:
                    pass

    def held(self):
        return sum(1 for s in self.socks if not is_closed(s))

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def flood_row(label, sources):
    flood = Slowloris(sources)
    time.sleep(2)  # let the server accept (or refuse) every connection
    held = flood.held()
    ok, latency = curl_cell(REQUESTS)
    flood.close()
    time.sleep(2)  # let the server notice the closed connections
    closed = len(flood.socks) - held
    return "| %s | %d | %d | %d | %s | %s |" % (label, held, closed, flood.failed, ok, latency)


def lifetime(open_fn, results, key, trickle=False):
    """Seconds until the server closes the connection `open_fn` returns, or None after WAIT_S;
    with `trickle`, one more header byte is sent every 5 s meanwhile."""
    start = time.time()
    try:
        s = open_fn()
    except OSError as e:
        results[key] = "refused (%s)" % e
        return
    s.settimeout(1.0)
    sent = start
    while time.time() - start < WAIT_S:
        try:
            if trickle and time.time() - sent >= 5:
                s.send(b"X")
                sent = time.time()
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
    else:
        results[key] = None
        return
    results[key] = time.time() - start


def half_request():
    s = connect("127.0.0.5", HTTP_PORT)
    s.sendall(b"GET /heal")
    return s


def kept_alive():
    s = connect("127.0.0.6", HTTP_PORT)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.recv(4096)
    return s


def smtp_noop(results, i):
    """One unauthenticated SMTP session sending NOOP every 8 s: how it ended, and when."""
    start = time.time()
    try:
        s = connect("127.0.0.4", SMTP_PORT, timeout=WAIT_S)
        f = s.makefile("rb")
        greeting = f.readline()
        if not greeting.startswith(b"220"):
            results[i] = ("refused", greeting[:9].decode("ascii", "replace").strip(), 0)
            return
        s.sendall(b"EHLO slow.example\r\n")
        while True:
            line = f.readline()
            if not line or line[3:4] == b" ":
                break
        while time.time() - start < WAIT_S:
            time.sleep(8)
            s.sendall(b"NOOP\r\n")
            line = f.readline()
            if not line.startswith(b"250"):
                code = line[:9].decode("ascii", "replace").strip() or "closed"
                results[i] = ("closed", code, time.time() - start)
                return
        results[i] = ("open", "", time.time() - start)
    except OSError as e:
        results[i] = ("closed", type(e).__name__, time.time() - start)


def seconds(value):
    if value is None:
        return "still open after %.0f s" % WAIT_S
    if isinstance(value, str):
        return value
    return "closed after %.1f s" % value


def main():
    probes = {}
    smtp = {}
    threads = [threading.Thread(target=lifetime, args=(half_request, probes, "half")),
               threading.Thread(target=lifetime, args=(half_request, probes, "trickle", True)),
               threading.Thread(target=lifetime, args=(kept_alive, probes, "idle"))]
    threads += [threading.Thread(target=smtp_noop, args=(smtp, i)) for i in range(20)]
    for t in threads:
        t.start()

    print("| load | slow connections held | closed by the server at once | not connected within 5 s "
          "| real requests answered `200` (5 s limit) | p50 / max of those |")
    print("|---|---|---|---|---|---|")
    print("| none | 0 | 0 | 0 | %s | %s |" % curl_cell(REQUESTS))
    print(flood_row("%d from one address" % CONNECTIONS, ["127.0.0.2"] * CONNECTIONS))
    per = 25
    spread = ["127.0.1.%d" % (1 + i // per) for i in range(CONNECTIONS)]
    print(flood_row("%d from %d addresses" % (CONNECTIONS, (CONNECTIONS + per - 1) // per), spread))

    for t in threads:
        t.join()
    print()
    print("| slow client | what the server did |")
    print("|---|---|")
    print("| HTTP: half a request line (`GET /heal`), then nothing | %s |" % seconds(probes.get("half")))
    print("| HTTP: half a request line, then one more byte every 5 s | %s |" % seconds(probes.get("trickle")))
    print("| HTTP: one request answered, connection kept alive, then nothing | %s |" % seconds(probes.get("idle")))
    outcomes = {}
    for kind, code, at in smtp.values():
        outcomes.setdefault((kind, code), []).append(at)
    whats = []
    for (kind, code), ats in sorted(outcomes.items()):
        if kind == "refused":
            whats.append("%d refused at once with `%s`" % (len(ats), code))
        elif kind == "open":
            whats.append("%d still open after %.0f s" % (len(ats), WAIT_S))
        else:
            whats.append("%d closed with `%s` after %.0f–%.0f s" % (len(ats), code, min(ats), max(ats)))
    print("| SMTP: 20 sessions from one address, EHLO then NOOP every 8 s, no AUTH | %s |"
          % "; ".join(whats))


main()
