"""Lambda layers on a real gateway: published through the management API (boto3), named by
folder in function.yaml, mapped from a public ARN by faas.yaml's layer_map; merged at /opt in
order, importable from Python and Node handlers, refused beyond Lambda's limits."""

from __future__ import annotations

import io
import json
import stat
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.integration.aws_clients import lambda_client, zip_code
from tests.integration.conftest import Gateway, gateway_session

pytestmark = pytest.mark.integration

PUBLIC_ARN = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7"
UNMAPPED_ARN = "arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:53"
BIG_ARN = "arn:aws:lambda:us-east-1:111111111111:layer:big:1"


def layer_zip(files: dict[str, str], executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            info = zipfile.ZipInfo(path)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | (0o755 if path in executable else 0o644)) << 16
            zf.writestr(info, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("layers")
    mapped = root / "powertools"
    (mapped / "python").mkdir(parents=True)
    (mapped / "python" / "powertools_stub.py").write_text("WHERE = 'mapped'\n")
    big = root / "big"
    big.mkdir()
    with open(big / "blob", "wb") as f:  # sparse: 260 MB by its size, nothing on disk
        f.truncate(260 * 1024 * 1024)
    state = root / "state"
    state.mkdir()
    (state / "faas.yaml").write_text(json.dumps({"layer_map": {PUBLIC_ARN: str(mapped), BIG_ARN: str(big)}}))
    with gateway_session(state, docker_client) as g:
        yield g


@pytest.fixture(scope="module")
def lam(gw: Gateway) -> Any:
    return lambda_client(gw.url)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def publish(lam: Any, name: str, files: dict[str, str], executable: tuple[str, ...] = ()) -> dict[str, Any]:
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip(files, executable)})


PY_HANDLER = """
import os, shutil
import shared, only_first, sitepkg
def handler(event, context):
    return {"shared": shared.WHO, "first": only_first.OK, "site": sitepkg.WHERE,
            "tool": shutil.which("layer-tool"), "opt": sorted(os.listdir("/opt"))}
"""


def test_layers_published_with_boto3_are_merged_in_order(lam: Any, gw: Gateway) -> None:
    first = publish(
        lam,
        _name("first"),
        {
            "python/shared.py": "WHO = 'first'\n",
            "python/only_first.py": "OK = True\n",
            "bin/layer-tool": "#!/bin/sh\necho hi\n",
        },
        executable=("bin/layer-tool",),
    )
    second = lam.publish_layer_version(
        LayerName=_name("second"),
        Content={
            "ZipFile": layer_zip(
                {
                    "python/shared.py": "WHO = 'second'\n",
                    "python/lib/python3.11/site-packages/sitepkg/__init__.py": "WHERE = 'site-packages'\n",
                }
            )
        },
        CompatibleRuntimes=["python3.11"],
        Description="the later one",
    )
    assert first["Version"] == 1 and first["LayerVersionArn"].endswith(":1")
    assert second["LayerVersionArn"].startswith("arn:aws:lambda:us-east-1:123456789012:layer:second-")
    name = _name("layered")
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={"ZipFile": zip_code(PY_HANDLER)},
        Layers=[first["LayerVersionArn"], second["LayerVersionArn"]],
    )
    assert [layer["Arn"] for layer in created["Layers"]] == [first["LayerVersionArn"], second["LayerVersionArn"]]
    assert created["Layers"][0]["CodeSize"] == first["Content"]["CodeSize"] > 0
    out = json.loads(lam.invoke(FunctionName=name)["Payload"].read())
    assert out == {
        "shared": "second",
        "first": True,
        "site": "site-packages",
        "tool": "/opt/bin/layer-tool",
        "opt": ["bin", "python"],
    }
    # The other order: the first layer's file wins now.
    lam.update_function_configuration(FunctionName=name, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]])
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read())["shared"] == "first"
    got = lam.get_function(FunctionName=name)["Configuration"]["Layers"]
    assert [layer["Arn"] for layer in got] == [second["LayerVersionArn"], first["LayerVersionArn"]]

    # The read side of the layer API.
    by_arn = lam.get_layer_version_by_arn(Arn=second["LayerVersionArn"])
    assert by_arn["Description"] == "the later one" and by_arn["CompatibleRuntimes"] == ["python3.11"]
    listed = {layer["LayerName"] for layer in lam.list_layers(CompatibleRuntime="python3.11")["Layers"]}
    assert second["LayerArn"].rsplit(":", 1)[-1] in listed and first["LayerArn"].rsplit(":", 1)[-1] not in listed
    layer_name = first["LayerArn"].rsplit(":", 1)[-1]
    again = publish(lam, layer_name, {"python/shared.py": "WHO = 'first v2'\n"})
    assert again["Version"] == 2
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=layer_name)["LayerVersions"]] == [2, 1]
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=layer_name, VersionNumber=1)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # A function already using the deleted version keeps it, as on Lambda.
    lam.update_function_configuration(FunctionName=name, Description="still layered")
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read())["first"] is True
    assert publish(lam, layer_name, {"a.txt": "x"})["Version"] == 3  # numbers are never given again


def test_lambda_limits_on_layers_are_refused_as_lambda_refuses_them(lam: Any, gw: Gateway) -> None:
    arn = publish(lam, _name("tiny"), {"python/tiny.py": ""})["LayerVersionArn"]

    def create(layers: list[str]) -> dict[str, Any]:
        with pytest.raises(ClientError) as e:
            lam.create_function(
                FunctionName=_name("refused"),
                Runtime="python3.11",
                Role="arn:aws:iam::123456789012:role/r",
                Handler="app.handler",
                Code={"ZipFile": zip_code("def handler(e, c):\n    return 1\n")},
                Layers=layers,
            )
        return e.value.response["Error"] | {"Status": e.value.response["ResponseMetadata"]["HTTPStatusCode"]}

    six = create([arn] * 6)
    assert (six["Code"], six["Status"]) == ("InvalidParameterValueException", 400)
    assert "Cannot reference more than 5 layers" in six["Message"]
    missing = create([arn[: arn.rindex(":")] + ":99"])
    assert missing["Code"] == "InvalidParameterValueException" and "does not exist" in missing["Message"]
    big = create([BIG_ARN])
    assert "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes" in big["Message"]
    unmapped = create([UNMAPPED_ARN])
    assert UNMAPPED_ARN in unmapped["Message"] and "layer_map" in unmapped["Message"]
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert not any(n.startswith("refused-") for n in names)  # nothing was created
    with pytest.raises(ClientError) as e:
        lam.publish_layer_version(LayerName="bad name!", Content={"ZipFile": layer_zip({"a": "b"})})
    assert e.value.response["Error"]["Code"] in ("InvalidParameterValueException", "ValidationException")
    bad_zip = requests.post(f"{gw.url}/2018-10-31/layers/x/versions", json={"Content": {"ZipFile": "bm90IGEgemlw"}}, timeout=10)
    assert bad_zip.status_code == 400 and bad_zip.json()["Type"] == "User"


def test_a_public_layer_arn_mapped_in_faas_yaml_is_mounted(lam: Any, gw: Gateway) -> None:
    name = _name("mapped")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={"ZipFile": zip_code("import powertools_stub\ndef handler(e, c):\n    return powertools_stub.WHERE\n")},
        Layers=[PUBLIC_ARN],
    )
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == "mapped"


def function_folder(root: Path, name: str, runtime: str, handler: str, files: dict[str, str], layers: list[str]) -> Path:
    folder = root / name
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    (folder / "function.yaml").write_text(
        f"name: {name}\nruntime: {runtime}\nhandler: {handler}\nlayers:\n" + "".join(f"  - {x}\n" for x in layers)
    )
    return folder


def test_function_yaml_layers_from_folders_and_zips(lam: Any, gw: Gateway, tmp_path: Path) -> None:
    name = _name("yaml")
    (tmp_path / "vendor.zip").write_bytes(layer_zip({"python/vendored.py": "V = 'from a zip'\n"}))
    folder = function_folder(
        tmp_path,
        name,
        "python3.11",
        "app.handler",
        {
            "app.py": "import os, helper, vendored\ndef handler(e, c):\n    return [helper.H, vendored.V, sorted(os.listdir('/var/task'))]\n",
            "layer/python/helper.py": "H = 'from a folder'\n",
        },
        ["layer", "../vendor.zip"],
    )
    gw.deploy(folder)
    assert gw.invoke(name).json() == ["from a folder", "from a zip", ["app.py", "function.yaml"]]
    layers = lam.get_function(FunctionName=name)["Configuration"]["Layers"]
    assert [x["Arn"].rsplit(":", 2)[-2:] for x in layers] == [["layer", "1"], ["vendor", "1"]]
    # A save that changes only the code makes no new layer version.
    (folder / "app.py").write_text("import helper\ndef handler(e, c):\n    return helper.H + '!'\n")
    gw.deploy(folder)
    assert gw.invoke(name).json() == "from a folder!"
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="layer")["LayerVersions"]] == [1]
    # A change in the layer folder does.
    (folder / "layer/python/helper.py").write_text("H = 'changed'\n")
    gw.deploy(folder)
    assert gw.invoke(name).json() == "changed!"
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="layer")["LayerVersions"]] == [2, 1]


def test_a_node_handler_requires_from_a_layer(lam: Any, gw: Gateway, tmp_path: Path) -> None:
    name = _name("node")
    arn = publish(
        lam,
        _name("nodelib"),
        {
            "nodejs/node_modules/greeter/index.js": "exports.greet = (n) => 'hello ' + n;\n",
            "nodejs/node20/node_modules/versioned/index.js": "module.exports = 'node20 dir';\n",
        },
    )["LayerVersionArn"]
    folder = function_folder(
        tmp_path,
        name,
        "nodejs20.x",
        "index.handler",
        {
            "index.js": "const g = require('greeter'); const v = require('versioned');\n"
            "exports.handler = async () => [g.greet('layer'), v, process.env.NODE_PATH.split(':')[0]];\n"
        },
        [arn],
    )
    gw.deploy(folder)
    assert gw.invoke(name).json() == ["hello layer", "node20 dir", "/opt/nodejs/node20/node_modules"]


def test_a_prestarted_container_gets_its_layers_when_given_the_function(lam: Any, gw: Gateway) -> None:
    arn = publish(lam, _name("pre"), {"python/pre_mod.py": "X = 42\n"})["LayerVersionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a pre-started python3.11 container is up and waiting
        envs = requests.get(f"{gw.url}/system/environments", timeout=10).json()
        if any(e["state"] == "prestarted" and e["runtime"] == "python3.11" for e in envs):
            break
        time.sleep(0.2)
    time.sleep(0.3)
    name = _name("pre")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={"ZipFile": zip_code("import pre_mod\ndef handler(e, c):\n    return pre_mod.X\n")},
        Layers=[arn],
    )
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == 42
    deadline = time.monotonic() + 10
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not records:
        got = requests.get(f"{gw.url}/system/functions/{name}/calls", timeout=10).json()
        records = got.get("calls", got) if isinstance(got, dict) else got
        time.sleep(0.1)
    assert [r["start"] for r in records] == ["prestarted"]


def test_layer_content_is_read_only_and_private_to_the_state_dir(lam: Any, gw: Gateway) -> None:
    arn = publish(lam, _name("ro"), {"python/ro_mod.py": "X = 1\n"})["LayerVersionArn"]
    name = _name("ro")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={
            "ZipFile": zip_code(
                "def handler(e, c):\n"
                "    mounts = [line.split() for line in open('/proc/mounts')]\n"
                "    return [m[3].split(',')[0] for m in mounts if m[1] == '/opt']\n"
            )
        },
        Layers=[arn],
    )
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == ["ro"]
    assert gw.state_dir.stat().st_mode & 0o077 == 0  # the layers live under the private state dir
    assert (gw.state_dir / "layers").is_dir()


def test_a_template_layer_versions_and_a_function_layers_ref(lam: Any, gw: Gateway, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        "import common, other\ndef handler(e, c):\n    return [common.WHO, other.WHO, common.SHADOWED]\n"
    )
    (tmp_path / "layers" / "common" / "python").mkdir(parents=True)
    (tmp_path / "layers" / "common" / "python" / "common.py").write_text("WHO = 'sam layer'\nSHADOWED = 'first'\n")
    (tmp_path / "other.zip").write_bytes(
        layer_zip({"python/other.py": "WHO = 'cfn layer'\n", "python/common.py": "WHO = 'later wins'\nSHADOWED = 'second'\n"})
    )
    fn = f"sam-{suffix}"
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            f"""
            AWSTemplateFormatVersion: '2010-09-09'
            Transform: AWS::Serverless-2016-10-31
            Resources:
              CommonLayer:
                Type: AWS::Serverless::LayerVersion
                Properties:
                  LayerName: common-{suffix}
                  ContentUri: layers/common
                  CompatibleRuntimes: [python3.11]
              OtherLayer:
                Type: AWS::Lambda::LayerVersion
                Properties:
                  Content: other.zip
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  FunctionName: {fn}
                  CodeUri: src
                  Handler: app.handler
                  Runtime: python3.11
                  Layers:
                    - !Ref CommonLayer
                    - !Ref OtherLayer
            """
        )
    )
    out = gw.deploy(tmp_path / "template.yaml")
    assert "not deployed" not in out.stderr, out.stderr
    assert gw.invoke(fn).json() == ["later wins", "cfn layer", "second"]
    arns = [x["Arn"] for x in lam.get_function(FunctionName=fn)["Configuration"]["Layers"]]
    assert arns[0].endswith(f":layer:common-{suffix}:1") and arns[1].endswith(":layer:OtherLayer:1")


def test_a_template_layer_built_by_its_build_method_brings_its_requirements(lam: Any, gw: Gateway, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        "import six, shared\ndef handler(e, c):\n    return [six.__version__, six.__file__, shared.WHO]\n"
    )
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "layer" / "shared.py").write_text("WHO = 'built layer'\n")
    fn = f"built-{suffix}"
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            f"""
            Transform: AWS::Serverless-2016-10-31
            Resources:
              DepsLayer:
                Type: AWS::Serverless::LayerVersion
                Properties:
                  LayerName: deps-{suffix}
                  ContentUri: layer
                  CompatibleRuntimes: [python3.11]
                Metadata:
                  BuildMethod: python3.11
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  FunctionName: {fn}
                  CodeUri: src
                  Handler: app.handler
                  Runtime: python3.11
                  Layers: [!Ref DepsLayer]
            """
        )
    )
    out = gw.deploy(tmp_path / "template.yaml")
    assert "not deployed" not in out.stderr, out.stderr
    assert gw.invoke(fn).json() == ["1.16.0", "/opt/python/six.py", "built layer"]
    arns = [x["Arn"] for x in lam.get_function(FunctionName=fn)["Configuration"]["Layers"]]
    assert len(arns) == 1 and arns[0].endswith(f":layer:deps-{suffix}:1")
