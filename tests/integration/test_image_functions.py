"""Container-image functions (docs/image-functions.md): an image that follows Lambda's contract
runs its own runtime client, unchanged, through the real platform and the real engine.

The images are built here, offline, FROM faas's own awslambdaric image (Debian's python3) with
AWS's runtime interface client (awslambdaric) copied in: the image's ENTRYPOINT runs it, and it
talks HTTP to AWS_LAMBDA_RUNTIME_API as in AWS's base images. Nothing is pulled.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.config import Config
from faas.containers.docker_executor import DockerExecutor
from faas.containers.image_functions import build_function_image
from faas.containers.images import ensure_runtime_image, runtime_image_tag
from faas.deploy.packages import zip_folder
from faas.errors import ValidationError
from faas.platform import Platform
from tests.integration.test_awslambdaric import ric_packages  # noqa: F401  (the fixture: awslambdaric's wheels)

pytestmark = pytest.mark.integration

APP = """
import os, time
def handler(event, context):
    print("image says", event.get("n"))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("eat_mb"):
        hog = bytearray(event["eat_mb"] * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
    return {"n": event.get("n"), "cwd": os.getcwd(), "name": context.function_name,
            "memory": context.memory_limit_in_mb, "greeting": os.environ.get("GREETING"),
            "api": os.environ.get("AWS_LAMBDA_RUNTIME_API"), "uid": os.getuid(),
            "faas_vars": sorted(k for k in os.environ if k.startswith("FAAS_"))}

def other(event, context):
    return ["other handler", os.getcwd()]
"""


@pytest.fixture(scope="module")
def executor(engine) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(base_url=engine.base_url)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def function_image(executor, ric_packages, tmp_path_factory) -> str:  # noqa: F811
    """A function image: app code and awslambdaric in /function, ENTRYPOINT python3 -m awslambdaric."""
    base = ensure_runtime_image("awslambdaric", executor, say=print)
    context = tmp_path_factory.mktemp("image-context")
    shutil.copytree(ric_packages, context / "function", ignore=shutil.ignore_patterns(".complete", "bin"))
    (context / "function" / "app.py").write_text(APP)
    (context / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nCOPY function /function\nENV PYTHONPATH=/function\nWORKDIR /function\n"
        'ENTRYPOINT ["/usr/bin/python3", "-m", "awslambdaric"]\nCMD ["app.handler"]\n'
    )
    tag = f"faas-test/image-fn:{uuid.uuid4().hex[:8]}"
    executor.build_image(context, tag, {"BASE": base}, print)
    yield tag
    executor.remove_image(tag)


@pytest.fixture(scope="module")
def base_contract_image(executor, function_image, tmp_path_factory) -> str:
    """An image that follows Lambda's base-image contract: the handler is its CMD, code at /var/task."""
    context = tmp_path_factory.mktemp("base-context")
    (context / "Dockerfile").write_text(
        f'FROM {function_image}\nENV PYTHONPATH=/function\nWORKDIR /var/task\nENTRYPOINT ["/usr/bin/python3", "-m", "awslambdaric"]\nCMD []\n'
    )
    tag = f"faas-test/base-contract:{uuid.uuid4().hex[:8]}"
    build_function_image(executor, context, tag)
    yield tag
    executor.remove_image(tag)


@pytest.fixture(scope="module")
def platform(engine, runtime_images, base_contract_image, tmp_path_factory) -> Iterator[Platform]:
    config = Config(
        state_dir=tmp_path_factory.mktemp("images") / "state",
        prestart_min=0,
        prestart_max=0,
        runtime_images={"python3.12": base_contract_image},
    )
    plat = Platform(config, DockerExecutor(base_url=engine.base_url), runtime_image_tag)
    try:
        yield plat
    finally:
        plat.shutdown(wait_s=5)


def deploy_image(platform: Platform, root: Path, image: str, extra: str = "") -> str:
    name = f"img-{uuid.uuid4().hex[:6]}"
    folder = root / name
    folder.mkdir()
    (folder / "function.yaml").write_text(
        f"name: {name}\npackage_type: Image\nimage_uri: {image}\ntimeout: 3\nnetwork: none\nenvironment:\n  GREETING: hi\n{extra}"
    )
    platform.deploy_zip(zip_folder(folder))
    return name


def test_an_image_function_answers_through_its_own_runtime_client(platform, function_image, tmp_path) -> None:
    name = deploy_image(platform, tmp_path, function_image)
    first = platform.invoke(name, b'{"n": 1}')
    assert first.function_error is None, first.payload
    body = json.loads(first.payload)
    assert body == {
        "n": 1,
        "cwd": "/function",
        "name": name,
        "memory": "128",
        "greeting": "hi",
        "api": "127.0.0.1:9001",
        "uid": 993,
        "faas_vars": [],
    }
    assert "image says 1" in first.logs
    warm = platform.invoke(name, b'{"n": 2}')
    assert json.loads(warm.payload)["n"] == 2 and "image says 2" in warm.logs


def test_image_config_overrides_command_and_working_directory(platform, function_image, tmp_path) -> None:
    name = deploy_image(platform, tmp_path, function_image, "image_config:\n  Command: [app.other]\n  WorkingDirectory: /tmp\n")
    result = platform.invoke(name, b"{}")
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == ["other handler", "/tmp"]


def test_timeout_and_memory_limits_hold_in_an_image_function(platform, function_image, tmp_path) -> None:
    name = deploy_image(platform, tmp_path, function_image)
    slow = platform.invoke(name, b'{"sleep": 10}')
    assert slow.function_error == "Unhandled"
    assert "Task timed out after 3.00 seconds" in json.loads(slow.payload)["errorMessage"]
    hog = platform.invoke(name, b'{"eat_mb": 400}')
    assert hog.function_error == "Unhandled"
    assert json.loads(hog.payload)["errorType"] == "Runtime.OutOfMemory"
    after = platform.invoke(name, b'{"n": 3}')
    assert json.loads(after.payload)["n"] == 3


def test_an_image_the_engine_lacks_is_refused_at_deploy(platform, tmp_path) -> None:
    with pytest.raises(ValidationError, match="not in the Docker engine"):
        deploy_image(platform, tmp_path, "faas-test/no-such-image:1")


def test_runtime_images_runs_an_unavailable_runtime_on_the_image_it_names(platform, tmp_path) -> None:
    folder = tmp_path / "py312"
    folder.mkdir()
    (folder / "handler.py").write_text(
        "import sys\ndef main(event, context):\n    return {'zip': True, 'v': sys.version_info[:2]}\n"
    )
    (folder / "function.yaml").write_text("name: py312\nruntime: python3.12\nhandler: handler.main\n")
    platform.deploy_zip(zip_folder(folder))
    result = platform.invoke("py312", b"{}")
    assert result.function_error is None, result.payload
    assert json.loads(result.payload)["zip"] is True


def test_create_function_with_package_type_image_through_the_management_api(gateway, function_image) -> None:
    from tests.integration.aws_clients import lambda_client

    lam = lambda_client(gateway.url)
    name = f"img-api-{uuid.uuid4().hex[:6]}"
    created = lam.create_function(
        FunctionName=name,
        PackageType="Image",
        Code={"ImageUri": function_image},
        Role="arn:aws:iam::123456789012:role/x",
        ImageConfig={"Command": ["app.other"]},
        Timeout=5,
    )
    assert created["PackageType"] == "Image" and "Runtime" not in created
    assert created["ImageConfigResponse"] == {"ImageConfig": {"Command": ["app.other"]}}
    assert lam.get_function(FunctionName=name)["Code"] == {"RepositoryType": "ECR", "ImageUri": function_image}
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == ["other handler", "/function"]
    lam.delete_function(FunctionName=name)


def test_create_function_refuses_an_image_without_image_uri(gateway) -> None:
    from tests.integration.aws_clients import lambda_client

    lam = lambda_client(gateway.url)
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="ImageUri"):
        lam.create_function(FunctionName="img-none", PackageType="Image", Code={}, Role="arn:aws:iam::123456789012:role/x")


def test_a_template_image_function_is_built_from_its_dockerfile_and_answers(
    platform, engine, function_image, tmp_path, monkeypatch
) -> None:
    from faas.deploy import sam

    monkeypatch.setenv("DOCKER_HOST", engine.base_url)
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "build.Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY note.txt /function/note.txt\n")
    (tmp_path / "img" / "note.txt").write_text("built from the template")
    tag = f"t{uuid.uuid4().hex[:6]}"
    (tmp_path / "template.yaml").write_text(
        f"""\
Resources:
  ImgFn:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      FunctionName: sam-img-{tag}
      Timeout: 5
      ImageConfig: {{Command: [app.other]}}
    Metadata:
      DockerContext: ./img
      Dockerfile: build.Dockerfile
      DockerTag: {tag}
      DockerBuildArgs: {{BASE: {function_image}}}
"""
    )
    template = sam.load(tmp_path / "template.yaml")
    [fn] = template.functions
    assert fn.spec.package_type == "Image" and fn.spec.image_uri == f"imgfn:{tag}"
    lines: list[str] = []
    platform.deploy_zip(sam.package(fn, lines.append))
    assert any("Successfully tagged" in line for line in lines)
    result = platform.invoke(f"sam-img-{tag}", b"{}")
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == ["other handler", "/function"]
    DockerExecutor(base_url=engine.base_url).remove_image(f"imgfn:{tag}")


LIVE_APP = """
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "WORD"}
"""


def test_a_save_in_the_docker_context_rebuilds_and_redeploys_under_faas_up(
    engine, function_image, tmp_path, docker_client
) -> None:
    """`faas up template.yaml` with an Image function built from a Dockerfile: a save of a file
    in its DockerContext rebuilds the image and the next call answers with the new code."""
    import time

    import requests

    from tests.integration.conftest import start_gateway, stop_gateway

    project = tmp_path / "project"
    (project / "img").mkdir(parents=True)
    (project / "img" / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY app.py /function/app.py\n")
    (project / "img" / "app.py").write_text(LIVE_APP.replace("WORD", "first build"))
    tag = f"t{uuid.uuid4().hex[:6]}"
    (project / "template.yaml").write_text(
        f"""\
Resources:
  LiveImg:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      FunctionName: live-img-{tag}
      Timeout: 5
      ImageConfig: {{Command: [app.handler]}}
      Events:
        Hello: {{Type: HttpApi, Properties: {{Path: /img, Method: get}}}}
    Metadata:
      DockerContext: ./img
      DockerTag: {tag}
      DockerBuildArgs: {{BASE: {function_image}}}
"""
    )
    gw = start_gateway(tmp_path / "state", extra_env={"DOCKER_HOST": engine.base_url}, args=(str(project / "template.yaml"),))

    def answer_becomes(text: str) -> None:
        deadline = time.monotonic() + 90
        seen = None
        while time.monotonic() < deadline:
            try:
                got = requests.get(f"{gw.url}/img", timeout=30)
                seen = (got.status_code, got.text)
                if seen == (200, text):
                    return
            except requests.RequestException as e:
                seen = e
            time.sleep(0.3)
        raise AssertionError(f"/img never answered {text!r} (last: {seen!r})\n{gw.logs()[-4000:]}")

    try:
        answer_becomes("first build")
        assert requests.get(f"{gw.url}/img", timeout=30).text == "first build"  # a warm call
        tmp = project / "img" / "app.tmp"  # an editor's save: write aside, rename over
        tmp.write_text(LIVE_APP.replace("WORD", "after the save"))
        tmp.replace(project / "img" / "app.py")
        answer_becomes("after the save")
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)
        executor = DockerExecutor(base_url=engine.base_url)
        for image in executor.image_tags("liveimg"):
            if image.startswith(f"liveimg:{tag}"):
                executor.remove_image(image)
        executor.close()
