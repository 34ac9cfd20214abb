"""The SQS endpoint faas talks to, and queue ARNs turned into queue URLs.

faas runs no queue of its own: it polls the SQS-compatible server the user already runs
(LocalStack, ElasticMQ, moto's server), found as the AWS SDKs find it: AWS_ENDPOINT_URL_SQS,
then AWS_ENDPOINT_URL, in faas's environment or faas.yaml's aws_endpoints (faas/config.py).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from faas.errors import ValidationError
from faas.models import short_repr

QUEUE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sqs:([a-z0-9-]{1,32}):([0-9]{12}|[a-z0-9-]{1,32}):([A-Za-z0-9_-]{1,80}(\.fifo)?)")
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class QueueRef:
    arn: str
    region: str
    account: str
    name: str


def parse_queue_arn(value: object, field: str = "EventSourceArn") -> QueueRef:
    """A queue's ARN, or a clear ValidationError (only SQS sources are run here)."""
    if not isinstance(value, str) or not QUEUE_ARN.fullmatch(value):
        raise ValidationError(
            f"{field} must be an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE), got {short_repr(value)}; "
            "faas runs SQS event sources only"
        )
    m = QUEUE_ARN.fullmatch(value)
    assert m is not None
    return QueueRef(value, m.group(1), m.group(2), m.group(3))


def sqs_endpoint(endpoints: Mapping[str, str]) -> str | None:
    return endpoints.get("AWS_ENDPOINT_URL_SQS") or endpoints.get("AWS_ENDPOINT_URL")


class Queues:
    """boto3 SQS clients (one per region, shared: boto3 clients are thread-safe) and the URL of
    each queue ARN, looked up once."""

    def __init__(self, endpoints: Mapping[str, str]) -> None:
        self.endpoint = sqs_endpoint(endpoints)
        self._clients: dict[str, Any] = {}
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def require(self) -> str:
        if not self.endpoint:
            raise ValidationError(
                "faas has no SQS endpoint: set AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL) where faas runs, "
                "or aws_endpoints: {sqs: URL} in faas.yaml, to the SQS-compatible server you run "
                "(LocalStack, ElasticMQ, moto's server)"
            )
        return self.endpoint

    def client(self, region: str) -> Any:
        endpoint = self.require()
        with self._lock:
            found = self._clients.get(region)
            if found is None:
                import boto3  # type: ignore[import-untyped]  # imported on first use: a gateway without queues never pays for it
                import botocore.config  # type: ignore[import-untyped]

                # The SDK's own credential chain; dummy keys where there is none, as local servers accept any.
                keys = {}
                if not os.environ.get("AWS_ACCESS_KEY_ID") and boto3.session.Session().get_credentials() is None:
                    keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
                found = boto3.client(
                    "sqs",
                    endpoint_url=endpoint,
                    region_name=region,
                    config=botocore.config.Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
                    **keys,
                )
                self._clients[region] = found
            return found

    def url(self, ref: QueueRef) -> str:
        with self._lock:
            known = self._urls.get(ref.arn)
        if known is not None:
            return known
        client = self.client(ref.region)
        args: dict[str, str] = {"QueueName": ref.name}
        if ref.account.isdigit():
            args["QueueOwnerAWSAccountId"] = ref.account
        url = str(client.get_queue_url(**args)["QueueUrl"])
        with self._lock:
            self._urls[ref.arn] = url
        return url

    def send(self, arn: str, body: str) -> None:
        ref = parse_queue_arn(arn, "Destination")
        self.client(ref.region).send_message(QueueUrl=self.url(ref), MessageBody=body)
