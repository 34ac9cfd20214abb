"""Lambda's sample events for the services people test with most, for `faas events` and the
dashboard's invoke form.

The shapes are the ones the services send (as in Lambda's and SAM CLI's sample events), so
that a handler written against the real service, or a Powertools parser, takes them; the
fields people change (bucket, key, body, path, method, queue...) are parameters. Pure: only
the standard library, usable on the CLI side and in the gateway alike.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

ACCOUNT = "123456789012"
REGION = "us-east-1"

Options = Mapping[str, Any]


@dataclass(frozen=True)
class Sample:
    service: str
    kind: str
    help: str
    options: tuple[str, ...]  # the flags it takes
    make: Callable[[Options], dict[str, Any]]


def _now_iso(ms: bool = True) -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z" if ms else now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(o: Options, default: str) -> str:
    body = o.get("body")
    return default if body is None else str(body)


def _int(o: Options, key: str, default: int, lo: int, hi: int) -> int:
    raw = o.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"--{key} must be a whole number") from None
    if not lo <= value <= hi:
        raise ValueError(f"--{key} must be between {lo} and {hi}")
    return value


def _path_query(o: Options, default: str) -> tuple[str, dict[str, str] | None]:
    parts = urlsplit(str(o.get("path") or default))
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) or None
    return parts.path or "/", query


def apigateway_rest(o: Options) -> dict[str, Any]:
    path, query = _path_query(o, "/hello")
    method = str(o.get("method") or "GET").upper()
    headers = {"Accept": "*/*", "Content-Type": "application/json", "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": headers["Host"],
            "domainPrefix": "abcdef1234",
            "extendedRequestId": "c6af9ac6-7b61",
            "httpMethod": method,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "faas-events", "accountId": None, "caller": None, "user": None},
            "path": f"/Prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "resourceId": "123456",
            "resourcePath": path,
            "stage": "Prod",
        },
        "body": _body(o, '{"message": "hello"}') if method not in ("GET", "HEAD") or o.get("body") is not None else None,
        "isBase64Encoded": False,
    }


def apigateway_http(o: Options) -> dict[str, Any]:
    path, query = _path_query(o, "/hello")
    method = str(o.get("method") or "GET").upper()
    raw_query = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {
            "accept": "*/*",
            "content-type": "application/json",
            "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "faas-events"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if method not in ("GET", "HEAD") or o.get("body") is not None:
        event["body"] = _body(o, '{"message": "hello"}')
    return event


def alb(o: Options) -> dict[str, Any]:
    path, query = _path_query(o, "/hello")
    method = str(o.get("method") or "GET").upper()
    return {
        "requestContext": {
            "elb": {
                "targetGroupArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/lambda-target/abcdef1234567890"
            }
        },
        "httpMethod": method,
        "path": path,
        "queryStringParameters": query or {},
        "headers": {"accept": "*/*", "host": "lambda-alb-123578498.us-east-1.elb.amazonaws.com", "user-agent": "faas-events"},
        "body": _body(o, "") if method not in ("GET", "HEAD") or o.get("body") is not None else "",
        "isBase64Encoded": False,
    }


def sqs(o: Options) -> dict[str, Any]:
    queue = str(o.get("queue") or "my-queue")
    body = _body(o, '{"message": "hello"}')
    records = []
    for _ in range(_int(o, "count", 1, 1, 10)):
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def sns(o: Options) -> dict[str, Any]:
    topic = str(o.get("topic") or "my-topic")
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{arn}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": _now_iso(),
                    "Signature": "EXAMPLE",
                    # URLs, as SNS sends them (Powertools' parser refuses anything else)
                    "SigningCertUrl": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000000000.pem",
                    "MessageId": str(uuid.uuid4()),
                    "Message": _body(o, "Hello from SNS!"),
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={arn}",
                    "TopicArn": arn,
                    "Subject": o.get("subject") or None,
                },
            }
        ]
    }


def _s3(o: Options, event_name: str) -> dict[str, Any]:
    bucket = str(o.get("bucket") or "example-bucket")
    key = str(o.get("key") or "test/key")
    # S3 sends the key URL-encoded ("my photo.jpg" arrives as "my+photo.jpg")
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": "0A1B2C3D4E5F678901"}
    if event_name.startswith("ObjectCreated"):
        obj.update({"size": _int(o, "size", 1024, 0, 5 * 1024**4), "eTag": "0123456789abcdef0123456789abcdef"})
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": _now_iso(),
                "eventName": event_name,
                "userIdentity": {"principalId": "EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "EXAMPLE123456789",
                    "x-amz-id-2": "EXAMPLE123/abcdefghijklmnopqrstuvwxyz",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "testConfigRule",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def s3_put(o: Options) -> dict[str, Any]:
    return _s3(o, "ObjectCreated:Put")


def s3_delete(o: Options) -> dict[str, Any]:
    return _s3(o, "ObjectRemoved:Delete")


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def dynamodb_stream(o: Options) -> dict[str, Any]:
    table = str(o.get("table") or "my-table")
    key = str(o.get("key") or "101")
    # a number attribute must hold a number: a --key that is not one is a string attribute
    id_attr = {"N": key} if _is_number(key) else {"S": key}
    new_image = {"Id": id_attr, "Message": {"S": _body(o, "New item!")}}
    return {
        "Records": [
            {
                "eventID": "c4ca4238a0b923820dcc509a6f75849b",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": {"Id": id_attr},
                    "NewImage": new_image,
                    "SequenceNumber": "4421584500000000017450439091",
                    "SizeBytes": 26,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2015-06-27T00:48:05.899",
            }
        ]
    }


def kinesis(o: Options) -> dict[str, Any]:
    stream = str(o.get("stream") or "my-stream")
    data = base64.b64encode(_body(o, "Hello, this is a test.").encode()).decode()
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": str(o.get("key") or "1"),
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": data,
                    "approximateArrivalTimestamp": round(time.time(), 3),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}",
            }
        ]
    }


def eventbridge_scheduled(o: Options) -> dict[str, Any]:
    """The payload faas's own schedules send (faas/events/schedule.py builds the same)."""
    rule = str(o.get("rule") or "my-schedule")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": _now_iso(ms=False),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def eventbridge_custom(o: Options) -> dict[str, Any]:
    detail_text = _body(o, '{"orderId": "1234", "status": "created"}')
    try:
        detail = json.loads(detail_text)
    except ValueError:
        detail = {"message": detail_text}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": str(o.get("detail_type") or "OrderCreated"),
        "source": str(o.get("source") or "com.example.orders"),
        "account": ACCOUNT,
        "time": _now_iso(ms=False),
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def cloudwatch_logs(o: Options) -> dict[str, Any]:
    group = str(o.get("log_group") or "/aws/lambda/my-function")
    now_ms = int(time.time() * 1000)
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": group,
        "logStream": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["my-filter"],
        "logEvents": [
            {"id": "36010471052046411235236784393457001592352233406464000", "timestamp": now_ms, "message": _body(o, "hello log")}
        ],
    }
    packed = base64.b64encode(gzip.compress(json.dumps(data).encode(), mtime=0)).decode()
    return {"awslogs": {"data": packed}}


SAMPLES: dict[tuple[str, str], Sample] = {
    (s.service, s.kind): s
    for s in (
        Sample("apigateway", "rest", "API Gateway REST API (payload 1.0)", ("path", "method", "body"), apigateway_rest),
        Sample("apigateway", "http", "API Gateway HTTP API (payload 2.0)", ("path", "method", "body"), apigateway_http),
        Sample("alb", "request", "Application Load Balancer", ("path", "method", "body"), alb),
        Sample("sqs", "receive", "SQS messages", ("queue", "body", "count"), sqs),
        Sample("sns", "notification", "SNS notification", ("topic", "body", "subject"), sns),
        Sample("s3", "put", "S3 object created", ("bucket", "key", "size"), s3_put),
        Sample("s3", "delete", "S3 object removed", ("bucket", "key"), s3_delete),
        Sample("dynamodb", "stream", "DynamoDB stream INSERT", ("table", "key", "body"), dynamodb_stream),
        Sample("kinesis", "record", "Kinesis data stream record", ("stream", "key", "body"), kinesis),
        Sample("eventbridge", "scheduled", "EventBridge Scheduled Event", ("rule",), eventbridge_scheduled),
        Sample("eventbridge", "custom", "EventBridge custom event", ("source", "detail_type", "body"), eventbridge_custom),
        Sample("cloudwatch", "logs", "CloudWatch Logs subscription (gzip + base64)", ("log_group", "body"), cloudwatch_logs),
    )
}
OPTIONS = (
    "body",
    "path",
    "method",
    "bucket",
    "key",
    "size",
    "queue",
    "count",
    "topic",
    "subject",
    "table",
    "stream",
    "rule",
    "source",
    "detail_type",
    "log_group",
)


def find(service: str, kind: str | None = None) -> Sample:
    """A sample by service and kind (the service's first kind when none is given); a KeyError
    naming what there is."""
    matches = [s for (svc, k), s in SAMPLES.items() if svc == service and (kind is None or k == kind)]
    if not matches:
        there = ", ".join(f"{svc} {k}" for svc, k in SAMPLES)
        raise KeyError(f"no sample event {service}{' ' + kind if kind else ''}; there are: {there}")
    return matches[0]


def generate(service: str, kind: str | None = None, **options: Any) -> dict[str, Any]:
    sample = find(service, kind)
    return sample.make({k: v for k, v in options.items() if v is not None})


def catalogue() -> list[dict[str, Any]]:
    """Every sample, for `faas events` without arguments and the dashboard's picker."""
    return [{"service": s.service, "kind": s.kind, "help": s.help, "options": list(s.options)} for s in SAMPLES.values()]
