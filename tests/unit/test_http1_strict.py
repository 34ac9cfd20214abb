"""The fast path's head parser refuses every head line gunicorn's parser refuses (issue 17,
finding 14): were it laxer, the two parsers would disagree on where a request ends."""

from __future__ import annotations

import pytest

from faas.invoke.http1 import BadHead, parse_head

GOOD = b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 2"


def test_a_well_formed_head_parses() -> None:
    head = parse_head(GOOD + b"\r\nX-Tab:\tv\xe9\r\nX-Empty:")
    assert head.headers["content-length"] == "2"
    assert head.headers["x-tab"] == "v\xe9"
    assert head.headers["x-empty"] == ""


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(GOOD + b"\nX-Smuggled: 1", id="bare LF between header lines"),
        pytest.param(b"POST /2015-03-31/functions/f/invocations HTTP/1.1\nHost: x", id="bare LF after the request line"),
        pytest.param(GOOD + b"\rX-Smuggled: 1", id="bare CR between header lines"),
        pytest.param(GOOD + b"\r\nX-A: a\rb", id="bare CR in a value"),
        pytest.param(GOOD + b"\r\nX-A: a\x00b", id="NUL in a value"),
        pytest.param(GOOD + b"\r\nX\x00A: v", id="NUL in a name"),
        pytest.param(GOOD + b"\r\nX-A: a\x1bb", id="a control byte in a value"),
        pytest.param(GOOD + b"\r\nX-A: a\x7fb", id="DEL in a value"),
        pytest.param(GOOD + b"\r\nX(A): v", id="a separator in a name"),
        pytest.param(GOOD + b"\r\nX\xe9: v", id="a non-ASCII name"),
        pytest.param(b"POST /2015-03-31/functions/f\x00/invocations HTTP/1.1\r\nHost: x", id="NUL in the target"),
        pytest.param(b"POST /2015-03-31/functions/f\t/invocations HTTP/1.1\r\nHost: x", id="a tab in the target"),
        pytest.param(b"POST /2015-03-31/functions/f\x7f/invocations HTTP/1.1\r\nHost: x", id="DEL in the target"),
        pytest.param(b"PO(ST /x HTTP/1.1\r\nHost: x", id="a separator in the method"),
        pytest.param(b"POST /x HTTP/1.1\x00\r\nHost: x", id="NUL after the version"),
        pytest.param(GOOD + b"\r\n folded", id="an obsolete line folding"),
    ],
)
def test_what_gunicorn_refuses_is_refused(head: bytes) -> None:
    with pytest.raises(BadHead):
        parse_head(head)


@pytest.mark.parametrize(
    "head",
    [
        GOOD + b"\nX-Smuggled: 1",
        GOOD + b"\rX-Smuggled: 1",
        GOOD + b"\r\nX-A: a\x00b",
        GOOD + b"\r\nX\x00A: v",
        b"POST /2015-03-31/functions/f\x00/invocations HTTP/1.1\r\nHost: x",
    ],
)
def test_gunicorn_refuses_them_too(head: bytes) -> None:
    """The reference: the same heads through gunicorn's own parser raise its parse errors."""
    from gunicorn.config import Config  # type: ignore[import-untyped]
    from gunicorn.http.errors import ParseException  # type: ignore[import-untyped]
    from gunicorn.http.message import Request  # type: ignore[import-untyped]
    from gunicorn.http.unreader import IterUnreader  # type: ignore[import-untyped]

    with pytest.raises(ParseException):
        Request(Config(), IterUnreader(iter([head + b"\r\n\r\n{}"])), ("127.0.0.1", 1))


def test_a_body_deadline_is_total_not_per_read() -> None:
    """Issue 17, finding 4: a client trickling its body a byte at a time, each byte well
    within any per-read timeout, is still cut off once the body's deadline has passed."""
    import socket
    import threading
    import time

    from gateway.worker import read_body

    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.05):
            try:
                theirs.send(b"x")
            except OSError:
                return

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            read_body(ours, b"{", 1000, time.monotonic() + 0.5)
        assert time.monotonic() - started < 5  # cut off, not read to its end (50 s at this pace)
    finally:
        stop.set()
        sender.join(5)
        ours.close()
        theirs.close()


def test_a_body_read_in_time_is_whole() -> None:
    import socket
    import time

    from gateway.worker import read_body

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"bcdef")
        assert read_body(ours, b"a", 6, time.monotonic() + 5) == b"abcdef"
