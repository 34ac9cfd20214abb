"""The gateway worker's HTTP handling (gateway/worker.py), through a real `faas up` on loopback.

Invoke requests are answered by the worker's own fast path; everything else, and any Invoke
request it passes over (chunked, Expect: 100-continue, HTTP/1.0, odd heads), by gunicorn's
parser and the Flask app. A client must not be able to tell which: same answers, keep-alive
across both, pipelined requests answered in order, heads arriving a byte at a time.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import quote, urlsplit

import pytest

from tests.integration.conftest import Gateway

pytestmark = pytest.mark.integration

CODE = "def handler(event, context):\n    return {'got': event}\n"


@pytest.fixture(scope="module")
def echo(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("worker") / "echo-worker"
    folder.mkdir()
    (folder / "function.yaml").write_text("name: echo-worker\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text(CODE)
    gateway.deploy(folder)
    return "echo-worker"


def connect(gateway: Gateway) -> socket.socket:
    url = urlsplit(gateway.url)
    return socket.create_connection((url.hostname, url.port), timeout=30)


class Reader:
    """Reads HTTP/1.1 responses off one socket, keeping what it read past each."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the gateway closed the connection"
        self.buf += data

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status == 100:
            return self.response()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body, self.buf = body + self.buf[:size], self.buf[size + 2 :]
                if size == 0:
                    return status, headers, body
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def invoke_request(name: str, payload: bytes, extra: str = "") -> bytes:
    return (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {len(payload)}\r\n{extra}\r\n"
    ).encode() + payload


def test_one_connection_serves_invokes_and_other_routes_in_turn(gateway: Gateway, echo: str) -> None:
    with connect(gateway) as sock:
        r = Reader(sock)
        for i in range(3):
            sock.sendall(invoke_request(echo, json.dumps({"i": i}).encode()))
            status, headers, body = r.response()
            assert status == 200 and json.loads(body) == {"got": {"i": i}}
            assert headers["x-amz-executed-version"] == "1" and headers["x-amzn-requestid"]
            sock.sendall(b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, _, body = r.response()
            assert status == 200 and echo in {f["FunctionName"] for f in json.loads(body)["Functions"]}


def test_pipelined_requests_are_answered_in_order(gateway: Gateway, echo: str) -> None:
    batch = b"".join(invoke_request(echo, json.dumps({"n": n}).encode()) for n in range(5))
    batch += b"GET /system/functions HTTP/1.1\r\nHost: localhost\r\n\r\n"
    batch += invoke_request(echo, b'{"n": 5}')
    with connect(gateway) as sock:
        sock.sendall(batch)
        r = Reader(sock)
        answers = [r.response() for _ in range(7)]
    assert [json.loads(b) for s, _, b in answers[:5]] == [{"got": {"n": n}} for n in range(5)]
    assert answers[5][0] == 200 and echo in answers[5][2].decode()
    assert json.loads(answers[6][2]) == {"got": {"n": 5}}


def test_a_head_and_body_arriving_a_byte_at_a_time(gateway: Gateway, echo: str) -> None:
    data = invoke_request(echo, b'{"slow": true}', "X-Amz-Log-Type: Tail\r\n")
    with connect(gateway) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.send(data[i : i + 1])
            if i % 16 == 0:
                time.sleep(0.001)
        status, headers, body = Reader(sock).response()
    assert status == 200 and json.loads(body) == {"got": {"slow": True}}
    assert "X-Amz-Log-Result".lower() in headers


@pytest.mark.parametrize("how", ["chunked", "expect-100", "http/1.0"])
def test_invokes_the_fast_path_passes_over_give_the_same_answer(gateway: Gateway, echo: str, how: str) -> None:
    payload = b'{"via": "wsgi"}'
    if how == "chunked":
        data = (
            f"POST /2015-03-31/functions/{echo}/invocations HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    elif how == "expect-100":
        data = invoke_request(echo, b"", "Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(payload)
        )
    else:
        data = invoke_request(echo, payload).replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1)
    with connect(gateway) as sock:
        if how == "expect-100":
            sock.sendall(data)
            first = sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 100 Continue"), first
            sock.sendall(payload)
            reader = Reader(sock)
            reader.buf = first[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        else:
            sock.sendall(data)
            reader = Reader(sock)
        status, headers, body = reader.response()
    assert status == 200 and json.loads(body) == {"got": {"via": "wsgi"}}
    assert headers["x-amz-executed-version"] == "1" and headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "target,error",
    [
        ("nope-{uid}", "ResourceNotFoundException"),
        ("bad name!", "InvalidParameterValueException"),
    ],
)
def test_errors_are_the_same_from_both_paths(gateway: Gateway, target: str, error: str) -> None:
    name = quote(target.format(uid=int(time.time() * 1000)))
    fast = invoke_request(name, b"{}")
    slow = (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    answers = []
    for data in (fast, slow):
        with connect(gateway) as sock:
            sock.sendall(data)
            answers.append(Reader(sock).response())
    (s1, h1, b1), (s2, h2, b2) = answers
    assert s1 == s2 and s1 in (400, 404)
    assert h1["x-amzn-errortype"] == h2["x-amzn-errortype"]
    assert h1["x-amzn-errortype"] == error
    assert json.loads(b1) == json.loads(b2) and json.loads(b1)["Type"] == "User"
    assert h1["x-amzn-requestid"] and h2["x-amzn-requestid"]


def test_an_arn_encoded_in_the_path(gateway: Gateway, echo: str) -> None:
    arn = quote(f"arn:aws:lambda:us-east-1:123456789012:function:{echo}", safe="")
    with connect(gateway) as sock:
        sock.sendall(invoke_request(arn, b'{"arn": 1}'))
        status, _, body = Reader(sock).response()
    assert status == 200 and json.loads(body) == {"got": {"arn": 1}}


def test_a_qualifier_in_the_query_string(gateway: Gateway, echo: str) -> None:
    with connect(gateway) as sock:
        r = Reader(sock)
        sock.sendall(invoke_request(echo, b'{"q": 1}').replace(b"/invocations ", b"/invocations?Qualifier=1 ", 1))
        status, headers, body = r.response()
        assert status == 200 and json.loads(body) == {"got": {"q": 1}} and headers["x-amz-executed-version"] == "1"
        sock.sendall(invoke_request(echo, b"{}").replace(b"/invocations ", b"/invocations?Qualifier=99 ", 1))
        status, headers, body = r.response()
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_connection_close_is_honoured(gateway: Gateway, echo: str) -> None:
    with connect(gateway) as sock:
        sock.sendall(invoke_request(echo, b"{}", "Connection: close\r\n"))
        r = Reader(sock)
        status, headers, _ = r.response()
        assert status == 200 and headers["connection"] == "close"
        assert sock.recv(1) == b"", "the gateway closed the connection after the answer"


def test_bad_heads_get_gunicorns_answers_and_the_gateway_carries_on(gateway: Gateway, echo: str) -> None:
    cases = [
        (b"POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nHost: l\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
        (b"POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"POST /2015-03-31/functions/" + b"a" * 5000 + b"/invocations HTTP/1.1\r\n\r\n", 414),
        (b"GARBAGE\r\n\r\n", 400),
    ]
    for data, status in cases:
        with connect(gateway) as sock:
            sock.sendall(data)
            got = Reader(sock).response()[0]
            assert got == status or (status == 400 and got in (400, 431)), (data[:60], got)
    with connect(gateway) as sock:  # a client that hangs up mid-body
        sock.sendall(invoke_request(echo, b'{"x": "' + b"y" * 10000 + b'"}')[:200])
    with connect(gateway) as sock:
        sock.sendall(invoke_request(echo, b'{"after": 1}'))
        status, _, body = Reader(sock).response()
    assert status == 200 and json.loads(body) == {"got": {"after": 1}}


def test_an_oversized_body_is_refused_like_lambda(gateway: Gateway, echo: str) -> None:
    size = 6 * 1024 * 1024 + 10
    head = (
        f"POST /2015-03-31/functions/{echo}/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with connect(gateway) as sock:
        sock.sendall(head)
        status, headers, body = Reader(sock).response()
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException"
    assert "Request must be smaller than 6291456 bytes" in json.loads(body)["Message"]


def test_a_client_that_sends_its_whole_oversized_body_first_still_reads_the_413(gateway: Gateway, echo: str) -> None:
    """urllib writes the whole body before it reads: the gateway answers 413 on the
    Content-Length alone, and must read (and drop) the body before it closes, or the
    client sees a reset instead of the answer."""
    import urllib.error
    import urllib.request

    body = b"x" * (7 * 1024 * 1024)
    request = urllib.request.Request(f"{gateway.url}/2015-03-31/functions/{echo}/invocations", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert caught.value.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    assert "Request must be smaller than 6291456 bytes" in json.loads(caught.value.read())["Message"]
