"""`faas up template.yaml`: a SAM project served live, as `sam local start-api` serves it.

A real `faas up` (gateway, Docker, file watchers) is given a template and `--api-port`; the
tests curl its routes on both ports, save the function's code and the template (a route
added, one removed), save a broken template (the live routes keep serving), and read the
dashboard's API. Requests are plain HTTP with requests, as curl would send them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Gateway, free_port, start_gateway, stop_gateway

APP = """\
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "WORD " + event.get("rawPath", event.get("path", ""))}
"""

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  LiveFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: live/
      Handler: app.handler
      Runtime: python3.11
      Events:
{events}
"""
HELLO = """\
        Hello:
          Type: HttpApi
          Properties:
            Path: /hello
            Method: get
"""
BYE = """\
        Bye:
          Type: HttpApi
          Properties:
            Path: /bye
            Method: get
"""
ITEMS = """\
        Items:
          Type: Api
          Properties:
            Path: /items/{id}
            Method: get
"""
DEADLINE_S = 60


@dataclass
class Live:
    gw: Gateway
    project: Path
    api_url: str

    @property
    def template(self) -> Path:
        return self.project / "template.yaml"

    @property
    def code(self) -> Path:
        return self.project / "live" / "app.py"


def write_template(project: Path, *events: str) -> None:
    path = project / "template.yaml"
    tmp = path.with_suffix(".tmp")  # an editor's save: write aside, rename over
    tmp.write_text(TEMPLATE.format(events="".join(events)))
    tmp.replace(path)


def wait_for(check: Callable[[], bool], what: str, gw: Gateway) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {DEADLINE_S} s: {what}\n{gw.logs()[-4000:]}")


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=30)


@pytest.fixture(scope="module")
def live(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("api-live")
    project = root / "sam-app"
    (project / "live").mkdir(parents=True)
    (project / "live" / "app.py").write_text(APP.replace("WORD", "one"))
    write_template(project, HELLO, ITEMS)
    api_port = free_port()
    gw = start_gateway(root / "state", args=(str(project / "template.yaml"), "--api-port", str(api_port)))
    try:
        wait_for(lambda: get(f"{gw.url}/hello").status_code == 200, "the template's route is served", gw)
        yield Live(gw, project, f"http://127.0.0.1:{api_port}")
    finally:
        code = stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)
        assert code == 0, gw.logs()[-3000:]


def test_up_template_serves_its_routes_at_the_root_and_prints_them(live: Live) -> None:
    r = get(f"{live.gw.url}/hello")
    assert (r.status_code, r.text) == (200, "one /hello")
    r = get(f"{live.gw.url}/items/42")
    assert (r.status_code, r.text) == (200, "one /items/42")  # a REST (payload 1.0) route: event.path
    logs = live.gw.logs()
    assert "route GET /hello -> LiveFunction (HttpApi ServerlessHttpApi, stage $default)" in logs
    assert "route GET /items/{id} -> LiveFunction (Api ServerlessRestApi, stage Prod)" in logs
    assert f"template routes at {live.gw.url} and {live.api_url}" in logs


def test_api_port_serves_the_routes_and_nothing_else_of_faas(live: Live) -> None:
    r = get(f"{live.api_url}/hello")
    assert (r.status_code, r.text) == (200, "one /hello")
    r = get(f"{live.api_url}/items/7?x=1")
    assert (r.status_code, r.text) == (200, "one /items/7")
    # faas's own paths are not there: API Gateway's answer for a path no route matches
    # (both APIs' routes are deployed, so REST's, as a path matching nothing at all gets)
    for path in ("/system/routes", "/ui", "/ui/api/overview", "/healthz", "/function/LiveFunction"):
        r = get(f"{live.api_url}{path}")
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert r.json() == {"message": "Missing Authentication Token"}, path
    r = requests.post(f"{live.api_url}/2015-03-31/functions/LiveFunction/invocations", data=b"{}", timeout=30)
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}
    # ... while the gateway's port still has them
    assert get(f"{live.gw.url}/healthz").status_code == 200
    assert live.gw.invoke("LiveFunction", b'{"rawPath": "/direct"}').json()["body"] == "one /direct"


def test_dashboard_api_lists_the_routes(live: Live) -> None:
    overview = get(f"{live.gw.url}/ui/api/overview").json()
    shown = {(r["method"], r["path"], r["function"], r["kind"], r["stage"]) for r in overview["routes"]}
    assert ("GET", "/hello", "LiveFunction", "HttpApi", "$default") in shown
    assert ("GET", "/items/{id}", "LiveFunction", "Api", "Prod") in shown
    assert overview["api_port"] == int(live.api_url.rsplit(":", 1)[1])
    page = get(f"{live.gw.url}/ui").text
    assert 'id="routes"' in page


def test_a_code_save_goes_live_on_its_routes(live: Live) -> None:
    live.code.write_text(APP.replace("WORD", "two"))
    wait_for(lambda: get(f"{live.gw.url}/hello").text == "two /hello", "the saved code answers", live.gw)
    assert get(f"{live.api_url}/items/1").text == "two /items/1"
    assert "LiveFunction  version" in live.gw.logs()


def test_a_template_save_adds_and_removes_routes(live: Live) -> None:
    write_template(live.project, BYE, ITEMS)
    wait_for(lambda: get(f"{live.gw.url}/bye").status_code == 200, "the new route answers", live.gw)
    assert get(f"{live.gw.url}/bye").text.endswith(" /bye")
    r = get(f"{live.gw.url}/hello")  # removed with the save: no route matches it any more
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}
    assert get(f"{live.api_url}/bye").status_code == 200
    listed = live.gw.cli("routes").stdout
    assert "/bye" in listed and "/hello" not in listed, listed
    logs = live.gw.logs()
    assert "route GET /bye -> LiveFunction (HttpApi ServerlessHttpApi, stage $default)  added" in logs
    assert "route GET /hello -> LiveFunction (HttpApi ServerlessHttpApi, stage $default)  removed" in logs


def test_a_broken_template_save_keeps_the_live_routes_serving(live: Live) -> None:
    before = get(f"{live.gw.url}/bye").text
    assert before.endswith(" /bye")
    (live.template).write_text("Resources: [this is: not, a template\n")
    wait_for(
        lambda: "template.yaml: not deployed, the live functions and routes still serve" in live.gw.logs(),
        "the broken save is reported",
        live.gw,
    )
    assert (get(f"{live.gw.url}/bye").status_code, get(f"{live.gw.url}/bye").text) == (200, before)
    assert get(f"{live.api_url}/items/3").status_code == 200
    # a route under faas's own paths: refused whole by the gateway, nothing changes
    write_template(live.project, BYE, ITEMS.replace("/items/{id}", "/system/mine"))
    wait_for(lambda: "/system/mine" in live.gw.logs(), "the refused route is reported", live.gw)
    assert get(f"{live.gw.url}/items/3").status_code == 200  # the old routes still serve
    assert "/system/mine" not in {r["path"] for r in requests.get(f"{live.gw.url}/system/routes", timeout=10).json()["routes"]}
    # fixed again: goes live
    write_template(live.project, BYE, ITEMS, HELLO)
    wait_for(lambda: get(f"{live.gw.url}/hello").status_code == 200, "the fixed template's route answers", live.gw)


ENV_APP = """\
import os
def handler(event, context):
    return {"statusCode": 200, "body": os.environ["GREETING"] + " WORD"}
"""

ENV_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  EnvFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: env/
      Handler: app.handler
      Runtime: python3.11
      Environment:
        Variables:
          GREETING: from the template
      Events:
        Greet:
          Type: HttpApi
          Properties:
            Path: /greet
            Method: get
"""


def test_faas_up_takes_env_vars_and_keeps_them_across_saves(runtime_images, tmp_path: Path, docker_client) -> None:
    """`faas up template.yaml --env-vars env.json`, as `sam local start-api --env-vars` takes it:
    the file's value wins over the template's, on the first deploy and on a save's."""
    project = tmp_path / "project"
    (project / "env").mkdir(parents=True)
    (project / "env" / "app.py").write_text(ENV_APP.replace("WORD", "one"))
    (project / "template.yaml").write_text(ENV_TEMPLATE)
    (tmp_path / "env.json").write_text('{"Parameters": {"GREETING": "from env.json"}}')
    gw = start_gateway(tmp_path / "state", args=(str(project / "template.yaml"), "--env-vars", str(tmp_path / "env.json")))
    try:
        wait_for(lambda: get(f"{gw.url}/greet").text == "from env.json one", "the first deploy with env.json's value", gw)
        tmp = project / "env" / "app.tmp"
        tmp.write_text(ENV_APP.replace("WORD", "two"))
        tmp.replace(project / "env" / "app.py")
        wait_for(lambda: get(f"{gw.url}/greet").text == "from env.json two", "a save, still with env.json's value", gw)
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)
