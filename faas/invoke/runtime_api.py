"""The server side of Lambda's Runtime API (2018-06-01), one per environment, on a unix socket.

The socket lives in the environment's own folder, which is bind-mounted into that container
only: a connection on it can only come from that environment, so no request needs to say who
it is, and the transport works with `network: none`. HTTP/1.1 is parsed by hand: the protocol
is four routes with Content-Length bodies, and a warm call crosses this code twice, so the
general-purpose servers' per-request cost (header objects, logging, handler classes) would
be most of the latency budget.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from faas.models import SYNC_PAYLOAD_LIMIT, Invocation
from faas.invoke.sockio import SocketReader, kernel_timeout

LOG = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"
ENVIRONMENT_PATH = "/faas/v1/environment"
MAX_HEADER_BYTES = 64 * 1024
# Lambda accepts a response a little over 6 MB before calling it too large; we use the
# documented 6291456-byte limit for the payload itself.
RESPONSE_LIMIT = SYNC_PAYLOAD_LIMIT


@dataclass(frozen=True)
class Reply:
    """What a request handler answers: status, body, extra headers."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class ProtocolError(Exception):
    """The runtime sent something that is not the Runtime API."""


class NotDelivered(ConnectionError):
    """The runtime was gone before it received the event: the call never started, so it can be retried."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    oversize: int = 0  # a response body over the limit: its size (the body itself was discarded)


def read_request(reader) -> Request | None:  # type: ignore[no-untyped-def]
    """One HTTP/1.1 request from a buffered reader; None at end of stream.

    A runtime writes each request in one go, so its head is nearly always whole in the
    reader's buffer: it is then split in one pass (a warm call reads two requests, and a
    readline per header cost ~40 us each); otherwise it is read line by line."""
    buffered = reader.peek(1)
    end = buffered.find(b"\r\n\r\n")
    if end < 0:
        return _read_request_by_lines(reader)
    lines = reader.read(end + 4)[:end].decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise ProtocolError("bad request line") from None
    headers: dict[str, str] = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return _read_body(reader, method, target, headers)


def _read_request_by_lines(reader) -> Request | None:  # type: ignore[no-untyped-def]
    line = reader.readline(8192)
    if not line:
        return None
    try:
        method, target, _version = line.decode("latin-1").split(" ", 2)
    except ValueError:
        raise ProtocolError("bad request line") from None
    headers: dict[str, str] = {}
    total = 0
    while True:
        h = reader.readline(8192)
        total += len(h)
        if total > MAX_HEADER_BYTES:
            raise ProtocolError("headers too large")
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            return None
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return _read_body(reader, method, target, headers)


def _read_body(reader, method: str, target: str, headers: dict[str, str]) -> Request | None:  # type: ignore[no-untyped-def]
    length = int(headers.get("content-length") or 0)
    path = target.split("?", 1)[0]
    if method == "POST" and path.endswith("/response") and length > RESPONSE_LIMIT:
        _discard(reader, length)
        return Request(method, path, headers, b"", oversize=length)
    body = reader.read(length) if length else b""
    if len(body) < length:
        return None
    return Request(method, path, headers, body)


def next_reply(inv: Invocation) -> Reply:
    """The answer to GET .../invocation/next: the event and Lambda's headers."""
    out = [
        ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_epoch_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn),
        ("Lambda-Runtime-Trace-Id", inv.trace_id),
        ("Content-Type", "application/json"),
    ]
    if inv.client_context:
        out.append(("Lambda-Runtime-Client-Context", inv.client_context))
    if inv.identity:
        out.append(("Lambda-Runtime-Cognito-Identity", inv.identity))
    return Reply(200, inv.payload, tuple(out))


def oversize_reply(size: int) -> Reply:
    message = f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes)."
    return Reply(413, _status_body(413, message, "RequestEntityTooLarge"))


def encode_head(reply: Reply, close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}", f"Content-Length: {len(reply.body)}"]
    head.extend(f"{k}: {v}" for k, v in reply.headers)
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def send_reply(conn: socket.socket, reply: Reply, close: bool = False, *, before: bytes = b"") -> None:
    """Write a reply; `before`: bytes to go out ahead of it in the same write."""
    data = before + encode_head(reply, close)
    if len(reply.body) < 65536:
        conn.sendall(data + reply.body)
    else:
        conn.sendall(data)
        conn.sendall(reply.body)


ACCEPTED = b'{"status":"OK"}'


class DirectConnection:
    """A runtime's connection driven by the calling thread itself (the warm path).

    A runtime that asks for it (header `Faas-Direct: 1` or `2` on GET next; the project's own
    bootstraps do, as they use one connection strictly in turn) has its connection taken
    over by its environment: the thread of the call writes the event and reads the result,
    so a warm call costs no thread hand-offs. The GET next that the runtime sends right
    after each result is read at the start of the following call.
    """

    def __init__(self, conn: socket.socket, reader, *, ahead: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.conn = conn
        self.reader = reader
        self.pending_next = False
        # ahead (`Faas-Direct: 2`): the runtime's client keeps bytes read past a response, so
        # the answer to its result waits and goes out in one write with the next event,
        # ahead of the GET next it will send once it has read that answer. A warm call then
        # costs one write and one wake-up of the runtime instead of two.
        self.ahead = ahead
        self.held: bytes | None = None

    def exchange(self, inv: Invocation, timeout_s: float) -> Request:
        """Hand over the event, return the runtime's next request (its result). Raises
        TimeoutError at the deadline, ConnectionError / ProtocolError when the runtime is gone,
        NotDelivered when it was gone before it could have read the event."""
        try:
            kernel_timeout(self.conn, timeout_s)
            if self.held is not None:
                held, self.held = self.held, None
                send_reply(self.conn, next_reply(inv), before=held)
                self._read_next()  # it reads the event only after asking: EOF here is undelivered
            else:
                if self.pending_next:
                    self._read_next()
                send_reply(self.conn, next_reply(inv))
        except TimeoutError:
            raise
        except BlockingIOError as e:  # the send outlasted the deadline (SO_SNDTIMEO)
            raise TimeoutError("timed out") from e
        except (OSError, ValueError) as e:  # the runtime is gone, or the connection was closed under us
            raise NotDelivered(str(e)) from e
        req = read_request(self.reader)
        if req is None:
            raise ConnectionError("the runtime closed its connection")
        return req

    def _read_next(self) -> None:
        req = read_request(self.reader)
        if req is None:
            raise NotDelivered("the runtime closed its connection")
        if req.method != "GET" or req.path != PREFIX + "/invocation/next":
            raise ProtocolError(f"expected GET next, got {req.method} {req.path}")
        self.pending_next = False

    def reply(self, reply: Reply) -> None:
        if self.ahead:
            self.held = encode_head(reply) + reply.body
        else:
            send_reply(self.conn, reply)
            self.pending_next = True

    def close(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.reader.close()
            self.conn.close()
        except OSError:
            pass


class RuntimeHandler(Protocol):
    """What the server needs from its environment; every method may block the connection's thread."""

    def on_environment(self) -> bytes | None:
        """The specialisation message (JSON), blocking until there is one; None closes."""

    def on_next(self) -> Invocation | None:
        """The next event, blocking until there is one; None closes the connection."""

    def park(self, direct: DirectConnection) -> None:
        """Take over a connection whose runtime asked for direct mode (at its first GET next)."""

    def on_undelivered(self, request_id: str) -> None:
        """The event of this call could not be sent: the runtime is gone."""

    def on_response(self, request_id: str, body: bytes) -> int:
        """A result; returns the HTTP status to answer (202, or 4xx)."""

    def on_error(self, request_id: str, body: bytes, error_type: str) -> int:
        """A function error; returns the HTTP status to answer."""

    def on_init_error(self, body: bytes, error_type: str) -> int:
        """An init failure; returns the HTTP status to answer."""

    def on_oversized_response(self, request_id: str, size: int) -> int:
        """A response over the payload limit (its body was discarded)."""


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            413: "Request Entity Too Large", 500: "Internal Server Error"}


def _status_body(status: int, message: str, error_type: str) -> bytes:
    # errorMessage/errorType is the shape the Runtime API uses for its own errors.
    import json

    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class RuntimeApiServer:
    """Accepts connections on the environment's socket; a thread per connection."""

    def __init__(self, socket_path: Path, handler: RuntimeHandler, name: str = "") -> None:
        self.socket_path = socket_path
        self.handler = handler
        self.name = name
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(socket_path))
        # The sandbox user (uid 993) must be able to connect; the folder is this environment's alone.
        os.chmod(socket_path, 0o666)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._accept_loop, name=f"rtapi-{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting and drop every connection; blocked handler calls are released by the env."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name=f"rtapi-{self.name}-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = SocketReader(conn)
        handed_over = False
        try:
            while not self._closed.is_set():
                req = read_request(reader)
                if req is None:
                    return
                if req.oversize:
                    request_id = req.path[len(PREFIX) + len("/invocation/"):-len("/response")]
                    send_reply(conn, Reply(self.handler.on_oversized_response(request_id, req.oversize), oversize_reply(req.oversize).body))
                    continue
                if req.method == "GET" and req.path == PREFIX + "/invocation/next":
                    direct = req.headers.get("faas-direct")
                    if direct in ("1", "2") and getattr(self.handler, "direct_ok", True):
                        handed_over = True
                        self.handler.park(DirectConnection(conn, reader, ahead=direct == "2"))
                        return
                    inv = self.handler.on_next()
                    if inv is None:
                        return
                    try:
                        send_reply(conn, next_reply(inv))
                    except OSError:
                        self.handler.on_undelivered(inv.request_id)
                        raise
                    continue
                reply = self._route(req)
                if reply is None:
                    return
                send_reply(conn, reply)
        except ProtocolError as e:
            try:
                send_reply(conn, Reply(400, _status_body(400, str(e), "InvalidRequest")), close=True)
            except OSError:
                pass
        except (OSError, ValueError) as e:
            if not self._closed.is_set():
                LOG.debug("runtime api %s: connection ended: %s", self.name, e)
        finally:
            if not handed_over:
                with self._lock:
                    self._conns.discard(conn)
                    try:
                        reader.close()
                        conn.close()
                    except OSError:
                        pass

    def _route(self, req: Request) -> Reply | None:
        h = self.handler
        method, path, headers, body = req.method, req.path, req.headers, req.body
        if method == "POST" and path.startswith(PREFIX + "/invocation/"):
            rest = path[len(PREFIX) + len("/invocation/"):]
            request_id, _, action = rest.partition("/")
            if action == "response":
                return Reply(h.on_response(request_id, body), ACCEPTED)
            if action == "error":
                error_type = headers.get("lambda-runtime-function-error-type", "Unhandled")
                return Reply(h.on_error(request_id, body, error_type), ACCEPTED)
        if method == "POST" and path == PREFIX + "/init/error":
            error_type = headers.get("lambda-runtime-function-error-type", "Runtime.Unknown")
            return Reply(h.on_init_error(body, error_type), ACCEPTED)
        if method == "GET" and path == ENVIRONMENT_PATH:
            spec = h.on_environment()
            if spec is None:
                return None
            return Reply(200, spec, (("Content-Type", "application/json"),))
        return Reply(404, _status_body(404, f"unknown route {method} {path}", "InvalidRequest"))


def _discard(reader, length: int) -> None:  # type: ignore[no-untyped-def]
    left = length
    while left > 0:
        chunk = reader.read(min(left, 1 << 20))
        if not chunk:
            return
        left -= len(chunk)
