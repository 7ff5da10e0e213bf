# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): one tokengate server at a time, started
# from a directory made by scripts/bench-setup.py, with `$tokengate` the binary and `$server`
# its pid. Everything binds 127.0.0.1.

# The sourcing script sets `$tokengate`.
# shellcheck disable=SC2154
server=""

# The gRPC port a bench-setup configuration listens on.
grpc_port() { # DIR
  sed -n 's/^listen: "127.0.0.1:\([0-9]*\)"/\1/p' "$1/config.yaml"
}

port_open() { # PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts `tokengate serve` on DIR/config.yaml and waits (at most 30 s) until its port answers.
start_server() { # DIR
  local port
  port="$(grpc_port "$1")"
  if port_open "$port"; then
    echo "error: 127.0.0.1:$port is already in use (another tokengate?)" >&2
    exit 1
  fi
  (cd "$1" && exec "$tokengate" serve --config config.yaml >"$1/server.log" 2>&1) &
  server=$!
  for _ in $(seq 1 300); do
    if port_open "$port"; then return 0; fi
    sleep 0.1
  done
  echo "error: tokengate did not start; its log:" >&2
  cat "$1/server.log" >&2
  exit 1
}

stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=""
}
