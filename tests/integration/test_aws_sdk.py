"""The AWS SDK inside functions, through a real gateway and real containers: boto3 and the
JavaScript SDK v3 are in the runtime images as on Lambda (a function's own copy wins), every
function has Lambda's credential variables and AWS_ENDPOINT_URL_LAMBDA, and one function calls
another through the SDK from a container with `network: none` (the call is relayed over a
unix socket, as the Runtime API is). AWS_ENDPOINT_URL_<SERVICE> set where faas runs reach the
function; AWS_ENDPOINT_URL_LAMBDA set there does not (functions could not reach it)."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.containers.images import sdk_versions

try:
    from conftest import Gateway, gateway_session
except ImportError:  # imported as a package
    from tests.integration.conftest import Gateway, gateway_session

pytestmark = pytest.mark.integration

S3_ENDPOINT = "http://127.0.0.1:4566"


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    env = {"AWS_ENDPOINT_URL_S3": S3_ENDPOINT, "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:1"}
    with gateway_session(tmp_path_factory.mktemp("sdk") / "state", docker_client, extra_env=env) as gateway:
        yield gateway


def deploy(gw: Gateway, root: Path, runtime: str, files: dict[str, str], handler: str, network: str = "none") -> str:
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    folder = root / name
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    (folder / "function.yaml").write_text(
        f"name: {name}\nruntime: {runtime}\nhandler: {handler}\nnetwork: {network}\ntimeout: 60\n"
    )
    gw.deploy(folder)
    return name


def call(gw: Gateway, name: str, event: object) -> object:
    r = gw.invoke(name, json.dumps(event).encode())
    assert r.status_code == 200, r.text
    assert "X-Amz-Function-Error" not in r.headers, r.text
    return r.json()


PYTHON_SDK = """
import boto3, botocore

def handler(event, context):
    return {"boto3": boto3.__version__, "botocore": botocore.__version__, "file": boto3.__file__}
"""


@pytest.mark.parametrize("runtime", ["python3.11", "python3.14"])
def test_boto3_is_in_a_bare_python_function(gw: Gateway, tmp_path: Path, runtime: str) -> None:
    name = deploy(gw, tmp_path, runtime, {"app.py": PYTHON_SDK}, "app.handler")
    got = call(gw, name, {})
    pinned = sdk_versions(runtime)
    assert got == {"boto3": pinned["boto3"], "botocore": pinned["botocore"], "file": "/var/runtime/boto3/__init__.py"}


def test_a_functions_own_boto3_wins(gw: Gateway, tmp_path: Path) -> None:
    files = {"app.py": PYTHON_SDK, "boto3/__init__.py": "__version__ = '0.0.own'\n"}
    name = deploy(gw, tmp_path, "python3.11", files, "app.handler")
    got = call(gw, name, {})
    assert isinstance(got, dict)
    assert (got["boto3"], got["file"]) == ("0.0.own", "/var/task/boto3/__init__.py")
    assert got["botocore"] == sdk_versions("python3.11")["botocore"]  # what it does not bring comes from the image


NODE_SDK = """
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

export const handler = async () => {
  const { S3Client } = require('@aws-sdk/client-s3');
  const { fromEnv } = require('@aws-sdk/credential-providers');
  new LambdaClient({}); // a client is made: the SDK checks Node's version here
  return {
    esm: typeof LambdaClient === 'function' && typeof DynamoDBDocumentClient === 'function',
    cjs: typeof S3Client === 'function' && typeof fromEnv === 'function',
    from: require.resolve('@aws-sdk/client-s3'),
  };
};
"""


@pytest.mark.parametrize("runtime", ["nodejs20.x", "nodejs24.x"])
def test_the_js_sdk_is_in_a_bare_node_function(gw: Gateway, tmp_path: Path, runtime: str) -> None:
    name = deploy(gw, tmp_path, runtime, {"index.mjs": NODE_SDK}, "index.handler")
    got = call(gw, name, {})
    call(gw, name, {})  # what Node printed after the first call's answer lands in the log by now
    assert isinstance(got, dict)
    assert got["esm"] is True and got["cjs"] is True
    assert str(got["from"]).startswith("/var/runtime/node_modules/@aws-sdk/client-s3/")
    logs = ""
    for _ in range(50):  # the calls' log lands in the background: until the second REPORT line
        logs = gw.cli("logs", name).stdout
        if logs.count("REPORT") >= 2:
            break
        time.sleep(0.1)
    assert "REPORT" in logs and "Warning" not in logs  # no NodeVersionSupportWarning on nodejs20.x


ECHO = """
import os

def handler(event, context):
    return {"echo": event, "by": context.function_name}
"""

PYTHON_CALLER = """
import json, os
import boto3
from botocore.config import Config

def handler(event, context):
    client = boto3.client("lambda", config=Config(retries={"max_attempts": 1}, read_timeout=50))
    answer = client.invoke(FunctionName=event["callee"], Payload=json.dumps({"n": 42}))
    out = {"status": answer["StatusCode"], "payload": json.loads(answer["Payload"].read())}
    try:
        client.list_functions()
        out["list"] = "allowed"
    except client.exceptions.ClientError as e:
        out["list"] = e.response["Error"]["Code"]
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_LAMBDA",
             "AWS_ENDPOINT_URL_S3", "FAAS_AWS_SOCKET"]
    out["env"] = {k: os.environ.get(k) for k in names}
    return out
"""


def test_a_python_function_calls_another_through_boto3_with_network_none(gw: Gateway, tmp_path: Path) -> None:
    callee = deploy(gw, tmp_path, "python3.11", {"app.py": ECHO}, "app.handler")
    caller = deploy(gw, tmp_path, "python3.11", {"app.py": PYTHON_CALLER}, "app.handler", network="none")
    got = call(gw, caller, {"callee": callee})
    assert isinstance(got, dict)
    assert got["status"] == 200
    assert got["payload"] == {"echo": {"n": 42}, "by": callee}
    assert got["list"] == "AccessDeniedException"  # the relay carries Invoke only
    env = got["env"]
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:9002"  # not the host's setting
    assert env["AWS_ENDPOINT_URL_S3"] == S3_ENDPOINT
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["FAAS_AWS_SOCKET"] is None


NODE_CALLER = """
import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';

export const handler = async (event) => {
  const client = new LambdaClient({ maxAttempts: 1 });
  const answer = await client.send(new InvokeCommand({
    FunctionName: event.callee,
    Payload: new TextEncoder().encode(JSON.stringify({ n: 7 })),
  }));
  return { status: answer.StatusCode, payload: JSON.parse(new TextDecoder().decode(answer.Payload)) };
};
"""


@pytest.mark.parametrize("runtime", ["nodejs20.x", "nodejs24.x"])
def test_a_node_function_calls_another_through_the_js_sdk_with_network_none(gw: Gateway, tmp_path: Path, runtime: str) -> None:
    callee = deploy(gw, tmp_path, "python3.11", {"app.py": ECHO}, "app.handler")
    caller = deploy(gw, tmp_path, runtime, {"index.mjs": NODE_CALLER}, "index.handler", network="none")
    got = call(gw, caller, {"callee": callee})
    assert got == {"status": 200, "payload": {"echo": {"n": 7}, "by": callee}}


SH_CALLER = r"""#!/bin/sh
set -u
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
    curl -sS -D /tmp/headers -o /tmp/event "$api/invocation/next"
    id=$(sed -n 's/^lambda-runtime-aws-request-id: *\([^[:space:]]*\).*/\1/Ip' /tmp/headers)
    callee=$(sed -n 's/.*"callee": *"\([^"]*\)".*/\1/p' /tmp/event)
    curl -sS -o /tmp/response --data-binary '{"n": 3}' "$AWS_ENDPOINT_URL_LAMBDA/2015-03-31/functions/$callee/invocations"
    curl -sS -o /dev/null --data-binary @/tmp/response "$api/invocation/$id/response"
done
"""


def test_a_provided_function_reaches_the_lambda_endpoint_with_network_none(gw: Gateway, tmp_path: Path) -> None:
    callee = deploy(gw, tmp_path, "python3.11", {"app.py": ECHO}, "app.handler")
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "bootstrap").write_text(SH_CALLER)
    (folder / "bootstrap").chmod(0o755)
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: provided\nhandler: x.handler\nnetwork: none\ntimeout: 60\n")
    gw.deploy(folder)
    assert call(gw, name, {"callee": callee}) == {"echo": {"n": 3}, "by": callee}


def test_with_network_host_the_endpoint_is_the_gateways_own_port(gw: Gateway, tmp_path: Path) -> None:
    callee = deploy(gw, tmp_path, "python3.11", {"app.py": ECHO}, "app.handler")
    caller = deploy(gw, tmp_path, "python3.11", {"app.py": PYTHON_CALLER}, "app.handler", network="host")
    got = call(gw, caller, {"callee": callee})
    assert isinstance(got, dict)
    assert got["payload"] == {"echo": {"n": 42}, "by": callee}
    assert got["env"]["AWS_ENDPOINT_URL_LAMBDA"] == gw.url  # no relay port opened on the host's loopback
    assert got["env"]["FAAS_AWS_SOCKET"] is None
