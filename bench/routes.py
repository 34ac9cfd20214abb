"""Benchmark: a call through a template route against the same function through /function/NAME
and through the Invoke API, in one run.

Starts its own gateway (`faas up`) on a free loopback port, deploys a SAM template whose one
function (sam init's hello-world handler) has an `Api` route (GET /hello, payload 1.0) and an
`HttpApi` route (GET /v2/hello, payload 2.0), then times warm calls on four keep-alive
connections taken in turn (so that drift on a shared machine hits every path alike). Prints
one JSON document: per path n, p50, p99 in ms, and each route's median over the /function/
median (goal: <= 1.1), and the REST route once more on `--api-port`'s own listener. Usage:

    .venv/bin/python bench/routes.py [--calls 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAAS, JSON_HEADERS, emit, free_port, running_gateway, summary  # noqa: E402

HANDLER = """\
import json


def lambda_handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"message": "hello world"})}
"""
TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.11
      Events:
        Rest:
          Type: Api
          Properties: {Path: /hello, Method: get}
        Http:
          Type: HttpApi
          Properties: {Path: /v2/hello, Method: get}
"""
PATHS = {
    "route_rest_v1": ("GET", "/hello", None),
    "route_http_v2": ("GET", "/v2/hello", None),
    "function_url": ("GET", "/function/HelloWorldFunction", None),
    "invoke_api": ("POST", "/2015-03-31/functions/HelloWorldFunction/invocations", b"{}"),
    "route_rest_v1_api_port": ("GET", "/hello", None),  # the same route on `faas up --api-port`'s listener
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300, help="timed calls per path")
    ap.add_argument("--warmup", type=int, default=30, help="untimed calls per path first")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    api_port = free_port()
    with running_gateway("faas-bench-routes-", extra_args=("--api-port", str(api_port))) as gw:
        project = gw.tmp / "sam-app"
        (project / "hello_world").mkdir(parents=True)
        (project / "hello_world" / "app.py").write_text(HANDLER)
        (project / "template.yaml").write_text(TEMPLATE)
        subprocess.run([FAAS, "deploy", str(project / "template.yaml")], env=gw.env, check=True, capture_output=True)
        conns = {
            key: http.client.HTTPConnection("127.0.0.1", api_port if key.endswith("_api_port") else gw.port, timeout=60)
            for key in PATHS
        }

        def call(key: str) -> float:
            method, path, body = PATHS[key]
            conn = conns[key]
            t = time.perf_counter()
            conn.request(method, path, body=body, headers=JSON_HEADERS if body else {})
            response = conn.getresponse()
            data = response.read()
            elapsed = (time.perf_counter() - t) * 1000
            if response.status != 200 or b"hello world" not in data:
                raise SystemExit(f"{key}: {response.status} {data[:200]!r}")
            return elapsed

        for _ in range(args.warmup):
            for key in PATHS:
                call(key)
        times: dict[str, list[float]] = {key: [] for key in PATHS}
        for _ in range(args.calls):
            for key in PATHS:
                times[key].append(call(key))
        stats = {key: summary(values) for key, values in times.items()}
        base = stats["function_url"]["p50_ms"]
        result = {
            "bench": "routes",
            "calls_per_path": args.calls,
            "latency": stats,
            "ratio_p50_vs_function_url": {key: round(stats[key]["p50_ms"] / base, 3) for key in PATHS},
            "goal": "route_*/function_url <= 1.1",
        }
    emit(json.loads(json.dumps(result)), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
