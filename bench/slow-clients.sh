#!/usr/bin/env bash
# Slow clients: `sealpost serve` (plain HTTP on loopback, its defaults otherwise) under 1,150
# slow HTTP connections from one address and then from 46, while curl times real requests;
# and how long it keeps a half-sent request, an idle kept-alive connection and 20
# unauthenticated SMTP sessions that only send NOOP. Prints Markdown tables for
# docs/PERFORMANCE.md. Takes about two minutes.
#
#   bench/slow-clients.sh                          # builds the release binary first
#   SEALPOST_BIN=/path/to/sealpost bench/slow-clients.sh   # another build (e.g. an older one)
#   CONNECTIONS=300 WAIT_S=40 bench/slow-clients.sh        # lighter, shorter
#
# The server runs with an open-file limit of NOFILE (1024: the soft limit systemd gives a
# service unless told otherwise). Needs python3 and curl. Everything is on 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
nofile=${NOFILE:-1024}
connections=${CONNECTIONS:-1150}
requests=${REQUESTS:-30}
wait_s=${WAIT_S:-90}

for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done
if [ -z "${SEALPOST_BIN:-}" ]; then
  echo "# cargo build --release -p sealpost-server" >&2
  cargo build -q --release -p sealpost-server
  SEALPOST_BIN=$target/release/sealpost
fi

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

env -i PATH="$PATH" HOME="$work" \
  SEALPOST_DATA_DIR="$work/data" \
  SEALPOST_HTTP_ADDR=127.0.0.1:0 \
  SEALPOST_SMTP_ADDR=127.0.0.1:0 \
  RUST_LOG=warn \
  bash -c "ulimit -n $nofile && exec \"\$0\" serve" "$SEALPOST_BIN" >"$work/out" 2>"$work/log" &
pid=$!
# The `listening` lines come once every listener is bound.
for _ in $(seq 600); do
  grep -q '^listening smtp=' "$work/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
http_port=$(sed -n 's/^listening http=.*:\([0-9]*\)$/\1/p' "$work/out")
smtp_port=$(sed -n 's/^listening smtp=.*:\([0-9]*\)$/\1/p' "$work/out")
[ -n "$http_port" ] && [ -n "$smtp_port" ] || { cat "$work/out" "$work/log" >&2; exit 1; }

# The client side holds every connection at once.
ulimit -n $((connections * 2 + 1024))
echo "$(date -u +%F) $(nproc) cores, open-file limit of the server $nofile, $("$SEALPOST_BIN" --version 2>/dev/null || echo sealpost)"
echo
python3 bench/slow_clients.py "$http_port" "$smtp_port" "$connections" "$requests" "$wait_s"
kill "$pid" && wait "$pid" || true
pid=
echo
echo "Server warnings logged (until it stopped): $(grep -c WARN "$work/log" || true); the first ones:"
grep WARN "$work/log" | cut -c1-300 | head -5 | sed 's/^/    /' || true
