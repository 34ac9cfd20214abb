"""The README's quick start for a SAM project, command for command: functions/sam-hello (the
hello-world project `sam init` writes, python3.13, an Api and an HttpApi route) deployed with
`faas deploy template.yaml` and called with curl-like requests on its own paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import ROOT, Gateway, gateway_session

pytestmark = pytest.mark.integration

TEMPLATE = ROOT / "functions" / "sam-hello" / "template.yaml"


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    with gateway_session(tmp_path_factory.mktemp("sam-hello") / "state", docker_client) as gw:
        yield gw


def test_the_readme_sam_quick_start(gw: Gateway) -> None:
    out = gw.cli("deploy", str(TEMPLATE), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [
        "deployed HelloWorldFunction version 1 from HelloWorldFunction",
        "route GET /hello -> HelloWorldFunction (Api ServerlessRestApi, stage Prod)",
        "route GET /hello/{name} -> HelloWorldFunction (HttpApi ServerlessHttpApi, stage $default)",
    ]
    hello = requests.get(f"{gw.url}/hello", timeout=60)
    assert (hello.status_code, hello.json()) == (200, {"message": "hello world", "api": "Api"})
    named = requests.get(f"{gw.url}/hello/Ada", timeout=60)
    assert (named.status_code, named.json()) == (200, {"message": "hello Ada", "api": "HttpApi"})
    nothing = requests.get(f"{gw.url}/nothing-here", timeout=60)
    assert (nothing.status_code, nothing.json()) == (403, {"message": "Missing Authentication Token"})
    wrong_method = requests.post(f"{gw.url}/hello/Ada", timeout=60)
    assert (wrong_method.status_code, wrong_method.json()) == (404, {"message": "Not Found"})
    routes = [line.split()[:6] for line in gw.cli("routes").stdout.splitlines()]
    assert routes[0] == ["METHOD", "PATH", "FUNCTION", "API", "API_ID", "STAGE"]
    assert routes[1:] == [
        ["GET", "/hello", "HelloWorldFunction", "Api", "ServerlessRestApi", "Prod"],
        ["GET", "/hello/{name}", "HelloWorldFunction", "HttpApi", "ServerlessHttpApi", "$default"],
    ]


def test_the_readme_shows_these_commands() -> None:
    readme = (Path(ROOT) / "README.md").read_text()
    for line in (
        "$ faas deploy functions/sam-hello/template.yaml",
        "$ curl -s http://127.0.0.1:8080/hello ",
        "$ curl -s http://127.0.0.1:8080/hello/Ada ",
        '{"message": "hello Ada", "api": "HttpApi"}',
    ):
        assert line in readme
