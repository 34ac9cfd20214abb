"""`faas up template.yaml` pieces without the engine: --api-port's listener answered by the
template routes alone (the Flask app with a fake platform, requests told apart by the local
port), its setting, and the template watcher with real watchdog observers and a recording
client (the real gateway is in tests/integration/test_api_live.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faas.cli.template_watcher import TemplateRedeploy, TemplateWatcher
from faas.config import Config
from faas.deploy.routes import HTTP, Route
from faas.errors import ValidationError
from gateway.app import create_app
from gateway.server import binds
from tests.fakes import FakePlatform

API_PORT = 3000


def on(port: int) -> str:
    """The request's local port, as gunicorn puts the listener's in SERVER_PORT."""
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def app(tmp_path: Path) -> tuple[Any, FakePlatform]:
    fake = FakePlatform()
    fake.add("hello")
    fake.handlers["hello"] = lambda p: (json.dumps({"statusCode": 200, "body": json.loads(p)["path"]}).encode(), None)
    config = Config.load({"state_dir": tmp_path, "port": 8080, "api_port": API_PORT}, env={})
    return create_app(fake, config).test_client(), fake


def test_the_api_port_answers_with_template_routes_only(app: tuple[Any, FakePlatform]) -> None:
    client, fake = app
    r = client.get("/healthz", base_url=on(API_PORT))  # nothing deployed: a REST API's miss
    assert r.status_code == 403 and r.get_json() == {"message": "Missing Authentication Token"}
    fake.put_api_routes("app", [Route("GET", "/hello", "hello")])
    r = client.get("/hello", base_url=on(API_PORT))
    assert r.status_code == 200 and r.data == b"/hello"
    for path in ("/system/routes", "/ui", "/ui/api/overview", "/healthz", "/function/hello", "/2015-03-31/functions"):
        r = client.get(path, base_url=on(API_PORT))
        assert r.status_code == 403 and r.get_json() == {"message": "Missing Authentication Token"}, path
    r = client.post("/2015-03-31/functions/hello/invocations", data=b"{}", base_url=on(API_PORT))
    assert r.status_code == 403 and len(fake.invoked) == 1  # only the /hello call above reached the function
    # the gateway's own port is unchanged: faas's paths, and the routes at its root
    assert client.get("/healthz", base_url=on(8080)).status_code == 200
    assert "routes" in client.get("/system/routes", base_url=on(8080)).get_json()
    assert client.get("/hello", base_url=on(8080)).data == b"/hello"


def test_an_http_api_miss_on_the_api_port_is_404_not_found(app: tuple[Any, FakePlatform]) -> None:
    client, fake = app
    fake.put_api_routes("app", [Route("GET", "/v2", "hello", kind=HTTP, payload_version="2.0")])
    r = client.get("/system/routes", base_url=on(API_PORT))
    assert r.status_code == 404 and r.get_json() == {"message": "Not Found"}


def test_dashboard_overview_lists_routes_and_the_api_port(app: tuple[Any, FakePlatform]) -> None:
    client, fake = app
    fake.put_api_routes("sam-app-1", [Route("GET", "/hello", "hello")])
    data = client.get("/ui/api/overview", base_url=on(8080)).get_json()
    assert data["api_port"] == API_PORT
    assert [(r["method"], r["path"], r["function"], r["kind"], r["stage"], r["stack"]) for r in data["routes"]] == [
        ("GET", "/hello", "hello", "Api", "Prod", "sam-app-1")
    ]


def test_api_port_setting(tmp_path: Path) -> None:
    assert Config.load({"state_dir": tmp_path}, env={}).api_port is None
    config = Config.load({"state_dir": tmp_path, "port": 8080}, env={"FAAS_API_PORT": "3000"})
    assert config.api_port == 3000 and binds(config) == ["127.0.0.1:8080", "127.0.0.1:3000"]
    with pytest.raises(ValidationError, match="api_port"):
        Config.load({"state_dir": tmp_path, "port": 8080, "api_port": 8080}, env={})
    with pytest.raises(ValidationError, match="api_port"):
        Config.load({"state_dir": tmp_path, "api_port": 70000}, env={})


# ------------------------------------------------------------------------ the watcher

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code}
      Handler: app.handler
      Runtime: python3.11
      Events:
        Hello:
          Type: HttpApi
          Properties: {{Path: {path}, Method: get}}
"""


class _Result:
    def __init__(self, changed: bool, version: int) -> None:
        self.changed = changed
        self.function = {"version": version}


class RecordingClient:
    """What sam.deploy asks of a GatewayClient: versions bump when a package changes."""

    def __init__(self) -> None:
        self.packages: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}
        self.routes: list[dict[str, Any]] = []
        self.refuse: str | None = None

    def put_schedules(self, stack: str, schedules: list[dict[str, Any]], *, dry_run: bool = False) -> None:
        pass  # schedules are tested in test_schedules_api.py

    def put_routes(
        self, stack: str, routes: list[dict[str, Any]], *, dry_run: bool = False, unrunnable: Any = None
    ) -> list[dict[str, Any]]:
        if self.refuse and any(r["path"].startswith(self.refuse) for r in routes):
            raise ValidationError(f"route under {self.refuse} refused")
        if not dry_run:
            self.routes = routes
        return routes

    def deploy(self, name: str, package: bytes, **_kw: Any) -> _Result:
        changed = self.packages.get(name) != package
        if changed:
            self.packages[name] = package
            self.versions[name] = self.versions.get(name, 0) + 1
        return _Result(changed, self.versions[name])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, RecordingClient, list[TemplateRedeploy], TemplateWatcher]]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(code="src/", path="/hello"))
    client = RecordingClient()
    reports: list[TemplateRedeploy] = []
    watcher = TemplateWatcher(client, template, reports.append, debounce_s=0.05)
    try:
        yield template, client, reports, watcher
    finally:
        watcher.close()


def test_a_code_save_redeploys_and_a_touch_changes_nothing(project: Any) -> None:
    template, client, reports, _ = project
    (template.parent / "src" / "app.py").write_text("def handler(e, c):\n    return 2\n")
    assert wait_for(lambda: any(r.live for r in reports))
    assert reports[-1].live == [("Fn", 1)] and reports[-1].ok
    count = len(reports)
    (template.parent / "src" / "app.py").touch()
    assert wait_for(lambda: len(reports) > count)
    assert not reports[-1].live and not reports[-1].added and not reports[-1].removed
    (template.parent / "src" / "__pycache__").mkdir()
    (template.parent / "src" / "__pycache__" / "x.pyc").write_bytes(b"x")
    (template.parent / ".aws-sam").mkdir()
    (template.parent / ".aws-sam" / "build.toml").write_text("x")
    time.sleep(0.4)
    assert len(reports) == count + 1  # ignored files and sam build's output trigger nothing


def test_a_template_save_changes_routes_and_a_broken_one_is_reported(project: Any) -> None:
    template, client, reports, _ = project
    template.write_text(TEMPLATE.format(code="src/", path="/bye"))
    assert wait_for(lambda: any(r.added for r in reports))
    assert reports[-1].added == ["GET /bye -> Fn (HttpApi ServerlessHttpApi, stage $default)"]
    assert reports[-1].removed == ["GET /hello -> Fn (HttpApi ServerlessHttpApi, stage $default)"]
    assert [r["path"] for r in client.routes] == ["/bye"]
    count = len(reports)
    template.write_text("Resources: [broken\n")
    assert wait_for(lambda: len(reports) > count)
    assert not reports[-1].ok and "not valid YAML" in reports[-1].message
    assert [r["path"] for r in client.routes] == ["/bye"]  # nothing changed on the gateway
    client.refuse = "/system"
    template.write_text(TEMPLATE.format(code="src/", path="/system/x"))
    assert wait_for(lambda: len(reports) > count + 1)
    assert not reports[-1].ok and "refused" in reports[-1].message
    assert [r["path"] for r in client.routes] == ["/bye"]


def test_a_codeuri_outside_the_template_folder_is_watched_after_the_save_that_names_it(project: Any, tmp_path: Path) -> None:
    template, client, reports, watcher = project
    elsewhere = tmp_path.parent / (tmp_path.name + "-code")
    elsewhere.mkdir()
    (elsewhere / "app.py").write_text("def handler(e, c):\n    return 3\n")
    template.write_text(TEMPLATE.format(code=str(elsewhere), path="/hello"))
    assert wait_for(lambda: any(r.live for r in reports))
    assert elsewhere in watcher.folders()
    count = len(reports)
    (elsewhere / "app.py").write_text("def handler(e, c):\n    return 4\n")
    assert wait_for(lambda: len(reports) > count and bool(reports[-1].live))
    assert client.versions["Fn"] == 2


def test_a_layers_content_is_watched_with_the_functions_code(tmp_path: Path) -> None:
    """A save in a template layer's ContentUri rebuilds and republishes it under faas up, as a code save does."""
    from faas.cli.template_watcher import watch_roots
    from faas.deploy import sam

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "shared-layer" / "python").mkdir(parents=True)
    (project / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Shared:\n"
        "    Type: AWS::Serverless::LayerVersion\n"
        "    Properties: {ContentUri: ../shared-layer}\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.11, Layers: [!Ref Shared]}\n"
    )
    roots, counted = watch_roots(sam.load(project / "template.yaml"))
    assert (tmp_path / "shared-layer").resolve() in [r.resolve() for r in roots]
    assert (tmp_path / "shared-layer").resolve() in [c.resolve() for c in counted]
