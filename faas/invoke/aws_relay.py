"""The host half of a function's way to Lambda's API here: `boto3.client("lambda").invoke(...)`.

A container with `network: none` (or `bridge`) has only its own loopback, so no TCP path
leads from it to the gateway. The path is the environment's runtime folder instead, already
bind-mounted at /run/faas, as for the Runtime API and the debugger:

    function --TCP 127.0.0.1:9002 (its own loopback)--> runtime bootstrap's forwarder
             --unix /run/faas/aws.sock--> AwsRelay (host) --TCP--> the gateway's port

AWS_ENDPOINT_URL_LAMBDA in the function's variables names 127.0.0.1:9002. Only Lambda's
Invoke routes go through: a function has no role here to grant it more, and the management
API would hand it other functions' code and variables (open on loopback without a token).
Each connection carries one request (the relay answers it with `Connection: close`), so the
route of every request is checked before any byte reaches the gateway.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from pathlib import Path

from faas.private import for_sandbox

LOG = logging.getLogger(__name__)

SOCKET_NAME = "aws.sock"  # in the environment's runtime folder; /run/faas/aws.sock inside
CONTAINER_PORT = 9002  # the forwarder inside the container listens on 127.0.0.1:9002
HEAD_LIMIT = 65536  # a request head larger than this is refused
MAX_CONNECTIONS = 32  # per environment, at a time
HEAD_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 960.0  # longer than Lambda's longest call (900 s): a synchronous Invoke waits that long
_CHUNK = 65536
# Invoke (sync, Event, DryRun) and the legacy InvokeAsync; the query string is Lambda's Qualifier.
ALLOWED = re.compile(
    rb"POST /(2015-03-31/functions/[^/?\s]{1,256}/invocations|2014-11-13/functions/[^/?\s]{1,256}/invoke-async/?)"
    rb"(\?[^\s]{0,512})? HTTP/1\.[01]"
)


def _refusal(status: str, error_type: str, message: str) -> bytes:
    body = json.dumps({"Type": "User", "message": message}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Amzn-ErrorType: {error_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class AwsRelay:
    """Listens on the environment's aws.sock; relays Invoke requests to the gateway at target."""

    def __init__(self, socket_path: Path, target: tuple[str, int], *, label: str = "") -> None:
        self.socket_path = socket_path
        self.target = target
        self.label = label
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        try:
            socket_path.unlink()
        except FileNotFoundError:
            pass
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(socket_path))
        for_sandbox(socket_path)  # uid 993 connects; mode 0600, in this environment's folder alone
        self._sock.listen(16)
        threading.Thread(target=self._accept_loop, name=f"aws-relay-{label}", daemon=True).start()

    def close(self) -> None:
        """Stop accepting and cut every relayed connection; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in [self._sock, *self._take_conns()]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        try:
            self.socket_path.unlink()
        except OSError:
            pass

    def _take_conns(self) -> list[socket.socket]:
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        return conns

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._conns) >= 2 * MAX_CONNECTIONS  # two sockets per relayed connection
                if not full:
                    self._conns.add(conn)
            if full:
                _send_quietly(
                    conn,
                    _refusal(
                        "429 Too Many Requests",
                        "TooManyRequestsException",
                        "too many Lambda API calls at once from this function",
                    ),
                )
                continue
            threading.Thread(target=self._serve, args=(conn,), name=f"aws-relay-{self.label}-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, rest = _read_head(conn)
            if head is None:
                return
            if not ALLOWED.match(head):
                verb = head.split(b" ", 2)[:2]
                LOG.info("environment %s: refused a Lambda API call from the function: %r", self.label, b" ".join(verb)[:200])
                conn.sendall(
                    _refusal(
                        "403 Forbidden",
                        "AccessDeniedException",
                        "a function here may call Lambda's Invoke only (its endpoint relays no other API)",
                    )
                )
                return
            upstream = socket.create_connection(self.target, timeout=HEAD_TIMEOUT_S)
            upstream.settimeout(IDLE_TIMEOUT_S)
            conn.settimeout(IDLE_TIMEOUT_S)
            with self._lock:
                if self._closed.is_set():
                    return
                self._conns.add(upstream)
            upstream.sendall(_one_request(head) + rest)
            pump = threading.Thread(target=_copy, args=(conn, upstream), name=f"aws-relay-{self.label}-up", daemon=True)
            pump.start()
            _copy(upstream, conn)
            try:  # the answer is whole (Connection: close): end the other direction's pump too
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            pump.join(HEAD_TIMEOUT_S)
        except OSError as e:
            LOG.debug("environment %s: Lambda API relay: %s", self.label, e)
            if upstream is None:
                _send_quietly(conn, _refusal("502 Bad Gateway", "ServiceException", "the faas gateway could not be reached"))
        finally:
            with self._lock:
                self._conns.discard(conn)
                if upstream is not None:
                    self._conns.discard(upstream)
            for sock in (conn, upstream):
                if sock is not None:
                    sock.close()


def _read_head(conn: socket.socket) -> tuple[bytes | None, bytes]:
    """The request head (without its blank line) and what came after it; None on EOF or too large."""
    conn.settimeout(HEAD_TIMEOUT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_LIMIT:
            conn.sendall(_refusal("431 Request Header Fields Too Large", "RequestTooLargeException", "request head too large"))
            return None, b""
        chunk = conn.recv(_CHUNK)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _one_request(head: bytes) -> bytes:
    """The head with `Connection: close`: one request per connection, each one's route checked."""
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _copy(src: socket.socket, dst: socket.socket) -> None:
    """Bytes from src to dst until src ends, then end dst's writing side."""
    try:
        while True:
            chunk = src.recv(_CHUNK)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()
