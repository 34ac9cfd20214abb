"""Attach a debugger to a function while it runs: the host half of the relay.

The debugger listens inside the container, in the container's own network namespace
(debugpy on 127.0.0.1 there; Node's inspector likewise). That namespace has only a loopback
interface when the function runs with `network: none`, so no TCP path leads into it from the
host. The path is the environment's runtime folder instead, which is already bind-mounted at
/run/faas:

    IDE --TCP 127.0.0.1:PORT--> DebugRelay (host) <--unix /run/faas/debug.sock-- container relay
                                                                               --TCP--> debugpy

The container side (runtimes/python/faas_debug.py) dials in to debug.sock as soon as its
debugger listens, and again after each session ends; this side pairs each IDE connection on
PORT with one such connection and copies bytes both ways. Nothing here speaks the Debug
Adapter Protocol except dap_initialize(), a small client used to check a port answers it.

While an IDE is connected, `attached` is set and attached time accumulates:
wait_suspending() waits for a call's end with the deadline moved by that time, so the
function's timeout is suspended while someone sits at a breakpoint (as SAM CLI does).
"""

from __future__ import annotations

import errno
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faas.errors import FaasError
from faas.private import for_sandbox

LOG = logging.getLogger(__name__)

SOCKET_NAME = "debug.sock"  # in the environment's runtime folder; /run/faas/debug.sock inside
DEFAULT_PORT = 5678  # debugpy's and VS Code's usual port
PAIR_WAIT_S = 30.0  # an IDE that connects waits this long for the container's side
_CHUNK = 65536
_POLL_S = 0.25


class DebugPortInUse(FaasError):
    """The debugger's port on 127.0.0.1 is taken (by another debug session or program)."""

    status = 409
    error_type = "ResourceConflictException"
    kind = "User"


class DebugRelay:
    """Listens on 127.0.0.1:port for an IDE and on a unix socket for the container; pairs them.

    One session at a time, as a debug adapter serves one client; an IDE that reconnects
    gets the container's next connection. close() ends everything and is idempotent.
    """

    def __init__(
        self,
        port: int,
        socket_path: Path,
        *,
        label: str = "",
        on_attach: Callable[[bool], None] | None = None,
        pair_wait_s: float = PAIR_WAIT_S,
    ) -> None:
        self.label = label
        self.socket_path = socket_path
        self.on_attach = on_attach
        self.pair_wait_s = pair_wait_s
        self.attached = threading.Event()
        self.sessions = 0
        self._attached_total = 0.0
        self._attached_since: float | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._inbound: queue.Queue[socket.socket] = queue.Queue()
        self._open: set[socket.socket] = set()
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._tcp.bind(("127.0.0.1", port))
        except OSError as e:
            self._tcp.close()
            if e.errno == errno.EADDRINUSE:
                raise DebugPortInUse(f"port {port} on 127.0.0.1 is in use: pick another with --debug PORT") from e
            raise FaasError(f"cannot listen for a debugger on 127.0.0.1:{port}: {e.strerror}") from e
        self._tcp.listen(4)
        self.port = self._tcp.getsockname()[1]
        try:
            socket_path.unlink(missing_ok=True)
            self._unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._unix.bind(str(socket_path))
            for_sandbox(socket_path)  # the function runs as uid 993 inside
            self._unix.listen(4)
        except OSError as e:
            self._tcp.close()
            raise FaasError(f"cannot create the debugger socket {socket_path}: {e.strerror}") from e
        self._threads = [
            threading.Thread(target=self._accept_container, name=f"debug-unix-{label}", daemon=True),
            threading.Thread(target=self._accept_ide, name=f"debug-tcp-{label}", daemon=True),
        ]
        for t in self._threads:
            t.start()
        LOG.info("debugger for %s: listening on 127.0.0.1:%d", label, self.port)

    # ---- accepting ---------------------------------------------------------------------

    def _accept_container(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._unix.accept()
            except OSError:
                return  # closed
            self._inbound.put(conn)

    def _accept_ide(self) -> None:
        while not self._closed.is_set():
            try:
                ide, addr = self._tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(ide,), name=f"debug-session-{self.label}", daemon=True).start()

    def _session(self, ide: socket.socket) -> None:
        """Pair one IDE connection with the container's next one and copy until either ends."""
        try:
            container = self._inbound.get(timeout=self.pair_wait_s)
        except queue.Empty:
            LOG.warning("debugger for %s: the function's debugger did not come up within %.0f s", self.label, self.pair_wait_s)
            ide.close()
            return
        with self._lock:
            if self._closed.is_set() or self.attached.is_set():
                busy = True
            else:
                busy = False
                self._open.update((ide, container))
                self.attached.set()
                self._attached_since = time.monotonic()
                self.sessions += 1
        if busy:  # one session at a time; give the container's connection to the next IDE
            self._inbound.put(container)
            ide.close()
            return
        LOG.info("debugger for %s: attached (session %d)", self.label, self.sessions)
        self._notify(True)
        try:
            _pump(ide, container)
        finally:
            with self._lock:
                self._open.difference_update((ide, container))
                if self._attached_since is not None:
                    self._attached_total += time.monotonic() - self._attached_since
                    self._attached_since = None
                self.attached.clear()
            for s in (ide, container):
                _close(s)
            LOG.info("debugger for %s: detached", self.label)
            self._notify(False)

    def _notify(self, attached: bool) -> None:
        if self.on_attach is not None:
            try:
                self.on_attach(attached)
            except Exception:
                LOG.exception("debugger for %s: attach callback failed", self.label)

    # ---- time ---------------------------------------------------------------------------

    def attached_seconds(self) -> float:
        """Total time an IDE has been connected, the current session included."""
        with self._lock:
            since = self._attached_since
            return self._attached_total + (time.monotonic() - since if since is not None else 0.0)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for s in (self._tcp, self._unix):
            _close(s)
        with self._lock:
            open_now = list(self._open)
        for s in open_now:
            _close(s)
        while True:
            try:
                _close(self._inbound.get_nowait())
            except queue.Empty:
                break
        try:
            self.socket_path.unlink(missing_ok=True)
        except OSError:
            pass


def wait_suspending(done: threading.Event, deadline: float, relay: DebugRelay | None) -> bool:
    """Wait for `done` until the monotonic `deadline`, which moves by the time a debugger is
    attached (and does not run out while one is). True if done, False at the deadline."""
    if relay is None:
        return done.wait(max(0.0, deadline - time.monotonic()))
    base = relay.attached_seconds()
    while True:
        if relay.attached.is_set():
            if done.wait(_POLL_S):
                return True
            continue
        remaining = deadline + (relay.attached_seconds() - base) - time.monotonic()
        if remaining <= 0:
            return done.is_set()
        if done.wait(min(remaining, _POLL_S)):
            return True


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways; when either side ends, end the other too (a debugger that
    leaves must be seen as gone by the adapter, and the other way round)."""
    ended = threading.Event()

    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            ended.set()

    threads = [threading.Thread(target=copy, args=pair, daemon=True) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    ended.wait()
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for t in threads:
        t.join()


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# ---- a minimal Debug Adapter Protocol client ---------------------------------------------


def dap_send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def dap_read(sock: socket.socket, buffer: bytearray) -> dict[str, Any]:
    """One DAP message (Content-Length framed JSON); buffer keeps bytes read past it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("the debug adapter closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("the debug adapter closed the connection mid-message")
        rest += chunk
    buffer[:] = rest[length:]
    return dict(json.loads(rest[:length]))


def dap_initialize(port: int, *, host: str = "127.0.0.1", timeout: float = 30.0) -> dict[str, Any]:
    """Connect, send DAP `initialize` as an IDE does, return the adapter's response (its capabilities)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        dap_send(
            sock,
            {
                "seq": 1,
                "type": "request",
                "command": "initialize",
                "arguments": {
                    "clientID": "faas",
                    "clientName": "faas",
                    "adapterID": "python",
                    "pathFormat": "path",
                    "linesStartAt1": True,
                    "columnsStartAt1": True,
                    "supportsVariableType": True,
                },
            },
        )
        buffer = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = dap_read(sock, buffer)
            if message.get("type") == "response" and message.get("command") == "initialize":
                return message
        raise TimeoutError("no answer to DAP initialize")
