"""Benchmark: warm latency, throughput, cold start, against a fresh `docker run --rm` per call.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir,
deploys functions/hello, and prints one JSON document: medians and percentiles in ms, and
ratios against the baseline measured in the same run. Usage:

    .venv/bin/python bench/invoke.py [--calls 500] [--cold 5] [--baseline 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Client, emit, running_gateway, summary, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    with running_gateway("faas-bench-") as gw:
        port = gw.port
        work = gw.tmp / "hello"
        shutil.copytree(ROOT / "functions" / "hello", work)
        gw.deploy(work)
        client = Client(port)
        time.sleep(1.5)  # the first pre-started container of the runtime

        # First call of a never-called function: a new function each time, deployed while a
        # pre-started container waits (given a moment to refill after the previous one was taken).
        def first_calls(name_prefix: str, extra_yaml: str, n: int) -> list[float]:
            out = []
            for i in range(n):
                fdir = gw.tmp / f"{name_prefix}{i}"
                shutil.copytree(ROOT / "functions" / "hello", fdir)
                spec = (fdir / "function.yaml").read_text().replace("name: hello", f"name: {name_prefix}{i}")
                (fdir / "function.yaml").write_text(spec + extra_yaml)
                gw.deploy(fdir)
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
        emit(result, args.out)
        return 0

if __name__ == "__main__":
    sys.exit(main())
