"""SQS event source mappings: Lambda's Create/Get/List/Update/DeleteEventSourceMapping, kept in
faas.db, each enabled one served by a MappingPoller (faas/events/sqs_poller.py).

Every check runs before anything is stored, so a refused request changes nothing; the pollers
of a mapping are replaced whole when it is updated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from faas.deploy.store import Store
from faas.errors import FunctionNotFound, ResourceConflict, ValidationError
from faas.events.sqs_poller import InvokeFn, MappingPoller
from faas.events.sqs_queues import Queues, parse_queue_arn
from faas.models import function_arn, short_repr

LOG = logging.getLogger(__name__)

MAX_MAPPINGS = 100  # each runs up to 20 poller threads in the gateway
# Settings of other event sources (streams, Kafka, DocumentDB) or that faas does not run: refused.
NOT_RUN = (
    "FilterCriteria",
    "StartingPosition",
    "StartingPositionTimestamp",
    "ParallelizationFactor",
    "DestinationConfig",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "Topics",
    "Queues",
    "SourceAccessConfigurations",
    "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig",
    "DocumentDBEventSourceConfig",
    "ProvisionedPollerConfig",
    "KMSKeyArn",
)


def _int(body: Mapping[str, Any], key: str, low: int, high: int, prefix: str = "") -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{prefix}{key} must be a whole number from {low} to {high}, got {short_repr(value)}")
    return value


def check_settings(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping after applying body's settings to current; ValidationError on anything off."""
    for key in NOT_RUN:
        if body.get(key) not in (None, [], {}):
            raise ValidationError(f"{key} is not supported by faas's SQS event source mappings")
    out = dict(current)
    batch = _int(body, "BatchSize", 1, 10000)
    if batch is not None:
        out["BatchSize"] = batch
    window = _int(body, "MaximumBatchingWindowInSeconds", 0, 300)
    if window is not None:
        out["MaximumBatchingWindowInSeconds"] = window
    if out.get("BatchSize", 10) > 10 and not out.get("MaximumBatchingWindowInSeconds"):
        raise ValidationError("a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1 (as on Lambda)")
    if "FunctionResponseTypes" in body and body["FunctionResponseTypes"] is not None:
        types = body["FunctionResponseTypes"]
        if not isinstance(types, list) or any(t != "ReportBatchItemFailures" for t in types):
            raise ValidationError(f"FunctionResponseTypes may only hold ReportBatchItemFailures, got {short_repr(types)}")
        out["FunctionResponseTypes"] = list(dict.fromkeys(types))
    if body.get("Enabled") is not None:
        if not isinstance(body["Enabled"], bool):
            raise ValidationError(f"Enabled must be true or false, got {short_repr(body['Enabled'])}")
        out["Enabled"] = body["Enabled"]
    scaling = body.get("ScalingConfig")
    if scaling is not None:
        if not isinstance(scaling, Mapping) or set(scaling) - {"MaximumConcurrency"}:
            raise ValidationError(f"ScalingConfig may only hold MaximumConcurrency, got {short_repr(scaling)}")
        limit = _int(scaling, "MaximumConcurrency", 2, 1000, "ScalingConfig.")
        out["ScalingConfig"] = {} if limit is None else {"MaximumConcurrency": limit}
    return out


class EventSourceMappings:
    """The mappings, their pollers, and the management API's view of them."""

    def __init__(self, store: Store, queues: Queues, invoke: InvokeFn, function_exists: Callable[[str], object]) -> None:
        self._store = store
        self._queues = queues
        self._invoke = invoke
        self._exists = function_exists
        self._lock = threading.Lock()
        self._mappings: dict[str, dict[str, Any]] = {}
        self._pollers: dict[str, MappingPoller] = {}
        for key, text in store.mappings_all():
            try:
                self._mappings[key] = json.loads(text)
            except ValueError:
                LOG.warning("event source mapping %s: unreadable, skipped", key)

    def start(self) -> None:
        """Start the pollers of every enabled mapping (after a restart too)."""
        with self._lock:
            for mapping in self._mappings.values():
                self._restart(mapping)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        ref = parse_queue_arn(body.get("EventSourceArn"))
        name = self._function(body.get("FunctionName"))
        self._queues.require()
        mapping = check_settings(body, {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0, "Enabled": True})
        mapping.update(UUID=str(uuid.uuid4()), EventSourceArn=ref.arn, FunctionName=name)
        with self._lock:
            if len(self._mappings) >= MAX_MAPPINGS:
                raise ValidationError(f"faas runs at most {MAX_MAPPINGS} event source mappings; delete one first")
            for other in self._mappings.values():
                if other["EventSourceArn"] == ref.arn and other["FunctionName"] == name:
                    raise ResourceConflict(
                        f'An event source mapping with SQS arn (" {ref.arn} ") and function (" {name} ") already exists. '
                        f"Please update or delete the existing mapping with UUID {other['UUID']}"
                    )
            self._save(mapping)
            self._restart(mapping)
        return self.describe(mapping, "Creating")

    def get(self, key: str) -> dict[str, Any]:
        with self._lock:
            return self.describe(self._find(key))

    def listed(self, function: str | None = None, source_arn: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._mappings.values())
        if function is not None:
            name = self._function(function, must_exist=False)
            found = [m for m in found if m["FunctionName"] == name]
        if source_arn is not None:
            found = [m for m in found if m["EventSourceArn"] == source_arn]
        return [self.describe(m) for m in sorted(found, key=lambda m: str(m["UUID"]))]

    def update(self, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            current = self._find(key)
        mapping = check_settings(body, current)
        if body.get("FunctionName") is not None:
            mapping["FunctionName"] = self._function(body["FunctionName"])
        with self._lock:
            self._save(mapping)
            self._restart(mapping)
        return self.describe(mapping, "Updating")

    def delete(self, key: str) -> dict[str, Any]:
        with self._lock:
            mapping = self._find(key)
            self._store.delete_mapping(key)
            del self._mappings[key]
            poller = self._pollers.pop(key, None)
        if poller is not None:
            poller.stop()
        return self.describe(mapping, "Deleting")

    def drop_function(self, name: str) -> None:
        """A deleted function's mappings go with it."""
        for key in [m["UUID"] for m in list(self._mappings.values()) if m["FunctionName"] == name]:
            self.delete(key)

    def for_function(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._mappings.values() if m["FunctionName"] == name]

    def stop(self) -> None:
        """Take no new batches (SIGTERM's drain); batches in flight finish."""
        with self._lock:
            for poller in self._pollers.values():
                poller.stop()

    def close(self, wait_s: float = 5.0) -> None:
        with self._lock:
            pollers = list(self._pollers.values())
            self._pollers.clear()
        for poller in pollers:
            poller.stop()
        deadline = time.monotonic() + wait_s
        for poller in pollers:
            poller.join(max(0.0, deadline - time.monotonic()))

    def describe(self, mapping: Mapping[str, Any], state: str | None = None) -> dict[str, Any]:
        """The mapping as Lambda's EventSourceMappingConfiguration."""
        poller = self._pollers.get(str(mapping["UUID"]))
        enabled = bool(mapping.get("Enabled", True))
        out: dict[str, Any] = {
            "UUID": mapping["UUID"],
            "BatchSize": mapping.get("BatchSize", 10),
            "MaximumBatchingWindowInSeconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
            "EventSourceArn": mapping["EventSourceArn"],
            "FunctionArn": function_arn(str(mapping["FunctionName"])),
            "LastModified": mapping.get("LastModified", 0),
            "State": state or ("Enabled" if enabled else "Disabled"),
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": list(mapping.get("FunctionResponseTypes") or []),
        }
        if poller is not None:
            out["LastProcessingResult"] = poller.last_result
        if mapping.get("ScalingConfig"):
            out["ScalingConfig"] = dict(mapping["ScalingConfig"])
        return out

    # ---- inside ------------------------------------------------------------------------

    def _function(self, value: object, *, must_exist: bool = True) -> str:
        """A function name, or ARN (arn:aws:lambda:...:function:NAME), to the name."""
        if not isinstance(value, str) or not value:
            raise ValidationError(f"FunctionName must be a function's name or ARN, got {short_repr(value)}")
        name = value.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in value else value
        if ":" in name:
            raise ValidationError(
                f"faas maps queues to a function's live version: leave the qualifier out of {short_repr(value)}"
            )
        if must_exist:
            self._exists(name)  # FunctionNotFound (404) if it is not deployed
        return name

    def _find(self, key: str) -> dict[str, Any]:
        found = self._mappings.get(key)
        if found is None:
            raise FunctionNotFound(f"The resource you requested does not exist. (event source mapping {short_repr(key)})")
        return dict(found)

    def _save(self, mapping: dict[str, Any]) -> None:
        mapping["LastModified"] = time.time()
        self._store.put_mapping(str(mapping["UUID"]), str(mapping["FunctionName"]), json.dumps(mapping))
        self._mappings[str(mapping["UUID"])] = mapping

    def _restart(self, mapping: Mapping[str, Any]) -> None:
        """Called under self._lock: the mapping's pollers, replaced (or gone when disabled)."""
        key = str(mapping["UUID"])
        old = self._pollers.pop(key, None)
        if old is not None:
            old.stop()
        if not mapping.get("Enabled", True) or not self._queues.endpoint:
            return
        poller = MappingPoller(mapping, self._queues, self._invoke)
        self._pollers[key] = poller
        poller.start()
