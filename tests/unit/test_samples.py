"""Lambda's sample events: each has the fields its service's documented shape requires (what
Powertools' data classes and parsers read; Powertools is not a test dependency here, so the
fields are checked against the shapes in AWS's docs), the flags land where users look, and
`faas events` prints JSON that `faas invoke --payload` takes."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from faas.cli.main import main
from faas.events import samples

# (service, kind) -> fields that must be there, as dotted paths ("Records.0" is the first record)
REQUIRED = {
    ("apigateway", "rest"): [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "requestContext.requestId",
        "requestContext.stage",
        "requestContext.identity.sourceIp",
        "isBase64Encoded",
    ],
    ("apigateway", "http"): [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext.http.method",
        "requestContext.http.path",
        "requestContext.requestId",
        "requestContext.timeEpoch",
        "isBase64Encoded",
    ],
    ("alb", "request"): ["requestContext.elb.targetGroupArn", "httpMethod", "path", "headers", "body", "isBase64Encoded"],
    ("sqs", "receive"): [
        "Records.0.messageId",
        "Records.0.receiptHandle",
        "Records.0.body",
        "Records.0.attributes.ApproximateReceiveCount",
        "Records.0.md5OfBody",
        "Records.0.eventSource",
        "Records.0.eventSourceARN",
        "Records.0.awsRegion",
    ],
    ("sns", "notification"): [
        "Records.0.EventSource",
        "Records.0.EventSubscriptionArn",
        "Records.0.Sns.MessageId",
        "Records.0.Sns.Message",
        "Records.0.Sns.TopicArn",
        "Records.0.Sns.Timestamp",
        "Records.0.Sns.Type",
    ],
    ("s3", "put"): [
        "Records.0.eventName",
        "Records.0.eventTime",
        "Records.0.s3.bucket.name",
        "Records.0.s3.bucket.arn",
        "Records.0.s3.object.key",
        "Records.0.s3.object.size",
        "Records.0.s3.object.eTag",
    ],
    ("s3", "delete"): [
        "Records.0.eventName",
        "Records.0.s3.bucket.name",
        "Records.0.s3.object.key",
        "Records.0.s3.object.sequencer",
    ],
    ("dynamodb", "stream"): [
        "Records.0.eventID",
        "Records.0.eventName",
        "Records.0.eventSource",
        "Records.0.dynamodb.Keys",
        "Records.0.dynamodb.NewImage",
        "Records.0.dynamodb.SequenceNumber",
        "Records.0.dynamodb.StreamViewType",
        "Records.0.eventSourceARN",
    ],
    ("kinesis", "record"): [
        "Records.0.kinesis.data",
        "Records.0.kinesis.partitionKey",
        "Records.0.kinesis.sequenceNumber",
        "Records.0.kinesis.approximateArrivalTimestamp",
        "Records.0.eventSource",
        "Records.0.eventSourceARN",
    ],
    ("eventbridge", "scheduled"): ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"],
    ("eventbridge", "custom"): ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"],
    ("cloudwatch", "logs"): ["awslogs.data"],
}


def dig(event: Any, path: str) -> Any:
    for part in path.split("."):
        event = event[int(part)] if isinstance(event, list) else event[part]
    return event


def test_every_sample_is_checked() -> None:
    assert set(REQUIRED) == set(samples.SAMPLES)


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_each_sample_has_its_services_required_fields(key: tuple[str, str]) -> None:
    event = json.loads(json.dumps(samples.generate(*key)))
    for path in REQUIRED[key]:
        dig(event, path)  # a KeyError names what is missing


def test_the_flags_land_where_users_look() -> None:
    s3 = samples.generate("s3", "put", bucket="b", key="k/x.txt")["Records"][0]["s3"]
    assert s3["bucket"]["name"] == "b" and s3["object"]["key"] == "k/x.txt"
    rest = samples.generate("apigateway", "rest", path="/items/7?q=1", method="post", body='{"a": 1}')
    assert (rest["path"], rest["httpMethod"], rest["body"], rest["queryStringParameters"]) == (
        "/items/7",
        "POST",
        '{"a": 1}',
        {"q": "1"},
    )
    http = samples.generate("apigateway", "http", path="/x?y=2")
    assert http["rawPath"] == "/x" and http["rawQueryString"] == "y=2" and "body" not in http
    assert samples.generate("sqs", queue="q", body="hi", count=3)["Records"][2]["eventSourceARN"].endswith(":q")
    assert base64.b64decode(samples.generate("kinesis", body="zz")["Records"][0]["kinesis"]["data"]) == b"zz"
    logs = samples.generate("cloudwatch", "logs", log_group="/g", body="line")
    data = json.loads(gzip.decompress(base64.b64decode(logs["awslogs"]["data"])))
    assert data["logGroup"] == "/g" and data["logEvents"][0]["message"] == "line" and data["messageType"] == "DATA_MESSAGE"
    assert samples.generate("eventbridge", "custom", body='{"x": 1}', detail_type="T")["detail"] == {"x": 1}


def test_faas_events_prints_json_and_refuses_what_a_sample_does_not_take(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "s3", "put", "--bucket", "b", "--key", "k"]) == 0
    assert json.loads(capsys.readouterr().out)["Records"][0]["s3"]["bucket"]["name"] == "b"
    assert main(["events", "s3", "put", "--queue", "q"]) == 1
    assert "--queue" in capsys.readouterr().err
    assert main(["events", "sqs", "--count", "many"]) == 1
    assert "whole number" in capsys.readouterr().err
    assert main(["events", "nothing"]) == 1
    assert main(["events"]) == 0 and "cloudwatch" in capsys.readouterr().out
