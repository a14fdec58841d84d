#!/usr/bin/env bash
# Large messages at once: starts `sealpost serve` on loopback (file outbox), adds a relay, then
# sends COUNT messages of SIZE_MB each over as many concurrent SMTP sessions (STARTTLS, AUTH
# PLAIN), in two rounds: 20 x 50 MB, then 10 x 20 MB. Prints, per round, the replies to DATA
# and the server's peak resident memory (VmHWM, reset between rounds by a restart), as Markdown
# for docs/PERFORMANCE.md. The target: every message gets 250 (or 452 from the memory budget,
# never 451), and peak RSS at most smtp_data_memory_bytes + 100 MiB.
#
#   bench/smtp-large.sh                          # the binary of this tree (release build)
#   BIN=/path/to/sealpost bench/smtp-large.sh    # another build
#   ROUNDS="5x10" bench/smtp-large.sh            # other rounds: COUNTxSIZE_MB, space-separated
#
# Needs python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-"20x50 10x20"}
bin=${BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -q -p sealpost-server
  bin=${CARGO_TARGET_DIR:-target}/release/sealpost
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 2; }

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SEALPOST_DATA_DIR=$work/data SEALPOST_HTTP_ADDR=127.0.0.1:0 SEALPOST_SMTP_ADDR=127.0.0.1:0
# Messages of 50 MB must be allowed at all for the round to mean anything.
export SEALPOST_MAX_MESSAGE_BYTES=${SEALPOST_MAX_MESSAGE_BYTES:-104857600}
budget=$("$bin" migrate >/dev/null && python3 - <<'EOF'
import os
print(int(os.environ.get("SEALPOST_SMTP_DATA_MEMORY_BYTES", 1 << 30)))
EOF
)
password=$("$bin" relay add --name bench | tail -1)

echo "| round | replies to DATA | peak RSS | budget + 100 MiB |"
echo "|---|---|---:|---:|"
for round in $rounds; do
  count=${round%x*}
  size_mb=${round#*x}
  "$bin" serve >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do grep -q '^listening smtp=' "$work/serve.log" && break; sleep 0.05; done
  smtp=$(sed -n 's/^listening smtp=//p' "$work/serve.log")
  [ -n "$smtp" ] || { cat "$work/serve.log" >&2; exit 1; }
  replies=$(python3 - "$smtp" "$password" "$count" "$size_mb" <<'EOF'
import collections, os, smtplib, ssl, sys, threading
addr, password, count, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# base64 lines of random bytes: a realistic attachment, SIZE_MB in all.
line = b"".join(os.urandom(57).hex().encode()[:76] for _ in range(1)) + b"\r\n"
body_lines = (size_mb << 20) // len(line)
message = (b"From: bench@clinic.example\r\nTo: r@example.net\r\nSubject: large\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
           b"filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + line * body_lines + b"--b--\r\n")
replies = collections.Counter()
lock = threading.Lock()
def send():
    try:
        with smtplib.SMTP(host, int(port), timeout=900) as s:
            s.ehlo("bench.test"); s.starttls(context=ctx); s.ehlo("bench.test")
            s.login("bench", password)
            s.mail("bench@clinic.example"); s.rcpt("r@example.net")
            code, _ = s.data(message)
    except smtplib.SMTPResponseException as e:
        code = e.smtp_code
    except Exception as e:
        code = type(e).__name__
    with lock:
        replies[str(code)] += 1
threads = [threading.Thread(target=send) for _ in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(", ".join(f"{k}: {v}" for k, v in sorted(replies.items())))
EOF
)
  peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true; pid=
  echo "| ${count} x ${size_mb} MB | $replies | $((peak_kib / 1024)) MiB | $(( (budget >> 20) + 100 )) MiB |"
done
