"""Fakes for fast tests: an executor whose 'containers' are host processes running a tiny runtime.

The fake runtime speaks the same Runtime API over the same unix socket and writes to the
same log FIFO as a real container, so the scheduler, pool, environment and Runtime API server
are exercised for real; only Docker is left out (the integration tests cover it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from faas.containers.executor import ContainerSpec, EventCallback

FAKE_RUNTIME = r'''
import json, os, socket, sys, time, traceback, importlib
sock = socket.socket(socket.AF_UNIX); sock.connect(os.environ["FAAS_RUNTIME_SOCKET"])
f = sock.makefile("rb")
def call(method, path, body=b"", headers=()):
    head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    sock.sendall(head.encode() + b"\r\n" + body)
    status = int(f.readline().split()[1]); hdrs = {}
    while True:
        line = f.readline().decode()
        if line in ("\r\n", ""): break
        k, _, v = line.partition(":"); hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, f.read(int(hdrs.get("content-length", 0)))
_, _, spec = call("GET", "/faas/v1/environment")
spec = json.loads(spec); os.environ.update(spec["env"])
sys.path.insert(0, os.environ["FAKE_TASK_ROOT"])
mod, fn = spec["handler"].rsplit(".", 1)
try:
    handler = getattr(importlib.import_module(mod), fn)
except Exception as e:
    call("POST", "/2018-06-01/runtime/init/error", json.dumps({"errorMessage": str(e), "errorType": "Runtime.ImportModuleError"}).encode())
    sys.exit(1)
DIRECT = [("Faas-Direct", os.environ["FAKE_DIRECT"])] if os.environ.get("FAKE_DIRECT") in ("1", "2") else []
while True:
    status, h, event = call("GET", "/2018-06-01/runtime/invocation/next", headers=DIRECT)
    rid = h["lambda-runtime-aws-request-id"]
    try:
        out = json.dumps(handler(json.loads(event), h)).encode()
        sys.stdout.flush()
        call("POST", f"/2018-06-01/runtime/invocation/{rid}/response", out)
    except Exception as e:
        sys.stdout.flush()
        call("POST", f"/2018-06-01/runtime/invocation/{rid}/error", json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}).encode(), [("Lambda-Runtime-Function-Error-Type", "Unhandled")])
'''


class ProcessExecutor:
    """Implements faas.containers.executor.Executor with host processes instead of containers."""

    def __init__(self, direct: bool | str = True) -> None:
        """direct: True or "2" asks for direct mode with answers sent ahead (as the Python
        bootstrap does; the fake's buffered reader keeps what it reads past a response),
        "1" for plain direct mode (as the Node bootstrap does), False for neither."""
        self.direct = {True: "2", False: "0"}.get(direct, direct) if isinstance(direct, bool) else direct
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, ContainerSpec] = {}
        self.callbacks: list[EventCallback] = []
        self.killed: list[str] = []
        self.resized: list[tuple[str, int]] = []
        self._n = 0

    def start(self, spec: ContainerSpec) -> str:
        self._n += 1
        cid = f"proc{self._n:04d}" + "0" * 56
        out = os.open(spec.runtime_dir / "out", os.O_WRONLY)
        env = {**os.environ, "FAAS_RUNTIME_SOCKET": str(spec.runtime_dir / "runtime.sock"), "FAKE_TASK_ROOT": str(spec.task_dir),
               "FAKE_DIRECT": self.direct}
        proc = subprocess.Popen([sys.executable, "-c", FAKE_RUNTIME], stdout=out, stderr=out, env=env, start_new_session=True)
        os.close(out)
        self.procs[cid] = proc
        self.specs[cid] = spec
        threading.Thread(target=self._wait, args=(cid, proc), daemon=True).start()
        return cid

    def _wait(self, cid: str, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        for cb in self.callbacks:
            cb("die", cid)

    def kill(self, container_id: str) -> None:
        proc = self.procs.pop(container_id, None)
        if proc and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it exited and was reaped by _wait() since poll(): as good as killed
                pass
            self.killed.append(container_id)

    def update_resources(self, container_id: str, memory_mb: int, cpu_shares: int, cpu_quota_us: int | None) -> None:
        self.resized.append((container_id, memory_mb))

    def memory_peak_bytes(self, container_id: str) -> int:
        return 20 * 1024 * 1024

    def subscribe(self, callback: EventCallback) -> None:
        self.callbacks.append(callback)

    def remove_labelled(self, labels: dict[str, str]) -> int:
        n = 0
        for cid in list(self.procs):
            self.kill(cid)
            n += 1
        return n

    def has_bridge(self) -> bool:
        return False

    def close(self) -> None:
        for cid in list(self.procs):
            self.kill(cid)
