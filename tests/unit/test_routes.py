"""Template routes: read from Events, checked, and matched with API Gateway's precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas.deploy import sam
from faas.deploy.routes import HTTP, REST, Match, Miss, Route, RouteBook, RouteTable, check_reserved
from faas.deploy.store import Store
from faas.errors import ValidationError


def r(method: str, path: str, function: str = "fn", kind: str = REST) -> Route:
    return Route(method, path, function, kind=kind, payload_version="1.0" if kind == REST else "2.0")


def test_exact_beats_parameter_beats_greedy() -> None:
    table = RouteTable([r("GET", "/{proxy+}", "greedy"), r("GET", "/items/{id}", "param"), r("GET", "/items/new", "exact")])
    assert isinstance(m := table.match("GET", "/items/new"), Match) and m.route.function == "exact"
    assert isinstance(m := table.match("GET", "/items/42"), Match) and m.route.function == "param"
    assert m.path_parameters == {"id": "42"}
    assert isinstance(m := table.match("GET", "/items/42/parts/7"), Match) and m.route.function == "greedy"
    assert m.path_parameters == {"proxy": "items/42/parts/7"}


def test_a_named_method_beats_any() -> None:
    table = RouteTable([r("ANY", "/x", "any"), r("POST", "/x", "post")])
    assert table.match("POST", "/x").route.function == "post"  # type: ignore[union-attr]
    assert table.match("DELETE", "/x").route.function == "any"  # type: ignore[union-attr]


def test_greedy_needs_a_segment_and_root_is_its_own_route() -> None:
    table = RouteTable([r("ANY", "/{proxy+}")])
    assert isinstance(table.match("GET", "/"), Miss)
    assert isinstance(table.match("GET", "/a"), Match)


def test_no_match_answers_as_api_gateway() -> None:
    rest = RouteTable([r("GET", "/hello")])
    miss = rest.match("GET", "/nope")
    assert isinstance(miss, Miss) and (miss.status, miss.body) == (403, {"message": "Missing Authentication Token"})
    wrong_method = rest.match("POST", "/hello")
    assert isinstance(wrong_method, Miss) and wrong_method.status == 403
    http = RouteTable([r("GET", "/hello", kind=HTTP)])
    miss = http.match("GET", "/nope")
    assert isinstance(miss, Miss) and (miss.status, miss.body) == (404, {"message": "Not Found"})


def test_default_route_catches_the_rest() -> None:
    table = RouteTable(
        [r("GET", "/hello", "hello", HTTP), Route("ANY", "$default", "fallback", kind=HTTP, payload_version="2.0")]
    )
    assert table.match("PUT", "/anything/else").route.function == "fallback"  # type: ignore[union-attr]
    assert table.match("GET", "/hello").route.function == "hello"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "path", "why"),
    [
        ("GET", "hello", "start with '/'"),
        ("GET", "/{proxy+}/x", "last segment"),
        ("GET", "/a{b}", "neither a literal"),
        ("FETCH", "/a", "method must be"),
        ("GET", "/{id}/{id}", "appears twice"),
        ("GET", "/a\nb", "neither a literal"),
    ],
)
def test_bad_routes_are_refused_by_name(method: str, path: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Route(method, path, "fn").check()


def test_same_method_and_shape_clash_across_stacks_and_nothing_changes(tmp_path: Path) -> None:
    book = RouteBook(Store(tmp_path / "faas.db"))
    book.put("one", [r("GET", "/items/{id}", "a")])
    with pytest.raises(ValidationError, match="clashes with GET /items/{id}"):
        book.put("two", [r("GET", "/items/{name}", "b")])
    assert [x.function for x in book.table.routes] == ["a"]
    book.put("one", [r("GET", "/items/{name}", "a2")])  # a stack replaces its own routes
    assert [x.function for x in book.table.routes] == ["a2"]


def test_routes_survive_a_restart_and_an_empty_put_removes_them(tmp_path: Path) -> None:
    book = RouteBook(Store(tmp_path / "faas.db"))
    book.put("one", [r("GET", "/hello", "hello"), r("POST", "/items/{id}", "items", HTTP)])
    again = RouteBook(Store(tmp_path / "faas.db"))
    assert again.table.routes == book.table.routes
    again.put("one", [])
    assert not RouteBook(Store(tmp_path / "faas.db")).table


def test_dry_run_checks_without_storing(tmp_path: Path) -> None:
    book = RouteBook(Store(tmp_path / "faas.db"))
    book.put("one", [r("GET", "/hello")], dry_run=True)
    assert not book.table and not RouteBook(Store(tmp_path / "faas.db")).table


def test_a_route_under_a_faas_prefix_is_refused_with_the_way_out() -> None:
    with pytest.raises(ValidationError, match=r"GET /system/x \(fn\) would be hidden.*change the route's Path"):
        check_reserved([r("GET", "/hello"), r("GET", "/system/x")], {"system", "ui"})
    check_reserved([r("ANY", "/{proxy+}"), r("GET", "/")], {"system"})  # catch-alls leave faas's paths to faas


def test_route_json_round_trip_and_refusals() -> None:
    route = Route("GET", "/a/{b}", "fn", kind=HTTP, api_id="MyApi", stage="v1", payload_version="2.0", stage_variables={"k": "v"})
    assert Route.from_json(route.to_json()) == route
    with pytest.raises(ValidationError, match="unknown key"):
        Route.from_json({**route.to_json(), "colour": "red"})
    with pytest.raises(ValidationError, match="payload format"):
        Route.from_json({**route.to_json(), "kind": REST})
    with pytest.raises(ValidationError, match="function name must match"):
        Route.from_json({**route.to_json(), "function": "../../etc/passwd"})
    with pytest.raises(ValidationError, match="control characters"):
        Route.from_json({**route.to_json(), "stage": "v1\r\nX: y"})


HELLO_WORLD = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 3
Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.11
      Events:
        HelloWorld:
          Type: Api
          Properties:
            Path: /hello
            Method: get
  ItemsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.11
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: "/items/{id}", Method: GET}
        Old:
          Type: HttpApi
          Properties: {Path: /old, Method: post, PayloadFormatVersion: "1.0", ApiId: !Ref MyHttpApi}
        Everything:
          Type: HttpApi
        Queue:
          Type: SQS
          Properties: {Queue: arn}
  MyHttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: !Ref Stage
      StageVariables: {colour: blue}
      Auth: {DefaultAuthorizer: Jwt}
      CorsConfiguration: {AllowOrigins: ["https://a.example"]}
Parameters:
  Stage: {Type: String, Default: v1}
"""


def test_sam_template_events_become_routes(tmp_path: Path) -> None:
    (tmp_path / "hello_world").mkdir()
    (tmp_path / "hello_world" / "app.py").write_text("def lambda_handler(e, c):\n    return {}\n")
    path = tmp_path / "template.yaml"
    path.write_text(HELLO_WORLD)
    template = sam.load(path)
    got = {(x.method, x.path): x for x in template.routes}
    hello = got[("GET", "/hello")]
    assert (hello.function, hello.kind, hello.api_id, hello.stage, hello.payload_version) == (
        "HelloWorldFunction",
        REST,
        "ServerlessRestApi",
        "Prod",
        "1.0",
    )
    item = got[("GET", "/items/{id}")]
    assert (item.kind, item.api_id, item.stage, item.payload_version) == (HTTP, "ServerlessHttpApi", "$default", "2.0")
    old = got[("POST", "/old")]
    assert (old.api_id, old.stage, old.payload_version, dict(old.stage_variables)) == (
        "MyHttpApi",
        "v1",
        "1.0",
        {"colour": "blue"},
    )
    assert got[("ANY", "$default")].function == "ItemsFunction"
    assert not any("event type SQS" in w for w in template.warnings)  # an event source mapping now
    assert [m["EventSourceArn"] for m in template.event_sources] == ["arn"]
    assert not any("ignored: Events" in w for w in template.warnings)
    assert "MyHttpApi: not supported by faas, ignored: Auth" in template.warnings
    assert not any("not deployed" in w for w in template.warnings)  # the API is served, not skipped
    assert old.cors is not None and old.cors.allow_origins == ("https://a.example",)
    assert Route.from_json(old.to_json()) == old


def test_an_event_naming_a_missing_api_refuses_the_template(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: app.h\n"
        "      Runtime: python3.11\n      Events:\n        E:\n          Type: Api\n"
        "          Properties: {Path: /x, Method: get, RestApiId: !Ref Nope}\n"
    )
    with pytest.raises(ValidationError, match="F.Events.E.RestApiId"):
        sam.load(path)


OPENAPI = """\
Resources:
  ProxyFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src, Handler: app.handler, Runtime: python3.11}
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: "3.0.1"
        paths:
          /{proxy+}:
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                payloadFormatVersion: "2.0"
                uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${ProxyFunction.Arn}/invocations"
          /mock:
            get:
              x-amazon-apigateway-integration: {type: mock}
  RestApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      DefinitionUri: api.yaml
"""
REST_OPENAPI = """\
swagger: "2.0"
paths:
  /items/{id}:
    get:
      x-amazon-apigateway-integration:
        type: AWS_PROXY
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:ProxyFunction/invocations
"""


def test_openapi_definitions_become_routes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "api.yaml").write_text(REST_OPENAPI)
    path = tmp_path / "template.yaml"
    path.write_text(OPENAPI)
    template = sam.load(path)
    got = {(r.method, r.path): r for r in template.routes}
    proxy = got[("ANY", "/{proxy+}")]
    assert (proxy.function, proxy.kind, proxy.api_id, proxy.payload_version) == ("ProxyFunction", HTTP, "HttpApi", "2.0")
    items = got[("GET", "/items/{id}")]
    assert (items.kind, items.api_id, items.stage, items.payload_version) == (REST, "RestApi", "v1", "1.0")
    assert ("GET", "/mock") not in got
    assert any("integration type mock is not served" in w for w in template.warnings)


def test_a_definition_uri_outside_the_templates_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(OPENAPI.replace("DefinitionUri: api.yaml", "DefinitionUri: ../../etc/passwd"))
    with pytest.raises(ValidationError, match="not a file in the template's folder"):
        sam.load(path)
