"""Callers who would starve everyone, and heads or bodies the two parsers must agree on (issue 17).

Finding 4: 64 connections trickling a declared body (as many as the gateway has request
slots), and about 1,000 connections that send nothing (the connection cap), each must leave
a normal Invoke from another client answering 200 within the function's timeout.
Finding 14: a head line gunicorn refuses (bare LF, bare CR, NUL) is refused by the Invoke fast
path too: 400 and the connection closed, nothing after it served.
Finding 13: a malformed chunked body answers 400, not a 500 with a traceback (the module's
gateway is stopped with a check that its log shows no traceback).
"""

from __future__ import annotations

import resource
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from tests.faults.support import PROBE_CODE
from tests.integration.conftest import Gateway

SLOTS = 64  # Config.threads' default: the requests the gateway serves at once
IDLE = 1000  # gunicorn's worker_connections: the gateway's connection cap
PROBE_TIMEOUT_S = 3  # the probe function's timeout (function.yaml's default)


@pytest.fixture(scope="module")
def probe(fault_gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"probe-{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("probe") / name
    folder.mkdir()
    (folder / "function.yaml").write_text(
        f"name: {name}\nruntime: python3.11\nhandler: app.handler\ntimeout: {PROBE_TIMEOUT_S}\n"
    )
    (folder / "app.py").write_text(PROBE_CODE)
    fault_gateway.deploy(folder)
    assert fault_gateway.invoke(name).json() == "pong"
    return name


def _address(gw: Gateway) -> tuple[str, int]:
    host, port = gw.url.rsplit("//", 1)[1].split(":")
    return host, int(port)


def _raw(gw: Gateway, data: bytes, *, timeout: float = 10) -> bytes:
    """Send `data` on a new connection and read until the gateway closes it (or `timeout`)."""
    with socket.create_connection(_address(gw), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = s.recv(65536)
            except TimeoutError:
                break
            if not got:
                return out
            out += got
        raise AssertionError(f"the connection was left open; read {out[:300]!r}")


def _invoke_promptly(gw: Gateway, name: str) -> requests.Response:
    """A normal Invoke on a new connection, given the function's own timeout (and a little)
    to connect and to answer: a caller kept waiting behind others fails it."""
    return requests.post(
        f"{gw.url}/2015-03-31/functions/{name}/invocations",
        data=b'{"probe": true}',
        timeout=(PROBE_TIMEOUT_S + 2, PROBE_TIMEOUT_S + 2),
    )


INVOKE = "/2015-03-31/functions/{name}/invocations"
FUNCTION_URL = "/function/{name}/"  # served by the Flask app, not the fast path


@contextmanager
def _slow_bodies(gw: Gateway, name: str, n: int = SLOTS, path: str = INVOKE) -> Iterator[list[socket.socket]]:
    """n connections, each declaring a 1,000-byte body and sending a byte every 2 s."""
    head = f"POST {path.format(name=name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{{".encode()
    socks = []
    stop = threading.Event()
    try:
        for _ in range(n):
            s = socket.create_connection(_address(gw), timeout=10)
            s.sendall(head)
            socks.append(s)

        def trickle() -> None:
            while not stop.wait(2.0):
                for s in socks:
                    try:
                        s.send(b" ")
                    except OSError:
                        pass

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        time.sleep(1.0)  # every one of them has reached the gateway and is being read
        yield socks
    finally:
        stop.set()
        for s in socks:
            s.close()


@contextmanager
def _idle_connections(gw: Gateway, n: int = IDLE) -> Iterator[list[socket.socket]]:
    """n connections that send nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(_address(gw), timeout=10))
        time.sleep(1.0)
        yield socks
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("path", [INVOKE, FUNCTION_URL])
def test_slow_bodies_leave_other_callers_served(fault_gateway: Gateway, probe: str, path: str) -> None:
    with _slow_bodies(fault_gateway, probe, path=path):
        for _ in range(3):
            r = _invoke_promptly(fault_gateway, probe)
            assert r.status_code == 200 and r.json() == "pong", r.text


def test_idle_connections_leave_other_callers_served(fault_gateway: Gateway, probe: str) -> None:
    with _idle_connections(fault_gateway):
        for _ in range(3):
            r = _invoke_promptly(fault_gateway, probe)
            assert r.status_code == 200 and r.json() == "pong", r.text


def test_slow_bodies_and_idle_connections_together(fault_gateway: Gateway, probe: str) -> None:
    with _slow_bodies(fault_gateway, probe), _idle_connections(fault_gateway, IDLE - SLOTS):
        for _ in range(3):
            r = _invoke_promptly(fault_gateway, probe)
            assert r.status_code == 200 and r.json() == "pong", r.text
    # and the gateway is itself again: a keep-alive caller is not cut off between calls
    with requests.Session() as session:
        for _ in range(3):
            r = session.post(f"{fault_gateway.url}/2015-03-31/functions/{probe}/invocations", data=b"{}", timeout=10)
            assert r.status_code == 200


def _invoke_head(name: str, *lines: bytes) -> bytes:
    return f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: 127.0.0.1".encode() + b"".join(lines)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"\r\nX-A: a\nContent-Length: 2", id="bare LF"),
        pytest.param(b"\r\nX-A: a\rContent-Length: 2", id="bare CR"),
        pytest.param(b"\r\nX-A: a\x00b\r\nContent-Length: 2", id="NUL"),
    ],
)
def test_a_head_line_gunicorn_refuses_is_refused_on_the_fast_path(fault_gateway: Gateway, probe: str, line: bytes) -> None:
    # The same connection then carries a second request: served, it would show that the
    # two parsers disagreed on where the first one ended.
    second = _invoke_head(probe, b"\r\nContent-Length: 2\r\n\r\n{}")
    out = _raw(fault_gateway, _invoke_head(probe, line, b"\r\n\r\n{}") + second)
    assert out.startswith(b"HTTP/1.1 400 "), out[:300]
    assert out.count(b"HTTP/1.1 ") == 1, out
    assert b"pong" not in out


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"2;ext\rx\r\n{}\r\n0\r\n\r\n", id="bare CR in a chunk extension"),
        pytest.param(b"2x\r\n{}\r\n0\r\n\r\n", id="a chunk size that is not hex"),
        pytest.param(b"2\r\n{}XX0\r\n\r\n", id="no CRLF after a chunk"),
    ],
)
@pytest.mark.parametrize("path", ["/2015-03-31/functions/{name}/invocations", "/function/{name}/"])
def test_a_malformed_chunked_body_is_a_400(fault_gateway: Gateway, probe: str, body: bytes, path: str) -> None:
    target = path.format(name=probe)
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    out = _raw(fault_gateway, head.encode() + body)
    assert out.startswith(b"HTTP/1.1 400 "), out[:500]
    assert b"Traceback" not in out and b"internal error" not in out, out


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"2;ext\rx\r\n{}\r\n0\r\n\r\n", id="bare CR in a chunk extension"),
        pytest.param(b"2x\r\n{}\r\n0\r\n\r\n", id="a chunk size that is not hex"),
    ],
)
def test_an_answer_given_before_a_malformed_body_is_the_only_one(fault_gateway: Gateway, probe: str, body: bytes) -> None:
    """A request refused before its body is read (here by the browser guard) gets that one JSON
    answer and a close, not gunicorn's HTML 400 page after it from draining the malformed rest."""
    target = f"/2015-03-31/functions/{probe}/invocations"
    head = f"POST {target} HTTP/1.1\r\nHost: evil.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    out = _raw(fault_gateway, head.encode() + body)
    assert out.startswith(b"HTTP/1.1 403 "), out[:500]
    assert out.count(b"HTTP/1.1 ") == 1 and b"<html" not in out.lower(), out
