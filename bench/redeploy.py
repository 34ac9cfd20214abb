"""Benchmark: a file saved -> the new code answering, through `faas up`'s file watcher, under load.

Starts its own gateway (`faas up DIR`) on a free loopback port with a temporary state dir and
a temporary copy of a function, keeps two client threads calling it (about 100 calls/s each
at most), then saves app.py --saves times, --gap seconds apart (an editing pace), and times
each save from just before the write to the first answer carrying the new code (a third
connection polls every 2 ms). Prints one JSON document: p50/p90/max in ms against the
targets (p50 <= 300 ms, max <= 1000 ms), the load's call count and failed calls (target 0),
whether each client only ever saw versions go forward, `faas up`'s own per-save figure, the
machine's load average, and a baseline: a fresh `docker run --rm` per call (what `sam local
invoke` does, where a save is "live" at the price of a container per call).

Then the same number of saves of a second function whose requirements.txt brings a package
(six, installed by pip at the first deploy, cached after): a save that changes only code must
not install again and goes live about as fast ("with_dependencies": under the same load, and
its p50 over the first function's p50 in this run). The pip cache used is a fresh one under the temp folder.

    .venv/bin/python bench/redeploy.py [--saves 20] [--gap 1.0] [--baseline 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Client, emit, running_gateway, summary  # noqa: E402

NAME = "bench-redeploy"
DEPS_NAME = "bench-redeploy-deps"
TARGET_P50_MS = 300.0
TARGET_MAX_MS = 1000.0
POLL_S = 0.002
SAVE_TIMEOUT_S = 30.0


def code(mark: int, *, imports: str = "") -> str:
    head = f"import {imports}\n\n" if imports else ""
    return f"{head}MARK = {mark}\n\ndef handler(event, context):\n    return {{'mark': MARK}}\n"


def stats(values: list[float]) -> dict[str, float]:
    """This script's own figures (p90, 1 decimal), as in its earlier results."""
    return summary(values, (50, 90), digits=1)


def write_function(tmp: Path) -> list[str]:
    """The function `faas up` watches: written before it starts, named on its command line."""
    folder = tmp / NAME
    folder.mkdir()
    (folder / "function.yaml").write_text(f"name: {NAME}\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text(code(0))
    deps = tmp / DEPS_NAME
    deps.mkdir()
    (deps / "function.yaml").write_text(f"name: {DEPS_NAME}\nruntime: python3.11\nhandler: app.handler\n")
    (deps / "requirements.txt").write_text("six==1.17.0\n")
    (deps / "app.py").write_text(code(0, imports="six"))
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")  # faas up inherits it: a fresh install cache
    return [str(folder), str(deps)]


def mark(client: Client, name: str = NAME) -> int | None:
    """The answering code's MARK; None for any failed call (status, function error, transport)."""
    try:
        response, body = client.call(name)
    except (OSError, http.client.HTTPException):
        client.reconnect()
        return None
    if response.status != 200 or response.getheader("X-Amz-Function-Error"):
        return None
    return int(json.loads(body)["mark"])


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class LineClock:
    """Notes when each line of `faas up`'s output appears (polled every 2 ms), to split a
    save's time into "the watcher's deploy answered" and "the first call that saw it"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset, partial = 0, b""
        while not self._stop.is_set():
            with open(self.path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                offset += len(chunk)
                now = time.perf_counter()
                *complete, partial = (partial + chunk).split(b"\n")
                self.lines.extend((now, line.decode("utf-8", "replace")) for line in complete)
            time.sleep(POLL_S)

    def first(self, needle: str, after: float) -> float | None:
        return next((t for t, line in list(self.lines) if t >= after and needle in line), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def save_times(probe: Client, folder: Path, saves: int, gap: float) -> list[float]:
    """Save app.py `saves` times (code only) and time each to its first answer."""
    if not wait_until(lambda: mark(probe, folder.name) == 0, 120):
        raise RuntimeError(f"{folder.name} never answered")
    out: list[float] = []
    for n in range(1, saves + 1):
        time.sleep(gap)
        t0 = time.perf_counter()
        (folder / "app.py").write_text(code(n, imports="six"))
        deadline = time.monotonic() + SAVE_TIMEOUT_S
        while mark(probe, folder.name) != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{folder.name}: save {n} was not live after {SAVE_TIMEOUT_S} s")
            time.sleep(POLL_S)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def baseline_ms(folder: Path, runs: int) -> list[float]:
    """A fresh container per call, the way `sam local invoke` runs a function."""
    from faas.containers.images import runtime_image_tag

    cmd = [
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{folder}:/var/task:ro",
        "-w",
        "/var/task",
        "--entrypoint",
        "python3",
        runtime_image_tag("python3.11"),
        "-c",
        "import json, app; print(json.dumps(app.handler({}, None)))",
    ]
    out: list[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        out.append((time.perf_counter() - t) * 1000)
        if '"mark"' not in done.stdout:
            raise RuntimeError(f"baseline container failed: {done.stderr[-500:]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--gap", type=float, default=1.0, help="seconds between a save going live and the next save")
    ap.add_argument("--baseline", type=int, default=5, help="docker run --rm calls for the baseline (0: skip)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    load_before = os.getloadavg()
    with running_gateway("faas-bench-redeploy-", prepare=write_function) as gw:
        port, folder, log_path = gw.port, gw.tmp / NAME, gw.log_path
        if not wait_until(lambda: "watching" in log_path.read_text(errors="replace") or gw.proc.poll() is not None, 600):
            raise RuntimeError("faas up did not start watching within 600 s")
        if gw.proc.poll() is not None:
            raise RuntimeError(f"faas up exited with {gw.proc.returncode}")
        probe = Client(port, timeout=30)
        if not wait_until(lambda: mark(probe) == 0, 60):
            raise RuntimeError("the function never answered")

        stop = threading.Event()
        seen: list[list[int]] = [[], []]
        failed = [0, 0]

        def load(i: int) -> None:
            c = Client(port, timeout=30)
            while not stop.is_set():
                answer = mark(c)
                if answer is None:
                    failed[i] += 1
                else:
                    seen[i].append(answer)
                time.sleep(0.005)

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        times: list[float] = []
        answered: list[float | None] = []
        writes: list[float] = []
        clock = LineClock(log_path)
        probe_failed = 0
        try:
            for n in range(1, args.saves + 1):
                time.sleep(args.gap)
                t0 = time.perf_counter()
                writes.append(t0)
                (folder / "app.py").write_text(code(n))
                deadline = time.monotonic() + SAVE_TIMEOUT_S
                while True:
                    answer = mark(probe)
                    if answer is None:
                        probe_failed += 1
                    elif answer == n:
                        times.append((time.perf_counter() - t0) * 1000)
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"save {n} was not live after {SAVE_TIMEOUT_S} s")
                    time.sleep(POLL_S)
            wait_until(lambda: all(s and s[-1] == args.saves for s in seen), 10, 0.01)
            time.sleep(0.5)
            # The same saves of the function with dependencies, under the same load.
            deps_times = save_times(probe, gw.tmp / DEPS_NAME, args.saves, args.gap)
            for n, t0 in enumerate(writes, start=1):
                at = clock.first(f"{NAME}  version {n + 1}  live", t0)
                answered.append(round((at - t0) * 1000, 1) if at is not None else None)
        finally:
            clock.close()
            stop.set()
            for t in threads:
                t.join(30)
        installs = log_path.read_text(errors="replace").count(f"{DEPS_NAME}: installing dependencies")
        load_after = os.getloadavg()
        reported = [
            float(m)
            for m in re.findall(rf"{NAME}  version \d+  live  \((\d+) ms after the save\)", log_path.read_text(errors="replace"))
        ]
        base = baseline_ms(folder, args.baseline) if args.baseline else []
        s = stats(times)
        result = {
            "command": "bench/redeploy.py " + " ".join(sys.argv[1:]),
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_1m_before": round(load_before[0], 2),
                "loadavg_1m_after": round(load_after[0], 2),
            },
            "save_to_new_code_answering": s,
            "each_save_ms": [round(t, 1) for t in times],
            # when `faas up` printed the save's line (its deploy had answered), from the write; +-2 ms
            "each_save_deploy_answered_ms": answered,
            "targets": {"p50_ms": TARGET_P50_MS, "max_ms": TARGET_MAX_MS, "failed_calls": 0},
            "met": {
                "p50": s["p50_ms"] <= TARGET_P50_MS,
                "max": s["max_ms"] <= TARGET_MAX_MS,
                "no_failed_calls": sum(failed) + probe_failed == 0,
            },
            "load": {
                "clients": 2,
                "calls": sum(len(x) for x in seen) + sum(failed),
                "failed_calls": sum(failed),
                "probe_calls_failed": probe_failed,
                "versions_only_went_forward": all(x == sorted(x) for x in seen),
            },
            "faas_up_reported_ms": stats(reported) if reported else None,
            "with_dependencies": {
                "function": f"{DEPS_NAME} (requirements.txt: six), same load",
                "save_to_new_code_answering": stats(deps_times),
                "each_save_ms": [round(t, 1) for t in deps_times],
                "installs_seen": installs,  # 1: the first deploy's; a code-only save must add none
                "ratio_p50_over_without": round(statistics.median(deps_times) / s["p50_ms"], 2),
            },
        }
        if base:
            result["baseline_docker_run_per_call"] = stats(base)
            result["ratio_baseline_p50_over_save_to_live_p50"] = round(statistics.median(base) / s["p50_ms"], 2)
        emit(result, args.out)
        return 0


if __name__ == "__main__":
    sys.exit(main())
