"""Find a Docker engine, or start one where faas can.

An engine that already answers (DOCKER_HOST, else /var/run/docker.sock) is reused and is
never stopped by faas. Where none answers and faas runs as root on Debian, it installs
docker.io (and mmdebstrap, which the runtime images are built with) with apt-get if needed
and starts `dockerd --bridge=none --iptables=false` detached, with its log and pid file
under <state dir>/engine/. Anywhere else it says how to start one.

This module does not import docker: it pings the engine over its socket itself.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from faas.errors import EngineError, EngineUnavailable

LOG = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_URL = f"unix://{DEFAULT_SOCKET}"
DOCKERD_ARGS = ("--bridge=none", "--iptables=false")
ENGINE_PACKAGES = ("docker.io", "mmdebstrap")
START_TIMEOUT_S = 60.0
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

HOW_TO_START = (
    "Start a Docker engine and run this again: `sudo systemctl start docker` (Linux), Docker "
    "Desktop (macOS/Windows), or `sudo dockerd --bridge=none --iptables=false &`; or point "
    "DOCKER_HOST at a running engine. Run as root on Debian, faas installs (apt-get install "
    "docker.io) and starts one itself."
)


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answered: where it listens, and whether faas started it."""

    base_url: str
    started_by_faas: bool


def ensure_engine(state_dir: Path, *, install: bool = True, say: Callable[[str], None] = _quiet) -> Engine:
    """Return a reachable engine, starting (and if need be installing) one where faas can."""
    state_dir = Path(state_dir)
    configured = os.environ.get("DOCKER_HOST") or ""
    url = configured or DEFAULT_URL
    if ping(url):
        return Engine(url, started_by_faas=_own_dockerd_pid(state_dir) is not None and url == DEFAULT_URL)
    if configured and configured != DEFAULT_URL:
        raise EngineUnavailable(
            f"No Docker engine answers at DOCKER_HOST={configured}. Start it, or unset DOCKER_HOST. " + HOW_TO_START
        )
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise EngineUnavailable(f"No Docker engine answers at {DEFAULT_SOCKET}. " + HOW_TO_START)
    dockerd = shutil.which("dockerd", path=SYSTEM_PATH)
    if dockerd is None:
        if not install:
            raise EngineUnavailable(
                "No Docker engine answers and dockerd is not installed: run `apt-get install docker.io`, or let faas install it."
            )
        install_packages(ENGINE_PACKAGES, say=say)
        if ping(DEFAULT_URL):  # the package's own service may have started it
            say("Docker engine started by the docker.io package")
            return Engine(DEFAULT_URL, started_by_faas=False)
        dockerd = shutil.which("dockerd", path=SYSTEM_PATH)
        if dockerd is None:
            raise EngineError("apt-get installed docker.io but there is no dockerd on PATH")
    return _start_dockerd(dockerd, state_dir, say)


def stop_engine(state_dir: Path, *, timeout_s: float = 30.0) -> bool:
    """Stop the dockerd that faas started (its pid file); True if one was stopped. Others are left alone."""
    pidfile = _engine_dir(Path(state_dir)) / "dockerd.pid"
    pid = _own_dockerd_pid(Path(state_dir))
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        LOG.warning("dockerd (pid %d) did not stop within %.0f s; killing it", pid, timeout_s)
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def install_packages(packages: Iterable[str], *, say: Callable[[str], None] = _quiet) -> None:
    """apt-get install packages (root on Debian only), passing progress lines to say."""
    packages = list(packages)
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise EngineUnavailable(f"cannot install {', '.join(packages)} here (needs root on Debian); install them yourself")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": os.environ.get("PATH", "") + ":" + SYSTEM_PATH}
    say(f"apt-get update (to install {', '.join(packages)})")
    _run_apt(["apt-get", "update"], env, say)
    say(f"apt-get install {' '.join(packages)}")
    _run_apt(["apt-get", "install", "-y", *packages], env, say)


def ping(url: str, timeout: float = 2.0) -> bool:
    """Whether a Docker engine answers GET /_ping at url (unix:// or tcp://)."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("unix", "http+unix"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parts.path or DEFAULT_SOCKET)
        elif parts.scheme in ("tcp", "http"):
            if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
                return True  # TLS: leave the check to the docker client
            sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 2375), timeout=timeout)
        else:
            return True  # ssh:// and others: the docker client will tell
    except OSError:
        return False
    try:
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        data = b""
        while len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        return False
    finally:
        sock.close()
    return data.startswith(b"HTTP/1.") and data.split(b" ", 2)[1:2] == [b"200"]


# --- internals ---------------------------------------------------------------------------


def _engine_dir(state_dir: Path) -> Path:
    return state_dir / "engine"


def _start_dockerd(dockerd: str, state_dir: Path, say: Callable[[str], None]) -> Engine:
    folder = _engine_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "dockerd.log"
    pidfile = folder / "dockerd.pid"
    say(f"starting dockerd {' '.join(DOCKERD_ARGS)} (log: {log_path})")
    env = {**os.environ, "PATH": SYSTEM_PATH}
    env.pop("DOCKER_HOST", None)
    # Started through a shell that exits at once, so dockerd is not our child: it lives on
    # after faas exits, in its own session, and never becomes our zombie.
    launcher = subprocess.run(
        [
            "sh",
            "-c",
            'log=$1; shift; (exec "$@" >>"$log" 2>&1 </dev/null) & echo $!',
            "sh",
            str(log_path),
            dockerd,
            *DOCKERD_ARGS,
        ],
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,
        check=False,
    )
    try:
        pid = int(launcher.stdout.strip())
    except ValueError:
        raise EngineError(f"could not start dockerd: {launcher.stderr.strip() or launcher.stdout.strip()}") from None
    pidfile.write_text(f"{pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ping(DEFAULT_URL, timeout=1.0):
            say(f"Docker engine ready (dockerd pid {pid})")
            LOG.info("started dockerd pid %d, log %s", pid, log_path)
            return Engine(DEFAULT_URL, started_by_faas=True)
        if not _alive(pid):
            pidfile.unlink(missing_ok=True)
            raise EngineError(f"dockerd exited at start; the end of {log_path}:\n{_tail(log_path)}")
        time.sleep(0.2)
    raise EngineError(
        f"dockerd (pid {pid}) did not answer on {DEFAULT_SOCKET} within {START_TIMEOUT_S:.0f} s; "
        f"the end of {log_path}:\n{_tail(log_path)}"
    )


def _run_apt(argv: list[str], env: dict[str, str], say: Callable[[str], None]) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=30)
    try:
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
    except OSError as e:
        raise EngineError(f"{' '.join(argv)}: {e}") from e
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if not line:
            continue
        tail.append(line)
        if line.startswith(("Get:", "Unpacking ", "Setting up ", "E:", "W:", "Err:", "Fetched ")):
            say(line)
    if proc.wait() != 0:
        raise EngineError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _own_dockerd_pid(state_dir: Path) -> int | None:
    """The pid in our pid file, if that process is alive and is a dockerd."""
    try:
        pid = int((_engine_dir(state_dir) / "dockerd.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    name = cmdline.split(b"\0", 1)[0]
    return pid if name.endswith(b"dockerd") and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
