"""Deploy and invoke through the real gateway, real containers, real HTTP, boto3 as a real client."""

from __future__ import annotations

import base64
import json

import boto3
import botocore.config
import pytest
import requests

from tests.integration.conftest import ROOT, Gateway


@pytest.fixture(scope="module")
def hello(gateway: Gateway) -> str:
    gateway.deploy(ROOT / "functions" / "hello")
    gateway.deploy(ROOT / "functions" / "echo")
    return "hello"


@pytest.fixture(scope="module")
def lam(gateway: Gateway):
    return boto3.client(
        "lambda",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 0}, read_timeout=60),
    )


def test_hello_over_the_http_trigger_like_the_readme(gateway: Gateway, hello: str) -> None:
    r = requests.get(f"{gateway.url}/function/hello", timeout=30)
    assert r.status_code == 200
    assert r.json() == {"message": "Hello, world!"}
    assert r.headers["content-type"].startswith("application/json")
    r = requests.get(f"{gateway.url}/function/hello?name=Ada", timeout=30)
    assert r.json() == {"message": "Hello, Ada!"}


def test_second_call_reuses_the_warm_container(gateway: Gateway, make_function) -> None:
    name, folder = make_function("""
        import os, socket
        calls = 0
        def handler(event, context):
            global calls
            calls += 1
            return {"calls": calls, "host": socket.gethostname(), "pid": os.getpid()}
    """)
    gateway.deploy(folder)
    first = gateway.invoke(name).json()
    second = gateway.invoke(name).json()
    assert first["calls"] == 1 and second["calls"] == 2
    assert first["pid"] == second["pid"]


def test_boto3_invoke_returns_the_payload_and_version(lam, hello: str) -> None:
    out = lam.invoke(FunctionName="hello", Payload=json.dumps({"name": "boto"}))
    assert out["StatusCode"] == 200
    assert json.loads(out["Payload"].read()) == {"message": "Hello, boto!"}
    assert out["ExecutedVersion"] == "1"
    assert "FunctionError" not in out


def test_boto3_unknown_function_is_resource_not_found(lam) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke(FunctionName="does-not-exist", Payload=b"{}")
    assert "function:does-not-exist" in str(e.value)


def test_unknown_function_error_shape(gateway: Gateway) -> None:
    r = gateway.invoke("does-not-exist")
    assert r.status_code == 404
    assert r.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    body = r.json()
    assert body["Type"] == "User" and "does-not-exist" in body["Message"]


def test_echo_sees_lambdas_event_context_and_environment(gateway: Gateway, hello: str) -> None:
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {"e": "1"}}).encode()).decode()
    r = gateway.invoke("echo", b'{"x": [1, 2]}', headers={"X-Amz-Client-Context": cc})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["event"] == {"x": [1, 2]}
    ctx = out["context"]
    assert ctx["function_name"] == "echo"
    assert ctx["function_version"] == "1"
    assert ctx["memory_limit_in_mb"] == 128 or ctx["memory_limit_in_mb"] == "128"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert ctx["log_group_name"] == "/aws/lambda/echo"
    assert "[1]" in ctx["log_stream_name"]
    assert 0 < ctx["remaining_time_in_millis"] <= 5000
    assert len(ctx["aws_request_id"]) == 36 and ctx["aws_request_id"] == r.headers["x-amzn-RequestId"]
    assert ctx["client_context"] == {"custom": {"k": "v"}, "env": {"e": "1"}}
    env = out["environment"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["_HANDLER"] == "app.handler"
    assert env["TZ"] == ":UTC"
    assert env["AWS_REGION"] == "us-east-1"


def test_function_error_is_200_with_unhandled(gateway: Gateway, make_function) -> None:
    name, folder = make_function("""
        def handler(event, context):
            raise ValueError("the answer is not " + str(event["n"]))
    """)
    gateway.deploy(folder)
    r = gateway.invoke(name, b'{"n": 41}')
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    body = r.json()
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "the answer is not 41"
    assert any("raise ValueError" in frame for frame in body["stackTrace"])
    # the HTTP trigger maps a function error to 502, as a function URL does
    assert requests.post(f"{gateway.url}/function/{name}", json={"n": 1}, timeout=30).status_code == 502


@pytest.mark.parametrize(
    "code,handler,error_type,message",
    [
        ("import nope_not_installed\n", "app.handler", "Runtime.ImportModuleError", "Unable to import module 'app'"),
        (
            "def other(e, c):\n    return 1\n",
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        ("def handler(e, c)\n    return 1\n", "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
    ],
)
def test_init_errors_are_lambdas(gateway: Gateway, make_function, code: str, handler: str, error_type: str, message: str) -> None:
    name, folder = make_function(code, handler=handler)
    gateway.deploy(folder)
    r = gateway.invoke(name)
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json()["errorType"] == error_type
    assert message in r.json()["errorMessage"]


def test_non_json_body_is_refused(gateway: Gateway, hello: str) -> None:
    r = gateway.invoke("hello", b"{not json")
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"


def test_payload_limits_each_way(gateway: Gateway, make_function, hello: str) -> None:
    limit = 6 * 1024 * 1024
    over = b'"' + b"a" * (limit - 1) + b'"'  # 6 MB + 1 byte of valid JSON
    r = gateway.invoke("hello", over)
    assert r.status_code == 413
    assert r.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    at_limit = b'"' + b"a" * (limit - 2) + b'"'
    assert gateway.invoke("hello", at_limit).status_code == 200
    name, folder = make_function("""
        def handler(event, context):
            return "x" * event["n"]
    """)
    gateway.deploy(folder)
    r = gateway.invoke(name, json.dumps({"n": limit + 10}).encode())
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert gateway.invoke(name, b'{"n": 3}').json() == "xxx"


def test_http_trigger_event_and_response_mapping(gateway: Gateway, make_function) -> None:
    name, folder = make_function("""
        import base64
        def handler(event, context):
            return {
                "statusCode": 201,
                "headers": {"x-seen-path": event["rawPath"], "content-type": "text/plain"},
                "cookies": ["a=1", "b=2"],
                "body": " ".join([event["requestContext"]["http"]["method"], event["rawQueryString"], event.get("body") or "", str(event["isBase64Encoded"])]),
            }
    """)
    gateway.deploy(folder)
    r = requests.post(f"{gateway.url}/function/{name}/a/b?x=1&x=2", data="hi", headers={"content-type": "text/plain"}, timeout=30)
    assert r.status_code == 201
    assert r.headers["x-seen-path"] == "/a/b"
    assert r.text == "POST x=1&x=2 hi False"
    assert r.cookies.get("a") == "1" and r.cookies.get("b") == "2"
    # a body of no textual content type arrives base64-encoded, as from a function URL
    r = requests.put(
        f"{gateway.url}/function/{name}", data=b"\x00\xff", headers={"content-type": "application/octet-stream"}, timeout=30
    )
    assert r.text == "PUT  AP8= True"


def test_cli_invoke_ls_and_logs(gateway: Gateway, hello: str) -> None:
    out = gateway.cli("invoke", "hello", "--payload", '{"name": "cli"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"message": "Hello, cli!"}
    ls = gateway.cli("ls")
    assert ls.returncode == 0 and "hello" in ls.stdout and "python3.11" in ls.stdout
    logs = gateway.cli("logs", "hello")
    assert logs.returncode == 0
    assert "START RequestId: " in logs.stdout and "REPORT RequestId: " in logs.stdout


def test_logs_have_report_lines_with_real_memory(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        print("module loaded")
        big = None
        def handler(event, context):
            global big
            print("allocating", event["mb"], "MB")
            big = bytearray(event["mb"] * 1024 * 1024)
            return len(big)
    """,
        memory=256,
    )
    gateway.deploy(folder)
    r = gateway.invoke(name, b'{"mb": 1}', headers={"X-Amz-Log-Type": "Tail"})
    tail = base64.b64decode(r.headers["X-Amz-Log-Result"]).decode()
    assert tail.startswith("START RequestId: ")
    assert "allocating 1 MB" in tail
    report = [line for line in tail.splitlines() if line.startswith("REPORT")][0]
    assert "Init Duration: " in report  # first call: cold start
    small = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    r = gateway.invoke(name, b'{"mb": 100}', headers={"X-Amz-Log-Type": "Tail"})
    report = [
        line for line in base64.b64decode(r.headers["X-Amz-Log-Result"]).decode().splitlines() if line.startswith("REPORT")
    ][0]
    assert "Init Duration" not in report  # warm
    assert "Memory Size: 256 MB" in report
    big = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    assert 0 < small < 60 and 100 <= big <= 256, (small, big)
    out = gateway.cli("logs", name)
    assert "module loaded" in out.stdout and "allocating 100 MB" in out.stdout
