"""The Docker executor: the only module that imports docker.

Containers are created with the low-level API (one create and one start request; the
high-level containers.run() adds an inspect), and engine and HTTP errors are translated
into faas.errors where they enter. Memory peaks are read from the container's cgroup
files, not asked of the engine: that is on every call's path.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit

from faas.containers.executor import (
    OPT_ROOT,
    RUNTIME_DIR_IN_CONTAINER,
    SANDBOX_UID,
    TASK_ROOT,
    ContainerSpec,
    EventCallback,
    state_label,
)
from faas.errors import EngineError, ImageBuildError

if TYPE_CHECKING:
    from faas.config import Config

LOG = logging.getLogger(__name__)

MANAGED_LABEL = "faas.managed"
PIDS_LIMIT = 1024
NOFILE_LIMIT = 1024
CPU_PERIOD_US = 100_000
POOL_SIZE = 64  # HTTP connections kept to the engine: the gateway starts containers from many threads
CGROUP_ROOT = Path("/sys/fs/cgroup")
_EVENT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class DockerExecutor:
    """faas.containers.executor.Executor on a Docker engine."""

    def __init__(self, client: docker.DockerClient | None = None, *, base_url: str | None = None) -> None:
        if client is None:
            with _translate("connecting to the Docker engine"):
                if base_url:
                    client = docker.DockerClient(base_url=base_url, max_pool_size=POOL_SIZE)
                else:
                    client = docker.from_env(max_pool_size=POOL_SIZE)
        self.client = client
        self.api = client.api
        self._callbacks: list[EventCallback] = []
        self._events_thread: threading.Thread | None = None
        self._events_stream: Any = None  # the engine's event stream, closed to stop the reader
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._bridge: bool | None = None
        self._cgroup_dirs: dict[str, Path] = {}
        self._peak_fds: dict[str, int] = {}

    # --- containers -------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        """Create and start one hardened container; returns its full id."""
        memory = f"{spec.memory_mb}m"
        binds: dict[str, Mapping[str, str]] = {str(spec.runtime_dir): {"bind": RUNTIME_DIR_IN_CONTAINER, "mode": "ro"}}
        if spec.mount_task:  # not for a container-image function: its code is in its image
            binds[str(spec.task_dir)] = {"bind": TASK_ROOT, "mode": "ro"}
        if spec.opt_dir is not None:  # filled when the environment is given its function, like /var/task
            binds[str(spec.opt_dir)] = {"bind": OPT_ROOT, "mode": "ro"}
        host_config = self.api.create_host_config(
            binds=binds,
            read_only=True,
            # Lambda lets a function run programs from /tmp: exec, unlike Docker's tmpfs default.
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={spec.tmp_mb}m,mode=1777"},
            mem_limit=memory,
            memswap_limit=memory,
            cpu_shares=spec.cpu_shares,
            cpu_period=CPU_PERIOD_US if spec.cpu_quota_us else None,
            cpu_quota=spec.cpu_quota_us or None,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=PIDS_LIMIT,
            ulimits=[Ulimit(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT)],
            network_mode=spec.network,
            log_config=LogConfig(type="none"),
            auto_remove=False,
            init=False,
        )
        labels = {MANAGED_LABEL: "1", "faas.env": spec.env_id, **spec.labels}
        with _translate(f"starting a container for environment {spec.env_id} ({spec.image})"):
            created = self.api.create_container(
                spec.image,
                # spec.command replaces the image's whole startup (its ENTRYPOINT), not just CMD.
                entrypoint=list(spec.command) or None,
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                environment=dict(spec.environment),
                labels=labels,
                hostname="faas",
                working_dir=spec.working_dir,
                host_config=host_config,
            )
            container_id = created["Id"]
            try:
                self.api.start(container_id)
            except BaseException:
                self._remove_quietly(container_id)
                raise
        return container_id

    def kill(self, container_id: str) -> None:
        """Kill and remove; quiet about a container that is already gone or being removed."""
        self._cgroup_dirs.pop(container_id, None)
        self._close_peak_fds(container_id)
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if e.status_code == 409 and "in progress" in str(e):
                return  # another caller is removing it already
            raise EngineError(f"removing container {container_id[:12]}: {_explain(e)}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"removing container {container_id[:12]}: {_explain(e)}") from e

    def update_resources(self, container_id: str, memory_mb: int, cpu_shares: int, cpu_quota_us: int | None) -> None:
        memory = f"{memory_mb}m"
        quota: dict[str, Any] = {"cpu_period": CPU_PERIOD_US, "cpu_quota": cpu_quota_us} if cpu_quota_us else {}
        with _translate(f"resizing container {container_id[:12]} to {memory_mb} MB"):
            self.api.update_container(container_id, mem_limit=memory, memswap_limit=memory, cpu_shares=cpu_shares, **quota)

    def memory_peak_bytes(self, container_id: str) -> int:
        """Peak memory of the container's cgroup, read from the cgroup file; 0 if unknown.

        Called after every call (the REPORT line): the file stays open and is re-read with
        pread, one system call, no path lookup and no engine round trip.
        """
        fd = self._peak_fds.get(container_id)
        if fd is None:
            path = _find_cgroup_dir(container_id)
            if path is None:
                return 0
            self._cgroup_dirs[container_id] = path
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                try:
                    fd = os.open(path / name, os.O_RDONLY)
                    break
                except OSError:
                    continue
            else:
                return 0
            if len(self._peak_fds) > 4096:  # containers that died without kill(): start over
                self._close_peak_fds()
            self._peak_fds[container_id] = fd
        try:
            return int(os.pread(fd, 64, 0).split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def _close_peak_fds(self, container_id: str | None = None) -> None:
        ids = [container_id] if container_id else list(self._peak_fds)
        for cid in ids:
            fd = self._peak_fds.pop(cid, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def memory_usage_bytes(self, container_id: str) -> int:
        """Memory the container's cgroup uses now (for /metrics, read at scrape time); 0 if unknown."""
        path = self._cgroup_dirs.get(container_id) or _find_cgroup_dir(container_id)
        if path is None:
            return 0
        for name in ("memory.usage_in_bytes", "memory.current"):
            try:
                return int((path / name).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return 0

    def remove_labelled(self, labels: dict[str, str]) -> int:
        """Remove every container (running or not) carrying all these labels."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with _translate("listing labelled containers"):
            found = self.api.containers(all=True, filters=filters, quiet=True)
        for item in found:
            self.kill(item["Id"])
        return len(found)

    def container_state(self, container_id: str) -> dict | None:
        """The engine's State of a container (Running, ExitCode, OOMKilled, ...); None if gone."""
        try:
            return self.api.inspect_container(container_id)["State"]
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"inspecting container {container_id[:12]}: {_explain(e)}") from e

    def has_bridge(self) -> bool:
        """Whether the engine has a 'bridge' network (not so for a dockerd started with --bridge=none)."""
        if self._bridge is None:
            with _translate("listing networks"):
                self._bridge = any(n.get("Name") == "bridge" for n in self.api.networks(names=["bridge"]))
        return self._bridge

    # --- events -----------------------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> None:
        """Call callback("die"|"oom", container_id) from one background thread for faas containers."""
        with self._lock:
            self._callbacks.append(callback)
            if self._events_thread is None:
                self._events_thread = threading.Thread(target=self._events_loop, name="faas-docker-events", daemon=True)
                self._events_thread.start()

    def _events_loop(self) -> None:
        failures = 0
        since: int | None = None  # seconds; resume from the last event seen after a reconnect
        last_nano = 0
        while not self._closed.is_set():
            try:
                stream = self.api.events(
                    since=since,
                    filters={"type": ["container"], "event": ["die", "oom"], "label": [f"{MANAGED_LABEL}=1"]},
                    decode=True,
                )
                self._events_stream = stream
                if self._closed.is_set():
                    stream.close()
                    break
                failures = 0
                for event in stream:
                    nano = int(event.get("timeNano") or 0)
                    if nano and nano <= last_nano:
                        continue  # replayed by `since` after a reconnect
                    last_nano = max(last_nano, nano)
                    since = int(event.get("time") or time.time())
                    action = event.get("Action") or event.get("status") or ""
                    container_id = (event.get("Actor") or {}).get("ID") or event.get("id") or ""
                    if action in ("die", "oom") and container_id:
                        for callback in list(self._callbacks):
                            try:
                                callback(action, container_id)
                            except Exception:
                                LOG.exception("event callback failed for %s of container %s", action, container_id[:12])
                if self._closed.is_set():
                    break
                raise ConnectionError("the engine closed the event stream")
            except Exception as e:  # the engine restarted or went away: reconnect with backoff
                if self._closed.is_set():
                    break
                delay = _EVENT_BACKOFF_S[min(failures, len(_EVENT_BACKOFF_S) - 1)]
                failures += 1
                if since is None:
                    since = int(time.time())
                LOG.warning("docker event stream lost (%s); reconnecting in %.1f s", _explain(e), delay)
                self._closed.wait(delay)
            finally:
                self._events_stream = None

    def close(self) -> None:
        """Stop the event thread and release the client's connections."""
        self._closed.set()
        self._close_peak_fds()
        stream = self._events_stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
        thread = self._events_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        try:
            self.client.close()
        except Exception:
            pass

    # --- images (used by faas.containers.images) -------------------------------------------------

    def image_exists(self, tag: str) -> bool:
        try:
            self.api.inspect_image(tag)
            return True
        except docker.errors.ImageNotFound:
            return False
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"inspecting image {tag}: {_explain(e)}") from e

    def image_inspect(self, tag: str) -> dict[str, Any]:
        """The engine's description of an image (its Config: Entrypoint, Cmd, WorkingDir, ...)."""
        with _translate(f"inspecting image {tag}"):
            return dict(self.api.inspect_image(tag))

    def image_size(self, tag: str) -> int:
        with _translate(f"inspecting image {tag}"):
            return int(self.api.inspect_image(tag).get("Size") or 0)

    def import_image(self, tar_path: Path, tag: str) -> None:
        """docker import of a root filesystem tarball as repository:tag."""
        repository, _, version = tag.rpartition(":")
        with _translate(f"docker import {tar_path} as {tag}"):
            self.api.import_image_from_file(str(tar_path), repository=repository, tag=version)
        if not self.image_exists(tag):
            raise ImageBuildError(f"docker import of {tar_path} did not produce {tag}")

    def build_image(
        self,
        context_dir: Path,
        tag: str,
        buildargs: dict[str, str],
        on_line: Callable[[str], None],
        *,
        dockerfile: str = "Dockerfile",
        labels: dict[str, str] | None = None,
    ) -> None:
        """docker build, streaming each output line to on_line; ImageBuildError with the tail on failure."""
        tail: collections.deque[str] = collections.deque(maxlen=40)
        with _translate(f"docker build of {tag}"):
            stream = self.api.build(
                path=str(context_dir),
                dockerfile=dockerfile,
                tag=tag,
                buildargs=buildargs,
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",  # nothing to download: the base image has everything
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    tail.append(detail.rstrip())
                    raise ImageBuildError(f"docker build of {tag} failed: {detail.strip()}\n" + "\n".join(tail))
                text = chunk.get("stream") or chunk.get("status") or ""
                for line in text.splitlines():
                    if line.strip():
                        tail.append(line)
                        on_line(line)
        if not self.image_exists(tag):
            raise ImageBuildError(f"docker build did not produce {tag}:\n" + "\n".join(tail))

    def remove_image(self, tag: str) -> None:
        try:
            self.api.remove_image(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"removing image {tag}: {_explain(e)}") from e

    # --- the gateway's own image and compose service (used by faas.containers.gateway_image, faas.cli.compose)

    def tag_image(self, source: str, target: str) -> None:
        repository, _, version = target.rpartition(":")
        with _translate(f"tagging {source} as {target}"):
            self.api.tag(source, repository, version)

    def image_tags(self, repository: str) -> list[str]:
        """Every repository:tag of the images in repository."""
        with _translate(f"listing images of {repository}"):
            found = self.api.images(name=repository)
        return sorted(t for image in found for t in (image.get("RepoTags") or []) if t.rpartition(":")[0] == repository)

    def remove_unused_image(self, tag: str) -> bool:
        """Untag/remove an image unless a container uses it; True if it went."""
        try:
            self.api.remove_image(tag, force=False)
            return True
        except docker.errors.ImageNotFound:
            return True
        except docker.errors.APIError as e:
            if e.status_code == 409:  # a container (maybe a running compose service) still uses it
                return False
            raise EngineError(f"removing image {tag}: {_explain(e)}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"removing image {tag}: {_explain(e)}") from e

    def engine_arch(self) -> str:
        """The engine's machine (x86_64, aarch64): what the images it runs are built for."""
        with _translate("asking the engine for its architecture"):
            return str(self.api.info().get("Architecture") or "")

    def find_labelled(self, labels: dict[str, str]) -> list[str]:
        """Ids of the containers (running or not) carrying all these labels."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with _translate("listing labelled containers"):
            return [item["Id"] for item in self.api.containers(all=True, filters=filters, quiet=True)]

    def container_log_tail(self, container_id: str, lines: int = 20) -> str:
        """The last lines a container printed (stdout and stderr), for progress and error messages."""
        try:
            data = self.api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except docker.errors.NotFound:
            return ""
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineError(f"reading the log of container {container_id[:12]}: {_explain(e)}") from e
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    # --- helpers ----------------------------------------------------------------------

    def _remove_quietly(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except Exception:
            LOG.warning("could not remove container %s after a failed start", container_id[:12])


def remove_state_containers(config: Config) -> int:
    """Remove every container of this state dir: the gateway's arbiter calls it on exit, for
    whatever a dead worker left behind."""
    executor = DockerExecutor()
    try:
        return executor.remove_labelled({"faas.state": state_label(config.state_dir)})
    finally:
        executor.close()


def _find_cgroup_dir(container_id: str) -> Path | None:
    """The container's memory cgroup: cgroup v1 (cgroupfs or systemd driver) or v2."""
    for path in (
        CGROUP_ROOT / "memory" / "docker" / container_id,
        CGROUP_ROOT / "memory" / "system.slice" / f"docker-{container_id}.scope",
        CGROUP_ROOT / "system.slice" / f"docker-{container_id}.scope",
        CGROUP_ROOT / "docker" / container_id,
    ):
        if path.is_dir():
            return path
    return None


def _explain(e: BaseException) -> str:
    if isinstance(e, docker.errors.APIError):
        return str(e.explanation or e)
    return str(e) or type(e).__name__


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Docker and HTTP errors become EngineError, with what was being done."""
    try:
        yield
    except docker.errors.DockerException as e:
        raise EngineError(f"{what}: {_explain(e)}") from e
    except requests.exceptions.RequestException as e:
        raise EngineError(f"{what}: the Docker engine did not answer ({e})") from e
