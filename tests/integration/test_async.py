"""Event invocations against a real gateway: 202 and a run, Lambda's retries, the on-failure
records (`faas failures`), the maximum event age, and events that survive a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.aws_clients import aws_json, lambda_client
from tests.integration.conftest import Gateway, start_gateway, stop_gateway

CODE = """
    import time
    def handler(event, context):
        print("event", event.get("id"), "client_context", context.client_context)
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("fail"):
            raise RuntimeError("failing event " + str(event.get("id")))
        return event.get("id")
"""
ENV = {"FAAS_ASYNC_RETRY_DELAYS": "1,2", "FAAS_ASYNC_MAX_EVENT_AGE": "6"}


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    """A gateway whose async retries wait 1 and 2 s (Lambda: 1 and 2 minutes) and whose events age out after 6 s."""
    gateway = start_gateway(tmp_path_factory.mktemp("async") / "state", extra_env=ENV)
    try:
        yield gateway
    finally:
        stop_gateway(gateway)
        for c in gateway.containers(docker_client):
            c.remove(force=True)


@pytest.fixture(scope="module")
def lam(gw: Gateway):
    return lambda_client(gw.url)


def wait_for(check: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def calls(gw: Gateway, name: str) -> list[dict]:
    out = gw.cli("calls", name, "--json", "--limit", "500")
    return json.loads(out.stdout) if out.returncode == 0 else []


def failures(gw: Gateway, name: str) -> list[dict]:
    out = gw.cli("failures", name)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_event_answers_202_and_runs_without_the_client_context(gw: Gateway, lam, make_function) -> None:
    name, folder = make_function(CODE)
    gw.deploy(folder)
    out = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"id": "e1"}', ClientContext="eyJjdXN0b20iOnt9fQ==")
    assert out["StatusCode"] == 202 and out["Payload"].read() == b""
    rid = out["ResponseMetadata"]["RequestId"]
    record = wait_for(lambda: [c for c in calls(gw, name) if c["request_id"] == rid])
    assert record[0]["status"] == "ok"  # type: ignore[index]
    logs = gw.cli("logs", name).stdout
    assert f"START RequestId: {rid}" in logs and "event e1 client_context None" in logs


def test_the_aws_cli_queues_events_too(gw: Gateway, make_function, tmp_path: Path) -> None:
    name, folder = make_function(CODE)
    gw.deploy(folder)
    meta = aws_json(
        gw.url,
        "invoke",
        "--function-name",
        name,
        "--invocation-type",
        "Event",
        "--payload",
        '{"id": "cli"}',
        str(tmp_path / "out.json"),
    )
    assert meta == {"StatusCode": 202}
    wait_for(lambda: calls(gw, name))


def test_a_failing_event_is_retried_twice_then_recorded(gw: Gateway, lam, make_function) -> None:
    name, folder = make_function(CODE)
    gw.deploy(folder)
    out = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"id": 7, "fail": true}')
    rid = out["ResponseMetadata"]["RequestId"]
    (record,) = wait_for(lambda: failures(gw, name), timeout=60)  # type: ignore[misc]
    attempts = [c for c in calls(gw, name) if c["request_id"] == rid]
    assert len(attempts) == 3 and all(c["error_type"] == "RuntimeError" for c in attempts)
    times = sorted(c["finished"] for c in attempts)
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 1.9  # the backoff between attempts
    assert record["requestContext"] == {
        "requestId": rid,
        "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"id": 7, "fail": True}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "failing event 7"
    assert list((gw.state_dir / "failures" / name).glob(f"*{rid}.json"))


def test_maximum_retry_attempts_from_the_event_invoke_config(gw: Gateway, lam, make_function) -> None:
    name, folder = make_function(CODE)
    gw.deploy(folder)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": true}')
    (record,) = wait_for(lambda: failures(gw, name))  # type: ignore[misc]
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(calls(gw, name)) == 1


def test_throttled_events_age_out_to_the_failures(gw: Gateway, lam, make_function) -> None:
    name, folder = make_function(CODE, concurrency=1, timeout=15)
    gw.deploy(folder)
    lam.invoke(FunctionName=name, Payload=b"{}")  # warm
    busy = threading.Thread(
        target=lambda: lambda_client(gw.url, read_timeout=30).invoke(FunctionName=name, Payload=b'{"sleep": 10}')
    )
    busy.start()
    try:
        time.sleep(0.5)
        rid = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"id": "late"}')["ResponseMetadata"]["RequestId"]
        (record,) = wait_for(lambda: failures(gw, name), timeout=30)  # type: ignore[misc]
    finally:
        busy.join(30)
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert rid not in [c["request_id"] for c in calls(gw, name)]  # it never ran


def test_event_errors_are_lambdas(lam, gw: Gateway) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", InvocationType="Event", Payload=b"{}")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="no-such-function", InvocationType="Event", Payload=b"{nope")


def test_events_survive_a_sigkill_of_the_gateway(runtime_images, tmp_path: Path, docker_client, make_function) -> None:
    state = tmp_path / "state"
    gw = start_gateway(state)
    name, folder = make_function(CODE, timeout=10)
    try:
        gw.deploy(folder)
        lam = lambda_client(gw.url)
        ids = [
            lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": i, "sleep": 2}).encode())[
                "ResponseMetadata"
            ]["RequestId"]
            for i in range(4)
        ]
        os.killpg(gw.proc.pid, signal.SIGKILL)  # arbiter and worker, no cleanup of any kind
        gw.proc.wait(10)
        gw = start_gateway(state)
        done = wait_for(lambda: {c["request_id"] for c in calls(gw, name) if c["status"] == "ok"} >= set(ids), timeout=90)
        assert done
        assert failures(gw, name) == []
    finally:
        stop_gateway(gw)
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
    assert not left
