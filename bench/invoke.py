"""Benchmark: warm latency, throughput, cold start, against a fresh `docker run --rm` per call.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir,
deploys functions/hello, and prints one JSON document: medians and percentiles in ms, and
ratios against the baseline measured in the same run. Usage:

    .venv/bin/python bench/invoke.py [--calls 500] [--cold 5] [--baseline 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAAS = str(Path(sys.executable).parent / "faas")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 3), "p99_ms": round(pct(values, 99), 3),
            "min_ms": round(min(values), 3), "max_ms": round(max(values), 3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A keep-alive HTTP/1.1 connection, as boto3 and curl in a loop would use."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def invoke(self, name: str, payload: bytes = b"{}") -> tuple[int, bytes]:
        self.conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload,
                          headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="faas-bench-"))
    port = free_port()
    env = {**os.environ, "FAAS_STATE_DIR": str(state / "state"), "FAAS_GATEWAY": f"http://127.0.0.1:{port}"}
    log = open(state / "gateway.log", "wb")
    gw = subprocess.Popen([FAAS, "up", "--port", str(port), "--state-dir", str(state / "state")], env=env,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if gw.poll() is not None or time.monotonic() > deadline:
                print((state / "gateway.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        work = state / "hello"
        shutil.copytree(ROOT / "functions" / "hello", work)

        def deploy() -> None:
            subprocess.run([FAAS, "deploy", str(work)], env=env, check=True, capture_output=True)

        deploy()
        client = Client(port)
        time.sleep(1.5)  # the first pre-started container of the runtime

        # First call of a never-called function: a new function each time, deployed while a
        # pre-started container waits (given a moment to refill after the previous one was taken).
        def first_calls(name_prefix: str, extra_yaml: str, n: int) -> list[float]:
            out = []
            for i in range(n):
                fdir = state / f"{name_prefix}{i}"
                shutil.copytree(ROOT / "functions" / "hello", fdir)
                spec = (fdir / "function.yaml").read_text().replace("name: hello", f"name: {name_prefix}{i}")
                (fdir / "function.yaml").write_text(spec + extra_yaml)
                subprocess.run([FAAS, "deploy", str(fdir)], env=env, check=True, capture_output=True)
                time.sleep(1.0)
                out.append(timed(lambda: client.invoke(f"{name_prefix}{i}")))
            return out

        prestarted = first_calls("pre", "", args.cold)
        # A true cold start: /tmp of 1024 MB cannot be given to a pre-started container, so it
        # creates and starts a new one, as the first call of any function would without them.
        cold = first_calls("cold", "ephemeral_storage: 1024\n", args.cold)

        # Warm: sequential calls on one keep-alive connection.
        for _ in range(20):
            client.invoke("hello")
        warm = [timed(lambda: client.invoke("hello")) for _ in range(args.calls)]

        # Throughput: N clients at once, each on its own connection; environments scale out.
        per = max(50, args.calls // args.concurrency)
        errors: list[int] = []

        def worker() -> None:
            c = Client(port)
            for _ in range(per):
                status, _ = c.invoke("hello")
                if status != 200:
                    errors.append(status)

        for _ in range(2):  # warm up the parallel environments
            ts = [threading.Thread(target=lambda: Client(port).invoke("hello")) for _ in range(args.concurrency)]
            [t.start() for t in ts]
            [t.join() for t in ts]
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        t0 = time.perf_counter()
        [t.start() for t in threads]
        [t.join() for t in threads]
        elapsed = time.perf_counter() - t0
        throughput = per * args.concurrency / elapsed

        # Baseline: a fresh container per call, the way `sam local invoke` runs a function.
        from faas.images import runtime_image_tag

        tag = runtime_image_tag("python3.11")
        cmd = ["docker", "run", "--rm", "--network", "none", "-e", "GREETING=Hello", "-v", f"{work}:/var/task:ro",
               "-w", "/var/task", "--entrypoint", "python3", tag, "-c",
               "import json, app; print(json.dumps(app.handler({}, None)))"]
        baseline = []
        for _ in range(args.baseline):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True)
            baseline.append((time.perf_counter() - t) * 1000)
            assert "Hello" in out.stdout, out.stderr

        result = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "warm_sequential": summary(warm),
            "first_call_prestarted": summary(prestarted),
            "first_call_cold_start": summary(cold),
            "throughput": {"concurrency": args.concurrency, "calls": per * args.concurrency,
                           "calls_per_s": round(throughput, 1), "errors": len(errors)},
            "baseline_docker_run_per_call": summary(baseline),
            "ratios": {
                "baseline_p50_over_warm_p50": round(statistics.median(baseline) / statistics.median(warm), 1),
                "baseline_p50_over_prestarted_first_call_p50": round(statistics.median(baseline) / statistics.median(prestarted), 1),
                "baseline_p50_over_cold_start_p50": round(statistics.median(baseline) / statistics.median(cold), 2),
            },
        }
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        return 0
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(gw.pid, signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
