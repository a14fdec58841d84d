#!/usr/bin/env bash
# Streaming part encryption/decryption of sealpost-crypto against OpenSSL's AES-256-GCM on the
# same machine in the same run, plus the Argon2id passphrase cost and the peak memory of a
# 1 GiB stream. Prints a Markdown table for docs/PERFORMANCE.md.
#
#   bench/crypto.sh            # full run (about 3 minutes)
#   OPENSSL_SECONDS=1 bench/crypto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
secs=${OPENSSL_SECONDS:-3}

command -v openssl >/dev/null || { echo "openssl is required (apt-get install openssl)" >&2; exit 2; }

echo "# openssl speed -evp aes-256-gcm -seconds $secs" >&2
# The last line is: AES-256-GCM <16B> <64B> <256B> <1KiB> <8KiB> <16KiB>, in thousands of bytes/s.
ossl_line=$(openssl speed -evp aes-256-gcm -seconds "$secs" 2>/dev/null | tail -n 1)
ossl_16k_kbs=$(awk '{v=$NF; sub(/k$/, "", v); print v}' <<<"$ossl_line")

echo "# cargo bench -p sealpost-crypto --bench envelope" >&2
cargo bench -q -p sealpost-crypto --bench envelope -- --noplot >&2

mean_ns() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mean"]["point_estimate"])' "$1"; }
enc_ns=$(mean_ns "$target/criterion/part_64MiB/encrypt/new/estimates.json")
dec_ns=$(mean_ns "$target/criterion/part_64MiB/decrypt/new/estimates.json")
argon_ns=$(mean_ns "$target/criterion/passphrase/argon2id_19MiB_t2_p1/new/estimates.json")

echo "# peak memory of a 1 GiB stream" >&2
cargo build -q --release -p sealpost-crypto --example stream_memory
mem_out=$(/usr/bin/time -f 'maxrss_kib=%M' "$target/release/examples/stream_memory" 1024 2>&1)
maxrss=$(grep -o 'maxrss_kib=[0-9]*' <<<"$mem_out" | cut -d= -f2)

python3 - "$ossl_16k_kbs" "$enc_ns" "$dec_ns" "$argon_ns" "$maxrss" <<'PY'
import sys
ossl_kbs, enc_ns, dec_ns, argon_ns, maxrss = map(float, sys.argv[1:])
part = 64 * 1024 * 1024
ossl = ossl_kbs * 1000 / 1e6
enc = part / (enc_ns / 1e9) / 1e6
dec = part / (dec_ns / 1e9) / 1e6
print("| measure | result | ratio to OpenSSL 16 KiB |")
print("|---|---|---|")
print(f"| OpenSSL `speed -evp aes-256-gcm`, 16 KiB blocks | {ossl:,.0f} MB/s | 1.00 |")
print(f"| sealpost-crypto encrypt, 64 MiB part (1 MiB pieces) | {enc:,.0f} MB/s | {enc / ossl:.2f} |")
print(f"| sealpost-crypto decrypt, 64 MiB part | {dec:,.0f} MB/s | {dec / ossl:.2f} |")
print(f"| Argon2id passphrase key (19 MiB, t=2, p=1) | {argon_ns / 1e6:.1f} ms | — |")
print(f"| peak RSS, 1 GiB encrypt + decrypt stream | {maxrss / 1024:.1f} MiB | — |")
PY
