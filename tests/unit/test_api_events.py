"""API Gateway's events and response mapping for template routes, and the serving catch-all
through the Flask app (a fake platform: the real engine is in tests/integration/test_api_routes.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from faas.deploy.routes import HTTP, REST, Cors, Route, RouteTable
from faas.deploy.sam_routes import http_cors, rest_cors
from gateway.api_events import (
    build_v1_event,
    build_v2_event,
    cors_response_headers,
    map_v1_response,
    map_v2_response,
    preflight_answer,
)
from gateway.app import create_app
from gateway.http_trigger import InvalidFunctionResponse
from tests.fakes import FakePlatform

EPOCH = 1583348638.390
HELLO = Route("GET", "/hello/{name}", "hello", binary_media_types=("image/*",))
REQUEST: dict[str, Any] = {
    "method": "GET",
    "raw_query": "a=1&a=2&b=x",
    "headers": [("Host", "127.0.0.1:8080"), ("User-Agent", "curl/8"), ("X-Multi", "one"), ("X-Multi", "two")],
    "body": b"",
    "source_ip": "127.0.0.1",
    "request_id": "rid",
    "epoch": EPOCH,
    "server_port": "8080",
}


def test_v1_event_field_by_field() -> None:
    event = build_v1_event(HELLO, {"name": "ada"}, path="/hello/ada", **REQUEST)
    assert list(event) == [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    ]
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/hello/{name}", "/hello/ada", "GET")
    assert event["headers"]["X-Multi"] == "two" and event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1" and event["headers"]["X-Forwarded-Port"] == "8080"
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["pathParameters"] == {"name": "ada"} and event["stageVariables"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "Prod" and ctx["path"] == "/Prod/hello/ada" and ctx["resourcePath"] == "/hello/{name}"
    assert ctx["httpMethod"] == "GET" and ctx["requestId"] == "rid" and ctx["requestTimeEpoch"] == 1583348638390
    assert ctx["requestTime"] == "04/Mar/2020:19:03:58 +0000" and ctx["protocol"] == "HTTP/1.1"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userAgent"] == "curl/8"
    assert ctx["domainName"] == "127.0.0.1" and len(ctx["apiId"]) == 10 and ctx["accountId"] == "123456789012"


def test_v1_body_is_base64_only_for_binary_media_types() -> None:
    text = build_v1_event(HELLO, {}, path="/x", **{**REQUEST, "body": b"hi", "headers": [("Content-Type", "text/plain")]})
    assert (text["body"], text["isBase64Encoded"]) == ("hi", False)
    png = build_v1_event(HELLO, {}, path="/x", **{**REQUEST, "body": b"\x89PNG", "headers": [("Content-Type", "image/png")]})
    assert (png["body"], png["isBase64Encoded"]) == (base64.b64encode(b"\x89PNG").decode(), True)


def test_v2_event_has_the_route_key_path_parameters_and_cookies() -> None:
    route = Route("GET", "/items/{id}", "items", kind=HTTP, stage="$default", payload_version="2.0", stage_variables={"k": "v"})
    headers = [*REQUEST["headers"], ("Cookie", "a=1; b=2")]
    event = build_v2_event(route, {"id": "7"}, raw_path="/items/7", **{**REQUEST, "headers": headers})
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/7" and event["rawQueryString"] == "a=1&a=2&b=x"
    assert event["cookies"] == ["a=1", "b=2"] and event["headers"]["x-multi"] == "one,two"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["pathParameters"] == {"id": "7"} and event["stageVariables"] == {"k": "v"}
    ctx = event["requestContext"]
    assert ctx["routeKey"] == "GET /items/{id}" and ctx["stage"] == "$default" and ctx["http"]["method"] == "GET"
    assert list(event)[-1] == "isBase64Encoded"


def test_v2_event_of_a_named_stage_has_the_stage_in_its_path() -> None:
    """An HTTP API stage other than $default is part of the URL on AWS, so rawPath and
    requestContext.http.path start with it (Powertools' APIGatewayHttpResolver strips it off
    again); faas serves the route at the root, without it."""
    route = Route("GET", "/items/{id}", "items", kind=HTTP, stage="dev", payload_version="2.0")
    event = build_v2_event(route, {"id": "7"}, raw_path="/items/7", **REQUEST)
    assert event["rawPath"] == "/dev/items/7" and event["requestContext"]["http"]["path"] == "/dev/items/7"
    assert event["requestContext"]["stage"] == "dev" and event["routeKey"] == "GET /items/{id}"


def test_v1_response_mapped_strictly() -> None:
    status, headers, body = map_v1_response(
        json.dumps(
            {
                "statusCode": 201,
                "headers": {"X-One": "1", "X-Both": "single"},
                "multiValueHeaders": {"X-Both": ["m1", "m2"]},
                "body": base64.b64encode(b"\x00\x01").decode(),
                "isBase64Encoded": True,
            }
        ).encode()
    )
    assert status == 201 and body == b"\x00\x01"
    assert [v for n, v in headers if n == "X-Both"] == ["m1", "m2"] and ("X-One", "1") in headers
    assert ("Content-Type", "application/json") in headers


@pytest.mark.parametrize(
    "payload",
    [
        b'"just a string"',
        b'{"statusCode": 200, "body": {"not": "a string"}}',
        b'{"statusCode": 200, "extra": 1}',
        b'{"body": "no status"}',
        b'{"statusCode": 200, "headers": {"Bad Name": "x"}}',
        b'{"statusCode": 200, "headers": {"X-Split": "a\\r\\nSet-Cookie: evil=1"}}',
        b'{"statusCode": 200, "headers": {"X-Nul": "a\\u0000b"}}',
        b"not json",
    ],
)
def test_v1_anything_else_is_malformed(payload: bytes) -> None:
    with pytest.raises(InvalidFunctionResponse):
        map_v1_response(payload)


def test_v2_response_infers_and_checks_headers() -> None:
    assert map_v2_response(b'{"hello": "world"}') == (200, [("content-type", "application/json")], b'{"hello": "world"}')
    status, headers, _ = map_v2_response(b'{"statusCode": 204, "cookies": ["a=1"], "headers": {"x": "y"}}')
    assert status == 204 and ("Set-Cookie", "a=1") in headers
    with pytest.raises(InvalidFunctionResponse):
        map_v2_response(b'{"statusCode": 200, "headers": {"bad name": "y"}}')


# ------------------------------------------------------------------ through the Flask app


@pytest.fixture
def served() -> tuple[Any, FakePlatform]:
    fake = FakePlatform()
    fake.add("hello")
    fake.put_api_routes(
        "app",
        [
            Route("GET", "/hello", "hello"),
            Route("ANY", "/bad", "hello"),
            Route("GET", "/gone", "missing"),
            Route("POST", "/v2/{id}", "hello", kind=HTTP, payload_version="2.0"),
        ],
    )
    return create_app(fake).test_client(), fake


def test_a_route_reaches_its_function_with_a_v1_event(served: tuple[Any, FakePlatform]) -> None:
    client, fake = served
    fake.handlers["hello"] = lambda p: (json.dumps({"statusCode": 200, "body": json.loads(p)["path"]}).encode(), None)
    response = client.get("/hello?x=1")
    assert response.status_code == 200 and response.data == b"/hello"
    sent = json.loads(fake.invoked[-1]["payload"])
    assert sent["httpMethod"] == "GET" and sent["queryStringParameters"] == {"x": "1"}


def test_no_match_and_missing_function_and_bad_shape(served: tuple[Any, FakePlatform]) -> None:
    client, fake = served
    response = client.get("/nope")
    assert (response.status_code, response.json) == (403, {"message": "Missing Authentication Token"})
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    response = client.get("/gone")
    assert (response.status_code, response.json) == (500, {"message": "Internal server error"})
    fake.handlers["hello"] = lambda p: (b'{"statusCode": 200, "unexpected": true}', None)
    response = client.get("/bad")
    assert (response.status_code, response.json) == (502, {"message": "Internal server error"})
    assert any("unexpected" in line for line in fake.log_lines["hello"])
    fake.handlers["hello"] = lambda p: (b'{"errorMessage": "boom"}', "Unhandled")
    response = client.post("/v2/1")
    assert (response.status_code, response.json) == (500, {"message": "Internal Server Error"})


def test_faas_paths_keep_their_own_answers(served: tuple[Any, FakePlatform]) -> None:
    client, _ = served
    assert client.get("/system/nothing-here").status_code == 404
    assert client.get("/system/nothing-here").json["Type"] == "User"
    assert client.get("/healthz").status_code == 200


def test_without_routes_unknown_paths_are_faas_404() -> None:
    client = create_app(FakePlatform()).test_client()
    response = client.get("/hello")
    assert response.status_code == 404 and "Type" in response.json


def test_put_routes_refuses_faas_prefixes_and_clashes_and_changes_nothing() -> None:
    fake = FakePlatform()
    client = create_app(fake).test_client()
    route = Route("GET", "/ui/x", "fn").to_json()
    response = client.put("/system/routes/app", json={"routes": [route]})
    assert response.status_code == 400 and "would be hidden by faas's own paths" in response.json["Message"]
    assert not fake.api_routes()
    ok = Route("GET", "/a", "fn").to_json()
    assert client.put("/system/routes/app?dry_run=true", json={"routes": [ok]}).status_code == 200
    assert not fake.api_routes()
    assert client.put("/system/routes/app", json={"routes": [ok]}).status_code == 200
    clash = client.put("/system/routes/other", json={"routes": [ok]})
    assert clash.status_code == 400 and "clashes" in clash.json["Message"]
    assert client.put("/system/routes/app", data=b"nope").status_code == 400
    listed = client.get("/system/routes").json["routes"]
    assert [(x["stack"], x["method"], x["path"]) for x in listed] == [("app", "GET", "/a")]
    assert REST == listed[0]["kind"]


# ------------------------------------------------------------------------------- CORS

HTTP_CORS = http_cors(
    {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"], "ExposeHeaders": ["x-id"], "AllowCredentials": True},
    "Api",
)


def test_sam_cors_settings_are_read_as_api_gateway_applies_them() -> None:
    assert rest_cors("'*'", "Api") == Cors(allow_origins=("*",))
    rest = rest_cors({"AllowOrigin": "'https://a.example'", "AllowMethods": "'GET,POST'", "MaxAge": "'60'"}, "Api")
    assert rest == Cors(allow_origins=("https://a.example",), allow_methods=("GET", "POST"), max_age=60)
    assert http_cors(True, "Api") == Cors(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
    with pytest.raises(Exception, match="AllowOrigin"):
        rest_cors({"AllowMethods": "'GET'"}, "Api")


def test_rest_preflight_lists_the_paths_methods() -> None:
    route = Route("GET", "/a", "fn", cors=Cors(allow_origins=("*",)))
    table = RouteTable([route, Route("POST", "/a", "fn", cors=route.cors)])
    found = table.preflight("/a")
    assert found is not None
    status, headers, _ = preflight_answer(*found, None, None)  # type: ignore[misc]
    assert status == 200 and ("Access-Control-Allow-Methods", "GET,OPTIONS,POST") in headers
    assert RouteTable([route, Route("OPTIONS", "/a", "fn")]).preflight("/a") is None  # the template's own OPTIONS


def test_http_preflight_and_response_headers_only_for_allowed_origins() -> None:
    route = Route("GET", "/a", "fn", kind=HTTP, payload_version="2.0", cors=HTTP_CORS)
    ok = preflight_answer(route, ["GET"], "https://app.example", "GET")
    assert ok is not None and ok[0] == 204
    assert ("Access-Control-Allow-Origin", "https://app.example") in ok[1]
    assert ("Access-Control-Allow-Credentials", "true") in ok[1]
    refused = preflight_answer(route, ["GET"], "https://evil.example", "GET")
    assert refused == (204, [], b"")
    assert preflight_answer(route, ["GET"], None, None) is None  # not a preflight: routed as usual
    assert cors_response_headers(route, "https://app.example") == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Expose-Headers", "x-id"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    assert cors_response_headers(route, "https://evil.example") == []


def test_with_an_api_token_the_routes_admin_api_wants_it_and_the_routes_do_not(tmp_path: Any) -> None:
    from faas.config import Config

    fake = FakePlatform()
    fake.add("hello")
    fake.handlers["hello"] = lambda p: (b'{"statusCode": 200, "body": "hi"}', None)
    client = create_app(fake, Config.load({"state_dir": tmp_path, "api_token": "s3cret"}, env={})).test_client()
    routes = {"routes": [Route("GET", "/hello", "hello").to_json()]}
    assert client.put("/system/routes/app", json=routes).status_code == 401
    assert client.get("/system/routes").status_code == 401
    assert not fake.api_routes()
    good = {"Authorization": "Bearer s3cret"}
    assert client.put("/system/routes/app", json=routes, headers=good).status_code == 200
    assert client.get("/hello").data == b"hi"  # a user endpoint, like a function URL


# ------------------------------------------- binary responses of a REST API (Lambda proxy)

PNG_RESPONSE = json.dumps(
    {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x89PNG").decode(),
        "isBase64Encoded": True,
    }
).encode()


@pytest.mark.parametrize(
    "accept, binary_media_types, decoded",
    [
        ("image/png", ("image/png",), True),
        ("image/png, text/html", ("image/*",), True),
        ("text/html,application/xhtml+xml,*/*;q=0.8", ("*/*",), True),  # a browser: only */* decodes
        ("text/html, image/png", ("image/png",), False),  # only the first Accept entry counts
        ("*/*", ("image/png",), False),  # curl's default Accept
        (None, ("image/png",), False),
        ("image/png", (), False),
    ],
)
def test_a_rest_api_decodes_a_base64_body_only_for_a_binary_accept(
    served: tuple[Any, FakePlatform], accept: str | None, binary_media_types: tuple[str, ...], decoded: bool
) -> None:
    """API Gateway (REST, Lambda proxy) turns isBase64Encoded bodies into bytes only when the
    request's first Accept type is one of the API's binaryMediaTypes; otherwise the client gets
    the base64 text. Powertools, Mangum and serverless-http all answer binary this way."""
    client, fake = served
    fake.put_api_routes("app", [Route("GET", "/logo", "hello", binary_media_types=binary_media_types)])
    fake.handlers["hello"] = lambda p: (PNG_RESPONSE, None)
    response = client.get("/logo", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.data == (b"\x89PNG" if decoded else base64.b64encode(b"\x89PNG"))


def test_an_http_api_always_decodes_a_base64_body(served: tuple[Any, FakePlatform]) -> None:
    client, fake = served
    fake.put_api_routes("app", [Route("GET", "/logo", "hello", kind=HTTP, payload_version="1.0")])
    fake.handlers["hello"] = lambda p: (PNG_RESPONSE, None)
    assert client.get("/logo", headers={"Accept": "*/*"}).data == b"\x89PNG"
