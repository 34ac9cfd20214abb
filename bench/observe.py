"""Benchmark: what watching costs. Warm latency and throughput with and without a dashboard
and a Prometheus scraper polling the gateway, measured in the same run, in pairs.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir and
deploys functions/hello. Then, for each of --rounds pairs, a quiet phase and a watched phase
back to back (their order alternating, so drift cancels): each phase makes --calls
sequential warm calls (p50/p99) and drives --concurrency clients for --tput-s seconds
(calls/s). "Watched" means a scraper polling GET /metrics and a dashboard polling what /ui
polls, at the dashboard's own rates times --poll-factor (or, with --browser, a real headless
Chromium with /ui open). On a shared machine single phases are noisy, so the figures that
count are the medians of the per-pair ratios (watched / quiet: 1.0 means no cost). The two
scheduler listeners are also timed in-process. Prints one JSON document. Usage:

    .venv/bin/python bench/observe.py [--rounds 10] [--calls 150] [--tput-s 2] [--poll-factor 1] [--browser]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import ROOT, Client, emit, running_gateway, summary, timed  # noqa: E402

# What gateway/static/app.js polls, and how often (seconds).
DASHBOARD_POLLS = (
    ("/ui/api/overview?window=10", 1.0),
    ("/ui/api/invocations?since={cursor}&limit=200", 0.7),
    ("/ui/api/series?function=hello&seconds=300", 2.0),
)


class Watcher:
    """A scraper and a dashboard polling from background threads while `active` is set."""

    def __init__(self, port: int, scrape_s: float, factor: float, browser: bool) -> None:
        self.port = port
        self.scrape_s = scrape_s / factor
        self.factor = factor
        self.browser = browser
        self.active = threading.Event()
        self.stop = threading.Event()
        self.requests = 0
        self.threads: list[threading.Thread] = []
        self._cursor = 0

    def _loop(self, path: str, every_s: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            if not self.active.wait(0.1):
                continue
            conn.request("GET", path.format(cursor=self._cursor))
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {r.status}")
            self.requests += 1
            if "invocations" in path:
                self._cursor = json.loads(body)["cursor"]
            self.stop.wait(every_s)

    def _browser(self) -> None:
        """A real page: it polls while open; between watched phases it sits on about:blank."""
        sys.path.insert(0, str(ROOT))
        from playwright.sync_api import sync_playwright

        from tests.integration.browser import CHROMIUM_FLAGS, ensure_chromium

        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(ensure_chromium()), args=list(CHROMIUM_FLAGS))
            page = b.new_page()
            showing = False
            while not self.stop.is_set():
                want = self.active.is_set()
                if want != showing:
                    page.goto(f"http://127.0.0.1:{self.port}/ui" if want else "about:blank")
                    showing = want
                    self.requests += 1
                page.wait_for_timeout(100)
            b.close()

    def start(self) -> None:
        targets: list[Callable[[], None]] = [lambda: self._loop("/metrics", self.scrape_s)]
        if self.browser:
            targets.append(self._browser)
        else:
            targets += [lambda p=p, s=s: self._loop(p, s / self.factor) for p, s in DASHBOARD_POLLS]
        self.threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def measure(port: int, calls: int, concurrency: int, tput_s: float) -> tuple[list[float], float]:
    """(sequential warm latencies in ms, calls/s of `concurrency` clients over tput_s seconds)."""
    client = Client(port)
    for _ in range(10):
        client.invoke("hello")
    warm = [timed(lambda: client.invoke("hello")) for _ in range(calls)]
    done = [0] * concurrency
    errors: list[int] = []
    until = time.perf_counter() + tput_s

    def worker(i: int) -> None:
        c = Client(port)
        while time.perf_counter() < until:
            status, _ = c.invoke("hello")
            if status != 200:
                errors.append(status)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    t0 = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed: {sorted(set(errors))}")
    return warm, sum(done) / elapsed


def listener_cost_us(n: int = 100_000) -> dict[str, float]:
    """Time the two scheduler listeners (metrics, activity) per call, in-process."""
    from faas.models import FunctionSpec, FunctionVersion, Result
    from faas.observe.activity import Activity
    from faas.observe.metrics import Metrics

    fv = FunctionVersion(FunctionSpec(name="hello"), 1, "ab" * 32, Path("/nonexistent"), 1, 0.0)
    result = Result(
        request_id="0" * 36,
        payload=b"{}",
        version=1,
        duration_ms=0.9,
        start="warm",
        status="ok",
        max_memory_mb=7,
        logs="START RequestId: x Version: 1\nEND RequestId: x\nREPORT RequestId: x\n",
    )
    out = {}
    for label, record in (("metrics", Metrics().record), ("activity", Activity().record)):
        for _ in range(1000):
            record(fv, result)
        t = time.perf_counter()
        for _ in range(n):
            record(fv, result)
        out[f"{label}_us_per_call"] = round((time.perf_counter() - t) / n * 1e6, 2)
    out["both_us_per_call"] = round(out["metrics_us_per_call"] + out["activity_us_per_call"], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10, help="quiet/watched pairs (default 10)")
    ap.add_argument("--calls", type=int, default=150, help="sequential warm calls per phase (default 150)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--tput-s", type=float, default=2.0, help="seconds of concurrent calls per phase (default 2)")
    ap.add_argument("--scrape-s", type=float, default=1.0, help="seconds between /metrics scrapes (default 1)")
    ap.add_argument(
        "--poll-factor", type=float, default=1.0, help="poll this many times more often than the dashboard does (default 1)"
    )
    ap.add_argument("--browser", action="store_true", help="a real headless Chromium with /ui open instead of pollers")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    with running_gateway("faas-bench-observe-") as gw:
        port = gw.port
        gw.deploy(ROOT / "functions" / "hello")
        measure(port, 50, args.concurrency, 1.0)  # bring up the environments both phases will use

        samples: dict[str, dict[str, list[Any]]] = {
            m: {"warm": [], "p50": [], "p99": [], "tput": []} for m in ("quiet", "watched")
        }
        watcher = Watcher(port, args.scrape_s, args.poll_factor, args.browser)
        watcher.start()
        try:
            for r in range(args.rounds):
                for mode in ("quiet", "watched") if r % 2 == 0 else ("watched", "quiet"):
                    if mode == "watched":
                        watcher.active.set()
                        time.sleep(1.0 if not args.browser else 2.0)  # every poller (or the page) running
                    warm, tput = measure(port, args.calls, args.concurrency, args.tput_s)
                    watcher.active.clear()
                    stats = summary(warm)
                    samples[mode]["warm"] += warm
                    samples[mode]["p50"].append(stats["p50_ms"])
                    samples[mode]["p99"].append(stats["p99_ms"])
                    samples[mode]["tput"].append(tput)
        finally:
            watcher.close()

        def ratios(key: str) -> list[float]:
            return [w / q for w, q in zip(samples["watched"][key], samples["quiet"][key], strict=True)]

        def spread(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            return {"median": round(statistics.median(ordered), 3), "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}

        def report(mode: str) -> dict[str, Any]:
            return {
                "warm_sequential_all_calls": summary(samples[mode]["warm"]),
                "warm_p50_ms_per_phase": spread(samples[mode]["p50"]),
                "throughput_calls_per_s_per_phase": spread(samples[mode]["tput"]),
            }

        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "setup": {
                "rounds": args.rounds,
                "calls_per_phase": args.calls,
                "concurrency": args.concurrency,
                "throughput_s_per_phase": args.tput_s,
                "watcher": "headless chromium with /ui open"
                if args.browser
                else f"pollers at {args.poll_factor:g}x the dashboard's rates (overview 1 s, invocations 0.7 s, series 2 s)",
                "metrics_scrape_s": args.scrape_s / args.poll_factor,
                "watcher_requests": watcher.requests,
            },
            "quiet": report("quiet"),
            "watched": report("watched"),
            "ratios_watched_over_quiet_per_pair": {
                "warm_p50": spread(ratios("p50")),
                "warm_p99": spread(ratios("p99")),
                "throughput": spread(ratios("tput")),
            },
            "listeners_in_process": listener_cost_us(),
        }
        emit(result, args.out)
        return 0


if __name__ == "__main__":
    sys.exit(main())
