"""The pure parts of SQS event sources and destinations: which messages of a batch failed, the
SQS record's shape, mapping settings, destination configs, and what a template says."""

from __future__ import annotations

import json

import pytest

from faas.errors import ValidationError
from faas.events.destinations import check_destination_config
from faas.events.sam_sources import read
from faas.events.sqs_mappings import check_settings
from faas.events.sqs_poller import failed_ids, sqs_record
from faas.models import Result

IDS = ["a", "b", "c"]


def result(payload: object, error: str | None = None) -> Result:
    return Result(request_id="r", payload=json.dumps(payload).encode(), function_error=error, version=1)


def test_a_function_error_fails_the_whole_batch() -> None:
    assert failed_ids(result({"errorMessage": "x"}, "Unhandled"), IDS, True) == set(IDS)
    assert failed_ids(result(None, "Unhandled"), IDS, False) == set(IDS)


def test_reported_failures_keep_only_those_messages() -> None:
    assert failed_ids(result({"batchItemFailures": [{"itemIdentifier": "b"}]}), IDS, True) == {"b"}
    assert failed_ids(result({"batchItemFailures": []}), IDS, True) == set()
    assert failed_ids(result(None), IDS, True) == set()
    # Without ReportBatchItemFailures the response is not read: the batch succeeded.
    assert failed_ids(result({"batchItemFailures": [{"itemIdentifier": "b"}]}), IDS, False) == set()


@pytest.mark.parametrize(
    "failures", [[{"itemIdentifier": "zzz"}], [{"itemIdentifier": None}], [{"other": 1}], "b", [{"itemIdentifier": ""}]]
)
def test_a_malformed_failure_report_fails_the_whole_batch(failures: object) -> None:
    assert failed_ids(result({"batchItemFailures": failures}), IDS, True) == set(IDS)


def test_the_record_has_lambdas_sqs_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {"k": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }
    record = sqs_record(message, "arn:aws:sqs:eu-west-1:123456789012:q", "eu-west-1")
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {"k": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"}},
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q",
        "awsRegion": "eu-west-1",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"BatchSize": 0},
        {"BatchSize": True},
        {"BatchSize": 11},  # over 10 needs a batching window
        {"MaximumBatchingWindowInSeconds": 301},
        {"FunctionResponseTypes": ["Other"]},
        {"Enabled": "true"},
        {"ScalingConfig": {"MaximumConcurrency": 1}},
        {"FilterCriteria": {"Filters": [{"Pattern": "{}"}]}},
        {"StartingPosition": "LATEST"},
    ],
)
def test_bad_mapping_settings_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        check_settings(body, {"BatchSize": 10})


def test_mapping_settings_apply_over_the_current_ones() -> None:
    got = check_settings(
        {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 5, "ScalingConfig": {"MaximumConcurrency": 3}}, {"Enabled": True}
    )
    assert got == {
        "Enabled": True,
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 5,
        "ScalingConfig": {"MaximumConcurrency": 3},
    }


def test_destinations_are_functions_or_queues() -> None:
    ok = {
        "OnSuccess": {"Destination": "arn:aws:lambda:us-east-1:123456789012:function:sink"},
        "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"},
    }
    assert check_destination_config(ok) == ok
    assert check_destination_config({"OnSuccess": {"Destination": "sink"}, "OnFailure": {}}) == {
        "OnSuccess": {"Destination": "sink"}
    }
    for bad in (
        {"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:123456789012:topic"}},
        {"OnSuccess": {"Destination": "arn:aws:events:us-east-1:123456789012:event-bus/default"}},
        {"Elsewhere": {}},
        "sink",
    ):
        with pytest.raises(ValidationError):
            check_destination_config(bad)


def test_a_template_names_its_queues_and_destinations() -> None:
    resources = {
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {"Q": {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:us-east-1:1:q", "BatchSize": 3}}},
                "EventInvokeConfig": {"DestinationConfig": {"OnFailure": {"Type": "Lambda", "Destination": "Sink"}}},
            },
        },
        "Sink": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "Map": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"FunctionName": "Sink", "EventSourceArn": "arn:aws:sqs:us-east-1:1:other", "Tags": []},
        },
    }
    warnings: list[str] = []
    mappings, configs = read(resources, {"Worker": "worker", "Sink": "sink"}, lambda v, _where: v, warnings)
    assert mappings == [
        {"FunctionName": "worker", "EventSourceArn": "arn:aws:sqs:us-east-1:1:q", "BatchSize": 3},
        {"FunctionName": "sink", "EventSourceArn": "arn:aws:sqs:us-east-1:1:other"},
    ]
    assert configs == {"worker": {"DestinationConfig": {"OnFailure": {"Destination": "sink"}}}}
    assert warnings == ["Map: not supported by faas, ignored: Tags"]
