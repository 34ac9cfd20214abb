"""X-Amz-Client-Context: base64 of a JSON object, passed to the runtime re-serialised (issue 17, finding 11)."""

from __future__ import annotations

import base64
import json

import pytest

from faas.errors import InvalidRequestContent, ValidationError
from gateway.lambda_api import CLIENT_CONTEXT_LIMIT, decode_client_context


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def test_the_function_gets_the_same_object_in_compact_ascii_json() -> None:
    text = '{"custom":\r\n {"user": "ad\u00e9",\r\n"n": 1},\r\n\t"env": {"locale": "en"}}'
    out = decode_client_context(_b64(text))
    assert out is not None
    assert json.loads(out) == json.loads(text)
    assert out == '{"custom":{"user":"ad\\u00e9","n":1},"env":{"locale":"en"}}'
    assert out.isascii() and not any(c in out for c in "\r\n\0\t")


def test_a_string_holding_control_characters_is_escaped() -> None:
    out = decode_client_context(_b64(json.dumps({"custom": {"k": "a\r\nInjected: 1\u0000"}})))
    assert out is not None and "\r" not in out and "\n" not in out and "\0" not in out
    assert json.loads(out) == {"custom": {"k": "a\r\nInjected: 1\u0000"}}


def test_no_header_is_no_context() -> None:
    assert decode_client_context(None) is None and decode_client_context("") is None


@pytest.mark.parametrize(
    "header",
    ["not base64!", _b64("not json"), _b64("[1, 2]"), _b64("1"), _b64(b"\xff\xfe"), _b64("{} trailing"), "e30=\r\n"],
)
def test_what_is_not_base64_of_a_json_object_is_invalid_request_content(header: str) -> None:
    with pytest.raises(InvalidRequestContent) as e:
        decode_client_context(header)
    assert e.value.status == 400 and e.value.error_type == "InvalidRequestContentException"


def test_over_lambdas_length_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        decode_client_context("e" * (CLIENT_CONTEXT_LIMIT + 1))
