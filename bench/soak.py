"""Soak: mixed load at about half the measured capacity, with redeploys and an abusive function
in the mix; counts lost and duplicated calls and follows the gateway's memory.

Starts its own gateway (`faas up`) on a free loopback port with a temporary state dir, deploys
five functions, measures the capacity of the mix (closed loop, --concurrency callers), then
offers --load times that rate (open loop: calls start on schedule whether or not earlier ones
have answered) for --minutes:

  echo, work, sleepy   synchronous calls (50/30/20 % of them); every answer must carry the
                       call's own id, and every environment numbers the calls it runs, so an
                       execution that no caller saw (a duplicate, or a call lost after it ran)
                       shows as a gap or a repeat in that environment's numbers
  sink                 Event calls (10 % of all calls): every 202 must be run exactly once,
                       checked against the gateway's invocation records
  work                 is redeployed with new code every --redeploy-every seconds under load
  abuser               called in turn every few seconds: 50 MB to stdout, fills /tmp, opens
                       10,000 files, spins 4 processes, forks 500; each must answer (its errors
                       are Lambda's) while the others go on

Prints one JSON document (also to --out): the counts, latencies of the synchronous calls, the
gateway worker's RSS at the start and the end of the load (and its samples), and "ok": zero
lost, zero duplicated, zero unexpected errors. Exit status 0 when ok, else 1. Usage:

    .venv/bin/python bench/soak.py [--minutes 10] [--load 0.5] [--out soak.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAAS = str(Path(sys.executable).parent / "faas")
MIX = (("echo", 0.5), ("work", 0.3), ("sleepy", 0.2))
ASYNC_SHARE = 0.1
ABUSES = ("stdout", "tmp", "files", "spin", "forks")
IDLE_REOPEN_S = 30.0  # well under the gateway's keep-alive (75 s): a connection idle longer is reopened

COUNTING = """
import os, time
CALLS = 0
STREAM = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
VERSION = "{version}"

def handler(event, context):
    global CALLS
    CALLS += 1
    {body}
    return {{"id": event.get("id"), "env": STREAM, "n": CALLS, "version": VERSION}}
"""
BODIES = {
    "echo": "pass",
    "work": "sum(i * i for i in range(20000))",
    "sleepy": "time.sleep(event.get('sleep', 0.05))",
}
SINK = """
def handler(event, context):
    print("sink", event.get("id"))
    return event.get("id")
"""
ABUSER = """
import os, sys, time

def handler(event, context):
    mode = event["mode"]
    if mode == "stdout":
        line = "y" * (1024 * 1024 - 1) + "\\n"
        for _ in range(50):
            sys.stdout.write(line)
        sys.stdout.flush()
        return "stdout"
    if mode == "tmp":
        written = 0
        try:
            with open("/tmp/fill", "wb") as f:
                while True:
                    f.write(b"\\0" * (1024 * 1024))
                    written += 1
        except OSError as e:
            return {"errno": e.errno, "mb": written}
        finally:
            os.unlink("/tmp/fill")
    if mode == "files":
        files = []
        try:
            while len(files) < 10000:
                files.append(open("/var/task/app.py"))
        except OSError as e:
            return {"errno": e.errno, "opened": len(files)}
        finally:
            for f in files:
                f.close()
    if mode == "spin":
        end = time.monotonic() + 1.0
        pids = [p for p in (os.fork() for _ in range(3)) if p]
        while time.monotonic() < end:
            pass
        if len(pids) < 3:
            os._exit(0)
        for p in pids:
            os.waitpid(p, 0)
        return "spin"
    if mode == "forks":
        pids = []
        try:
            for _ in range(500):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                pids.append(pid)
        except OSError as e:
            pass
        for p in pids:
            os.kill(p, 9)
            os.waitpid(p, 0)
        return {"forked": len(pids)}
    return "?"
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))], 2) if s else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


@dataclass
class Call:
    function: str
    id: str
    started: float
    kind: str = "sync"  # sync | event | abuse
    status: int = 0  # HTTP status, 0: no answer at all
    latency_ms: float = 0.0
    body: Any = None
    error_type: str | None = None
    request_id: str = ""
    problem: str = ""


@dataclass
class Soak:
    port: int
    env: dict[str, str]
    state: Path
    gateway: subprocess.Popen[bytes]
    calls: list[Call] = field(default_factory=list)
    warmup: list[Call] = field(default_factory=list)  # capacity phase: ran in the same environments
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)
    redeploys: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    environments: list[tuple[float, int]] = field(default_factory=list)

    # ---- HTTP, one keep-alive connection per thread (as a pool of SDK clients would)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is not None and time.monotonic() - self.local.used > IDLE_REOPEN_S:
            conn.close()  # the server may be closing it right now: never reuse one it may have dropped
            conn = None
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.local.used = time.monotonic()
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise

    def invoke(self, function: str, payload: dict[str, Any], kind: str = "sync") -> Call:
        call = Call(function, str(payload.get("id", "")), time.monotonic(), kind)
        headers = {"Content-Type": "application/json"}
        if kind == "event":
            headers["X-Amz-Invocation-Type"] = "Event"
        try:
            status, hdrs, data = self.request(
                "POST", f"/2015-03-31/functions/{function}/invocations", json.dumps(payload).encode(), headers
            )
            call.status, call.request_id = status, hdrs.get("x-amzn-requestid", "")
            call.body = json.loads(data) if data else None
            if status >= 400:
                call.error_type = hdrs.get("x-amzn-errortype", "?")
            elif "x-amz-function-error" in hdrs:
                call.error_type = (call.body or {}).get("errorType", "Unhandled")
        except (OSError, http.client.HTTPException, ValueError) as e:
            call.problem = f"{type(e).__name__}: {e}"
        call.latency_ms = (time.monotonic() - call.started) * 1000
        with self.lock:
            self.calls.append(call)
        return call

    def system(self, path: str) -> Any:
        status, _, data = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data[:300]!r}")
        return json.loads(data)

    def worker_pid(self) -> int | None:
        try:
            children = Path(f"/proc/{self.gateway.pid}/task/{self.gateway.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def deploy(self, folder: Path) -> float:
        started = time.monotonic()
        out = subprocess.run([FAAS, "deploy", str(folder)], env=self.env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"faas deploy {folder} failed: {out.stdout}{out.stderr}")
        return time.monotonic() - started


def write_function(root: Path, name: str, code: str, **spec: Any) -> Path:
    folder = root / "functions" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}", "runtime: python3.11", "handler: app.handler", *(f"{k}: {v}" for k, v in spec.items())]
    (folder / "function.yaml").write_text("\n".join(lines) + "\n")
    (folder / "app.py").write_text(code)
    return folder


def counting_code(name: str, version: int) -> str:
    return COUNTING.format(version=version, body=BODIES[name])


def start_gateway(state: Path, verbose: int = 0) -> Soak:
    port = free_port()
    env = {
        **os.environ,
        "FAAS_STATE_DIR": str(state / "state"),
        "FAAS_GATEWAY": f"http://127.0.0.1:{port}",
        "FAAS_RECORDS_PER_FUNCTION": "1000000",
    }
    env.pop("FAAS_HOST", None)
    log = open(state / "gateway.log", "wb")
    proc = subprocess.Popen(
        [
            FAAS,
            *(["-" + "v" * verbose] if verbose else []),
            "up",
            "--no-watch",
            "--port",
            str(port),
            "--state-dir",
            str(state / "state"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    soak = Soak(port, env, state, proc)
    deadline = time.monotonic() + 900  # the first run on a machine builds the runtime images
    while True:
        try:
            if soak.request("GET", "/healthz")[0] == 200:
                return soak
        except (OSError, http.client.HTTPException):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("faas up did not start:\n" + (state / "gateway.log").read_text()[-3000:])
        time.sleep(0.2)


def stop_gateway(soak: Soak) -> int:
    if soak.gateway.poll() is None:
        soak.gateway.send_signal(signal.SIGTERM)
        try:
            soak.gateway.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(soak.gateway.pid, signal.SIGKILL)
            soak.gateway.wait(10)
    return soak.gateway.returncode


def pick(rng: random.Random) -> str:
    x = rng.random()
    for name, share in MIX:
        if x < share:
            return name
        x -= share
    return MIX[-1][0]


def payload(name: str, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {"id": uuid.uuid4().hex}
    if name == "sleepy":
        out["sleep"] = round(rng.uniform(0.02, 0.1), 3)
    return out


def measure_capacity(soak: Soak, seconds: float, concurrency: int) -> float:
    """Calls per second of the synchronous mix with `concurrency` callers in a closed loop."""
    stop = time.monotonic() + seconds
    done = [0] * concurrency

    def caller(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            name = pick(rng)
            call = soak.invoke(name, payload(name, rng))
            if call.status == 200:
                done[i] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="faas-soak-"))
    soak = start_gateway(tmp, args.verbose)
    try:
        folders = {name: write_function(tmp, name, counting_code(name, 1), timeout=10) for name in BODIES}
        folders["sink"] = write_function(tmp, "sink", SINK)
        folders["abuser"] = write_function(tmp, "abuser", ABUSER, timeout=10, memory=1024)
        for folder in folders.values():
            soak.deploy(folder)

        # Warm up, then measure what the mix sustains; the calls of this phase are not counted.
        measure_capacity(soak, 3, args.concurrency)
        capacity = measure_capacity(soak, args.capacity_seconds, args.concurrency)
        with soak.lock:
            soak.warmup, soak.calls = soak.calls, []
        rate = max(1.0, capacity * args.load)
        duration = args.minutes * 60
        worker = soak.worker_pid()
        rss_start = rss_mb(worker) if worker else 0.0

        stop = threading.Event()
        version = [1]

        def redeployer() -> None:
            while not stop.wait(args.redeploy_every):
                version[0] += 1
                (folders["work"] / "app.py").write_text(counting_code("work", version[0]))
                at = time.monotonic()
                try:
                    took = soak.deploy(folders["work"])
                    soak.redeploys.append({"version": version[0], "s": round(took, 2), "at": at})
                except RuntimeError as e:
                    soak.redeploys.append({"version": version[0], "error": str(e)[:300]})

        def abuser() -> None:
            i = 0
            while not stop.wait(args.abuse_every):
                soak.invoke("abuser", {"id": uuid.uuid4().hex, "mode": ABUSES[i % len(ABUSES)]}, kind="abuse")
                i += 1

        def sampler() -> None:
            started = time.monotonic()
            while not stop.wait(5):
                pid = soak.worker_pid()
                at = round(time.monotonic() - started)
                soak.rss.append((at, rss_mb(pid) if pid else 0.0))
                try:
                    soak.environments.append((at, len(soak.system("/system/environments"))))
                except (OSError, http.client.HTTPException, RuntimeError):
                    pass

        helpers = [threading.Thread(target=f, daemon=True) for f in (redeployer, abuser, sampler)]
        for t in helpers:
            t.start()
        rng = random.Random(7)
        late = 0
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            n = 0
            while True:
                due = started + n / rate
                now = time.monotonic()
                if due - started >= duration:
                    break
                if due > now:
                    time.sleep(due - now)
                elif now - due > 1.0:
                    late += 1  # the generator itself fell behind by over a second
                if rng.random() < ASYNC_SHARE:
                    pool.submit(soak.invoke, "sink", {"id": uuid.uuid4().hex}, "event")
                else:
                    name = pick(rng)
                    pool.submit(soak.invoke, name, payload(name, rng))
                n += 1
            stop.set()
        for t in helpers:
            t.join(60)
        elapsed = time.monotonic() - started
        rss_end = rss_mb(worker) if worker else 0.0

        # Every Event call that was accepted must run exactly once: wait for the queue to drain.
        accepted = {c.request_id for c in soak.calls if c.kind == "event" and c.status == 202}
        deadline = time.monotonic() + 180
        while True:
            records = soak.system("/system/functions/sink/calls?tail=100000")
            ran = Counter(r["request_id"] for r in records if r["status"] == "ok")
            if accepted <= set(ran) or time.monotonic() > deadline:
                break
            time.sleep(1)
        failures = soak.system("/system/functions/sink/failures?tail=1000")
        return report(args, soak, capacity, rate, elapsed, late, accepted, ran, failures, rss_start, rss_end, worker)
    finally:
        code = stop_gateway(soak)
        if code != 0:
            print(f"faas up exited with {code}; its log: {tmp / 'gateway.log'}", file=sys.stderr)
        elif not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def report(
    args: argparse.Namespace,
    soak: Soak,
    capacity: float,
    rate: float,
    elapsed: float,
    late: int,
    accepted: set[str],
    ran: Counter[str],
    failures: list[Any],
    rss_start: float,
    rss_end: float,
    worker: int | None,
) -> dict[str, Any]:
    sync = [c for c in soak.calls if c.kind == "sync"]
    t0 = min((c.started for c in soak.calls), default=0.0)
    events = [c for c in soak.calls if c.kind == "event"]
    abuse = [c for c in soak.calls if c.kind == "abuse"]
    no_answer = [c for c in soak.calls if c.status == 0 or c.status >= 500]
    wrong = [c for c in sync if c.status == 200 and (not isinstance(c.body, dict) or c.body.get("id") != c.id)]
    errors = [c for c in sync if c.error_type and c.status < 500]
    throttled = [c for c in soak.calls if c.status == 429]
    # Per environment, the calls it ran are numbered 1, 2, 3...: every number must have been
    # answered to exactly one caller.
    seen: dict[str, list[int]] = defaultdict(list)
    for c in soak.warmup + sync:
        if c.status == 200 and isinstance(c.body, dict) and "env" in c.body:
            seen[f"{c.function}/{c.body['env']}"].append(int(c.body["n"]))
    repeats = sum(len(ns) - len(set(ns)) for ns in seen.values())
    unanswered_runs = sum(max(ns) - len(set(ns)) for ns in seen.values())
    events_lost = sorted(accepted - set(ran))
    events_twice = sorted(rid for rid, count in ran.items() if count > 1 and rid in accepted)
    latencies = {
        name: {"calls": len(ls), "p50_ms": pct(ls, 50), "p99_ms": pct(ls, 99), "max_ms": pct(ls, 100)}
        for name in BODIES
        for ls in [[c.latency_ms for c in sync if c.function == name and c.status == 200]]
    }
    slowest = sorted(sync, key=lambda c: -c.latency_ms)[:8]
    lost = len(no_answer) + len(wrong) + len(events_lost) + unanswered_runs
    duplicated = repeats + len(events_twice)
    out = {
        "minutes": args.minutes,
        "capacity_calls_per_s": round(capacity, 1),
        "offered_calls_per_s": round(rate, 1),
        "achieved_calls_per_s": round(len(soak.calls) / elapsed, 1) if elapsed else 0.0,
        "calls": {"sync": len(sync), "event": len(events), "abusive": len(abuse), "total": len(soak.calls)},
        "lost": lost,
        "duplicated": duplicated,
        "detail": {
            "no_answer_or_5xx": len(no_answer),
            "wrong_answer": len(wrong),
            "events_accepted": len(accepted),
            "events_lost": len(events_lost),
            "events_run_twice": len(events_twice),
            "events_failed": len(failures),
            "runs_no_caller_saw": unanswered_runs,
            "runs_answered_twice": repeats,
            "unexpected_function_errors": len(errors),
            "throttled_429": len(throttled),
            "environments": len(seen),
            "generator_late": late,
            "examples": [
                f"at {c.started - t0:.0f} s: " + (c.problem or f"{c.function} {c.status} {c.error_type} {str(c.body)[:200]}")
                for c in (no_answer + wrong + errors)[:5]
            ],
        },
        "latency": latencies,
        "abusive_calls": dict(Counter(f"{c.status} {c.error_type or 'ok'}" for c in abuse)),
        "slowest_calls": [
            {
                "function": c.function,
                "at_s": round(c.started - t0, 1),
                "ms": round(c.latency_ms),
                "version": c.body.get("version") if isinstance(c.body, dict) else None,
            }
            for c in slowest
        ],
        "redeploys": {
            "count": len(soak.redeploys),
            "failed": sum(1 for r in soak.redeploys if "error" in r),
            "at_s": [round(r["at"] - t0, 1) for r in soak.redeploys if "at" in r],
            "median_s": sorted(r["s"] for r in soak.redeploys if "s" in r)[len(soak.redeploys) // 2]
            if any("s" in r for r in soak.redeploys)
            else None,
        },
        "gateway_rss_mb": {
            "worker_pid": worker,
            "start": rss_start,
            "end": rss_end,
            "max": max([rss_start, rss_end, *(m for _, m in soak.rss)]),
            "samples": soak.rss,
        },
        "environments": {
            "end": soak.environments[-1][1] if soak.environments else None,
            "max": max((n for _, n in soak.environments), default=None),
            "samples": soak.environments,
        },
    }
    out["ok"] = lost == 0 and duplicated == 0 and not errors and not failures
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    ap.add_argument("--load", type=float, default=0.5, help="offered rate as a share of the measured capacity")
    ap.add_argument("--concurrency", type=int, default=8, help="callers of the capacity measurement")
    ap.add_argument("--capacity-seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=64, help="threads issuing the open-loop calls")
    ap.add_argument("--redeploy-every", type=float, default=20.0, help="seconds between redeploys of 'work'")
    ap.add_argument("--abuse-every", type=float, default=4.0, help="seconds between calls of the abusive function")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state dir and gateway log")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="the gateway logs more (-vv: debug); with --keep")
    args = ap.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
