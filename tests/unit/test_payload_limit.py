"""The payload limits, checked and worded in one place (faas/models.check_payload), as Lambda words them."""

from __future__ import annotations

import pytest

from faas.errors import RequestTooLarge
from faas.models import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT, check_payload, payload_limit, payload_too_large


def test_the_limits_per_invocation_type() -> None:
    assert payload_limit("RequestResponse") == payload_limit("DryRun") == SYNC_PAYLOAD_LIMIT == 6291456
    assert payload_limit("Event") == ASYNC_PAYLOAD_LIMIT == 1048576
    check_payload(SYNC_PAYLOAD_LIMIT, "RequestResponse")
    check_payload(ASYNC_PAYLOAD_LIMIT, "Event")


def test_a_payload_over_the_limit_is_refused_in_the_invoke_services_words() -> None:
    with pytest.raises(RequestTooLarge) as e:
        check_payload(7340032, "RequestResponse")
    assert e.value.message == "7340032 byte payload is too large for the RequestResponse invocation type (limit 6291456 bytes)"
    assert e.value.status == 413 and e.value.error_type == "RequestTooLargeException"
    with pytest.raises(RequestTooLarge) as e:
        check_payload(ASYNC_PAYLOAD_LIMIT + 1, "Event")
    assert e.value.message == "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"


def test_a_request_body_over_the_limit_is_refused_in_the_front_ends_words() -> None:
    sync = "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert payload_too_large(SYNC_PAYLOAD_LIMIT + 1, "RequestResponse", request=True).message == sync
    assert payload_too_large(None, "RequestResponse", request=True).message == sync
    assert payload_too_large(SYNC_PAYLOAD_LIMIT + 1, "DryRun", request=True).message == sync
    # An Event body of known length is refused by the Invoke service; of unknown length (cut short), by the front end.
    assert payload_too_large(2000000, "Event", request=True).message == (
        "2000000 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )
    assert payload_too_large(None, "Event", request=True).message == (
        "Request must be smaller than 1048576 bytes for the InvokeFunction operation"
    )
