"""faas as a compose service, without an engine: the gateway image's tag and build sequence
(fake executor, no pip), compose.yaml's contract, the compose settings and the health check."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from faas.cli import compose, healthcheck
from faas.containers import gateway_image
from faas.errors import ImageBuildError

ROOT = Path(__file__).resolve().parents[2]


def make_tree(root: Path) -> Path:
    """The smallest faas source tree the gateway image is built from."""
    (root / "faas").mkdir(parents=True)
    (root / "faas" / "cli.py").write_text("print('faas')\n")
    (root / "gateway").mkdir()
    (root / "gateway" / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    (root / "gateway" / "base.conf").write_text("suite = bookworm\npackages = python3 python3-venv\n")
    (root / "runtimes" / "python").mkdir(parents=True)
    (root / "runtimes" / "python" / "bootstrap").write_text("#!/bin/sh\n")
    (root / "pyproject.toml").write_text('[project]\nname = "faas"\ndependencies = ["docker==7.1.0", "flask==3.1.3"]\n')
    return root


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_tree(tmp_path / "src")
    monkeypatch.setenv("FAAS_RUNTIMES_DIR", str(root / "runtimes"))
    return root


# --- the gateway image ---------------------------------------------------------------------


def test_gateway_tag_follows_sources_runtimes_and_dependencies(tree: Path) -> None:
    first = gateway_image.gateway_image_tag(tree)
    assert first.startswith("faas-gateway:") and len(first.partition(":")[2]) == 12
    assert gateway_image.gateway_image_tag(tree) == first
    (tree / "faas" / "__pycache__").mkdir()
    (tree / "faas" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert gateway_image.gateway_image_tag(tree) == first  # bytecode does not count

    seen = {first}
    for path, text in (
        (tree / "faas" / "cli.py", "print('changed')\n"),
        (tree / "runtimes" / "python" / "bootstrap", "#!/bin/sh\nexit 0\n"),
        (tree / "pyproject.toml", '[project]\nname = "faas"\ndependencies = ["docker==7.1.0"]\n'),
        (tree / "gateway" / "base.conf", "suite = bookworm\npackages = python3 python3-venv mmdebstrap\n"),
    ):
        path.write_text(text)
        tag = gateway_image.gateway_image_tag(tree)
        assert tag not in seen, f"changing {path.name} did not change the tag"
        seen.add(tag)


def test_a_folder_that_is_not_a_source_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="not a faas source tree"):
        gateway_image.gateway_image_tag(tmp_path)


def test_wheels_are_fetched_for_bookworms_python_on_the_engines_machine() -> None:
    args = gateway_image.wheel_target_args("arm64")
    assert args[args.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in args and "cp311" in args
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert "manylinux_2_36_aarch64" in platforms and "manylinux2014_aarch64" in platforms
    assert all(p.endswith("_aarch64") for p in platforms)
    assert "manylinux_2_37_aarch64" not in platforms  # newer than bookworm's glibc


def test_dependencies_come_from_pyproject() -> None:
    deps = gateway_image.dependencies(ROOT / "pyproject.toml")
    assert any(d.startswith("docker==") for d in deps) and any(d.startswith("flask==") for d in deps)


class FakeExecutor:
    """Images only: what ensure_gateway_image asks of the engine."""

    def __init__(self, images: set[str], in_use: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.images = set(images)
        self.in_use = set(in_use)
        self.builds: list[tuple[str, dict[str, str], list[str]]] = []

    def image_exists(self, tag: str) -> bool:
        return tag in self.images

    def engine_arch(self) -> str:
        return "x86_64"

    def build_image(
        self,
        context_dir: Path,
        tag: str,
        buildargs: dict[str, str],
        on_line,
        *,
        dockerfile: str = "Dockerfile",
        labels: dict[str, str] | None = None,
    ) -> None:
        files = sorted(p.relative_to(context_dir).as_posix() for p in context_dir.rglob("*") if p.is_file())
        self.builds.append((tag, buildargs, files))
        self.images.add(tag)

    def tag_image(self, source: str, target: str) -> None:
        assert source in self.images
        self.images.add(target)

    def image_tags(self, repository: str) -> list[str]:
        return sorted(t for t in self.images if t.startswith(repository + ":"))

    def remove_unused_image(self, tag: str) -> bool:
        if tag in self.in_use:
            return False
        self.images.discard(tag)
        return True


def test_build_sequence_context_latest_and_pruning(tree: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pip_calls: list[list[str]] = []

    def fake_pip(args: list[str], step) -> None:
        pip_calls.append(args)
        dest = Path(args[args.index("--wheel-dir" if args[0] == "wheel" else "--dest") + 1])
        (dest / f"{args[0]}-0-py3-none-any.whl").write_bytes(b"PK")

    monkeypatch.setattr(gateway_image, "_pip", fake_pip)
    monkeypatch.setattr("faas.containers.images._scratch_parent", lambda work_dir: str(tmp_path))  # the build lock's folder
    base = gateway_image.base_image_tag(tree)
    ex = FakeExecutor({base, "faas-gateway:old1", "faas-gateway:old2"}, in_use={"faas-gateway:old2"})
    tag = gateway_image.ensure_gateway_image(ex, root=tree, say=lambda _: None)  # type: ignore[arg-type]

    [(built, buildargs, files)] = ex.builds
    assert built == tag and buildargs == {"BASE": base}
    assert "Dockerfile" in files and "runtimes/python/bootstrap" in files
    assert "wheels/wheel-0-py3-none-any.whl" in files and "wheels/download-0-py3-none-any.whl" in files
    assert "sdk-wheels/download-0-py3-none-any.whl" in files  # the Python runtimes' AWS SDK, for builds in the container
    assert [c[0] for c in pip_calls] == ["wheel", "download", "download"]
    assert pip_calls[1][-2:] == ["docker==7.1.0", "flask==3.1.3"]
    assert ex.image_exists("faas-gateway:latest")
    assert not ex.image_exists("faas-gateway:old1")  # an older build nobody runs goes
    assert ex.image_exists("faas-gateway:old2")  # one a container still runs stays

    assert gateway_image.ensure_gateway_image(ex, root=tree, say=lambda _: None) == tag  # type: ignore[arg-type]
    assert len(ex.builds) == 1 and len(pip_calls) == 3  # built once per content


# --- compose.yaml and the compose settings ---------------------------------------------------


def test_compose_yaml_keeps_its_contract() -> None:
    service = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["faas"]
    assert service["network_mode"] == "host"
    assert service["environment"]["FAAS_HOST"] == "127.0.0.1"
    default_state = f"${{{compose.STATE_DIR_VAR}:-{compose.DEFAULT_STATE_DIR}}}"
    assert service["environment"]["FAAS_STATE_DIR"] == default_state
    assert f"{default_state}:{default_state}" in service["volumes"]  # the same path on both sides
    assert "/var/run/docker.sock:/var/run/docker.sock" in service["volumes"]
    assert service["environment"]["FAAS_PORT"] == "${FAAS_PORT:-8080}"
    assert service["healthcheck"]["test"][-2:] == ["faas.cli.healthcheck", "/functions"]
    assert service["command"] == ["up", "/functions"] and "./functions:/functions:ro" in service["volumes"]


def test_compose_settings_are_checked() -> None:
    assert compose.state_dir({}) == Path(compose.DEFAULT_STATE_DIR)
    assert compose.state_dir({"FAAS_COMPOSE_STATE_DIR": "/srv/faas"}) == Path("/srv/faas")
    with pytest.raises(compose.ComposeError, match="absolute"):
        compose.state_dir({"FAAS_COMPOSE_STATE_DIR": "state"})
    assert compose.port({}) == 8080 and compose.port({"FAAS_PORT": "9001"}) == 9001
    for bad in ("http", "0", "70000"):
        with pytest.raises(compose.ComposeError):
            compose.port({"FAAS_PORT": bad})


def test_compose_project_passes_every_file() -> None:
    project = compose.ComposeProject([Path("/a/compose.yaml"), Path("/b/db.yaml")], ["docker-compose"], env={})
    assert project.argv("up", "-d") == ["docker-compose", "-f", "/a/compose.yaml", "-f", "/b/db.yaml", "up", "-d"]


# --- the health check ------------------------------------------------------------------------


@pytest.fixture
def fake_gateway() -> Iterator[tuple[str, list[str]]]:
    """A stand-in gateway on loopback: /healthz, and /system/functions listing `deployed`."""
    deployed: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                body = b'{"status": "ok"}'
            elif self.path == "/system/functions":
                body = json.dumps([{"name": n} for n in deployed]).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", deployed
    finally:
        server.shutdown()
        server.server_close()


def test_healthy_only_once_the_start_functions_are_deployed(fake_gateway, tmp_path: Path) -> None:
    url, deployed = fake_gateway
    marker = tmp_path / "started"
    functions = ROOT / "functions"
    problem = healthcheck.check(url, [functions], marker=marker)
    assert problem is not None and problem.startswith("not deployed yet: ") and "hello" in problem
    assert not marker.exists()
    names = [
        yaml.safe_load((f / "function.yaml").read_text())["name"] for f in functions.iterdir() if (f / "function.yaml").is_file()
    ]
    deployed.extend(names)
    assert healthcheck.check(url, [functions], marker=marker) is None
    assert marker.exists()
    deployed.clear()  # a function removed later does not make the service unhealthy
    assert healthcheck.check(url, [functions], marker=marker) is None


def test_unhealthy_while_the_gateway_does_not_answer(fake_gateway) -> None:
    url, _ = fake_gateway
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    problem = healthcheck.check(f"http://127.0.0.1:{closed}", [])
    assert problem is not None and problem.startswith("no answer from")
    assert healthcheck.check(url, []) is None


class FakeContainers:
    """container_state/container_log_tail of one container going through the given states."""

    def __init__(self, states: list[dict]) -> None:
        self.states = states

    def container_state(self, container_id: str) -> dict | None:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def container_log_tail(self, container_id: str, lines: int = 20) -> str:
        return "error: /functions: no function.yaml in it\n"


def test_up_waits_for_the_health_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "POLL_S", 0.0)
    seen: list[str] = []
    ex = FakeContainers(
        [{"Running": True, "Health": {"Status": "starting"}}] * 3 + [{"Running": True, "Health": {"Status": "healthy"}}]
    )
    compose.wait_healthy(ex, "c1", "http://127.0.0.1:9", status=seen.append)  # type: ignore[arg-type]
    assert ex.states == [{"Running": True, "Health": {"Status": "healthy"}}]
    assert seen == ["faas is starting: error: /functions: no function.yaml in it"]  # each new line once


def test_a_container_that_exits_while_starting_fails_up_with_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "POLL_S", 0.0)
    ex = FakeContainers([{"Running": True, "Health": {"Status": "starting"}}, {"Running": False, "ExitCode": 1}])
    with pytest.raises(compose.ComposeError, match=r"exited \(status 1\)(.|\n)*no function.yaml"):
        compose.wait_healthy(ex, "c1", "http://127.0.0.1:9")  # type: ignore[arg-type]
