#!/usr/bin/env python3
"""The soak test and the flood test of tokengate: the real server under load from
`tokengate bench`, every answer counted and checked against the verdict its token must get.

    python3 scripts/soak.py soak  --tokengate BIN [--bench BIN] [--seconds 300] [--window 10]
    python3 scripts/soak.py flood --tokengate BIN [--bench BIN] [--seconds 30]

soak: unary, batch, stream, ext_authz Check and forward-auth load at once, for --seconds, while
the loopback identity provider (this script) rotates keys, becomes slow, answers errors, garbage,
truncated documents and resets, and comes back; while the configuration is reloaded, once
broken; ending with SIGTERM under load. Fails on any wrong verdict, any call lost before
SIGTERM, an unclean drain, or RSS / open descriptors that keep growing.

flood: far more calls, connections and streams than the configured limits, slow readers and
half-open connections, while a probe checks gRPC health. Fails if health stops answering, a
call is lost or wrongly judged, shed calls are slow, RSS exceeds its bound, half-open
connections are not closed, or throughput does not come back afterwards.

Tokens come from Python `cryptography` (scripts/bench-setup.py's signer), never from tokengate.
Everything binds 127.0.0.1; every loop is bounded by --seconds. Results go to --out.
"""

import argparse
import importlib.util
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_setup", HERE / "bench-setup.py")
setup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup)

AUDIENCE = "soak-api"
STATIC_ISSUER = "https://static.soak.invalid"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Provider:
    """A loopback OpenID provider whose behaviour the test switches: `ok`, `slow`, `error`
    (HTTP 500), `garbage` (not JSON), `truncated` (half a document) or `reset` (the connection
    closed without an answer). It always publishes `stable` and one rotating key."""

    MODES = ("ok", "slow", "error", "garbage", "truncated", "reset")

    def __init__(self, stable: "setup.Key"):
        self.stable = stable
        self.rotating = setup.Key("RS256", "rotating-0")
        self.generation = 0
        self.mode = "ok"
        self.hits = {mode: 0 for mode in self.MODES}
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                provider.answer(self)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # tokengate closing a slow fetch is expected, not worth a traceback

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rotate(self) -> "setup.Key":
        """Replaces the rotating key with a new one; returns the new key."""
        with self.lock:
            self.generation += 1
            self.rotating = setup.Key("RS256", f"rotating-{self.generation}")
            return self.rotating

    def document(self, path: str) -> bytes | None:
        if path == "/.well-known/openid-configuration":
            return json.dumps({"issuer": self.url, "jwks_uri": self.url + "/jwks"}).encode()
        if path == "/jwks":
            with self.lock:
                keys = [self.stable.jwk, self.rotating.jwk]
            return json.dumps({"keys": keys}).encode()
        return None

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        with self.lock:
            self.hits[mode] += 1
        body = self.document(handler.path)
        if body is None:
            handler.send_error(404)
            return
        if mode == "reset":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            time.sleep(3)
        status = 200
        if mode == "error":
            status, body = 500, b"upstream exploded\n"
        elif mode == "garbage":
            body = b"\x00\xffthis is not json {"
        elif mode == "truncated":
            body = body[: len(body) // 2]
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("cache-control", "max-age=1")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


class Server:
    """The tokengate process, its log, and what /proc says about it."""

    def __init__(self, binary: str, config: Path, out: Path):
        self.config, self.out = config, out
        self.log_path = out / "server.log"
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--config", str(config)],
            stdout=self.log_file, stderr=subprocess.STDOUT,
        )

    def rss(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Sampler(threading.Thread):
    """RSS and open descriptors of the server, twice a second, until stopped."""

    def __init__(self, server: Server, started: float):
        super().__init__(daemon=True)
        self.server, self.started, self.samples = server, started, []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.5):
            try:
                self.samples.append((time.monotonic() - self.started, self.server.rss(), self.server.fds()))
            except OSError:
                return


def scrape(metrics_port: int, name: str) -> dict[str, float]:
    """The samples of one metric, by their label text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ "):
            labels, _, value = line[len(name):].rpartition(" ")
            found[labels] = float(value)
    return found


def wait_until(what: str, check, limit: float) -> float:
    """Polls `check` until it is true; returns the seconds it took, or fails after `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise Failure(f"{what}: not within {limit:.0f}s")


class Failure(Exception):
    """The test failed; the message says why."""


def wait_ready(server: Server, metrics_port: int) -> None:
    def ready():
        if server.process.poll() is not None:
            raise Failure(f"tokengate exited at start:\n{server.log_text()[-2000:]}")
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2) as answer:
            return answer.status == 200

    wait_until("tokengate ready", ready, 30)


def write_tokens(path: Path, stable: "setup.Key", static: "setup.Key", issuer: str, valid: int) -> dict:
    """The tokens file: valid tokens of both tenants and each kind of invalid one, shuffled."""
    now = int(time.time())

    def claims(iss: str, n: int, exp: int, aud: str = AUDIENCE) -> dict:
        return {"iss": iss, "aud": aud, "sub": f"user-{n}", "iat": now - 60, "exp": exp}

    day = now + 24 * 3600
    lines = []
    for n in range(valid):
        key, iss = (stable, issuer) if n % 4 else (static, STATIC_ISSUER)
        lines.append(("valid", setup.token(key, claims(iss, n, day))))
    bad = max(valid // 20, 5)
    for n in range(bad):
        lines.append(("expired", setup.token(stable, claims(issuer, n, now - 3600))))
        good = setup.token(stable, claims(issuer, 10_000 + n, day))
        head, body, sig = good.split(".")
        flipped = "B" if sig[10] == "A" else "A"
        lines.append(("invalid_signature", f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}"))
        lines.append(("unknown_key", setup.token(stable, claims(issuer, n, day), kid="nobody")))
        lines.append(("invalid_audience", setup.token(stable, claims(issuer, n, day, aud="other"))))
        lines.append(("unknown_tenant", setup.token(stable, claims("https://nobody.invalid", n, day))))
        lines.append(("malformed", f"not-a-token-{n}"))
    random.Random(7).shuffle(lines)
    path.write_text("".join(f"{verdict} {token}\n" for verdict, token in lines))
    kinds = {}
    for verdict, _ in lines:
        kinds[verdict] = kinds.get(verdict, 0) + 1
    return kinds


def config_text(ports: dict, provider: Provider, variant: int, limits: str = "") -> str:
    """The configuration; `variant` 1 adds a tenant and changes the cache, for reloads."""
    lines = [
        f'listen: "127.0.0.1:{ports["grpc"]}"',
        f'metrics_listen: "127.0.0.1:{ports["metrics"]}"',
        "max_batch_size: 1000",
        "ext_authz:",
        f'  forward_auth_listen: "127.0.0.1:{ports["forward_auth"]}"',
        "  claims_to_headers: { sub: x-jwt-sub }",
        "cache:",
        "  enabled: true",
        f"  max_entries: {500 if variant == 0 else 300}",
        "refresh:",
        "  interval: 2s",
        "  min_interval: 1s",
        "  max_interval: 10s",
        "  max_retry_interval: 2s",
        "  max_stale: 1h",
        "  unknown_kid_cooldown: 1s",
        "  unknown_kid_wait: 1s",
    ]
    if limits:
        lines.append(limits.rstrip("\n"))
    lines += [
        "tenants:",
        "  - id: provider",
        f'    discovery_url: "{provider.url}/.well-known/openid-configuration"',
        f'    audiences: ["{AUDIENCE}"]',
        "  - id: static",
        f'    issuers: ["{STATIC_ISSUER}"]',
        f'    audiences: ["{AUDIENCE}"]',
        "    jwks_file: static-jwks.json",
    ]
    if variant == 1:
        lines += [
            "  - id: added-by-reload",
            '    issuers: ["https://added.soak.invalid"]',
            f'    audiences: ["{AUDIENCE}"]',
            "    jwks_file: static-jwks.json",
        ]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class Load(threading.Thread):
    """One kind of load: `tokengate bench` runs of `window` seconds back to back, until stopped
    or until `until`; each run's JSON report is kept with its start and end times."""

    def __init__(self, name: str, command: list[str], window: float, until: float, started: float):
        super().__init__(daemon=True)
        self.name, self.command, self.window = name, command, window
        self.until, self.started = until, started
        self.runs = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set() and time.monotonic() < self.until:
            begin = time.monotonic() - self.started
            duration = max(1, min(self.window, self.until - time.monotonic()))
            try:
                done = subprocess.run(
                    self.command + ["--duration", f"{duration:.0f}s", "--warmup", "0s",
                                    "--no-ceiling", "--json"],
                    capture_output=True, text=True, timeout=duration + 60,
                )
                exit_code, stdout, stderr = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired:
                exit_code, stdout, stderr = None, "", "the bench run did not end: killed after its time"
            end = time.monotonic() - self.started
            try:
                report = json.loads(stdout)["measured"]
            except (json.JSONDecodeError, KeyError):
                report = None
            self.runs.append({"begin": begin, "end": end, "exit": exit_code,
                              "report": report, "stderr": stderr.strip()[-400:]})
            if report is None:
                # Could not connect (the server has stopped): nothing more to send.
                return


def bench_target(bench: str, tokens: Path, ports: dict, mode: str) -> list[str]:
    """`tokengate bench` aimed at the listener that `mode` speaks to."""
    port = ports["forward_auth"] if mode == "forward-auth" else ports["grpc"]
    return [bench, "bench", "--tokens", str(tokens), "--addr", f"http://127.0.0.1:{port}",
            "--mode", mode]


def soak_loads(bench: str, tokens: Path, ports: dict, scale: int) -> dict[str, list[str]]:
    """The soak's five loads at once: (connections, calls in flight) for each mode."""
    shapes = {"unary": (2, 8 * scale), "batch": (1, 2), "stream": (1, 16 * scale),
              "check": (2, 8 * scale), "forward-auth": (1, 4 * scale)}
    return {mode: bench_target(bench, tokens, ports, mode)
            + ["--connections", str(connections), "--in-flight", str(in_flight), "--batch", "50"]
            for mode, (connections, in_flight) in shapes.items()}


def admin_kids(metrics_port: int, tenant: str) -> set[str]:
    url = f"http://127.0.0.1:{metrics_port}/debug/tenants/{tenant}"
    with urllib.request.urlopen(url, timeout=5) as response:
        view = json.loads(response.read())
    return {key.get("kid") for key in view.get("keys", [])}


def ask(tokengate: str, ports: dict, token: str) -> tuple[int, str]:
    """`tokengate validate --addr`: a one-off question to the running server."""
    done = subprocess.run(
        [tokengate, "validate", "--addr", f"http://127.0.0.1:{ports['grpc']}", token],
        capture_output=True, text=True, timeout=30,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def check_rotation(tokengate: str, ports: dict, provider: Provider, issuer: str, old) -> str:
    """Rotates the provider's second key and checks that tokengate follows."""
    new = provider.rotate()
    took = wait_until(f"the rotated key {new.kid} in the admin view",
                      lambda: new.kid in admin_kids(ports["metrics"], "provider"), 20)
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": "rotated", "iat": now, "exp": now + 600}
    code, text = ask(tokengate, ports, setup.token(new, claims))
    if code != 0:
        raise Failure(f"a token of the new key {new.kid} was refused: {text}")
    code, text = ask(tokengate, ports, setup.token(old, claims))
    if code == 0 or "unknown_key" not in text.lower():
        raise Failure(f"a token of the removed key {old.kid} was not unknown_key: {text}")
    return f"rotated to {new.kid}: seen after {took:.1f}s, its token valid, the old key's unknown_key"


def reload_count(ports: dict, outcome: str) -> float:
    return scrape(ports["metrics"], "tokengate_config_reloads_total").get(f'{{outcome="{outcome}"}}', 0.0)


def start(args, limits: str = ""):
    """The provider, the configuration, the tokens and the server of one test, in --out."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ports = {"grpc": free_port(), "metrics": free_port(), "forward_auth": free_port()}
    stable, static = setup.Key("RS256", "stable"), setup.Key("RS256", "static")
    provider = Provider(stable)
    (out / "static-jwks.json").write_text(json.dumps({"keys": [static.jwk]}))
    config = out / "config.yaml"
    write_atomically(config, config_text(ports, provider, 0, limits))
    kinds = write_tokens(out / "tokens.txt", stable, static, provider.url, args.tokens)
    log(f"tokens: {kinds}")
    server = Server(args.tokengate, config, out)
    return out, ports, provider, server, kinds


def soak(args) -> dict:
    out, ports, provider, server, kinds = start(args)
    try:
        wait_ready(server, ports["metrics"])
        return drive_soak(args, out, ports, provider, server, kinds)
    finally:
        server.stop()


def drive_soak(args, out, ports, provider, server, kinds) -> dict:
    started = time.monotonic()
    sampler = Sampler(server, started)
    sampler.start()
    until = started + args.seconds + 3600  # the SIGTERM ends the load, not the clock
    loads = [Load(name, command, args.window, until, started)
             for name, command in soak_loads(args.bench, out / "tokens.txt", ports, args.scale).items()]
    for load in loads:
        load.start()
    try:
        return run_phases(args, ports, provider, server, loads, sampler, started, kinds)
    finally:
        for load in loads:
            load.stopped.set()
        sampler.stopped.set()


def run_phases(args, ports, provider, server, loads, sampler, started, kinds) -> dict:
    load_seconds = args.seconds
    phases = [
        ("steady", "ok"), ("rotate", "ok"), ("slow provider", "slow"), ("provider errors", "error"),
        ("garbage", "garbage"), ("truncated", "truncated"), ("resets", "reset"),
        ("provider back, rotate", "ok"), ("reload", "ok"), ("broken reload", "ok"), ("steady", "ok"),
    ]
    phase_seconds = load_seconds / len(phases)
    timeline, events = [], []
    old_key = provider.rotating
    for index, (name, mode) in enumerate(phases):
        begin = time.monotonic() - started
        timeline.append((begin, name))
        provider.mode = mode
        log(f"phase {index + 1}/{len(phases)}: {name} (provider: {mode})")
        if name.endswith("rotate"):
            events.append(check_rotation(args.tokengate, ports, provider, provider.url, old_key))
            old_key = provider.rotating
            log(events[-1])
        elif name == "reload":
            before = reload_count(ports, "success")
            write_atomically(server.config, config_text(ports, provider, 1))
            server.process.send_signal(signal.SIGHUP)
            wait_until("a successful reload", lambda: reload_count(ports, "success") > before, 15)
            wait_until("the reloaded tenant in the admin view",
                       lambda: bool(admin_kids(ports["metrics"], "added-by-reload")), 15)
            events.append("reloaded: a tenant added, the cache resized")
        elif name == "broken reload":
            before = reload_count(ports, "failure")
            write_atomically(server.config, "tenants: [ this is : not yaml\n")
            server.process.send_signal(signal.SIGHUP)
            wait_until("a refused reload", lambda: reload_count(ports, "failure") > before, 15)
            restored = reload_count(ports, "success")
            write_atomically(server.config, config_text(ports, provider, 0))
            server.process.send_signal(signal.SIGHUP)
            wait_until("the good configuration reloaded after the broken one",
                       lambda: reload_count(ports, "success") > restored, 15)
            events.append("broken reload refused, serving on; then the good configuration again")
        remaining = started + (index + 1) * phase_seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
    provider.mode = "ok"
    # SIGTERM under load: the loads are mid-window.
    time.sleep(min(2.0, args.window / 2))
    sigterm_at = time.monotonic() - started
    sigterm_wall_ms = time.time() * 1000
    log(f"SIGTERM at {sigterm_at:.1f}s, under load")
    server.process.send_signal(signal.SIGTERM)
    for load in loads:
        load.stopped.set()  # the runs in progress go on; no new ones start
    try:
        exit_code = server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        exit_code = None
    stopped_after = time.monotonic() - started - sigterm_at
    for load in loads:
        load.join(timeout=args.window + 90)
    sampler.stopped.set()
    sigterm = {"at": sigterm_at, "wall_ms": sigterm_wall_ms, "exit": exit_code,
               "stopped_after": stopped_after}
    return judge_soak(args, loads, sampler.samples, timeline, events, sigterm,
                      server.log_text(), provider.hits, kinds)


def judge_soak(args, loads, samples, timeline, events, sigterm, server_log, hits, kinds) -> dict:
    sigterm_at, exit_code, stopped_after = sigterm["at"], sigterm["exit"], sigterm["stopped_after"]
    problems = []
    for load in loads:
        if load.is_alive():
            problems.append(f"{load.name}: its load generator was still running long after SIGTERM")
    totals = {"sent": 0, "answered": 0, "validations": 0, "wrong": 0, "lost": 0,
              "refused_after_sigterm": 0}
    windows = []
    for load in loads:
        for run in load.runs:
            report = run["report"]
            if report is None:
                # A run that began just before SIGTERM may find the listener closed already.
                if run["end"] < sigterm_at:
                    problems.append(f"{load.name}: a run got no report: {run['stderr']}")
                continue
            answered = report["calls"]
            failed, wrong, shed = report["failed"], report["wrong"], report["shed"]
            totals["sent"] += answered + failed + shed
            totals["answered"] += answered
            totals["validations"] += report["validations"]
            totals["wrong"] += wrong
            if wrong:
                problems.append(f"{load.name} at {run['begin']:.0f}s: {wrong} wrong verdicts: "
                                f"{report.get('first_problem')}")
            # A failure before SIGTERM is a lost call; after it, a refusal (the listener is
            # closed, streams end with UNAVAILABLE). The bench says when its first one was.
            first_failure = report.get("first_failure_unix_ms")
            before = run["end"] < sigterm_at or (first_failure is not None
                                                 and first_failure < sigterm["wall_ms"])
            if (failed or shed) and before:
                totals["lost"] += failed + shed
                problems.append(f"{load.name} at {run['begin']:.0f}s: {failed} failed, {shed} shed "
                                f"before SIGTERM: {report.get('first_problem')}")
            else:
                totals["refused_after_sigterm"] += failed + shed
            if report["calls"] == 0:
                continue
            windows.append({"load": load.name, "begin": round(run["begin"], 1),
                            "end": round(run["end"], 1), "p50_ms": round(report["p50_us"] / 1000, 2),
                            "p99_ms": round(report["p99_us"] / 1000, 2),
                            "validations_per_second": round(report["validations_per_second"])})
    if exit_code != 0:
        problems.append(f"tokengate exited with {exit_code} after SIGTERM (expected 0)")
    if "still open after the drain timeout" in server_log:
        problems.append("the drain after SIGTERM timed out: requests in flight were cut")
    if "panicked" in server_log:
        problems.append("tokengate panicked (see server.log)")
    growth = judge_growth(samples, problems)
    for kind in ("slow", "error", "garbage", "truncated", "reset"):
        if hits[kind] == 0:
            problems.append(f"the provider never served a {kind} answer: the fault was not exercised")
    summary = {
        "seconds": args.seconds, "tokens": kinds, "totals": totals, "events": events,
        "provider_hits": hits, "sigterm_at_s": round(sigterm_at, 1), "exit_code": exit_code,
        "stopped_after_sigterm_s": round(stopped_after, 2), "memory": growth,
        "timeline": [(round(begin, 1), name) for begin, name in timeline],
        "windows": sorted(windows, key=lambda w: (w["begin"], w["load"])),
        "problems": problems,
    }
    return summary


def judge_growth(samples, problems) -> dict:
    """Peak RSS and descriptors, and whether they level off: the last third of the run may not
    exceed the middle third by more than a margin."""
    if len(samples) < 9:
        problems.append("too few RSS samples to judge growth")
        return {}
    third = len(samples) // 3
    middle, last = samples[third:2 * third], samples[2 * third:]
    rss_mid, rss_last = max(s[1] for s in middle), max(s[1] for s in last)
    fd_mid, fd_last = max(s[2] for s in middle), max(s[2] for s in last)
    if rss_last > rss_mid * 1.25 + 16 * MiB:
        problems.append(f"RSS kept growing: {rss_mid / MiB:.0f} MiB in the middle third, "
                        f"{rss_last / MiB:.0f} MiB in the last")
    if fd_last > fd_mid + 32:
        problems.append(f"open descriptors kept growing: {fd_mid} in the middle third, {fd_last} in the last")
    return {"peak_rss_mib": round(max(s[1] for s in samples) / MiB, 1),
            "rss_middle_third_mib": round(rss_mid / MiB, 1), "rss_last_third_mib": round(rss_last / MiB, 1),
            "peak_fds": max(s[2] for s in samples), "fds_middle_third": fd_mid, "fds_last_third": fd_last}


def print_soak(summary: dict) -> None:
    totals = summary["totals"]
    print(f"soak: {summary['seconds']}s of load, faults: {', '.join(name for _, name in summary['timeline'])}")
    for event in summary["events"]:
        print(f"  {event}")
    print(f"  calls sent {totals['sent']}, answered {totals['answered']}, lost before SIGTERM "
          f"{totals['lost']}, tokens judged {totals['validations']}, wrong {totals['wrong']}")
    print(f"  provider answers by mode: {summary['provider_hits']}")
    print(f"  SIGTERM at {summary['sigterm_at_s']}s: exit {summary['exit_code']} after "
          f"{summary['stopped_after_sigterm_s']}s; calls refused after it: {totals['refused_after_sigterm']}")
    memory = summary["memory"]
    if memory:
        print(f"  peak RSS {memory['peak_rss_mib']} MiB (middle third {memory['rss_middle_third_mib']}, "
              f"last third {memory['rss_last_third_mib']}); peak fds {memory['peak_fds']} "
              f"(middle {memory['fds_middle_third']}, last {memory['fds_last_third']})")
    print("  p99 over time (ms), by window start:")
    by_begin = {}
    for window in summary["windows"]:
        by_begin.setdefault(int(window["begin"] // 5 * 5), {})[window["load"]] = window["p99_ms"]
    names = ["unary", "batch", "stream", "check", "forward-auth"]
    print("    {:>6}  ".format("t (s)") + "".join(f"{name:>14}" for name in names))
    for begin in sorted(by_begin):
        row = by_begin[begin]
        print(f"    {begin:>6}  " + "".join(f"{row.get(name, '-'):>14}" for name in names))
    for problem in summary["problems"]:
        print(f"  PROBLEM: {problem}")
    print("soak: " + ("passed" if not summary["problems"] else f"FAILED ({len(summary['problems'])} problems)"))


FLOOD_LIMITS = """limits:
  max_in_flight: 32
  max_connections: 128
  max_streams_per_connection: 64
  request_timeout: 5s
  idle_timeout: 10s
  header_read_timeout: 2s
"""


class HalfOpen(threading.Thread):
    """Opens connections that send a little and then nothing, and counts how many the server
    closes and how fast."""

    def __init__(self, port: int, count: int, opening: bytes):
        super().__init__(daemon=True)
        self.port, self.count, self.opening = port, count, opening
        self.opened, self.closed_after = 0, []

    def run(self):
        sockets = []
        for _ in range(self.count):
            try:
                connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                connection.sendall(self.opening)
                connection.settimeout(0.05)
                sockets.append((connection, time.monotonic()))
                self.opened += 1
            except OSError:
                pass
        deadline = time.monotonic() + 30
        while sockets and time.monotonic() < deadline:
            still = []
            for connection, opened in sockets:
                try:
                    data = connection.recv(65536)
                    if data == b"":
                        self.closed_after.append(time.monotonic() - opened)
                        connection.close()
                        continue
                except socket.timeout:
                    pass
                except OSError:
                    self.closed_after.append(time.monotonic() - opened)
                    connection.close()
                    continue
                still.append((connection, opened))
            sockets = still
        for connection, _ in sockets:
            connection.close()


def run_bench(command: list[str], seconds: float, extra: list[str] = (), warmup: str = "0s") -> dict:
    """One `tokengate bench` run; its report, or Failure. No warm-up by default: a warm-up
    phase would close the streams it opened and let other loads take their places."""
    done = subprocess.run(command + ["--duration", f"{seconds:.0f}s", "--warmup", warmup, "--no-ceiling",
                                     "--json", *extra], capture_output=True, text=True, timeout=seconds + 90)
    try:
        return json.loads(done.stdout)["measured"]
    except (json.JSONDecodeError, KeyError):
        raise Failure(f"bench gave no report: {done.stderr.strip()[-400:]}")


def flood(args) -> dict:
    out, ports, _, server, _ = start(args, FLOOD_LIMITS)
    try:
        wait_ready(server, ports["metrics"])
        return drive_flood(args, out, ports, server)
    finally:
        server.stop()


def drive_flood(args, out, ports, server) -> dict:
    problems = []
    def target(mode):
        return bench_target(args.bench, out / "tokens.txt", ports, mode)

    normal = target("unary") + ["--connections", "2", "--in-flight", "8"]
    before = run_bench(normal, 3, warmup="1s")
    log(f"before the flood: {before['validations_per_second']:.0f} validations/s")
    started = time.monotonic()
    sampler = Sampler(server, started)
    sampler.start()
    seconds = args.seconds
    results = {}

    def background(name, command, extra=()):
        results[name] = run_bench(command, seconds, list(extra))

    probe = threading.Thread(target=background, args=(
        "health probe", target("health") + ["--connections", "1", "--in-flight", "1"]))
    probe.start()
    # A well-behaved client beside the flood: one call at a time; each is judged or shed.
    victim = threading.Thread(target=background, args=(
        "validate probe", target("unary") + ["--connections", "1", "--in-flight", "1"], ["--allow-shed"]))
    victim.start()
    time.sleep(1.5)
    # The slow-reading streams first, so that they hold places (16 of max_in_flight's 32) as a
    # stream does until it closes; then the floods of calls compete for the rest.
    floods = {
        "stream flood, slow readers": target("stream") + ["--connections", "16", "--in-flight", "64",
                                                          "--read-delay", "20ms"],
        "unary flood": target("unary") + ["--connections", "40", "--in-flight", "32"],
        "forward-auth flood": target("forward-auth") + ["--connections", "1", "--in-flight", "64"],
    }
    threads = [threading.Thread(target=background, args=(name, command, ["--allow-shed"]))
               for name, command in floods.items()]
    threads[0].start()
    time.sleep(1)
    for thread in threads[1:]:
        thread.start()

    def connected():
        open_now = scrape(ports["metrics"], "tokengate_connections_open")
        return open_now.get('{listener="grpc"}', 0) >= 2 + 16 + 40

    # The half-open connections come once the gRPC floods are connected (their connections
    # open at start), so that they, not the floods, are what max_connections refuses there.
    # forward-auth opens connections as it needs them: its 64 and the 60 half-open ones stay
    # under the cap of 128.
    wait_until("the floods' connections", connected, 30)
    half_open = [
        HalfOpen(ports["grpc"], 90, b"PRI * HTTP/2.0\r\n"),  # 58 + 90 > 128
        HalfOpen(ports["forward_auth"], 60, b"GET /auth HTTP/1.1\r\nHost: x\r\n"),
        HalfOpen(ports["metrics"], 30, b"GET /metrics HTTP/1.1\r\n"),
    ]
    for opener in half_open:
        opener.start()
    for thread in threads + [probe, victim]:
        thread.join(timeout=seconds + 120)
    for opener in half_open:
        opener.join(timeout=40)
    sampler.stopped.set()
    wait_until("the flood's connections closed",
               lambda: sum(scrape(ports["metrics"], "tokengate_connections_open").values()) <= 4, 30)
    after = run_bench(normal, 3, warmup="1s")
    recovery = after["validations_per_second"] / max(before["validations_per_second"], 1)
    log(f"after the flood: {after['validations_per_second']:.0f} validations/s (x{recovery:.2f})")
    shed_by_reason = scrape(ports["metrics"], "tokengate_shed_total")
    shed_total = sum(shed_by_reason.values())
    peak_rss = max((s[1] for s in sampler.samples), default=0)
    health = results.get("health probe")
    if not health or health["failed"] or health["wrong"] or health["validations"] == 0:
        problems.append(f"health did not answer throughout the flood: {health}")
    elif health["p99_us"] > args.health_p99_ms * 1000:
        problems.append(f"health p99 {health['p99_us'] / 1000:.1f} ms > {args.health_p99_ms} ms")
    victim = results.get("validate probe")
    if not victim or victim["failed"] or victim["wrong"] or victim["validations"] == 0:
        problems.append(f"the probe beside the flood lost calls or got wrong verdicts: {victim}")
    elif max(victim["p99_us"], victim["shed_p99_us"]) > args.shed_p99_ms * 1000:
        problems.append(f"the probe beside the flood waited: p99 {victim['p99_us'] / 1000:.0f} ms judged, "
                        f"{victim['shed_p99_us'] / 1000:.0f} ms shed > {args.shed_p99_ms} ms")
    flood_figures = {}
    for name in ["validate probe", *floods]:
        figures = results.get(name)
        if figures is None:
            problems.append(f"{name}: no report")
            continue
        flood_figures[name] = {k: figures[k] for k in ("validations", "wrong", "failed", "shed",
                                                        "p99_us", "shed_p99_us", "validations_per_second")}
        if figures["wrong"] or figures["failed"] or figures["validations"] == 0:
            problems.append(f"{name}: {figures['validations']} judged, {figures['wrong']} wrong, "
                            f"{figures['failed']} failed: {figures.get('first_problem')}")
    for reason in ("in_flight", "connections"):
        if shed_by_reason.get(f'{{reason="{reason}"}}', 0) == 0:
            problems.append(f"nothing was shed for {reason}: the flood did not exceed that limit")
    opened = sum(o.opened for o in half_open)
    closed = sum(len(o.closed_after) for o in half_open)
    if closed < opened:
        problems.append(f"half-open connections: {opened} opened, only {closed} closed by the server")
    if peak_rss > args.max_rss_mib * MiB:
        problems.append(f"peak RSS {peak_rss / MiB:.0f} MiB > {args.max_rss_mib} MiB")
    if recovery < 0.5:
        problems.append(f"throughput after the flood x{recovery:.2f} of before")
    if server.process.poll() is not None:
        problems.append(f"tokengate exited during the flood with {server.process.returncode}")
    return {
        "seconds": seconds, "before_vps": round(before["validations_per_second"]),
        "after_vps": round(after["validations_per_second"]), "recovery": round(recovery, 2),
        "health": health and {k: health[k] for k in ("validations", "failed", "p50_us", "p99_us")},
        "floods": flood_figures, "shed_total_metric": shed_total,
        "shed_by_reason": shed_by_reason,
        "half_open": {"opened": opened, "closed": closed,
                      "slowest_close_s": round(max((max(o.closed_after, default=0) for o in half_open)), 1)},
        "peak_rss_mib": round(peak_rss / MiB, 1), "problems": problems,
    }


def print_flood(summary: dict) -> None:
    print(f"flood: {summary['seconds']}s")
    health = summary["health"] or {}
    print(f"  health probe: {health.get('validations')} answered, {health.get('failed')} failed, "
          f"p50 {health.get('p50_us', 0) / 1000:.1f} ms, p99 {health.get('p99_us', 0) / 1000:.1f} ms")
    for name, figures in summary["floods"].items():
        print(f"  {name}: {figures['validations']} judged ({figures['validations_per_second']:.0f}/s, "
              f"p99 {figures['p99_us'] / 1000:.1f} ms), {figures['shed']} shed (p99 "
              f"{figures['shed_p99_us'] / 1000:.1f} ms), {figures['failed']} failed, {figures['wrong']} wrong")
    half = summary["half_open"]
    print(f"  half-open connections: {half['opened']} opened, {half['closed']} closed by the server "
          f"(slowest after {half['slowest_close_s']}s)")
    print(f"  tokengate_shed_total: {summary['shed_total_metric']:.0f} {summary['shed_by_reason']}; peak RSS {summary['peak_rss_mib']} MiB")
    print(f"  throughput before {summary['before_vps']}/s, after {summary['after_vps']}/s "
          f"(x{summary['recovery']})")
    for problem in summary["problems"]:
        print(f"  PROBLEM: {problem}")
    print("flood: " + ("passed" if not summary["problems"] else f"FAILED ({len(summary['problems'])} problems)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test", choices=["soak", "flood"])
    parser.add_argument("--tokengate", required=True, help="the tokengate binary to serve")
    parser.add_argument("--bench", help="the tokengate binary that loads (default: --tokengate)")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--window", type=float, default=10, help="soak: seconds per bench run")
    parser.add_argument("--scale", type=int, default=1, help="soak: multiplies calls in flight")
    parser.add_argument("--tokens", type=int, default=2000, help="distinct valid tokens")
    parser.add_argument("--health-p99-ms", type=float, default=250)
    parser.add_argument("--shed-p99-ms", type=float, default=500,
                        help="flood: the most the probe beside it may wait, judged or shed (p99)")
    parser.add_argument("--max-rss-mib", type=float, default=512)
    parser.add_argument("--latency-scale", type=float, default=1,
                        help="flood: multiplies both latency bounds (6 for a debug build)")
    parser.add_argument("--out", default="target/soak")
    args = parser.parse_args()
    args.bench = args.bench or args.tokengate
    args.health_p99_ms *= args.latency_scale
    args.shed_p99_ms *= args.latency_scale
    args.out = str(Path(args.out) / args.test)
    try:
        if args.test == "soak":
            summary = soak(args)
            print_soak(summary)
        else:
            summary = flood(args)
            print_flood(summary)
    except Failure as failure:
        print(f"{args.test}: FAILED: {failure}")
        return 1
    except Exception as error:  # a crash of the test itself is a failure, said as one
        print(f"{args.test}: FAILED: {type(error).__name__}: {error}")
        return 1
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0 if not summary["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
