"""On-success and on-failure destinations of asynchronous calls (Lambda's DestinationConfig):
another function here, called asynchronously, or an SQS queue on the configured endpoint,
each given Lambda's invocation record. A function without a destination for the outcome keeps
the failures folder (faas/invoke/async_invoke.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from faas.errors import ValidationError
from faas.events.sqs_queues import QUEUE_ARN, Queues
from faas.models import short_repr

FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:([a-zA-Z0-9_-]{1,64})(:[a-zA-Z0-9$_-]{1,128})?"
)
NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
KINDS = ("OnSuccess", "OnFailure")


def check_destination_config(value: object) -> dict[str, Any]:
    """DestinationConfig as put-function-event-invoke-config sends it, checked: each destination
    a function (name or ARN) or an SQS queue ARN; SNS, EventBridge and S3 are refused."""
    if not isinstance(value, Mapping) or set(value) - set(KINDS):
        raise ValidationError(f"DestinationConfig may hold OnSuccess and OnFailure, got {short_repr(value)}")
    out: dict[str, Any] = {}
    for kind in KINDS:
        entry = value.get(kind)
        if entry is None or entry == {}:
            continue
        target = entry.get("Destination") if isinstance(entry, Mapping) else None
        if target is None:
            continue
        if not isinstance(target, str) or not (
            FUNCTION_ARN.fullmatch(target) or QUEUE_ARN.fullmatch(target) or NAME.fullmatch(target)
        ):
            raise ValidationError(
                f"DestinationConfig.{kind}.Destination must be a function (name or ARN) or an SQS queue ARN, got "
                f"{short_repr(target)}; faas sends destinations to functions and SQS queues only"
            )
        out[kind] = {"Destination": target}
    return out


class Destinations:
    """Sends an invocation record to the destination configured for its outcome."""

    def __init__(
        self,
        config_of: Callable[[str], Mapping[str, Any]],
        queues: Queues,
        invoke_async: Callable[[str, str | None, bytes], object],
    ) -> None:
        self._config_of = config_of
        self._queues = queues
        self._invoke_async = invoke_async

    def target(self, name: str, kind: str) -> str | None:
        entry = (self._config_of(name).get("DestinationConfig") or {}).get(kind) or {}
        target = entry.get("Destination") if isinstance(entry, Mapping) else None
        return str(target) if target else None

    def send(self, name: str, kind: str, record: Mapping[str, Any]) -> bool:
        """True once the record is with the destination; False when the function has none for
        this outcome. Raises when the destination cannot take it (the caller keeps the record)."""
        target = self.target(name, kind)
        if target is None:
            return False
        body = json.dumps(record)
        if QUEUE_ARN.fullmatch(target):
            self._queues.send(target, body)
            return True
        m = FUNCTION_ARN.fullmatch(target)
        function, qualifier = (m.group(1), (m.group(2) or "")[1:] or None) if m else (target, None)
        self._invoke_async(function, qualifier, body.encode())
        return True
