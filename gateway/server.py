"""Run the gateway under gunicorn: one worker process (gateway/worker.py), a thread per
connection, at most Config.threads requests served at once.

One worker because the Platform (warm pool, leases, container sockets) is in-process
state that must not be split; threads because calls mostly wait on containers. The app
is built in the worker after fork (preload off), so the arbiter holds no containers,
sockets or threads of the platform. Settings live here once, for serve() and for
gateway/gunicorn.conf.py (`gunicorn -c gateway/gunicorn.conf.py`) alike.

Stopping: SIGTERM is gunicorn's graceful stop (calls in flight may finish, up to
graceful_timeout = 905 s: Lambda's 900 s timeout plus margin); SIGINT/SIGQUIT a quick
one. Either way worker_exit shuts the platform down in the worker, and on_exit in the
arbiter removes whatever a dead worker left behind.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from faas.config import Config
from faas.errors import ValidationError

if TYPE_CHECKING:
    from gateway.worker import GatewayWorker

LOG = logging.getLogger(__name__)

GRACEFUL_TIMEOUT_S = 905  # the longest call Lambda allows (900 s), and a little more
SWITCH_INTERVAL_S = 0.001
KEEPALIVE_S = 75  # above the 60 s idle timeout of common load balancers and clients


def config_environment(config: Config) -> dict[str, str]:
    """The FAAS_* variables through which the worker's Config.load() gets the same config."""
    env = {
        "FAAS_STATE_DIR": str(config.state_dir),
        "FAAS_HOST": config.host,
        "FAAS_PORT": str(config.port),
        "FAAS_THREADS": str(config.threads),
        "FAAS_KEEP_ALIVE": str(config.keep_alive_s),
        "FAAS_MEMORY_BUDGET": str(config.memory_budget_mb),
    }
    if config.api_port:
        env["FAAS_API_PORT"] = str(config.api_port)
    if config.api_token:
        env["FAAS_API_TOKEN"] = config.api_token
    if config.debug:
        env["FAAS_DEBUG"] = f"{config.debug[0]}:{config.debug[1]}"
    return env


def is_loopback(host: str) -> bool:
    """Whether every address `host` stands for is a loopback one (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in found)


def check_exposure(config: Config) -> None:
    """Refuse to listen beyond this machine without an API token: a deploy runs code here."""
    if config.api_token or config.allow_no_token or is_loopback(config.host):
        return
    raise ValidationError(
        f"refusing to listen on {config.host}:{config.port} without an API token: anyone who can reach that "
        "address could deploy and run code on this machine. Set FAAS_API_TOKEN (the faas CLI sends it from "
        "the same variable; the AWS CLI and boto3 use it as their access key id), or listen on 127.0.0.1 "
        "(the default)."
    )


def binds(config: Config) -> list[str]:
    """The gateway's address, and the template routes' own (`--api-port`, as `sam local
    start-api` serves on 3000): one worker listens on both and tells their requests apart
    by the local port (gateway/api_routes.py), so both share one platform and one pool."""
    host = f"[{config.host}]" if ":" in config.host and not config.host.startswith("[") else config.host
    out = [f"{host}:{config.port}"]
    if config.api_port:
        out.append(f"{host}:{config.api_port}")
    return out


def settings(config: Config) -> dict[str, Any]:
    """gunicorn settings for this config (also what gunicorn.conf.py exports); refuses an
    exposed address without an API token (check_exposure)."""
    check_exposure(config)
    return {
        "bind": binds(config),
        "worker_class": "gateway.worker.GatewayWorker",
        "workers": 1,
        "threads": config.threads,
        "keepalive": KEEPALIVE_S,
        "timeout": 0,  # no worker heartbeat timeout: one call may legitimately take 900 s
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "preload_app": False,
        "proc_name": "faas-gateway",
        "accesslog": None,
        "worker_int": worker_int,
        "worker_exit": worker_exit,
        "on_exit": on_exit,
    }


def _ignore_stop_signals() -> None:
    # Ctrl-C reaches the worker twice (the terminal's SIGINT, then the arbiter's SIGQUIT);
    # the second must not abort the cleanup the first one started.
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)


def worker_int(worker: Any) -> None:
    """gunicorn hook, in the worker, on SIGINT/SIGQUIT (quick stop): worker_exit follows."""
    _ignore_stop_signals()


def worker_exit(server: Any, worker: GatewayWorker) -> None:
    """gunicorn hook, in the worker, once it stops serving: remove the containers.

    After a graceful stop the calls in flight have finished; after a quick stop they are
    abandoned. Either way nothing waits on the platform any more.
    """
    _ignore_stop_signals()
    platform = worker.platform
    if platform is None:  # the app never loaded: no platform was built
        return
    try:
        platform.shutdown()
    except Exception:  # the arbiter's on_exit cleans up what this leaves
        LOG.exception("platform shutdown failed in worker %s", worker.pid)


def on_exit(server: Any) -> None:
    """gunicorn hook, in the arbiter: remove whatever a dead worker left behind."""
    from faas.containers.docker_executor import remove_state_containers

    try:
        remove_state_containers(Config.load())
    except Exception:
        LOG.exception("cleaning up after the gateway failed; `docker ps -a --filter label=faas` shows leftovers")


class GatewayApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn driven from Python, so `faas up` needs no command line of its own."""

    def __init__(self, config: Config, overrides: dict[str, Any] | None = None) -> None:
        self._settings = {**settings(config), **(overrides or {})}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Called in the worker after fork: the Platform is built here, never before."""
        from gateway.app import create_app

        # Threads that wait on sockets hand the GIL over sooner than the 5 ms default, which
        # otherwise shows as tail latency when a background thread (logs, records) runs.
        sys.setswitchinterval(float(os.environ.get("FAAS_SWITCH_INTERVAL", SWITCH_INTERVAL_S)))

        return create_app(config=Config.load())


def serve(config: Config, *, overrides: dict[str, Any] | None = None) -> int:
    """Run the gateway until it is stopped; returns the arbiter's exit status.

    overrides: extra gunicorn settings (the CLI sets loglevel). The worker is a fork of
    this process: when gunicorn's SystemExit reaches us there, the worker ends here with
    os._exit, so nothing of the caller (the CLI) runs a second time in the worker.
    """
    os.environ.update(config_environment(config))
    arbiter_pid = os.getpid()
    code: int
    try:
        GatewayApplication(config, overrides).run()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        if os.getpid() != arbiter_pid:
            os._exit(1)
        raise
    if os.getpid() != arbiter_pid:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
