"""runtime_api: parsing, routing to messages, replies, the server and the direct path, over
socketpair() and a unix socket in a temporary folder (no containers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.invoke import runtime_api as ra
from faas.invoke.environment import _exit_outcome
from faas.invoke.http1 import BadHead, content_length, parse_head, render_head
from faas.invoke.sockio import SocketReader
from faas.models import Invocation

RID = "8f1c2a7e-1111-2222-3333-444455556666"
NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def response(rid: str = RID, body: bytes = b'{"ok": true}') -> bytes:
    return post(f"/2018-06-01/runtime/invocation/{rid}/response", body)


def parse(pair, *pieces: bytes, close: bool = True) -> list[ra.Request | None]:
    """Every request the server side reads from pieces sent one after the other."""
    server, runtime = pair

    def send() -> None:
        for piece in pieces:
            runtime.sendall(piece)
            time.sleep(0.01)
        if close:
            runtime.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    reader = SocketReader(server)
    out: list[ra.Request | None] = []
    try:
        while True:
            req = ra.read_request(reader)
            out.append(req)
            if req is None:
                return out
    finally:
        sender.join(10)


# ---- parsing -------------------------------------------------------------------------

GOOD = [
    # (what the runtime sends, in pieces; (method, path, a header, body) of each request read)
    ([NEXT], [("GET", "/2018-06-01/runtime/invocation/next", ("host", "x"), b"")]),
    ([response()], [("POST", f"/2018-06-01/runtime/invocation/{RID}/response", ("content-length", "12"), b'{"ok": true}')]),
    (
        [b"GET /faas/v1/environment?x=1 HTTP/1.1\r\nFAAS-Direct:  2 \r\n\r\n"],
        [("GET", "/faas/v1/environment", ("faas-direct", "2"), b"")],
    ),
    # split across reads: in the request line, in a header, between head and body, in the body
    (
        [b"GET /2018-06-01/runtime/invo", b"cation/next HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"],
        [("GET", "/2018-06-01/runtime/invocation/next", ("host", "x"), b"")],
    ),
    (
        [response()[:-12], b'{"ok":', b" true}"],
        [("POST", f"/2018-06-01/runtime/invocation/{RID}/response", ("host", "x"), b'{"ok": true}')],
    ),
    # bare LF line ends, read line by line
    (
        [b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\n", b"Host: y\n\n"],
        [("GET", "/2018-06-01/runtime/invocation/next", ("host", "y"), b"")],
    ),
    # two requests in one write (pipelined)
    (
        [NEXT + response()],
        [
            ("GET", "/2018-06-01/runtime/invocation/next", ("host", "x"), b""),
            ("POST", f"/2018-06-01/runtime/invocation/{RID}/response", ("host", "x"), b'{"ok": true}'),
        ],
    ),
    # a repeated header other than Content-Length: values joined
    ([b"GET /x HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n"], [("GET", "/x", ("x-a", "1, 2"), b"")]),
]


@pytest.mark.parametrize("pieces,expected", GOOD)
def test_good_heads(pair, pieces, expected) -> None:
    got = parse(pair, *pieces)
    assert got[-1] is None  # then the end of the stream
    assert [
        (r.method, r.path, (k, r.headers.get(k)), r.body) for r, (_, _, (k, _), _) in zip(got[:-1], expected, strict=True)
    ] == expected


BAD = [
    b"GARBAGE\r\n\r\n",
    b"GET /x\r\n\r\n",
    b"GET  /x HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1 extra\r\n\r\n",
    b"\r\n\r\n",
    b"GET /x HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET /x HTTP/1.1\r\nName : v\r\n\r\n",
    b"GET /x HTTP/1.1\r\n Folded: v\r\n\r\n",
    b"GET /x HTTP/1.1\r\n: empty name\r\n\r\n",
    # Content-Length: negative, not a number, empty, signed, spaced, given twice
    post("/2018-06-01/runtime/init/error", b"").replace(b"Content-Length: 0", b"Content-Length: -3") + b"abc",
    post("/2018-06-01/runtime/init/error", b"").replace(b"Content-Length: 0", b"Content-Length: abc"),
    post("/2018-06-01/runtime/init/error", b"").replace(b"Content-Length: 0", b"Content-Length: "),
    post("/2018-06-01/runtime/init/error", b"").replace(b"Content-Length: 0", b"Content-Length: +2") + b"{}",
    post("/2018-06-01/runtime/init/error", b"").replace(b"Content-Length: 0", b"Content-Length: 1 1") + b"{}",
    post("/2018-06-01/runtime/init/error", b"{}", "Content-Length: 2\r\n"),
    post("/2018-06-01/runtime/init/error", b"{}", "Content-Length: 3\r\n"),
    post("/2018-06-01/runtime/init/error", b"{}", "content-length: 0x2\r\n"),
]


@pytest.mark.parametrize("data", BAD)
def test_bad_heads_are_protocol_errors(pair, data) -> None:
    with pytest.raises(ra.ProtocolError):
        parse(pair, data)


def test_a_head_over_the_limit_is_a_protocol_error(pair) -> None:
    head = b"GET /x HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(80)) + b"\r\n"
    with pytest.raises(ra.ProtocolError, match="too large"):
        parse(pair, head)


@pytest.mark.parametrize(
    "pieces",
    [
        [b""],  # nothing at all
        [b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost"],  # in the middle of a head
        [response()[:-4]],  # in the middle of a body
    ],
)
def test_end_of_stream(pair, pieces) -> None:
    assert parse(pair, *pieces) == [None]


def test_an_oversized_response_is_discarded_and_the_next_request_read(pair) -> None:
    size = ra.RESPONSE_LIMIT + 1
    big = post(f"/2018-06-01/runtime/invocation/{RID}/response", b"x" * size)
    got = parse(pair, big, NEXT)
    assert got[0] is not None and got[0].oversize == size and got[0].body == b""
    assert got[1] is not None and got[1].path == "/2018-06-01/runtime/invocation/next"
    assert got[2] is None


def test_a_large_error_or_init_error_is_not_cut(pair) -> None:
    body = b"e" * (ra.RESPONSE_LIMIT + 1)
    [req, end] = parse(pair, post("/2018-06-01/runtime/init/error", body))
    assert req is not None and req.body == body and not req.oversize and end is None


# ---- the shared head parser's own rules (used by the gateway worker too) ---------------------


@pytest.mark.parametrize(
    "head,limits,ok",
    [
        (b"POST /x HTTP/1.1\r\nA: 1", {}, True),
        (b"POST /x HTTP/1.1\r\nA: 1", {"max_line": 16}, True),
        (b"POST /x HTTP/1.1\r\nA: 1", {"max_line": 15}, False),
        (b"POST /x HTTP/1.1\r\nA: 1\r\nB: 2", {"max_fields": 2}, True),
        (b"POST /x HTTP/1.1\r\nA: 1\r\nB: 2", {"max_fields": 1}, False),
        (b"POST /x HTTP/1.1", {"max_fields": 0}, True),
        (b"POST /x HTTP/1.1\r\nA: 1", {"max_fields": 0}, False),
        (b"POST /x HTTP/1.1\r\nA: 123", {"max_field_size": 6}, True),
        (b"POST /x HTTP/1.1\r\nA: 1234", {"max_field_size": 6}, False),
        (b"POST /x HTTP/1.1\r\n\x0bA: 1", {}, False),
        (b"POST /x HTTP/1.1\r\nA\t: 1", {}, False),
        (b"POST /x HTTP/1.1\r\nA:\t 1 \t", {}, True),
    ],
)
def test_parse_head_rules(head, limits, ok) -> None:
    if ok:
        parsed = parse_head(head, **limits)
        assert parsed.method == "POST" and parsed.target == "/x" and parsed.version == "HTTP/1.1"
        assert all(v == v.strip(" \t") for v in parsed.headers.values())
    else:
        with pytest.raises(BadHead):
            parse_head(head, **limits)


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, 0),
        ("0", 0),
        ("12", 12),
        ("007", 7),
        ("9" * 40, 10**18),
        ("-3", BadHead),
        ("abc", BadHead),
        ("", BadHead),
        ("1.5", BadHead),
        ("١٢", BadHead),
        ("+1", BadHead),
    ],
)
def test_content_length(value, expected) -> None:
    head = parse_head(b"POST /x HTTP/1.1" + (b"" if value is None else f"\r\nContent-Length: {value}".encode()))
    if expected is BadHead:
        with pytest.raises(BadHead):
            content_length(head)
    else:
        assert content_length(head) == expected


def test_content_length_given_twice_even_alike() -> None:
    with pytest.raises(BadHead, match="more than once"):
        content_length(parse_head(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2"))


# ---- routing to messages ----------------------------------------------------------------------


def request(method: str, path: str, body: bytes = b"", oversize: int = 0, **headers: str) -> ra.Request:
    return ra.Request(method, path, {k.replace("_", "-"): v for k, v in headers.items()}, body, oversize)


INV = f"/2018-06-01/runtime/invocation/{RID}"


@pytest.mark.parametrize(
    "req,message",
    [
        (request("GET", "/2018-06-01/runtime/invocation/next"), ra.NextEvent(None)),
        (request("GET", "/2018-06-01/runtime/invocation/next", faas_direct="2"), ra.NextEvent("2")),
        (request("GET", "/faas/v1/environment"), ra.EnvironmentQuery()),
        (request("POST", f"{INV}/response", b"{}"), ra.Result(RID, b"{}")),
        (request("POST", f"{INV}/response", oversize=7_000_000), ra.Oversized(RID, 7_000_000)),
        (request("POST", f"{INV}/error", b"{}"), ra.FunctionError(RID, b"{}", "Unhandled")),
        (
            request("POST", f"{INV}/error", b"{}", lambda_runtime_function_error_type="Function.Boom"),
            ra.FunctionError(RID, b"{}", "Function.Boom"),
        ),
        (request("POST", "/2018-06-01/runtime/init/error", b"{}"), ra.InitError(b"{}", "Runtime.Unknown")),
        (
            request(
                "POST", "/2018-06-01/runtime/init/error", b"{}", lambda_runtime_function_error_type="Runtime.ImportModuleError"
            ),
            ra.InitError(b"{}", "Runtime.ImportModuleError"),
        ),
        (request("POST", "/2018-06-01/runtime/invocation/next"), ra.Unknown("POST", "/2018-06-01/runtime/invocation/next")),
        (request("GET", f"{INV}/response"), ra.Unknown("GET", f"{INV}/response")),
        (request("POST", f"{INV}/response/more"), ra.Unknown("POST", f"{INV}/response/more")),
        (request("POST", f"{INV}/other"), ra.Unknown("POST", f"{INV}/other")),
        (request("POST", "/elsewhere/response", oversize=7_000_000), ra.Unknown("POST", "/elsewhere/response")),
        (request("DELETE", "/"), ra.Unknown("DELETE", "/")),
    ],
)
def test_routing_to_messages(req, message) -> None:
    got = ra.message_of(req)
    assert type(got) is type(message) and got == message


class Handler:
    """A RuntimeHandler that records what it was given and answers with set statuses."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.calls: list[tuple] = []
        self.parked: list[ra.DirectConnection] = []
        self.inbox: list[Invocation] = []

    def on_environment(self) -> bytes | None:
        return b'{"handler": "app.handler"}'

    def on_next(self) -> Invocation | None:
        return self.inbox.pop(0) if self.inbox else None

    def park(self, direct: ra.DirectConnection) -> bool:
        if self.parked:  # as an Environment: the first direct connection is the runtime's own
            return False
        self.parked.append(direct)
        return True

    @property
    def has_direct(self) -> bool:
        return bool(self.parked)

    def on_undelivered(self, request_id: str) -> None:
        self.calls.append(("undelivered", request_id))

    def on_response(self, request_id: str, body: bytes) -> int:
        self.calls.append(("response", request_id, body))
        return self.status

    def on_error(self, request_id: str, body: bytes, error_type: str) -> int:
        self.calls.append(("error", request_id, body, error_type))
        return self.status

    def on_init_error(self, body: bytes, error_type: str) -> int:
        self.calls.append(("init_error", body, error_type))
        return 202

    def on_oversized_response(self, request_id: str, size: int) -> int:
        self.calls.append(("oversized", request_id, size))
        return 413


@pytest.mark.parametrize(
    "msg,call,status,body",
    [
        (ra.Result(RID, b"{}"), ("response", RID, b"{}"), 202, {"status": "OK"}),
        (ra.FunctionError(RID, b"{}", "E"), ("error", RID, b"{}", "E"), 202, {"status": "OK"}),
        (ra.InitError(b"{}", "E"), ("init_error", b"{}", "E"), 202, {"status": "OK"}),
        (
            ra.Oversized(RID, 7_000_000),
            ("oversized", RID, 7_000_000),
            413,
            {
                "errorMessage": "Response payload size (7000000 bytes) exceeded maximum allowed payload size (6291456 bytes).",
                "errorType": "RequestEntityTooLarge",
            },
        ),
    ],
)
def test_settle_hands_the_message_over_and_replies(msg, call, status, body) -> None:
    h = Handler()
    reply = ra.settle(msg, h)
    assert h.calls == [call]
    assert reply.status == status and json.loads(reply.body) == body


def test_a_refused_result_says_so_in_its_body() -> None:
    """The environment refuses (400) a result for a call that is not in flight: the body says
    so in the Runtime API's error shape, not {"status": "OK"} (it did before)."""
    reply = ra.settle(ra.Result("not-the-call", b"{}"), Handler(status=400))
    assert reply.status == 400
    assert json.loads(reply.body) == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}


# ---- rendered replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply,close,expected",
    [
        (ra.Reply(202, ra.ACCEPTED), False, b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n"),
        (ra.Reply(202, ra.ACCEPTED), True, b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"),
        (
            ra.Reply(200, b"{}", (("Content-Type", "application/json"),)),
            False,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n",
        ),
        (ra.Reply(413, b""), False, b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n"),
        (ra.Reply(599, b""), False, b"HTTP/1.1 599 Status\r\nContent-Length: 0\r\n\r\n"),
    ],
)
def test_encode_head(reply, close, expected) -> None:
    assert ra.encode_head(reply, close) == expected


def test_render_head_as_the_gateway_uses_it() -> None:
    got = render_head(
        404, [("x-amzn-ErrorType", "ResourceNotFoundException")], 3, connection="keep-alive", date="Fri, 04 Dec 2026 12:00:00 GMT"
    )
    assert got == (
        b"HTTP/1.1 404 Not Found\r\nDate: Fri, 04 Dec 2026 12:00:00 GMT\r\nContent-Length: 3\r\n"
        b"x-amzn-ErrorType: ResourceNotFoundException\r\nConnection: keep-alive\r\n\r\n"
    )


def invocation(rid: str = RID, payload: bytes = b'{"a": 1}', **kw) -> Invocation:
    fields = dict(
        request_id=rid,
        payload=payload,
        deadline=time.monotonic() + 30,
        deadline_epoch_ms=1_700_000_000_000,
        invoked_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        trace_id="Root=1-abc",
        **kw,
    )
    return Invocation(**fields)  # type: ignore[arg-type]


def test_next_reply_carries_lambdas_headers() -> None:
    reply = ra.next_reply(invocation(client_context="ctx", identity="id"))
    headers = dict(reply.headers)
    assert reply.status == 200 and reply.body == b'{"a": 1}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == RID
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
    assert headers["Lambda-Runtime-Client-Context"] == "ctx" and headers["Lambda-Runtime-Cognito-Identity"] == "id"


# ---- the server, over its unix socket -------------------------------------------------------------


class Client:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.buf = b""

    def reply(self) -> tuple[int, dict[str, str], bytes] | None:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split(" ")[1]), headers, body

    def closed(self) -> bool:
        return self.sock.recv(1) == b""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ra.RuntimeApiServer, Handler]]:
    h = Handler()
    s = ra.RuntimeApiServer(tmp_path / "rt.sock", h, name="test")
    yield s, h
    s.close()


def test_server_routes_and_answers(server) -> None:
    s, h = server
    c = Client(s.socket_path)
    c.sock.sendall(b"GET /faas/v1/environment HTTP/1.1\r\n\r\n")
    assert c.reply() == (200, {"content-length": "26", "content-type": "application/json"}, b'{"handler": "app.handler"}')
    h.inbox.append(invocation())
    c.sock.sendall(NEXT)
    status, headers, body = c.reply()  # type: ignore[misc]
    assert status == 200 and headers["lambda-runtime-aws-request-id"] == RID and body == b'{"a": 1}'
    c.sock.sendall(response())
    assert c.reply() == (202, {"content-length": "15"}, ra.ACCEPTED)
    c.sock.sendall(post(f"{INV}/error", b"{}", "Lambda-Runtime-Function-Error-Type: Function.X\r\n"))
    assert c.reply()[0] == 202  # type: ignore[index]
    c.sock.sendall(b"GET /nope HTTP/1.1\r\n\r\n")
    status, _, body = c.reply()  # type: ignore[misc]
    assert status == 404 and json.loads(body) == {"errorMessage": "unknown route GET /nope", "errorType": "InvalidRequest"}
    assert h.calls == [("response", RID, b'{"ok": true}'), ("error", RID, b"{}", "Function.X")]


def test_server_refuses_a_result_for_another_call(server) -> None:
    s, h = server
    h.status = 400
    c = Client(s.socket_path)
    c.sock.sendall(response("someone-else"))
    status, _, body = c.reply()  # type: ignore[misc]
    assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"


@pytest.mark.parametrize("bad", [b"-3", b"abc", b"2\r\nContent-Length: 2"])
def test_server_refuses_a_bad_content_length_and_closes(server, bad) -> None:
    s, h = server
    c = Client(s.socket_path)
    c.sock.sendall(response().replace(b"Content-Length: 12", b"Content-Length: " + bad))
    status, headers, body = c.reply()  # type: ignore[misc]
    assert status == 400 and headers["connection"] == "close"
    assert json.loads(body)["errorType"] == "InvalidRequest"
    assert c.closed()
    assert h.calls == []


def test_server_answers_an_oversized_response_and_carries_on(server) -> None:
    s, h = server
    c = Client(s.socket_path)
    size = ra.RESPONSE_LIMIT + 10
    threading.Thread(
        target=c.sock.sendall, args=(post(f"{INV}/response", b"x" * size) + b"GET /faas/v1/environment HTTP/1.1\r\n\r\n",)
    ).start()
    status, _, body = c.reply()  # type: ignore[misc]
    assert status == 413 and json.loads(body)["errorType"] == "RequestEntityTooLarge"
    assert c.reply()[0] == 200  # type: ignore[index]
    assert h.calls == [("oversized", RID, size)]


def test_server_hands_a_direct_runtime_its_connection(server) -> None:
    s, h = server
    c = Client(s.socket_path)
    c.sock.sendall(NEXT.replace(b"Host: x\r\n", b"Host: x\r\nFaas-Direct: 1\r\n"))
    deadline = time.monotonic() + 5
    while not h.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.parked and not h.parked[0].ahead


@pytest.mark.parametrize(
    "second",
    [
        NEXT.replace(b"Host: x\r\n", b"Host: x\r\nFaas-Direct: 1\r\n"),  # take the connection over
        NEXT,  # or just ask for the next event
        response(),  # or answer in the runtime's place
    ],
)
def test_server_refuses_a_second_connection_while_the_runtime_is_driven_directly(server, second) -> None:
    s, h = server
    own = Client(s.socket_path)
    own.sock.sendall(NEXT.replace(b"Host: x\r\n", b"Host: x\r\nFaas-Direct: 1\r\n"))
    deadline = time.monotonic() + 5
    while not h.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    h.inbox.append(invocation())  # an event waiting: the intruder must not get it
    intruder = Client(s.socket_path)
    intruder.sock.sendall(second)
    status, headers, body = intruder.reply()  # type: ignore[misc]
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"
    assert headers["connection"] == "close" and intruder.closed()
    assert len(h.parked) == 1 and h.parked[0].conn is not None and h.inbox and h.calls == []


# ---- the direct path ----------------------------------------------------------------------------


def direct(pair, ahead: bool = False) -> tuple[ra.DirectConnection, socket.socket]:
    server, runtime = pair
    runtime.settimeout(10)
    return ra.DirectConnection(server, SocketReader(server), ahead=ahead), runtime


def recv_reply(sock: socket.socket) -> tuple[int, bytes]:
    c = Client.__new__(Client)
    c.sock, c.buf = sock, b""
    status, _, body = c.reply()  # type: ignore[misc]
    return status, body


@pytest.mark.parametrize(
    "sent,message",
    [
        (response(), ra.Result(RID, b'{"ok": true}')),
        (
            post(f"{INV}/error", b'{"errorType": "X"}', "Lambda-Runtime-Function-Error-Type: Function.X\r\n"),
            ra.FunctionError(RID, b'{"errorType": "X"}', "Function.X"),
        ),
    ],
)
def test_direct_exchange_returns_the_end_of_the_call(pair, sent, message) -> None:
    d, runtime = direct(pair)
    runtime.sendall(sent)  # sent ahead: the exchange writes the event, then reads this
    assert d.exchange(invocation(), time.monotonic() + 5) == message
    assert recv_reply(runtime)[1] == b'{"a": 1}'
    d.reply(ra.settle(message, Handler()))
    assert recv_reply(runtime) == (202, ra.ACCEPTED)
    assert d.pending_next  # the next call first reads the runtime's GET next


@pytest.mark.parametrize("sent", [response("another-call"), NEXT, post("/2018-06-01/runtime/init/error", b"{}")])
def test_direct_exchange_refuses_anything_but_this_calls_end(pair, sent) -> None:
    d, runtime = direct(pair)
    runtime.sendall(sent)
    with pytest.raises(ra.ProtocolError, match="during a call"):
        d.exchange(invocation(), time.monotonic() + 5)


@pytest.mark.parametrize("bad", [b"-3", b"abc", b"12\r\nContent-Length: 12"])
def test_direct_path_refuses_a_bad_content_length_and_closes(pair, bad) -> None:
    d, runtime = direct(pair)
    runtime.sendall(response().replace(b"Content-Length: 12", b"Content-Length: " + bad))
    with pytest.raises(ra.ProtocolError):
        d.exchange(invocation(), time.monotonic() + 5)
    data = b""
    while chunk := runtime.recv(65536):
        data += chunk
    event_reply, _, refusal = data.partition(b'{"a": 1}')  # the event went first
    assert event_reply.startswith(b"HTTP/1.1 200 OK")
    assert refusal.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close\r\n" in refusal


def test_direct_ahead_sends_the_answer_with_the_next_event(pair) -> None:
    d, runtime = direct(pair, ahead=True)
    runtime.sendall(response())
    msg = d.exchange(invocation(), time.monotonic() + 5)
    recv_reply(runtime)
    d.reply(ra.settle(msg, Handler()))
    runtime.sendall(NEXT + response("second"))
    assert d.exchange(invocation("second"), time.monotonic() + 5) == ra.Result("second", b'{"ok": true}')
    c = Client.__new__(Client)
    c.sock, c.buf = runtime, b""
    assert c.reply()[0] == 202 and c.reply()[0] == 200  # type: ignore[index]


def test_direct_timeout(pair) -> None:
    d, _ = direct(pair)
    with pytest.raises(TimeoutError):
        d.exchange(invocation(), time.monotonic() + 0.05)


def test_direct_deadline_is_absolute_across_a_trickled_answer(pair) -> None:
    # The response's head at once, then its body a byte at a time, each byte well within the
    # time a single read may take: only a deadline across all the reads ends the call.
    d, runtime = direct(pair)
    head, _, body = response(body=b"x" * 100).partition(b"\r\n\r\n")
    stop = threading.Event()

    def trickle() -> None:
        runtime.sendall(head + b"\r\n\r\n")
        for byte in body:
            if stop.wait(0.1):
                return
            runtime.sendall(bytes([byte]))

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            d.exchange(invocation(), started + 0.5)
        assert time.monotonic() - started < 1.0  # not the 10 s the whole body takes
    finally:
        stop.set()
        t.join(5)


def test_direct_deadline_bounds_the_write_to_a_runtime_that_reads_slowly(pair) -> None:
    d, runtime = direct(pair)
    stop = threading.Event()

    def sip() -> None:  # reads a little, every now and then: each send makes some progress
        while not stop.wait(0.05):
            try:
                runtime.recv(4096)
            except OSError:
                return

    t = threading.Thread(target=sip, daemon=True)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            d.exchange(invocation(payload=b"x" * 6_000_000), started + 0.5)
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        t.join(5)


def test_direct_runtime_gone_before_the_event_is_not_delivered(pair) -> None:
    d, runtime = direct(pair)
    d.pending_next = True
    runtime.close()
    with pytest.raises(ra.NotDelivered):
        d.exchange(invocation(), time.monotonic() + 5)


# ---- how an environment words a runtime that ended under a call ---------------------------------


@pytest.mark.parametrize(
    "oom,error_type,status,message",
    [
        (True, "Runtime.OutOfMemory", "oom", f"RequestId: {RID} Error: Runtime exited with error: signal: killed"),
        (False, "Runtime.ExitError", "exit", f"RequestId: {RID} Error: Runtime exited with error: exit status 1"),
    ],
)
def test_exit_outcome_words_an_oom_and_an_exit_apart(oom, error_type, status, message) -> None:
    outcome = _exit_outcome(RID, oom=oom)
    assert outcome.error_type == error_type and outcome.status == status
    assert json.loads(outcome.payload) == {"errorMessage": message, "errorType": error_type}
