"""One SQS event source mapping's pollers: receive a batch, call the function with Lambda's SQS
event, delete what succeeded.

A message is deleted only after the function succeeded on it; nothing else is done with a
failed one, so it comes back when its visibility timeout ends and, after the queue's
maxReceiveCount, goes to the queue's own redrive target, exactly as with Lambda. A gateway
killed mid-batch therefore loses nothing: the messages it held just become visible again.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from faas.errors import FaasError
from faas.events.sqs_queues import Queues, parse_queue_arn
from faas.models import Result

LOG = logging.getLogger(__name__)

LONG_POLL_S = 2  # short enough that a stop is seen within seconds
ERROR_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)
DEFAULT_CONCURRENCY = 2
MAX_CONCURRENCY = 20  # pollers per mapping, whatever ScalingConfig asks (Lambda allows 1000)
MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's limit on a synchronous call's payload, a batch's too

InvokeFn = Callable[[str, bytes], Result]


def sqs_record(message: Mapping[str, Any], arn: str, region: str) -> dict[str, Any]:
    """One entry of Lambda's SQS event, from a ReceiveMessage message."""
    attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {k: _attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return out


def failed_ids(result: Result, batch_ids: list[str], report_failures: bool) -> set[str]:
    """The messages of a batch that must not be deleted. Without ReportBatchItemFailures, all of
    them unless the call succeeded; with it, those the response names, and all of them when the
    response names an id that is not in the batch or is malformed (Lambda treats that as a
    failure of the whole batch)."""
    if result.function_error is not None:
        return set(batch_ids)
    if not report_failures:
        return set()
    try:
        response = json.loads(result.payload) if result.payload else None
    except (ValueError, UnicodeDecodeError):
        return set()  # not the partial-response shape: Lambda counts the batch as succeeded
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failures = response["batchItemFailures"]
    out: set[str] = set()
    if not isinstance(failures, list):
        return set(batch_ids)
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in batch_ids:
            return set(batch_ids)
        out.add(ident)
    return out


class MappingPoller:
    """The poller threads of one enabled mapping (ScalingConfig.MaximumConcurrency of them,
    each with at most one batch in flight, so at most that many concurrent calls)."""

    def __init__(self, mapping: Mapping[str, Any], queues: Queues, invoke: InvokeFn) -> None:
        self.uuid = str(mapping["UUID"])
        self.function = str(mapping["FunctionName"])
        self.ref = parse_queue_arn(mapping["EventSourceArn"])
        self.batch_size = int(mapping.get("BatchSize", 10))
        self.window_s = float(mapping.get("MaximumBatchingWindowInSeconds", 0))
        self.report_failures = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        scaling = mapping.get("ScalingConfig") or {}
        self.concurrency = min(MAX_CONCURRENCY, int(scaling.get("MaximumConcurrency") or DEFAULT_CONCURRENCY))
        self._queues = queues
        self._invoke = invoke
        self._stop = threading.Event()
        self.last_result = "No records processed"
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{self.uuid[:8]}-{i}", daemon=True) for i in range(self.concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Take no new batch; a batch in flight finishes (or its messages reappear later)."""
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                self._one_batch()
                errors = 0
            except Exception as e:  # the endpoint is down, the queue is gone, the function throttled
                delay = ERROR_BACKOFF_S[min(errors, len(ERROR_BACKOFF_S) - 1)]
                errors += 1
                if errors <= 3 or errors % 30 == 0:
                    LOG.warning("event source mapping %s (%s): %s; again in %.0f s", self.uuid, self.ref.name, e, delay)
                self.last_result = "PROBLEM: " + str(e)[:200]
                self._stop.wait(delay)

    def _receive(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages, waiting up to the batching window for a fuller batch."""
        client = self._queues.client(self.ref.region)
        url = self._queues.url(self.ref)
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window_s
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            wait = LONG_POLL_S if not batch else max(0, min(LONG_POLL_S, int(left)))
            got = client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, self.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.extend(got)
            if len(batch) >= self.batch_size or (batch and time.monotonic() >= deadline):
                break
            if not batch:
                deadline = time.monotonic() + self.window_s  # the window opens with the first message
        return batch

    def _one_batch(self) -> None:
        batch = self._receive()
        if not batch:
            return
        records = [sqs_record(m, self.ref.arn, self.ref.region) for m in batch]
        payload = json.dumps({"Records": records}).encode()
        while len(payload) > MAX_EVENT_BYTES and len(records) > 1:
            # As Lambda does, a batch stops at 6 MB: the rest go back to the queue at once.
            keep = max(1, len(records) * MAX_EVENT_BYTES // len(payload))
            self._return(batch[keep:])
            batch, records = batch[:keep], records[:keep]
            payload = json.dumps({"Records": records}).encode()
        try:
            result = self._invoke(self.function, payload)
        except FaasError as e:  # throttled, not found, shutting down: the messages come back later
            self.last_result = "PROBLEM: " + e.message[:200]
            raise
        ids = [m["MessageId"] for m in batch]
        failed = failed_ids(result, ids, self.report_failures)
        done = [m for m in batch if m["MessageId"] not in failed]
        self._delete(done)
        self.last_result = "OK" if not failed else f"PROBLEM: Function call failed for {len(failed)} message(s)"
        if failed:
            LOG.info(
                "event source mapping %s: %s failed on %d of %d message(s); they return after the visibility timeout",
                self.uuid,
                self.function,
                len(failed),
                len(batch),
            )

    def _return(self, messages: list[dict[str, Any]]) -> None:
        """Make messages visible again now (not after the visibility timeout)."""
        client = self._queues.client(self.ref.region)
        url = self._queues.url(self.ref)
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            client.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
                ],
            )

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        client = self._queues.client(self.ref.region)
        url = self._queues.url(self.ref)
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            out = client.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in out.get("Failed", []):
                LOG.warning("event source mapping %s: a message was not deleted (it may run again): %s", self.uuid, failure)
