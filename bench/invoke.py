"""Benchmark: warm latency, throughput, cold start, against a fresh `docker run --rm` per call.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir,
deploys functions/hello, and prints one JSON document: medians and percentiles in ms, and
ratios against the baseline measured in the same run. Usage:

    .venv/bin/python bench/invoke.py [--calls 500] [--cold 5] [--baseline 10] [--concurrency 8] [--seconds 10]

Baselines in the same run: a fresh `docker run --rm` per call (what `sam local invoke` does),
and a bare Flask route under gunicorn (bench/flask_baseline.py) for warm latency and
throughput, loaded with the same client and the same load generator (bench/load.py: wrk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402
from common import ROOT, Client, emit, free_port, running_gateway, summary, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    ap.add_argument(
        "--load-generator",
        choices=("auto", "python"),
        default="auto",
        help="auto: wrk (installed if missing), else Python threads; python: Python threads",
    )
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
                name = f"{name_prefix}{i}"
                out.append(timed(lambda name=name: client.invoke(name)))
            return out

        prestarted = first_calls("pre", "", args.cold)
        # A true cold start: /tmp of 1024 MB cannot be given to a pre-started container, so it
        # creates and starts a new one, as the first call of any function would without them.
        cold = first_calls("cold", "ephemeral_storage: 1024\n", args.cold)

        # Warm: sequential calls on one keep-alive connection.
        for _ in range(20):
            client.invoke("hello")
        warm = [timed(lambda: client.invoke("hello")) for _ in range(args.calls)]

        # Throughput: N keep-alive connections at once (wrk, see bench/load.py); environments scale out.
        path = "/2015-03-31/functions/hello/invocations"
        load.run(port, path, b"{}", connections=args.concurrency, duration_s=2, tool=args.load_generator)  # scale out
        throughput = load.run(port, path, b"{}", connections=args.concurrency, duration_s=args.seconds, tool=args.load_generator)

        # Baseline: a fresh container per call, the way `sam local invoke` runs a function.
        from faas.containers.images import runtime_image_tag

        tag = runtime_image_tag("python3.11")
        cmd = [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "GREETING=Hello",
            "-v",
            f"{work}:/var/task:ro",
            "-w",
            "/var/task",
            "--entrypoint",
            "python3",
            tag,
            "-c",
            "import json, app; print(json.dumps(app.handler({}, None)))",
        ]
        baseline = []
        for _ in range(args.baseline):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True)
            baseline.append((time.perf_counter() - t) * 1000)
            assert "Hello" in out.stdout, out.stderr

        flask = flask_baseline(args, gw.tmp)

        result = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "warm_sequential": summary(warm),
            "first_call_prestarted": summary(prestarted),
            "first_call_cold_start": summary(cold),
            "throughput": throughput,
            "baseline_docker_run_per_call": summary(baseline),
            "baseline_bare_flask_route": flask,
            "ratios": {
                "baseline_p50_over_warm_p50": round(statistics.median(baseline) / statistics.median(warm), 1),
                "baseline_p50_over_prestarted_first_call_p50": round(
                    statistics.median(baseline) / statistics.median(prestarted), 1
                ),
                "baseline_p50_over_cold_start_p50": round(statistics.median(baseline) / statistics.median(cold), 2),
                "warm_p50_over_bare_flask_warm_p50": round(statistics.median(warm) / flask["warm_sequential"]["p50_ms"], 2),
                "throughput_over_bare_flask_throughput": round(throughput["calls_per_s"] / flask["throughput"]["calls_per_s"], 2),
            },
        }
        emit(result, args.out)
        return 0


def flask_baseline(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The same measurements against a bare Flask route under gunicorn (bench/flask_baseline.py)."""
    port = free_port()
    log = open(tmp / "flask.log", "wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--chdir",
            str(ROOT / "bench"),
            "-w",
            "1",
            "--threads",
            "8",
            "-b",
            f"127.0.0.1:{port}",
            "flask_baseline:app",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = None
        for _ in range(100):
            try:
                client = Client(port)
                client.invoke("hello")
                break
            except OSError:
                time.sleep(0.1)
        assert client is not None
        for _ in range(20):
            client.invoke("hello")
        warm = [timed(lambda: client.invoke("hello")) for _ in range(args.calls)]
        path = "/2015-03-31/functions/hello/invocations"
        throughput = load.run(port, path, b"{}", connections=args.concurrency, duration_s=args.seconds, tool=args.load_generator)
        return {
            "server": "gunicorn -w 1 --threads 8, one Flask route",
            "warm_sequential": summary(warm),
            "throughput": throughput,
        }
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
