"""Benchmark: each runtime's first call after deploy and warm latency, as ratios to Python's.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir and
deploys the hello example of each runtime (functions/hello, hello-node, hello-sh). Runtimes
are measured in turn, round after round, so that a change in the machine's load falls on
all of them alike. Prints one JSON document: medians in ms and, per runtime, the ratio of
its median to python3.11's (the target: Node.js within 1.5x). Usage:

    .venv/bin/python bench/runtimes.py [--first 5] [--calls 300] [--out FILE]

first_call_prestarted: a new function deployed and called once, served by a pre-started
container of its runtime (the default path); first_call_cold: the same with a /tmp size no
pre-started container has, so the call creates and starts its container.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAAS = str(Path(sys.executable).parent / "faas")
EXAMPLES = {"python3.11": "hello", "nodejs20.x": "hello-node", "provided": "hello-sh"}
BASELINE = "python3.11"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "p50_ms": round(statistics.median(values), 2),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * (len(ordered) - 1) + 0.5))], 2),
            "min_ms": round(ordered[0], 2)}


class Client:
    """One keep-alive connection to the Invoke API."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def invoke(self, name: str, payload: bytes = b'{"name": "bench"}') -> float:
        started = time.perf_counter()
        self.conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or response.getheader("X-Amz-Function-Error") or b"bench" not in body:
            raise RuntimeError(f"{name}: {response.status} {body[:300]!r}")
        return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=int, default=5, help="first calls per runtime and kind (default 5)")
    ap.add_argument("--calls", type=int, default=300, help="warm calls per runtime (default 300)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="faas-bench-runtimes-"))
    port = free_port()
    env = {**os.environ, "FAAS_STATE_DIR": str(state / "state"), "FAAS_GATEWAY": f"http://127.0.0.1:{port}"}
    log = open(state / "gateway.log", "wb")
    gw = subprocess.Popen([FAAS, "up", "--port", str(port), "--state-dir", str(state / "state"), "--no-watch"],
                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 900  # the first run builds the runtime images
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if gw.poll() is not None or time.monotonic() > deadline:
                print((state / "gateway.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.2)

        def deploy(runtime: str, name: str, extra_yaml: str = "") -> None:
            folder = state / "functions" / name
            shutil.copytree(ROOT / "functions" / EXAMPLES[runtime], folder)
            spec = folder / "function.yaml"
            lines = [f"name: {name}" if line.startswith("name:") else line for line in spec.read_text().splitlines()]
            spec.write_text("\n".join(lines) + "\n" + extra_yaml)
            subprocess.run([FAAS, "deploy", str(folder)], env=env, check=True, capture_output=True)

        client = Client(port)
        runtimes = list(EXAMPLES)
        for runtime in runtimes:  # one warm function per runtime; also starts each runtime's pre-started containers
            deploy(runtime, f"warm-{runtime.split('.')[0]}")
        time.sleep(2.0)

        first: dict[str, dict[str, list[float]]] = {rt: {"prestarted": [], "cold": []} for rt in runtimes}
        for i in range(args.first):
            for kind, extra in (("prestarted", ""), ("cold", "ephemeral_storage: 1024\n")):
                for runtime in runtimes:
                    name = f"{kind}-{runtime.split('.')[0]}-{i}"
                    deploy(runtime, name, extra)
                    time.sleep(1.0)  # the pre-started container taken by the previous call is replaced
                    first[runtime][kind].append(client.invoke(name))

        warm: dict[str, list[float]] = {rt: [] for rt in runtimes}
        for runtime in runtimes:
            for _ in range(20):
                client.invoke(f"warm-{runtime.split('.')[0]}")
        block = 25
        for _ in range(max(1, args.calls // block)):
            for runtime in runtimes:
                name = f"warm-{runtime.split('.')[0]}"
                warm[runtime].extend(client.invoke(name) for _ in range(block))

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
                "first_call_prestarted": summary(first[runtime]["prestarted"]),
                "first_call_cold": summary(first[runtime]["cold"]),
                "warm_sequential": summary(warm[runtime]),
                f"ratio_to_{BASELINE}": {
                    metric: round(value / medians[BASELINE][metric], 2) for metric, value in medians[runtime].items()
                },
            }
        node = result["runtimes"]["nodejs20.x"][f"ratio_to_{BASELINE}"]  # type: ignore[index]
        result["target_node_within_1_5x_of_python"] = all(ratio <= 1.5 for ratio in node.values())
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
