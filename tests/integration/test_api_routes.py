"""A SAM project's API routes served at the gateway's root, as API Gateway serves them.

The project is what `sam init` writes for python (hello-world: `Events: HelloWorld: Type:
Api, Path: /hello, Method: get`), plus routes whose function echoes its event, so the event
a function gets is checked field by field against API Gateway's documented shapes, and a
function that answers a shape API Gateway refuses. Real engine, real `faas deploy`, curl-like
requests with requests' plain HTTP.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Gateway, gateway_session

HELLO_APP = """\
import json


def lambda_handler(event, context):
    return {
        "statusCode": 200,
        "body": json.dumps({"message": "hello world"}),
    }
"""
ECHO_APP = """\
import json


def handler(event, context):
    if event.get("rawPath") == "/v2/plain":
        return {"plain": True}
    if (event.get("queryStringParameters") or {}).get("bad") == "1":
        return {"statusCode": 200, "body": {"not": "a string"}}
    return {
        "statusCode": 201,
        "headers": {"X-Echo": "yes"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(event),
    }
"""
TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: sam-app, as sam init writes it, plus echo routes

Globals:
  Function:
    Timeout: 3
    MemorySize: 128
  Api:
    BinaryMediaTypes: ["image~1png"]
    Cors:
      AllowOrigin: "'https://app.example'"
      AllowHeaders: "'Content-Type,X-Custom'"
      MaxAge: "'600'"

Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.11
      Architectures: [x86_64]
      Events:
        HelloWorld:
          Type: Api
          Properties:
            Path: /hello
            Method: get
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Runtime: python3.11
      Events:
        RestEcho:
          Type: Api
          Properties: {Path: "/echo/{id}", Method: post}
        RestGreedy:
          Type: Api
          Properties: {Path: "/files/{proxy+}", Method: any}
        HttpEcho:
          Type: HttpApi
          Properties: {Path: "/v2/items/{id}", Method: get}
        HttpPlain:
          Type: HttpApi
          Properties: {Path: "/v2/plain", Method: get}
        HttpV1:
          Type: HttpApi
          Properties: {Path: "/v1-on-http", Method: get, PayloadFormatVersion: "1.0"}
        Staged:
          Type: Api
          Properties: {Path: /staged, Method: get, RestApiId: !Ref StagedApi}
        CorsV2:
          Type: HttpApi
          Properties: {Path: /v2/cors, Method: get, ApiId: !Ref CorsHttpApi}

  OpenApiHttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: echo, version: "1"}
        paths:
          /openapi/{proxy+}:
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                payloadFormatVersion: "2.0"
                uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${EchoFunction.Arn}/invocations"

  CorsHttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ["*"]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-echo]
        MaxAge: 300

  StagedApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Variables:
        colour: blue

Outputs:
  HelloWorldApi:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"
"""


def write_project(root: Path) -> Path:
    (root / "hello_world").mkdir(parents=True)
    (root / "hello_world" / "app.py").write_text(HELLO_APP)
    (root / "echo").mkdir()
    (root / "echo" / "app.py").write_text(ECHO_APP)
    template = root / "template.yaml"
    template.write_text(TEMPLATE)
    return template


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("routes") / "state"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("sam-app") / "sam-app")


@pytest.fixture(scope="module")
def gw(runtime_images, state: Path, project: Path, docker_client) -> Iterator[Gateway]:
    """A gateway of its own: its root answers for this template only."""
    with gateway_session(state, docker_client) as gw:
        out = gw.cli("deploy", str(project))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "route GET /hello -> HelloWorldFunction (Api ServerlessRestApi, stage Prod)" in out.stdout
        assert "Events" not in out.stderr
        yield gw


def test_curl_hello_answers_what_api_gateway_would(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/hello", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"message": "hello world"}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-amzn-RequestId"]


def test_the_v1_event_field_by_field(gw: Gateway) -> None:
    response = requests.post(
        f"{gw.url}/echo/42?tag=a&tag=b&single=x",
        data=b'{"hello": "body"}',
        headers={"Content-Type": "application/json", "X-Repeat": "one", "User-Agent": "curl/8.5.0"},
        timeout=30,
    )
    assert response.status_code == 201
    assert response.headers["X-Echo"] == "yes"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    event = response.json()
    assert event["resource"] == "/echo/{id}" and event["path"] == "/echo/42" and event["httpMethod"] == "POST"
    assert event["queryStringParameters"] == {"tag": "b", "single": "x"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "single": ["x"]}
    assert event["pathParameters"] == {"id": "42"} and event["stageVariables"] is None
    assert event["headers"]["User-Agent"] == "curl/8.5.0" and event["headers"]["X-Repeat"] == "one"
    assert event["multiValueHeaders"]["X-Repeat"] == ["one"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["body"] == '{"hello": "body"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/echo/{id}" and ctx["httpMethod"] == "POST" and ctx["stage"] == "Prod"
    assert ctx["path"] == "/Prod/echo/42" and ctx["protocol"] == "HTTP/1.1"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userAgent"] == "curl/8.5.0"
    assert len(ctx["requestId"]) == 36 and ctx["extendedRequestId"]  # API Gateway's own id, not Lambda's
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["domainName"] == "127.0.0.1" and len(ctx["apiId"]) == 10


def test_repeated_request_headers_stay_apart_in_multi_value_headers(gw: Gateway) -> None:
    # requests folds a header into one line; http.client sends the two lines a client may send.
    conn = http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=30)
    conn.putrequest("POST", "/echo/1")
    conn.putheader("X-Repeat", "one")
    conn.putheader("X-Repeat", "two")
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    event = json.loads(conn.getresponse().read())
    conn.close()
    assert event["multiValueHeaders"]["X-Repeat"] == ["one", "two"]
    assert event["headers"]["X-Repeat"] == "two"


def test_binary_media_types_decide_base64_and_greedy_paths(gw: Gateway) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    response = requests.put(f"{gw.url}/files/a/b/c.png", data=png, headers={"Content-Type": "image/png"}, timeout=30)
    event = response.json()
    assert event["pathParameters"] == {"proxy": "a/b/c.png"} and event["resource"] == "/files/{proxy+}"
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == png


def test_http_api_route_with_path_parameter_and_cookies_gets_a_v2_event(gw: Gateway) -> None:
    response = requests.get(
        f"{gw.url}/v2/items/7?x=1&x=2", headers={"Cookie": "session=abc; theme=dark", "X-Two": "a"}, timeout=30
    )
    assert response.status_code == 201
    event = response.json()
    assert event["version"] == "2.0" and event["routeKey"] == "GET /v2/items/{id}"
    assert event["rawPath"] == "/v2/items/7" and event["rawQueryString"] == "x=1&x=2"
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["queryStringParameters"] == {"x": "1,2"} and event["pathParameters"] == {"id": "7"}
    assert event["headers"]["x-two"] == "a"
    ctx = event["requestContext"]
    assert ctx["routeKey"] == "GET /v2/items/{id}" and ctx["stage"] == "$default"
    assert ctx["http"]["method"] == "GET" and ctx["http"]["path"] == "/v2/items/7" and ctx["http"]["sourceIp"] == "127.0.0.1"
    assert event["isBase64Encoded"] is False and "body" not in event


def test_an_explicit_rest_api_gives_its_stage_and_variables(gw: Gateway) -> None:
    event = requests.get(f"{gw.url}/staged", timeout=30).json()
    assert event["stageVariables"] == {"colour": "blue"}
    assert event["requestContext"]["stage"] == "dev" and event["requestContext"]["path"] == "/dev/staged"
    lines = [line.split() for line in gw.cli("routes").stdout.splitlines()]
    assert ["GET", "/staged", "EchoFunction", "Api", "StagedApi", "dev"] in [line[:6] for line in lines]


def test_an_http_api_route_may_ask_for_payload_format_1(gw: Gateway) -> None:
    event = requests.get(f"{gw.url}/v1-on-http?a=1&a=2", timeout=30).json()
    assert event["version"] == "1.0" and event["resource"] == "/v1-on-http"
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["requestContext"]["stage"] == "$default"


def test_a_rest_apis_cors_answers_the_preflight(gw: Gateway) -> None:
    response = requests.options(f"{gw.url}/hello", timeout=30)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type,X-Custom"
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_an_http_apis_cors_configuration_answers_preflights_and_marks_responses(gw: Gateway) -> None:
    # The gateway's own origin: a page of another origin is refused by the gateway's browser
    # guard until template routes are exempt from it (tests/unit/test_api_events.py covers that case).
    origin = gw.url
    preflight = requests.options(
        f"{gw.url}/v2/cors", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=30
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET,POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    assert preflight.headers["Access-Control-Max-Age"] == "300"
    response = requests.get(f"{gw.url}/v2/cors", headers={"Origin": origin}, timeout=30)
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "x-echo"


def test_an_openapi_definitions_proxy_integration_is_a_route(gw: Gateway) -> None:
    event = requests.patch(f"{gw.url}/openapi/a/b", timeout=30).json()
    assert event["routeKey"] == "ANY /openapi/{proxy+}" and event["pathParameters"] == {"proxy": "a/b"}
    assert event["requestContext"]["http"]["method"] == "PATCH"


def test_http_api_infers_a_response_without_status_code(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/v2/plain", timeout=30)
    assert (response.status_code, response.json()) == (200, {"plain": True})
    assert response.headers["Content-Type"] == "application/json"


def test_what_matches_nothing_gets_api_gateways_answer(gw: Gateway) -> None:
    missing = requests.get(f"{gw.url}/nothing/here", timeout=30)
    assert (missing.status_code, missing.json()) == (403, {"message": "Missing Authentication Token"})
    wrong_method = requests.delete(f"{gw.url}/hello", timeout=30)
    assert (wrong_method.status_code, wrong_method.json()) == (403, {"message": "Missing Authentication Token"})
    http_api = requests.post(f"{gw.url}/v2/items/7", timeout=30)
    assert (http_api.status_code, http_api.json()) == (404, {"message": "Not Found"})
    # faas's own paths are still faas's.
    assert requests.get(f"{gw.url}/healthz", timeout=30).json() == {"status": "ok"}
    assert requests.get(f"{gw.url}/function/HelloWorldFunction", timeout=30).status_code == 200


def test_a_v1_response_of_the_wrong_shape_is_502_with_the_reason_in_the_log(gw: Gateway) -> None:
    response = requests.post(f"{gw.url}/echo/1?bad=1", timeout=30)
    assert (response.status_code, response.json()) == (502, {"message": "Internal server error"})
    logs = gw.cli("logs", "EchoFunction")
    assert "Malformed Lambda proxy response: body must be a string" in logs.stdout


def test_faas_routes_lists_method_path_function_api_and_stage(gw: Gateway) -> None:
    out = gw.cli("routes")
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    assert ["GET", "/hello", "HelloWorldFunction", "Api", "ServerlessRestApi", "Prod"] in [line[:6] for line in lines]
    assert ["GET", "/v2/items/{id}", "EchoFunction", "HttpApi", "ServerlessHttpApi", "$default"] in [line[:6] for line in lines]


def test_a_route_under_a_faas_prefix_refuses_the_template_and_changes_nothing(gw: Gateway, tmp_path: Path) -> None:
    template = write_project(tmp_path / "clash")
    template.write_text(TEMPLATE.replace("Path: /hello", "Path: /system/hello"))
    out = gw.cli("deploy", str(template))
    assert out.returncode != 0
    assert "GET /system/hello (HelloWorldFunction) would be hidden by faas's own paths" in out.stderr
    assert "deployed" not in out.stdout
    assert requests.get(f"{gw.url}/hello", timeout=30).status_code == 200


def test_a_redeploy_replaces_the_templates_routes(gw: Gateway, project: Path) -> None:
    project.write_text(TEMPLATE.replace("Path: /hello", "Path: /hi"))
    try:
        out = gw.cli("deploy", str(project))
        assert out.returncode == 0, out.stderr
        assert requests.get(f"{gw.url}/hi", timeout=30).json() == {"message": "hello world"}
        assert requests.get(f"{gw.url}/hello", timeout=30).status_code == 403
    finally:
        project.write_text(TEMPLATE)
        assert gw.cli("deploy", str(project)).returncode == 0


def test_routes_survive_a_gateway_restart(runtime_images, tmp_path: Path, docker_client) -> None:
    template = write_project(tmp_path / "sam-app")
    with gateway_session(tmp_path / "state", docker_client) as first:
        assert first.cli("deploy", str(template)).returncode == 0
    with gateway_session(tmp_path / "state", docker_client) as second:
        response = requests.get(f"{second.url}/hello", timeout=30)
        assert (response.status_code, response.json()) == (200, {"message": "hello world"})


def test_the_same_routes_from_another_template_clash_until_removed(gw: Gateway, tmp_path: Path) -> None:
    other = write_project(tmp_path / "copy")  # another file: another template, same routes
    out = gw.cli("deploy", str(other))
    assert out.returncode != 0 and "clashes with" in out.stderr and "faas routes --rm" in out.stderr
    assert "deployed" not in out.stdout
    stacks = {line.split()[-1] for line in gw.cli("routes").stdout.splitlines()[1:]}
    assert len(stacks) == 1 and stacks.pop() in " ".join(out.stderr.split())
    (stack,) = {line.split()[-1] for line in gw.cli("routes").stdout.splitlines()[1:]}
    assert gw.cli("routes", "--rm", stack).returncode == 0
    assert requests.get(f"{gw.url}/hello", timeout=30).status_code == 404  # no routes left: faas's own 404
    out = gw.cli("deploy", str(other))
    assert out.returncode == 0, out.stderr
    assert requests.get(f"{gw.url}/hello", timeout=30).json() == {"message": "hello world"}
