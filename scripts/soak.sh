#!/usr/bin/env bash
# The soak test with provider faults, then the flood test (scripts/soak.py says what each does
# and checks): the release server, loaded by `tokengate bench`, every verdict checked.
#
#   cargo build --release --bin tokengate
#   scripts/soak.sh                 # 300 s soak, 30 s flood (SOAK_SECONDS, FLOOD_SECONDS)
#   scripts/soak.sh --short         # 66 s soak, 15 s flood: what the test command runs
#   TOKENGATE=target/debug/tokengate SOAK_LATENCY_SCALE=6 scripts/soak.sh --short
#
# SOAK_LATENCY_SCALE multiplies the flood's latency bounds (health p99 250 ms, the probe's p99
# 500 ms): a debug build's flood latencies measured 7-9 times the release build's, and the
# test command uses a debug build.
#
# Results (summary.json, server.log, the config and tokens) go to OUT (target/soak). Needs
# python3 with `cryptography` for the tokens; without it, it is installed into the venv
# target/deploy-tools (the one scripts/check-deploy.sh uses). Binds 127.0.0.1 only; every loop is bounded by the seconds given.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tokengate="${TOKENGATE:-$root/target/release/tokengate}"
out="${OUT:-$root/target/soak}"
soak_seconds="${SOAK_SECONDS:-300}"
flood_seconds="${FLOOD_SECONDS:-30}"
window=10
tokens=2000
if [ "${1:-}" = --short ]; then
  soak_seconds=66
  flood_seconds=15
  window=5
  tokens=600
fi
if [ ! -x "$tokengate" ]; then
  echo "error: $tokengate is missing; run: cargo build --release --bin tokengate" >&2
  exit 2
fi
python=python3
if ! python3 -c 'import cryptography' 2>/dev/null; then
  # The virtual environment scripts/check-deploy.sh uses (Debian refuses global pip installs).
  venv="$root/target/deploy-tools"
  if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" || {
      echo "error: cannot make a Python venv; install python3-venv (Debian) and run this again" >&2
      exit 2
    }
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check cryptography
  python="$venv/bin/python"
fi
status=0
"$python" "$root/scripts/soak.py" soak --tokengate "$tokengate" --seconds "$soak_seconds" \
  --window "$window" --tokens "$tokens" --out "$out" || status=1
"$python" "$root/scripts/soak.py" flood --tokengate "$tokengate" --seconds "$flood_seconds" \
  --tokens "$tokens" --latency-scale "${SOAK_LATENCY_SCALE:-1}" --out "$out" || status=1
exit "$status"
