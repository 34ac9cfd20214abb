"""One execution environment: a container, its Runtime API socket, its log FIFO, its state.

The lifecycle is an Enum state machine under a lock (LocalStack's ExecutionEnvironment):
an illegal transition raises, so a bug shows as an error instead of a container serving
two calls at once. The environment never talks to the engine on the hot path: an event
travels over the socket, the result comes back over it, and the logs of the call are
drained from the FIFO when the result arrives.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from faas.containers.executor import LOG_FIFO_NAME, RUNTIME_DIR_IN_CONTAINER, SOCKET_NAME, ContainerSpec, Executor
from faas.errors import EngineError
from faas.invoke.debug import SOCKET_NAME as DEBUG_SOCKET_NAME
from faas.invoke.debug import DebugRelay, wait_suspending
from faas.invoke.runtime_api import DirectConnection, NotDelivered, ProtocolError, RuntimeApiServer, settle
from faas.logs.pump import LogPump, LogSink
from faas.models import FunctionVersion, Invocation, OutcomeStatus, StartType

LOG = logging.getLogger(__name__)
# Outcomes after which the environment cannot serve another call.
_ENDS_ENVIRONMENT = frozenset({OutcomeStatus.TIMEOUT, OutcomeStatus.OOM, OutcomeStatus.EXIT, OutcomeStatus.UNDELIVERED})

INIT_TIMEOUT_S = 10.0  # Lambda gives the init phase 10 s of its own
DEBUG_INIT_TIMEOUT_S = 3600.0  # under a debugger, the init waits for the IDE


class Status(Enum):
    STARTING = "starting"  # container started, bootstrap not yet asking for work
    READY = "ready"  # initialised, idle, waiting for an event
    BUSY = "busy"  # one call in flight
    DEAD = "dead"  # killed or failed; never used again


_ALLOWED = {
    Status.STARTING: {Status.READY, Status.DEAD},
    Status.READY: {Status.BUSY, Status.DEAD},
    Status.BUSY: {Status.READY, Status.DEAD},
    Status.DEAD: set(),
}


class IllegalTransition(RuntimeError):
    """A state change that the lifecycle forbids: always a bug in faas."""


@dataclass(frozen=True)
class Outcome:
    """What an environment produced for one call, before the scheduler frames it as a Result."""

    payload: bytes
    error_type: str | None = None  # set when the call failed
    status: OutcomeStatus = OutcomeStatus.OK
    logs: str = ""
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error_type is not None


def error_payload(message: str, error_type: str, **extra: object) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, **extra}).encode()


class _Slot:
    """The one call in flight: the result lands here from the Runtime API thread."""

    __slots__ = ("inv", "done", "outcome", "started", "taken")

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.done = threading.Event()
        self.outcome: Outcome | None = None
        self.started = time.monotonic()
        self.taken = False  # the runtime may have received the event (so the call must not be retried)

    def lost(self, oom: bool) -> Outcome:
        """What the call gets when its environment ends under it."""
        if not self.taken:
            return Outcome(b"", "faas.NotDelivered", OutcomeStatus.UNDELIVERED)
        return _exit_outcome(self.inv.request_id, oom=oom)


class Environment:
    """A container serving one function version, one call at a time."""

    def __init__(
        self,
        env_id: str,
        folder: Path,
        executor: Executor,
        pump: LogPump,
        on_dead: Callable[[Environment], None] | None = None,
    ) -> None:
        self.id = env_id
        self.folder = folder
        self.task_dir = folder / "task"
        self.runtime_dir = folder / "rt"
        self.opt_dir = folder / "opt"  # mounted at /opt from the start: the layers arrive with the function
        self.executor = executor
        self.pump = pump
        self.on_dead = on_dead
        self.version: FunctionVersion | None = None
        self.container_id: str | None = None
        self.status = Status.STARTING
        self.created_at = time.monotonic()  # `faas ps` shows its age from here
        self.started_at = self.created_at
        self.last_used = self.started_at
        self.init_duration_ms: float | None = None  # reported once, on the first call
        self.init_logs = ""  # what the function printed while it initialised
        self.calls = 0
        self.runtime = ""  # the runtime image it runs, known from the start (pre-started ones too)
        self.start_type = StartType.COLD  # or PRESTARTED: how it came to serve its function
        self.fresh = True  # not yet leased: its first call reports the init
        self.reserved_mb = 0  # memory held in the host budget; released once, when it dies
        self.connected = threading.Event()  # the bootstrap is up and asking for its function
        self.debug: DebugRelay | None = None  # a debugger relay (faas invoke --debug)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._init_failure: Outcome | None = None
        self._spec_msg: bytes | None = None
        self._specialised = threading.Event()
        self._inbox: queue.SimpleQueue[Invocation | None] = queue.SimpleQueue()
        self._slot: _Slot | None = None
        self._direct: DirectConnection | None = None
        self._oom = False
        self._dying = False
        for d in (self.task_dir, self.runtime_dir, self.opt_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        self.logs = LogSink(self.runtime_dir / LOG_FIFO_NAME)
        pump.add(self.logs)
        self.server = RuntimeApiServer(self.runtime_dir / SOCKET_NAME, self, name=env_id)

    # ---- lifecycle -------------------------------------------------------------------

    def _transition(self, new: Status) -> None:
        """Caller holds self._lock."""
        if new not in _ALLOWED[self.status]:
            raise IllegalTransition(f"environment {self.id}: {self.status.value} -> {new.value}")
        self.status = new

    def start(self, spec: ContainerSpec) -> None:
        """Start the container; EngineError leaves this environment dead and cleaned up."""
        try:
            self.container_id = self.executor.start(spec)
        except EngineError:
            self.destroy()
            raise
        # Lambda's Init Duration covers the runtime and the function's init, not creating the sandbox.
        self.started_at = time.monotonic()

    def specialise(
        self,
        version: FunctionVersion,
        env_vars: dict[str, str],
        handler: str,
        debug_port: int | None = None,
        layer_dirs: tuple[Path, ...] = (),
    ) -> None:
        """Give the environment its function: code into /var/task, its layers merged into /opt
        (in order: a later layer's file replaces an earlier one's), identity over the socket.

        debug_port: a debugger relay on 127.0.0.1:debug_port (faas invoke --debug); the
        runtime starts its debugger and waits for an IDE before it loads the function.
        """
        self.version = version
        link_tree(version.code_dir, self.task_dir)
        for layer in layer_dirs:
            link_tree(layer, self.opt_dir, replace=True)
        message: dict[str, object] = {"handler": handler, "env": env_vars}
        if debug_port is not None:
            self.debug = DebugRelay(debug_port, self.runtime_dir / DEBUG_SOCKET_NAME, label=self.id)
            # port: Node's inspector listens inside on the port the IDE uses outside, as its
            # /json answers name the port the IDE must come back to.
            message["debug"] = {"socket": f"{RUNTIME_DIR_IN_CONTAINER}/{DEBUG_SOCKET_NAME}", "port": debug_port}
        self._spec_msg = json.dumps(message).encode()
        if self.container_id is not None:
            self.started_at = time.monotonic()  # pre-started: its init begins now
        self._specialised.set()

    def wait_ready(self, timeout: float = INIT_TIMEOUT_S) -> Outcome | None:
        """None once the bootstrap asks for its first event; else the init failure as an Outcome."""
        if self.debug is not None:  # the init waits for an IDE to attach: as long as the user needs
            timeout = DEBUG_INIT_TIMEOUT_S
        if not self._ready.wait(timeout):
            self._init_failure = Outcome(
                error_payload(f"Init phase did not complete within {timeout:.0f} seconds", "Runtime.InitTimeout"),
                "Runtime.InitTimeout",
                OutcomeStatus.ERROR,
                self.logs.take(),
            )
            self.destroy()
            return self._init_failure
        if self._init_failure is not None:
            failure = self._init_failure
            logs = self.logs.take()
            self.destroy()
            return Outcome(failure.payload, failure.error_type, failure.status, logs)
        self.init_logs = self.logs.take()
        return None

    def invoke(self, inv: Invocation, timeout_s: float) -> Outcome:
        """Run one call. Never raises for the function's failures: they come back as an Outcome."""
        slot = _Slot(inv)
        with self._lock:
            self._transition(Status.BUSY)
            self._slot = slot
            self.calls += 1
        if self._direct is not None:
            slot.taken = True  # a failure before it is sent is reported by exchange() as NotDelivered
            self._invoke_direct(self._direct, slot)
        else:
            self._inbox.put(inv)
        if not wait_suspending(slot.done, inv.deadline, self.debug):
            with self._lock:
                if slot.outcome is None:
                    message = f"RequestId: {inv.request_id} Error: Task timed out after {timeout_s:.2f} seconds"
                    slot.outcome = Outcome(error_payload(message, "Sandbox.Timedout"), "Sandbox.Timedout", OutcomeStatus.TIMEOUT)
            if slot.outcome.status is OutcomeStatus.TIMEOUT:
                # Lambda stops the environment at the deadline; the caller must not wait for the kill.
                threading.Thread(target=self.destroy, name=f"kill-{self.id}", daemon=True).start()
        outcome = slot.outcome
        assert outcome is not None
        duration = (time.monotonic() - slot.started) * 1000
        with self._lock:
            self._slot = None
            if self.status is Status.BUSY and outcome.status not in _ENDS_ENVIRONMENT and not self._oom:
                self._transition(Status.READY)
                self.last_used = time.monotonic()
        logs = self.logs.take()
        if self._oom and outcome.status is OutcomeStatus.OK:
            # A process of the function was OOM-killed even though the handler answered: report it as Lambda would.
            outcome = _exit_outcome(inv.request_id, oom=True)
        return Outcome(outcome.payload, outcome.error_type, outcome.status, logs, duration)

    def _invoke_direct(self, direct: DirectConnection, slot: _Slot) -> None:
        """The warm path: this thread hands the event over and reads the result itself."""
        inv = slot.inv
        try:
            ended = direct.exchange(inv, inv.deadline)  # this call's result or error
            direct.reply(settle(ended, self))
        except TimeoutError:
            return  # the deadline passed: the caller's wait ends at once and reports the timeout
        except NotDelivered as e:
            # Gone while idle (killed, engine restarted): the event never reached it, so the
            # scheduler may give the call to another environment.
            LOG.info("environment %s of %s: gone before call %s reached it: %s", self.id, self._fname(), inv.request_id, e)
            with self._lock:
                if slot.outcome is None:
                    slot.outcome = Outcome(b"", "faas.NotDelivered", OutcomeStatus.UNDELIVERED)
            slot.done.set()
            threading.Thread(target=self.destroy, name=f"kill-{self.id}", daemon=True).start()
        except (OSError, ProtocolError, ValueError) as e:
            # The runtime is gone (killed, OOM) or broke the protocol: the engine's die event names
            # the cause (OOM or exit) within moments; wait briefly for it, then say it exited.
            LOG.info("environment %s of %s: runtime connection lost during %s: %s", self.id, self._fname(), inv.request_id, e)
            if not slot.done.wait(min(1.0, max(0.0, inv.deadline - time.monotonic()))):
                with self._lock:
                    if slot.outcome is None:
                        slot.outcome = _exit_outcome(inv.request_id, oom=self._oom)
                slot.done.set()
            threading.Thread(target=self.destroy, name=f"kill-{self.id}", daemon=True).start()

    def on_undelivered(self, request_id: str) -> None:
        with self._lock:
            slot = self._slot
            if slot is None or slot.inv.request_id != request_id or slot.outcome is not None:
                return
            slot.outcome = Outcome(b"", "faas.NotDelivered", OutcomeStatus.UNDELIVERED)
        slot.done.set()
        threading.Thread(target=self.destroy, name=f"kill-{self.id}", daemon=True).start()

    @property
    def direct_ok(self) -> bool:
        """Under a debugger the timeout is suspended, which the direct path's socket deadline cannot do."""
        return self.debug is None

    def park(self, direct: DirectConnection) -> bool:
        """The runtime's first GET next, on a connection it lets us drive: it is initialised.
        Only the first such connection is taken: a later one is a process the function left
        behind, trying to take the next caller's event (False: refused)."""
        with self._lock:
            if self._direct is not None:
                return False
            self._direct = direct
        self._mark_ready()
        return True

    @property
    def has_direct(self) -> bool:
        return self._direct is not None

    @property
    def healthy(self) -> bool:
        return self.status is Status.READY

    def destroy(self) -> None:
        """Kill the container and release everything; safe to call more than once, from any thread."""
        with self._lock:
            if self.status is Status.DEAD and self._dying:
                return
            self._dying = True
            if self.status is not Status.DEAD:
                self._transition(Status.DEAD)
            slot = self._slot
        self._specialised.set()
        self._ready.set()
        self._inbox.put(None)
        if slot is not None and slot.outcome is None:
            slot.outcome = slot.lost(self._oom)
            slot.done.set()
        self.server.close()
        if self._direct is not None:
            self._direct.close()
        if self.debug is not None:
            self.debug.close()
        if self.container_id:
            try:
                self.executor.kill(self.container_id)
            except EngineError as e:
                LOG.warning("environment %s: could not remove container %s: %s", self.id, self.container_id[:12], e)
        self.pump.remove(self.logs)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.on_dead:
            self.on_dead(self)

    # ---- engine events (from the executor's event thread) ------------------------------

    def on_container_event(self, event: str) -> None:
        if event == "oom":
            self._oom = True
            LOG.info("environment %s of %s: out of memory", self.id, self._fname())
            return
        if event != "die" or self.status is Status.DEAD:
            return
        # The engine reports "oom" just before "die"; give it a moment so an OOM kill is named as one.
        threading.Timer(0.05, self._died).start()

    def _died(self) -> None:
        LOG.info("environment %s of %s: container exited%s", self.id, self._fname(), " (OOM)" if self._oom else "")
        with self._lock:
            slot = self._slot
            if self.status is Status.STARTING and self._init_failure is None:
                self._init_failure = _exit_outcome(None, oom=self._oom)
        if slot is not None and slot.outcome is None:
            slot.outcome = slot.lost(self._oom)
            slot.done.set()
        self._ready.set()
        self.destroy()

    def _fname(self) -> str:
        return self.version.key if self.version else "(unassigned)"

    # ---- Runtime API (called from the server's connection threads) -----------------------

    def on_environment(self) -> bytes | None:
        self.connected.set()
        self._specialised.wait()
        return self._spec_msg if self.status is not Status.DEAD else None

    def _mark_ready(self) -> None:
        if not self._ready.is_set():
            with self._lock:
                if self.status is Status.STARTING:
                    self._transition(Status.READY)
                    self.init_duration_ms = (time.monotonic() - self.started_at) * 1000
            self._ready.set()

    def on_next(self) -> Invocation | None:
        self._mark_ready()
        inv = self._inbox.get()
        with self._lock:
            if self._slot is not None and inv is not None and self._slot.inv is inv:
                self._slot.taken = True
        return inv

    def _finish(self, request_id: str, outcome: Outcome) -> int:
        with self._lock:
            slot = self._slot
            if slot is None or slot.inv.request_id != request_id or slot.outcome is not None:
                return 400
            slot.outcome = outcome
        slot.done.set()
        return 202

    def on_response(self, request_id: str, body: bytes) -> int:
        return self._finish(request_id, Outcome(body))

    def on_error(self, request_id: str, body: bytes, error_type: str) -> int:
        try:
            parsed = json.loads(body)
            etype = str(parsed.get("errorType") or error_type) if isinstance(parsed, dict) else error_type
        except ValueError:
            etype, body = error_type, error_payload(body.decode("utf-8", "replace"), error_type)
        return self._finish(request_id, Outcome(body, etype, OutcomeStatus.ERROR))

    def on_oversized_response(self, request_id: str, size: int) -> int:
        message = f"Response payload size ({size} bytes) exceeded maximum allowed payload size (6291456 bytes)."
        self._finish(
            request_id,
            Outcome(
                error_payload(message, "Function.ResponseSizeTooLarge"), "Function.ResponseSizeTooLarge", OutcomeStatus.ERROR
            ),
        )
        return 413

    def on_init_error(self, body: bytes, error_type: str) -> int:
        try:
            parsed = json.loads(body)
            etype = str(parsed.get("errorType") or error_type) if isinstance(parsed, dict) else error_type
        except ValueError:
            etype, body = error_type, error_payload(body.decode("utf-8", "replace"), error_type)
        self._init_failure = Outcome(body, etype, OutcomeStatus.ERROR, "")
        self._ready.set()
        return 202

    def snapshot(self) -> dict[str, object]:
        return {
            "id": self.id,
            "function": self.version.name if self.version else None,
            "version": self.version.version if self.version else None,
            "state": self.status.value if self.version else "prestarted",
            "runtime": self.runtime,
            "start": self.start_type,
            "container": (self.container_id or "")[:12],
            "calls": self.calls,
            "idle_s": round(time.monotonic() - self.last_used, 1) if self.status is Status.READY else 0,
        }


def _exit_outcome(request_id: str | None, *, oom: bool) -> Outcome:
    """A runtime that ended under a call (request_id given) or during its init (None), in
    Lambda's words: the OOM killer's SIGKILL reads "signal: killed" (Runtime.OutOfMemory); any
    other end reads as an exit status (Runtime.ExitError). The engine's die event does not
    reach here with the real status, so it reads exit status 1."""
    prefix = f"RequestId: {request_id} Error: " if request_id is not None else ""
    if oom:
        msg = f"{prefix}Runtime exited with error: signal: killed"
        return Outcome(error_payload(msg, "Runtime.OutOfMemory"), "Runtime.OutOfMemory", OutcomeStatus.OOM)
    msg = f"{prefix}Runtime exited with error: exit status 1"
    return Outcome(error_payload(msg, "Runtime.ExitError"), "Runtime.ExitError", OutcomeStatus.EXIT)


def link_tree(src: Path, dst: Path, *, replace: bool = False) -> None:
    """Fill an environment's /var/task (or /opt) from the package store with hard links (a copy
    across filesystems). replace=True: merge over what is there, the new file winning (layers).

    Hard links cost no data copy; the store's files are never modified (a new version is a
    new folder), and the mount is read-only, so sharing inodes is safe.
    """
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dst / rel
        if replace and (target.is_symlink() or target.exists()) and path.is_dir() != target.is_dir():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if path.is_dir():
            target.mkdir(mode=0o755, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if replace and target.exists():
            target.unlink()
        try:
            target.hardlink_to(path)
        except OSError:
            shutil.copy2(path, target)


def new_env_id() -> str:
    return uuid.uuid4().hex[:12]
