"""The debug call's gate (issue 17, finding 5): the token check and the watch on its client."""

from __future__ import annotations

import socket
import threading

from gateway.lambda_api import DebugGate, _client_gone, _debug_allowed, _watch_client


def test_the_token_is_wanted_as_bearer_or_as_the_sigv4_access_key() -> None:
    gate = DebugGate("s3cret", None)
    sigv4 = "AWS4-HMAC-SHA256 Credential=s3cret/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x"
    headers = {"Authorization": None, "Bearer": "Bearer s3cret", "wrong": "Bearer s3cre", "sigv4": sigv4}
    allowed = {k: _debug_allowed(gate, lambda name, v=v: v if name == "Authorization" else None) for k, v in headers.items()}
    assert allowed == {"Authorization": False, "Bearer": True, "wrong": False, "sigv4": True}
    assert _debug_allowed(DebugGate(None, None), lambda name: None)  # no token set: anyone on loopback


def test_a_client_that_closes_is_seen_gone_and_one_that_sends_is_not() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert not _client_gone(a)
        b.sendall(b"next request")  # pipelined bytes are not a disconnect
        assert not _client_gone(a)
        b.close()
        assert _client_gone(a) is False  # unread data still ahead of the end
        a.recv(100)
        assert _client_gone(a)


def test_the_watch_ends_the_session_until_the_call_returns() -> None:
    a, b = socket.socketpair()
    done = threading.Event()
    ends: list[int] = []

    def end() -> int:
        ends.append(1)
        if len(ends) == 3:  # the session was found (and ended) at the third look
            done.set()
        return 1 if len(ends) == 3 else 0

    with a:
        b.close()
        watch = threading.Thread(target=_watch_client, args=(a, done, end))
        watch.start()
        watch.join(10)
    assert not watch.is_alive() and len(ends) == 3
