#!/usr/bin/env python3
"""Failed client-credentials answers, timed per kind of client: does the time of a 401 tell
whether a client exists, is disabled, or has enrolled OTP? Starts tokensmith on a fresh SQLite
database (failure limits off, so the measurement cannot lock itself out), registers the
clients, then sends interleaved requests over one keep-alive connection and prints the median
and quartiles of each kind.

    bench/load/failure_timing.py BINARY [SAMPLES] [-- extra serve flags]

With the default --failure-delay-ms (20), every kind should answer at the same time; with
--failure-delay-ms 0 the lookups' own differences show."""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
rest = sys.argv[2:]
extra = rest[rest.index("--") + 1:] if "--" in rest else []
samples = int(rest[0]) if rest and rest[0] != "--" else 1000
work = tempfile.mkdtemp()
db = f"sqlite://{work}/t.db"
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()


def cli(*args):
    out = subprocess.run([binary, *args, "--database", db], check=True, capture_output=True, text=True)
    return out.stdout


def client(name, *flags):
    return json.loads(cli("client", "create", "--name", name, "--scopes", "read", "--json", *flags))


existing = client("existing")
with_otp = client("with-otp", "--otp")
disabled = client("disabled")
cli("client", "disable", disabled["client_id"])
server = subprocess.Popen(
    [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", db, "--failures-per-client", "0",
     "--failures-per-address", "0", "--otp-failures-per-day", "0", *extra],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
try:
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    wrong = "tsc_" + "0" * 49
    kinds = {
        "existing client, wrong secret": existing["client_id"],
        "client with OTP, wrong secret": with_otp["client_id"],
        "disabled client": disabled["client_id"],
        "unknown client": "cli_" + "Z" * 20,
    }
    times = {k: [] for k in kinds}
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(samples):
        for kind, cid in kinds.items():
            body = json.dumps({"grant_type": "client_credentials", "client_id": cid, "client_secret": wrong})
            start = time.perf_counter()
            conn.request("POST", "/v1/auth/tokens/long", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            times[kind].append((time.perf_counter() - start) * 1e6)
            assert reply.status == 401, reply.status
    print(f"{samples} interleaved samples each, flags {' '.join(extra) or '(defaults)'}")
    for kind, ts in times.items():
        q = statistics.quantiles(ts, n=4)
        print(f"  {kind:<32} median {statistics.median(ts):9.1f} µs   quartiles {q[0]:9.1f} – {q[2]:9.1f} µs")
finally:
    server.terminate()
    server.wait()
