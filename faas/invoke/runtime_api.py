"""The server side of Lambda's Runtime API (2018-06-01), one per environment, on a unix socket.

This module alone knows the API's HTTP shapes (its paths, its Lambda-Runtime-* headers, its
error bodies): it turns each request into a message (a result, a function error, an init
error, ...) and hands that to the environment, which never sees a path or a header.

The socket lives in the environment's own folder, which is bind-mounted into that container
only: a connection on it can only come from that environment, so no request needs to say who
it is, and the transport works with `network: none`. HTTP/1.1 is parsed by hand: the protocol
is four routes with Content-Length bodies, and a warm call crosses this code twice, so the
general-purpose servers' per-request cost (header objects, logging, handler classes) would
be most of the latency budget.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from faas.invoke.http1 import REASONS, BadHead, content_length, parse_head, render_head
from faas.invoke.sockio import SocketReader, kernel_timeout, sendall_by
from faas.models import SYNC_PAYLOAD_LIMIT, Invocation
from faas.private import for_sandbox

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
    path: str  # without its query
    headers: dict[str, str]  # names in lower case
    body: bytes
    oversize: int = 0  # a response body over the limit: its size (the body itself was discarded)


def read_request(reader) -> Request | None:  # type: ignore[no-untyped-def]
    """One HTTP/1.1 request from a buffered reader; None at end of stream. Raises
    ProtocolError for a head that is not HTTP/1.1 or a Content-Length that is not one
    plain number (negative, not a number, given twice): where the next request would
    start is then unknown, so the caller answers 400 and closes.

    A runtime writes each request in one go, so its head is nearly always whole in the
    reader's buffer: it is then split in one pass (a warm call reads two requests, and a
    readline per header cost ~40 us each); otherwise it is read line by line."""
    buffered = reader.peek(1)
    end = buffered.find(b"\r\n\r\n")
    if end >= 0:
        raw = reader.read(end + 4)[:end]
    else:
        raw = _read_head_by_lines(reader)
        if raw is None:
            return None
    try:
        head = parse_head(raw)
        length = content_length(head)
    except BadHead as e:
        raise ProtocolError(str(e)) from None
    method, path = head.method, head.path
    if length > RESPONSE_LIMIT and method == "POST" and path.endswith("/response"):
        _discard(reader, length)
        return Request(method, path, head.headers, b"", oversize=length)
    body = reader.read(length) if length else b""
    if len(body) < length:
        return None
    return Request(method, path, head.headers, body)


def _read_head_by_lines(reader) -> bytes | None:  # type: ignore[no-untyped-def]
    """A head that is not whole in the buffer: its lines, CRLF-joined; None at end of stream."""
    lines: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(8192)
        if not line:
            return None
        total += len(line)
        if total > MAX_HEADER_BYTES:
            raise ProtocolError("headers too large")
        if line in (b"\r\n", b"\n"):
            return b"\r\n".join(lines)
        lines.append(line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line)


# ---- what a request means -------------------------------------------------------------


class NextEvent(NamedTuple):
    """GET .../invocation/next. direct: the runtime's Faas-Direct header ("1", "2" or None)."""

    direct: str | None


class EnvironmentQuery(NamedTuple):
    """GET /faas/v1/environment: the bootstrap asks which function it runs."""


class Result(NamedTuple):
    """POST .../invocation/{id}/response."""

    request_id: str
    body: bytes


class FunctionError(NamedTuple):
    """POST .../invocation/{id}/error."""

    request_id: str
    body: bytes
    error_type: str


class Oversized(NamedTuple):
    """A result over the payload limit: its body was read and discarded."""

    request_id: str
    size: int


class InitError(NamedTuple):
    """POST .../init/error."""

    body: bytes
    error_type: str


class Unknown(NamedTuple):
    """Anything else: answered 404."""

    method: str
    path: str


Message = NextEvent | EnvironmentQuery | Result | FunctionError | Oversized | InitError | Unknown
CallEnd = Result | FunctionError | Oversized  # what a runtime sends to end the call in flight
_CALL_ENDS = (Result, FunctionError, Oversized)
_TAKEOVER = (NextEvent, Result, FunctionError, Oversized)  # what only the runtime's own connection may send
_NEXT_PATH = PREFIX + "/invocation/next"
_INVOCATION = PREFIX + "/invocation/"
_ERROR_TYPE = "lambda-runtime-function-error-type"


def message_of(req: Request) -> Message:
    """What a parsed request asks, free of HTTP."""
    method, path = req.method, req.path
    if method == "GET":
        if path == _NEXT_PATH:
            return NextEvent(req.headers.get("faas-direct"))
        if path == ENVIRONMENT_PATH:
            return EnvironmentQuery()
    elif method == "POST":
        if path.startswith(_INVOCATION):
            request_id, _, action = path[len(_INVOCATION) :].partition("/")
            if action == "response":
                return Oversized(request_id, req.oversize) if req.oversize else Result(request_id, req.body)
            if action == "error":
                return FunctionError(request_id, req.body, req.headers.get(_ERROR_TYPE, "Unhandled"))
        elif path == PREFIX + "/init/error":
            return InitError(req.body, req.headers.get(_ERROR_TYPE, "Runtime.Unknown"))
    return Unknown(method, path)


def describe(msg: Message) -> str:
    """A message for a log line or an error, without its body."""
    if isinstance(msg, (Result, FunctionError, Oversized)):
        return f"{type(msg).__name__}({msg.request_id})"
    if isinstance(msg, Unknown):
        return f"{msg.method} {msg.path}"
    return type(msg).__name__


def settle(msg: InitError | CallEnd, handler: RuntimeHandler) -> Reply:
    """Hand a result, an error or an init error to the environment; the reply it earns."""
    if type(msg) is Result:
        return acknowledge(handler.on_response(msg.request_id, msg.body))
    if type(msg) is FunctionError:
        return acknowledge(handler.on_error(msg.request_id, msg.body, msg.error_type))
    if type(msg) is Oversized:
        return oversize_reply(msg.size, handler.on_oversized_response(msg.request_id, msg.size))
    if type(msg) is InitError:
        return acknowledge(handler.on_init_error(msg.body, msg.error_type))
    raise TypeError(f"not a message to settle: {describe(msg)}")


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


def oversize_reply(size: int, status: int = 413) -> Reply:
    message = f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes)."
    return Reply(status, _status_body(status, message, "RequestEntityTooLarge"))


def acknowledge(status: int) -> Reply:
    """The answer to a result, an error or an init error that the environment took (202) or refused."""
    return Reply(status, ACCEPTED if status == 202 else _status_body(status))


def encode_head(reply: Reply, close: bool = False) -> bytes:
    return render_head(reply.status, reply.headers, len(reply.body), connection="close" if close else None)


def send_reply(
    conn: socket.socket, reply: Reply, close: bool = False, *, before: bytes = b"", deadline: float | None = None
) -> None:
    """Write a reply; `before`: bytes to go out ahead of it in the same write; `deadline`
    (time.monotonic()): the whole write ends by then (the socket's kernel timeout was just
    set to the time left), else TimeoutError."""
    data = before + encode_head(reply, close)
    if len(reply.body) < 65536:
        parts: tuple[bytes, ...] = (data + reply.body,)
    else:
        parts = (data, reply.body)  # no copy of a large body
    for part in parts:
        if deadline is None:
            conn.sendall(part)
        else:
            sendall_by(conn, part, deadline)


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

    def exchange(self, inv: Invocation, deadline: float) -> CallEnd:
        """Hand over the event, return how the runtime ended the call (its result, its error,
        or a result too large). Raises TimeoutError at the deadline (time.monotonic()), which
        bounds the whole exchange, every write and read of it, not each one: a runtime that
        trickles its answer a byte at a time is still cut off at the deadline.
        ConnectionError / ProtocolError when the runtime is gone or sends anything else,
        NotDelivered when it was gone before it could have read the event."""
        try:
            kernel_timeout(self.conn, deadline - time.monotonic())
            self.reader.until(deadline)
            if self.held is not None:
                held, self.held = self.held, None
                send_reply(self.conn, next_reply(inv), before=held, deadline=deadline)
                self._read_next()  # it reads the event only after asking: EOF here is undelivered
            else:
                if self.pending_next:
                    self._read_next()
                send_reply(self.conn, next_reply(inv), deadline=deadline)
        except TimeoutError:
            raise
        except BlockingIOError as e:  # the send outlasted the deadline (SO_SNDTIMEO)
            raise TimeoutError("timed out") from e
        except (OSError, ValueError) as e:  # the runtime is gone, or the connection was closed under us
            raise NotDelivered(str(e)) from e
        req = self._read()
        if req is None:
            raise ConnectionError("the runtime closed its connection")
        msg = message_of(req)
        if not isinstance(msg, _CALL_ENDS) or msg.request_id != inv.request_id:
            raise ProtocolError(f"unexpected {req.method} {req.path} during a call")
        return msg

    def _read(self) -> Request | None:
        """The runtime's next request; one that breaks HTTP is refused as the server does
        (400, and the connection closed) before the ProtocolError goes up."""
        try:
            return read_request(self.reader)
        except ProtocolError as e:
            try:
                send_reply(self.conn, Reply(400, _status_body(400, str(e), "InvalidRequest")), close=True)
            except OSError:
                pass
            self.close()
            raise

    def _read_next(self) -> None:
        req = self._read()
        if req is None:
            raise NotDelivered("the runtime closed its connection")
        if type(message_of(req)) is not NextEvent:
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

    def park(self, direct: DirectConnection) -> bool:
        """Take over a connection whose runtime asked for direct mode (at its first GET next);
        False refuses it (the environment already drives one)."""

    @property
    def has_direct(self) -> bool:
        """A connection was taken over: the runtime's calls run on it, and on no other."""

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


# Lambda's own words for the errors its Runtime API answers with no more specific message.
_DEFAULT_ERRORS = {
    400: ("Invalid request ID", "InvalidRequestID"),
    403: ("Invalid state transition", "InvalidStateTransition"),
    413: ("Exceeded maximum allowed payload size", "RequestEntityTooLarge"),
}


def _status_body(status: int, message: str | None = None, error_type: str | None = None) -> bytes:
    """The body of an error answer: {"errorMessage", "errorType"}, the shape the Runtime API
    uses for its own errors. What is not given is said by the status: a refused result (the
    call it names is not the one in flight, or was already answered) gets Lambda's 400
    InvalidRequestID, not the {"status": "OK"} of an accepted one."""
    default_message, default_type = _DEFAULT_ERRORS.get(status, (REASONS.get(status, "Error"), "InvalidRequest"))
    return json.dumps({"errorMessage": message or default_message, "errorType": error_type or default_type}).encode()


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
        for_sandbox(socket_path)
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
                msg = message_of(req)
                if isinstance(msg, _TAKEOVER) and getattr(self.handler, "has_direct", False):
                    self._refuse_takeover(conn, msg)
                    return
                if type(msg) is NextEvent:
                    direct = msg.direct
                    if direct in ("1", "2") and getattr(self.handler, "direct_ok", True):
                        handed_over = self.handler.park(DirectConnection(conn, reader, ahead=direct == "2")) is not False
                        if not handed_over:
                            self._refuse_takeover(conn, msg)
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
                reply = self._route(msg)
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

    def _refuse_takeover(self, conn: socket.socket, msg: Message) -> None:
        """Another connection asks for events or ends a call while the runtime's own
        connection is driven directly: a process the function left running, trying to take
        the next caller's event or answer in the runtime's place. Lambda freezes such a
        process; here it is refused (403) and cut off, and the runtime's calls go on."""
        LOG.warning(
            "runtime api %s: refused %s from a second connection: the runtime's own one is in use", self.name, describe(msg)
        )
        try:
            send_reply(conn, Reply(403, _status_body(403)), close=True)
        except OSError:
            pass

    def _route(self, msg: Message) -> Reply | None:
        if isinstance(msg, Unknown):
            return Reply(404, _status_body(404, f"unknown route {msg.method} {msg.path}", "InvalidRequest"))
        if isinstance(msg, EnvironmentQuery):
            spec = self.handler.on_environment()
            if spec is None:
                return None
            return Reply(200, spec, (("Content-Type", "application/json"),))
        return settle(msg, self.handler)  # type: ignore[arg-type]


def _discard(reader, length: int) -> None:  # type: ignore[no-untyped-def]
    left = length
    while left > 0:
        chunk = reader.read(min(left, 1 << 20))
        if not chunk:
            return
        left -= len(chunk)
