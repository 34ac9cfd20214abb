"""The gateway as clients see it: Lambda's Invoke API (curl-level and through boto3), the
admin API, and the gunicorn launcher, all against a fake Platform."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.serving import make_server

from faas.config import Config
from faas.errors import TooManyRequests, ValidationError
from faas.models import SYNC_PAYLOAD_LIMIT, function_arn
from gateway.app import create_app
from tests.fakes import FakePlatform, Handler

REPO = Path(__file__).resolve().parents[2]


def failing(message: str = "boom") -> Handler:
    body = json.dumps({"errorMessage": message, "errorType": "ValueError", "stackTrace": []}).encode()
    return lambda _payload: (body, "Unhandled")


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    platform.add("hello")
    return platform


@pytest.fixture
def client(fake: FakePlatform) -> Any:
    return create_app(fake).test_client()


def invoke_path(name: str) -> str:
    return f"/2015-03-31/functions/{name}/invocations"


# ------------------------------------------------------------------ Invoke API


def test_invoke_answers_payload_with_lambda_headers(client: Any, fake: FakePlatform) -> None:
    r = client.post(invoke_path("hello"), data=b'{"a": 1}')
    assert r.status_code == 200
    assert r.data == b'{"a": 1}'
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Amz-Executed-Version"] == "1"
    assert "X-Amz-Function-Error" not in r.headers
    assert "X-Amz-Log-Result" not in r.headers
    assert r.headers["x-amzn-RequestId"]
    assert fake.invoked == [{"name": "hello", "payload": b'{"a": 1}', "qualifier": None, "client_context": None}]


def test_function_error_is_200_with_unhandled(client: Any, fake: FakePlatform) -> None:
    fake.handlers["hello"] = failing("bad input")
    r = client.post(invoke_path("hello"), data=b"{}")
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.get_json()["errorMessage"] == "bad input"


def test_unknown_function_is_404_resource_not_found(client: Any) -> None:
    r = client.post(invoke_path("nope"), data=b"{}")
    assert r.status_code == 404
    assert r.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    body = r.get_json()
    assert body["Type"] == "User"
    assert body["Message"] == f"Function not found: {function_arn('nope')}"
    assert r.headers["x-amzn-RequestId"]


def test_non_json_body_is_400_invalid_request_content(client: Any, fake: FakePlatform) -> None:
    r = client.post(invoke_path("hello"), data=b"not json")
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert r.get_json()["Message"].startswith("Could not parse request body into json: ")
    assert fake.invoked == []


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"\xff\xfe{}"])
def test_json_lambda_refuses_is_refused(client: Any, body: bytes) -> None:
    r = client.post(invoke_path("hello"), data=body)
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_empty_body_reaches_the_function_as_empty_object(client: Any, fake: FakePlatform, body: bytes) -> None:
    r = client.post(invoke_path("hello"), data=body)
    assert r.status_code == 200
    assert fake.invoked[0]["payload"] == b"{}"


def _json_of_size(size: int) -> bytes:
    return b'"' + b"a" * (size - 2) + b'"'


def test_payload_of_exactly_6_mb_is_accepted(client: Any, fake: FakePlatform) -> None:
    r = client.post(invoke_path("hello"), data=_json_of_size(SYNC_PAYLOAD_LIMIT))
    assert r.status_code == 200
    assert len(fake.invoked[0]["payload"]) == SYNC_PAYLOAD_LIMIT


def test_payload_one_byte_over_6_mb_is_413(client: Any, fake: FakePlatform) -> None:
    r = client.post(invoke_path("hello"), data=_json_of_size(SYNC_PAYLOAD_LIMIT + 1))
    assert r.status_code == 413
    assert r.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    assert r.get_json()["Message"] == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert fake.invoked == []


class _Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        raise AssertionError("the body was read although Content-Length is over the limit")


def test_content_length_is_checked_before_reading(client: Any) -> None:
    r = client.post(
        invoke_path("hello"), environ_overrides={"wsgi.input": _Unreadable(), "CONTENT_LENGTH": str(SYNC_PAYLOAD_LIMIT + 1)}
    )
    assert r.status_code == 413


def test_chunked_body_over_6_mb_is_413_by_real_length(client: Any, fake: FakePlatform) -> None:
    r = client.post(
        invoke_path("hello"),
        input_stream=io.BytesIO(_json_of_size(SYNC_PAYLOAD_LIMIT + 1)),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 413
    ok = client.post(
        invoke_path("hello"), input_stream=io.BytesIO(b'{"x": 1}'), environ_overrides={"wsgi.input_terminated": True}
    )
    assert ok.status_code == 200 and ok.data == b'{"x": 1}'


def test_dry_run_checks_the_function_and_runs_nothing(client: Any, fake: FakePlatform) -> None:
    r = client.post(invoke_path("hello"), data=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})
    assert r.status_code == 204 and r.data == b""
    r = client.post(invoke_path("nope"), data=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})
    assert r.status_code == 404
    assert fake.invoked == []


def test_unknown_invocation_type_is_refused(client: Any) -> None:
    r = client.post(invoke_path("hello"), data=b"{}", headers={"X-Amz-Invocation-Type": "Later"})
    assert r.status_code == 400
    assert "invocationType" in r.get_json()["Message"]


def test_event_invocation_without_async_support_is_400(client: Any, fake: FakePlatform) -> None:
    fake.async_error = ValidationError("InvocationType Event is not supported yet")
    r = client.post(invoke_path("hello"), data=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert r.get_json()["Message"] == "InvocationType Event is not supported yet"
    assert fake.invoked == []


def test_event_invocation_uses_invoke_async(fake: FakePlatform) -> None:
    r = create_app(fake).test_client().post(invoke_path("hello"), data=b'{"k": 2}', headers={"X-Amz-Invocation-Type": "Event"})
    assert r.status_code == 202
    assert r.headers["x-amzn-RequestId"] == fake.queued[0]["request_id"]
    assert [(q["name"], q["payload"]) for q in fake.queued] == [("hello", b'{"k": 2}')]
    assert fake.invoked == []


@pytest.mark.parametrize(
    "function, query, expected",
    [
        ("hello", "", ("hello", None)),
        ("hello:7", "", ("hello", "7")),
        ("hello", "?Qualifier=3", ("hello", "3")),
        ("hello:$LATEST", "", ("hello", "$LATEST")),
        ("arn:aws:lambda:us-east-1:123456789012:function:hello", "", ("hello", None)),
        ("arn:aws:lambda:eu-west-2:123456789012:function:hello:2", "", ("hello", "2")),
        ("123456789012:function:hello", "", ("hello", None)),
        ("arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello", "?Qualifier=4", ("hello", "4")),
    ],
)
def test_function_names_arns_and_qualifiers(
    client: Any, fake: FakePlatform, function: str, query: str, expected: tuple[str, str | None]
) -> None:
    r = client.post(invoke_path(function) + query, data=b"{}")
    assert r.status_code == 200, r.data
    assert (fake.invoked[0]["name"], fake.invoked[0]["qualifier"]) == expected


def test_conflicting_qualifiers_are_refused(client: Any) -> None:
    r = client.post(invoke_path("hello:1") + "?Qualifier=2", data=b"{}")
    assert r.status_code == 400
    assert "does not match" in r.get_json()["Message"]


def test_malformed_function_name_is_a_validation_error(client: Any) -> None:
    r = client.post(invoke_path("hel lo"), data=b"{}")
    assert r.status_code == 400
    assert "failed to satisfy constraint" in r.get_json()["Message"]


def test_client_context_is_decoded_for_the_function(client: Any, fake: FakePlatform) -> None:
    context = json.dumps({"custom": {"k": "v"}, "env": {}})
    r = client.post(
        invoke_path("hello"), data=b"{}", headers={"X-Amz-Client-Context": base64.b64encode(context.encode()).decode()}
    )
    assert r.status_code == 200
    assert fake.invoked[0]["client_context"] == '{"custom":{"k":"v"},"env":{}}'  # re-serialised, compact


@pytest.mark.parametrize("header", ["!!!not base64", base64.b64encode(b"not json").decode()])
def test_bad_client_context_is_400(client: Any, fake: FakePlatform, header: str) -> None:
    r = client.post(invoke_path("hello"), data=b"{}", headers={"X-Amz-Client-Context": header})
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert fake.invoked == []


def test_log_type_tail_returns_last_4_kb_of_the_log(client: Any, fake: FakePlatform) -> None:
    fake.logs_text = "".join(f"line {i:05d} é\n" for i in range(1000))
    r = client.post(invoke_path("hello"), data=b"{}", headers={"X-Amz-Log-Type": "Tail"})
    tail = base64.b64decode(r.headers["X-Amz-Log-Result"])
    assert tail == fake.logs_text.encode()[-4096:]


def test_throttle_is_429_with_retry_after_and_reason(client: Any, fake: FakePlatform) -> None:
    fake.invoke_error = TooManyRequests("Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded")
    r = client.post(invoke_path("hello"), data=b"{}")
    assert r.status_code == 429
    assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert r.headers["Retry-After"] == "1"
    assert r.get_json()["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_unexpected_exception_is_500_service_exception(client: Any, fake: FakePlatform) -> None:
    fake.invoke_error = RuntimeError("kaput")
    r = client.post(invoke_path("hello"), data=b"{}")
    assert r.status_code == 500
    assert r.headers["x-amzn-ErrorType"] == "ServiceException"
    assert r.get_json()["Type"] == "Service"
    assert r.headers["x-amzn-RequestId"]


def test_unknown_route_is_json_404_with_request_id(client: Any) -> None:
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.is_json and r.headers["x-amzn-RequestId"]


# ------------------------------------------------------------------ admin API


def make_zip(spec: dict[str, Any], code: str = "def handler(e, c):\n    return e\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("function.yaml", yaml.safe_dump(spec))
        zf.writestr("app.py", code)
    return buf.getvalue()


def test_deploy_is_201_when_changed_and_200_when_unchanged(client: Any, fake: FakePlatform) -> None:
    data = make_zip({"name": "echo", "memory": 256})
    r = client.put("/system/functions/echo", data=data, headers={"X-Faas-Source-Dir": "/src/echo"})
    assert r.status_code == 201
    body = r.get_json()
    assert {k: body[k] for k in ("name", "version", "runtime", "handler", "memory", "timeout", "changed")} == {
        "name": "echo",
        "version": 1,
        "runtime": "python3.11",
        "handler": "app.handler",
        "memory": 256,
        "timeout": 3,
        "changed": True,
    }
    assert body["code_sha256"] == sha256(data).hexdigest() and body["code_size"] == len(data)
    assert fake.deploys[-1] == {"size": len(data), "expected_name": "echo", "source_dir": "/src/echo"}
    again = client.put("/system/functions/echo", data=data)
    assert again.status_code == 200
    assert again.get_json()["changed"] is False and again.get_json()["version"] == 1
    assert fake.deploys[-1]["source_dir"] is None


def test_deploy_with_a_different_name_is_refused(client: Any) -> None:
    r = client.put("/system/functions/other", data=make_zip({"name": "echo"}))
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert "echo" in r.get_json()["Message"]


def test_deploy_over_50_mb_is_refused_before_reading(client: Any) -> None:
    r = client.put(
        "/system/functions/echo", environ_overrides={"wsgi.input": _Unreadable(), "CONTENT_LENGTH": str(50 * 1024 * 1024 + 1)}
    )
    assert r.status_code == 413
    assert r.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"


def test_deploy_of_empty_body_is_400(client: Any) -> None:
    assert client.put("/system/functions/echo", data=b"").status_code == 400


def test_list_get_and_delete_functions(client: Any, fake: FakePlatform) -> None:
    fake.add("alpha", version=3, memory=512)
    listed = client.get("/system/functions").get_json()
    assert [f["name"] for f in listed] == ["alpha", "hello"]
    assert listed[0]["version"] == 3 and listed[0]["memory"] == 512
    assert listed[1]["environments"] == {"idle": 1}
    one = client.get("/system/functions/alpha").get_json()
    assert one["arn"] == function_arn("alpha") and one["url"] == "/function/alpha"
    assert client.get("/system/functions/zzz").status_code == 404
    assert client.delete("/system/functions/alpha").status_code == 204
    assert "alpha" not in fake.live
    r = client.delete("/system/functions/alpha")
    assert r.status_code == 404 and r.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_logs_are_plain_text_lines_with_tail(client: Any, fake: FakePlatform) -> None:
    fake.log_lines["hello"] = [f"line {i}" for i in range(10)]
    r = client.get("/system/functions/hello/logs?tail=3")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    assert r.text == "line 7\nline 8\nline 9\n"
    assert client.get("/system/functions/hello/logs?tail=x").status_code == 400


def test_environments_and_healthz(client: Any) -> None:
    assert client.get("/system/environments").get_json() == [{"id": "env-1", "function": "hello", "version": 1, "state": "IDLE"}]
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    assert r.headers["x-amzn-RequestId"]


def test_api_token_guards_the_admin_api_only(fake: FakePlatform, tmp_path: Path) -> None:
    config = Config.load({"state_dir": tmp_path, "api_token": "s3cret"}, env={})
    c = create_app(fake, config).test_client()
    r = c.get("/system/functions")
    assert r.status_code == 401 and r.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    assert c.get("/system/functions", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/healthz").status_code == 200
    assert c.post(invoke_path("hello"), data=b"{}").status_code == 200


# ------------------------------------------------------------------ boto3 against a real server


@pytest.fixture
def live_url(fake: FakePlatform) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(fake), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def lambda_client(live_url: str) -> Any:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "lambda",
        endpoint_url=live_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=BotoConfig(retries={"max_attempts": 0}),
    )


def test_boto3_invoke_gets_payload_version_and_log_result(lambda_client: Any, fake: FakePlatform) -> None:
    fake.handlers["hello"] = lambda p: (json.dumps({"got": json.loads(p)}).encode(), None)
    r = lambda_client.invoke(FunctionName="hello", Payload=b'{"n": 1}', LogType="Tail")
    assert r["StatusCode"] == 200
    assert json.loads(r["Payload"].read()) == {"got": {"n": 1}}
    assert r["ExecutedVersion"] == "1"
    assert "FunctionError" not in r
    assert base64.b64decode(r["LogResult"]).decode().startswith("START RequestId: ")
    assert r["ResponseMetadata"]["RequestId"]


def test_boto3_invoke_by_arn_with_client_context(lambda_client: Any, fake: FakePlatform) -> None:
    context = base64.b64encode(json.dumps({"custom": {"a": 1}}).encode()).decode()
    r = lambda_client.invoke(FunctionName=function_arn("hello"), Qualifier="1", ClientContext=context, Payload=b"{}")
    assert r["StatusCode"] == 200
    assert fake.invoked[-1]["qualifier"] == "1"
    assert json.loads(fake.invoked[-1]["client_context"]) == {"custom": {"a": 1}}


def test_boto3_sees_function_error(lambda_client: Any, fake: FakePlatform) -> None:
    fake.handlers["hello"] = failing("nope")
    r = lambda_client.invoke(FunctionName="hello", Payload=b"{}")
    assert r["FunctionError"] == "Unhandled"
    assert json.loads(r["Payload"].read())["errorMessage"] == "nope"


def test_boto3_raises_typed_resource_not_found(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as info:
        lambda_client.invoke(FunctionName="missing", Payload=b"{}")
    assert info.value.response["Error"]["Message"] == f"Function not found: {function_arn('missing')}"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_boto3_raises_typed_invalid_request_content(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException):
        lambda_client.invoke(FunctionName="hello", Payload=b"{oops")


def test_boto3_dry_run(lambda_client: Any) -> None:
    assert lambda_client.invoke(FunctionName="hello", InvocationType="DryRun")["StatusCode"] == 204


# ------------------------------------------------------------------ gunicorn launcher


def test_gunicorn_settings_follow_the_config(tmp_path: Path) -> None:
    from gateway.server import settings

    config = Config.load({"state_dir": tmp_path, "port": 9123, "threads": 12}, env={})
    s = settings(config)
    assert s["bind"] == ["127.0.0.1:9123"]
    assert (s["worker_class"], s["workers"], s["threads"]) == ("gateway.worker.GatewayWorker", 1, 12)
    assert s["keepalive"] == 75 and s["timeout"] == 0 and s["graceful_timeout"] == 905
    assert s["preload_app"] is False


def test_worker_config_round_trips_through_environment(tmp_path: Path) -> None:
    from gateway.server import config_environment

    config = Config.load({"state_dir": tmp_path, "host": "127.0.0.2", "port": 9124, "threads": 7, "api_token": "t"}, env={})
    assert Config.load(env=config_environment(config)) == config


def test_gunicorn_conf_file_exports_the_same_settings(tmp_path: Path) -> None:
    import runpy

    env = {"FAAS_STATE_DIR": str(tmp_path), "FAAS_PORT": "9125", "FAAS_THREADS": "5"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(REPO / "gateway" / "gunicorn.conf.py"))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert conf["bind"] == ["127.0.0.1:9125"] and conf["threads"] == 5 and conf["workers"] == 1
    assert conf["wsgi_app"] == "gateway.app:create_app()"
    assert callable(conf["worker_exit"]) and callable(conf["on_exit"])


def test_worker_exit_shuts_the_platform_down(fake: FakePlatform) -> None:
    from gateway.server import worker_exit

    class Worker:
        platform = fake
        pid = 1

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        worker_exit(None, Worker())  # type: ignore[arg-type]
        # a second Ctrl-C (or the arbiter's SIGQUIT) cannot interrupt the cleanup
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert fake.shutdown_called


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVE_SCRIPT = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    marks = Path(sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    import faas.containers.docker_executor, gateway.app
    from faas.config import Config
    from faas.models import Result
    from gateway.server import serve
    from tests.fakes import FakePlatform

    class Platform(FakePlatform):
        def __init__(self):
            super().__init__()
            self.add("x", version=4)
        def invoke(self, name, payload, **kw):
            super().invoke(name, payload, **kw)
            return Result(request_id="r-1", payload=payload, version=4)
        def shutdown(self, wait_s=None):
            super().shutdown(wait_s)
            (marks / "shutdown").write_text("worker")

    real = gateway.app.create_app
    gateway.app.create_app = lambda config=None: real(Platform(), config)
    faas.containers.docker_executor.remove_state_containers = lambda config: (marks / "cleanup").write_text(str(config.port))
    code = serve(Config.load())
    with open(marks / "after-serve", "a") as f:
        f.write(f"{code}\\n")
    sys.exit(code)
    """
)


def test_serve_runs_gunicorn_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import requests

    port = _free_port()
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    env = {**os.environ, "FAAS_STATE_DIR": str(tmp_path / "state"), "FAAS_PORT": str(port), "FAAS_THREADS": "4"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(REPO)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read1().decode() if proc.stdout else ""  # type: ignore[union-attr]
            time.sleep(0.05)
        r = requests.post(url + invoke_path("x"), data=b'{"a":1}', timeout=5)
        assert r.status_code == 200 and r.content == b'{"a":1}'
        assert r.headers["X-Amz-Executed-Version"] == "4" and r.headers["x-amzn-RequestId"] == "r-1"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert (tmp_path / "shutdown").read_text() == "worker"
    assert (tmp_path / "cleanup").read_text() == str(port)
    # the caller's code after serve() ran once, in the arbiter only
    assert (tmp_path / "after-serve").read_text() == "0\n"


# ------------------------------------------------------------------ management and admin API, on the fake


def lambda_zip(code: str = "def handler(e, c):\n    return e\n") -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("app.py", code)
    return base64.b64encode(buffer.getvalue()).decode()


def test_update_function_code_dry_run_checks_the_package_and_deploys_nothing(client: Any, fake: FakePlatform) -> None:
    url = "/2015-03-31/functions/hello/code"
    r = client.put(url, json={"ZipFile": lambda_zip(), "DryRun": True})
    assert r.status_code == 200, r.data
    assert r.get_json()["Version"] == "$LATEST" and r.get_json()["CodeSha256"] == base64.b64encode(b"\xab" * 32).decode()
    assert [spec.name for spec in fake.checked] == ["hello"] and fake.deploys == []
    assert [fv.version for fv in fake.all_versions("hello")] == [1]
    r = client.put(url, json={"ZipFile": lambda_zip()})
    assert r.status_code == 200 and len(fake.deploys) == 1 and fake.get("hello").version == 2


def test_versions_aliases_rollback_calls_and_pool_through_the_apis(client: Any, fake: FakePlatform) -> None:
    fake.add("hello", version=2)
    fake.records["hello"] = [{"request_id": "r-2"}, {"request_id": "r-1"}]
    assert [v["version"] for v in client.get("/system/functions/hello/versions").get_json()] == [1, 2]
    r = client.post("/2015-03-31/functions/hello/aliases", json={"Name": "prod", "FunctionVersion": "1"})
    assert r.status_code == 201 and fake.aliases("hello") == {"prod": "1"}
    r = client.post(invoke_path("hello") + "?Qualifier=prod", data=b"{}")
    assert r.status_code == 200 and fake.invoked[-1]["qualifier"] == "prod"
    rolled = client.post("/system/functions/hello/rollback", json={}).get_json()
    assert (rolled["version"], rolled["previous_version"]) == (1, 2)
    assert client.get("/system/functions/hello/calls?tail=1").get_json() == [{"request_id": "r-2"}]
    assert client.get("/system/pool").get_json()["environments"] == fake.env_rows
