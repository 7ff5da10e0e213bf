#!/usr/bin/env bash
# How tokengate's cost grows, for PERFORMANCE.md: with tenants (1 → 1,000), keys per tenant
# (1 → 100), token size, and cache size, and its resident memory with 1,000 tenants and 100,000
# cached tokens. Each point is one release server on loopback loaded by `tokengate bench`
# (unary, 4 connections × 64 in flight), with the server's CPU per validation from /proc.
#
#   cargo build --release --bin tokengate
#   scripts/bench-scaling.sh              # DURATION=3s by default
#   ONLY="size memory" scripts/bench-scaling.sh   # some of: tenants keys size cache memory
#
# Not part of the test command. Binds 127.0.0.1 only; every run is bounded by DURATION.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tokengate="${TOKENGATE:-$root/target/release/tokengate}"
duration="${DURATION:-3s}"
only=" ${ONLY:-tenants keys size cache memory} "
wanted() { [[ $only == *" $1 "* ]]; }
out="${OUT:-$root/target/bench-scaling}"
if [ ! -x "$tokengate" ]; then
  echo "error: $tokengate is missing; run: cargo build --release --bin tokengate" >&2
  exit 2
fi
mkdir -p "$out"
work="$(mktemp -d)"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }

point() { # LABEL TOKENS-FILE [bench flags...] -> one Markdown row
  local label="$1" tokens="$2"
  shift 2
  local report
  report="$("$tokengate" bench --addr http://127.0.0.1:50061 --tokens "$tokens" --connections 4 \
    --in-flight 64 --duration "$duration" --warmup 1s --server-pid "$server" --no-ceiling --json "$@")" || {
    echo "error: $label: wrong verdicts or failed calls: $report" >&2
    exit 1
  }
  python3 - "$label" "$report" "$(rss_mib)" <<'EOF'
import json, sys
label, report, rss = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
m = report["measured"]
print(f"| {label} | {m['validations_per_second']:,.0f} | {m['server_cpu_us']:.1f} | {m['p50_us']/1000:.2f} ms | {m['p99_us']/1000:.2f} ms | {rss} MiB |")
EOF
}

header() {
  echo
  echo "### $1"
  echo
  echo "| $2 | validations/s | server CPU µs/validation | p50 | p99 | RSS |"
  echo "|---|---:|---:|---:|---:|---:|"
}

{
  if wanted tenants; then
  header "Tenants (RS256, distinct tokens over all tenants, cache off)" "tenants"
  for tenants in 1 10 100 1000; do
    python3 "$root/scripts/bench-setup.py" "$work/t$tenants" --tenants "$tenants" --tokens 2000 --cache off >/dev/null
    start_server "$work/t$tenants"
    point "$tenants" "$work/t$tenants/distinct.txt"
    stop_server
  done

  fi
  if wanted keys; then
  header "Keys per tenant (RS256, 1 tenant, cache off)" "keys"
  for keys in 1 10 100; do
    python3 "$root/scripts/bench-setup.py" "$work/k$keys" --keys "$keys" --tokens 2000 --cache off >/dev/null
    start_server "$work/k$keys"
    point "$keys" "$work/k$keys/distinct.txt"
    stop_server
  done

  fi
  if wanted size; then
  header "Token size (RS256, extra claim bytes, cache off; then cache hits)" "token bytes"
  # The largest stays under the default max_token_size (16384 bytes).
  for pad in 0 1000 4000 11000; do
    python3 "$root/scripts/bench-setup.py" "$work/s$pad" --claims-bytes "$pad" --tokens 500 --cache off >/dev/null
    size="$(head -1 "$work/s$pad/distinct.txt" | awk '{ print length($2) }')"
    start_server "$work/s$pad"
    point "$size (verified)" "$work/s$pad/distinct.txt"
    stop_server
    sed -i 's/^  enabled: false/  enabled: true/' "$work/s$pad/config.yaml"
    start_server "$work/s$pad"
    point "$size (cached)" "$work/s$pad/repeated.txt"
    stop_server
  done

  fi
  if wanted cache; then
  header "Cache size (EdDSA, 100,000 distinct tokens cycling, unary)" "max_entries"
  python3 "$root/scripts/bench-setup.py" "$work/c" --alg EdDSA --tokens 100000 --cache on >/dev/null
  for entries in 1000 10000 100000; do
    sed -i "s/^  max_entries: .*/  max_entries: $entries/" "$work/c/config.yaml"
    start_server "$work/c"
    point "$entries" "$work/c/distinct.txt"
    stop_server
  done

  fi
  if wanted memory; then
  echo
  echo "### Memory: 1,000 tenants, 100,000 cached tokens (EdDSA)"
  echo
  python3 "$root/scripts/bench-setup.py" "$work/m" --alg EdDSA --tenants 1000 --tokens 100000 --cache on >/dev/null
  start_server "$work/m"
  idle="$(rss_mib)"
  metrics_port="$(sed -n 's/^metrics_listen: "127.0.0.1:\([0-9]*\)"/\1/p' "$work/m/config.yaml")"
  # Long enough to send every token at least once.
  "$tokengate" bench --addr http://127.0.0.1:50061 --tokens "$work/m/distinct.txt" --connections 4 \
    --in-flight 64 --duration 8s --warmup 0s --no-ceiling --json >/dev/null
  entries="$(curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '/^tokengate_cache_entries / { print $2 }')"
  echo "| state | RSS |"
  echo "|---|---:|"
  echo "| 1,000 tenants loaded, cache empty | $idle MiB |"
  echo "| after 100,000 distinct tokens ($entries cached) | $(rss_mib) MiB |"
  stop_server
  fi
} | tee "$out/results.md"
