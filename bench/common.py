"""What every bench script needs around its measurement: its own `faas up` on a free loopback
port with a throw-away state dir, a keep-alive Invoke API client, percentiles, and JSON out.

The scripts import it with their own folder on sys.path (`sys.path.insert(0, <bench/>)`), so
each still runs directly as `.venv/bin/python bench/NAME.py`. bench/soak.py keeps its own copy.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAAS = str(Path(sys.executable).parent / "faas")
JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: Sequence[float], p: float, *, half_up: bool = False) -> float:
    """Nearest-rank percentile. Python's round() (half to even) picks the rank unless half_up:
    bench/runtimes.py always rounded halves up, and keeps doing so to stay comparable with its
    earlier results."""
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    return s[min(len(s) - 1, int(rank + 0.5) if half_up else int(round(rank)))]


def summary(
    values: Sequence[float],
    percentiles: Sequence[int] = (50, 99),
    *,
    digits: int = 3,
    extremes: Sequence[str] = ("min", "max"),
    half_up: bool = False,
) -> dict[str, float]:
    """{"n", "p<P>_ms"..., "<min|max>_ms"...} in that order. p50 is the median (the mean of the two
    middle values for an even count), the others are `pct`, so each script's figures are the
    ones it printed before these helpers were shared."""
    out: dict[str, float] = {"n": len(values)}
    for p in percentiles:
        value = statistics.median(values) if p == 50 else pct(values, p, half_up=half_up)
        out[f"p{p}_ms"] = round(value, digits)
    for name in extremes:
        out[f"{name}_ms"] = round({"min": min, "max": max}[name](values), digits)
    return out


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds that fn() took; its result is dropped."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def emit(result: dict[str, Any], out_path: Path | None) -> None:
    """Print the result as the script's one JSON document, and also write it to --out if given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text + "\n")


class Client:
    """A keep-alive HTTP/1.1 connection to the Invoke API, as boto3 and curl in a loop would use."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, name: str, payload: bytes = b"{}") -> tuple[http.client.HTTPResponse, bytes]:
        """The response (for its status and headers) and its body, read so the connection is reusable."""
        self.conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload, headers=JSON_HEADERS)
        response = self.conn.getresponse()
        return response, response.read()

    def invoke(self, name: str, payload: bytes = b"{}") -> tuple[int, bytes]:
        response, body = self.call(name, payload)
        return response.status, body

    def reconnect(self) -> None:
        """A fresh connection, after a transport error left this one unusable."""
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)


@dataclass(frozen=True)
class Gateway:
    """A running `faas up`: its port, the env that points the CLI at it, and its temp folder."""

    port: int
    env: dict[str, str]  # os.environ plus FAAS_GATEWAY and FAAS_STATE_DIR for `faas` commands
    tmp: Path  # scratch folder of the run (function copies, the log); removed on exit
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def deploy(self, folder: Path) -> None:
        subprocess.run([FAAS, "deploy", str(folder)], env=self.env, check=True, capture_output=True)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float) -> None:
    """Poll /healthz; if `faas up` exits or the deadline passes, print its log and exit(1), as the
    scripts did inline, so a failed start needs no handling in them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            print(log_path.read_text(errors="replace"), file=sys.stderr)
            raise SystemExit(1)
        time.sleep(0.2)


@contextmanager
def running_gateway(
    prefix: str,
    *,
    extra_args: Sequence[str] = (),
    prepare: Callable[[Path], Sequence[str]] | None = None,
    ready_timeout: float = 600,
    stop_timeout: float = 60,
) -> Iterator[Gateway]:
    """Start `faas up` in a new session on a free port with a state dir under a new temp folder,
    and yield it once /healthz answers. On exit: SIGTERM, then SIGKILL of its process group if it
    has not drained within stop_timeout, then the temp folder is removed.

    prepare(tmp), if given, runs before `faas up` starts and returns more arguments for it
    (e.g. a function folder it writes into tmp, for `faas up` to watch). ready_timeout is
    generous because the first run builds the runtime images.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    proc: subprocess.Popen[bytes] | None = None
    log = None
    try:
        folders = list(prepare(tmp)) if prepare else []
        port = free_port()
        state_dir = tmp / "state"
        env = {**os.environ, "FAAS_STATE_DIR": str(state_dir), "FAAS_GATEWAY": f"http://127.0.0.1:{port}"}
        log_path = tmp / "gateway.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [FAAS, "up", "--port", str(port), "--state-dir", str(state_dir), *extra_args, *folders],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_healthy(proc, port, log_path, ready_timeout)
        yield Gateway(port, env, tmp, state_dir, log_path, proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if log is not None:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)
