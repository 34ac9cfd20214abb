"""A function URL's Cors, applied as Lambda's function URLs apply it: the URL service answers
a preflight from the configuration without calling the function, and puts its CORS headers on
the function's responses to an allowed Origin, replacing any the function returns; another
origin gets none. A SAM FunctionUrlConfig, an AWS::Lambda::Url and function.yaml's url_cors,
through a real `faas deploy` and real HTTP against the real engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Gateway, gateway_session

# The function sets CORS headers of its own: with Cors configured they must not reach the client.
APP = """\
def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {
            "X-Called": "yes",
            "Access-Control-Allow-Origin": "https://evil.example",
            "Access-Control-Max-Age": "999",
        },
        "body": event["requestContext"]["http"]["method"],
    }
"""
TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  WebFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: urlcors-web
      CodeUri: web/
      Handler: app.handler
      Runtime: python3.11
      FunctionUrlConfig:
        AuthType: NONE
        Cors:
          AllowOrigins: ["https://app.example"]
          AllowMethods: [GET, POST]
          AllowHeaders: [x-custom]
          ExposeHeaders: [x-trace]
          MaxAge: 300
          AllowCredentials: true
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: urlcors-plain
      CodeUri: web/
      Handler: app.handler
      Runtime: python3.11
  CfnFunction:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: urlcors-cfn
      Handler: index.handler
      Runtime: python3.11
      Code:
        ZipFile: |
          def handler(event, context):
              return {"statusCode": 200, "headers": {"X-Called": "yes"}, "body": "cfn"}
  CfnUrl:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !GetAtt CfnFunction.Arn
      AuthType: NONE
      Cors: {AllowOrigins: ["*"], AllowHeaders: [content-type]}
"""
ALLOWED = "https://app.example"


def cors_headers(response: requests.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("urlcors")
    (root / "web").mkdir()
    (root / "web" / "app.py").write_text(APP)
    (root / "template.yaml").write_text(TEMPLATE)
    with gateway_session(root / "state", docker_client) as gw:
        out = gw.cli("deploy", str(root / "template.yaml"))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Cors" not in out.stdout + out.stderr  # applied, so not warned about
        yield gw


def test_a_preflight_from_an_allowed_origin_is_answered_from_the_configuration(gw: Gateway) -> None:
    response = requests.options(
        f"{gw.url}/function/urlcors-web/items",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-custom"},
        timeout=60,
    )
    assert response.status_code == 204 and response.content == b""
    assert "X-Called" not in response.headers  # the function was not called
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": ALLOWED,
        "Access-Control-Allow-Methods": "GET,POST",
        "Access-Control-Allow-Headers": "x-custom",
        "Access-Control-Max-Age": "300",
        "Access-Control-Allow-Credentials": "true",
    }
    assert response.headers["x-amzn-RequestId"]


def test_a_preflight_from_another_origin_gets_no_cors_headers(gw: Gateway) -> None:
    response = requests.options(
        f"{gw.url}/function/urlcors-web/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        timeout=60,
    )
    assert response.status_code == 204 and "X-Called" not in response.headers
    assert cors_headers(response) == {}


def test_an_options_request_that_is_no_preflight_goes_to_the_function(gw: Gateway) -> None:
    response = requests.options(f"{gw.url}/function/urlcors-web/", headers={"Origin": ALLOWED}, timeout=60)
    assert response.status_code == 200 and response.text == "OPTIONS" and response.headers["X-Called"] == "yes"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_a_get_from_an_allowed_origin_gets_the_urls_cors_headers_not_the_functions(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/function/urlcors-web/?q=1", headers={"Origin": ALLOWED}, timeout=60)
    assert response.status_code == 200 and response.text == "GET" and response.headers["X-Called"] == "yes"
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": ALLOWED,
        "Access-Control-Expose-Headers": "x-trace",
        "Access-Control-Allow-Credentials": "true",
    }


def test_another_origin_or_none_gets_no_cors_headers_at_all(gw: Gateway) -> None:
    for headers in ({"Origin": "https://evil.example"}, {}):
        response = requests.post(f"{gw.url}/function/urlcors-web/", data=b"x", headers=headers, timeout=60)
        assert response.status_code == 200 and response.text == "POST"
        assert cors_headers(response) == {}, headers


def test_a_function_without_cors_keeps_its_own_headers(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/function/urlcors-plain/", headers={"Origin": ALLOWED}, timeout=60)
    assert response.status_code == 200
    assert cors_headers(response) == {"Access-Control-Allow-Origin": "https://evil.example", "Access-Control-Max-Age": "999"}
    preflight = requests.options(
        f"{gw.url}/function/urlcors-plain/", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}, timeout=60
    )
    assert preflight.status_code == 200 and preflight.headers["X-Called"] == "yes"  # no Cors: the function answers


def test_an_aws_lambda_url_cors_allows_any_origin(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/function/urlcors-cfn/", headers={"Origin": "https://any.example"}, timeout=60)
    assert response.status_code == 200 and response.text == "cfn"
    assert cors_headers(response) == {"Access-Control-Allow-Origin": "*"}
    preflight = requests.options(
        f"{gw.url}/function/urlcors-cfn/",
        headers={"Origin": "https://any.example", "Access-Control-Request-Method": "PUT"},
        timeout=60,
    )
    assert preflight.status_code == 204 and "X-Called" not in preflight.headers
    assert cors_headers(preflight) == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "*",
        "Access-Control-Allow-Headers": "content-type",
    }


def test_function_yaml_url_cors_is_versioned_and_a_redeploy_changes_it(gw: Gateway, tmp_path: Path) -> None:
    folder = tmp_path / "urlcors-yaml"
    folder.mkdir()
    (folder / "app.py").write_text(APP)

    def deploy(origin: str) -> None:
        (folder / "function.yaml").write_text(
            f"name: urlcors-yaml\nruntime: python3.11\nhandler: app.handler\nurl_cors:\n  allow_origins: ['{origin}']\n"
        )
        gw.deploy(folder)

    def allowed_origin(origin: str) -> str | None:
        response = requests.options(
            f"{gw.url}/function/urlcors-yaml/",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
            timeout=60,
        )
        assert response.status_code == 204
        return response.headers.get("Access-Control-Allow-Origin")

    deploy("https://one.example")
    assert allowed_origin("https://one.example") == "https://one.example"
    deploy("https://two.example")
    assert allowed_origin("https://one.example") is None
    assert allowed_origin("https://two.example") == "https://two.example"


def test_a_bad_url_cors_is_refused_and_changes_nothing(gw: Gateway, tmp_path: Path) -> None:
    folder = tmp_path / "urlcors-bad"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "function.yaml").write_text(
        "name: urlcors-bad\nruntime: python3.11\nhandler: app.handler\nurl_cors: {max_age: -1}\n"
    )
    out = gw.cli("deploy", str(folder))
    assert out.returncode != 0 and "url_cors.max_age must be 0..86400 seconds, got -1" in out.stdout + out.stderr
    assert requests.get(f"{gw.url}/function/urlcors-bad/", timeout=60).status_code == 404
