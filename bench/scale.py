"""Benchmark: does faas stay fast and small as functions pile up?

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir and
measures, in one run: warm latency of one function with 1 function deployed; the same with
100 deployed and each called once (100 warm environments); the gateway's memory (RSS of its
processes) with 1, 100 and 1000 deployed. Prints JSON. Usage:

    .venv/bin/python bench/scale.py [--calls 500] [--warm 100] [--deployed 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Client, emit, running_gateway, summary, timed  # noqa: E402


def function_zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("function.yaml", f"name: {name}\nruntime: python3.11\nhandler: app.handler\n")
        z.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buf.getvalue()


def deploy(port: int, name: str) -> None:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("PUT", f"/system/functions/{name}", body=function_zip(name))
    r = c.getresponse()
    r.read()
    if r.status >= 300:
        raise RuntimeError(f"deploy {name}: {r.status}")


def rss_mb(root_pid: int) -> float:
    """RSS of the gateway: the `faas up` process (gunicorn's arbiter) and its worker."""
    pids = [root_pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{root_pid}/task/{root_pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


def warm_latency(client: Client, name: str, calls: int) -> list[float]:
    for _ in range(20):
        client.invoke(name)
    return [timed(lambda: client.invoke(name)) for _ in range(calls)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--deployed", type=int, default=1000)
    args = ap.parse_args()
    with running_gateway("faas-bench-scale-", stop_timeout=120) as gw:
        port = gw.port
        client = Client(port)
        deploy(port, "f0")
        result: dict[str, object] = {"machine": {"cpus": os.cpu_count()}}
        one = warm_latency(client, "f0", args.calls)
        result["warm_with_1_deployed"] = summary(one)
        result["gateway_rss_mb_1_deployed"] = rss_mb(gw.proc.pid)

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda i: deploy(port, f"f{i}"), range(1, args.warm)))
        for i in range(1, args.warm):
            client.invoke(f"f{i}")
        many = warm_latency(client, "f0", args.calls)
        result[f"warm_with_{args.warm}_deployed_and_warm"] = summary(many)
        result[f"gateway_rss_mb_{args.warm}_deployed"] = rss_mb(gw.proc.pid)

        t = time.monotonic()
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda i: deploy(port, f"f{i}"), range(args.warm, args.deployed)))
        result[f"deploy_{args.deployed - args.warm}_functions_s"] = round(time.monotonic() - t, 1)
        result[f"gateway_rss_mb_{args.deployed}_deployed"] = rss_mb(gw.proc.pid)
        result[f"warm_with_{args.deployed}_deployed"] = summary(warm_latency(client, "f0", args.calls))
        result["ratios"] = {
            f"p50_{args.warm}_over_p50_1": round(statistics.median(many) / statistics.median(one), 2),
        }
        emit(result, None)
        return 0


if __name__ == "__main__":
    sys.exit(main())
