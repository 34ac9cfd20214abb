"""SAM templates beyond one stack: a nested stack, --env-vars, plain CloudFormation functions
and API Gateway resources, and a function that cannot run here, deployed with `faas deploy`
against the real engine and called as a user calls them (curl-like HTTP, the Invoke API, the CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import pytest
import requests

from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import gateway_session

ENV_APP = """\
import json
import os


def handler(event, context):
    env = {k: os.environ.get(k) for k in ("MODE", "GREETING", "WHO")}
    return {"statusCode": 200, "body": json.dumps({"env": env, "version": event.get("version", "1.0")})}
"""
TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Who: {Type: String, Default: parent}
Resources:
  Front:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.11
      Environment: {Variables: {MODE: template, GREETING: template}}
      Events:
        Get: {Type: Api, Properties: {Path: /front, Method: get}}
  Child:
    Type: AWS::Serverless::Application
    Properties:
      Location: child/template.yaml
      Parameters: {Who: !Sub "${Who}-passed"}
  Img:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      Events:
        Get: {Type: Api, Properties: {Path: /img, Method: get}}
  Inline:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          import json
          def handler(event, context):
              keep = ("resource", "path", "httpMethod", "pathParameters", "stageVariables")
              out = {k: event.get(k) for k in keep}
              out["stage"] = (event.get("requestContext") or {}).get("stage")
              return {"statusCode": 200, "body": json.dumps(out)}
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
    Properties: {RestApiId: !Ref Rest, StageName: live, Variables: {color: blue}}
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: http, ProtocolType: HTTP}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Http, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Inline.Arn, PayloadFormatVersion: "1.0"}
  Things:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: "POST /things/{proxy+}", Target: !Join ["/", [integrations, !Ref Integ]]}
"""
CHILD = """\
Parameters:
  Who: {Type: String}
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../src
      Handler: app.handler
      Runtime: python3.11
      Environment: {Variables: {WHO: !Ref Who, GREETING: child}}
      Events:
        Get: {Type: HttpApi, Properties: {Path: /work, Method: get}}
"""
ENV_JSON = {"Parameters": {"GREETING": "from-env-json"}, "Front": {"MODE": "from-env-json", "UNDECLARED": "x"}}


def write_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(ENV_APP)
    (root / "child").mkdir()
    (root / "child" / "template.yaml").write_text(CHILD)
    (root / "env.json").write_text(json.dumps(ENV_JSON))
    (root / "template.yaml").write_text(TEMPLATE)
    return root / "template.yaml"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("tmpl") / "app")


@pytest.fixture(scope="module")
def deployed(runtime_images, tmp_path_factory: pytest.TempPathFactory, project: Path, docker_client) -> Iterator[tuple]:
    """A gateway of its own (template routes take its root), with the project deployed."""
    with gateway_session(tmp_path_factory.mktemp("tmpl-gw") / "state", docker_client) as gw:
        out = gw.cli("deploy", str(project), "--env-vars", str(project.parent / "env.json"))
        yield gw, out


def test_the_runnable_functions_deploy_and_the_image_function_is_named_with_its_reason(deployed) -> None:
    gw, out = deployed
    assert out.returncode == 0, out.stdout + out.stderr
    for line in (
        "deployed Front version 1 from Front",
        "deployed Worker version 1 from Child/Worker",
        "deployed Inline version 1 from Inline",
        "route GET /front -> Front (Api ServerlessRestApi, stage Prod)",
        "route GET /work -> Worker (HttpApi ServerlessHttpApi, stage $default)",
        "route GET /items/{id} -> Inline (Api Rest, stage live)",
        "route POST /things/{proxy+} -> Inline (HttpApi Http, stage $default)",
    ):
        assert line in out.stdout, out.stdout
    assert "Img: not deployed, it cannot run here: PackageType Image" in out.stderr
    assert "Front does not declare UNDECLARED" in out.stderr
    listed = gw.cli("ls")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("Img "))
    assert row.split()[-1:] == ["deployed"] and "Img: not deployed: Img cannot run here: PackageType Image" in listed.stdout


def test_env_vars_and_parameters_reach_the_functions_of_both_stacks(deployed) -> None:
    gw, _ = deployed
    front = requests.get(f"{gw.url}/front", timeout=60)
    assert front.status_code == 200 and front.json()["env"] == {"MODE": "from-env-json", "GREETING": "from-env-json", "WHO": None}
    work = requests.get(f"{gw.url}/work", timeout=60)
    assert work.status_code == 200
    assert work.json() == {"env": {"MODE": None, "GREETING": "from-env-json", "WHO": "parent-passed"}, "version": "2.0"}


def test_a_nested_function_answers_to_its_own_name_and_to_sams_path(deployed, project: Path) -> None:
    gw, _ = deployed
    by_path = gw.cli("invoke", "Child/Worker", "--template", str(project))
    by_name = gw.cli("invoke", "Worker")
    assert by_path.returncode == 0 and by_name.returncode == 0, by_path.stderr + by_name.stderr
    assert json.loads(json.loads(by_path.stdout)["body"])["env"]["WHO"] == "parent-passed"
    assert by_path.stdout == by_name.stdout
    bare = gw.cli("invoke", "Child/Worker")
    assert bare.returncode != 0 and "--template" in bare.stderr


def test_cloudformation_api_gateway_resources_are_served_with_their_stage(deployed) -> None:
    gw, _ = deployed
    item = requests.get(f"{gw.url}/items/42", timeout=60)
    assert item.status_code == 200
    assert item.json() == {
        "resource": "/items/{id}",
        "path": "/items/42",
        "httpMethod": "GET",
        "pathParameters": {"id": "42"},
        "stageVariables": {"color": "blue"},
        "stage": "live",
    }
    things = requests.post(f"{gw.url}/things/a/b", data=b"x", timeout=60)
    assert things.status_code == 200
    assert things.json()["resource"] == "/things/{proxy+}" and things.json()["pathParameters"] == {"proxy": "a/b"}


def test_a_call_to_the_function_that_cannot_run_names_the_reason(deployed) -> None:
    gw, _ = deployed
    routed = requests.get(f"{gw.url}/img", timeout=60)
    assert routed.status_code == 500 and routed.json() == {"message": "Internal server error"}
    assert "Img cannot run here: PackageType Image" in routed.headers["X-Faas-Error"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lambda_client(gw.url).invoke(FunctionName="Img", Payload=b"{}")
    error = caught.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert "function:Img: Img cannot run here: PackageType Image" in error["Message"]
    cli = gw.cli("invoke", "Img")
    assert cli.returncode != 0 and "cannot run here" in cli.stderr


def test_a_template_broken_as_a_whole_changes_nothing(deployed, project: Path) -> None:
    gw, _ = deployed
    before = requests.get(f"{gw.url}/system/routes", timeout=30).json()
    clash = project.parent / "clash.yaml"
    clash.write_text(TEMPLATE.replace("Path: /front", "Path: /items/{x}"))
    out = gw.cli("deploy", str(clash))
    assert out.returncode != 0 and "/items/{x}" in out.stderr
    broken = project.parent / "broken.yaml"
    broken.write_text("Resources: [\n")
    out = gw.cli("deploy", str(broken))
    assert out.returncode != 0 and "not valid YAML" in out.stderr
    assert requests.get(f"{gw.url}/system/routes", timeout=30).json() == before


def test_faas_invoke_takes_env_vars_with_the_template(deployed, project: Path, tmp_path: Path) -> None:
    """`faas invoke Child/Worker --template T --env-vars E`, as `sam local invoke --env-vars`: the
    call sees E's values (only those the function declares); the function keeps them (it persists)."""
    gw, _ = deployed
    env_file = tmp_path / "invoke-env.json"
    env_file.write_text(json.dumps({"Worker": {"GREETING": "for-this-invoke", "UNDECLARED": "x"}}))
    call = gw.cli("invoke", "Child/Worker", "--template", str(project), "--env-vars", str(env_file))
    assert call.returncode == 0, call.stdout + call.stderr
    assert json.loads(json.loads(call.stdout)["body"])["env"]["GREETING"] == "for-this-invoke"
    assert "Worker: deployed version 2 with the variables of invoke-env.json" in call.stderr
    again = gw.cli("invoke", "Child/Worker", "--template", str(project), "--env-vars", str(env_file))
    assert again.returncode == 0 and "Worker: unchanged (version 2)" in again.stderr, again.stderr
    bare = gw.cli("invoke", "Worker", "--env-vars", str(env_file))
    assert bare.returncode != 0 and "--env-vars needs --template" in bare.stderr
