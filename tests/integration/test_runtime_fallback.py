"""A runtime faas cannot build, through a real gateway: refused with the way forward by every
deploy path (function.yaml, a SAM template, CreateFunction), and run on another runtime only
when faas.yaml's runtime_fallback says so, with a warning at deploy and in `faas ls`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.aws_clients import lambda_client, zip_code
from tests.integration.conftest import Gateway, gateway_session

pytestmark = pytest.mark.integration

APP = "import platform\n\ndef handler(event, context):\n    return platform.python_version()\n"


@pytest.fixture(scope="module")
def fallback_gateway(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    state = tmp_path_factory.mktemp("fallback") / "state"
    state.mkdir()
    (state / "faas.yaml").write_text("runtime_fallback:\n  python3.12: python3.13\n")
    with gateway_session(state, docker_client) as gw:
        yield gw


def function_folder(root: Path, runtime: str) -> tuple[str, Path]:
    name = f"fb-{uuid.uuid4().hex[:6]}"
    folder = root / name
    folder.mkdir()
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: {runtime}\nhandler: app.handler\n")
    (folder / "app.py").write_text(APP)
    return name, folder


def listed(gw: Gateway) -> str:
    out = gw.cli("ls")
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_an_unavailable_runtime_is_refused_by_every_deploy_path(fallback_gateway: Gateway, tmp_path: Path) -> None:
    gw = fallback_gateway
    name, folder = function_folder(tmp_path, "nodejs18.x")
    out = gw.cli("deploy", str(folder))
    assert out.returncode != 0
    assert "runtime nodejs18.x is not available in faas" in out.stderr
    assert (
        "Available runtimes: python3.11, python3.13" in out.stderr and "runtime_fallback: {nodejs18.x: nodejs20.x}" in out.stderr
    )
    assert name not in listed(gw)

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Old:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: src, Handler: app.handler, Runtime: python3.9, FunctionName: fb-sam-old}\n"
    )
    out = gw.cli("deploy", str(template))
    assert out.returncode != 0 and "runtime python3.9 is not available" in out.stderr, out.stdout + out.stderr

    lam = lambda_client(gw.url)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        lam.create_function(
            FunctionName="fb-dotnet", Runtime="dotnet8", Handler="a::b::c", Role="r", Code={"ZipFile": zip_code(APP)}
        )
    assert "runtime dotnet8 is not available" in str(refused.value)
    text = listed(gw)
    assert "fb-sam-old" not in text and "fb-dotnet" not in text


def test_runtime_fallback_runs_the_function_and_warns(fallback_gateway: Gateway, tmp_path: Path) -> None:
    gw = fallback_gateway
    name, folder = function_folder(tmp_path, "python3.12")
    out = gw.cli("deploy", str(folder))
    assert out.returncode == 0, out.stderr
    warning = f"warning: {name} asks for python3.12, which faas does not have; it runs on python3.13"
    assert warning in out.stderr
    response = gw.invoke(name)
    assert response.status_code == 200 and json.loads(response.content).startswith("3.13."), response.text
    assert warning in listed(gw)

    # CreateFunction takes the same way; its configuration says what runs.
    lam = lambda_client(gw.url)
    created = lam.create_function(
        FunctionName=f"{name}-api", Runtime="python3.12", Handler="app.handler", Role="r", Code={"ZipFile": zip_code(APP)}
    )
    assert created["Runtime"] == "python3.13"
    assert f"{name}-api asks for python3.12" in listed(gw)
    # A runtime given afresh drops the fallback, and its warning.
    lam.update_function_configuration(FunctionName=f"{name}-api", Runtime="python3.14")
    assert f"{name}-api asks for python3.12" not in listed(gw)
