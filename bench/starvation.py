"""Benchmark: can a few callers starve everyone? A probe caller's latency on a quiet gateway,
then while slow-body and idle connections are held (issue 17, finding 4), in one run.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir, deploys
functions/hello, and prints one JSON document: the probe's p50/p99 in ms in each phase, its
failures, and each loaded p99 over the quiet p99 (the issue's bar: within 5x). Usage:

    .venv/bin/python bench/starvation.py [--calls 300] [--slow 64] [--idle 1000]

The probe makes each call on a new connection (a caller that must be accepted, as well as
served). Phases:
  quiet       nothing else
  slow_body   --slow connections each declaring a 1,000-byte Invoke body and sending one byte
              every 5 s (as many as the gateway has request slots)
  idle        --idle connections that send nothing, held (not reopened when the gateway
              closes them)
  idle_refilled  the same, but every one the gateway closes is reopened at once, so the
              connections stay at the gateway's cap for the whole phase
  idle_refilled_keep_alive_probe  the same load, the probe's calls all on one connection
  both        slow_body and idle together (--idle minus --slow idle connections)
  quiet_after nothing else again: how much the quiet figures move on their own
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import selectors
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import JSON_HEADERS, ROOT, emit, running_gateway, summary  # noqa: E402

PATH = "/2015-03-31/functions/hello/invocations"


def probe(port: int, calls: int, *, keep_alive: bool = False) -> dict[str, Any]:
    """`calls` Invokes, each on a new connection (keep_alive: all on one, as an SDK makes
    them, opened before the first timed call); the latency of each that answered 200."""
    latencies: list[float] = []
    failures = 0
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30) if keep_alive else None
    if kept is not None:
        kept.connect()
    for _ in range(calls):
        started = time.perf_counter()
        conn = kept or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", PATH, body=b"{}", headers=JSON_HEADERS)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
        finally:
            if kept is None:
                conn.close()
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failures += 1
    if kept is not None:
        kept.close()
    out: dict[str, Any] = summary(latencies) if latencies else {"n": 0}
    out["failed"] = failures
    return out


@contextmanager
def slow_bodies(port: int, n: int) -> Iterator[None]:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode()
    socks: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(5.0):
            for s in socks:
                try:
                    s.send(b" ")
                except OSError:
                    pass

    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(head)
        socks.append(s)
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(1.0)
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        for s in socks:
            s.close()


@contextmanager
def idle_connections(port: int, n: int, *, refill: bool) -> Iterator[dict[str, int]]:
    """n connections that send nothing; with refill, each one the gateway closes is reopened."""
    stats = {"reopened": 0}
    selector = selectors.DefaultSelector()
    stop = threading.Event()

    def open_one() -> None:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)

    def keep_refilled() -> None:
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    if s.recv(1):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                selector.unregister(s)
                s.close()
                if refill and not stop.is_set():
                    try:
                        open_one()
                        stats["reopened"] += 1
                    except OSError:
                        pass

    for _ in range(n):
        open_one()
    thread = threading.Thread(target=keep_refilled, daemon=True)
    thread.start()
    time.sleep(1.0)
    try:
        yield stats
    finally:
        stop.set()
        thread.join(10)
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300, help="probe calls per phase")
    ap.add_argument("--slow", type=int, default=64, help="slow-body connections")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.slow + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))

    with running_gateway("faas-bench-starve-") as gw:
        work = gw.tmp / "hello"
        shutil.copytree(ROOT / "functions" / "hello", work)
        gw.deploy(work)
        time.sleep(1.5)
        probe(gw.port, 30)  # warm: the environment exists, the code is imported

        phases: dict[str, Any] = {"quiet": probe(gw.port, args.calls)}
        with slow_bodies(gw.port, args.slow):
            phases["slow_body"] = probe(gw.port, args.calls)
        with idle_connections(gw.port, args.idle, refill=False):
            phases["idle"] = probe(gw.port, args.calls)
        with idle_connections(gw.port, args.idle, refill=True) as stats:
            phases["idle_refilled"] = probe(gw.port, args.calls)
            phases["idle_refilled"]["reopened_by_the_attacker"] = stats["reopened"]
            phases["idle_refilled_keep_alive_probe"] = probe(gw.port, args.calls, keep_alive=True)
        with slow_bodies(gw.port, args.slow), idle_connections(gw.port, args.idle - args.slow, refill=False):
            phases["both"] = probe(gw.port, args.calls)
        phases["quiet_after"] = probe(gw.port, args.calls)  # the machine's own noise, for comparison
        phases["quiet_keep_alive_probe"] = probe(gw.port, args.calls, keep_alive=True)

        def ratio(name: str) -> float | None:
            """A loaded phase's p99 over the quiet one's with the same kind of probe."""
            quiet = phases["quiet_keep_alive_probe" if "keep_alive" in name else "quiet"].get("p99_ms")
            loaded = phases[name].get("p99_ms")
            return round(loaded / quiet, 2) if quiet and loaded else None

        result = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "probe": f"{args.calls} calls per phase, each on a new connection",
            "load": {"slow_body_connections": args.slow, "idle_connections": args.idle},
            **phases,
            "ratios": {
                f"{name}_p99_over_quiet_p99": ratio(name)
                for name in phases
                if name not in ("quiet", "quiet_after", "quiet_keep_alive_probe")
            },
        }
        emit(result, args.out)
        return 0


if __name__ == "__main__":
    sys.exit(main())
