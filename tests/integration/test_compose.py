"""faas as a compose service (compose.yaml), driven the way the README drives it.

One stack per module: `faas compose up` (which installs a compose client if there is none,
builds the gateway image and waits for the health check) on a free port, with a stand-in
"database" service on the host's loopback next to it. Then, from the host: `faas deploy`,
plain HTTP, boto3 and the AWS CLI, a `network: host` function that talks to the database, and a host-run
gateway whose containers must survive the faas container's start. The last test runs
`faas compose down` and checks that no container, network or volume is left; the fixture
removes whatever a failed test left behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from faas.containers.executor import state_label
from faas.containers.images import base_image_tag, runtime_image_tag
from tests.integration.aws_clients import aws, lambda_client
from tests.integration.conftest import FAAS, ROOT, Gateway, free_port, labelled_containers

UP_TIMEOUT_S = 1800  # a fresh machine installs docker-compose and builds the gateway image
DB_SERVER = """\
import socket, threading
counts = {}
lock = threading.Lock()
def serve(conn):
    with conn, conn.makefile("rw") as f:
        for line in f:
            verb, _, key = line.strip().partition(" ")
            with lock:
                counts[key] = counts.get(key, 0) + (1 if verb == "INCR" else 0)
                value = counts[key]
            f.write(f"{value}\\n")
            f.flush()
server = socket.create_server(("127.0.0.1", PORT))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    state_dir: Path
    project: str
    db_port: int
    files: list[Path]

    @property
    def label(self) -> str:
        return state_label(self.state_dir)

    def faas(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FAAS, *args], env=self.env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        files = [part for f in self.files for part in ("-f", str(f))]
        return self.faas("compose", *files, *args, timeout=timeout)

    def faas_container(self, client: docker.DockerClient):
        found = client.containers.list(
            all=True, filters={"label": [f"com.docker.compose.project={self.project}", "com.docker.compose.service=faas"]}
        )
        assert len(found) == 1, found
        return found[0]


def write_function(folder: Path, name: str, code: str, **spec: object) -> Path:
    folder.mkdir(parents=True)
    lines = [f"name: {name}", "runtime: python3.11", "handler: app.handler"]
    for key, value in spec.items():
        if isinstance(value, dict):
            lines += [f"{key}:"] + [f"  {k}: {v!r}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {value}")
    (folder / "function.yaml").write_text("\n".join(lines) + "\n")
    (folder / "app.py").write_text(textwrap.dedent(code))
    return folder


def _wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _remove_leftovers(client: docker.DockerClient, project: str, label: str) -> list[str]:
    """Remove every container, network and volume of the project or the state dir; their names."""
    gone: list[str] = []
    for filters in ({"label": f"com.docker.compose.project={project}"}, {"label": f"faas.state={label}"}):
        for container in labelled_containers(client, filters["label"]):
            gone.append(f"container {container.name}")
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
    for network in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
        gone.append(f"network {network.name}")
        network.remove()
    for volume in client.volumes.list(filters={"label": f"com.docker.compose.project={project}"}):
        gone.append(f"volume {volume.name}")
        volume.remove(force=True)
    return gone


@pytest.fixture(scope="module")
def host_warm(
    gateway: Gateway, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, set[str]]:
    """A function warm on a host-run gateway before the stack starts: (name, its container ids)."""
    name = f"host-{uuid.uuid4().hex[:8]}"
    folder = write_function(
        tmp_path_factory.mktemp("host") / name, name, "def handler(event, context):\n    return {'served_by': 'host'}\n"
    )
    gateway.deploy(folder)
    r = requests.get(f"{gateway.url}/function/{name}", timeout=60)
    assert r.status_code == 200, r.text
    ids = {c.id for c in gateway.containers(docker_client) if c.labels.get("faas.runtime") and c.status == "running"}
    assert ids, "the host gateway started no container"
    return name, ids


@pytest.fixture(scope="module")
def stack(
    engine, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory, host_warm: tuple[str, set[str]]
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("compose")
    state_dir = tmp / "state"
    port, db_port = free_port(), free_port()
    project = f"faastest{uuid.uuid4().hex[:8]}"
    # The stand-in database: another service of the same compose project, on the host's loopback.
    override = tmp / "compose.db.yaml"
    override.write_text(
        "services:\n"
        "  db:\n"
        "    image: ${FAAS_IMAGE:-faas-gateway:latest}\n"
        "    network_mode: host\n"
        "    init: true\n"
        "    entrypoint:\n"
        "      - python3\n"
        "      - -c\n"
        f"      - {json.dumps(DB_SERVER.replace('PORT', str(db_port)))}\n"
    )
    env = {
        **os.environ,
        "FAAS_PORT": str(port),
        "FAAS_COMPOSE_STATE_DIR": str(state_dir),
        "COMPOSE_PROJECT_NAME": project,
        "FAAS_GATEWAY": f"http://127.0.0.1:{port}",
    }
    for var in ("FAAS_IMAGE", "FAAS_HOST", "FAAS_API_TOKEN"):
        env.pop(var, None)
    s = Stack(f"http://127.0.0.1:{port}", env, state_dir, project, db_port, [ROOT / "compose.yaml", override])
    try:
        started = time.monotonic()
        up = s.compose("up", timeout=UP_TIMEOUT_S)
        print(f"faas compose up: {time.monotonic() - started:.1f} s\n{up.stderr[-2000:]}")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"ready: {s.url}" in up.stdout
        yield s
    finally:
        s.compose("down", timeout=300)
        _remove_leftovers(docker_client, project, s.label)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_up_runs_a_healthy_service_on_host_loopback_with_the_examples(stack: Stack, docker_client: docker.DockerClient) -> None:
    container = stack.faas_container(docker_client)
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    mounts = {m["Destination"]: m["Source"] for m in container.attrs["Mounts"]}
    assert mounts[str(stack.state_dir)] == str(stack.state_dir)  # the engine's paths are the container's
    assert mounts["/var/run/docker.sock"] == "/var/run/docker.sock"
    r = requests.get(f"{stack.url}/function/hello", params={"name": "compose"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Hello, compose!"}
    listed = stack.faas("ls")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^hello\s+1\s+python3\.11", listed.stdout, re.M), listed.stdout
    # The function containers are the engine's, labelled with the compose state dir.
    assert labelled_containers(docker_client, f"faas.state={stack.label}")


def test_deploy_from_the_host_then_curl_boto3_and_the_aws_cli(stack: Stack, tmp_path: Path) -> None:
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    folder = write_function(
        tmp_path / name,
        name,
        """\
        import os

        def handler(event, context):
            print("called", context.function_name)
            return {"got": event.get("queryStringParameters") or event, "greeting": os.environ["GREETING"]}
        """,
        environment={"GREETING": "from compose"},
    )
    deployed = stack.faas("deploy", str(folder))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"deployed {name} version 1" in deployed.stdout

    r = requests.get(f"{stack.url}/function/{name}", params={"q": "1"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"got": {"q": "1"}, "greeting": "from compose"}

    out = lambda_client(stack.url).invoke(FunctionName=name, Payload=json.dumps({"k": "v"}).encode(), LogType="Tail")
    assert out["StatusCode"] == 200 and "FunctionError" not in out
    assert json.loads(out["Payload"].read()) == {"got": {"k": "v"}, "greeting": "from compose"}
    log = base64.b64decode(out["LogResult"]).decode()
    assert f"called {name}" in log
    peak = re.search(r"Max Memory Used: (\d+) MB", log)
    assert peak and int(peak.group(1)) > 0, log  # the host's cgroups are readable from the container

    cli = aws(stack.url, "invoke", "--function-name", name, "--payload", '{"via": "aws"}', "out.json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["StatusCode"] == 200
    assert json.loads((tmp_path / "out.json").read_text()) == {"got": {"via": "aws"}, "greeting": "from compose"}


def test_a_network_host_function_reaches_the_database_on_host_loopback(stack: Stack, tmp_path: Path) -> None:
    _wait_for_port(stack.db_port)
    name = f"visits-{uuid.uuid4().hex[:8]}"
    folder = write_function(
        tmp_path / name,
        name,
        """\
        import os
        import socket

        def handler(event, context):
            host, port = os.environ["DB_ADDR"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=3) as conn, conn.makefile("rw") as db:
                db.write("INCR visits\\n")
                db.flush()
                return {"visits": int(db.readline())}
        """,
        network="host",
        environment={"DB_ADDR": f"127.0.0.1:{stack.db_port}"},
    )
    deployed = stack.faas("deploy", str(folder))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    first = requests.get(f"{stack.url}/function/{name}", timeout=60)
    second = requests.get(f"{stack.url}/function/{name}", timeout=60)
    assert first.status_code == 200, first.text
    assert (first.json(), second.json()) == ({"visits": 1}, {"visits": 2})


def test_the_faas_container_leaves_a_host_run_gateways_containers_alone(
    stack: Stack, gateway: Gateway, host_warm: tuple[str, set[str]], docker_client: docker.DockerClient
) -> None:
    name, before = host_warm
    assert state_label(gateway.state_dir) != stack.label
    running = {c.id for c in gateway.containers(docker_client) if c.status == "running"}
    assert before <= running, "the faas container removed the host gateway's containers"
    r = requests.get(f"{gateway.url}/function/{name}", timeout=60)
    assert r.status_code == 200 and r.json() == {"served_by": "host"}


def test_the_faas_container_builds_missing_runtime_images_itself(
    stack: Stack, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """What the faas container does on a first start where a runtime image is missing: build it,
    mmdebstrap included, inside the container. A recipe that exists nowhere yet forces that
    (python's, with one more package), so the shared runtime images are never touched."""
    runtimes = tmp_path / "runtimes"
    shutil.copytree(ROOT / "runtimes" / "python", runtimes / "python", ignore=shutil.ignore_patterns("__pycache__"))
    conf = runtimes / "python" / "base.conf"
    conf.write_text(re.sub(r"^packages = (.*)$", r"packages = \1 libexpat1", conf.read_text(), flags=re.M))
    base, image = base_image_tag("python3.11", root=runtimes), runtime_image_tag("python3.11", root=runtimes)
    gateway_image = stack.faas_container(docker_client).attrs["Config"]["Image"]
    for tag in (image, base):
        if docker_client.images.list(name=tag):
            docker_client.images.remove(tag, force=True)  # an earlier run's leftover
    container = docker_client.containers.run(
        gateway_image,
        ["runtimes", "build"],
        detach=True,
        network_mode="host",
        init=True,
        environment={"FAAS_RUNTIMES_DIR": "/runtimes"},
        labels={"com.docker.compose.project": stack.project},
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(runtimes): {"bind": "/runtimes", "mode": "ro"},
        },
    )
    try:
        status = container.wait(timeout=1200)["StatusCode"]
        logs = container.logs().decode(errors="replace")
        print(logs[-3000:])
        assert status == 0, logs[-3000:]
        assert "mmdebstrap bookworm" in logs and f"built {image}" in logs
        assert docker_client.images.list(name=base) and docker_client.images.list(name=image)
    finally:
        container.remove(force=True)
        for tag in (image, base):
            if docker_client.images.list(name=tag):
                docker_client.images.remove(tag, force=True)


def test_down_stops_everything_and_leaves_nothing_behind(
    stack: Stack, gateway: Gateway, host_warm: tuple[str, set[str]], docker_client: docker.DockerClient
) -> None:
    assert labelled_containers(docker_client, f"faas.state={stack.label}"), "no function container to stop"
    down = stack.compose("down")
    assert down.returncode == 0, down.stdout + down.stderr
    left = _remove_leftovers(docker_client, stack.project, stack.label)
    assert not left, f"left behind: {left}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.url}/healthz", timeout=5)
    _, before = host_warm
    assert before <= {c.id for c in gateway.containers(docker_client)}, "down removed the host gateway's containers"
