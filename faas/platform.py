"""The composition root: builds store, registry, executor, pool and scheduler, and is the
one object the gateway talks to (app.extensions["faas"])."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faas.config import Config
from faas.containers import image_functions
from faas.containers.executor import Executor, state_label
from faas.deploy.deploys import Deployer, DeployProblem, VersionInfo
from faas.deploy.incoming import IncomingWatcher
from faas.deploy.layers import LayerStore
from faas.deploy.packages import unpack
from faas.deploy.registry import Registry
from faas.deploy.routes import Route, RouteBook, RouteTable
from faas.deploy.store import Store
from faas.errors import ShuttingDown, ValidationError
from faas.events.destinations import Destinations
from faas.events.schedule import Schedule, ScheduleBook
from faas.events.sqs_mappings import EventSourceMappings
from faas.events.sqs_queues import Queues
from faas.invoke.async_invoke import MB, AsyncInvoker, Policy, QueueBounds
from faas.invoke.environment import Environment
from faas.invoke.launcher import PRESTARTED_MEMORY_MB, Launcher
from faas.invoke.limits import Limiter, MemoryBudget
from faas.invoke.pool import Pool
from faas.invoke.prestart import PrestartedContainers
from faas.invoke.scheduler import Scheduler
from faas.logs import follow as log_follow
from faas.logs.pump import LogPump
from faas.logs.store import LogStore
from faas.models import FunctionSpec, FunctionVersion, Result, check_payload
from faas.observe.activity import Activity
from faas.observe.metrics import Metrics
from faas.observe.records import DroppedRecords, RecordStore
from faas.private import private_dir

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
        memory_usage_bytes: Callable[[str], int] | None = None,
    ) -> None:
        """memory_usage_bytes(container id): what a container uses now, from its cgroup, for
        `faas ps` and the memory gauge; None where the executor cannot tell (then 0 / no gauge)."""
        self.config = config
        root = config.state_dir
        private_dir(root)  # 0700: other local users reach nothing below (faas/private.py)
        self.packages_root = root / "packages"
        self.packages_root.mkdir(exist_ok=True)
        self.executor = executor
        self._memory_usage_bytes = memory_usage_bytes
        self.label = state_label(root)
        removed = executor.remove_labelled({"faas.state": self.label})
        if removed:
            LOG.info("removed %d container(s) left by an earlier run of this state dir", removed)
        envs_root = root / "envs"
        shutil.rmtree(envs_root, ignore_errors=True)
        self.store = Store(root / "faas.db")
        self.registry = Registry(self.store)
        self.layers = LayerStore(self.store, root / "layers", config.layer_map)
        self.route_book = RouteBook(self.store)  # templates' API routes, served at the gateway's root
        self.registry.unrunnable = self.route_book.unrunnable()
        self.pump = LogPump()
        self.log_store = LogStore(root / "logs")
        self.launcher = Launcher(
            executor,
            self.pump,
            envs_root,
            image_for,
            self.label,
            has_bridge=has_bridge,
            gateway=(config.host, config.port),
            aws_endpoints=dict(config.aws_endpoints),
        )
        self.launcher.layer_dirs = lambda fv: self.layers.mount_dirs(fv.spec.layers)
        if hasattr(executor, "image_inspect"):  # container-image functions (docs/image-functions.md)
            self.launcher.image_start = lambda image, cfg: image_functions.start_for(executor, image, cfg)  # type: ignore[arg-type]
            self.launcher.forwarder = lambda: image_functions.ensure_forwarder(root / "bin")
            self.launcher.runtime_images = dict(config.runtime_images)
        self.budget = MemoryBudget(config.memory_budget_mb)
        self.prestarted = PrestartedContainers(
            self.launcher.start_prestarted,
            self.budget,
            PRESTARTED_MEMORY_MB,
            floor=config.prestart_min,
            ceiling=config.prestart_max,
        )
        self.launcher.prestarted = self.prestarted
        self.pool = Pool(
            self.launcher.launch,
            config.keep_alive_s,
            budget=self.budget,
            budget_wait_s=config.budget_wait_s,
            prestarted=self.prestarted,
        )
        self.launcher.on_dead = self.pool.forget
        self.limiter = Limiter()
        self.scheduler = Scheduler(self.registry, self.pool, self.limiter, self.log_store, executor.memory_peak_bytes)
        # Observability (/metrics, /ui, `faas top`): O(1) listeners on every call's path.
        self.activity = Activity()
        self.metrics = Metrics(
            environments=self.environments,
            containers=self._containers,
            memory_usage_bytes=memory_usage_bytes,
            async_queue_depth=self.async_queue_depth,
        )
        # Invocation records (`faas calls`) and the durable async queue (Event calls).
        self.records = RecordStore(self.store.path, keep_per_function=config.records_per_function)
        self.metrics.registry.register(DroppedRecords(self.records))
        # Each is told of every call that ran and every call throttled (scheduler.CallListener).
        self.scheduler.listeners.extend((self.metrics, self.activity, self.records))
        # Queues and destinations on the SQS-compatible endpoint the user runs (faas/events/).
        self.queues = Queues(config.aws_endpoints)
        self.destinations = Destinations(
            lambda name: self.store.settings(name).get("event_invoke_config") or {},
            self.queues,
            lambda name, qualifier, payload: self.invoke_async(name, payload, qualifier=qualifier),
        )
        self.async_invoker = AsyncInvoker(
            self.store.path,
            root / "failures",
            lambda name, payload, qualifier, rid: self.scheduler.invoke(
                name, payload, qualifier=qualifier, request_id=rid, invocation_type="Event"
            ),
            policy=self._async_policy,
            workers=config.async_workers,
            retry_delays_s=config.async_retry_delays_s,
            bounds=QueueBounds(
                config.async_max_events_per_function,
                config.async_max_mb_per_function * MB,
                config.async_max_events,
                config.async_max_mb * MB,
            ),
            destination=self.destinations.send,
        )
        # Templates' schedules (faas/events/schedule.py): fired into the async queue above.
        self.schedule_book = ScheduleBook(self.store.path, lambda name, payload: self.invoke_async(name, payload))
        self.registry.subscribe(self._version_changed)
        executor.subscribe(self.launcher.route_event)
        self._closing = threading.Event()
        self._draining = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="pool-tick", daemon=True)
        self._ticker.start()
        # Deploys: a new version goes live only once its first environment has initialised.
        self.deployer = Deployer(self.store, self.registry, self.pool.warm, self.pool.add_idle, self.log_store)
        self.incoming = IncomingWatcher(root / "incoming", lambda data, name: self.deploy_zip(data, expected_name=name))
        # SQS event source mappings: each enabled one polled from here (faas/events/sqs_poller.py).
        self.event_source_mappings = EventSourceMappings(
            self.store, self.queues, self._mapping_invoke, function_exists=self.registry.live
        )
        self.event_source_mappings.start()

    @classmethod
    def create(cls, config: Config | None = None) -> Platform:
        """The production wiring: the engine `faas up` made sure of, and the runtime images it built."""
        from faas.containers.docker_executor import DockerExecutor
        from faas.containers.images import OnDemandImages

        config = config or Config.load()
        executor = DockerExecutor()
        return cls(
            config,
            executor,
            OnDemandImages(executor, say=LOG.warning),  # a runtime `faas up` did not build: built at first use
            has_bridge=executor.has_bridge(),
            memory_usage_bytes=executor.memory_usage_bytes,
        )

    # ---- functions ---------------------------------------------------------------------

    def deploy_zip(
        self,
        data: bytes,
        *,
        expected_name: str | None = None,
        source_dir: str | None = None,
        spec_override: FunctionSpec | None = None,
    ) -> DeployOutcome:
        """Validate a zip (function.yaml inside), store it, make it live once it has initialised.

        The one deploy path: the admin API, STATE/incoming/ and the management API all come
        here. On a refused package nothing changes; a version that fails to initialise keeps
        its number but the live version stays (VersionInitFailed).
        """
        self._refuse_if_closing()
        try:
            package = unpack(
                data,
                self.packages_root,
                expected_name=expected_name,
                spec_override=spec_override,
                runtime_fallback=self._fallback(),
                publish_layer=self._publish_sent_layer,
            )
            self._check_layers(package.spec, package.unzipped_size)
            self._check_image(package.spec)
        except ValidationError as e:
            if expected_name:
                self.deployer.refused(expected_name, e.message)
            raise
        if package.spec.requested_runtime:
            LOG.warning(
                "function %s: runtime %s is not available; it runs on %s (runtime_fallback in faas.yaml)",
                package.spec.name,
                package.spec.requested_runtime,
                package.spec.runtime,
            )
        version, changed = self.deployer.deploy(package, source_dir)
        if changed:
            LOG.info("function %s: version %d is live (%s)", version.name, version.version, package.sha256[:12])
        return DeployOutcome(version, changed)

    def _check_image(self, spec: FunctionSpec) -> None:
        """An image function's image must be in the engine (and have an entrypoint) before it goes live."""
        if spec.package_type == "Image" and self.launcher.image_start is not None:
            self.launcher.image_start(spec.image_uri, spec.image_config)

    def _fallback(self) -> dict[str, str]:
        """runtime_fallback, with each runtime that runtime_images maps kept as it is (it runs on that image)."""
        return {**self.config.runtime_fallback, **{r: r for r in self.config.runtime_images}}

    def check_zip(
        self, data: bytes, *, expected_name: str | None = None, spec_override: FunctionSpec | None = None
    ) -> FunctionSpec:
        """Validate a package exactly as deploy_zip would and write nothing to the package store
        (UpdateFunctionCode with DryRun): it is extracted into a scratch folder, then removed."""
        self._refuse_if_closing()
        with tempfile.TemporaryDirectory(prefix=".dry-run-", dir=self.config.state_dir) as scratch:
            package = unpack(
                data,
                Path(scratch),
                expected_name=expected_name,
                spec_override=spec_override,
                runtime_fallback=self._fallback(),
            )
            self._check_layers(package.spec, package.unzipped_size)
            return package.spec

    def _check_layers(self, spec: FunctionSpec, code_size: int) -> None:
        """Layers exist, at most 5, 250 MB with the code; a version deleted since the live
        version took it stays usable by this function (as on Lambda), not by a new one."""
        live = self.store.get_live(spec.name)
        self.layers.resolve(spec.layers, code_size, keep=live.spec.layers if live is not None else ())

    def layer_store(self) -> LayerStore:
        return self.layers

    def event_sources(self) -> EventSourceMappings:
        return self.event_source_mappings

    def _mapping_invoke(self, name: str, payload: bytes) -> Result:
        """A batch from a queue: a synchronous call of the function's live version, as Lambda's
        pollers make it."""
        self._refuse_if_closing()
        return self.scheduler.invoke(name, payload)

    def _publish_sent_layer(self, name: str, data: bytes) -> str:
        """A layer function.yaml names by folder or zip, sent with the code: a layer version
        (the same one again while its content is unchanged)."""
        return self.layers.publish(name, data, reuse=True).arn

    def remove(self, name: str) -> None:
        with self.deployer.lock(name):
            self.registry.remove(name)
            self.pool.retire_function(name)
            self.log_store.remove(name)
            self.deployer.forget(name)
        self.activity.forget(name)
        self.async_invoker.drop(name)
        self.event_source_mappings.drop_function(name)
        self.records.remove(name)

    def functions(self) -> list[FunctionVersion]:
        return self.registry.all()

    def note_in_log(self, name: str, text: str) -> None:
        self.log_store.append(name, text)

    # ---- API routes of deployed templates ------------------------------------------------

    def api_routes(self) -> RouteTable:
        return self.route_book.table

    def route_stacks(self) -> dict[str, list[Route]]:
        return self.route_book.stacks()

    def put_api_routes(
        self, stack: str, routes: list[Route], *, dry_run: bool = False, unrunnable: Mapping[str, str] | None = None
    ) -> None:
        self.route_book.put(stack, routes, dry_run=dry_run, unrunnable=unrunnable)
        self.registry.unrunnable = self.route_book.unrunnable()

    # ---- schedules of deployed templates (faas/events/schedule.py) -------------------------

    def schedules(self) -> list[dict[str, Any]]:
        return self.schedule_book.list()

    def put_schedules(self, stack: str, schedules: list[Schedule], *, dry_run: bool = False) -> None:
        self.schedule_book.put(stack, schedules, dry_run=dry_run)

    def fire_schedule(self, name: str) -> str:
        return self.schedule_book.fire(name)

    def unrunnable_functions(self) -> dict[str, dict[str, str]]:
        return self.route_book.unrunnable_by_stack()

    def versions(self, name: str) -> list[VersionInfo]:
        """Every numbered version of a function, oldest first, the live one marked."""
        return self.deployer.versions(name)

    def rollback(self, name: str, version: int | None = None) -> tuple[FunctionVersion, FunctionVersion]:
        """Make an earlier version live (default: the one before); (now live, live before)."""
        self._refuse_if_closing()
        return self.deployer.rollback(name, version)

    def deploy_problems(self) -> dict[str, DeployProblem]:
        """Functions whose latest deploy did not go live, and why (`faas ls` status)."""
        return self.deployer.problems()

    def get(self, name: str) -> FunctionVersion:
        return self.registry.live(name)

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        """The version a call with this qualifier (None, $LATEST, a number, an alias) runs."""
        return self.registry.resolve(name, qualifier)

    def version_label(self, name: str, qualifier: str | None = None) -> str:
        """$LATEST or the version number, as Lambda reports the executed version."""
        return self.registry.label(name, qualifier)

    # ---- what Lambda's management API needs beyond deploys (gateway/management.py) ----

    def all_versions(self, name: str) -> list[FunctionVersion]:
        """Every numbered version of a function, oldest first."""
        self.registry.live(name)
        return self.store.versions(name)

    def aliases(self, name: str) -> dict[str, str]:
        return self.registry.aliases(name)

    def put_alias(self, name: str, alias: str, target: str) -> None:
        self.registry.put_alias(name, alias, target)

    def delete_alias(self, name: str, alias: str) -> bool:
        return self.registry.delete_alias(name, alias)

    def settings(self, name: str) -> dict[str, object]:
        """What Lambda keeps beside code and configuration: role, tags, event invoke config."""
        return self.store.settings(name)

    def put_setting(self, name: str, key: str, value: object) -> None:
        self.store.put_setting(name, key, value)

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
        debug_port: int | None = None,
    ) -> Result:
        """A synchronous call. debug_port (faas invoke --debug, or `faas up --debug NAME`): the call
        runs in an environment of its own under a debugger listening on 127.0.0.1:debug_port."""
        self._refuse_if_closing()
        if debug_port is None and self.config.debug and self.config.debug[0] == name:
            debug_port = self.config.debug[1]
        return self.scheduler.invoke(name, payload, qualifier=qualifier, client_context=client_context, debug_port=debug_port)

    def end_debug(self, port: int | None = None) -> int:
        """End debug sessions (the one on 127.0.0.1:port, or all): the call ends, its container
        goes. Its client left, or SIGTERM's drain must not wait for an IDE that may never come."""
        ended = [env for env in self._debug_environments() if port is None or (env.debug is not None and env.debug.port == port)]
        for env in ended:
            LOG.info("environment %s: ending its debug session", env.id)
            env.destroy()
        return len(ended)

    def _debug_environments(self) -> list[Environment]:
        """The environments of debug calls: each a one-off, outside the pool's lists."""
        return [env for env in self.launcher.live_environments() if env.debug is not None]

    def invoke_async(self, name: str, payload: bytes, *, qualifier: str | None = None, client_context: str | None = None) -> str:
        """Queue an Event call durably and return its request id. The function must exist now
        (as on Lambda, where Invoke checks it before answering 202); the client context is
        dropped, as Lambda passes it to synchronous calls only."""
        self._refuse_if_closing()
        self.registry.resolve(name, qualifier)
        check_payload(len(payload), "Event")
        return self.async_invoker.submit(name, qualifier, payload)

    def calls(self, name: str, *, limit: int = 50) -> list[dict[str, object]]:
        """The function's most recent invocation records, newest first."""
        self.registry.live(name)
        return self.records.list(name, limit)

    def failures(self, name: str, *, limit: int = 50) -> list[dict[str, object]]:
        """Records of the function's async events that failed every attempt or aged out."""
        return self.async_invoker.failures(name, limit)

    def _async_policy(self, name: str) -> Policy:
        """The function's event invoke config (put-function-event-invoke-config), else the defaults."""
        found = self.store.settings(name).get("event_invoke_config") or {}
        return Policy(
            max_retries=int(found.get("MaximumRetryAttempts", 2)),
            max_age_s=float(found.get("MaximumEventAgeInSeconds", self.config.async_max_event_age_s)),
        )

    def follow_logs(self, name: str, cursor: str | None, *, wait_s: float = 20.0, tail: int = 200) -> tuple[str, str]:
        """(new log text, cursor) for `faas logs --follow`: without a cursor the last `tail`
        lines, else what was written after the cursor, waiting up to wait_s for it."""
        self.registry.live(name)
        path = self.log_store.path(name)
        if cursor is None:
            self.log_store.flush()
            data, after = log_follow.start(path, tail)
        else:
            data, after = log_follow.wait_since(path, cursor, wait_s)
        return data.decode("utf-8", "replace"), after

    def logs(self, name: str, *, tail: int = 200) -> list[str]:
        self.registry.live(name)
        return self.log_store.tail(name, tail)

    def environments(self) -> list[dict[str, object]]:
        return [self._snapshot(env) for env in self._listed_environments()]

    def _listed_environments(self) -> list[Environment]:
        """The pool's environments and the debug calls' one-offs (`faas ps` shows both)."""
        listed = self.pool.environments()
        return listed + [env for env in self._debug_environments() if env not in listed]

    @staticmethod
    def _snapshot(env: Environment) -> dict[str, object]:
        snap = env.snapshot()
        if env.debug is not None and snap["state"] != "dead":
            snap.update(state="debugging", debug_port=env.debug.port)
        return snap

    def pool_state(self) -> dict[str, object]:
        """`faas ps` and GET /system/pool: every environment with its function, version, state
        (starting, idle, busy, pre-started), age, calls, memory used and the keep-alive that
        applies to it; the memory budget; how often a pre-started container was there to take."""
        now = time.monotonic()
        usage = self._memory_usage_bytes
        rows: list[dict[str, object]] = []
        for env in self._listed_environments():
            snap = self._snapshot(env)
            name = snap["function"]
            state = {"ready": "idle", "prestarted": "pre-started"}.get(str(snap["state"]), str(snap["state"]))
            limit = env.reserved_mb or (env.version.spec.memory if env.version else PRESTARTED_MEMORY_MB)
            used = usage(env.container_id) if usage is not None and env.container_id else 0
            rows.append(
                {
                    **snap,
                    "state": state,
                    "age_s": round(now - env.created_at, 1),
                    "memory_used_mb": round(used / (1024 * 1024), 1),
                    "memory_mb": limit,
                    "keep_alive_s": self.pool.idle_times.keep_alive_s(str(name)) if name else None,
                }
            )
        rows.sort(key=lambda r: (r["function"] is None, str(r["function"] or r["runtime"]), str(r["state"]), str(r["id"])))
        return {
            "environments": rows,
            "memory_budget_mb": {"used": self.budget.used_mb, "total": self.budget.total_mb},
            "prestarted": {"taken": self.prestarted.taken_total, "missed": self.prestarted.missed_total},
            "keep_alive_default_s": self.pool.keep_alive_s,
        }

    # ---- observability (/metrics, /ui, `faas top`) --------------------------------------

    def async_queue_depth(self) -> int:
        """Asynchronous (Event) calls queued or running."""
        return self.async_invoker.pending()

    def metrics_exposition(self) -> tuple[bytes, str]:
        return self.metrics.exposition()

    def activity_summary(self, window_s: float) -> dict[str, dict[str, Any]]:
        return self.activity.summary(window_s)

    def recent_invocations(self, since: int, limit: int, function: str | None) -> tuple[int, list[dict[str, Any]]]:
        return self.activity.recent(since, limit, function)

    def latency_series(self, function: str, seconds: int) -> dict[str, list[Any]]:
        return self.activity.series(function, seconds)

    def _containers(self) -> Iterable[tuple[str, str]]:
        """(function, container id) of every live environment, for the memory gauge; a
        pre-started container not yet given to a function counts under function=""."""
        return [
            (env.version.name if env.version is not None else "", env.container_id)
            for env in self.launcher.live_environments()
            if env.container_id
        ]

    # ---- lifecycle ---------------------------------------------------------------------

    def _version_changed(self, old: FunctionVersion | None, new: FunctionVersion | None) -> None:
        if old is not None and new is None:
            self.pool.retire_function(old.name)
        elif old is not None and new is not None and new.key != old.key:
            self.pool.retire(old.key)

    def begin_drain(self) -> None:
        """SIGTERM: from now on new calls get 503 ShuttingDown; calls in flight go on."""
        self._draining.set()
        self.end_debug()  # a session may wait an hour for its IDE: the drain does not
        # Queued events stay queued for the next start: were they still taken now, the calls in
        # flight would never drop to none and the drain would last until the queue is empty.
        self.async_invoker.stop()
        self.event_source_mappings.stop()  # the same for queues: unreceived messages wait in them

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait (bounded) until no call is in flight; True if none is."""
        deadline = time.monotonic() + timeout_s
        while self.limiter.in_flight() and time.monotonic() < deadline:
            if self._draining.is_set():
                self.end_debug()  # also those whose container was still starting when the drain began
            time.sleep(0.05)
        return not self.limiter.in_flight()

    def _refuse_if_closing(self) -> None:
        if self._closing.is_set() or self._draining.is_set():
            raise ShuttingDown("faas is shutting down and takes no new calls")

    def _tick_loop(self) -> None:
        while not self._closing.wait(TICK_S):
            try:
                live = self.registry.all()
                self.pool.tick(live)
                self.prestarted.reconcile({fv.spec.runtime for fv in live})
            except Exception:  # the tick must survive anything one environment does
                LOG.exception("pool tick failed")

    def shutdown(self, wait_s: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish (up to their timeout), remove every container."""
        if self._closing.is_set():
            return
        self._closing.set()
        self.incoming.close()
        self.schedule_book.close()
        self.async_invoker.stop()
        longest = max((fv.spec.timeout for fv in self.registry.all()), default=3)
        self.pool.shutdown(longest + 1.0 if wait_s is None else wait_s)
        self.async_invoker.close()
        self.event_source_mappings.close()
        self.records.close()
        for env in self.launcher.live_environments():
            env.destroy()
        self.executor.remove_labelled({"faas.state": self.label})
        self.log_store.close()
        self.pump.close()
        self.store.close()
        self.executor.close()
