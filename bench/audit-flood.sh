#!/usr/bin/env bash
# Audit growth under a flood from one client: starts `sealpost serve` on loopback with a file
# outbox, submits one message, then bench/audit_flood.py floods every unauthenticated entry
# point (bad API tokens, pickup code requests, wrong codes, SMTP sessions without TLS, wrong
# SMTP AUTH passwords) from 127.0.0.2 for SECONDS each, stops the server with SIGTERM (which
# writes the counted refusals), and prints the audit rows the flooding client added, per action
# and per minute of flooding, as Markdown for docs/PERFORMANCE.md.
#
#   bench/audit-flood.sh                         # the binary of this tree (release build)
#   BIN=/path/to/sealpost bench/audit-flood.sh   # another build, e.g. an older one
#   SECONDS_PER_SOURCE=5 bench/audit-flood.sh
#
# Needs python3 and curl. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
per_source=${SECONDS_PER_SOURCE:-5}
bin=${BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -q -p sealpost-server
  bin=${CARGO_TARGET_DIR:-target}/release/sealpost
fi
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SEALPOST_DATA_DIR=$work/data SEALPOST_HTTP_ADDR=127.0.0.1:$port \
  SEALPOST_SMTP_ADDR=127.0.0.1:0 SEALPOST_BASE_URL=http://127.0.0.1:$port
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q '^listening smtp=' "$work/serve.log" && break; sleep 0.05; done
smtp_addr=$(sed -n 's/^listening smtp=//p' "$work/serve.log")
[ -n "$smtp_addr" ] || { cat "$work/serve.log" >&2; exit 1; }

"$bin" user add --email sender@example.org --role sender >/dev/null
token=$("$bin" token create --email sender@example.org | tail -1)
"$bin" relay add --name flood-relay >/dev/null
curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"to":["target@example.net"],"subject":"s","text":"hi"}' "http://127.0.0.1:$port/api/v1/messages"
pickup_id=$(grep -rhoE '/p/[A-Za-z0-9_-]{22}' "$work/data/outbox" | head -1 | cut -c4-)
before=$("$bin" audit export --format jsonl | wc -l)

report=$(python3 bench/audit_flood.py "127.0.0.1:$port" "$smtp_addr" "$pickup_id" "$per_source" 127.0.0.2)
kill -TERM "$pid"
wait "$pid" || true
pid=

"$bin" audit export --format jsonl | tail -n +"$((before + 1))" >"$work/added.jsonl"
python3 - "$work/added.jsonl" "$per_source" "$report" <<'EOF'
import collections, json, sys
path, per_source, report = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
rows = [json.loads(l) for l in open(path) if l.strip()]
mine = [r for r in rows if r.get("ip") == "127.0.0.2"]
minutes = per_source * len(report) / 60
requests = sum(s["requests"] for s in report.values())
print("| source | requests | replies |")
print("|---|---:|---|")
for name, s in report.items():
    print(f"| {name} | {s['requests']} | {', '.join(f'{k}: {v}' for k, v in sorted(s['replies'].items()))} |")
print()
print("| action | rows |")
print("|---|---:|")
for action, n in sorted(collections.Counter(r["action"] for r in mine).items()):
    print(f"| {action} | {n} |")
print()
print(f"{requests} requests in {minutes * 60:.0f} s; {len(mine)} audit rows from the flooding "
      f"client, {len(mine) / minutes:.0f} rows per minute of flooding, "
      f"{sum(len(json.dumps(r)) for r in mine) / minutes / 1e6:.2f} MB per minute")
EOF
