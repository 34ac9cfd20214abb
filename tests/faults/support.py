"""What the fault tests share: a prober that keeps calling a function while something goes
wrong elsewhere, percentiles, waiting, and the gateway worker's memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.integration.conftest import Gateway


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else 0.0


def wait_for(check: Callable[[], object], timeout: float, step: float = 0.1) -> object:
    """The first truthy value of check() within timeout, else the last (falsy) one."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


@dataclass
class Probe:
    """Latencies (ms) and failures of the calls one prober made."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        v = self.latencies_ms
        return {
            "calls": len(v),
            "failed": len(self.failures),
            "p50_ms": round(pct(v, 50), 1),
            "p99_ms": round(pct(v, 99), 1),
            "max_ms": round(max(v), 1) if v else 0.0,
        }


class Prober:
    """Calls a function back to back on its own keep-alive connection until stopped.

    `with Prober(gw, name) as probe: ...` probes for the duration of the block; every call
    must answer 200 with the function's own result, else it counts as a failure.
    """

    def __init__(self, gw: Gateway, name: str, *, pause_s: float = 0.01) -> None:
        self.url = f"{gw.url}/2015-03-31/functions/{name}/invocations"
        self.pause_s = pause_s
        self.result = Probe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    r = session.post(self.url, data=b'{"probe": true}', timeout=30)
                    ok = r.status_code == 200 and "X-Amz-Function-Error" not in r.headers and r.json() == "pong"
                    problem = "" if ok else f"{r.status_code} {r.text[:200]}"
                except requests.RequestException as e:
                    problem = f"{type(e).__name__}: {e}"
                took = (time.perf_counter() - started) * 1000
                if problem:
                    self.result.failures.append(problem)
                else:
                    self.result.latencies_ms.append(took)
                self._stop.wait(self.pause_s)


PROBE_CODE = "def handler(event, context):\n    return 'pong'\n"


def worker_pid(gw: Gateway) -> int:
    """The gunicorn worker of a `faas up` (the child of its arbiter)."""
    children = Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children").read_text().split()
    assert children, "the gateway has no worker process"
    return int(children[0])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
