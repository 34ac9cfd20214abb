"""SQS event source mappings and destinations against a real gateway and a real SQS-compatible
server (moto's server mode on loopback): batches, partial batch failures, redrive to the
queue's dead-letter queue, a SIGKILL of the gateway mid-batch with no message lost, and
on-success / on-failure destinations to a function and to a queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import Gateway, free_port, start_gateway, stop_gateway

ACCOUNT = "123456789012"
MOTO = str(Path(sys.executable).parent / "moto_server")

RECORDER = """
    import json, time
    def handler(event, context):
        records = event.get("Records") or []
        print("BATCH", json.dumps([r["body"] for r in records]))
        for r in records:
            print("RECORD", json.dumps(r))
        if records and records[0]["body"].startswith("slow"):
            print("SLOW-START", json.dumps([r["body"] for r in records]), flush=True)
            time.sleep(6)
        failures = [{"itemIdentifier": r["messageId"]} for r in records if r["body"].startswith("bad")]
        for r in records:
            if not r["body"].startswith("bad"):
                print("DONE", r["body"])
        return {"batchItemFailures": failures}
"""

TARGET = """
    import json
    def handler(event, context):
        print("DEST", json.dumps(event))
        if isinstance(event, dict) and event.get("fail"):
            raise RuntimeError("asked to fail")
        return {"ok": event.get("n") if isinstance(event, dict) else None}
"""


def wait_for(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def sqs_url() -> Iterator[str]:
    """moto's server on a loopback port: a real SQS endpoint speaking the real protocol."""
    port = free_port()
    proc = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _up(url: str) -> bool:
    try:
        requests.get(url + "/moto-api/", timeout=1)
        return True
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def sqs(sqs_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=sqs_url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")


def sqs_env(sqs_url: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL_SQS": sqs_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@pytest.fixture(scope="module")
def gw(runtime_images, sqs_url: str, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("sqs") / "state", extra_env=sqs_env(sqs_url))
    try:
        yield gateway
    finally:
        stop_gateway(gateway)
        for c in gateway.containers(docker_client):
            c.remove(force=True)


@pytest.fixture(scope="module")
def lam(gw: Gateway) -> Any:
    return lambda_client(gw.url)


def make_queue(
    sqs: Any, name: str, *, visibility: int = 30, dlq_arn: str | None = None, max_receives: int = 2
) -> tuple[str, str]:
    attrs = {"VisibilityTimeout": str(visibility)}
    if dlq_arn:
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    return url, f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def queued(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def in_flight(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs: Any, url: str, want: int, timeout: float = 60) -> list[str]:
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < want and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def log_lines(gw: Gateway, name: str, tag: str) -> list[str]:
    out = gw.cli("logs", name, "--tail", "2000").stdout
    return [line.split(tag + " ", 1)[1] for line in out.splitlines() if f"{tag} " in line]


def test_a_mapping_delivers_batches_with_lambdas_sqs_event(gw: Gateway, lam: Any, sqs: Any, make_function) -> None:
    name, folder = make_function(RECORDER)
    gw.deploy(folder)
    url, arn = make_queue(sqs, "batches")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=5, MaximumBatchingWindowInSeconds=3)
    assert made["State"] == "Creating" and made["BatchSize"] == 5
    assert lam.get_event_source_mapping(UUID=made["UUID"])["State"] == "Enabled"
    assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]] == [made["UUID"]]
    done = wait_for(lambda: len(log_lines(gw, name, "DONE")) >= 5 and log_lines(gw, name, "DONE"))
    assert sorted(done) == [f"m{i}" for i in range(5)]
    batches = [json.loads(b) for b in log_lines(gw, name, "BATCH")]
    assert max(len(b) for b in batches) > 1  # the batching window gathered more than one message
    record = json.loads(log_lines(gw, name, "RECORD")[0])
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"} <= set(record)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    wait_for(lambda: queued(sqs, url) == 0, timeout=30)  # each deleted once the function succeeded on it
    lam.delete_event_source_mapping(UUID=made["UUID"])
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_partial_batch_failures_return_and_end_in_the_dead_letter_queue(gw: Gateway, lam: Any, sqs: Any, make_function) -> None:
    name, folder = make_function(RECORDER)
    gw.deploy(folder)
    dlq_url, dlq_arn = make_queue(sqs, "partial-dlq")
    url, arn = make_queue(sqs, "partial", visibility=1, dlq_arn=dlq_arn, max_receives=2)
    for body in ("good-1", "bad-1", "good-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    made = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=3,
        MaximumBatchingWindowInSeconds=2,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    assert drain(sqs, dlq_url, 1) == ["bad-1"]  # tried twice (maxReceiveCount), then redriven
    lam.delete_event_source_mapping(UUID=made["UUID"])
    done = log_lines(gw, name, "DONE")
    assert sorted(done) == ["good-1", "good-2"]  # the successful ones were deleted, never run again
    bad_runs = [b for b in log_lines(gw, name, "BATCH") if "bad-1" in b]
    assert len(bad_runs) == 2
    assert queued(sqs, url) == 0


def test_bad_mappings_are_refused_in_lambdas_error_shape(gw: Gateway, lam: Any, make_function) -> None:
    name, folder = make_function(RECORDER)
    gw.deploy(folder)
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:nowhere"
    for kwargs, text in (
        ({"EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/s"}, "SQS queue ARN"),
        ({"EventSourceArn": arn, "BatchSize": 50}, "MaximumBatchingWindowInSeconds"),
        ({"EventSourceArn": arn, "FunctionResponseTypes": ["Nope"]}, "FunctionResponseTypes"),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
            lam.create_event_source_mapping(FunctionName=name, **kwargs)
        assert text in str(err.value)
    for bad in ({"BatchSize": 0}, {"BatchSize": "10"}, {"ScalingConfig": {"MaximumConcurrency": 1}}, {"Enabled": "yes"}):
        raw = requests.post(
            f"{gw.url}/2015-03-31/event-source-mappings/", json={"FunctionName": name, "EventSourceArn": arn, **bad}, timeout=30
        )
        assert raw.status_code == 400 and next(iter(bad)) in raw.json()["message"], raw.text
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_event_source_mapping(FunctionName="no-such-function", EventSourceArn=arn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_destinations_on_success_to_a_function_and_on_failure_to_a_queue(gw: Gateway, lam: Any, sqs: Any, make_function) -> None:
    target, target_folder = make_function(TARGET)
    gw.deploy(target_folder)
    source, source_folder = make_function(TARGET)
    gw.deploy(source_folder)
    fail_url, fail_arn = make_queue(sqs, "on-failure")
    lam.put_function_event_invoke_config(
        FunctionName=source,
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnSuccess": {"Destination": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{target}"},
            "OnFailure": {"Destination": fail_arn},
        },
    )
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=b'{"n": 7}')
    seen = wait_for(lambda: [json.loads(x) for x in log_lines(gw, target, "DEST")])
    record = seen[0]
    assert record["version"] == "1.0" and record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["functionArn"].endswith(f":function:{source}:$LATEST")
    assert record["requestPayload"] == {"n": 7} and record["responsePayload"] == {"ok": 7}
    assert record["responseContext"]["statusCode"] == 200

    lam.invoke(FunctionName=source, InvocationType="Event", Payload=b'{"fail": true}')
    bodies = drain(sqs, fail_url, 1, timeout=60)
    failure = json.loads(bodies[0])
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 1
    assert failure["requestPayload"] == {"fail": True}
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert gw.cli("failures", source).stdout.strip() == ""  # sent to its destination, not to the folder


def test_a_destination_that_is_not_a_function_or_queue_is_refused(gw: Gateway, lam: Any, make_function) -> None:
    name, folder = make_function(TARGET)
    gw.deploy(folder)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:1:topic"}}
        )
    assert "SQS queue" in str(err.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)


def test_a_gateway_killed_mid_batch_loses_no_message(
    runtime_images, sqs_url: str, sqs: Any, tmp_path_factory: pytest.TempPathFactory, docker_client, make_function
) -> None:
    state = tmp_path_factory.mktemp("sqs-kill") / "state"
    env = sqs_env(sqs_url)
    first = start_gateway(state, extra_env=env)
    try:
        name, folder = make_function(RECORDER, timeout=15)
        first.deploy(folder)
        url, arn = make_queue(sqs, "killed", visibility=10)
        for body in ("slow-1", "slow-2", "slow-3"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        lambda_client(first.url).create_event_source_mapping(
            EventSourceArn=arn, FunctionName=name, BatchSize=3, MaximumBatchingWindowInSeconds=2
        )
        wait_for(lambda: in_flight(sqs, url) == 3)  # the batch was received
        time.sleep(2.5)  # and is in the function, which takes 6 s over it
        os.killpg(first.proc.pid, signal.SIGKILL)  # mid-batch: the function is sleeping on it
        first.proc.wait(10)
    finally:
        if first.proc.poll() is None:
            stop_gateway(first)
    assert queued(sqs, url) == 3  # held by the dead gateway, not deleted
    assert not log_lines(first, name, "DONE")
    second = start_gateway(state, extra_env=env)  # the mapping is kept; the messages come back
    try:
        done = wait_for(lambda: len(set(log_lines(second, name, "DONE"))) >= 3 and log_lines(second, name, "DONE"))
        assert {"slow-1", "slow-2", "slow-3"} <= set(done)
        wait_for(lambda: queued(sqs, url) == 0, timeout=30)
    finally:
        stop_gateway(second)
        for c in second.containers(docker_client):
            c.remove(force=True)


TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {queue}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {worker}
      CodeUri: worker/
      Handler: app.handler
      Runtime: python3.11
      Events:
        FromJobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Sink.Arn
  Sink:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {sink}
      CodeUri: sink/
      Handler: app.handler
      Runtime: python3.11
"""


def test_a_template_with_an_sqs_event_drains_its_queue(gw: Gateway, lam: Any, sqs: Any, tmp_path: Path) -> None:
    import textwrap
    import uuid

    tag = uuid.uuid4().hex[:6]
    worker, sink, queue = f"tw-{tag}", f"ts-{tag}", f"tq-{tag}"
    for folder, code in (("worker", RECORDER), ("sink", TARGET)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "app.py").write_text(textwrap.dedent(code))
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(queue=queue, worker=worker, sink=sink))
    url, arn = make_queue(sqs, queue)
    for _ in range(2):  # deployed twice: the mapping is updated, not made again
        out = gw.cli("deploy", str(template))
        assert out.returncode == 0, out.stdout + out.stderr
    assert f"queue {arn} -> {worker}" in out.stdout
    mappings = lam.list_event_source_mappings(FunctionName=worker)["EventSourceMappings"]
    assert len(mappings) == 1 and mappings[0]["BatchSize"] == 5
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"t{i}")
    done = wait_for(lambda: len(log_lines(gw, worker, "DONE")) >= 3 and log_lines(gw, worker, "DONE"))
    assert sorted(done) == ["t0", "t1", "t2"]
    wait_for(lambda: queued(sqs, url) == 0, timeout=30)
    lam.invoke(FunctionName=worker, InvocationType="Event", Payload=b'{"Records": []}')
    record = json.loads(wait_for(lambda: log_lines(gw, sink, "DEST"))[0])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["functionArn"].endswith(f":function:{worker}:$LATEST")


def test_faas_up_with_a_template_drains_its_queue(runtime_images, sqs_url: str, sqs: Any, tmp_path: Path, docker_client) -> None:
    import textwrap
    import uuid

    tag = uuid.uuid4().hex[:6]
    worker, sink, queue = f"uw-{tag}", f"us-{tag}", f"uq-{tag}"
    for folder, code in (("worker", RECORDER), ("sink", TARGET)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "app.py").write_text(textwrap.dedent(code))
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(queue=queue, worker=worker, sink=sink))
    url, _arn = make_queue(sqs, queue)
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"u{i}")
    up = start_gateway(tmp_path / "state", extra_env=sqs_env(sqs_url), args=(str(template),))
    try:
        done = wait_for(lambda: len(log_lines(up, worker, "DONE")) >= 4 and log_lines(up, worker, "DONE"))
        assert sorted(done) == ["u0", "u1", "u2", "u3"]
        wait_for(lambda: queued(sqs, url) == 0, timeout=30)
    finally:
        stop_gateway(up)
        for c in up.containers(docker_client):
            c.remove(force=True)


SIZER = """
    def handler(event, context):
        records = event["Records"]
        print("SIZE", len(records), sum(len(r["body"]) for r in records))
        for r in records:
            print("DONE", r["body"][:8])
"""


def test_a_batch_stops_at_six_megabytes_and_the_rest_follow(gw: Gateway, lam: Any, sqs: Any, make_function) -> None:
    name, folder = make_function(SIZER, timeout=30, memory=512)
    gw.deploy(folder)
    url, arn = make_queue(sqs, "big")
    for i in range(60):  # 60 x 250 KB: 15 MB, more than the two pollers' two calls may carry
        sqs.send_message(QueueUrl=url, MessageBody=f"big-{i:04d}" + "x" * 250_000)
    made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=60, MaximumBatchingWindowInSeconds=3)
    done = wait_for(lambda: len(set(log_lines(gw, name, "DONE"))) >= 60 and log_lines(gw, name, "DONE"))
    assert len(set(done)) == 60
    sizes = [tuple(map(int, line.split())) for line in log_lines(gw, name, "SIZE")]
    assert all(total < 6 * 1024 * 1024 for _count, total in sizes)
    assert f"event source mapping {made['UUID']}" not in gw.logs()  # no batch was refused or failed
    wait_for(lambda: queued(sqs, url) == 0, timeout=30)
    lam.delete_event_source_mapping(UUID=made["UUID"])
