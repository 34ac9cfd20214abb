"""Security against a real gateway and real containers.

1. Binding: 127.0.0.1 by default; another address is refused without an API token, and with
   one every admin (/system/*) and management route wants it.
2. From inside a function: no Docker socket, no state dir, no other function's code, no other
   environment's socket, no other container's processes; with `network: none` no network.
3. Names and paths: function names, aliases, qualifiers, URL paths, log cursors; traversal
   refused. Packages: zip bombs (size, ratio, entry count), special entries, YAML that is too
   big, unsafe or explosive.
4. Every refusal is a 4xx in Lambda's error shape ({"Type", "Message"}, x-amzn-ErrorType), and
   changes nothing: the package store, the function list and the state dir's files stay as
   they were.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import socket
import stat
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests

from faas.config import Config
from gateway.server import check_exposure, is_loopback
from tests.integration.aws_clients import lambda_client, zip_code
from tests.integration.conftest import FAAS, Gateway, free_port, start_gateway, stop_gateway

# ------------------------------------------------------------------------------ helpers


def lambda_error(r: requests.Response | Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    """Assert a refusal in Lambda's shape; return its body."""
    statuses = (status,) if isinstance(status, int) else status
    code = getattr(r, "status_code", None) or r.status
    text = r.text if hasattr(r, "text") else r.body
    assert code in statuses, f"{code} {text[:500]}"
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert headers.get("x-amzn-errortype"), headers
    body = json.loads(text)
    assert body.get("Type") in ("User", "Service") and body.get("Message"), body
    return body


@pytest.fixture
def unchanged(gateway: Gateway) -> Iterator[None]:
    """The test's refusals change nothing: state files (but logs and the database's own
    journal), packages, functions and the containers' labels stay as they were."""

    def snapshot() -> tuple[Any, ...]:
        root = gateway.state_dir
        files = sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if not str(p.relative_to(root)).startswith(("envs", "logs")) and "faas.db" not in p.name
        )
        functions = sorted(
            (f["name"], f["version"], f["code_sha256"])
            for f in requests.get(f"{gateway.url}/system/functions", timeout=10).json()
        )
        return files, functions

    before = snapshot()
    yield
    assert snapshot() == before


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status, self.status_code, self.headers, self.body, self.text = status, status, headers, body, body


def raw(
    gateway: Gateway, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> RawResponse:
    """A request whose path goes out exactly as written (no client normalises '..' away)."""
    url = urlsplit(gateway.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return RawResponse(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def zip_bytes(
    entries: dict[str, bytes | str], *, modes: dict[str, int] | None = None, compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if modes and name in modes:
                info.create_system = 3
                info.external_attr = modes[name] << 16
            z.writestr(info, data)
    return buf.getvalue()


def put_zip(gateway: Gateway, name: str, data: bytes) -> requests.Response:
    return requests.put(f"{gateway.url}/system/functions/{name}", data=data, timeout=120)


APP = "def handler(event, context):\n    return 'ok'\n"

# ------------------------------------------------------------------------------ 1. binding


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("192.168.1.10", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    config = Config.load({"state_dir": "/nonexistent", "host": host or "0.0.0.0"}, env={})
    if loopback:
        check_exposure(config)
    else:
        with pytest.raises(Exception, match="without an API token"):
            check_exposure(config)
        check_exposure(config.with_(api_token="t"))


def test_a_public_address_without_a_token_is_refused_at_once(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("FAAS_API_TOKEN", "FAAS_HOST", "FAAS_ALLOW_NO_TOKEN")}
    started = time.monotonic()
    out = subprocess.run(
        [FAAS, "up", "--host", "0.0.0.0", "--port", str(port), "--state-dir", str(tmp_path / "s")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert out.returncode == 1
    assert "refusing to listen on 0.0.0.0" in out.stderr and "FAAS_API_TOKEN" in out.stderr, out.stderr
    assert took < 10  # before any engine or image work
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens


ADMIN_ROUTES = [
    ("GET", "/system/functions"),
    ("GET", "/system/functions/{name}"),
    ("GET", "/system/functions/{name}/versions"),
    ("GET", "/system/functions/{name}/logs"),
    ("GET", "/system/functions/{name}/logs/follow?wait=0"),
    ("GET", "/system/functions/{name}/calls"),
    ("GET", "/system/functions/{name}/failures"),
    ("GET", "/system/environments"),
    ("PUT", "/system/functions/{name}"),
    ("POST", "/system/functions/{name}/rollback"),
    ("DELETE", "/system/functions/{name}"),
]


@pytest.fixture(scope="module")
def exposed(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[tuple[Gateway, str]]:
    """A gateway listening on every address (0.0.0.0) with an API token; the tests talk to it on 127.0.0.1."""
    token = uuid.uuid4().hex
    gw = start_gateway(
        tmp_path_factory.mktemp("exposed") / "state", extra_env={"FAAS_API_TOKEN": token}, args=("--host", "0.0.0.0")
    )
    try:
        yield gw, token
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)


def test_with_a_token_every_admin_route_wants_it(exposed: tuple[Gateway, str], make_function) -> None:
    gw, token = exposed
    name, folder = make_function(APP)
    gw.deploy(folder)  # the CLI sends FAAS_API_TOKEN
    zipped = zip_bytes({"function.yaml": f"name: {name}\n", "app.py": APP.replace("'ok'", "'replaced'")})
    for method, path in ADMIN_ROUTES:
        url = gw.url + path.format(name=name)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            r = requests.request(method, url, headers=headers, data=zipped if method == "PUT" else None, timeout=30)
            body = lambda_error(r, 401)
            assert r.headers["x-amzn-ErrorType"] == "UnrecognizedClientException" and "FAAS_API_TOKEN" in body["Message"]
    good = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{gw.url}/system/functions/{name}", headers=good, timeout=10).json()["version"] == 1
    assert gw.invoke(name).json() == "ok"  # nothing was replaced or removed by the refused calls
    env = {k: v for k, v in gw.env.items() if k != "FAAS_API_TOKEN"}
    out = subprocess.run([FAAS, "ls"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "FAAS_API_TOKEN" in out.stdout + out.stderr


def test_the_start_up_line_says_where_the_gateway_really_listens(exposed: tuple[Gateway, str]) -> None:
    """Finding 17 of issue 17: with --host 0.0.0.0 the start-up line printed http://127.0.0.1:PORT only."""
    gw, _ = exposed
    port = gw.url.rsplit(":", 1)[1]
    line = next(ln for ln in gw.logs().splitlines() if ln.startswith("faas gateway on "))
    assert f"http://0.0.0.0:{port}, every address of this machine (here: {gw.url})" in line, line


def test_with_a_token_the_dashboards_data_wants_it(exposed: tuple[Gateway, str], make_function) -> None:
    """Finding 1 of issue 17: /ui/api gave every function's environment (secrets) and call logs without the token."""
    gw, token = exposed
    secret = uuid.uuid4().hex
    name, folder = make_function(APP, environment={"DB_PASSWORD": secret})
    gw.deploy(folder)
    assert gw.invoke(name).json() == "ok"  # a call, so the call log has something to leak
    paths = ["/ui/api/overview", f"/ui/api/invocations?since=0&function={name}", f"/ui/api/series?function={name}"]
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            r = requests.get(gw.url + path, headers=headers, timeout=10)
            body = lambda_error(r, 401)
            assert "FAAS_API_TOKEN" in body["Message"] and secret not in r.text
    good = {"Authorization": f"Bearer {token}"}
    overview = requests.get(gw.url + paths[0], headers=good, timeout=10)
    assert overview.status_code == 200 and secret in overview.text  # the owner still sees it all
    calls = requests.get(gw.url + paths[1], headers=good, timeout=10).json()["invocations"]
    assert [c["function"] for c in calls] == [name]
    assert requests.get(gw.url + "/ui", timeout=10).status_code == 200  # the page itself holds no data
    top = subprocess.run([FAAS, "top", "--once"], env=gw.env, capture_output=True, text=True, timeout=30)
    assert top.returncode == 0 and name in top.stdout, top.stdout + top.stderr
    env = {k: v for k, v in gw.env.items() if k != "FAAS_API_TOKEN"}
    top = subprocess.run([FAAS, "top", "--once"], env=env, capture_output=True, text=True, timeout=30)
    assert top.returncode != 0 and "FAAS_API_TOKEN" in top.stdout + top.stderr


def test_with_a_token_the_management_api_wants_it_as_the_access_key(exposed: tuple[Gateway, str]) -> None:
    gw, token = exposed
    name = f"m-{uuid.uuid4().hex[:6]}"
    intruder = lambda_client(gw.url)  # access key "test"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        intruder.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Handler="app.handler",
            Role="arn:aws:iam::123456789012:role/r",
            Code={"ZipFile": zip_code(APP)},
        )
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    for call in (
        lambda: intruder.list_functions(),
        lambda: intruder.get_function(FunctionName=name),
        lambda: intruder.delete_function(FunctionName=name),
        lambda: intruder.list_event_source_mappings(),
        lambda: intruder.create_event_source_mapping(FunctionName=name, EventSourceArn="arn:aws:sqs:us-east-1:123456789012:q"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    owner = boto3.client(
        "lambda",
        endpoint_url=gw.url,
        region_name="us-east-1",
        aws_access_key_id=token,
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )
    owner.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Handler="app.handler",
        Role="arn:aws:iam::123456789012:role/r",
        Code={"ZipFile": zip_code(APP)},
    )
    assert name in [f["FunctionName"] for f in owner.list_functions()["Functions"]]


# ------------------------------------------------------------------ 2. from inside a function

PROBE = r"""
import errno, json, os, socket

def try_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()

def handler(event, context):
    out = {}
    out["exists"] = {p: os.path.exists(p) for p in event["host_paths"]}
    out["unix"] = {p: try_connect(p) for p in event["sockets"]}
    found = []
    for root, dirs, files in os.walk("/"):
        if root in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        found += [os.path.join(root, f) for f in files if f == event["secret_name"]]
    out["secret_found"] = found
    out["runtime_dir"] = sorted(os.listdir("/run/faas"))
    out["mounts"] = [line.split()[3:6] for line in open("/proc/self/mountinfo")]  # root, mount point, options
    out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["interfaces"] = sorted(name for _, name in socket.if_nameindex())
    # No route to anywhere beyond loopback (checked without sending anything to any address).
    out["routes"] = [line.split()[:2] for line in open("/proc/net/route").read().splitlines()[1:]]
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", event["gateway_port"]))
        out["gateway"] = "connected"
    except OSError as e:
        out["gateway"] = errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
    out["docker_env"] = sorted(k for k in os.environ if k.startswith("DOCKER"))
    return out
"""


def test_a_function_reaches_nothing_of_the_host_or_of_other_functions(gateway: Gateway, make_function, docker_client) -> None:
    secret_name = f"secret-{uuid.uuid4().hex}.txt"
    victim, victim_folder = make_function(APP, files={secret_name: "the other function's code\n"})
    gateway.deploy(victim_folder)
    assert gateway.invoke(victim).json() == "ok"  # its environment and socket exist now
    envs = requests.get(f"{gateway.url}/system/environments", timeout=10).json()
    victim_env = next(e for e in envs if e.get("function") == victim)
    victim_socket = gateway.state_dir / "envs" / victim_env["id"] / "rt" / "runtime.sock"
    assert victim_socket.is_socket()
    package = next(p for p in (gateway.state_dir / "packages").iterdir() if (p / secret_name).exists())
    name, folder = make_function(PROBE, network="none", timeout=30)
    gateway.deploy(folder)
    event = {
        "host_paths": [
            str(gateway.state_dir),
            str(gateway.state_dir / "faas.db"),
            str(package / secret_name),
            str(package),
            str(victim_socket),
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/var/lib/docker",
            "/run/containerd",
        ],
        "sockets": [
            "/var/run/docker.sock",
            "/run/docker.sock",
            str(victim_socket),
            "/run/containerd/containerd.sock",
            "/var/run/docker/containerd/containerd.sock",
        ],
        "secret_name": secret_name,
        "gateway_port": urlsplit(gateway.url).port,
    }
    r = gateway.invoke(name, json.dumps(event).encode())
    assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
    out = r.json()
    assert not any(out["exists"].values()), out["exists"]
    assert set(out["unix"].values()) == {"ENOENT"}, out["unix"]
    assert out["secret_found"] == []
    # its own Runtime API socket, log pipe and Invoke relay socket (AWS_ENDPOINT_URL_LAMBDA), nobody else's
    assert out["runtime_dir"] == ["aws.sock", "out", "runtime.sock"]
    assert {m[1]: m[2].split(",")[0] for m in out["mounts"] if m[1] in ("/var/task", "/run/faas", "/opt")} == {
        "/var/task": "ro",
        "/run/faas": "ro",
        "/opt": "ro",
    }
    state = str(gateway.state_dir)
    host_roots = [m[0] for m in out["mounts"] if m[0].startswith(state)]
    # its own folders only: code, runtime sockets, layers (/opt)
    assert sorted(r.rsplit("/", 1)[-1] for r in host_roots) == ["opt", "rt", "task"], host_roots
    assert all(r.startswith(f"{state}/envs/") for r in host_roots), host_roots
    assert len(out["pids"]) < 10 and min(out["pids"]) == 1  # its own processes only
    assert out["interfaces"] == ["lo"]
    assert out["routes"] == []
    assert out["gateway"] == "ECONNREFUSED"  # its own loopback: the gateway is not there
    assert out["docker_env"] == []


# --------------------------------------------------------------------- 3. names and paths

BAD_NAMES = ["..", "...", "a..b/../c", "a b", "a;id", "x" * 65, "ñame", "a:b:c:d", "$LATEST", "a\x00b"]


@pytest.mark.parametrize("bad", BAD_NAMES + ["../etc", "..%2F..%2Fetc", "a/b", "%2e%2e"])
def test_bad_function_names_are_refused_on_every_api(gateway: Gateway, unchanged, bad: str) -> None:
    quoted = requests.utils.quote(bad, safe="%")
    r = raw(gateway, "POST", f"/2015-03-31/functions/{quoted}/invocations", b"{}")
    lambda_error(r, (400, 404))
    r = raw(gateway, "GET", f"/2015-03-31/functions/{quoted}")
    lambda_error(r, (400, 404))
    r = raw(gateway, "GET", f"/system/functions/{quoted}/logs")
    lambda_error(r, (400, 404))
    r = raw(gateway, "DELETE", f"/system/functions/{quoted}")
    lambda_error(r, (400, 404, 405))
    r = raw(gateway, "PUT", f"/system/functions/{quoted}", zip_bytes({"function.yaml": "name: x\n", "app.py": APP}))
    lambda_error(r, (400, 404, 405))


def test_names_in_function_yaml_are_validated(gateway: Gateway, unchanged) -> None:
    for bad in ["../x", "x/y", "..", "a b", "x" * 65, "$LATEST"]:
        r = put_zip(gateway, "x", zip_bytes({"function.yaml": f"name: {json.dumps(bad)}\n", "app.py": APP}))
        assert "name must match" in lambda_error(r, 400)["Message"] or "deployed as" in r.json()["Message"]


@pytest.fixture(scope="module")
def target(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"sec-{uuid.uuid4().hex[:6]}"
    r = put_zip(gateway, name, zip_bytes({"function.yaml": f"name: {name}\n", "app.py": APP}))
    assert r.status_code == 201, r.text
    return name


@pytest.mark.parametrize("qualifier", ["../1", "1/../2", "$LATEST/..", "a b", "q" * 129, "..", "1;2", "%00", "-1"])
def test_bad_qualifiers_are_refused(gateway: Gateway, target: str, unchanged, qualifier: str) -> None:
    r = requests.post(
        f"{gateway.url}/2015-03-31/functions/{target}/invocations", params={"Qualifier": qualifier}, data=b"{}", timeout=30
    )
    lambda_error(r, (400, 404))
    r = requests.get(f"{gateway.url}/2015-03-31/functions/{target}", params={"Qualifier": qualifier}, timeout=30)
    lambda_error(r, (400, 404))


@pytest.mark.parametrize(
    "alias, version",
    [("../x", "1"), ("1", "1"), ("a/b", "1"), ("a" * 129, "1"), ("ok", "../1"), ("ok", "99"), ("ok", "$LATEST/.."), ("", "1")],
)
def test_bad_aliases_are_refused(gateway: Gateway, target: str, unchanged, alias: str, version: str) -> None:
    r = requests.post(
        f"{gateway.url}/2015-03-31/functions/{target}/aliases", json={"Name": alias, "FunctionVersion": version}, timeout=30
    )
    lambda_error(r, (400, 404))
    assert requests.get(f"{gateway.url}/2015-03-31/functions/{target}/aliases", timeout=10).json()["Aliases"] == []


@pytest.mark.parametrize("query", ["tail=-1", "tail=abc", "tail=1000000000", "tail=1e3", "tail=%00"])
def test_bad_log_arguments_are_refused(gateway: Gateway, target: str, unchanged, query: str) -> None:
    lambda_error(raw(gateway, "GET", f"/system/functions/{target}/logs?{query}"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "cursor=../../etc/passwd",
        "cursor=%2Fetc%2Fpasswd",
        "cursor=-1:0",
        "cursor=abc",
        "cursor={cursor}&wait=nan",
        "cursor={cursor}&wait=abc",
        "cursor={cursor}&wait=-inf",
        "wait=nan",
    ],
)
def test_bad_follow_arguments_are_refused_at_once(gateway: Gateway, target: str, unchanged, query: str) -> None:
    first = requests.get(f"{gateway.url}/system/functions/{target}/logs/follow", timeout=10)
    query = query.format(cursor=first.headers["X-Faas-Log-Cursor"])
    started = time.monotonic()
    r = raw(gateway, "GET", f"/system/functions/{target}/logs/follow?{query}")
    took = time.monotonic() - started
    lambda_error(r, 400)
    assert took < 5, f"{query} held the request for {took:.1f} s"


@pytest.mark.parametrize(
    "path",
    [
        "/system/functions/../../etc/passwd",
        "/system/functions/%2e%2e/%2e%2e/etc/passwd",
        "/system/../etc/passwd",
        "/2015-03-31/functions/../../etc/passwd/invocations",
        "/faas/code/../../etc/passwd",
        "/faas/code/{target}/../../../faas.db",
        "/faas/code/{target}/1.zip/..",
        "/ui/static/../../../faas/config.py",
        "/ui/static/..%2F..%2F..%2Fpyproject.toml",
    ],
)
def test_traversal_in_url_paths_reaches_nothing(gateway: Gateway, target: str, unchanged, path: str) -> None:
    r = raw(gateway, "GET", path.format(target=target))
    lambda_error(r, (400, 404, 405))
    assert "root:" not in r.body and "SQLite" not in r.body and "[project]" not in r.body


def test_traversal_in_the_http_trigger_path_stays_the_functions_own(gateway: Gateway, make_function) -> None:
    name, folder = make_function("def handler(event, context):\n    return {'statusCode': 200, 'body': event['rawPath']}\n")
    gateway.deploy(folder)
    for path in (
        f"/function/{name}/../../system/functions",
        f"/function/{name}/..%2F..%2Fsystem%2Ffunctions",
        f"/function/{name}/%2e%2e/%2e%2e/etc/passwd",
    ):
        r = raw(gateway, "GET", path)
        assert r.status == 200 and r.body.startswith("/") and ".." in r.body.replace("%2e", ".").replace("%2F", "/"), r.body
    for path in ("/function/..%2F..%2Fsystem/functions", "/function/../system/functions", "/function/%2e%2e/x"):
        r = raw(gateway, "GET", path)  # the function URL's own 404, not the admin API's answer
        assert r.status == 404 and json.loads(r.body) == {"message": "Not Found"}, r.body


# ------------------------------------------------------------------------- 3. packages

SPEC = "name: bad\nruntime: python3.11\nhandler: app.handler\n"


def zeros_entry(mb: int) -> bytes:
    """A zip with function.yaml and one entry of `mb` MB of zeros (a classic bomb: about 1000:1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("function.yaml", SPEC)
        with z.open("zeros.bin", "w") as f:
            block = bytes(1024 * 1024)
            for _ in range(mb):
                f.write(block)
    return buf.getvalue()


def many_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("function.yaml", SPEC)
        for i in range(n):
            z.writestr(f"d/{i}", b"")
    return buf.getvalue()


BILLION_LAUGHS = (
    SPEC
    + "\n".join(
        ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]"
            for i in range(8)
        ]
    )
    + "\nenvironment: {X: *i}\n"
)

BAD_PACKAGES = {
    "bomb-200mb-of-zeros": (lambda: zeros_entry(200), "zip bomb"),
    "bomb-over-250mb": (lambda: zeros_entry(251), "250 MB"),
    "too-many-entries": (lambda: many_entries(100_001), "entries"),
    "backslash-traversal": (lambda: zip_bytes({"function.yaml": SPEC, "..\\..\\evil.py": "x"}), "'..'"),
    "dot-dot-in-the-middle": (lambda: zip_bytes({"function.yaml": SPEC, "lib/../../evil.py": "x"}), "'..'"),
    "absolute": (lambda: zip_bytes({"function.yaml": SPEC, "/tmp/evil.py": "x"}), "absolute"),
    "drive-letter": (lambda: zip_bytes({"function.yaml": SPEC, "C:/evil.py": "x"}), "drive letter"),
    "symlink": (lambda: zip_bytes({"function.yaml": SPEC, "l": "/etc/passwd"}, modes={"l": stat.S_IFLNK | 0o777}), "symlink"),
    "char-device": (lambda: zip_bytes({"function.yaml": SPEC, "d": ""}, modes={"d": stat.S_IFCHR | 0o666}), "character device"),
    "block-device": (lambda: zip_bytes({"function.yaml": SPEC, "d": ""}, modes={"d": stat.S_IFBLK | 0o666}), "block device"),
    "fifo": (lambda: zip_bytes({"function.yaml": SPEC, "p": ""}, modes={"p": stat.S_IFIFO | 0o666}), "FIFO"),
    "socket": (lambda: zip_bytes({"function.yaml": SPEC, "s": ""}, modes={"s": stat.S_IFSOCK | 0o666}), "socket"),
    "yaml-over-1mb": (lambda: zip_bytes({"function.yaml": SPEC + "#" * (1024 * 1024), "app.py": APP}), "1048576"),
    "yaml-python-object": (
        lambda: zip_bytes({"function.yaml": "name: !!python/object/apply:os.system ['id']\n"}),
        "not valid YAML",
    ),
    "yaml-billion-laughs": (lambda: zip_bytes({"function.yaml": BILLION_LAUGHS, "app.py": APP}), "aliases are not accepted"),
    "yaml-not-utf8": (lambda: zip_bytes({"function.yaml": b"name: \xff\xfe\n"}), "UTF-8"),
    "not-a-zip": (lambda: b"PK\x03\x04 certainly not a zip", "not a valid zip"),
    "empty-body": (lambda: b"", "empty request body"),
}


@pytest.mark.parametrize("case", sorted(BAD_PACKAGES))
def test_bad_packages_are_refused_before_anything_is_written(gateway: Gateway, unchanged, case: str) -> None:
    make, expected = BAD_PACKAGES[case]
    data = make()
    started = time.monotonic()
    r = put_zip(gateway, "bad", data)
    took = time.monotonic() - started
    body = lambda_error(r, (400, 413))
    assert expected in body["Message"], body["Message"]
    assert took < 30
    assert not list((gateway.state_dir / "packages").glob(".tmp-*"))
    lambda_error(gateway.invoke("bad"), 404)


def test_a_zip_bomb_is_stopped_while_it_inflates(gateway: Gateway, unchanged) -> None:
    """The directory says 200 MB, but the check is on the bytes inflated: at most MAX_RATIO times the entry's
    compressed size reaches the disk before the refusal, and it is removed."""
    data = zeros_entry(200)
    assert len(data) < 1024 * 1024
    body = lambda_error(put_zip(gateway, "bad", data), 400)
    assert "100 times its compressed size" in body["Message"]


def test_a_legitimate_package_with_compressible_data_is_accepted(gateway: Gateway, make_function) -> None:
    """A 1 MB file of zeros (inside the ratio's grace) and ordinary text go through."""
    name, folder = make_function(
        APP,
        files={
            "data/zeros.txt": "0" * (1024 * 1024),
            "data/text.json": json.dumps([{"key": i, "value": "v" * 50} for i in range(5000)]),
        },
    )
    gateway.deploy(folder)
    assert gateway.invoke(name).json() == "ok"
    digest = hashlib.sha256(b"0" * (1024 * 1024)).hexdigest()
    package = next(
        p
        for p in (gateway.state_dir / "packages").iterdir()
        if (p / "data" / "zeros.txt").exists() and hashlib.sha256((p / "data" / "zeros.txt").read_bytes()).hexdigest() == digest
    )
    assert package.is_dir()


def test_refused_deploys_leave_the_live_version_serving(gateway: Gateway, target: str) -> None:
    before = requests.get(f"{gateway.url}/system/functions/{target}", timeout=10).json()
    for case in ("backslash-traversal", "symlink", "yaml-billion-laughs"):
        data = BAD_PACKAGES[case][0]().replace(b"name: bad", f"name: {target}".encode())
        lambda_error(put_zip(gateway, target, data), 400)
    after = requests.get(f"{gateway.url}/system/functions/{target}", timeout=10).json()
    assert (after["version"], after["code_sha256"]) == (before["version"], before["code_sha256"])
    assert gateway.invoke(target).json() == "ok"


def test_deflate_stream_lies_are_corrupt_not_crashes(gateway: Gateway, unchanged) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("function.yaml", SPEC)
        z.writestr("app.py", APP * 50)
    data = bytearray(buf.getvalue())
    start = data.index(b"PK\x03\x04", 10)  # the second entry's local header
    data[start + 40 : start + 60] = b"\xff" * 20  # corrupt its deflate stream
    body = lambda_error(put_zip(gateway, "bad", bytes(data)), 400)
    assert "corrupt" in body["Message"] or "not a valid zip" in body["Message"]


# ------------------------------------------------------------------------------ 5. what `faas up` watches


def _version(gw: Gateway, name: str) -> int:
    return int(requests.get(f"{gw.url}/system/functions/{name}", timeout=10).json()["version"])


def test_a_deploy_header_cannot_make_faas_up_watch_a_folder(gateway: Gateway, make_function) -> None:
    """Finding 8 of issue 17: X-Faas-Source-Dir on a deploy made `faas up` zip and watch any folder.

    `faas up` watches a listed function's folder only when `faas deploy` on this machine recorded
    it; a save in a folder named only by the header must not redeploy. The legitimate function
    deployed after it is the barrier: once its saves are live, the watcher has listed both.
    """
    code = "def handler(event, context):\n    return {mark!r}\n"
    planted, planted_dir = make_function(code.format(mark="planted"))
    zipped = zip_bytes({"function.yaml": f"name: {planted}\n", "app.py": code.format(mark="planted")})
    r = requests.put(
        f"{gateway.url}/system/functions/{planted}", data=zipped, headers={"X-Faas-Source-Dir": str(planted_dir)}, timeout=60
    )
    assert r.status_code == 201, r.text
    mine, mine_dir = make_function(code.format(mark=0))
    gateway.deploy(mine_dir)  # the CLI records the folder it deployed from
    # `faas up` lists the gateway every 2 s: save until a save of ours goes live, so it watches now
    deadline, mark = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        mark += 1
        (mine_dir / "app.py").write_text(code.format(mark=mark))
        time.sleep(0.5)
        if gateway.invoke(mine).json() == mark:
            break
    assert gateway.invoke(mine).json() == mark, "faas up did not redeploy the folder `faas deploy` gave it"
    # now a save in the planted folder, then one in ours: once ours is live, the planted one was seen
    (planted_dir / "app.py").write_text(code.format(mark="planted 2"))
    (mine_dir / "app.py").write_text(code.format(mark="last"))
    while gateway.invoke(mine).json() != "last" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gateway.invoke(mine).json() == "last"
    time.sleep(0.3)  # the planted folder's save, had it been watched, was in the same burst of events
    assert _version(gateway, planted) == 1 and gateway.invoke(planted).json() == "planted"


# ------------------------------------------------------------------------------ 6. a browser on this machine


def test_a_web_page_in_a_browser_here_cannot_drive_the_gateway(gateway: Gateway, make_function) -> None:
    """A cross-site form POST needs no CORS preflight, and a page that re-points its own name at
    127.0.0.1 (DNS rebinding) can read what it fetches: both are refused, changing nothing;
    the dashboard's own same-origin calls and function URLs still work."""
    name, folder = make_function(APP)
    gateway.deploy(folder)
    page = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    create = json.dumps(
        {
            "FunctionName": "planted",
            "Runtime": "python3.11",
            "Handler": "app.handler",
            "Role": "arn:aws:iam::123456789012:role/r",
            "Code": {"ZipFile": base64.b64encode(zip_code(APP)).decode()},
        }
    )
    answers = [
        requests.post(f"{gateway.url}/2015-03-31/functions", data=create, headers=page, timeout=10),
        requests.post(f"{gateway.url}/2015-03-31/functions/{name}/invocations", data="{}", headers=page, timeout=10),
        requests.get(f"{gateway.url}/ui/api/overview", headers={"Host": "evil.example:8080"}, timeout=10),
        requests.post(
            f"{gateway.url}/2015-03-31/functions/{name}/invocations", data="{}", headers={"Host": "evil.example:8080"}, timeout=10
        ),
    ]
    for r in answers:
        body = lambda_error(r, 403)
        assert r.headers["x-amzn-ErrorType"] == "AccessDeniedException", body
        assert "FAAS_ALLOWED_HOSTS" in body["Message"] or "web page" in body["Message"], body
    names = [f["name"] for f in requests.get(f"{gateway.url}/system/functions", timeout=10).json()]
    assert "planted" not in names and name in names
    own = gateway.url
    r = requests.post(f"{own}/2015-03-31/functions/{name}/invocations", data="{}", headers={"Origin": own}, timeout=10)
    assert r.status_code == 200 and r.json() == "ok"  # the dashboard's own call
