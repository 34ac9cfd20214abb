"""`faas compose`: run faas as a Docker Compose service (compose.yaml) and wait until it serves.

The compose client is `docker compose` (the plugin) when it answers, else Debian's
`docker-compose`, which faas installs itself as root on Debian, like the engine. Before `up`,
the gateway image is built here (faas.containers.gateway_image: no registry has it); the runtime images
are then built by the faas container itself on its first start. `up` returns once the
service's health check passes (/healthz answers and the functions it deploys at start are
live); `down` also removes function containers that a killed faas left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from faas.errors import FaasError

if TYPE_CHECKING:
    from faas.containers.docker_executor import DockerExecutor

LOG = logging.getLogger(__name__)

COMPOSE_FILE = "compose.yaml"
SERVICE = "faas"
STATE_DIR_VAR = "FAAS_COMPOSE_STATE_DIR"
DEFAULT_STATE_DIR = "/var/lib/faas-compose"  # compose.yaml's default: keep the two in step
PORT_VAR = "FAAS_PORT"
IMAGE_VAR = "FAAS_IMAGE"
DEFAULT_PORT = 8080
DEBIAN_PACKAGE = "docker-compose"
UP_TIMEOUT_S = 1800.0  # a first start builds every runtime image
POLL_S = 0.5
_CLIENT_CHECK_TIMEOUT_S = 30


class ComposeError(FaasError):
    """The compose client is missing or failed, or the faas service did not become healthy."""


def _quiet(_: str) -> None:
    pass


def compose_client(*, install: bool = True, say: Callable[[str], None] = _quiet) -> list[str]:
    """argv prefix of a compose client: `docker compose`, else `docker-compose` (installed if need be)."""
    docker = shutil.which("docker")
    if docker and _answers([docker, "compose", "version"]):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    if install:
        from faas.containers.engine import install_packages

        say(f"no compose client: installing Debian's {DEBIAN_PACKAGE}")
        try:
            install_packages([DEBIAN_PACKAGE], say=say)
        except FaasError as e:
            raise ComposeError(f"no compose client, and installing {DEBIAN_PACKAGE} failed: {e.message}") from e
        legacy = shutil.which("docker-compose") or shutil.which("docker-compose", path="/usr/bin:/usr/local/bin")
        if legacy:
            return [legacy]
    raise ComposeError(
        f"no compose client: install the Docker Compose plugin (`docker compose`) or Debian's `apt-get install {DEBIAN_PACKAGE}`"
    )


def _answers(argv: list[str]) -> bool:
    try:
        return (
            subprocess.run(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                timeout=_CLIENT_CHECK_TIMEOUT_S,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_files(cwd: Path | None = None) -> list[Path]:
    """./compose.yaml when there is one, else the one at the top of the faas source tree."""
    from faas.containers.gateway_image import project_root

    local = (cwd or Path.cwd()) / COMPOSE_FILE
    return [local if local.is_file() else project_root() / COMPOSE_FILE]


def state_dir(env: Mapping[str, str]) -> Path:
    """The compose service's state folder on the host (= inside the container)."""
    value = env.get(STATE_DIR_VAR) or DEFAULT_STATE_DIR
    path = Path(value)
    if not path.is_absolute():
        raise ComposeError(f"{STATE_DIR_VAR} must be an absolute path (it is mounted at the same path inside), got {value!r}")
    return path


def port(env: Mapping[str, str]) -> int:
    raw = env.get(PORT_VAR) or str(DEFAULT_PORT)
    try:
        value = int(raw)
    except ValueError:
        raise ComposeError(f"{PORT_VAR} must be a port number, got {raw!r}") from None
    if not 0 < value < 65536:
        raise ComposeError(f"{PORT_VAR} must be 1..65535, got {value}")
    return value


@dataclass
class ComposeProject:
    """One compose project: the files, the client, and the environment its variables come from."""

    files: Sequence[Path]
    client: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def argv(self, *args: str) -> list[str]:
        files = [part for f in self.files for part in ("-f", str(f))]
        return [*self.client, *files, *args]

    def run(self, *args: str, capture: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run the compose client (output to our terminal unless capture); ComposeError if it fails."""
        argv = self.argv(*args)
        LOG.info("running %s", " ".join(argv))
        try:
            done = subprocess.run(
                argv,
                env=self.env,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ComposeError(f"{' '.join(argv)}: {e}") from e
        if done.returncode != 0:
            detail = f":\n{(done.stderr or '').strip()}" if capture else ""
            raise ComposeError(f"{' '.join(self.client)} {' '.join(args)} failed (exit {done.returncode}){detail}")
        return done

    def container_id(self, service: str = SERVICE) -> str:
        """The id of the service's container; ComposeError if it has none."""
        ids = [line.strip() for line in self.run("ps", "-q", service, capture=True).stdout.splitlines() if line.strip()]
        if not ids:
            raise ComposeError(f"compose started no container for the service {service!r}")
        return ids[0]


def build(executor: DockerExecutor, *, force: bool = False, say: Callable[[str], None] | None = None) -> str:
    from faas.containers.gateway_image import ensure_gateway_image

    return ensure_gateway_image(executor, force=force, say=say)


def up(
    project: ComposeProject,
    executor: DockerExecutor,
    *,
    extra: Sequence[str] = (),
    force: bool = False,
    service: str = SERVICE,
    timeout_s: float = UP_TIMEOUT_S,
    say: Callable[[str], None] = _quiet,
    status: Callable[[str], None] = _quiet,
) -> str:
    """Build the gateway image, `compose up -d`, and wait until the service is healthy; its URL."""
    from faas.cli.client import GatewayClient

    state = state_dir(project.env)
    url = f"http://127.0.0.1:{port(project.env)}"
    with GatewayClient(url) as probe:
        if probe.health():
            raise ComposeError(f"a faas gateway already answers at {url}: stop it, or choose another {PORT_VAR}")
    state.mkdir(parents=True, exist_ok=True)
    if project.env.get(IMAGE_VAR):
        image = project.env[IMAGE_VAR]
        if not executor.image_exists(image):
            raise ComposeError(f"{IMAGE_VAR}={image}: no such image; unset {IMAGE_VAR} and faas builds faas-gateway itself")
    else:
        image = build(executor, force=force, say=say)
        project.env[IMAGE_VAR] = image  # exactly this build, even if :latest moves meanwhile
    say(f"starting the {service} service ({image}, state in {state})")
    project.run("up", "-d", *extra)
    container = project.container_id(service)
    wait_healthy(executor, container, url, timeout_s=timeout_s, status=status)
    return url


def wait_healthy(
    executor: DockerExecutor,
    container: str,
    url: str,
    *,
    timeout_s: float = UP_TIMEOUT_S,
    status: Callable[[str], None] = _quiet,
) -> None:
    """Until the container's health check passes (or, for a service defined without one, until
    url/healthz answers); ComposeError with its log if it stops or stays unhealthy."""
    from faas.cli.client import GatewayClient

    deadline = time.monotonic() + timeout_s
    last_line = ""
    while True:
        state = executor.container_state(container)
        if state is None:
            raise ComposeError(f"the faas container {container[:12]} is gone")
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return
        if "Health" not in state and state.get("Running"):
            with GatewayClient(url) as probe:
                if probe.health():
                    return
        if not state.get("Running"):
            raise ComposeError(
                f"the faas container exited (status {state.get('ExitCode')}); its last lines:\n"
                + executor.container_log_tail(container, 30).rstrip()
            )
        if health == "unhealthy" or time.monotonic() > deadline:
            checks = (state.get("Health") or {}).get("Log") or []
            reason = (checks[-1].get("Output") or "").strip() if checks else "no health check ran"
            raise ComposeError(
                f"the faas container is not healthy after {time.monotonic() - deadline + timeout_s:.0f} s ({reason}); "
                "its last lines:\n" + executor.container_log_tail(container, 30).rstrip()
            )
        lines = executor.container_log_tail(container, 1).strip().splitlines()
        if lines and lines[-1] != last_line:
            last_line = lines[-1]
            status(f"faas is starting: {last_line[:100]}")
        time.sleep(POLL_S)


def down(
    project: ComposeProject, executor: DockerExecutor, *, extra: Sequence[str] = (), say: Callable[[str], None] = _quiet
) -> int:
    """`compose down --remove-orphans`, then remove function containers a killed faas left; how many."""
    from faas.containers.executor import state_label

    state = state_dir(project.env)
    project.run("down", "--remove-orphans", *extra)
    left = executor.remove_labelled({"faas.state": state_label(state)})
    if left:
        say(f"removed {left} function container(s) left by the faas service")
    return left
