#!/usr/bin/env bash
# Runs the fuzz targets from their committed seeds (fuzz/seeds/<target>) for SECONDS each
# (default 15): the core's parsers (fuzz/), and with --all also the service's (fuzz/service/:
# the whole validation, the configuration loader, discovery documents, PEM keys), whose build
# takes about 15 minutes on two cores. New inputs go to a temporary folder; a crash leaves its
# input under fuzz/artifacts/ (or fuzz/service/artifacts/) and fails the run.
#
#   scripts/fuzz.sh                 # what the test command runs
#   scripts/fuzz.sh 3600 --all      # a long run (see CONTRIBUTING.md)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
all=${2:-}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly), which cargo-fuzz needs"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ran=0
run() { # run FUZZ_DIR TARGET
  mkdir -p "$work/$2"
  echo "fuzz: $2 for ${seconds}s"
  if ! cargo +nightly fuzz run --fuzz-dir "$1" -O "$2" "$work/$2" "fuzz/seeds/$2" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$work/$2.log" 2>&1; then
    tail -n 40 "$work/$2.log"
    echo "fuzz: $ran passed, 1 failed ($2: its input is under $1/artifacts/$2)"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$work/$2.log" || true
  ran=$((ran + 1))
}
for target in token_parse jwks_parse json_object; do
  run fuzz "$target"
done
if [ "$all" = "--all" ]; then
  for target in validate config_parse discovery pem_keys; do
    run fuzz/service "$target"
  done
fi
echo "fuzz: $ran passed, 0 failed"
