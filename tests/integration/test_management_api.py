"""Lambda's management API through the AWS CLI (awscli, a subprocess) and boto3 against a
real gateway: the whole life of a function made without faas's own tools."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from tests.integration.aws_clients import aws, aws_json, lambda_client, zip_code
from tests.integration.conftest import Gateway

V1 = """
    import os
    def handler(event, context):
        return {"code": 1, "greeting": os.environ.get("GREETING"), "memory": int(context.memory_limit_in_mb)}
"""
V2 = V1.replace('"code": 1', '"code": 2')


@pytest.fixture(scope="module")
def lam(gateway: Gateway):
    return lambda_client(gateway.url)


def invoke_cli(gateway: Gateway, tmp_path: Path, *args: str) -> tuple[dict, object]:
    meta = aws_json(gateway.url, "invoke", *args, str(tmp_path / "out.json"))
    return meta, json.loads((tmp_path / "out.json").read_text())


def test_the_aws_cli_manages_a_function_end_to_end(gateway: Gateway, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    (tmp_path / "f.zip").write_bytes(zip_code(V1))
    created = aws_json(
        gateway.url,
        "create-function",
        "--function-name",
        name,
        "--runtime",
        "python3.11",
        "--handler",
        "app.handler",
        "--role",
        "arn:aws:iam::123456789012:role/lambda-role",
        "--zip-file",
        "fileb://f.zip",
        "--environment",
        "Variables={GREETING=hi}",
        cwd=tmp_path,
    )
    assert created["FunctionName"] == name and created["Version"] == "$LATEST"
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert created["Role"] == "arn:aws:iam::123456789012:role/lambda-role"
    assert (created["Runtime"], created["Handler"], created["MemorySize"], created["Timeout"]) == (
        "python3.11",
        "app.handler",
        128,
        3,
    )
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}} and created["State"] == "Active"
    assert len(base64.b64decode(created["CodeSha256"])) == 32

    meta, body = invoke_cli(gateway, tmp_path, "--function-name", name, "--payload", "{}")
    assert meta == {"StatusCode": 200, "ExecutedVersion": "1"} and body == {"code": 1, "greeting": "hi", "memory": 128}

    (tmp_path / "f2.zip").write_bytes(zip_code(V2))
    updated = aws_json(gateway.url, "update-function-code", "--function-name", name, "--zip-file", "fileb://f2.zip", cwd=tmp_path)
    assert updated["CodeSha256"] != created["CodeSha256"] and updated["Environment"] == created["Environment"]
    assert invoke_cli(gateway, tmp_path, "--function-name", name)[1]["code"] == 2

    configured = aws_json(
        gateway.url,
        "update-function-configuration",
        "--function-name",
        name,
        "--memory-size",
        "256",
        "--timeout",
        "7",
        "--environment",
        "Variables={GREETING=hello}",
    )
    assert (configured["MemorySize"], configured["Timeout"]) == (256, 7)
    assert invoke_cli(gateway, tmp_path, "--function-name", name)[1] == {"code": 2, "greeting": "hello", "memory": 256}

    published = aws_json(gateway.url, "publish-version", "--function-name", name)
    assert published["Version"] == "3" and published["FunctionArn"].endswith(f":{name}:3")
    assert aws_json(gateway.url, "publish-version", "--function-name", name)["Version"] == "3"  # nothing changed
    alias = aws_json(
        gateway.url,
        "create-alias",
        "--function-name",
        name,
        "--name",
        "prod",
        "--function-version",
        "2",
        "--description",
        "before the memory change",
    )
    assert alias["AliasArn"].endswith(f":{name}:prod") and alias["FunctionVersion"] == "2"
    meta, body = invoke_cli(gateway, tmp_path, "--function-name", name, "--qualifier", "prod")
    assert meta["ExecutedVersion"] == "2" and body["memory"] == 128

    got = aws_json(gateway.url, "get-function", "--function-name", name)
    assert got["Configuration"]["MemorySize"] == 256 and got["Code"]["RepositoryType"] == "S3"
    assert aws_json(gateway.url, "get-function", "--function-name", f"{name}:prod")["Configuration"]["Version"] == "2"
    assert (
        aws_json(gateway.url, "get-alias", "--function-name", name, "--name", "prod")["Description"] == "before the memory change"
    )
    assert [a["Name"] for a in aws_json(gateway.url, "list-aliases", "--function-name", name)["Aliases"]] == ["prod"]
    versions = aws_json(gateway.url, "list-versions-by-function", "--function-name", name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2", "3"]
    listed = aws_json(gateway.url, "list-functions")["Functions"]
    assert name in [f["FunctionName"] for f in listed]

    delete = aws(gateway.url, "delete-function", "--function-name", name)
    assert delete.returncode == 0, delete.stderr
    gone = aws(gateway.url, "get-function", "--function-name", name)
    assert gone.returncode != 0 and "ResourceNotFoundException" in gone.stderr


@pytest.mark.parametrize(
    "args, error, message",
    [
        (["--memory-size", "20000"], "InvalidParameterValueException", "memory must be between 128 and 10240"),
        (["--timeout", "901"], "InvalidParameterValueException", "timeout must be between 1 and 900"),
        (["--environment", "Variables={AWS_REGION=x}"], "InvalidParameterValueException", "AWS_REGION is reserved"),
        (["--layers", "arn:aws:lambda:us-east-1:123456789012:layer:l:1"], "InvalidParameterValueException", "does not exist"),
    ],
)
def test_create_function_validates_like_faas_deploy(
    gateway: Gateway, tmp_path: Path, args: list[str], error: str, message: str
) -> None:
    (tmp_path / "f.zip").write_bytes(zip_code(V1))
    out = aws(
        gateway.url,
        "create-function",
        "--function-name",
        f"bad-{uuid.uuid4().hex[:6]}",
        "--runtime",
        "python3.11",
        "--handler",
        "app.handler",
        "--role",
        "arn:aws:iam::123456789012:role/r",
        "--zip-file",
        "fileb://f.zip",
        *args,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert error in out.stderr and message in out.stderr, out.stderr


def test_management_errors_through_boto3(gateway: Gateway, lam, tmp_path: Path) -> None:
    name = f"b3-{uuid.uuid4().hex[:6]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler="app.handler",
        Role="arn:aws:iam::123456789012:role/r",
        Code={"ZipFile": zip_code(V1)},
        Publish=True,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Handler="app.handler", Role="r", Code={"ZipFile": zip_code(V1)}
        )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(
            FunctionName=f"{name}-z", Runtime="python3.11", Handler="app.handler", Role="r", Code={"ZipFile": b"not a zip"}
        )
    assert "not a valid zip" in str(e.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=f"{name}-missing")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_function_code(FunctionName=f"{name}-missing", ZipFile=zip_code(V1))
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(FunctionName=name, Name="a", FunctionVersion="99")
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_alias(FunctionName=name, Name="a", FunctionVersion="1")
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=str(uuid.uuid4()))
    revision = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=revision)["Timeout"] == 5
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=120)
    config = lam.get_function_event_invoke_config(FunctionName=name)
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (0, 120)
    code = lam.get_function(FunctionName=name)["Code"]["Location"]
    import requests

    assert requests.get(code, timeout=30).content[:2] == b"PK"
    lam.delete_alias(FunctionName=name, Name="a")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName=name, Name="a")
    lam.delete_function(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=name, Payload=b"{}")


def test_a_function_deployed_with_faas_is_managed_by_the_cli(gateway: Gateway, make_function, tmp_path: Path) -> None:
    name, folder = make_function(V1, memory=192, environment={"GREETING": "yo"})
    gateway.deploy(folder)
    got = aws_json(gateway.url, "get-function-configuration", "--function-name", name)
    assert got["MemorySize"] == 192 and got["Environment"]["Variables"] == {"GREETING": "yo"}
    (tmp_path / "f2.zip").write_bytes(zip_code(V2))
    aws_json(gateway.url, "update-function-code", "--function-name", name, "--zip-file", "fileb://f2.zip", cwd=tmp_path)
    assert invoke_cli(gateway, tmp_path, "--function-name", name)[1] == {"code": 2, "greeting": "yo", "memory": 192}
    listed = {f["name"]: f for f in json.loads(__import__("requests").get(f"{gateway.url}/system/functions", timeout=30).text)}
    assert listed[name]["version"] == 2 and listed[name]["memory"] == 192  # faas's own view agrees


def test_update_function_code_dry_run_validates_and_writes_nothing(gateway: Gateway, lam) -> None:
    """Lambda's DryRun checks the request and changes nothing: no package stored, no version."""
    name = f"dry-{uuid.uuid4().hex[:6]}"
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler="app.handler",
        Role="arn:aws:iam::123456789012:role/r",
        Code={"ZipFile": zip_code(V1)},
    )
    store = gateway.state_dir / "packages"
    before = sorted(p.name for p in store.iterdir())
    answer = lam.update_function_code(FunctionName=name, ZipFile=zip_code(V2), DryRun=True)
    assert answer["FunctionName"] == name and answer["Version"] == "$LATEST"
    assert answer["CodeSha256"] == created["CodeSha256"] and answer["RevisionId"] == created["RevisionId"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.update_function_code(FunctionName=name, ZipFile=b"not a zip", DryRun=True)
    assert "not a valid zip" in str(e.value)
    assert sorted(p.name for p in store.iterdir()) == before
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1"]
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())["code"] == 1
    lam.delete_function(FunctionName=name)
