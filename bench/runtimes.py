"""Benchmark: each runtime's first call after deploy and warm latency, as ratios to Python's.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir and
deploys the hello example of each runtime's language (functions/hello, hello-node, hello-sh, hello-ruby,
with the runtime named in its function.yaml: python3.11/3.13/3.14, nodejs20.x/22.x/24.x,
provided, provided.al2023, ruby3.3; bench/functions/hello-java, compiled at deploy by its build: command
with this machine's javac, for java21). Runtimes
are measured in turn, round after round, so that a change in the machine's load falls on
all of them alike. Prints one JSON document: medians in ms and, per runtime, the ratio of
its median to python3.11's (the target: Node.js within 1.5x). Usage:

    .venv/bin/python bench/runtimes.py [--first 5] [--calls 300] [--runtimes python3.13,...] [--out FILE]

first_call_prestarted: a new function deployed and called once, served by a pre-started
container of its runtime (the default path); first_call_cold: the same with a /tmp size no
pre-started container has, so the call creates and starts its container.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Client, emit, running_gateway, summary  # noqa: E402

EXAMPLES = {
    "python3.11": "hello",
    "python3.13": "hello",
    "python3.14": "hello",
    "nodejs20.x": "hello-node",
    "nodejs22.x": "hello-node",
    "nodejs24.x": "hello-node",
    "provided": "hello-sh",
    "provided.al2023": "hello-sh",  # the provided image under Lambda's current name
    "java21": "../bench/functions/hello-java",  # `faas init --runtime java21`'s starter, compiled at deploy
    "ruby3.3": "hello-ruby",
}
BASELINE = "python3.11"


def slug(runtime: str) -> str:
    return re.sub(r"[^a-z0-9]", "", runtime)


def stats(values: list[float]) -> dict[str, float]:
    """This script's own figures (p90, no max, 2 decimals), as in its earlier results."""
    return summary(values, (50, 90), digits=2, extremes=("min",), half_up=True)


def invoke_ms(client: Client, name: str) -> float:
    """One call's round trip in ms; any failed call stops the run (a figure of errors is no figure)."""
    started = time.perf_counter()
    response, body = client.call(name, b'{"name": "bench"}')
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200 or response.getheader("X-Amz-Function-Error") or b"bench" not in body:
        raise RuntimeError(f"{name}: {response.status} {body[:300]!r}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=int, default=5, help="first calls per runtime and kind (default 5)")
    ap.add_argument("--calls", type=int, default=300, help="warm calls per runtime (default 300)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--runtimes", default=",".join(EXAMPLES), help="comma-separated (python3.11 is always measured)")
    args = ap.parse_args()
    runtimes = [BASELINE, *(r for r in args.runtimes.split(",") if r and r != BASELINE)]
    unknown = [r for r in runtimes if r not in EXAMPLES]
    if unknown:
        ap.error(f"no example for {', '.join(unknown)} (known: {', '.join(EXAMPLES)})")

    # ready_timeout: the first run builds the runtime images
    with running_gateway("faas-bench-runtimes-", extra_args=["--no-watch"], ready_timeout=900) as gw:

        def deploy(runtime: str, name: str, extra_yaml: str = "") -> None:
            folder = gw.tmp / "functions" / name
            shutil.copytree(ROOT / "functions" / EXAMPLES[runtime], folder)
            spec = folder / "function.yaml"
            lines = [
                f"name: {name}" if line.startswith("name:") else f"runtime: {runtime}" if line.startswith("runtime:") else line
                for line in spec.read_text().splitlines()
            ]
            spec.write_text("\n".join(lines) + "\n" + extra_yaml)
            gw.deploy(folder)

        client = Client(gw.port)
        for runtime in runtimes:  # one warm function per runtime; also starts each runtime's pre-started containers
            deploy(runtime, f"warm-{slug(runtime)}")
        time.sleep(2.0)

        first: dict[str, dict[str, list[float]]] = {rt: {"prestarted": [], "cold": []} for rt in runtimes}
        for i in range(args.first):
            for kind, extra in (("prestarted", ""), ("cold", "ephemeral_storage: 1024\n")):
                for runtime in runtimes:
                    name = f"{kind}-{slug(runtime)}-{i}"
                    deploy(runtime, name, extra)
                    time.sleep(1.0)  # the pre-started container taken by the previous call is replaced
                    first[runtime][kind].append(invoke_ms(client, name))

        warm: dict[str, list[float]] = {rt: [] for rt in runtimes}
        for runtime in runtimes:
            for _ in range(20):
                invoke_ms(client, f"warm-{slug(runtime)}")
        block = 25
        for _ in range(max(1, args.calls // block)):
            for runtime in runtimes:
                name = f"warm-{slug(runtime)}"
                warm[runtime].extend(invoke_ms(client, name) for _ in range(block))

        result: dict[str, object] = {"machine": {"cpus": os.cpu_count()}, "runtimes": {}}
        medians = {
            runtime: {
                "first_call_prestarted": statistics.median(first[runtime]["prestarted"]),
                "first_call_cold": statistics.median(first[runtime]["cold"]),
                "warm": statistics.median(warm[runtime]),
            }
            for runtime in runtimes
        }
        for runtime in runtimes:
            result["runtimes"][runtime] = {  # type: ignore[index]
                "first_call_prestarted": stats(first[runtime]["prestarted"]),
                "first_call_cold": stats(first[runtime]["cold"]),
                "warm_sequential": stats(warm[runtime]),
                f"ratio_to_{BASELINE}": {
                    metric: round(value / medians[BASELINE][metric], 2) for metric, value in medians[runtime].items()
                },
            }
        if "nodejs20.x" in runtimes:
            node = result["runtimes"]["nodejs20.x"][f"ratio_to_{BASELINE}"]  # type: ignore[index]
            result["target_node_within_1_5x_of_python"] = all(ratio <= 1.5 for ratio in node.values())
        emit(result, args.out)
        return 0


if __name__ == "__main__":
    sys.exit(main())
