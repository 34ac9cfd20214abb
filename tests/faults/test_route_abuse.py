"""Abuse of the two call routes, on a real gateway with real containers (issue 17, findings 5, 11, 12).

- X-Faas-Debug-Port (finding 5): needs the API token where one is set; a debug call whose
  client goes away ends (its port closes, its container goes); `faas ps` lists it; SIGTERM's
  drain ends it instead of waiting on it.
- X-Amz-Client-Context (finding 11): the function gets the client's JSON object, re-serialised,
  so a CR LF inside the JSON never reaches the runtime's headers.
- Function URL answers (finding 12): an invalid header name or value, a 1xx status, too many
  or too large headers give the route's 502 JSON, not gunicorn's HTML 500.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.faults.support import wait_for
from tests.integration.conftest import Gateway, free_port, gateway_session, start_gateway, stop_gateway

TOKEN = "route-abuse-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

CONTEXT_ECHO = """
    def handler(event, context):
        cc = context.client_context
        return {"custom": cc.custom if cc else None, "env": cc.env if cc else None}
"""

# A function URL whose answer is picked by the request's path.
BAD_ANSWERS = """
    def handler(event, context):
        case = event["rawPath"].strip("/")
        answers = {
            "name-space": {"statusCode": 200, "headers": {"bad name": "x"}, "body": "no"},
            "name-colon": {"statusCode": 200, "headers": {"a:b": "x"}, "body": "no"},
            "value-nul": {"statusCode": 200, "headers": {"x-a": "one\\u0000two"}, "body": "no"},
            "value-ctl": {"statusCode": 200, "headers": {"x-a": "one\\u0001two"}, "body": "no"},
            "value-crlf": {"statusCode": 200, "headers": {"x-a": "one\\r\\nx-b: two"}, "body": "no"},
            "cookie-nul": {"statusCode": 200, "cookies": ["a=b\\u0000c"], "body": "no"},
            "status-101": {"statusCode": 101, "headers": {"upgrade": "websocket"}, "body": ""},
            "status-100": {"statusCode": 100, "body": ""},
            "header-5mb": {"statusCode": 200, "headers": {"x-big": "v" * (5 * 1024 * 1024)}, "body": "no"},
            "headers-200k": {"statusCode": 200, "headers": {f"x-{i}": "v" for i in range(200000)}, "body": "no"},
            "cookies-many": {"statusCode": 200, "cookies": [f"c{i}=v" for i in range(2000)], "body": "no"},
            "fine": {"statusCode": 201, "headers": {"x-fine": "caf\\u00e9", "x-tab": "a\\tb"}, "body": "ok"},
        }
        return answers[case]
"""


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    """A gateway with an API token (as when bound beyond loopback)."""
    state = tmp_path_factory.mktemp("route-abuse") / "state"
    with gateway_session(state, docker_client, no_tracebacks=True, extra_env={"FAAS_API_TOKEN": TOKEN}) as gw:
        yield gw


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _debug_request(name: str, port: int, *, auth: bool = True) -> bytes:
    headers = [
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Content-Length: 2",
        f"X-Faas-Debug-Port: {port}",
    ]
    if auth:
        headers.append(f"Authorization: Bearer {TOKEN}")
    return ("\r\n".join(headers) + "\r\n\r\n{}").encode()


def _connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _pool(gw: Gateway) -> list[dict[str, object]]:
    r = requests.get(f"{gw.url}/system/pool", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["environments"])


# ---- finding 5: X-Faas-Debug-Port -------------------------------------------------------


def test_debug_port_needs_the_token(gw: Gateway, make_function) -> None:
    name, folder = make_function(CONTEXT_ECHO)
    gw.deploy(folder)
    port = free_port()
    r = gw.invoke(name, headers={"X-Faas-Debug-Port": str(port)}, timeout=30)
    assert r.status_code == 403, r.text
    assert r.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")
    assert not _listening(port)  # nothing was started
    bad = gw.invoke(name, headers={"X-Faas-Debug-Port": str(port), "Authorization": "Bearer nope"}, timeout=30)
    assert bad.status_code == 403 and not _listening(port)
    # An ordinary call needs no token, as on the Invoke route of Lambda's API.
    assert gw.invoke(name).status_code == 200


def test_a_debug_call_is_listed_and_ends_when_its_client_goes(gw: Gateway, make_function, docker_client) -> None:
    name, folder = make_function(CONTEXT_ECHO)
    gw.deploy(folder)
    port = free_port()
    client = _connect(gw)
    client.sendall(_debug_request(name, port))
    assert wait_for(lambda: _listening(port), 60), gw.logs()[-3000:]
    # Listed once its container runs (the relay listens a moment before).
    assert wait_for(lambda: [e for e in _pool(gw) if e.get("function") == name], 30), _pool(gw)
    rows = [e for e in _pool(gw) if e.get("function") == name]
    assert [(e["state"], e.get("debug_port")) for e in rows] == [("debugging", port)], rows
    container = str(rows[0]["container"])
    ps = gw.cli("ps")
    assert ps.returncode == 0 and f"debugging :{port}" in ps.stdout, ps.stdout + ps.stderr
    client.close()  # the caller goes away: the session must end with it
    assert wait_for(lambda: not _listening(port), 20), "the debugger's port is still open after the client left"
    assert wait_for(lambda: not [e for e in _pool(gw) if e.get("function") == name], 20), _pool(gw)
    assert wait_for(lambda: not [c for c in gw.containers(docker_client) if c.id.startswith(container)], 20)
    # The slot is free: the function answers an ordinary call at once.
    r = gw.invoke(name, timeout=30)
    assert r.status_code == 200, r.text


def test_sigterm_ends_a_debug_session(runtime_images, tmp_path: Path, make_function, docker_client) -> None:
    gw = start_gateway(tmp_path / "state", {"FAAS_API_TOKEN": TOKEN})
    try:
        name, folder = make_function(CONTEXT_ECHO)
        gw.deploy(folder)
        port = free_port()
        client = _connect(gw)
        client.sendall(_debug_request(name, port))
        assert wait_for(lambda: _listening(port), 60), gw.logs()[-3000:]
        began = time.monotonic()
        code = stop_gateway(gw, timeout=60)
        took = time.monotonic() - began
        client.close()
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)
    logs = gw.logs()
    assert code == 0, logs[-3000:]
    assert "IllegalTransition" not in logs and "Traceback" not in logs, logs[-5000:]
    assert took < 15, f"SIGTERM took {took:.1f} s with a debug session open"
    assert not _listening(port)


# ---- finding 11: X-Amz-Client-Context -----------------------------------------------------


def test_client_context_is_reserialised(gw: Gateway, make_function) -> None:
    name, folder = make_function(CONTEXT_ECHO)
    gw.deploy(folder)
    text = '{"custom":\r\n {"user": "ada",\r\n"x": "y"},\r\n\t"env": {"locale": "en"}}'
    header = base64.b64encode(text.encode()).decode()
    with requests.Session() as s:  # one kept-alive connection, and the same warm environment
        url = f"{gw.url}/2015-03-31/functions/{name}/invocations"
        for _ in range(3):
            r = s.post(url, data=b"{}", headers={"X-Amz-Client-Context": header}, timeout=30)
            assert r.status_code == 200, r.text
            assert "X-Amz-Function-Error" not in r.headers, r.text
            assert r.json() == {"custom": {"user": "ada", "x": "y"}, "env": {"locale": "en"}}
        plain = s.post(url, data=b"{}", timeout=30)
        assert plain.status_code == 200 and plain.json() == {"custom": None, "env": None}, plain.text


@pytest.mark.parametrize(
    "header",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_client_context_is_invalid_request_content(gw: Gateway, make_function, header: str) -> None:
    name, folder = make_function(CONTEXT_ECHO, name=f"cc-{abs(hash(header)) % 10**8}")
    gw.deploy(folder)
    r = gw.invoke(name, headers={"X-Amz-Client-Context": header}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-ErrorType"].startswith("InvalidRequestContentException")
    assert json.loads(r.content)["Type"] == "User"


# ---- finding 12: function URL answers -------------------------------------------------------


@pytest.fixture(scope="module")
def bad_answers(gw: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    import textwrap
    import uuid

    name = f"urls-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp(name)
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: python3.11\nhandler: app.handler\nmemory: 256\n")
    (folder / "app.py").write_text(textwrap.dedent(BAD_ANSWERS))
    gw.deploy(folder)
    return name


@pytest.mark.parametrize(
    "case",
    [
        "name-space",
        "name-colon",
        "value-nul",
        "value-ctl",
        "value-crlf",
        "cookie-nul",
        "status-101",
        "status-100",
        "header-5mb",
        "headers-200k",
        "cookies-many",
    ],
)
def test_an_invalid_function_url_answer_is_a_502_json(gw: Gateway, bad_answers: str, case: str) -> None:
    with requests.Session() as s:
        r = s.get(f"{gw.url}/function/{bad_answers}/{case}", timeout=60)
        assert r.status_code == 502, (r.status_code, r.headers, r.text[:300])
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"message": "Internal Server Error"}
        assert r.headers.get("x-amzn-RequestId")
        # The connection is still good for the next request.
        fine = s.get(f"{gw.url}/function/{bad_answers}/fine", timeout=60)
        assert fine.status_code == 201 and fine.text == "ok"


def test_a_valid_function_url_answer_keeps_its_headers(gw: Gateway, bad_answers: str) -> None:
    r = requests.get(f"{gw.url}/function/{bad_answers}/fine", timeout=60)
    assert r.status_code == 201 and r.text == "ok"
    assert r.headers["x-tab"] == "a\tb"
    assert r.raw.headers["x-fine"].encode("latin-1").decode("utf-8") == "café"  # UTF-8 bytes, as sent


def test_concurrent_debug_calls_do_not_block_others(gw: Gateway, make_function) -> None:
    """A debug session waiting for its IDE holds no slot that ordinary calls need."""
    name, folder = make_function(CONTEXT_ECHO)
    gw.deploy(folder)
    port = free_port()
    client = _connect(gw)
    try:
        client.sendall(_debug_request(name, port))
        assert wait_for(lambda: _listening(port), 60)
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(gw.invoke(name, timeout=30).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        assert results == [200] * 4
    finally:
        client.close()
    assert wait_for(lambda: not _listening(port), 20)
