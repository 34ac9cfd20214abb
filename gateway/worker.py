"""The gateway's gunicorn worker: a thread per connection, and Invoke served without WSGI.

Why not gunicorn's gthread worker: it hands every request of a kept-alive connection from
its poller thread to a pool thread and back (a selector registration, a future, a pipe
write), then parses it with gunicorn's general parser and runs Flask. On this 2-core
machine that cost ~1 ms of CPU per warm call, under one GIL, and capped the gateway near
500 calls/s while the containers sat mostly idle. Here each connection has its own thread
that reads the next request as soon as the client sends it, and the route every SDK calls
(POST /2015-03-31/functions/NAME/invocations) is parsed and answered in a few dozen
microseconds by gateway.lambda_api.invoke_answer, the same function the Flask route uses.

Everything else (other routes, and any Invoke request the fast path does not take: chunked
or Expect: 100-continue bodies, HTTP/1.0, oversized heads or bodies, odd headers) is parsed
by gunicorn's own parser and served by the Flask app through gunicorn's WSGI code, so its
limits and error answers stay gunicorn's.

Starvation: a slot (Config.threads of them) is held only while a request is served. A head
is read within HEAD_TIMEOUT_S and a Content-Length body within BODY_TIMEOUT_S in all, both
before a slot is taken, so slow senders hold their own threads, not the slots. Near the
connection cap, connections waiting for a request are closed after a short grace instead
of the 75 s keep-alive, so idle sockets cannot keep new callers in the listen backlog.

Stopping: SIGTERM drains (calls in flight finish up to their timeout, new calls get 503
ServiceException from the platform), then the worker stops; SIGINT/SIGQUIT stop at once.
"""

from __future__ import annotations

import errno
import gc
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote

from gunicorn import http, util  # type: ignore[import-untyped]
from gunicorn.http import wsgi  # type: ignore[import-untyped]
from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

from faas.errors import FaasError
from faas.ids import request_id
from faas.invoke.http1 import BadHead, content_length, parse_head, render_head
from faas.invoke.sockio import kernel_timeout
from faas.models import SYNC_PAYLOAD_LIMIT
from gateway.app import REQUEST_ID_HEADER, error_answer, unexpected_error
from gateway.browser_guard import GUARD_KEY, BrowserGuard
from gateway.common import CONFIG_KEY, BodyTooLarge, platform_of
from gateway.contract import PlatformAPI
from gateway.lambda_api import Answer, invoke_answer

HEAD_LIMIT = 16384  # a longer head goes to gunicorn's parser, whose limits (limit_request_*) decide
HEAD_TIMEOUT_S = 10.0  # from a head's first byte to its end (a slow client holds one thread only)
BODY_TIMEOUT_S = 60.0  # the fast path: from a head's end to its body's end, read before taking a slot
IO_TIMEOUT_S = 60.0  # any one read or write (the WSGI path's, a response's)
# Under pressure (connections at PRESSURE of the cap), a connection that waits for its next
# request longer than IDLE_GRACE_S (for its first one: FIRST_REQUEST_GRACE_S) is closed,
# rather than after the keep-alive's 75 s: the cap is then room for callers, not for sockets.
PRESSURE = 0.9
IDLE_GRACE_S = 1.0
FIRST_REQUEST_GRACE_S = 0.2
_SHED_EVERY_S = 0.05
# Bodies read before a slot is taken: any up to PREREAD_SMALL bytes; bigger ones (up to
# Invoke's 6 MB) while the bytes so reserved stay under PREREAD_BUDGET, else in the slot as
# before. Memory stays bounded however many connections declare big bodies.
PREREAD_SMALL = 64 * 1024
PREREAD_BUDGET = 256 * 1024 * 1024
INVOKE_PREFIX = b"POST /2015-03-31/functions/"
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_DRAIN_MARGIN_S = 5
# Reading an unwanted body before closing (_linger): at most this much, for at most this long.
LINGER_BYTES = 8 * 1024 * 1024
LINGER_S = 2.0


class _Closed(Exception):
    """The client closed the connection, or let it idle past the keep-alive timeout."""


class _FastRequest(NamedTuple):
    function: str
    qualifier: str | None
    headers: dict[str, str]
    body: bytes
    rest: bytes  # bytes already read of the next request


def read_body(conn: socket.socket, have: bytes, length: int, deadline: float) -> bytes:
    """`length` bytes, `have` first, read by `deadline` (time.monotonic()) in all: a deadline
    per read would restart at every byte a slow client sends. Raises TimeoutError past the
    deadline, _Closed at the end of the stream."""
    parts = [have]
    got = len(have)
    while got < length:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("body deadline")
        kernel_timeout(conn, left, send=False)
        try:
            data = conn.recv(min(length - got, 1 << 20))
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError("body deadline") from None
        if not data:
            raise _Closed()
        parts.append(data)
        got += len(data)
    return b"".join(parts)


class GatewayWorker(Worker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.platform: PlatformAPI | None = None  # load_wsgi sets it
        self._slots = threading.BoundedSemaphore(max(1, self.cfg.threads))  # requests served at once
        self._count_lock = threading.Lock()
        self._connections = 0
        self._in_flight = 0
        self._idle: dict[socket.socket, float] = {}  # connections waiting for a request: until when, under pressure
        self._shed_at = 0.0
        self._reserved = 0  # bytes of big bodies being read before a slot (PREREAD_BUDGET)
        self._draining = False
        self._date = (0, "")
        self._api_port: int | None = None  # `faas up --api-port`: template routes only, no Invoke fast path

    # ---- stopping --------------------------------------------------------------------

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: keep serving while the calls in flight finish; new calls get a 503."""
        platform = self.platform
        if platform is None or self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        platform.begin_drain()
        threading.Thread(target=self._stop_when_drained, args=(platform,), name="drain", daemon=True).start()

    def _stop_when_drained(self, platform: PlatformAPI) -> None:
        platform.wait_drained(self.cfg.graceful_timeout - _DRAIN_MARGIN_S)
        self.alive = False

    # ---- accepting -------------------------------------------------------------------

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.platform = platform_of(self.wsgi)
        self._guard: BrowserGuard = self.wsgi.extensions[GUARD_KEY]
        self._api_port = getattr(self.wsgi.extensions.get(CONFIG_KEY), "api_port", None)
        # What exists now (modules, Flask, the platform) lives as long as the worker: moved out
        # of the collector's sight, a full collection no longer walks it in the middle of a call.
        gc.collect()
        gc.freeze()

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ)
        try:
            high_water = max(1, int(self.cfg.worker_connections * PRESSURE))
            while self.alive:
                self.notify()
                if self._connections >= high_water:
                    self._shed_idle()
                if self._connections >= self.cfg.worker_connections:
                    time.sleep(0.01)  # at the cap: new connections wait in the listen backlog
                    continue
                for key, _ in selector.select(1.0):
                    self._accept(key.fileobj)
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
        finally:
            selector.close()
            for listener in self.sockets:
                listener.close()
        # Requests still being answered (a deploy, a call after a quick drain) may finish.
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self._in_flight and time.monotonic() < deadline:
            self.notify()
            time.sleep(0.05)

    def _shed_idle(self) -> None:
        """Close the connections idle past their grace: at the cap, 1,000 connections that send
        nothing would otherwise keep every new caller in the listen backlog for 75 s. A
        shutdown wakes the connection's thread, whose read then ends as at a client's close."""
        now = time.monotonic()
        if now - self._shed_at < _SHED_EVERY_S:
            return
        self._shed_at = now
        with self._count_lock:
            stale = [c for c, until in self._idle.items() if until <= now]
            for conn in stale:
                del self._idle[conn]
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if stale:
            self.log.debug("closed %d idle connections under pressure", len(stale))

    def _accept(self, listener: Any) -> None:
        try:
            conn, addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.log.warning("cannot accept a connection: %s", e)
                time.sleep(0.1)
                return
            raise
        util.close_on_exec(conn)
        kernel_timeout(conn, IO_TIMEOUT_S)  # blocking, one system call per read and write
        with self._count_lock:
            self._connections += 1
        server = listener.getsockname()
        threading.Thread(target=self._serve, args=(conn, addr, server), name="conn", daemon=True).start()

    # ---- one connection ----------------------------------------------------------------

    def _serve(self, conn: socket.socket, addr: Any, server: Any) -> None:
        buf = b""
        first = True
        # The template routes' own port serves nothing else of faas: its requests all go to the app.
        fast = self.platform is not None and not (isinstance(server, tuple) and server[1] == self._api_port)
        try:
            while True:
                buf, end = self._read_head(conn, buf, first)
                first = False
                # The fast path's body is read here, before a slot is taken: a caller that sends
                # it slowly holds its own thread, not one of the slots every caller needs.
                request = self._fast_request(conn, buf, end) if fast else None
                if request is None:
                    buf = self._preread(conn, buf, end)
                with self._count_lock:
                    self._in_flight += 1
                try:
                    if request is None:
                        with self._slots:
                            keep, buf = self._via_wsgi(conn, addr, server, buf)
                    else:
                        keep, buf = self._fast_invoke(conn, request)
                finally:
                    with self._count_lock:
                        self._in_flight -= 1
                if not keep:
                    break
        except (_Closed, OSError):
            pass
        except Exception:  # a bug in this worker: the connection goes, the worker stays
            self.log.exception("error while serving a connection")
        finally:
            with self._count_lock:
                self._connections -= 1
            util.close(conn)

    def _read_head(self, conn: socket.socket, buf: bytes, first: bool = False) -> tuple[bytes, int]:
        """Bytes up to at least the end of the next request's head, and where that end is
        (-1 when the head is over HEAD_LIMIT: gunicorn's parser then answers it)."""
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            return buf, end
        deadline = time.monotonic() + HEAD_TIMEOUT_S if buf else None
        if deadline is None:
            with self._count_lock:
                self._idle[conn] = time.monotonic() + (FIRST_REQUEST_GRACE_S if first else IDLE_GRACE_S)
        while end < 0:
            if len(buf) > HEAD_LIMIT:
                return buf, -1
            if deadline is None:
                kernel_timeout(conn, self.cfg.keepalive or None, send=False)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Closed()
                kernel_timeout(conn, left, send=False)
            try:
                data = conn.recv(65536)
            except (BlockingIOError, TimeoutError):  # the kernel's deadline (SO_RCVTIMEO) ran out
                raise _Closed() from None
            finally:
                if deadline is None:
                    with self._count_lock:
                        self._idle.pop(conn, None)
            if not data:
                raise _Closed()
            if deadline is None:
                deadline = time.monotonic() + HEAD_TIMEOUT_S
            buf += data
            end = buf.find(b"\r\n\r\n", max(0, len(buf) - len(data) - 3))
        return buf, end

    def _fast_request(self, conn: socket.socket, buf: bytes, end: int) -> _FastRequest | None:
        """An Invoke request that needs nothing of HTTP beyond a Content-Length body, its body
        read (within BODY_TIMEOUT_S in all); None leaves the request (untouched) to the WSGI path."""
        cfg = self.cfg
        if end < 0 or end > HEAD_LIMIT or not buf.startswith(INVOKE_PREFIX):
            return None
        try:
            head = parse_head(
                buf[:end],
                max_line=cfg.limit_request_line or None,
                max_fields=cfg.limit_request_fields,
                max_field_size=cfg.limit_request_field_size or None,
            )
            length = content_length(head)
        except BadHead:
            return None  # gunicorn's parser answers it
        if head.version != "HTTP/1.1" or head.repeated or not head.target.isascii():
            return None  # HTTP/1.0, repeated headers (a second Content-Length...): gunicorn decides
        path, _, query = head.target.partition("?")
        if "%" in path:
            try:
                path = unquote(path, errors="strict")
            except UnicodeDecodeError:
                return None
        match = _INVOKE_PATH.fullmatch(path)
        if match is None:
            return None
        headers = head.headers
        if "transfer-encoding" in headers or "expect" in headers or "x-faas-debug-port" in headers or length > SYNC_PAYLOAD_LIMIT:
            return None
        if "origin" in headers or not self._guard.host_allowed(headers.get("host", "")):
            return None  # a web page may be behind it: the app's BrowserGuard decides
        start = end + 4
        body = buf[start : start + length]
        rest = buf[start + length :]
        if len(body) < length:
            body = self._read_body(conn, body, length)
        qualifier = None
        if query:
            values = parse_qs(query, keep_blank_values=True).get("Qualifier")
            qualifier = values[0] if values else None
        return _FastRequest(match.group(1), qualifier, headers, body, rest)

    def _read_body(self, conn: socket.socket, have: bytes, length: int) -> bytes:
        """The body, read within BODY_TIMEOUT_S in all; a big one outside the slots only while
        PREREAD_BUDGET allows (else in a slot, as every body was before)."""
        reserve = length if length > PREREAD_SMALL else 0
        if reserve:
            with self._count_lock:
                if self._reserved + reserve > PREREAD_BUDGET:
                    reserve = 0
                else:
                    self._reserved += reserve
            if not reserve:
                with self._slots:
                    return self._read_body_by_deadline(conn, have, length)
        try:
            return self._read_body_by_deadline(conn, have, length)
        finally:
            if reserve:
                with self._count_lock:
                    self._reserved -= reserve

    @staticmethod
    def _read_body_by_deadline(conn: socket.socket, have: bytes, length: int) -> bytes:
        try:
            return read_body(conn, have, length, time.monotonic() + BODY_TIMEOUT_S)
        except TimeoutError:
            raise _Closed() from None

    def _preread(self, conn: socket.socket, buf: bytes, end: int) -> bytes:
        """For the WSGI path: buf with the request's whole Content-Length body in it (up to
        Invoke's 6 MB), read before a slot is taken, so that gunicorn's parser then reads it
        from memory. Left as it is: a chunked body, Expect: 100-continue, a bigger body, or a
        head the fast parser refuses (gunicorn reads those in the slot, as before)."""
        if end < 0:
            return buf
        try:
            head = parse_head(buf[:end])
            length = content_length(head)
        except BadHead:
            return buf
        start = end + 4
        if length <= len(buf) - start or length > SYNC_PAYLOAD_LIMIT:
            return buf
        if "transfer-encoding" in head.headers or "expect" in head.headers:
            return buf
        return buf[:start] + self._read_body(conn, buf[start:], length)

    def _fast_invoke(self, conn: socket.socket, request: _FastRequest) -> tuple[bool, bytes]:
        """Answer a request whose body is read: a slot only while the platform serves it."""
        headers = request.headers
        with self._slots:
            answer = self._answer(request.function, request.qualifier, headers.get, request.body)
        close = not self.alive or "close" in headers.get("connection", "").lower()
        conn.sendall(self._render(answer, close))
        return not close, request.rest

    def _answer(self, function: str, qualifier: str | None, header: Callable[[str], str | None], body: bytes) -> Answer:
        def read(limit: int) -> bytes:
            if len(body) > limit:
                raise BodyTooLarge(len(body))
            return body

        assert self.platform is not None  # the fast path is taken only once load_wsgi has set it
        try:
            status, headers, payload = invoke_answer(self.platform, function, qualifier, lambda k: header(k.lower()), read)
        except FaasError as e:
            status, headers, payload = error_answer(e)
        except Exception as e:  # a bug: logged, answered as Lambda's 500
            status, headers, payload = error_answer(unexpected_error(e))
        if not any(k == REQUEST_ID_HEADER for k, _ in headers):
            headers = [*headers, (REQUEST_ID_HEADER, request_id())]
        return status, headers, payload

    def _render(self, answer: Answer, close: bool) -> bytes:
        status, headers, body = answer
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, util.http_date(now))
        return render_head(status, headers, len(body), connection="close" if close else "keep-alive", date=self._date[1]) + body

    # ---- everything else: gunicorn's parser and WSGI ---------------------------------------

    def _via_wsgi(self, conn: socket.socket, addr: Any, server: Any, buf: bytes) -> tuple[bool, bytes]:
        """One request through gunicorn's parser and the Flask app; returns (keep the
        connection, bytes already read of the next request)."""
        kernel_timeout(conn, IO_TIMEOUT_S, send=False)
        parser = http.get_parser(self.cfg, conn, addr)
        parser.unreader.unread(buf)
        req = None
        try:
            req = next(parser)
            if not req:
                return False, b""
            if self._handle(req, conn, addr, server):
                # The answer said keep-alive, so the client may send its next request at once: the
                # rest of an unread body (a 413 answered before reading it) is drained, not left to
                # gunicorn's 64 KB drain cap, which would close a connection the client reuses.
                try:
                    if parser.finish_body(deadline=time.monotonic() + HEAD_TIMEOUT_S, max_bytes=LINGER_BYTES):
                        return True, parser.unreader.take_buffered()
                except (ValueError, http.errors.ParseException):
                    pass  # a malformed rest of a body after the answer is out: close, answer nothing more
                return False, b""
            self._linger(parser)
            return False, b""
        except (http.errors.NoMoreData, StopIteration, BlockingIOError, TimeoutError):  # EAGAIN: a deadline ran out
            return False, b""
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("socket error while serving a request")
            return False, b""
        except Exception as e:
            self.handle_error(req, conn, addr, e)
            return False, b""

    def _linger(self, parser: Any) -> None:
        """Before closing, read and discard what is left of the request's body, within a bound.

        An answer given before the body was read (413 RequestTooLargeException on a
        Content-Length over the limit) would otherwise be followed by a close with the body
        still arriving: the kernel then resets the connection, and a client that writes its
        whole body before reading (urllib, http.client) sees the reset, not the answer."""
        try:
            parser.finish_body(deadline=time.monotonic() + LINGER_S, max_bytes=LINGER_BYTES)
        except (OSError, ValueError, http.errors.ParseException):
            pass

    def _handle(self, req: Any, conn: socket.socket, addr: Any, server: Any) -> bool:
        """gunicorn's gthread handle_request, minus its keep-alive bookkeeping."""
        resp = None
        try:
            resp, environ = wsgi.create(req, conn, addr, server, self.cfg)
            environ["wsgi.multithread"] = True
            environ["faas.raw_headers"] = req.headers  # repeats kept apart: gateway/api_routes.py (multiValueHeaders)
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            if getattr(req.body, "failed", False):  # a malformed body: where the next request starts is unknown
                resp.force_close()
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp is not None and resp.headers_sent:
                # Half an answer is out: a 500 now would corrupt it, so the connection goes.
                self.log.exception("error while handling a request")
                return False
            raise
