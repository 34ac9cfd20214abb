"""HTTP triggers: the event a function gets (API Gateway payload format 2.0, as function URLs
build it) and the HTTP response made of what it returns."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from faas.errors import TooManyRequests
from faas.models import SYNC_PAYLOAD_LIMIT
from gateway.app import create_app
from gateway.http_trigger import InvalidFunctionResponse, api_id, build_event, build_response, request_time
from tests.fakes import FakePlatform

EPOCH = 1583348638.390  # 04/Mar/2020:19:03:58.390 UTC


def event(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "method": "POST",
        "raw_path": "/my/path",
        "raw_query": "parameter1=value1&parameter1=value2&parameter2=value",
        "headers": [
            ("Host", "127.0.0.1:8080"),
            ("User-Agent", "agent"),
            ("Header1", "value1"),
            ("Header2", "value1"),
            ("Header2", "value2"),
            ("Content-Type", "text/plain"),
        ],
        "body": b"Hello from client!",
        "source_ip": "127.0.0.1",
        "function_name": "hello",
        "request_id": "id",
        "epoch": EPOCH,
        "server_port": "8080",
    }
    args.update(overrides)
    return build_event(**args)


# ------------------------------------------------------------------ the event


def test_event_has_the_fields_of_payload_format_2_in_lambdas_order() -> None:
    e = event(headers=[("Host", "127.0.0.1:8080"), ("Cookie", "a=1")])
    assert list(e) == [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "cookies",
        "headers",
        "queryStringParameters",
        "requestContext",
        "body",
        "isBase64Encoded",
    ]
    assert e["version"] == "2.0" and e["routeKey"] == "$default"


def test_event_matches_the_documented_function_url_example() -> None:
    e = event()
    assert e["rawPath"] == "/my/path"
    assert e["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert e["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert e["headers"]["header1"] == "value1"
    assert e["headers"]["header2"] == "value1,value2"
    assert e["body"] == "Hello from client!" and e["isBase64Encoded"] is False
    assert "cookies" not in e


def test_request_context_field_by_field() -> None:
    ctx = event()["requestContext"]
    assert ctx == {
        "accountId": "anonymous",
        "apiId": api_id("hello"),
        "domainName": "127.0.0.1",
        "domainPrefix": "127.0.0.1",
        "http": {"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "04/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    }
    assert len(api_id("hello")) == 32 and api_id("hello").isalnum() and api_id("hello") != api_id("other")


def test_domain_prefix_is_the_first_label_of_a_host_name() -> None:
    ctx = event(headers=[("Host", "abc.localhost:9000")])["requestContext"]
    assert (ctx["domainName"], ctx["domainPrefix"]) == ("abc.localhost", "abc")


def test_request_time_uses_english_month_names() -> None:
    assert request_time(0) == "01/Jan/1970:00:00:00 +0000"
    assert request_time(1607000000) == "03/Dec/2020:12:53:20 +0000"


def test_header_names_are_lower_case_and_forwarding_headers_added() -> None:
    headers = event(headers=[("X-Custom-Thing", "A"), ("Accept", "*/*")])["headers"]
    assert headers["x-custom-thing"] == "A" and headers["accept"] == "*/*"
    assert all(name == name.lower() for name in headers)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-port"] == "8080"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")


def test_cookies_are_split_and_the_cookie_header_kept() -> None:
    e = event(headers=[("Cookie", "a=1; b=two"), ("Cookie", "c=3")])
    assert e["cookies"] == ["a=1", "b=two", "c=3"]
    assert e["headers"]["cookie"].startswith("a=1; b=two")


def test_no_query_string_means_no_query_parameters() -> None:
    e = event(raw_query="")
    assert e["rawQueryString"] == ""
    assert "queryStringParameters" not in e


def test_query_values_are_decoded_and_blank_values_kept() -> None:
    e = event(raw_query="q=a%20b&plus=x+y&empty=&flag")
    assert e["rawQueryString"] == "q=a%20b&plus=x+y&empty=&flag"
    assert e["queryStringParameters"] == {"q": "a b", "plus": "x y", "empty": "", "flag": ""}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "text/html", "application/xml", "application/javascript"],
)
def test_text_bodies_arrive_as_text(content_type: str) -> None:
    e = event(headers=[("Content-Type", content_type)], body='{"é": 1}'.encode())
    assert e["body"] == '{"é": 1}' and e["isBase64Encoded"] is False


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "image/png", "application/x-www-form-urlencoded"])
def test_other_bodies_arrive_base64_encoded(content_type: str | None) -> None:
    raw = b"\x00\xff\x80\nbinary"
    headers = [("Content-Type", content_type)] if content_type else []
    e = event(headers=headers, body=raw)
    assert e["isBase64Encoded"] is True
    assert base64.b64decode(e["body"]) == raw


def test_text_content_type_with_invalid_utf8_is_base64() -> None:
    e = event(headers=[("Content-Type", "text/plain")], body=b"\xff\xfe")
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == b"\xff\xfe"


def test_empty_body_is_left_out() -> None:
    e = event(method="GET", body=b"")
    assert "body" not in e and e["isBase64Encoded"] is False


# ------------------------------------------------------------------ the response


def test_json_without_status_code_is_a_200_json_body() -> None:
    payload = b'{"message": "Hello, world!"}'
    assert build_response(payload) == (200, [("content-type", "application/json")], payload, [])


def test_a_string_result_is_sent_as_json() -> None:
    assert build_response(b'"Hello, world!"') == (200, [("content-type", "application/json")], b'"Hello, world!"', [])


def test_custom_response_with_headers_body_and_cookies() -> None:
    payload = json.dumps(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "My-Custom-Header": "Custom Value", "X-Num": 5},
            "body": "created",
            "cookies": ["Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"],
            "isBase64Encoded": False,
        }
    ).encode()
    status, headers, body, cookies = build_response(payload)
    assert status == 201
    assert headers == [("Content-Type", "text/plain"), ("My-Custom-Header", "Custom Value"), ("X-Num", "5")]
    assert body == b"created"
    assert cookies == ["Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"]


def test_base64_body_is_decoded_and_content_type_defaults_to_json() -> None:
    status, headers, body, _ = build_response(
        json.dumps({"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True}).encode()
    )
    assert body == b"\x89PNG" and ("content-type", "application/json") in headers


def test_header_values_go_out_as_utf8_bytes_and_tabs_stay() -> None:
    _, headers, _, cookies = build_response(
        json.dumps({"statusCode": 200, "headers": {"X-A": "caf\u00e9 \u20ac", "X-T": "a\tb"}, "cookies": ["n=\u00e9"]}).encode()
    )
    assert ("X-A", "café €".encode().decode("latin-1")) in headers and ("X-T", "a\tb") in headers
    assert cookies == ["n=é".encode().decode("latin-1")]


def test_headers_up_to_the_bounds_pass() -> None:
    headers = {f"x-{i}": "v" * 90 for i in range(100)}
    status, out, _, _ = build_response(json.dumps({"statusCode": 599, "headers": headers}).encode())
    assert status == 599 and len(out) == 101  # and the default content-type


def test_status_code_without_body_is_empty() -> None:
    assert build_response(b'{"statusCode": 204}')[2] == b""


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"statusCode": "abc"}',
        b'{"statusCode": 99}',
        b'{"statusCode": 200, "body": "@@", "isBase64Encoded": true}',
        b'{"statusCode": 200, "headers": {"X": "a\\nb"}}',
        # What gunicorn would refuse to write (its HTML 500), and what would flood the client.
        b'{"statusCode": 101, "headers": {"Upgrade": "websocket"}}',
        b'{"statusCode": 100}',
        b'{"statusCode": 200, "headers": {"bad name": "x"}}',
        b'{"statusCode": 200, "headers": {"a:b": "x"}}',
        b'{"statusCode": 200, "headers": {"": "x"}}',
        b'{"statusCode": 200, "headers": {"X": "a\\u0000b"}}',
        b'{"statusCode": 200, "headers": {"X": "a\\u0001b"}}',
        b'{"statusCode": 200, "headers": {"X": "a\\u007fb"}}',
        b'{"statusCode": 200, "cookies": ["a=\\u0000"]}',
        json.dumps({"statusCode": 200, "headers": {"X": "v" * 10240}}).encode(),
        json.dumps({"statusCode": 200, "headers": {f"x-{i}": "v" for i in range(101)}}).encode(),
        json.dumps({"statusCode": 200, "cookies": [f"c{i}=v" for i in range(101)]}).encode(),
        json.dumps({"statusCode": 200, "cookies": ["c=" + "v" * 10240]}).encode(),
    ],
)
def test_unusable_responses_are_invalid(payload: bytes) -> None:
    with pytest.raises(InvalidFunctionResponse):
        build_response(payload)


# ------------------------------------------------------------------ through the route


def trigger_platform(handler: Callable[[dict[str, Any]], Any], error: str | None = None) -> FakePlatform:
    """The one fake platform with one function, "web", whose handler takes the decoded event."""
    platform = FakePlatform()
    platform.add("web", handler=lambda payload: (json.dumps(handler(json.loads(payload))).encode(), error))
    return platform


def events(platform: FakePlatform) -> list[dict[str, Any]]:
    """The events the function was called with, in order."""
    return [json.loads(call["payload"]) for call in platform.invoked]


def echo(ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(ev),
        "cookies": ["s=1; Path=/", "t=2"],
    }


def test_route_builds_the_event_and_maps_the_response() -> None:
    platform = trigger_platform(echo)
    client = create_app(platform).test_client()
    client.set_cookie("session", "abc")
    r = client.post("/function/web/items/42?x=1&x=2", data=b'{"k": "v"}', content_type="application/json")
    assert r.status_code == 200
    ev = r.get_json()
    assert ev["rawPath"] == "/items/42" and ev["requestContext"]["http"]["path"] == "/items/42"
    assert ev["rawQueryString"] == "x=1&x=2" and ev["queryStringParameters"] == {"x": "1,2"}
    assert ev["requestContext"]["http"]["method"] == "POST"
    assert ev["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert ev["cookies"] == ["session=abc"]
    assert ev["body"] == '{"k": "v"}' and ev["isBase64Encoded"] is False
    assert r.headers.getlist("Set-Cookie") == ["s=1; Path=/", "t=2"]
    assert r.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    "url, raw_path", [("/function/web", "/"), ("/function/web/", "/"), ("/function/web/a%20b/c", "/a%20b/c")]
)
def test_raw_path_is_the_path_below_the_function(url: str, raw_path: str) -> None:
    platform = trigger_platform(lambda ev: {"ok": True})
    r = create_app(platform).test_client().get(url)
    assert r.status_code == 200 and r.get_json() == {"ok": True}
    assert events(platform)[0]["rawPath"] == raw_path
    assert "body" not in events(platform)[0]


def test_plain_json_result_is_200_application_json() -> None:
    r = create_app(trigger_platform(lambda ev: {"message": "hi"})).test_client().get("/function/web")
    assert r.status_code == 200 and r.mimetype == "application/json" and r.get_json() == {"message": "hi"}


def test_binary_request_body_reaches_the_function_base64() -> None:
    platform = trigger_platform(lambda ev: {"ok": True})
    create_app(platform).test_client().put("/function/web/up", data=b"\x00\x01\xfe", content_type="application/octet-stream")
    assert events(platform)[0]["isBase64Encoded"] is True
    assert base64.b64decode(events(platform)[0]["body"]) == b"\x00\x01\xfe"


def test_head_and_options_reach_the_function() -> None:
    platform = trigger_platform(lambda ev: {"statusCode": 204})
    client = create_app(platform).test_client()
    assert client.head("/function/web").status_code == 204
    assert client.options("/function/web").status_code == 204
    assert [e["requestContext"]["http"]["method"] for e in events(platform)] == ["HEAD", "OPTIONS"]


def test_function_error_is_502_internal_server_error() -> None:
    r = create_app(trigger_platform(lambda ev: {"errorMessage": "x"}, error="Unhandled")).test_client().get("/function/web")
    assert r.status_code == 502 and r.get_json() == {"message": "Internal Server Error"}


def test_invalid_function_response_is_502() -> None:
    r = create_app(trigger_platform(lambda ev: {"statusCode": "nope"})).test_client().get("/function/web")
    assert r.status_code == 502 and r.get_json() == {"message": "Internal Server Error"}


def test_unknown_function_is_404_not_found() -> None:
    r = create_app(trigger_platform(echo)).test_client().get("/function/nope/x")
    assert r.status_code == 404 and r.get_json() == {"message": "Not Found"}


def test_throttle_is_429_too_many_requests() -> None:
    platform = trigger_platform(echo)
    platform.invoke_error = TooManyRequests("Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded")
    r = create_app(platform).test_client().get("/function/web")
    assert r.status_code == 429 and r.get_json() == {"message": "Too Many Requests"}


def test_body_over_6_mb_is_413() -> None:
    platform = trigger_platform(echo)
    r = create_app(platform).test_client().post("/function/web", data=b"x" * (SYNC_PAYLOAD_LIMIT + 1))
    assert r.status_code == 413 and events(platform) == []
