"""Lambda's sample events: each has the fields its service's documented shape requires, each is
accepted by Powertools' parser model (pydantic) and data class for its service, the flags
land where users look (read back through Powertools, as a handler would), and `faas events`
prints JSON that `faas invoke --payload` takes."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities import data_classes as dc
from aws_lambda_powertools.utilities.parser import models as pm
from pydantic import BaseModel

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


# (service, kind) -> Powertools' parser model for it
PARSER: dict[tuple[str, str], type[BaseModel]] = {
    ("apigateway", "rest"): pm.APIGatewayProxyEventModel,
    ("apigateway", "http"): pm.APIGatewayProxyEventV2Model,
    ("alb", "request"): pm.AlbModel,
    ("sqs", "receive"): pm.SqsModel,
    ("sns", "notification"): pm.SnsModel,
    ("s3", "put"): pm.S3Model,
    ("s3", "delete"): pm.S3Model,
    ("dynamodb", "stream"): pm.DynamoDBStreamModel,
    ("kinesis", "record"): pm.KinesisDataStreamModel,
    ("eventbridge", "scheduled"): pm.EventBridgeModel,
    ("eventbridge", "custom"): pm.EventBridgeModel,
    ("cloudwatch", "logs"): pm.CloudWatchLogsModel,
}

# flags for each sample, so that the check covers what users pass, not only the defaults
FLAGS: dict[tuple[str, str], dict[str, Any]] = {
    ("apigateway", "rest"): {"path": "/items/7?q=1", "method": "post", "body": '{"a": 1}'},
    ("apigateway", "http"): {"path": "/items/7?q=1", "method": "put", "body": "plain"},
    ("alb", "request"): {"path": "/x?y=2", "method": "delete", "body": "gone"},
    ("sqs", "receive"): {"queue": "orders", "body": "hi", "count": 3},
    ("sns", "notification"): {"topic": "alerts", "body": "ping", "subject": "S"},
    ("s3", "put"): {"bucket": "photos", "key": "cats/my cat+1.jpg", "size": 7},
    ("s3", "delete"): {"bucket": "photos", "key": "cats/old.jpg"},
    ("dynamodb", "stream"): {"table": "users", "key": "abc", "body": "row"},
    ("kinesis", "record"): {"stream": "clicks", "key": "p1", "body": "zz"},
    ("eventbridge", "scheduled"): {"rule": "nightly"},
    ("eventbridge", "custom"): {"source": "my.app", "detail_type": "T", "body": '{"x": 1}'},
    ("cloudwatch", "logs"): {"log_group": "/g", "body": "line"},
}


def test_every_sample_has_a_powertools_model_and_flags() -> None:
    assert set(PARSER) == set(FLAGS) == set(samples.SAMPLES)
    for key, flags in FLAGS.items():
        assert set(flags) <= set(samples.SAMPLES[key].options), key


@pytest.mark.parametrize("with_flags", [False, True], ids=["defaults", "flags"])
@pytest.mark.parametrize("key", sorted(PARSER), ids="-".join)
def test_each_sample_is_accepted_by_its_powertools_parser_model(key: tuple[str, str], with_flags: bool) -> None:
    event = json.loads(json.dumps(samples.generate(*key, **(FLAGS[key] if with_flags else {}))))
    PARSER[key].model_validate(event)  # a ValidationError names the field a handler would trip on


def _sample(key: tuple[str, str]) -> dict[str, Any]:
    """What `faas events` prints with the sample's flags, as the handler receives it."""
    return json.loads(json.dumps(samples.generate(*key, **FLAGS[key])))


def test_api_samples_give_powertools_the_path_method_and_body() -> None:
    rest = dc.APIGatewayProxyEvent(_sample(("apigateway", "rest")))
    assert (rest.path, rest.http_method, rest.body, rest.json_body) == ("/items/7", "POST", '{"a": 1}', {"a": 1})
    assert rest.query_string_parameters == {"q": "1"} and rest.request_context.stage == "Prod"
    http = dc.APIGatewayProxyEventV2(_sample(("apigateway", "http")))
    assert (http.raw_path, http.request_context.http.method, http.body, http.raw_query_string) == (
        "/items/7",
        "PUT",
        "plain",
        "q=1",
    )
    alb = dc.ALBEvent(_sample(("alb", "request")))
    assert (alb.path, alb.http_method, alb.body, alb.query_string_parameters) == ("/x", "DELETE", "gone", {"y": "2"})
    model = pm.APIGatewayProxyEventModel.model_validate(_sample(("apigateway", "rest")))
    assert (model.path, model.httpMethod, model.body) == ("/items/7", "POST", '{"a": 1}')


def test_s3_samples_give_powertools_the_bucket_and_key() -> None:
    put = dc.S3Event(_sample(("s3", "put")))
    assert (put.bucket_name, put.object_key, put.record.event_name) == ("photos", "cats/my cat+1.jpg", "ObjectCreated:Put")
    assert put.record.s3.get_object.size == 7
    gone = dc.S3Event(_sample(("s3", "delete")))
    assert (gone.bucket_name, gone.object_key, gone.record.event_name) == ("photos", "cats/old.jpg", "ObjectRemoved:Delete")
    model = pm.S3Model.model_validate(_sample(("s3", "put")))
    assert model.Records[0].s3.bucket.name == "photos"


def test_record_samples_give_powertools_their_bodies() -> None:
    sqs = list(dc.SQSEvent(_sample(("sqs", "receive"))).records)
    assert [r.body for r in sqs] == ["hi"] * 3 and sqs[0].event_source_arn.endswith(":orders")
    assert len({r.message_id for r in sqs}) == 3
    sns = dc.SNSEvent(_sample(("sns", "notification")))
    assert (sns.sns_message, sns.record.sns.subject, sns.record.sns.topic_arn.split(":")[-1]) == ("ping", "S", "alerts")
    stream = next(dc.DynamoDBStreamEvent(_sample(("dynamodb", "stream"))).records)
    assert stream.dynamodb is not None
    assert stream.dynamodb.keys == {"Id": "abc"} and stream.dynamodb.new_image == {"Id": "abc", "Message": "row"}
    numeric = next(dc.DynamoDBStreamEvent(samples.generate("dynamodb", "stream", key="101")).records)
    assert numeric.dynamodb is not None and numeric.dynamodb.keys == {"Id": 101}
    kinesis = next(dc.KinesisStreamEvent(_sample(("kinesis", "record"))).records)
    assert (kinesis.kinesis.data_as_text(), kinesis.kinesis.partition_key) == ("zz", "p1")


def test_eventbridge_and_logs_samples_give_powertools_their_fields() -> None:
    scheduled = dc.EventBridgeEvent(_sample(("eventbridge", "scheduled")))
    assert (scheduled.detail_type, scheduled.source, scheduled.resources[0].split("/")[-1]) == (
        "Scheduled Event",
        "aws.events",
        "nightly",
    )
    custom = dc.EventBridgeEvent(_sample(("eventbridge", "custom")))
    assert (custom.detail_type, custom.source, custom.detail) == ("T", "my.app", {"x": 1})
    logs = dc.CloudWatchLogsEvent(_sample(("cloudwatch", "logs"))).parse_logs_data()
    assert (logs.log_group, logs.message_type, logs.log_events[0].message) == ("/g", "DATA_MESSAGE", "line")
    parsed = pm.CloudWatchLogsModel.model_validate(_sample(("cloudwatch", "logs")))
    assert parsed.awslogs.decoded_data.logEvents[0].message == "line"
