"""Fakes for fast tests: an executor whose 'containers' are host processes running a tiny runtime.

The fake runtime speaks the same Runtime API over the same unix socket and writes to the
same log FIFO as a real container, so the scheduler, pool, environment and Runtime API server
are exercised for real; only Docker is left out (the integration tests cover it).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from faas.containers.executor import ContainerSpec, EventCallback
from faas.deploy.deploys import DeployProblem, VersionInfo
from faas.deploy.layers import LayerStore
from faas.deploy.routes import Route, RouteBook, RouteTable
from faas.errors import FunctionNotFound, ValidationError
from faas.events.schedule import Schedule, ScheduleBook
from faas.events.sqs_mappings import EventSourceMappings
from faas.models import FunctionSpec, FunctionVersion, Result, function_arn
from faas.platform import DeployOutcome

if TYPE_CHECKING:
    from gateway.contract import PlatformAPI

FAKE_RUNTIME = r"""
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
"""


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
        env = {
            **os.environ,
            "FAAS_RUNTIME_SOCKET": str(spec.runtime_dir / "runtime.sock"),
            "FAKE_TASK_ROOT": str(spec.task_dir),
            "FAKE_DIRECT": self.direct,
        }
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


# ------------------------------------------------------------------ the platform, for the gateway

# A handler of the fake platform: payload in, (payload out, function_error) back.
Handler = Callable[[bytes], "tuple[bytes, str | None]"]
LATEST = "$LATEST"


def _echo(payload: bytes) -> tuple[bytes, str | None]:
    return payload, None


class FakePlatform:
    """gateway.contract.PlatformAPI in memory, for the gateway and CLI tests: no containers,
    no store. Functions are FunctionVersions (every deploy that changes something is a new
    numbered version), calls run `handlers` (default: `default_handler`, an echo) and are
    recorded in `invoked`; what the real platform observes (logs, records, environments,
    the async queue, activity) is whatever a test puts in the attributes below."""

    def __init__(self) -> None:
        self.live: dict[str, FunctionVersion] = {}  # the live version of each function
        self.history: dict[str, list[FunctionVersion]] = {}  # every version, oldest first
        self.alias_targets: dict[str, dict[str, str]] = {}
        self.stored_settings: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, DeployProblem] = {}
        self.handlers: dict[str, Handler] = {}
        self.default_handler: Handler = _echo
        self.printed = ""  # what a call's log shows between START and END
        self.logs_text = ""  # when set, every call's whole log
        self.invoke_error: Exception | None = None  # raised by invoke() after the call is recorded
        self.async_error: Exception | None = None  # raised by invoke_async() instead of queueing
        self.invoked: list[dict[str, Any]] = []  # every invoke(): name, payload, qualifier, client_context
        self.queued: list[dict[str, Any]] = []  # every invoke_async(), with its request_id
        self.deploys: list[dict[str, Any]] = []  # every deploy_zip(): size, expected_name, source_dir
        self.checked: list[FunctionSpec] = []  # every check_zip()
        self.source_dirs: list[str | None] = []  # of deploys that passed validation
        self.removed: list[str] = []
        self.log_lines: dict[str, list[str]] = {}
        self.records: dict[str, list[dict[str, object]]] = {}  # calls(), newest first
        self.failed_events: dict[str, list[dict[str, object]]] = {}  # failures(), newest first
        self.env_rows: list[dict[str, object]] = [{"id": "env-1", "function": "hello", "version": 1, "state": "IDLE"}]
        self.queue_depth = 0
        self.metrics_text = b""
        self.stats: dict[str, dict[str, Any]] = {}  # activity_summary()
        self.activity_log: list[dict[str, Any]] = []  # recent_invocations(), oldest first
        self.series: dict[str, dict[str, list[Any]]] = {}  # latency_series()
        self.draining = False
        self.shutdown_called = False
        self.route_book = RouteBook(None)  # API routes, in memory
        # Schedules, in an in-memory SQLite; fired by hand only (no thread).
        self.schedule_book = ScheduleBook(Path(":memory:"), lambda name, payload: self.invoke_async(name, payload), start=False)

    # ---- set-up helpers for tests -------------------------------------------------------

    def add(self, name: str, version: int = 1, handler: Handler | None = None, **spec: Any) -> FunctionVersion:
        """Make `name` exist (live at `version`) without a deploy."""
        fv = FunctionVersion(
            spec=FunctionSpec.from_mapping({"name": name, **spec}),
            version=version,
            code_sha256="ab" * 32,
            code_dir=Path("/nonexistent"),
            code_size=1234,
            created=1_700_000_000.0,
        )
        self.live[name] = fv
        self.history.setdefault(name, []).append(fv)
        if handler is not None:
            self.handlers[name] = handler
        return fv

    def _spec_of(self, data: bytes, expected_name: str | None, spec_override: FunctionSpec | None) -> FunctionSpec:
        if spec_override is not None:
            spec = spec_override
        else:
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    spec = FunctionSpec.from_mapping(yaml.safe_load(zf.read("function.yaml")))
            except (zipfile.BadZipFile, KeyError) as e:
                raise ValidationError(f"package is not a valid zip file: {e}") from None
        if expected_name is not None and expected_name != spec.name:
            raise ValidationError(f"function.yaml names {spec.name!r}, but the upload is for {expected_name!r}")
        return spec

    # ---- deploys and functions ------------------------------------------------------------

    def deploy_zip(
        self,
        data: bytes,
        *,
        expected_name: str | None = None,
        source_dir: str | None = None,
        spec_override: FunctionSpec | None = None,
    ) -> DeployOutcome:
        self.deploys.append({"size": len(data), "expected_name": expected_name, "source_dir": source_dir})
        spec = self._spec_of(data, expected_name, spec_override)
        self.source_dirs.append(source_dir)
        digest = sha256(data).hexdigest()
        current = self.live.get(spec.name)
        if current is not None and current.code_sha256 == digest and current.spec == spec:
            return DeployOutcome(current, changed=False)
        number = max((v.version for v in self.history.get(spec.name, [])), default=0) + 1
        fv = FunctionVersion(
            spec=spec,
            version=number,
            code_sha256=digest,
            code_dir=Path("/nonexistent"),
            code_size=len(data),
            created=time.time(),
            source_dir=source_dir,
        )
        self.live[spec.name] = fv
        self.history.setdefault(spec.name, []).append(fv)
        return DeployOutcome(fv, changed=True)

    def check_zip(
        self, data: bytes, *, expected_name: str | None = None, spec_override: FunctionSpec | None = None
    ) -> FunctionSpec:
        spec = self._spec_of(data, expected_name, spec_override)
        self.checked.append(spec)
        return spec

    def remove(self, name: str) -> None:
        self.get(name)
        del self.live[name]
        self.history.pop(name, None)
        self.alias_targets.pop(name, None)
        self.stored_settings.pop(name, None)
        self.removed.append(name)

    def functions(self) -> list[FunctionVersion]:
        return [self.live[n] for n in sorted(self.live)]

    def versions(self, name: str) -> list[VersionInfo]:
        live = self.get(name)
        return [VersionInfo(fv, fv.version == live.version, None) for fv in self.history.get(name, [])]

    def rollback(self, name: str, version: int | None = None) -> tuple[FunctionVersion, FunctionVersion]:
        before = self.get(name)
        older = [fv for fv in self.history.get(name, []) if fv.version < before.version]
        if version is None:
            if not older:
                raise ValidationError(f"{name} has no version before {before.version} to roll back to")
            target = older[-1]
        else:
            target = self.resolve(name, str(version))
        self.live[name] = target
        return target, before

    def deploy_problems(self) -> dict[str, DeployProblem]:
        return dict(self.problems)

    def get(self, name: str) -> FunctionVersion:
        try:
            return self.live[name]
        except KeyError:
            raise FunctionNotFound(f"Function not found: {function_arn(name)}") from None

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        live = self.get(name)
        if qualifier in (None, "", LATEST):
            return live
        assert qualifier is not None
        target = self.alias_targets.get(name, {}).get(qualifier, qualifier)
        if target == LATEST:
            return live
        for fv in self.history.get(name, []):
            if str(fv.version) == target:
                return fv
        raise FunctionNotFound(f"Function not found: {function_arn(name, qualifier)}")

    def version_label(self, name: str, qualifier: str | None = None) -> str:
        if qualifier in (None, "", LATEST):
            return LATEST
        assert qualifier is not None
        target = self.alias_targets.get(name, {}).get(qualifier, qualifier)
        return LATEST if target == LATEST else target

    def all_versions(self, name: str) -> list[FunctionVersion]:
        self.get(name)
        return list(self.history.get(name, []))

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self.alias_targets.get(name, {}))

    def put_alias(self, name: str, alias: str, target: str) -> None:
        self.resolve(name, target)
        self.alias_targets.setdefault(name, {})[alias] = target

    def delete_alias(self, name: str, alias: str) -> bool:
        return self.alias_targets.get(name, {}).pop(alias, None) is not None

    def layer_store(self) -> LayerStore:
        raise NotImplementedError("layers need the real platform (tests/integration/test_layers.py)")

    def event_sources(self) -> EventSourceMappings:
        raise NotImplementedError("event source mappings need the real platform (tests/integration/test_sqs.py)")

    def settings(self, name: str) -> dict[str, Any]:
        return dict(self.stored_settings.get(name, {}))

    def put_setting(self, name: str, key: str, value: object) -> None:
        found = self.stored_settings.setdefault(name, {})
        if value is None:
            found.pop(key, None)
        else:
            found[key] = value

    # ---- calls ----------------------------------------------------------------------------

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
        debug_port: int | None = None,
    ) -> Result:
        fv = self.get(name)
        call: dict[str, Any] = {"name": name, "payload": payload, "qualifier": qualifier, "client_context": client_context}
        if debug_port is not None:
            call["debug_port"] = debug_port
        self.invoked.append(call)
        if self.invoke_error is not None:
            raise self.invoke_error
        out, error = self.handlers.get(name, self.default_handler)(payload)
        rid = str(uuid.uuid4())
        logs = self.logs_text or f"START RequestId: {rid} Version: {fv.version}\n{self.printed}END RequestId: {rid}\n"
        return Result(
            request_id=rid,
            payload=out,
            version=fv.version,
            function_error=error,
            error_type="ValueError" if error else None,
            logs=logs,
        )

    def invoke_async(self, name: str, payload: bytes, *, qualifier: str | None = None, client_context: str | None = None) -> str:
        if self.async_error is not None:
            raise self.async_error
        self.resolve(name, qualifier)
        rid = str(uuid.uuid4())
        self.queued.append({"name": name, "payload": payload, "qualifier": qualifier, "request_id": rid})
        return rid

    def calls(self, name: str, *, limit: int = 50) -> list[dict[str, object]]:
        self.get(name)
        return self.records.get(name, [])[:limit]

    def failures(self, name: str, *, limit: int = 50) -> list[dict[str, object]]:
        return self.failed_events.get(name, [])[:limit]

    def follow_logs(self, name: str, cursor: str | None, *, wait_s: float = 20.0, tail: int = 200) -> tuple[str, str]:
        """Cursors are line counts: no cursor gives the last `tail` lines, one gives what came after."""
        self.get(name)
        lines = self.log_lines.get(name, [])
        new = lines[-tail:] if cursor is None else lines[int(cursor) :]
        return "".join(line + "\n" for line in new), str(len(lines))

    def logs(self, name: str, *, tail: int = 200) -> list[str]:
        self.get(name)
        return self.log_lines.get(name, [])[-tail:]

    # ---- what is there now ----------------------------------------------------------------

    def environments(self) -> list[dict[str, object]]:
        return [dict(row) for row in self.env_rows]

    def pool_state(self) -> dict[str, object]:
        return {
            "environments": self.environments(),
            "memory_budget_mb": {"used": 0, "total": 4096},
            "prestarted": {"taken": 0, "missed": 0},
            "keep_alive_default_s": 600,
        }

    def async_queue_depth(self) -> int:
        return self.queue_depth

    def metrics_exposition(self) -> tuple[bytes, str]:
        return self.metrics_text, "text/plain; version=0.0.4; charset=utf-8"

    def activity_summary(self, window_s: float) -> dict[str, dict[str, Any]]:
        return dict(self.stats)

    def recent_invocations(self, since: int, limit: int, function: str | None) -> tuple[int, list[dict[str, Any]]]:
        """The cursor is the number of entries in activity_log."""
        entries = [e for e in self.activity_log[since:] if function is None or e.get("function") == function]
        return len(self.activity_log), entries[-limit:]

    def latency_series(self, function: str, seconds: int) -> dict[str, list[Any]]:
        return self.series.get(function) or {"t": [], "p50": [], "p99": [], "calls": [], "errors": [], "throttled": []}

    # ---- lifecycle ------------------------------------------------------------------------

    def note_in_log(self, name: str, text: str) -> None:
        self.log_lines.setdefault(name, []).append(text)

    def api_routes(self) -> RouteTable:
        return self.route_book.table

    def route_stacks(self) -> dict[str, list[Route]]:
        return self.route_book.stacks()

    def put_api_routes(
        self, stack: str, routes: list[Route], *, dry_run: bool = False, unrunnable: Mapping[str, str] | None = None
    ) -> None:
        self.route_book.put(stack, routes, dry_run=dry_run, unrunnable=unrunnable)

    def schedules(self) -> list[dict[str, Any]]:
        return self.schedule_book.list()

    def put_schedules(self, stack: str, schedules: list[Schedule], *, dry_run: bool = False) -> None:
        self.schedule_book.put(stack, schedules, dry_run=dry_run)

    def fire_schedule(self, name: str) -> str:
        return self.schedule_book.fire(name)

    def unrunnable_functions(self) -> dict[str, dict[str, str]]:
        return self.route_book.unrunnable_by_stack()

    def begin_drain(self) -> None:
        self.draining = True

    def wait_drained(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, wait_s: float | None = None) -> None:
        self.shutdown_called = True


if TYPE_CHECKING:

    def _fake_keeps_the_contract(fake: FakePlatform) -> PlatformAPI:
        """Never called: mypy checks here that the fake is a whole PlatformAPI."""
        return fake
