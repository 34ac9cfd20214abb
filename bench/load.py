"""Closed-loop HTTP load on loopback: N keep-alive connections, each sending its next request
as soon as the previous answer is in; calls/s, errors and latency percentiles.

wrk does the sending when it is there (installed from the machine's own Debian sources on
first use, as `faas up` installs the Docker engine): written in C, it needs ~4% of a core
for 2,000 calls/s, while a Python load generator needs most of a core, on a 2-core machine
where the gateway needs the other one. Without wrk, Python threads with http.client do it,
and the result says so ("tool"), since that figure then measures the client as much as
the server.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_path(install: bool = True) -> str | None:
    """wrk's path; installs the Debian package when it is missing and install is set."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    sys.path.insert(0, str(ROOT))
    from faas.containers.engine import install_packages

    try:
        install_packages(["wrk"], say=lambda line: print(line, file=sys.stderr))
    except Exception as e:  # no apt, no network: the Python generator stands in
        print(f"could not install wrk ({e}); using the Python load generator", file=sys.stderr)
        return None
    return shutil.which("wrk")


def run(
    port: int,
    path: str,
    body: bytes,
    *,
    connections: int = 8,
    duration_s: float = 10.0,
    method: str = "POST",
    install: bool = True,
    tool: str = "auto",
) -> dict[str, Any]:
    """Load 127.0.0.1:port with `connections` keep-alive connections for duration_s seconds.
    tool: "auto" (wrk, else Python) or "python" (the Python generator even where wrk is)."""
    wrk = wrk_path(install) if tool == "auto" else None
    if wrk:
        return _run_wrk(wrk, port, path, body, connections, duration_s, method)
    return _run_python(port, path, body, connections, duration_s, method)


def _run_wrk(wrk: str, port: int, path: str, body: bytes, connections: int, duration_s: float, method: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        text = body.decode("utf-8").replace("\\", "\\\\").replace('"', '\\"')
        script.write(f'wrk.method = "{method}"\nwrk.body = "{text}"\nwrk.headers["Content-Type"] = "application/json"\n')
    try:
        out = subprocess.run(
            [
                wrk,
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(duration_s))}s",
                "--latency",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink(missing_ok=True)
    calls = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split(" [")[0].strip()
    return {
        "tool": version or "wrk",
        "connections": connections,
        "calls": calls,
        "calls_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "errors": errors,
        "p50_ms": _percentile(out, "50%"),
        "p99_ms": _percentile(out, "99%"),
    }


def _percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3) if match else float("nan")


def _run_python(port: int, path: str, body: bytes, connections: int, duration_s: float, method: str) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop = time.perf_counter() + duration_s

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = latencies[i]
        while True:
            t = time.perf_counter()
            if t >= stop:
                break
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - t) * 1000)
            if response.status >= 300:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    every = sorted(x for xs in latencies for x in xs)
    return {
        "tool": "python http.client threads",
        "connections": connections,
        "calls": len(every),
        "calls_per_s": round(len(every) / elapsed, 1),
        "errors": sum(errors),
        "p50_ms": round(every[len(every) // 2], 3) if every else float("nan"),
        "p99_ms": round(every[min(len(every) - 1, int(len(every) * 0.99))], 3) if every else float("nan"),
    }
