"""SAM templates beyond one stack of SAM functions: nested stacks, --env-vars, plain
CloudFormation functions and API resources, and functions that cannot run here."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from faas.deploy import sam
from faas.errors import ValidationError

APP = "def handler(e, c):\n    return 1\n"


def write(folder: Path, name: str, text: str, code: dict[str, str] | None = None) -> Path:
    for rel, body in (code or {"src/app.py": APP}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(body)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


PARENT = """\
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Front:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src, Handler: app.handler, Runtime: python3.11}
  Child:
    Type: AWS::Serverless::Application
    Properties:
      Location: child/template.yaml
      Parameters: {Greeting: !Sub "hi-${Stage}", Size: "5"}
  Other:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: ./other.yaml
"""
CHILD = """\
Parameters:
  Greeting: {Type: String}
  Size: {Type: Number}
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../src
      Handler: app.handler
      Runtime: python3.11
      Timeout: !Ref Size
      Environment: {Variables: {GREETING: !Ref Greeting}}
      Events:
        Get: {Type: Api, Properties: {Path: /work, Method: get}}
"""
OTHER = """\
Resources:
  Named:
    Type: AWS::Serverless::Function
    Properties: {FunctionName: other-named, CodeUri: src, Handler: app.handler, Runtime: python3.11}
"""


def nested(tmp_path: Path) -> Path:
    write(tmp_path, "child/template.yaml", CHILD)
    write(tmp_path, "other.yaml", OTHER)
    return write(tmp_path, "template.yaml", PARENT)


def test_a_nested_stacks_functions_get_its_parameters_and_their_own_names(tmp_path: Path) -> None:
    template = sam.load(nested(tmp_path))
    by_path = {f.logical_id: f for f in template.functions}
    assert sorted(by_path) == ["Child/Worker", "Front", "Other/Named"]
    worker = by_path["Child/Worker"]
    assert worker.spec.name == "Worker" and worker.spec.timeout == 5  # a Number passed down as "5"
    assert worker.spec.environment == {"GREETING": "hi-dev"}
    assert by_path["Other/Named"].spec.name == "other-named"
    assert [(r.method, r.path, r.function) for r in template.routes] == [("GET", "/work", "Worker")]
    assert template.find("Child/Worker") is worker and template.find("other-named") is by_path["Other/Named"]
    assert template.find("Named") is by_path["Other/Named"] and template.find("Nope") is None


def test_a_nested_stack_with_a_missing_parameter_or_file_refuses_the_template(tmp_path: Path) -> None:
    path = nested(tmp_path)
    (tmp_path / "other.yaml").unlink()
    with pytest.raises(ValidationError, match="other.yaml' is not a template file"):
        sam.load(path)
    write(tmp_path, "other.yaml", OTHER)
    path.write_text(PARENT.replace('Size: "5"', 'Size: "5", Nope: x'))
    with pytest.raises(ValidationError, match="parameters the template does not have: Nope"):
        sam.load(path)


def test_an_application_from_the_repository_is_listed_as_not_runnable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "template.yaml",
        PARENT.split("  Child:")[0]
        + "  Sar:\n    Type: AWS::Serverless::Application\n    Properties:\n"
        + "      Location: {ApplicationId: arn:aws:serverlessrepo:us-east-1:1:applications/x, SemanticVersion: 1.0.0}\n",
    )
    template = sam.load(path)
    assert [f.spec.name for f in template.functions] == ["Front"]
    (gone,) = template.unrunnable
    assert gone.path == "Sar" and "not a local template file" in gone.reason


def test_functions_that_cannot_run_here_leave_the_others_deployable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "template.yaml",
        """\
        Resources:
          Ok:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              Handler: app.handler
              Runtime: python3.11
              Events: {Get: {Type: HttpApi, Properties: {Path: /ok, Method: get}}}
          Img:
            Type: AWS::Serverless::Function
            Properties:
              PackageType: Image
              Events: {Get: {Type: HttpApi, Properties: {Path: /img, Method: get}}}
          InS3:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: s3://bucket/code.zip, Handler: app.handler, Runtime: python3.11}
        """,
    )
    template = sam.load(path)
    assert [f.spec.name for f in template.functions] == ["Ok"]
    reasons = {u.path: u.reason for u in template.unrunnable}
    assert "PackageType Image" in reasons["Img"] and "no ImageUri" in reasons["Img"]
    assert "in S3" in reasons["InS3"]
    assert any("Img: not deployed, it cannot run here: PackageType Image" in w for w in template.warnings)
    # The route to the function that cannot run stays: its callers get an error, not another API's 404.
    assert sorted((r.path, r.function) for r in template.routes) == [("/img", "Img"), ("/ok", "Ok")]


def test_a_template_of_only_unrunnable_functions_is_refused_with_the_reasons(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "template.yaml",
        "Resources:\n  Img:\n    Type: AWS::Serverless::Function\n    Properties: {PackageType: Image}\n",
    )
    with pytest.raises(ValidationError, match="no function faas can run.*Img: PackageType Image"):
        sam.load(path)


def test_env_vars_in_sams_format_set_only_declared_variables(tmp_path: Path) -> None:
    path = nested(tmp_path)
    text = PARENT.replace("Runtime: python3.11}", "Runtime: python3.11, Environment: {Variables: {MODE: a, GREETING: x}}}", 1)
    path.write_text(text)
    env = tmp_path / "env.json"
    env.write_text(
        json.dumps({"Parameters": {"GREETING": "all"}, "Front": {"MODE": "b", "EXTRA": 1}, "Child/Worker": {"GREETING": "w"}})
    )
    template = sam.load(path, env_vars=sam.read_env_vars(env))
    by_path = {f.logical_id: f.spec.environment for f in template.functions}
    assert by_path["Front"] == {"MODE": "b", "GREETING": "all"}
    assert by_path["Child/Worker"] == {"GREETING": "w"}
    assert by_path["Other/Named"] == {}  # declares nothing: SAM CLI sets nothing
    assert any("Front does not declare EXTRA" in w for w in template.warnings)


@pytest.mark.parametrize("body, message", [("[1]", "an object of objects"), ("{", "not JSON"), ('{"F": {"A": [1]}}', "must map")])
def test_a_bad_env_vars_file_is_refused(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "env.json").write_text(body)
    with pytest.raises(ValidationError, match=message):
        sam.read_env_vars(tmp_path / "env.json")


CFN = """\
Resources:
  Inline:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          def handler(event, context):
              return {"statusCode": 200, "body": "inline"}
  Asset:
    Type: AWS::Lambda::Function
    Metadata: {aws:asset:path: asset.abc123}
    Properties:
      Runtime: python3.11
      Handler: app.handler
      Code: {S3Bucket: cdk-bucket, S3Key: abc123.zip}
  Lost:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.11, Handler: app.handler, Code: {S3Bucket: b, S3Key: k.zip}}
  Rest:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: rest}
  Items:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Rest, ParentId: !GetAtt Rest.RootResourceId, PathPart: items}
  Item:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Rest, ParentId: !Ref Items, PathPart: "{id}"}
  GetItem:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Rest
      ResourceId: !Ref Item
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Inline.Arn}/invocations"
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Rest, StageName: live, Variables: {v: "1"}}
  Quick:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: quick, ProtocolType: HTTP, Target: !GetAtt Asset.Arn}
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: http, ProtocolType: HTTP, CorsConfiguration: {AllowOrigins: ["*"]}}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Http, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Inline.Arn, PayloadFormatVersion: "1.0"}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: "POST /things/{proxy+}", Target: !Join ["/", [integrations, !Ref Integ]]}
  Url:
    Type: AWS::Lambda::Url
    Properties: {TargetFunctionArn: !GetAtt Inline.Arn, AuthType: NONE, Cors: {AllowOrigins: ["*"]}}
"""


def test_plain_cloudformation_functions_and_api_resources(tmp_path: Path) -> None:
    path = write(tmp_path, "template.yaml", CFN, {"asset.abc123/app.py": APP})
    template = sam.load(path)
    inline, asset = template.functions
    assert (inline.spec.name, asset.spec.name, asset.code) == ("Inline", "Asset", tmp_path / "asset.abc123")
    files = zipfile.ZipFile(io.BytesIO(sam.package(inline)))
    assert sorted(files.namelist()) == ["function.yaml", "index.py"]
    assert b"inline" in files.read("index.py") and sam.package(inline) == sam.package(inline)
    assert [(u.path, "in S3" in u.reason) for u in template.unrunnable] == [("Lost", True)]
    routes = {(r.method, r.path): r for r in template.routes}
    rest = routes[("GET", "/items/{id}")]
    assert (rest.function, rest.kind, rest.api_id, rest.stage, dict(rest.stage_variables)) == (
        "Inline",
        "Api",
        "Rest",
        "live",
        {"v": "1"},
    )
    quick = routes[("ANY", "$default")]
    assert (quick.function, quick.kind, quick.payload_version) == ("Asset", "HttpApi", "2.0")
    things = routes[("POST", "/things/{proxy+}")]
    assert (things.function, things.payload_version, things.cors is not None) == ("Inline", "1.0", True)
    text = "\n".join(template.warnings)
    assert "the function URL of Inline is /function/Inline on the gateway" in text and "not applied: Cors" not in text
    assert inline.spec.url_cors is not None and inline.spec.url_cors.allow_origins == ("*",)
    assert asset.spec.url_cors is None
    assert "Role" not in text  # IAM has no meaning here; not worth a warning


def test_a_method_on_an_unknown_resource_refuses_the_template(tmp_path: Path) -> None:
    path = write(
        tmp_path, "template.yaml", CFN.replace("ResourceId: !Ref Item", "ResourceId: !Ref Nowhere"), {"asset.abc123/app.py": APP}
    )
    with pytest.raises(ValidationError, match="'Nowhere' is not an AWS::ApiGateway::Resource"):
        sam.load(path)


def test_the_route_book_keeps_a_templates_unrunnable_functions_and_the_registry_names_why(tmp_path: Path) -> None:
    import json as _json

    from faas.deploy.registry import Registry
    from faas.deploy.routes import Route, RouteBook
    from faas.deploy.store import Store
    from faas.errors import FunctionNotFound

    store = Store(tmp_path / "faas.db")
    store.put_routes("old-12345678", _json.dumps([Route("GET", "/old", "Fn").to_json()]))  # the format before
    book = RouteBook(store)
    book.put("app-12345678", [Route("GET", "/img", "Img")], unrunnable={"Img": "Img cannot run here: PackageType Image"})
    assert RouteBook(store).unrunnable() == {"Img": "Img cannot run here: PackageType Image (template app-12345678)"}
    assert [r.path for r in RouteBook(store).stacks()["old-12345678"]] == ["/old"]
    registry = Registry(store)
    registry.unrunnable = book.unrunnable()
    with pytest.raises(FunctionNotFound, match=r"function:Img: Img cannot run here: PackageType Image"):
        registry.live("Img")
    with pytest.raises(ValidationError, match="must be a function name"):
        book.put("app-12345678", [], unrunnable={"bad/name": "x"})
    book.put("app-12345678", [])  # the template's routes removed: its unrunnable functions go too
    assert book.unrunnable() == {} and "app-12345678" not in RouteBook(store).stacks()


def test_faas_ls_lists_unrunnable_functions_and_invoke_wants_the_template_for_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faas.cli import main as cli
    from faas.cli.client import GatewayClient
    from tests.fakes import FakePlatform
    from tests.unit.test_cli import start_server

    server, thread = start_server(FakePlatform())
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("FAAS_GATEWAY", url)
    try:
        with GatewayClient(url) as client:
            client.put_routes("app-12345678", [], unrunnable={"Img": "Img cannot run here: PackageType Image"})
        assert cli.main(["ls"]) == 0
        out = capsys.readouterr().out
        assert "Img: not deployed: Img cannot run here: PackageType Image (template app-12345678)" in out
        assert cli.main(["invoke", "Child/Worker"]) != 0
        assert "--template" in capsys.readouterr().err
        path = nested(tmp_path)
        assert cli.main(["invoke", "Child/Nope", "--template", str(path)]) != 0
        assert "has no function 'Child/Nope'" in capsys.readouterr().err
    finally:
        server.shutdown()
        thread.join(5)
