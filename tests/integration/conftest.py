"""Integration fixtures: a real Docker engine, the real runtime images, a real gateway process.

The engine and images are made sure of once per session (installing and starting Docker on a
fresh machine, as `faas up` does). Each gateway runs as `faas up` in a subprocess with its own
state dir, on a free loopback port, and is stopped with SIGTERM; afterwards no container of
its state dir may remain.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import requests

from faas.containers.executor import state_label

ROOT = Path(__file__).resolve().parents[2]
FAAS = str(Path(sys.executable).parent / "faas")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath) or "tests/faults" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory):
    from faas.containers.engine import ensure_engine

    state = Path(os.environ.get("FAAS_TEST_ENGINE_DIR", "/var/tmp/faas-test-engine"))
    state.mkdir(parents=True, exist_ok=True)
    return ensure_engine(state, say=lambda line: print(f"[engine] {line}", file=sys.stderr))


@pytest.fixture(scope="session")
def runtime_images(engine) -> dict[str, str]:
    from faas.containers.docker_executor import DockerExecutor
    from faas.containers.images import RUNTIME_FOLDERS, ensure_runtime_image

    executor = DockerExecutor(base_url=engine.base_url)
    try:
        return {
            rt: ensure_runtime_image(rt, executor, say=lambda line: print(f"[images] {line}", file=sys.stderr))
            for rt in RUNTIME_FOLDERS
        }
    finally:
        executor.close()


@pytest.fixture(scope="session")
def docker_client(engine) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=engine.base_url)
    yield client
    client.close()


def labelled_containers(client: docker.DockerClient, label: str) -> list:
    """Containers with a label, skipping any removed between the engine's list and their inspect
    (the SDK's containers.list() inspects each one and fails on a container that just went)."""
    found = []
    for summary in client.api.containers(all=True, filters={"label": label}):
        try:
            found.append(client.containers.get(summary["Id"]))
        except docker.errors.NotFound:
            continue
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    """A running `faas up` and what the tests need to talk to it."""

    url: str
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    deployed: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return state_label(self.state_dir)

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FAAS, *args], env=self.env, capture_output=True, text=True, timeout=timeout, input=input.decode() if input else None
        )

    def deploy(self, folder: Path) -> subprocess.CompletedProcess[str]:
        out = self.cli("deploy", str(folder))
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    def invoke(self, name: str, payload: bytes = b"{}", headers: dict[str, str] | None = None, **kw) -> requests.Response:
        return requests.post(
            f"{self.url}/2015-03-31/functions/{name}/invocations",
            data=payload,
            headers=headers or {},
            timeout=kw.pop("timeout", 60),
            **kw,
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def containers(self, client: docker.DockerClient) -> list:
        return labelled_containers(client, f"faas.state={self.label}")

    def function_containers(self, client: docker.DockerClient, name: str) -> list:
        """The containers serving a function now (pre-started ones carry no function label)."""
        envs = requests.get(f"{self.url}/system/environments", timeout=10).json()
        envs = envs.get("environments", envs) if isinstance(envs, dict) else envs
        ids = {e["container"] for e in envs if e.get("function") == name and e.get("container")}
        return [c for c in self.containers(client) if c.id[:12] in ids]


def start_gateway(state_dir: Path, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Gateway:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FAAS_STATE_DIR": str(state_dir), "FAAS_GATEWAY": url, "FAAS_PORT": str(port), **(extra_env or {})}
    env.pop("FAAS_HOST", None)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir.parent / f"gateway-{port}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [FAAS, "up", "--port", str(port), "--state-dir", str(state_dir), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gw = Gateway(url, state_dir, proc, log_path, env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"faas up exited with {proc.returncode}:\n{gw.logs()}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return gw
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_gateway(gw)
    raise RuntimeError(f"faas up did not answer on {url} within 120 s:\n{gw.logs()}")


def stop_gateway(gw: Gateway, timeout: float = 60) -> int:
    if gw.proc.poll() is None:
        gw.proc.send_signal(signal.SIGTERM)
        try:
            gw.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(gw.proc.pid, signal.SIGKILL)
            gw.proc.wait(10)
    return gw.proc.returncode


@contextmanager
def gateway_session(
    state_dir: Path, docker_client, *, no_tracebacks: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    """A `faas up` for a group of tests; stopped with SIGTERM, after which none of its
    containers may remain (and, for fault tests, its log may show no unexpected error)."""
    gw = start_gateway(state_dir, extra_env)
    try:
        yield gw
    finally:
        code = stop_gateway(gw)
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
        assert not left, f"containers left after SIGTERM: {[c.name for c in left]}"
        assert code == 0, f"faas up exited with {code}:\n{gw.logs()[-3000:]}"
        if no_tracebacks:  # no fault may show up as a bug
            assert "unexpected error" not in gw.logs() and "Traceback" not in gw.logs(), gw.logs()[-5000:]


@pytest.fixture(scope="session")
def gateway(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:
    """One gateway shared by the tests that only deploy and call (each with its own function names)."""
    with gateway_session(tmp_path_factory.mktemp("gw") / "state", docker_client) as gw:
        yield gw


@pytest.fixture
def make_function(tmp_path: Path):
    """Writes a function folder: make_function(code, **function_yaml) -> (name, folder)."""

    def make(code: str, *, name: str | None = None, files: dict[str, str] | None = None, **spec: object) -> tuple[str, Path]:
        name = name or f"t-{uuid.uuid4().hex[:8]}"
        folder = tmp_path / name
        folder.mkdir()
        lines = [
            f"name: {name}",
            f"runtime: {spec.pop('runtime', 'python3.11')}",
            f"handler: {spec.pop('handler', 'app.handler')}",
        ]
        for k, v in spec.items():
            if isinstance(v, dict):
                lines.append(f"{k}:")
                lines.extend(f"  {ek}: {ev!r}" for ek, ev in v.items())
            else:
                lines.append(f"{k}: {v}")
        (folder / "function.yaml").write_text("\n".join(lines) + "\n")
        (folder / "app.py").write_text(textwrap.dedent(code))
        for rel, text in (files or {}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        return name, folder

    return make
