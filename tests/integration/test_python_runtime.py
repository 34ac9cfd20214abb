"""The python3.11 runtime image and its bootstrap, against a fake Runtime API on a unix
socket: what a handler receives, what the caller gets back, and what the log shows."""

from __future__ import annotations

import json
import statistics
import time

import pytest

try:
    from docker_fixtures import Sandbox, executor, python_image, sandbox  # noqa: F401
except ImportError:  # imported as a package
    from tests.integration.docker_fixtures import Sandbox, executor, python_image, sandbox  # noqa: F401

pytestmark = pytest.mark.integration

ECHO = """
import os, sys
def handler(event, context):
    print("hello from the handler")
    print("to stderr", file=sys.stderr)
    cc = context.client_context
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_custom": cc.custom if cc else None,
        "client_installation_id": cc.client.installation_id if cc and cc.client else None,
        "cognito_identity_id": context.identity.cognito_identity_id,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "greeting": os.environ.get("GREETING"),
        "cwd": os.getcwd(),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "tz": os.environ.get("TZ"),
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
        "sys_path0": sys.path[0],
    }
"""


def test_handler_gets_event_and_context(sandbox):
    sandbox.run(ECHO, env={"GREETING": "hi"})
    out = sandbox.api.invoke(
        {"a": [1, 2, {"b": "ü"}]},
        request_id="req-1",
        headers={
            "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}, "client": {"installation_id": "inst"}, "env": {}}),
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}),
        },
    )
    assert out.kind == "response" and out.request_id == "req-1"
    body = out.json()
    assert body["event"] == {"a": [1, 2, {"b": "ü"}]}
    assert body["request_id"] == "req-1"
    assert body["function_name"] == "probe" and body["function_version"] == "3"
    assert body["memory_limit_in_mb"] == "128"  # a string, as on Lambda
    assert body["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe"
    assert body["log_group_name"] == "/aws/lambda/probe"
    assert 0 < body["remaining_ms"] <= 30_000
    assert body["client_custom"] == {"k": "v"} and body["client_installation_id"] == "inst"
    assert body["cognito_identity_id"] == "cid"
    assert body["trace"].startswith("Root=1-5e1b4151")
    assert body["greeting"] == "hi"
    assert body["cwd"] == "/var/task" and body["task_root"] == "/var/task" and body["sys_path0"] == "/var/task"
    assert body["tz"] == ":UTC" and body["execution_env"] == "AWS_Lambda_python3.11"
    logs = sandbox.logs()
    assert "hello from the handler\n" in logs and "to stderr\n" in logs

    # The same environment serves the next call (kept-alive connection, module imported once).
    second = sandbox.api.invoke("just a string")
    assert second.kind == "response" and second.json()["event"] == "just a string"
    assert second.json()["cognito_identity_id"] is None and second.json()["client_custom"] is None


def test_exception_becomes_lambda_error(sandbox):
    sandbox.run("""
def fail():
    raise ValueError("boom: bad input")

def handler(event, context):
    fail()
""")
    out = sandbox.api.invoke({}, request_id="req-err")
    assert out.kind == "error"
    assert out.headers["lambda-runtime-function-error-type"] == "Unhandled"
    body = out.json()
    assert body["errorMessage"] == "boom: bad input"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == "req-err"
    assert body["stackTrace"][0].startswith('  File "/var/task/app.py", line 6, in handler\n')
    assert body["stackTrace"][1] == '  File "/var/task/app.py", line 3, in fail\n    raise ValueError("boom: bad input")\n'
    assert not any("faas_bootstrap" in frame for frame in body["stackTrace"])
    logs = sandbox.logs()
    assert "[ERROR] ValueError: boom: bad input\nTraceback (most recent call last):\n" in logs
    assert '\u00a0\u00a0File "/var/task/app.py", line 3, in fail' in logs
    # The environment survives a function error.
    assert sandbox.api.invoke({}).kind == "error"


@pytest.mark.parametrize(
    "files, handler, error_type, message",
    [
        ({}, "app.handler", "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'app'"),
        (
            {"app.py": "import requests_missing\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'requests_missing'",
        ),
        (
            {"app.py": "def handler(e, c):\n    return 1\n"},
            "app.nope",
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
        ),
        (
            {"app.py": "x = 1\n\nx = = 2\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app': invalid syntax (app.py, line 3)",
        ),
        (
            {"app.py": "def handler(e, c):\n    return 1\n"},
            "app",
            "Runtime.MalformedHandlerName",
            "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
        ),
        ({}, "sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
    ],
    ids=["no-module", "missing-dependency", "handler-not-found", "syntax-error", "malformed", "builtin"],
)
def test_init_errors(sandbox, files, handler, error_type, message):
    for name, text in files.items():
        sandbox.write(name, text)
    container_id = sandbox.start()
    sandbox.api.set_environment(handler, {"AWS_LAMBDA_FUNCTION_NAME": "probe"})
    out = sandbox.api.wait_outcome()
    assert out.kind == "init-error"
    assert out.headers["lambda-runtime-function-error-type"] == error_type
    body = out.json()
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message
    assert isinstance(body["stackTrace"], list)
    state = sandbox.wait_exit(container_id)
    assert state.get("ExitCode") == 1
    assert f"[ERROR] {error_type}: {message}\nTraceback (most recent call last):" in sandbox.logs()


def test_exception_at_import_is_an_init_error(sandbox):
    sandbox.write("app.py", "raise RuntimeError('no config')\n")
    sandbox.start()
    sandbox.api.set_environment("app.handler", {})
    out = sandbox.api.wait_outcome()
    assert out.kind == "init-error"
    body = out.json()
    assert body["errorType"] == "RuntimeError" and body["errorMessage"] == "no config"
    assert any('File "/var/task/app.py", line 1, in <module>' in frame for frame in body["stackTrace"])


def test_unserialisable_result_is_marshal_error(sandbox):
    sandbox.run("def handler(event, context):\n    return {1, 2}\n")
    out = sandbox.api.invoke({})
    assert out.kind == "error"
    assert out.json()["errorType"] == "Runtime.MarshalError"
    assert out.json()["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_refused_response_does_not_stop_the_environment(sandbox):
    sandbox.run("def handler(event, context):\n    return 'x' * event\n")
    sandbox.api.response_status["too-big"] = 413
    assert sandbox.api.invoke(10, request_id="too-big").kind == "response"
    after = sandbox.api.invoke(3)
    assert after.kind == "response" and after.json() == "xxx"


def test_logging_and_partial_lines_are_flushed_before_the_result(sandbox):
    sandbox.run("""
import logging
logging.getLogger().setLevel(logging.INFO)
def handler(event, context):
    logging.info("info %s", 42)
    print("no newline", end="")
    return 1
""")
    sandbox.api.invoke({}, request_id="req-log")
    logs = sandbox.logs()
    assert "[INFO]\t" in logs and "Z\treq-log\tinfo 42\n" in logs
    assert logs.endswith("no newline")


def test_bytes_result_passes_through(sandbox):
    sandbox.run("def handler(event, context):\n    return b'raw bytes'\n")
    out = sandbox.api.invoke({})
    assert out.body == b"raw bytes"
    assert out.headers["content-type"] == "application/unknown"


def test_cold_start_latency(tmp_path, executor, python_image):
    """Create+start of a container, and from there to the bootstrap's first request (ready)."""
    start_ms, ready_ms, first_ms = [], [], []
    for n in range(6):
        box = Sandbox(tmp_path / str(n), executor, python_image)
        try:
            box.write("app.py", "def handler(event, context):\n    return event\n")
            box.start()
            deadline = time.monotonic() + 10
            while box.api.environment_requested_at is None and time.monotonic() < deadline:
                time.sleep(0.0005)
            assert box.api.environment_requested_at is not None, box.logs()
            start_ms.append(box.start_ms)
            ready_ms.append((box.api.environment_requested_at - box.started_at) * 1000)
            box.api.set_environment("app.handler", {})
            before = time.monotonic()
            assert box.api.invoke({"n": n}).json() == {"n": n}
            first_ms.append((time.monotonic() - before) * 1000)
        finally:
            box.close()
    start_ms, ready_ms, first_ms = start_ms[1:], ready_ms[1:], first_ms[1:]  # the first warms caches
    print(f"\ncreate+start ms: median {statistics.median(start_ms):.0f} {[round(x) for x in start_ms]}")
    print(f"start -> bootstrap ready ms: median {statistics.median(ready_ms):.0f} {[round(x) for x in ready_ms]}")
    print(f"environment -> first response ms (import + call): median {statistics.median(first_ms):.1f}")
    assert statistics.median(start_ms) < 2000
    assert statistics.median(ready_ms) < 3000
