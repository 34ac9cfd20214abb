"""Starts environments for a function version: the container's shape, Lambda's variables, the init wait.

Everything function-specific (code, handler, variables, identity) reaches the container
after it starts: code through its own /var/task folder, the rest in the first message on its
socket. So the same path serves a container started for this call and one started ahead of
time, and the function cannot tell the two apart.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faas.containers.executor import (
    LOG_FIFO_NAME,
    RUNTIME_DIR_IN_CONTAINER,
    SOCKET_NAME,
    TASK_ROOT,
    ContainerSpec,
    Executor,
)
from faas.containers.image_functions import FORWARDER_NAME, ImageStart, place_forwarder
from faas.errors import EngineError
from faas.invoke.aws_relay import CONTAINER_PORT as AWS_RELAY_PORT
from faas.invoke.aws_relay import SOCKET_NAME as AWS_SOCKET_NAME
from faas.invoke.aws_relay import AwsRelay
from faas.invoke.environment import Environment, new_env_id
from faas.invoke.pool import InitFailed
from faas.logs.pump import LogPump
from faas.models import FunctionVersion, InitType, StartType

if TYPE_CHECKING:
    from faas.invoke.prestart import PrestartedContainers

LOG = logging.getLogger(__name__)

LAMBDA_CPU_MB = 1769  # memory that buys one full vCPU on Lambda
PRESTARTED_MEMORY_MB = 128  # pre-started containers start at the smallest size and are resized up
PRESTARTED_TMP_MB = 512  # a tmpfs cannot be resized: only functions with the default /tmp use them
RUNTIME_LABELS = {
    "python3.11": "python:3.11",
    "python3.13": "python:3.13",
    "python3.14": "python:3.14",
    "nodejs20.x": "nodejs:20",
    "nodejs22.x": "nodejs:22",
    "nodejs24.x": "nodejs:24",
    "java21": "java:21",
    "provided": "provided:al2023",
    "provided.al2": "provided:al2",
    "provided.al2023": "provided:al2023",
    "ruby3.3": "ruby:3.3",
}
# Lambda sets AWS_EXECUTION_ENV for its managed runtimes, not for the OS-only (provided) ones.
EXECUTION_ENV = {runtime: f"AWS_Lambda_{runtime}" for runtime in RUNTIME_LABELS if not runtime.startswith("provided")}
# Lambda gives every function its role's temporary credentials; here they are stand-ins that
# the SDKs accept (the gateway checks no signature), never the gateway's API token.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAFAASLOCAL0000000",
    "AWS_SECRET_ACCESS_KEY": "faas-local-stand-in-secret-access-key000",
    "AWS_SESSION_TOKEN": "faas-local-stand-in-session-token",
}
# Where the container's forwarder reaches the host half of the Lambda API relay (aws_relay.py).
AWS_SOCKET_IN_CONTAINER = f"{RUNTIME_DIR_IN_CONTAINER}/{AWS_SOCKET_NAME}"


def cpu_shares(memory_mb: int) -> int:
    # Docker's default weight is 1024 for one CPU's worth; Lambda gives one vCPU at 1769 MB.
    return max(2, memory_mb * 1024 // LAMBDA_CPU_MB)


def cpu_quota_us(memory_mb: int) -> int:
    return max(1000, memory_mb * 100_000 // LAMBDA_CPU_MB)


class Launcher:
    """Builds and starts one Environment per call to launch()."""

    def __init__(
        self,
        executor: Executor,
        pump: LogPump,
        envs_root: Path,
        image_for: Callable[[str], str],
        label: str,
        *,
        has_bridge: bool = False,
        region: str = "us-east-1",
        gateway: tuple[str, int] | None = None,
        aws_endpoints: dict[str, str] | None = None,
    ) -> None:
        """gateway: the gateway's (host, port), which functions reach as AWS_ENDPOINT_URL_LAMBDA
        (None: no Lambda endpoint); aws_endpoints: AWS_ENDPOINT_URL[_<SERVICE>] passed on as they are."""
        self.executor = executor
        self.pump = pump
        self.envs_root = envs_root
        self.image_for = image_for
        self.label = label
        self.has_bridge = has_bridge
        self.region = region
        self.gateway = gateway
        self.aws_endpoints = dict(aws_endpoints or {})
        self._relays: dict[str, AwsRelay] = {}
        self._by_container: dict[str, Environment] = {}
        self._lock = threading.Lock()
        self._warned_network: set[str] = set()
        self.on_dead: Callable[[Environment], None] | None = None
        # The folders of a version's layers, in order (faas/deploy/layers.py); none by default.
        self.layer_dirs: Callable[[FunctionVersion], tuple[Path, ...]] = lambda fv: ()
        # Container-image functions and faas.yaml's runtime_images (docs/image-functions.md): set by
        # the platform. image_start(image, ImageConfig) reads the image's entrypoint; forwarder()
        # is the static binary that bridges its runtime client to the Runtime API socket.
        self.image_start: Callable[[str, Mapping[str, Any]], ImageStart] | None = None
        self.forwarder: Callable[[], Path] | None = None
        self.runtime_images: Mapping[str, str] = {}
        # Where pre-started containers come from (faas.invoke.prestart.PrestartedContainers); None: always cold.
        self.prestarted: PrestartedContainers | None = None
        envs_root.mkdir(parents=True, exist_ok=True)

    def network_for(self, fv: FunctionVersion) -> str:
        net = fv.spec.network
        if net == "bridge" and not self.has_bridge:
            if fv.name not in self._warned_network:
                self._warned_network.add(fv.name)
                LOG.warning("function %s: the engine has no bridge network; running it with network 'none'", fv.name)
            return "none"
        return net

    def runs_image(self, fv: FunctionVersion) -> str | None:
        """The image a function runs its own runtime client from: its ImageUri, or the image
        faas.yaml's runtime_images maps its runtime to; None for faas's own runtime images."""
        if fv.spec.package_type == "Image":
            return fv.spec.image_uri
        return self.runtime_images.get(fv.spec.runtime)

    def image_container_spec(self, env: Environment, fv: FunctionVersion, image: str, variables: dict[str, str]) -> ContainerSpec:
        """A container of an image that follows Lambda's contract: its entrypoint and command
        (or ImageConfig's) started by the forwarder, Lambda's variables set at creation."""
        if self.image_start is None or self.forwarder is None:
            raise EngineError("this gateway cannot run container images")
        spec = fv.spec
        is_image = spec.package_type == "Image"
        # A runtime_images image is one of Lambda's base images: its CMD is the handler.
        config: Mapping[str, Any] = spec.image_config if is_image else {"Command": (spec.handler,)}
        start = self.image_start(image, config)
        place_forwarder(self.forwarder(), env.runtime_dir)
        base = self.container_spec(env, fv, image)
        environment = {**base.environment, **variables, "FAAS_LOG_FIFO": f"{RUNTIME_DIR_IN_CONTAINER}/{LOG_FIFO_NAME}"}
        if is_image:
            environment.pop("LAMBDA_TASK_ROOT", None)  # the image's own ENV says where its code is
            environment.pop("LAMBDA_RUNTIME_DIR", None)
            if not spec.handler:
                environment.pop("_HANDLER", None)
        return ContainerSpec(
            env_id=base.env_id,
            image=image,
            task_dir=base.task_dir,
            runtime_dir=base.runtime_dir,
            memory_mb=base.memory_mb,
            cpu_shares=base.cpu_shares,
            cpu_quota_us=base.cpu_quota_us,
            tmp_mb=base.tmp_mb,
            network=base.network,
            labels=base.labels,
            command=(f"{RUNTIME_DIR_IN_CONTAINER}/{FORWARDER_NAME}", "--", *start.argv),
            environment=environment,
            opt_dir=None if is_image else base.opt_dir,
            mount_task=not is_image,
            working_dir=start.working_dir,
        )

    def container_spec(self, env: Environment, fv: FunctionVersion, image: str | None = None) -> ContainerSpec:
        spec = fv.spec
        network = self.network_for(fv)
        environment = self._socket_variables(network)
        if network == "host":
            # A TCP Runtime API (runtimes/provided/launch) is then on the host's loopback: it
            # must relay only the container's own processes (runtimes/provided/peer-relay).
            environment["FAAS_RUNTIME_PEERS"] = "container"
        return ContainerSpec(
            env_id=env.id,
            image=image or self.image_for(spec.runtime),
            task_dir=env.task_dir,
            runtime_dir=env.runtime_dir,
            memory_mb=spec.memory,
            cpu_shares=cpu_shares(spec.memory),
            cpu_quota_us=cpu_quota_us(spec.memory) if spec.cpu == "lambda" else None,
            tmp_mb=spec.ephemeral_storage,
            network=network,
            labels={
                "faas.managed": "1",
                "faas.state": self.label,
                "faas.env": env.id,
                "faas.function": spec.name,
                "faas.version": str(fv.version),
            },
            environment=environment,
            opt_dir=env.opt_dir,
        )

    def _socket_variables(self, network: str) -> dict[str, str]:
        """The sockets the runtime's bootstrap serves: the Runtime API's, and the Lambda API
        relay's (a TCP forwarder on the container's own loopback) where the container has its own."""
        out = {"FAAS_RUNTIME_SOCKET": f"{RUNTIME_DIR_IN_CONTAINER}/{SOCKET_NAME}"}
        if network != "host" and self.gateway is not None:
            out["FAAS_AWS_SOCKET"] = AWS_SOCKET_IN_CONTAINER
        return out

    def lambda_endpoint(self, network: str) -> str | None:
        """AWS_ENDPOINT_URL_LAMBDA for a function on this network. With `host` the gateway's own
        port is on the container's loopback already (no relay, so no new port on the host)."""
        if self.gateway is None:
            return None
        if network == "host":
            host, port = self.gateway
            if host in ("0.0.0.0", "::", ""):
                host = "127.0.0.1"
            return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        return f"http://127.0.0.1:{AWS_RELAY_PORT}"

    def _open_relay(self, env: Environment, network: str) -> None:
        if self.gateway is None or network == "host" or env.id in self._relays:
            return
        relay = AwsRelay(env.runtime_dir / AWS_SOCKET_NAME, self.gateway, label=env.id)
        with self._lock:
            self._relays[env.id] = relay

    @property
    def prestarted_network(self) -> str:
        return "bridge" if self.has_bridge else "none"

    def prestarted_compatible(self, fv: FunctionVersion) -> bool:
        """Only what can be changed in a running container may differ from a pre-started one."""
        return fv.spec.ephemeral_storage == PRESTARTED_TMP_MB and self.network_for(fv) == self.prestarted_network

    def start_prestarted(self, runtime: str) -> Environment:
        """Start a container of a runtime with no function in it; its bootstrap waits on the socket."""
        env_id = new_env_id()
        env = Environment(env_id, self.envs_root / env_id, self.executor, self.pump, on_dead=self._dead)
        env.runtime = runtime
        self._open_relay(env, self.prestarted_network)
        env.start(
            ContainerSpec(
                env_id=env.id,
                image=self.image_for(runtime),
                task_dir=env.task_dir,
                runtime_dir=env.runtime_dir,
                memory_mb=PRESTARTED_MEMORY_MB,
                cpu_shares=cpu_shares(PRESTARTED_MEMORY_MB),
                cpu_quota_us=None,
                tmp_mb=PRESTARTED_TMP_MB,
                network=self.prestarted_network,
                labels={"faas.managed": "1", "faas.state": self.label, "faas.env": env.id, "faas.runtime": runtime},
                environment=self._socket_variables(self.prestarted_network),
                opt_dir=env.opt_dir,  # empty until it is given a function with layers
            )
        )
        assert env.container_id is not None
        with self._lock:
            self._by_container[env.container_id] = env
        return env

    def lambda_environment(self, fv: FunctionVersion, env_id: str, init_type: str = InitType.ON_DEMAND) -> dict[str, str]:
        """The variables Lambda sets for a function, then the function's own."""
        spec = fv.spec
        day = time.strftime("%Y/%m/%d", time.gmtime())
        out = {
            "_HANDLER": spec.handler,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": str(fv.version),
            "AWS_LAMBDA_INITIALIZATION_TYPE": str(init_type),  # a plain string in the container's variables
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{day}/[{fv.version}]{env_id}{secrets.token_hex(10)}",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "LAMBDA_TASK_ROOT": TASK_ROOT,
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "TZ": ":UTC",
            **LOCAL_CREDENTIALS,
            **self.aws_endpoints,
        }
        endpoint = self.lambda_endpoint(self.network_for(fv))
        if endpoint is not None:
            out["AWS_ENDPOINT_URL_LAMBDA"] = endpoint
        if EXECUTION_ENV.get(spec.runtime):
            out["AWS_EXECUTION_ENV"] = EXECUTION_ENV[spec.runtime]
        out.update(spec.environment)
        return out

    def launch(self, fv: FunctionVersion, init_type: str = InitType.ON_DEMAND, debug_port: int | None = None) -> Environment:
        """An initialised environment for fv: a pre-started container if one fits, else a new one.

        Raises InitFailed when the function cannot initialise, EngineError when the engine fails.
        debug_port: a one-off environment under a debugger (always a new container).
        """
        image = self.runs_image(fv)
        if self.prestarted is not None and image is None and self.prestarted_compatible(fv) and debug_port is None:
            container = self.prestarted.take(fv.spec.runtime)
            if container is not None:
                env = self._specialise_prestarted(container, fv, init_type)
                if env is not None:
                    return env
        env_id = new_env_id()
        env = Environment(env_id, self.envs_root / env_id, self.executor, self.pump, on_dead=self._dead)
        env.runtime = fv.spec.runtime
        variables = self.lambda_environment(fv, env.id, init_type)
        try:
            env.specialise(fv, variables, fv.spec.handler, debug_port, self.layer_dirs(fv))
            shape = self.container_spec(env, fv) if image is None else self.image_container_spec(env, fv, image, variables)
        except BaseException:
            env.destroy()
            raise
        self._open_relay(env, self.network_for(fv))
        env.start(shape)
        assert env.container_id is not None
        with self._lock:
            self._by_container[env.container_id] = env
        LOG.debug("environment %s of %s: container %s started", env.id, fv.key, env.container_id[:12])
        failure = env.wait_ready()
        if failure is not None:
            LOG.info("environment %s of %s: init failed: %s", env.id, fv.key, failure.error_type)
            raise InitFailed(failure, env.init_duration_ms)
        return env

    def _specialise_prestarted(self, env: Environment, fv: FunctionVersion, init_type: str) -> Environment | None:
        """Give a pre-started container its function; None if the engine would not resize it."""
        spec = fv.spec
        assert env.container_id is not None
        if spec.memory != PRESTARTED_MEMORY_MB or spec.cpu == "lambda":
            try:
                self.executor.update_resources(
                    env.container_id,
                    spec.memory,
                    cpu_shares(spec.memory),
                    cpu_quota_us(spec.memory) if spec.cpu == "lambda" else None,
                )
            except EngineError as e:
                LOG.warning("environment %s: could not resize pre-started container for %s: %s", env.id, fv.key, e)
                env.destroy()
                return None
        env.start_type = StartType.PRESTARTED
        try:
            env.specialise(fv, self.lambda_environment(fv, env.id, init_type), spec.handler, layer_dirs=self.layer_dirs(fv))
        except BaseException:
            env.destroy()
            raise
        failure = env.wait_ready()
        if failure is not None:
            LOG.info("environment %s of %s: init failed: %s", env.id, fv.key, failure.error_type)
            raise InitFailed(failure, env.init_duration_ms)
        LOG.debug("environment %s: pre-started container now serves %s", env.id, fv.key)
        return env

    def route_event(self, event: str, container_id: str) -> None:
        """Engine events (die/oom) arrive here from the executor's thread."""
        env = self._by_container.get(container_id)
        if env is not None:
            env.on_container_event(event)

    def _dead(self, env: Environment) -> None:
        with self._lock:
            relay = self._relays.pop(env.id, None)
            if env.container_id:
                self._by_container.pop(env.container_id, None)
        if relay is not None:
            relay.close()
        if self.on_dead:
            self.on_dead(env)

    def live_environments(self) -> list[Environment]:
        with self._lock:
            return list(self._by_container.values())
