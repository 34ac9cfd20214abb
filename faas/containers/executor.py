"""The executor interface: what the pool needs from a container engine.

docker_executor.DockerExecutor is the real one; tests use a fake. Nothing outside the
containers room (faas/containers/) imports docker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Inside every container: the per-environment folder with the Runtime API socket and
# the log FIFO is mounted here; the function's code at /var/task.
RUNTIME_DIR_IN_CONTAINER = "/run/faas"
SOCKET_NAME = "runtime.sock"
LOG_FIFO_NAME = "out"
TASK_ROOT = "/var/task"
OPT_ROOT = "/opt"
SANDBOX_UID = 993  # Lambda runs functions as sbx_user1051, uid 993


def state_label(state_dir: Path) -> str:
    """Identifies this state dir on every container, so a restarted gateway finds its orphans."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the engine needs to start one execution environment."""

    env_id: str
    image: str
    task_dir: Path  # host folder mounted read-only at /var/task
    runtime_dir: Path  # host folder with runtime.sock and the log FIFO, mounted at /run/faas
    memory_mb: int
    cpu_shares: int
    cpu_quota_us: int | None  # per 100 ms period; None = no hard quota
    tmp_mb: int
    network: str  # "bridge" | "none" | "host"
    labels: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()  # empty: the image's own
    environment: dict[str, str] = field(default_factory=dict)  # fixed at creation (none function-specific)
    opt_dir: Path | None = None  # host folder mounted read-only at /opt: the function's layers, merged
    mount_task: bool = True  # False for a container-image function, whose /var/task is its image's
    working_dir: str | None = None  # None: the image's own WORKDIR


# (event, container_id): event is "die" or "oom"
EventCallback = Callable[[str, str], None]


class Executor(Protocol):
    def start(self, spec: ContainerSpec) -> str:
        """Create and start a container; returns its id."""

    def kill(self, container_id: str) -> None:
        """Kill and remove; never raises for a container that is already gone."""

    def update_resources(self, container_id: str, memory_mb: int, cpu_shares: int, cpu_quota_us: int | None) -> None:
        """Resize a running container (a pre-started one, given its function): memory = memory-swap, CPU."""

    def memory_peak_bytes(self, container_id: str) -> int:
        """The container's peak memory since it started (its cgroup), 0 if unknown."""

    def subscribe(self, callback: EventCallback) -> None:
        """Deliver die/oom events of labelled containers to callback, from a background thread."""

    def remove_labelled(self, labels: dict[str, str]) -> int:
        """Remove every container that carries these labels (orphans of an earlier run)."""

    def close(self) -> None:
        """Stop the event thread and release the client."""
