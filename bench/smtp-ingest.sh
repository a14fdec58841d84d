#!/usr/bin/env bash
# SMTP ingest: Postfix's smtp-source sends MESSAGES messages of SIZE bytes over SESSIONS
# sessions (a) to Sealpost, whose outbound relay (the notifications) is Postfix's smtp-sink,
# and (b) to a stock Postfix instance relaying to the same smtp-sink, in the same run on the
# same machine. Then bench/smtp_latency.py measures the time from end of DATA to the reply
# under the same number of sessions against each. Prints a Markdown table for
# docs/PERFORMANCE.md.
#
#   bench/smtp-ingest.sh                      # 5,000 messages of 20 KB over 20 sessions
#   MESSAGES=1000 bench/smtp-ingest.sh        # quicker
#
# Needs root (Postfix's master runs as root and drops to `postfix`), Debian's `postfix`
# (smtp-source, smtp-sink) and python3. Everything listens on 127.0.0.1 only; the private
# Postfix instance has its own configuration and queue in a temporary directory, and the
# system instance is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
messages=${MESSAGES:-5000}
sessions=${SESSIONS:-20}
size=${SIZE:-20480}
latency_per_session=${LATENCY_PER_SESSION:-50}

for tool in smtp-source smtp-sink postfix python3; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null ||
    { echo "$tool is required (apt-get install postfix python3)" >&2; exit 2; }
done
export PATH=$PATH:/usr/sbin
[ "$(id -u)" = 0 ] || { echo "run as root: Postfix's master must start as root" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work"
pids=()
postfix_dir=
cleanup() {
  [ -n "$postfix_dir" ] && postfix -c "$postfix_dir/etc" stop >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port: wait (bounded) until something accepts on 127.0.0.1:port
  python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.time() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("nothing listens on port %s" % sys.argv[1])
        time.sleep(0.05)
EOF
}
now() { date +%s.%N; }

echo "# cargo build --release -p sealpost-server" >&2
cargo build -q --release -p sealpost-server

# The sink both targets relay to. -c counts delivered messages on stdout.
sink_port=$(free_port)
smtp-sink -u nobody -c "127.0.0.1:$sink_port" 1024 >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!)
wait_port "$sink_port"
# Its counter line is "sess=N quit=N mesg=N", rewritten with CR.
sink_count() { tr '\r' '\n' <"$work/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | awk '{n=$1} END {print n+0}'; }
wait_sink() { # count: wait until the sink has received that many messages in total
  local want=$1 deadline=$((SECONDS + 600))
  until [ "$(sink_count)" -ge "$want" ]; do
    [ $SECONDS -lt $deadline ] || { echo "smtp-sink got $(sink_count) of $want" >&2; exit 1; }
    sleep 0.05
  done
}

source_run() { # port: smtp-source the benchmark load; prints the seconds it took
  local start end
  start=$(now)
  smtp-source -d -s "$sessions" -l "$size" -m "$messages" \
    -f bench@clinic.example -t rcpt@example.net "127.0.0.1:$1" >&2
  end=$(now)
  python3 -c "print(round($end - $start, 3))"
}

# --- (a) Sealpost ---------------------------------------------------------------------------
http_port=$(free_port)
smtp_port=$(free_port)
env -i PATH="$PATH" HOME="$work" \
  SEALPOST_DATA_DIR="$work/sealpost" \
  SEALPOST_HTTP_ADDR="127.0.0.1:$http_port" \
  SEALPOST_BASE_URL="http://127.0.0.1:$http_port" \
  SEALPOST_SMTP_ADDR="127.0.0.1:$smtp_port" \
  SEALPOST_OUTBOUND="smtp://127.0.0.1:$sink_port" \
  SEALPOST_SMTP_ALLOWED_NETWORKS=127.0.0.0/8 \
  SEALPOST_SMTP_ALLOW_LOOPBACK_PLAINTEXT=true \
  SEALPOST_SMTP_MAX_SESSIONS_PER_IP=100 \
  RUST_LOG=warn \
  "$target/release/sealpost" serve >"$work/sealpost.log" 2>&1 &
pids+=($!)
wait_port "$smtp_port"

echo "# (a) smtp-source -> Sealpost -> smtp-sink" >&2
before=$(sink_count)
seal_s=$(source_run "$smtp_port")
# Sealpost hands each notification to the relay before its 250: nothing is left to wait for.
wait_sink $((before + messages))
echo "# (a) latency" >&2
seal_lat=$(python3 bench/smtp_latency.py 127.0.0.1 "$smtp_port" "$sessions" "$latency_per_session" "$size")
seal_rss=$(awk '/VmHWM/ {print $2}' "/proc/${pids[1]}/status")
seal_db=$(du -sk "$work/sealpost" | cut -f1)

# --- (b) stock Postfix ----------------------------------------------------------------------
postfix_dir="$work/postfix"
mkdir -p "$postfix_dir"/{etc,queue,data}
chown postfix:postfix "$postfix_dir/data"
pf_port=$(free_port)
cp /usr/share/postfix/master.cf.dist "$postfix_dir/etc/master.cf"
cat >"$postfix_dir/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $postfix_dir/etc
queue_directory = $postfix_dir/queue
data_directory = $postfix_dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $postfix_dir/maillog
maillog_file_prefixes = $postfix_dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix-bench.localdomain
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$sink_port
smtputf8_enable = no
EOF
# Stock master.cf, with the SMTP listener on our port and no chroot (the temporary queue
# directory has no chroot environment).
postconf -c "$postfix_dir/etc" -M "127.0.0.1:$pf_port/inet=127.0.0.1:$pf_port inet n - n - - smtpd"
postconf -c "$postfix_dir/etc" -MX smtp/inet
postconf -c "$postfix_dir/etc" -F '*/*/chroot = n'
postfix -c "$postfix_dir/etc" check
postfix -c "$postfix_dir/etc" start >&2 || { cat "$postfix_dir/maillog" >&2; exit 1; }
wait_port "$pf_port"

echo "# (b) smtp-source -> Postfix -> smtp-sink" >&2
before=$(sink_count)
pf_start=$(now)
pf_s=$(source_run "$pf_port")
wait_sink $((before + messages))
pf_drained_s=$(python3 -c "print(round($(now) - $pf_start, 3))")
echo "# (b) latency" >&2
before=$(sink_count)
pf_lat=$(python3 bench/smtp_latency.py 127.0.0.1 "$pf_port" "$sessions" "$latency_per_session" "$size")
wait_sink $((before + sessions * latency_per_session))

python3 - "$messages" "$sessions" "$size" "$seal_s" "$pf_s" "$pf_drained_s" "$seal_lat" "$pf_lat" "$seal_rss" "$seal_db" <<'EOF'
import json, sys
n, sessions, size = (int(v) for v in sys.argv[1:4])
seal_s, pf_s, pf_drained_s = (float(v) for v in sys.argv[4:7])
seal_lat, pf_lat = json.loads(sys.argv[7]), json.loads(sys.argv[8])
seal_rss_kib, seal_db_kib = int(sys.argv[9]), int(sys.argv[10])
for name, lat in (("Sealpost", seal_lat), ("Postfix", pf_lat)):
    if lat["failed"]:
        sys.exit("%s: %d latency messages failed: %s" % (name, lat["failed"], lat["first_failure"]))
seal_rate, pf_rate = n / seal_s, n / pf_s
print("%d messages of %d bytes over %d sessions (smtp-source -d), one recipient each" % (n, size, sessions))
print()
print("| target | accepted msgs/s | end of DATA → reply p50 / p90 / p99 |")
print("|---|---|---|")
print("| Sealpost (encrypt, commit, notify via smtp-sink, then 250) | %.0f | %.1f / %.1f / %.1f ms |"
      % (seal_rate, seal_lat["p50_ms"], seal_lat["p90_ms"], seal_lat["p99_ms"]))
print("| Postfix (queue file, then 250; relays to smtp-sink later) | %.0f | %.1f / %.1f / %.1f ms |"
      % (pf_rate, pf_lat["p50_ms"], pf_lat["p90_ms"], pf_lat["p99_ms"]))
print()
print("Ratio Sealpost / Postfix, accepted msgs/s: **%.2f×**" % (seal_rate / pf_rate))
print("Postfix had relayed all %d to smtp-sink after %.2f s (%.0f msgs/s end to end);"
      " Sealpost's %.2f s already include the relay hand-off." % (n, pf_drained_s, n / pf_drained_s, seal_s))
print("Sealpost peak RSS %.1f MiB; data directory %.1f MiB after %d + %d messages."
      % (seal_rss_kib / 1024, seal_db_kib / 1024, n, sessions * seal_lat["messages"] // sessions))
EOF
