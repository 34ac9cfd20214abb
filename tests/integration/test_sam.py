"""`faas deploy template.yaml`: the example SAM app in functions/sam-app deployed and called."""

from __future__ import annotations

import json

import pytest
import requests

from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import ROOT, Gateway

TEMPLATE = ROOT / "functions" / "sam-app" / "template.yaml"


@pytest.fixture(scope="module")
def deployed(gateway: Gateway):
    out = gateway.cli("deploy", str(TEMPLATE))
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_every_function_of_the_template_is_deployed_and_warned_about(deployed) -> None:
    assert "deployed GreeterFunction version 1 from GreeterFunction" in deployed.stdout
    assert "deployed sam-word-count version 1 from WordCountFunction" in deployed.stdout
    assert "route GET /greet -> GreeterFunction (HttpApi ServerlessHttpApi, stage $default)" in deployed.stdout
    assert "Events" not in deployed.stderr


def test_the_templates_http_api_route_is_served_at_its_own_path(gateway: Gateway, deployed) -> None:
    response = requests.get(f"{gateway.url}/greet", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == {"message": "Hello, world!", "stage": "dev", "app": "sam-app", "memory": "128"}


def test_the_sam_functions_answer_with_the_templates_configuration(gateway: Gateway, deployed) -> None:
    lam = lambda_client(gateway.url)
    greeting = json.loads(lam.invoke(FunctionName="GreeterFunction", Payload=b'{"name": "SAM"}')["Payload"].read())
    assert greeting == {"message": "Hello, SAM!", "stage": "dev", "app": "sam-app", "memory": "128"}
    counted = json.loads(lam.invoke(FunctionName="sam-word-count", Payload=json.dumps({"text": "a b a c a b"}))["Payload"].read())
    assert counted == {
        "words": 6,
        "top": [["a", 3], ["b", 2], ["c", 1]],
        "prefix": "dev-us-east-1",
        "stage": "dev",
        "timeout_ms_left_max": True,
    }
    config = lam.get_function(FunctionName="sam-word-count")
    assert config["Configuration"]["MemorySize"] == 256 and config["Configuration"]["Timeout"] == 5
    assert config["Concurrency"] == {"ReservedConcurrentExecutions": 2}


def test_deploying_the_same_template_again_changes_nothing(gateway: Gateway, deployed) -> None:
    again = gateway.cli("deploy", str(TEMPLATE))
    assert again.returncode == 0
    assert "GreeterFunction unchanged (version 1)" in again.stdout
    assert "sam-word-count unchanged (version 1)" in again.stdout


def test_a_broken_template_deploys_nothing(gateway: Gateway, tmp_path) -> None:
    bad = tmp_path / "template.yaml"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    bad.write_text(
        "Resources:\n  Ok:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src, Handler: app.handler,"
        " Runtime: python3.11}\n  Bad:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: src,"
        " Handler: app.handler, Runtime: python3.11, MemorySize: 64}\n"
    )
    out = gateway.cli("deploy", str(bad))
    assert out.returncode == 1 and "memory must be between 128 and 10240" in out.stderr
    listed = requests.get(f"{gateway.url}/system/functions", timeout=30).json()
    assert "Ok" not in [f["name"] for f in listed]
