"""The composition root: builds store, registry, executor, pool and scheduler, and is the
one object the gateway talks to (app.extensions["faas"])."""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from faas.config import Config
from faas.errors import ShuttingDown
from faas.executor import Executor
from faas.launcher import Launcher, state_label
from faas.limits import Limiter
from faas.logs import LogPump, LogStore
from faas.models import FunctionVersion, Result
from faas.packages import unpack
from faas.pool import Pool
from faas.registry import Registry
from faas.scheduler import Scheduler
from faas.store import Store

LOG = logging.getLogger(__name__)

TICK_S = 1.0


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy did: the live version after it, and whether anything changed."""

    version: FunctionVersion
    changed: bool  # False when identical content was deployed again


class Platform:
    """Owns every long-lived part; shutdown() releases them all."""

    def __init__(
        self,
        config: Config,
        executor: Executor,
        image_for: Callable[[str], str],
        *,
        has_bridge: bool = False,
    ) -> None:
        self.config = config
        root = config.state_dir
        root.mkdir(parents=True, exist_ok=True)
        self.packages_root = root / "packages"
        self.packages_root.mkdir(exist_ok=True)
        self.executor = executor
        self.label = state_label(root)
        removed = executor.remove_labelled({"faas.state": self.label})
        if removed:
            LOG.info("removed %d container(s) left by an earlier run of this state dir", removed)
        envs_root = root / "envs"
        shutil.rmtree(envs_root, ignore_errors=True)
        self.store = Store(root / "faas.db")
        self.registry = Registry(self.store)
        self.pump = LogPump()
        self.log_store = LogStore(root / "logs")
        self.launcher = Launcher(executor, self.pump, envs_root, image_for, self.label, has_bridge=has_bridge)
        self.pool = Pool(self.launcher.launch, config.keep_alive_s)
        self.launcher.on_dead = self.pool.forget
        self.limiter = Limiter()
        self.scheduler = Scheduler(self.registry, self.pool, self.limiter, self.log_store, executor.memory_peak_bytes)
        self.registry.subscribe(self._version_changed)
        executor.subscribe(self.launcher.route_event)
        self._closing = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="pool-tick", daemon=True)
        self._ticker.start()

    @classmethod
    def create(cls, config: Config | None = None) -> "Platform":
        """The production wiring: the engine `faas up` made sure of, and the runtime images it built."""
        from faas.docker_executor import DockerExecutor
        from faas.images import runtime_image_tag

        config = config or Config.load()
        executor = DockerExecutor()
        return cls(config, executor, runtime_image_tag, has_bridge=executor.has_bridge())

    # ---- functions ---------------------------------------------------------------------

    def deploy_zip(self, data: bytes, *, expected_name: str | None = None, source_dir: str | None = None) -> DeployOutcome:
        """Validate a zip (function.yaml inside), store it, make it live; on any error nothing changes."""
        self._refuse_if_closing()
        package = unpack(data, self.packages_root, expected_name=expected_name)
        version, changed = self.registry.publish(
            package.spec, package.sha256, package.code_dir, package.unzipped_size, source_dir
        )
        if changed:
            LOG.info("function %s: version %d is live (%s)", version.name, version.version, package.sha256[:12])
        return DeployOutcome(version, changed)

    def remove(self, name: str) -> None:
        self.registry.remove(name)
        self.pool.retire_function(name)
        self.log_store.remove(name)

    def functions(self) -> list[FunctionVersion]:
        return self.registry.all()

    def get(self, name: str) -> FunctionVersion:
        return self.registry.live(name)

    def invoke(
        self, name: str, payload: bytes, *, qualifier: str | None = None, client_context: str | None = None
    ) -> Result:
        self._refuse_if_closing()
        return self.scheduler.invoke(name, payload, qualifier=qualifier, client_context=client_context)

    def logs(self, name: str, *, tail: int = 200) -> list[str]:
        self.registry.live(name)
        return self.log_store.tail(name, tail)

    def environments(self) -> list[dict[str, object]]:
        return [env.snapshot() for env in self.pool.environments()]

    # ---- lifecycle ---------------------------------------------------------------------

    def _version_changed(self, old: FunctionVersion | None, new: FunctionVersion | None) -> None:
        if old is not None and new is None:
            self.pool.retire_function(old.name)
        elif old is not None and new.key != old.key:
            self.pool.retire(old.key)

    def _refuse_if_closing(self) -> None:
        if self._closing.is_set():
            raise ShuttingDown("faas is shutting down and takes no new calls")

    def _tick_loop(self) -> None:
        while not self._closing.wait(TICK_S):
            try:
                self.pool.tick()
            except Exception:  # the tick must survive anything one environment does
                LOG.exception("pool tick failed")

    def shutdown(self, wait_s: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish (up to their timeout), remove every container."""
        if self._closing.is_set():
            return
        self._closing.set()
        longest = max((fv.spec.timeout for fv in self.registry.all()), default=3)
        self.pool.shutdown(longest + 1.0 if wait_s is None else wait_s)
        for env in self.launcher.live_environments():
            env.destroy()
        self.executor.remove_labelled({"faas.state": self.label})
        self.log_store.close()
        self.pump.close()
        self.store.close()
        self.executor.close()


def cleanup_orphans(config: Config) -> int:
    """Remove every container of this state dir; the arbiter calls it when the gateway exits."""
    from faas.docker_executor import DockerExecutor

    executor = DockerExecutor()
    try:
        return executor.remove_labelled({"faas.state": state_label(config.state_dir)})
    finally:
        executor.close()
