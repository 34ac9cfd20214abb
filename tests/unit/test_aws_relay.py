"""The host half of the Lambda API relay (faas/invoke/aws_relay.py) against a real HTTP server on
loopback: an Invoke goes through whole, one request per connection; any other route is refused
with Lambda's error shape before a byte reaches the gateway. And faas.yaml's aws_endpoints."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.config import Config
from faas.errors import ValidationError
from faas.invoke.aws_relay import AwsRelay


class _Gateway(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.command, self.path, body, self.headers.get("Connection", "")))
        answer = b'{"echo": ' + body + b"}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[AwsRelay]:
    _Gateway.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relay = AwsRelay(tmp_path / "aws.sock", ("127.0.0.1", server.server_address[1]), label="t")
    try:
        yield relay
    finally:
        relay.close()
        server.shutdown()
        server.server_close()


def exchange(path: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_an_invoke_goes_through_whole_and_the_connection_then_ends(relay: AwsRelay) -> None:
    body = b'{"n": 1}'
    request = (
        b"POST /2015-03-31/functions/other/invocations?Qualifier=live HTTP/1.1\r\nHost: 127.0.0.1:9002\r\n"
        b"Connection: keep-alive\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = exchange(relay.socket_path, request)
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]
    assert answer.endswith(b'{"echo": {"n": 1}}')
    assert _Gateway.seen == [("POST", "/2015-03-31/functions/other/invocations?Qualifier=live", body, "close")]


@pytest.mark.parametrize(
    "head",
    [
        b"GET /2015-03-31/functions/ HTTP/1.1",  # ListFunctions: other functions' variables and code
        b"GET /2015-03-31/functions/other HTTP/1.1",
        b"PUT /2015-03-31/functions/other/configuration HTTP/1.1",
        b"POST /system/functions/other HTTP/1.1",
        b"POST /2015-03-31/functions/../../system/x/invocations HTTP/1.1",
    ],
)
def test_other_routes_are_refused_in_lambdas_error_shape(relay: AwsRelay, head: bytes) -> None:
    answer = exchange(relay.socket_path, head + b"\r\nHost: 127.0.0.1:9002\r\nContent-Length: 0\r\n\r\n")
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 403 Forbidden"
    assert b"X-Amzn-ErrorType: AccessDeniedException" in rest
    assert "Invoke only" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
    assert _Gateway.seen == []


def test_closing_removes_the_socket(relay: AwsRelay) -> None:
    relay.close()
    assert not relay.socket_path.exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, pytest.raises(OSError):
        s.connect(str(relay.socket_path))


def test_aws_endpoints_from_the_environment_and_faas_yaml(tmp_path: Path) -> None:
    (tmp_path / "faas.yaml").write_text("aws_endpoints:\n  dynamodb: http://127.0.0.1:8000\n  default: http://127.0.0.1:4566\n")
    env = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:1", "HOME": "/x"}
    config = Config.load({"state_dir": tmp_path}, env=env)
    assert dict(config.aws_endpoints) == {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    }


@pytest.mark.parametrize("value", ["{s3: 'file:///etc/passwd'}", "{'bad name!': http://x}", "[http://x]"])
def test_bad_aws_endpoints_are_refused(tmp_path: Path, value: str) -> None:
    (tmp_path / "faas.yaml").write_text(f"aws_endpoints: {value}\n")
    with pytest.raises(ValidationError, match="aws_endpoints"):
        Config.load({"state_dir": tmp_path}, env={})
