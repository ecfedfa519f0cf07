#!/usr/bin/env python3
"""Crash safety under load: every 201 and 204 a client received survives a SIGKILL.

Starts `tokensmith serve` on a fresh SQLite file, registers a client with the real CLI, and
then, for each cycle: several worker threads issue long-term tokens (client secret grant),
mint short-term tokens from them and revoke some of each, recording every answer they got;
the server is killed with SIGKILL at a random moment (seeded; the seed is printed) while
requests are in flight; the database left behind is copied and must pass
`PRAGMA integrity_check`; the server is restarted on the same database and every
acknowledgement is checked:

- a long-term token answered 201 and not revoked still mints a short-term token (201);
- a long-term token whose revocation was answered 204 is refused (401);
- a short-term token answered 201 whose revocation, or whose parent's, was answered 204 is
  reported `{"active": false}` by introspection; one with neither is still active.

A request that got no answer (the kill) is unknown: a revocation without an answer makes
its token, and the short-term tokens minted from it, unchecked. Checks accumulate over the
cycles. Exit status 1 and a message naming the token id on any violation; no secret is
ever printed. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

LONG = "/v1/auth/tokens/long"
SHORT = "/v1/auth/tokens/short"
INTROSPECT = "/v1/auth/tokens/introspect"


class Violation(Exception):
    """An acknowledged write that did not survive, or a damaged database."""


def log(msg: str) -> None:
    print(f"crash: {msg}", flush=True)


@dataclass
class Ledger:
    """What one worker was told. Tokens are kept to check them, never printed."""

    long: dict[str, str] = field(default_factory=dict)  # id -> token, answered 201
    short: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (jwt, parent id), 201
    revoked_long: set[str] = field(default_factory=set)  # answered 204
    revoked_short: set[str] = field(default_factory=set)  # answered 204
    unknown: set[str] = field(default_factory=set)  # revocations without an answer
    answers: int = 0
    no_answer: int = 0


class Api:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def call(self, path: str, body: dict | None = None, bearer: str | None = None) -> tuple[int, dict | None]:
        """(status, JSON body); raises OSError or http.client errors when there is no answer."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else b""
        try:
            self.conn.request("POST", path, body=data, headers=headers)
            res = self.conn.getresponse()
            raw = res.read()
        except BaseException:
            self.close()
            raise
        return res.status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, database: str, workdir: str, extra: list[str]) -> None:
        self.binary, self.database, self.workdir, self.extra = binary, database, workdir, extra
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        logf = open(os.path.join(self.workdir, f"server-{self.starts}.log"), "wb")
        # A fixed issuer: each start listens on a new port, and the default issuer (the
        # listen address) would make the tokens of the previous start foreign. Failed-
        # authentication limits are off: the checks present revoked tokens on purpose.
        cmd = [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--database", self.database,
               "--issuer", "http://tokensmith.crash.test", "--failures-per-client", "0",
               "--failures-per-address", "0", *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Violation(f"server exited with {self.proc.returncode} on start {self.starts} "
                                f"(see {self.workdir}/server-{self.starts}.log)")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise Violation(f"server not ready within 60 s on start {self.starts}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Worker(threading.Thread):
    """Issues and revokes tokens until told to stop, recording every answer."""

    def __init__(self, n: int, port: int, client: dict, ledger: Ledger, rng: random.Random,
                 stop: threading.Event) -> None:
        super().__init__(name=f"worker-{n}", daemon=True)
        self.api = Api(port)
        self.client, self.ledger, self.rng, self.stop = client, ledger, rng, stop
        self.error: BaseException | None = None

    def live_long(self) -> list[str]:
        led = self.ledger
        return [i for i in led.long if i not in led.revoked_long and i not in led.unknown]

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        except BaseException as e:  # reported by the main thread
            self.error = e
        finally:
            self.api.close()

    def step(self) -> None:
        led, rng = self.ledger, self.rng
        live = self.live_long()
        roll = rng.random()
        try:
            if not live or roll < 0.30:
                body = {"grant_type": "client_credentials", "client_id": self.client["client_id"],
                        "client_secret": self.client["client_secret"], "ttl_days": 30}
                status, res = self.api.call(LONG, body)
                self.expect(status, 201, "issue long-term token", res)
                led.long[res["token_id"]] = res["access_token"]
            elif roll < 0.70:
                parent = rng.choice(live)
                status, res = self.api.call(SHORT, {"ttl_seconds": 900}, bearer=led.long[parent])
                self.expect(status, 201, f"issue short-term token from {parent}", res)
                led.short[res["token_id"]] = (res["access_token"], parent)
            elif roll < 0.85:
                target = rng.choice(live)
                led.unknown.add(target)
                status, res = self.api.call(f"/v1/auth/tokens/{target}/revoke", bearer=led.long[target])
                self.expect(status, 204, f"revoke long-term token {target}", res)
                led.revoked_long.add(target)
                led.unknown.discard(target)
            else:
                candidates = [i for i, (_, p) in led.short.items()
                              if p in live and i not in led.revoked_short and i not in led.unknown]
                if not candidates:
                    return
                target = rng.choice(candidates)
                parent = led.short[target][1]
                led.unknown.add(target)
                status, res = self.api.call(f"/v1/auth/tokens/{target}/revoke", bearer=led.long[parent])
                self.expect(status, 204, f"revoke short-term token {target}", res)
                led.revoked_short.add(target)
                led.unknown.discard(target)
            led.answers += 1
        except (OSError, http.client.HTTPException):
            # No answer (the server was killed): the outcome is unknown and not checked.
            led.no_answer += 1
            if self.stop.wait(0.01):
                return

    @staticmethod
    def expect(status: int, want: int, what: str, res: dict | None) -> None:
        if status != want:
            err = (res or {}).get("error") if isinstance(res, dict) else None
            raise Violation(f"{what}: answered {status} ({err}) while the server was up, expected {want}")


def create_client(binary: str, database: str) -> dict:
    out = subprocess.run([binary, "client", "create", "--name", "crash-test", "--scopes",
                          "tokens:write tokens:introspect", "--json", "--database", database],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def integrity_check(db_path: str, snapshot_dir: str) -> None:
    """Checks a copy of the files as the crash left them (the real ones stay untouched)."""
    os.makedirs(snapshot_dir, exist_ok=True)
    copy = os.path.join(snapshot_dir, "crash.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            shutil.copyfile(db_path + suffix, copy + suffix)
    con = sqlite3.connect(copy)
    try:
        rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()
    shutil.rmtree(snapshot_dir)
    if rows != ["ok"]:
        raise Violation(f"PRAGMA integrity_check after the kill: {rows[:10]}")


def verify(port: int, ledgers: list[Ledger], checker: str) -> dict[str, int]:
    """Checks every acknowledgement against the restarted server."""
    api = Api(port)
    counts = dict(long_live=0, long_revoked=0, short_revoked=0, short_parent_revoked=0, short_live=0)
    try:
        for led in ledgers:
            for tid, token in led.long.items():
                if tid in led.unknown:
                    continue
                status, res = api.call(SHORT, {"ttl_seconds": 60}, bearer=token)
                err = (res or {}).get("error") if isinstance(res, dict) else None
                if tid in led.revoked_long:
                    if status != 401:
                        raise Violation(f"long-term token {tid} was revoked (204) but mints: {status} ({err})")
                    counts["long_revoked"] += 1
                else:
                    if status != 201:
                        raise Violation(f"long-term token {tid} was issued (201) but is refused: {status} ({err})")
                    counts["long_live"] += 1
            for sid, (jwt, parent) in led.short.items():
                if sid in led.unknown or parent in led.unknown:
                    continue
                status, res = api.call(INTROSPECT, {"token": jwt}, bearer=checker)
                if status != 200 or not isinstance(res, dict):
                    raise Violation(f"introspection of {sid} answered {status}")
                if sid in led.revoked_short or parent in led.revoked_long:
                    if res.get("active") is not False:
                        why = "it" if sid in led.revoked_short else f"its parent {parent}"
                        raise Violation(f"short-term token {sid} is active although {why} was revoked (204)")
                    counts["short_revoked" if sid in led.revoked_short else "short_parent_revoked"] += 1
                else:
                    if res.get("active") is not True or res.get("token_id") != sid:
                        raise Violation(f"short-term token {sid} was issued (201) but is not active")
                    counts["short_live"] += 1
    finally:
        api.close()
    return counts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default="target/debug/tokensmith", help="the tokensmith binary")
    p.add_argument("--workers", type=int, default=4, help="concurrent clients (default 4)")
    p.add_argument("--cycles", type=int, default=3, help="kill/restart cycles (default 3)")
    p.add_argument("--duration", type=float, default=4.0,
                   help="longest run before each kill, in seconds; the kill comes at a random moment "
                        "in its second half (default 4)")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for `serve`")
    a = p.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**32)
    log(f"seed {seed} (rerun with --seed {seed}); {a.workers} workers, {a.cycles} cycles, "
        f"up to {a.duration} s each")
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="tokensmith-crash-")
    db_path = os.path.join(workdir, "crash.db")
    database = f"sqlite://{db_path}"
    server = Server(os.path.abspath(a.binary), database, workdir, a.server_arg)
    ok = False
    try:
        client = create_client(server.binary, database)
        server.start()
        status, res = Api(server.port).call(LONG, {"grant_type": "client_credentials",
                                                    "client_id": client["client_id"],
                                                    "client_secret": client["client_secret"]})
        if status != 201:
            raise Violation(f"the checker's long-term token: {status}")
        checker = res["access_token"]
        ledgers = [Ledger() for _ in range(a.workers)]
        for cycle in range(1, a.cycles + 1):
            stop = threading.Event()
            workers = [Worker(n, server.port, client, ledgers[n], random.Random(rng.getrandbits(64)), stop)
                       for n in range(a.workers)]
            for w in workers:
                w.start()
            delay = rng.uniform(a.duration / 2, a.duration)
            time.sleep(delay)
            server.kill()
            stop.set()
            for w in workers:
                w.join(timeout=30)
                if w.is_alive():
                    raise Violation(f"{w.name} did not stop")
                if w.error is not None:
                    raise w.error
            answers = sum(l.answers for l in ledgers)
            log(f"cycle {cycle}: killed after {delay:.2f} s; {answers} answers so far, "
                f"{sum(l.no_answer for l in ledgers)} requests without one")
            integrity_check(db_path, os.path.join(workdir, "snapshot"))
            server.start()
            counts = verify(server.port, ledgers, checker)
            log(f"cycle {cycle}: integrity ok; after restart: {counts}")
        if sum(l.answers for l in ledgers) == 0:
            raise Violation("no request was answered: the test checked nothing")
        server.kill()
        integrity_check(db_path, os.path.join(workdir, "snapshot"))
        ok = True
        log("passed: every acknowledged issuance and revocation survived every kill")
        return 0
    except Violation as e:
        log(f"FAILED (seed {seed}): {e}")
        return 1
    finally:
        server.kill()
        if a.keep or not ok:
            log(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
