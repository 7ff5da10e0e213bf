#!/usr/bin/env bash
# The service benchmarks of PERFORMANCE.md: the release server on loopback, loaded by
# `tokengate bench` through every transport, beside two baselines measured in the same run:
# the no-op Health/Check ceiling on the same server (printed by `tokengate bench` itself) and raw
# `ring` RS256 verification on every core (examples/ring_rate.rs).
#
#   cargo build --release --bin tokengate --example ring_rate
#   scripts/bench.sh                      # ROUNDS=3 DURATION=5s by default
#   TOKENGATE=/path/to/other/tokengate CACHE=omit scripts/bench.sh   # an older build
#
# Scenarios run in rounds (each scenario once per round, in order) and the table reports the
# median of the rounds, since this machine is shared and noisy. Distinct tokens are measured with
# the cache off (every call verifies a signature); repeated tokens with the cache on.
# Not part of the test command. Binds 127.0.0.1 only; every run is bounded by DURATION.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tokengate="${TOKENGATE:-$root/target/release/tokengate}"
ring_rate="${RING_RATE:-$root/target/release/examples/ring_rate}"
bench="${BENCH:-$root/target/release/tokengate}"
rounds="${ROUNDS:-3}"
duration="${DURATION:-5s}"
cache_mode="${CACHE:-on}"
out="${OUT:-$root/target/bench}"
for binary in "$tokengate" "$ring_rate" "$bench"; do
  if [ ! -x "$binary" ]; then
    echo "error: $binary is missing; run: cargo build --release --bin tokengate --example ring_rate" >&2
    exit 2
  fi
done
mkdir -p "$out"
work="$(mktemp -d)"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

cache_off=off
cache_on=on
if [ "$cache_mode" = omit ]; then cache_off=omit; cache_on=omit; fi
python3 "$root/scripts/bench-setup.py" "$work/distinct" --tokens 2000 --cache "$cache_off" >/dev/null
python3 "$root/scripts/bench-setup.py" "$work/repeated" --tokens 1 --cache "$cache_on" \
  --listen 127.0.0.1:50062 --metrics-listen 127.0.0.1:9462 --forward-auth-listen 127.0.0.1:8462 >/dev/null


# name | tokens set | mode | connections | in flight | batch
scenarios=(
  "unary 1x1|distinct|unary|1|1|1"
  "unary 4x64|distinct|unary|4|64|1"
  "batch 2x2 of 100|distinct|batch|2|2|100"
  "stream 2x64|distinct|stream|2|64|1"
  "stream 1x64|distinct|stream|1|64|1"
  "check 4x64|distinct|check|4|64|1"
  "forward-auth 16|distinct|forward-auth|1|16|1"
  "unary 4x64 repeated|repeated|unary|4|64|1"
  "check 4x64 repeated|repeated|check|4|64|1"
  "forward-auth 16 repeated|repeated|forward-auth|1|16|1"
)
results="$out/results.jsonl"
: >"$results"
cores="$(nproc)"
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  ring="$("$ring_rate" "$work/distinct/jwks-0.json" "$work/distinct/distinct.txt" "$cores" 3)"
  echo "{\"round\":$round,\"scenario\":\"raw ring RS256, $cores threads\",\"ring\":$ring}" >>"$results"
  for set in distinct repeated; do
    start_server "$work/$set"
    port="$(grpc_port "$work/$set")"
    fa_port="$(sed -n 's/^  forward_auth_listen: "127.0.0.1:\([0-9]*\)"/\1/p' "$work/$set/config.yaml")"
    for scenario in "${scenarios[@]}"; do
      IFS='|' read -r name tokens mode connections in_flight batch <<<"$scenario"
      [ "$tokens" = "$set" ] || continue
      addr="http://127.0.0.1:$port"
      [ "$mode" = forward-auth ] && addr="http://127.0.0.1:$fa_port"
      file="$work/$set/distinct.txt"
      echo "  $name" >&2
      report="$("$bench" bench --addr "$addr" --mode "$mode" --tokens "$file" \
        --connections "$connections" --in-flight "$in_flight" --batch "$batch" \
        --duration "$duration" --warmup 1s --server-pid "$server" --json)" || {
        echo "error: $name: wrong verdicts or failed calls: $report" >&2
        exit 1
      }
      echo "{\"round\":$round,\"scenario\":\"$name\",\"ring\":$ring,\"report\":$report}" >>"$results"
    done
    stop_server
  done
done

python3 - "$results" "$out/results.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
order, by = [], {}
for row in rows:
    if row["scenario"] not in by:
        order.append(row["scenario"])
    by.setdefault(row["scenario"], []).append(row)
median = statistics.median
ring = median(r["ring"] for r in rows if "report" not in r)
lines = [
    "| scenario | validations/s | × ceiling | × raw ring (all cores) | p50 | p99 | server CPU µs/validation | ceiling calls/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]
for name in order:
    runs = by[name]
    if "report" not in runs[0]:
        lines.append(f"| {name} | {median(r['ring'] for r in runs):,.0f} | | ×1.00 | | | | |")
        continue
    m = lambda key: median(r["report"]["measured"][key] or 0 for r in runs)
    c = lambda key: median((r["report"].get("ceiling") or {}).get(key) or 0 for r in runs)
    ratio = median(r["report"].get("ratio_to_ceiling") or 0 for r in runs)
    fmt = lambda us: f"{us/1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"
    lines.append(
        f"| {name} | {m('validations_per_second'):,.0f} | ×{ratio:.2f} | ×{m('validations_per_second')/ring:.2f} "
        f"| {fmt(m('p50_us'))} | {fmt(m('p99_us'))} | {m('server_cpu_us'):.1f} | {c('calls_per_second'):,.0f} |"
    )
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
print(f"medians of {len(by[order[0]])} rounds; raw JSON in {sys.argv[1]}")
EOF
