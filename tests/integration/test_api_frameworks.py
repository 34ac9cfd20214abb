"""Frameworks people put behind API Gateway, run unchanged behind a SAM template's routes.

Powertools for AWS Lambda (Python) `APIGatewayRestResolver` (Api event, payload 1.0) and
`APIGatewayHttpResolver` (HttpApi, 2.0), FastAPI behind Mangum and Express behind
serverless-http (nodejs20.x), each on both kinds of API. These libraries read API Gateway's
events and write its responses in their own ways (Powertools' cookies in
multiValueHeaders, Mangum's base64 bodies, serverless-http's v1/v2 detection), so they
check the event builders and the response mapping against code written for AWS.

The packages are installed into each function's folder, as `sam build` would: pip for the
runtime's CPython 3.11 on manylinux, npm for Node. They are pinned, and downloaded once per
machine into a cache named after the pins, so the suite stays fast. Real engine, real
`faas deploy template.yaml`, curl-like requests on the template's own paths.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Gateway, gateway_session

pytestmark = pytest.mark.integration

# Pinned: the tests assert what these releases do. They run inside the containers, never in
# faas's venv, so they are pinned here rather than in pyproject.toml.
POWERTOOLS = ("aws-lambda-powertools==3.37.0",)
FASTAPI = ("fastapi==0.165.0", "mangum==0.22.0", "pydantic==2.14.4")
EXPRESS = ("express@5.3.0", "serverless-http@4.0.0")
CACHE_ROOT = Path("/var/tmp/faas-test-frameworks")
INSTALL_TIMEOUT_S = 600

POWERTOOLS_REST_APP = """\
import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.shared.cookies import Cookie

app = APIGatewayRestResolver()
TODOS = {"1": {"id": "1", "title": "write the tests"}}


@app.get("/pt/todos")
def list_todos():
    event = app.current_event
    return {
        "todos": list(TODOS.values()),
        "tags": event.multi_value_query_string_parameters.get("tag", []),
        "limit": event.get_query_string_value(name="limit", default_value="10"),
        "stage": event.request_context.stage,
        "source_ip": event.request_context.identity.source_ip,
        "user_agent": event.get_header_value("user-agent"),
    }


@app.get("/pt/todos/<todo_id>")
def get_todo(todo_id: str):
    if todo_id not in TODOS:
        raise NotFoundError(f"todo {todo_id} not found")
    return TODOS[todo_id]


@app.post("/pt/todos")
def create_todo():
    todo = app.current_event.json_body
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"created": todo, "resource": app.current_event.resource}),
        cookies=[Cookie(name="last", value=todo["title"]), Cookie(name="seen", value="1")],
    )


@app.get("/pt/logo")
def logo():
    return Response(status_code=200, content_type="image/png", body=b"\\x89PNG\\r\\n\\x1a\\n\\x00\\xff")


def lambda_handler(event, context):
    return app.resolve(event, context)
"""

POWERTOOLS_HTTP_APP = """\
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.shared.cookies import Cookie

app = APIGatewayHttpResolver()


@app.get("/pth/orders/<order_id>")
def get_order(order_id: str):
    event = app.current_event
    return {
        "order_id": order_id,
        "size": event.get_query_string_value(name="size"),
        "cookies": event.cookies,
        "route_key": event.route_key,
        "method": event.request_context.http.method,
        "path_parameters": event.path_parameters,
    }


@app.post("/pth/orders")
def create_order():
    order = app.current_event.json_body
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body={"created": order},
        cookies=[Cookie(name="order", value=str(order["id"]))],
    )


@app.get("/staged/<thing>")
def staged(thing: str):
    event = app.current_event
    return {"thing": thing, "stage": event.request_context.stage, "raw_path": event.raw_path, "vars": event.stage_variables}


def lambda_handler(event, context):
    return app.resolve(event, context)
"""

FASTAPI_APP = """\
from fastapi import APIRouter, FastAPI, Query, Request, Response
from mangum import Mangum
from pydantic import BaseModel

router = APIRouter()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@router.get("/items/{item_id}")
def read_item(item_id: int, request: Request, q: list[str] = Query(default=[])):
    return {
        "item_id": item_id,
        "q": q,
        "path": request.url.path,
        "client": request.client.host if request.client else None,
        "cookies": dict(request.cookies),
        "scope_type": request.scope["aws.event"].get("version", "1.0"),
        "url": str(request.url),
    }


@router.post("/items", status_code=201)
def create_item(item: Item, response: Response):
    response.set_cookie("created", item.name)
    response.headers["X-Total"] = str(item.price * 2)
    return item


@router.put("/blob")
async def reverse_blob(request: Request):
    return Response(content=(await request.body())[::-1], media_type="application/octet-stream")


app = FastAPI()
app.include_router(router, prefix="/fastapi")
app.include_router(router, prefix="/fastapi-http")
handler = Mangum(app, lifespan="off")
"""

EXPRESS_APP = """\
const express = require("express");
const serverless = require("serverless-http");

const app = express();
app.use(express.json());
const router = express.Router();

router.get("/users/:id", (req, res) => {
  res.set("X-Powered", "express").json({
    id: req.params.id, query: req.query, path: req.path, method: req.method,
    cookie: req.get("cookie") || null, userAgent: req.get("user-agent"),
  });
});
router.post("/users", (req, res) => {
  res.cookie("user", req.body.name).cookie("lang", "en").status(201).json({ created: req.body });
});
router.put("/blob", express.raw({ type: "application/octet-stream" }), (req, res) => {
  res.type("application/octet-stream").send(Buffer.from(req.body).reverse());
});
app.use("/express", router);
app.use("/express-http", router);
app.use((req, res) => res.status(404).json({ error: "no such route", path: req.path }));

module.exports.handler = serverless(app, { binary: ["application/octet-stream"] });
"""

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: one SAM project, four frameworks behind API Gateway

Globals:
  Function:
    Timeout: 30
    MemorySize: 512
    Runtime: python3.11
  Api:
    BinaryMediaTypes: ["application~1octet-stream", "image~1png"]

Resources:
  PowertoolsRestFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: powertools_rest/
      Handler: app.lambda_handler
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: todos
      Events:
        ListTodos:
          Type: Api
          Properties: {Path: /pt/todos, Method: get}
        CreateTodo:
          Type: Api
          Properties: {Path: /pt/todos, Method: post}
        GetTodo:
          Type: Api
          Properties: {Path: "/pt/todos/{todo_id}", Method: get}
        Everything:
          Type: Api
          Properties: {Path: "/pt/{proxy+}", Method: any}

  PowertoolsHttpFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: powertools_http/
      Handler: app.lambda_handler
      Events:
        GetOrder:
          Type: HttpApi
          Properties: {Path: "/pth/orders/{order_id}", Method: get}
        CreateOrder:
          Type: HttpApi
          Properties: {Path: /pth/orders, Method: post}
        Everything:
          Type: HttpApi
          Properties: {Path: "/pth/{proxy+}", Method: any}
        Staged:
          Type: HttpApi
          Properties: {Path: "/staged/{thing}", Method: get, ApiId: !Ref StagedHttpApi}

  StagedHttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: dev
      StageVariables:
        colour: green

  FastApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fastapi_app/
      Handler: app.handler
      Events:
        Rest:
          Type: Api
          Properties: {Path: "/fastapi/{proxy+}", Method: any}
        Http:
          Type: HttpApi
          Properties: {Path: "/fastapi-http/{proxy+}", Method: any}

  ExpressFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: express_app/
      Handler: app.handler
      Runtime: nodejs20.x
      Events:
        Rest:
          Type: Api
          Properties: {Path: "/express/{proxy+}", Method: any}
        Http:
          Type: HttpApi
          Properties: {Path: "/express-http/{proxy+}", Method: any}
"""


def _cached(kind: str, pins: tuple[str, ...], install) -> Path:  # type: ignore[no-untyped-def]
    """A folder of installed packages, made once per machine: named after the pins, written
    under a temporary name and renamed, so parallel runs never see half of one."""
    key = hashlib.sha256("\n".join((kind, *pins)).encode()).hexdigest()[:12]
    done = CACHE_ROOT / f"{kind}-{key}"
    if (done / ".complete").exists():
        return done
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    target = CACHE_ROOT / f"{kind}-{key}.{uuid.uuid4().hex[:6]}"
    target.mkdir()
    install(target)
    (target / ".complete").write_text("\n".join(pins))
    try:
        target.rename(done)
    except OSError:  # another run finished first: use its copy
        shutil.rmtree(target, ignore_errors=True)
    return done


def _pip(pins: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def install(target: Path) -> None:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target)]
            + ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
            + ["--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", *pins],
            check=True,
            timeout=INSTALL_TIMEOUT_S,
        )

    return install


def _npm(target: Path) -> None:
    subprocess.run(
        ["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund", "--ignore-scripts"]
        + ["--omit=dev", "--no-package-lock", *EXPRESS],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
        capture_output=True,
    )


def _function(folder: Path, packages: Path, name: str, code: str) -> None:
    shutil.copytree(packages, folder, ignore=shutil.ignore_patterns(".complete", "bin", "__pycache__"))
    (folder / name).write_text(code)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the Express test installs express and serverless-http with it")
    powertools = _cached("powertools", POWERTOOLS, _pip(POWERTOOLS))
    fastapi = _cached("fastapi", FASTAPI, _pip(FASTAPI))
    express = _cached("express", EXPRESS, _npm)
    root = tmp_path_factory.mktemp("frameworks") / "sam-frameworks"
    root.mkdir()
    _function(root / "powertools_rest", powertools, "app.py", POWERTOOLS_REST_APP)
    _function(root / "powertools_http", powertools, "app.py", POWERTOOLS_HTTP_APP)
    _function(root / "fastapi_app", fastapi, "app.py", FASTAPI_APP)
    _function(root / "express_app", express, "app.js", EXPRESS_APP)
    template = root / "template.yaml"
    template.write_text(TEMPLATE)
    return template


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, project: Path, docker_client) -> Iterator[Gateway]:
    with gateway_session(tmp_path_factory.mktemp("frameworks-state") / "state", docker_client) as gw:
        out = gw.cli("deploy", str(project), timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "route GET /pt/todos -> PowertoolsRestFunction (Api ServerlessRestApi, stage Prod)" in out.stdout
        yield gw


# ------------------------------------------------------------- Powertools, REST API (1.0)


def test_powertools_rest_resolver_reads_query_strings_and_the_request_context(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/pt/todos?tag=a&tag=b&limit=5", headers={"User-Agent": "curl/8.5.0"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "todos": [{"id": "1", "title": "write the tests"}],
        "tags": ["a", "b"],
        "limit": "5",
        "stage": "Prod",
        "source_ip": "127.0.0.1",
        "user_agent": "curl/8.5.0",
    }


def test_powertools_rest_resolver_path_parameters_and_its_own_404(gw: Gateway) -> None:
    found = requests.get(f"{gw.url}/pt/todos/1", timeout=60)
    assert (found.status_code, found.json()) == (200, {"id": "1", "title": "write the tests"})
    missing = requests.get(f"{gw.url}/pt/todos/9", timeout=60)
    assert (missing.status_code, missing.json()) == (404, {"statusCode": 404, "message": "todo 9 not found"})
    # A path the template sends to the function ({proxy+}) but the resolver has no route for.
    unrouted = requests.delete(f"{gw.url}/pt/nothing/here", timeout=60)
    assert (unrouted.status_code, unrouted.json()) == (404, {"statusCode": 404, "message": "Not found"})


def test_powertools_rest_resolver_json_body_and_cookies(gw: Gateway) -> None:
    response = requests.post(f"{gw.url}/pt/todos", json={"title": "ship it"}, timeout=60)
    assert response.status_code == 201, response.text
    assert response.json() == {"created": {"title": "ship it"}, "resource": "/pt/todos"}
    assert response.raw.headers.getlist("Set-Cookie") == ["last=ship it; Secure", "seen=1; Secure"]


def test_powertools_rest_resolver_binary_response_is_decoded(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/pt/logo", headers={"Accept": "image/png"}, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == b"\x89PNG\r\n\x1a\n\x00\xff"
    # Without a binary Accept type first, a REST API sends the base64 text, as API Gateway does.
    curl = requests.get(f"{gw.url}/pt/logo", headers={"Accept": "*/*"}, timeout=60)
    assert curl.content == base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff")


# ------------------------------------------------------------- Powertools, HTTP API (2.0)


def test_powertools_http_resolver_path_parameters_query_and_cookies(gw: Gateway) -> None:
    response = requests.get(f"{gw.url}/pth/orders/42?size=large", headers={"Cookie": "session=abc; theme=dark"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": "42",
        "size": "large",
        "cookies": ["session=abc", "theme=dark"],
        "route_key": "GET /pth/orders/{order_id}",
        "method": "GET",
        "path_parameters": {"order_id": "42"},
    }


def test_powertools_http_resolver_json_body_cookies_and_its_own_404(gw: Gateway) -> None:
    created = requests.post(f"{gw.url}/pth/orders", json={"id": 7, "items": ["tea"]}, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json() == {"created": {"id": 7, "items": ["tea"]}}
    assert created.raw.headers.getlist("Set-Cookie") == ["order=7; Secure"]
    missing = requests.get(f"{gw.url}/pth/unknown", timeout=60)
    assert (missing.status_code, missing.json()) == (404, {"statusCode": 404, "message": "Not found"})


def test_powertools_http_resolver_on_a_named_stage(gw: Gateway) -> None:
    """On AWS a named stage is part of the URL and of rawPath, and the resolver strips it off;
    faas serves the route at the root but sends the rawPath AWS would."""
    response = requests.get(f"{gw.url}/staged/box", timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {"thing": "box", "stage": "dev", "raw_path": "/dev/staged/box", "vars": {"colour": "green"}}


# ----------------------------------------------------------------- FastAPI behind Mangum


QUERY = "q=x&q=a%20b&q=c%2Bd&q=%C3%A9"  # repeated, and percent-encoded: a space, a plus, a UTF-8 letter


@pytest.mark.parametrize("prefix, version", [("/fastapi", "1.0"), ("/fastapi-http", "2.0")])
def test_fastapi_path_and_repeated_query_parameters(gw: Gateway, prefix: str, version: str) -> None:
    response = requests.get(f"{gw.url}{prefix}/items/5?{QUERY}", headers={"Cookie": "session=abc; theme=dark"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "item_id": 5,
        "q": ["x", "a b", "c+d", "é"],
        "path": f"{prefix}/items/5",
        "client": "127.0.0.1",
        "cookies": {"session": "abc", "theme": "dark"},
        "scope_type": version,
        # 1.0 has no raw query string: Mangum encodes the decoded parameters again (as on AWS).
        "url": f"{gw.url}{prefix}/items/5?{QUERY if version == '2.0' else QUERY.replace('%20', '+')}",
    }


@pytest.mark.parametrize("prefix", ["/fastapi", "/fastapi-http"])
def test_fastapi_json_body_validation_and_404(gw: Gateway, prefix: str) -> None:
    created = requests.post(f"{gw.url}{prefix}/items", json={"name": "tea", "price": 2.5}, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "tea", "price": 2.5, "tags": []}
    assert created.headers["X-Total"] == "5.0"
    assert created.raw.headers.getlist("Set-Cookie") == ["created=tea; Path=/; SameSite=lax"]
    invalid = requests.post(f"{gw.url}{prefix}/items", json={"name": "tea"}, timeout=60)
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "price"]
    not_int = requests.get(f"{gw.url}{prefix}/items/abc", timeout=60)
    assert not_int.status_code == 422
    missing = requests.get(f"{gw.url}{prefix}/nothing", timeout=60)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize("prefix", ["/fastapi", "/fastapi-http"])
def test_fastapi_binary_body_both_ways(gw: Gateway, prefix: str) -> None:
    blob = bytes(range(256))
    sent = {"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"}
    response = requests.put(f"{gw.url}{prefix}/blob", data=blob, headers=sent, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == blob[::-1]
    # curl's Accept (*/*): a REST API hands the base64 text over as API Gateway does (the first
    # Accept type is not a binary media type); an HTTP API decodes whatever the client accepts.
    curl = requests.put(f"{gw.url}{prefix}/blob", data=blob, headers={**sent, "Accept": "*/*"}, timeout=60)
    assert curl.content == (blob[::-1] if prefix.endswith("-http") else base64.b64encode(blob[::-1]))


# ----------------------------------------------------------- Express behind serverless-http


@pytest.mark.parametrize("prefix", ["/express", "/express-http"])
def test_express_params_repeated_query_and_headers(gw: Gateway, prefix: str) -> None:
    response = requests.get(
        f"{gw.url}{prefix}/users/ada?tag=a&tag=b&x=1&sp=a%20b%2Bc",
        headers={"Cookie": "session=abc; theme=dark", "User-Agent": "curl/8.5.0"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Powered"] == "express"
    assert response.json() == {
        "id": "ada",
        "query": {"tag": ["a", "b"], "x": "1", "sp": "a b+c"},
        "path": "/users/ada",
        "method": "GET",
        "cookie": "session=abc; theme=dark",
        "userAgent": "curl/8.5.0",
    }


@pytest.mark.parametrize("prefix", ["/express", "/express-http"])
def test_express_json_body_cookies_and_404(gw: Gateway, prefix: str) -> None:
    created = requests.post(f"{gw.url}{prefix}/users", json={"name": "ada", "langs": ["en"]}, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json() == {"created": {"name": "ada", "langs": ["en"]}}
    assert created.raw.headers.getlist("Set-Cookie") == ["user=ada; Path=/", "lang=en; Path=/"]
    missing = requests.get(f"{gw.url}{prefix}/nothing", timeout=60)
    assert (missing.status_code, missing.json()) == (404, {"error": "no such route", "path": f"{prefix}/nothing"})


@pytest.mark.parametrize("prefix", ["/express", "/express-http"])
def test_express_binary_body_both_ways(gw: Gateway, prefix: str) -> None:
    blob = bytes(range(256))
    sent = {"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"}
    response = requests.put(f"{gw.url}{prefix}/blob", data=blob, headers=sent, timeout=60)
    assert response.status_code == 200, response.text
    assert response.content == blob[::-1]
    # curl's Accept (*/*): a REST API hands the base64 text over as API Gateway does (the first
    # Accept type is not a binary media type); an HTTP API decodes whatever the client accepts.
    curl = requests.put(f"{gw.url}{prefix}/blob", data=blob, headers={**sent, "Accept": "*/*"}, timeout=60)
    assert curl.content == (blob[::-1] if prefix.endswith("-http") else base64.b64encode(blob[::-1]))


def test_a_cookie_header_sent_twice_reaches_express_as_api_gateway_passes_it(gw: Gateway) -> None:
    """REST: `headers` holds the last value and `multiValueHeaders` both; serverless-http
    lets `headers` win, so Express sees the last one, as behind API Gateway."""
    for prefix, expected in (("/express", "b=2"), ("/express-http", "a=1; b=2")):
        conn = http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=60)
        conn.putrequest("GET", f"{prefix}/users/two")
        conn.putheader("Cookie", "a=1")
        conn.putheader("Cookie", "b=2")
        conn.endheaders()
        answer = conn.getresponse()
        body = json.loads(answer.read())
        conn.close()
        assert answer.status == 200
        assert body["cookie"] == expected
