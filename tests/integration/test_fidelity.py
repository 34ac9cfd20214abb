"""The Invoke API as boto3 sees it against a real gateway: DryRun, Tail, client context,
Qualifier (versions and aliases), X-Amz-Executed-Version, the errors Lambda raises, and the
per-call records, followed logs and log caps around it."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time

import pytest

from faas.logs.pump import CALL_LOG_CAP
from faas.logs.store import FILE_ROTATE_BYTES
from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import FAAS, Gateway

ECHO = """
    import os, time
    def handler(event, context):
        if event.get("print"):
            print(event["print"])
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("fail"):
            raise ValueError("failing as asked")
        cc = context.client_context
        return {"tag": os.environ.get("TAG"), "version": context.function_version,
                "arn": context.invoked_function_arn, "custom": cc.custom if cc else None, "env": cc.env if cc else None}
"""


@pytest.fixture(scope="module")
def lam(gateway: Gateway):
    return lambda_client(gateway.url)


@pytest.fixture(scope="module")
def fn(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One function with two versions (TAG one, then two) and an alias 'stable' on version 1."""
    import uuid

    from tests.integration.aws_clients import aws_json

    name = f"fid-{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("fid") / name
    folder.mkdir()
    (folder / "app.py").write_text(__import__("textwrap").dedent(ECHO))
    for tag in ("one", "two"):
        (folder / "function.yaml").write_text(
            f"name: {name}\nruntime: python3.11\nhandler: app.handler\ntimeout: 10\nenvironment:\n  TAG: {tag}\n"
        )
        gateway.deploy(folder)
    aws_json(gateway.url, "create-alias", "--function-name", name, "--name", "stable", "--function-version", "1")
    return name


def calls(gateway: Gateway, name: str) -> list[str]:
    out = gateway.cli("calls", name, "--json", "--limit", "500")
    assert out.returncode == 0, out.stderr
    return [c["request_id"] for c in json.loads(out.stdout)]


def test_request_response_reports_the_executed_version(lam, fn: str) -> None:
    out = lam.invoke(FunctionName=fn, Payload=b"{}")
    assert out["StatusCode"] == 200 and out["ExecutedVersion"] == "2"
    assert json.loads(out["Payload"].read())["tag"] == "two"


@pytest.mark.parametrize(
    "kwargs, tag, executed, arn_suffix",
    [
        ({"Qualifier": "1"}, "one", "1", ":1"),
        ({"Qualifier": "stable"}, "one", "1", ":stable"),
        ({"Qualifier": "$LATEST"}, "two", "2", None),  # Lambda's ARN would end in :$LATEST (the scheduler's call)
        ({"FunctionName": "{fn}:stable"}, "one", "1", ":stable"),
    ],
)
def test_qualifier_selects_a_version_or_an_alias(
    lam, fn: str, kwargs: dict, tag: str, executed: str, arn_suffix: str | None
) -> None:
    args = {"FunctionName": fn, "Payload": b"{}", **kwargs}
    args["FunctionName"] = args["FunctionName"].format(fn=fn)
    out = lam.invoke(**args)
    body = json.loads(out["Payload"].read())
    assert (body["tag"], out["ExecutedVersion"], body["version"]) == (tag, executed, executed)
    if arn_suffix is not None:
        assert body["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fn}{arn_suffix}"


@pytest.mark.parametrize("qualifier", ["9", "nosuchalias"])
def test_unknown_version_or_alias_is_resource_not_found(lam, fn: str, qualifier: str) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke(FunctionName=fn, Qualifier=qualifier, Payload=b"{}")
    assert f"function:{fn}:{qualifier}" in str(e.value)


def test_dry_run_checks_the_function_and_runs_nothing(gateway: Gateway, lam, fn: str) -> None:
    before = calls(gateway, fn)
    out = lam.invoke(FunctionName=fn, InvocationType="DryRun", Payload=b"{}")
    assert out["StatusCode"] == 204 and out["Payload"].read() == b""
    assert lam.invoke(FunctionName=fn, Qualifier="stable", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", InvocationType="DryRun")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=fn, Qualifier="42", InvocationType="DryRun")
    assert calls(gateway, fn) == before


def test_tail_returns_the_last_4_kb_of_this_calls_log(lam, fn: str) -> None:
    out = lam.invoke(FunctionName=fn, LogType="Tail", Payload=json.dumps({"print": "hello from the tail"}))
    tail = base64.b64decode(out["LogResult"]).decode()
    rid = out["ResponseMetadata"]["RequestId"]
    lines = tail.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: 2"
    assert "hello from the tail" in lines
    assert lines[-2] == f"END RequestId: {rid}" and lines[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    out = lam.invoke(FunctionName=fn, LogType="Tail", Payload=json.dumps({"print": "x" * 20000}))
    raw = base64.b64decode(out["LogResult"])
    assert len(raw) == 4096 and raw.decode().rstrip("\n").splitlines()[-1].startswith("REPORT RequestId: ")
    assert "LogResult" not in lam.invoke(FunctionName=fn, Payload=b"{}")


def test_function_errors_come_back_as_200_with_the_tail(lam, fn: str) -> None:
    out = lam.invoke(FunctionName=fn, LogType="Tail", Payload=b'{"fail": true}')
    assert out["StatusCode"] == 200 and out["FunctionError"] == "Unhandled" and out["ExecutedVersion"] == "2"
    assert json.loads(out["Payload"].read())["errorType"] == "ValueError"
    assert "[ERROR] ValueError: failing as asked" in base64.b64decode(out["LogResult"]).decode()


def test_client_context_reaches_the_function(lam, fn: str) -> None:
    context = {"custom": {"user": "ada"}, "env": {"locale": "en"}, "client": {"app_title": "t"}}
    out = lam.invoke(FunctionName=fn, ClientContext=base64.b64encode(json.dumps(context).encode()).decode(), Payload=b"{}")
    body = json.loads(out["Payload"].read())
    assert body["custom"] == {"user": "ada"} and body["env"] == {"locale": "en"}


def test_bad_client_context_is_refused(lam, fn: str) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName=fn, ClientContext="not base64 json!", Payload=b"{}")
    too_long = base64.b64encode(json.dumps({"custom": {"k": "v" * 3000}}).encode()).decode()
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName=fn, ClientContext=too_long, Payload=b"{}")


def test_non_json_payload_is_invalid_request_content(lam, fn: str) -> None:
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as e:
        lam.invoke(FunctionName=fn, Payload=b"{nope")
    assert "Could not parse request body into json" in str(e.value)


def test_oversized_payloads_are_request_too_large(lam, fn: str) -> None:
    big = json.dumps("a" * (6 * 1024 * 1024)).encode()
    with pytest.raises(lam.exceptions.RequestTooLargeException):
        lam.invoke(FunctionName=fn, Payload=big)
    with pytest.raises(lam.exceptions.RequestTooLargeException) as e:
        lam.invoke(FunctionName=fn, InvocationType="Event", Payload=json.dumps("a" * (1024 * 1024)).encode())
    assert "Event" in str(e.value)


def test_over_the_concurrency_limit_is_too_many_requests(gateway: Gateway, lam, make_function) -> None:
    name, folder = make_function(ECHO, concurrency=1, timeout=10)
    gateway.deploy(folder)
    lam.invoke(FunctionName=name, Payload=b"{}")  # warm: the slow call below starts at once
    slow = threading.Thread(target=lambda: lam.invoke(FunctionName=name, Payload=b'{"sleep": 3}'))
    slow.start()
    try:
        time.sleep(1.0)
        with pytest.raises(lam.exceptions.TooManyRequestsException) as e:
            lam.invoke(FunctionName=name, Payload=b"{}")
        assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        slow.join(30)


def test_every_call_leaves_a_record(gateway: Gateway, lam, make_function) -> None:
    name, folder = make_function(ECHO)
    gateway.deploy(folder)
    ids = [lam.invoke(FunctionName=name, Payload=p)["ResponseMetadata"]["RequestId"] for p in (b"{}", b"{}", b'{"fail": 1}')]
    out = gateway.cli("calls", name, "--json")
    records = json.loads(out.stdout)
    assert [r["request_id"] for r in records] == ids[::-1]
    first, second, failed = records[::-1]
    assert first["start"] in ("cold", "prestarted") and first["init_ms"] > 0
    assert second["start"] == "warm" and second["init_ms"] is None
    assert (failed["status"], failed["error_type"]) == ("error", "ValueError")
    assert all(
        r["version"] == 1 and r["memory_mb"] == 128 and 0 < r["max_memory_mb"] <= 128 and r["duration_ms"] > 0 for r in records
    )
    table = gateway.cli("calls", name)
    assert table.returncode == 0 and ids[0] in table.stdout and "ValueError" in table.stdout


def test_logs_follow_streams_new_calls(gateway: Gateway, lam, make_function) -> None:
    name, folder = make_function(ECHO)
    gateway.deploy(folder)
    follower = subprocess.Popen(
        [FAAS, "logs", name, "--follow"], env=gateway.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: list[str] = []
    try:
        time.sleep(1.0)  # the follower's first poll has answered
        for i in range(3):
            lam.invoke(FunctionName=name, Payload=json.dumps({"print": f"marker-{i}"}))
        reader = threading.Thread(target=lambda: [seen.append(line) for line in follower.stdout])  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        deadline = time.monotonic() + 20
        while "marker-2\n" not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        follower.terminate()
        follower.wait(10)
    assert "marker-0\n" in seen and "marker-2\n" in seen, seen
    assert sum(1 for line in seen if line.startswith("REPORT RequestId: ")) >= 3


def test_a_noisy_function_cannot_fill_the_disk(gateway: Gateway, lam, make_function) -> None:
    name, folder = make_function(
        """
        import sys
        def handler(event, context):
            sys.stdout.write(("y" * 1023 + "\\n") * event["kb"])
            sys.stdout.flush()
            return "ok"
    """,
        memory=256,
    )
    gateway.deploy(folder)
    out = lam.invoke(FunctionName=name, LogType="Tail", Payload=b'{"kb": 2048}')
    tail = base64.b64decode(out["LogResult"]).decode()
    dropped = 2048 * 1024 - CALL_LOG_CAP
    assert f"[faas] log output truncated: {dropped} bytes dropped" in tail
    for _ in range(40):  # 40 calls x 1 MB printed: 10 MB kept, past the rotation size
        assert lam.invoke(FunctionName=name, Payload=b'{"kb": 1024}')["StatusCode"] == 200
    gateway.cli("logs", name, "--tail", "1")  # flushes the log writer
    logs = gateway.state_dir / "logs"
    files = [p for p in logs.iterdir() if p.name.startswith(f"{name}.log")]
    total = sum(p.stat().st_size for p in files)
    assert {p.name for p in files} == {f"{name}.log", f"{name}.log.1"}
    assert total <= 2 * (FILE_ROTATE_BYTES + CALL_LOG_CAP + 4096), total
