"""The switch from one version of a function to another, and what went wrong on the way.

A new version goes live only after its first environment has initialised: that
environment is started while the old version keeps serving, handed to the pool as idle,
and only then does the registry move the live pointer (one dict assignment, so every
call sees the old version or the new one, never neither). The registry's listener then
retires the old version's environments: idle ones at once, busy ones when their call
ends, so calls in flight finish where they started and no call waits on a cold start.

A version whose initialisation fails keeps its number but never goes live; the failure
is kept here for `faas ls`, `faas versions` and the function's log. Failures are held in
memory: they describe this gateway's recent deploys, not durable state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from faas.deploy.packages import Package
from faas.deploy.registry import Registry, not_found
from faas.deploy.store import Store
from faas.errors import FaasError, FunctionNotFound, ValidationError, VersionInitFailed
from faas.invoke.environment import Environment
from faas.invoke.pool import InitFailed
from faas.logs.store import LogStore
from faas.models import FunctionVersion, clip

LOG = logging.getLogger(__name__)

SUMMARY_CHARS = 60  # a refusal's reason in `faas ls` (the API and `faas logs` have all of it)


@dataclass(frozen=True)
class DeployProblem:
    """Why the latest deploy of a function is not what serves."""

    kind: str  # "failed": the version did not initialise; "refused": the package was not accepted
    message: str
    version: int | None = None
    error_type: str | None = None
    when: float = field(default_factory=time.time)

    def summary(self) -> str:
        """The status column of `faas ls`."""
        if self.kind == "failed":
            return f"failed: {self.error_type} in version {self.version}"
        first = self.message.splitlines()[0] if self.message else ""
        return f"refused: {first[: SUMMARY_CHARS - 1] + '…' if len(first) > SUMMARY_CHARS else first}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "version": self.version,
            "error_type": self.error_type,
            "when": self.when,
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class VersionInfo:
    """One numbered version, as `faas versions` lists it."""

    version: FunctionVersion
    live: bool
    problem: DeployProblem | None


def _error_of(payload: bytes, fallback: str) -> tuple[str, str]:
    """(errorType, errorMessage) of an init error body; the runtime's JSON may be missing or odd."""
    try:
        body = json.loads(payload)
    except ValueError:
        return fallback, payload.decode("utf-8", "replace")[:500]
    if not isinstance(body, dict):
        return fallback, str(body)[:500]
    return str(body.get("errorType") or fallback), str(body.get("errorMessage") or "")


class Deployer:
    """Deploys, rollbacks and their failures; one switch at a time per function."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        launch: Callable[[FunctionVersion], Environment],
        adopt: Callable[[FunctionVersion, Environment], None],
        log_store: LogStore,
    ) -> None:
        self._store = store
        self._registry = registry
        self._launch = launch
        self._adopt = adopt
        self._log_store = log_store
        self._meta = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._problems: dict[str, DeployProblem] = {}
        self._failed: dict[tuple[str, int], DeployProblem] = {}

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Serialises deploys, rollbacks and removal of one function (a save while `faas
        deploy` runs, two watchers on one folder); other functions are not held up."""
        with self._meta:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    # ------------------------------------------------------------------------- deploy

    def deploy(self, package: Package, source_dir: str | None) -> tuple[FunctionVersion, bool]:
        """Make an unpacked package the live version of its function; (live version, changed).

        Raises VersionInitFailed when the new version cannot start: it then has a number
        (shown by `faas versions`) but the previous version still serves.
        """
        spec = package.spec
        with self.lock(spec.name):
            if self._live_or_none(spec.name) is None:
                # A first version goes live at once: there is nothing older to keep serving,
                # and (as on Lambda) its first call starts it and shows any init error.
                version, changed = self._registry.publish(
                    spec, package.sha256, package.code_dir, package.unzipped_size, source_dir
                )
                self._clear(spec.name)
                return version, changed
            retry = self._failed_attempt(spec.name, package)
            if retry is not None:  # the same content as the last attempt, which failed: try it again, same number
                return self._switch(retry, "deploy"), True
            version, changed = self._store.add_version(
                spec, package.sha256, package.code_dir, package.unzipped_size, source_dir, make_live=False
            )
            if not changed:  # identical to what is live: a save that went back to it mends any failure
                self._clear(spec.name)
                return version, False
            return self._switch(version, "deploy"), True

    def refused(self, name: str, message: str) -> None:
        """A package for this function was not accepted; shown by `faas ls` and `faas logs`
        when the function exists (else only the gateway log has it)."""
        message = clip(message)  # quoted in the log, `faas ls` and `faas logs`: bounded whatever the caller sent
        LOG.warning("function %s: deploy refused: %s", name, message)
        if self._live_or_none(name) is None:
            return
        with self._meta:
            self._problems[name] = DeployProblem("refused", message)
        self._log_store.append(name, f"[faas] deploy refused, the live version still serves: {message}\n")

    # ----------------------------------------------------------------------- rollback

    def rollback(self, name: str, version: int | None = None) -> tuple[FunctionVersion, FunctionVersion]:
        """Make an earlier version live through the same switch; (new live, previously live).

        Without a version: the highest-numbered version below the live one that did not
        fail to start here.
        """
        with self.lock(name):
            live = self._registry.live(name)
            if version is None:
                with self._meta:
                    failed = {n for (fn, n) in self._failed if fn == name}
                earlier = [v for v in self._store.versions(name) if v.version < live.version and v.version not in failed]
                if not earlier:
                    raise ValidationError(f"{name} has no version before {live.version} to roll back to")
                target = earlier[-1]
            else:
                found = self._store.get_version(name, version)
                if found is None:
                    raise not_found(name, str(version))
                target = found
            if target.version == live.version:
                return live, live
            return self._switch(target, "rollback"), live

    # ------------------------------------------------------------------------- reading

    def versions(self, name: str) -> list[VersionInfo]:
        live = self._registry.live(name)
        with self._meta:
            failed = dict(self._failed)
        return [VersionInfo(v, v.version == live.version, failed.get((name, v.version))) for v in self._store.versions(name)]

    def problems(self) -> dict[str, DeployProblem]:
        """The latest deploy problem of each function whose live version is not its latest attempt."""
        with self._meta:
            return dict(self._problems)

    def forget(self, name: str) -> None:
        with self._meta:
            self._problems.pop(name, None)
            for key in [k for k in self._failed if k[0] == name]:
                del self._failed[key]

    # ------------------------------------------------------------------------ internal

    def _live_or_none(self, name: str) -> FunctionVersion | None:
        try:
            return self._registry.live(name)
        except FunctionNotFound:
            return None

    def _failed_attempt(self, name: str, package: Package) -> FunctionVersion | None:
        """The latest version, if it failed to start here and holds exactly this package (a
        second watcher on the same folder, a `faas deploy` run again): no new number for it."""
        versions = self._store.versions(name)
        latest = versions[-1] if versions else None
        with self._meta:
            failed = latest is not None and (name, latest.version) in self._failed
        if (
            failed
            and latest is not None
            and latest.code_sha256 == package.sha256
            and latest.spec.to_mapping() == package.spec.to_mapping()
        ):
            return latest
        return None

    def _clear(self, name: str) -> None:
        with self._meta:
            self._problems.pop(name, None)

    def _switch(self, target: FunctionVersion, why: str) -> FunctionVersion:
        """Start and initialise target's first environment, then make target live. The caller
        holds the function's lock."""
        name = target.name
        previous = self._live_or_none(name)
        started = time.monotonic()
        try:
            env = self._launch(target)
        except InitFailed as failed:
            took_ms = failed.init_duration_ms or (time.monotonic() - started) * 1000
            raise self._init_failed(target, previous, failed, took_ms) from None
        except FaasError as e:  # the engine failed: nothing is known about the code, nothing changes
            LOG.warning("function %s: version %d could not be started for the %s: %s", name, target.version, why, e.message)
            raise
        ready = time.monotonic()
        # The environment's init output and Init Duration are reported by its first call, as usual.
        self._log_store.append(name, f"[faas] version {target.version} is live ({why}; initialised before it took any call)\n")
        self._adopt(target, env)
        live = self._registry.set_live(name, target.version)
        self._clear(name)
        with self._meta:
            self._failed.pop((name, target.version), None)
        LOG.info(
            "function %s: version %d is live (%s, was %s; ready in %.0f ms, old version retired in %.0f ms)",
            name,
            target.version,
            why,
            previous.version if previous else "-",
            (ready - started) * 1000,
            (time.monotonic() - ready) * 1000,
        )
        return live

    def _init_failed(
        self, target: FunctionVersion, previous: FunctionVersion | None, failed: InitFailed, took_ms: float
    ) -> VersionInitFailed:
        name = target.name
        outcome = failed.outcome
        error_type, error_message = _error_of(outcome.payload, outcome.error_type or "Runtime.Unknown")
        problem = DeployProblem("failed", error_message or error_type, target.version, error_type)
        with self._meta:
            self._problems[name] = problem
            self._failed[(name, target.version)] = problem
        still = f"version {previous.version} stays live" if previous else "no version is live"
        report = (
            f"INIT_REPORT Init Duration: {took_ms:.2f} ms\tPhase: init\tStatus: error"
            f"\tError Type: {error_type}\n[faas] version {target.version} failed to initialise "
            f"({error_type}: {error_message}); {still}\n"
        )
        self._log_store.append(name, self._init_log(target, outcome.logs, report))
        LOG.warning(
            "function %s: version %d failed to initialise (%s: %s); %s", name, target.version, error_type, error_message, still
        )
        return VersionInitFailed(
            f"version {target.version} of {name} failed to initialise ({error_type}: {error_message}); {still}",
            Version=target.version,
            LiveVersion=previous.version if previous else None,
            ErrorType=error_type,
            ErrorMessage=error_message,
            Logs=outcome.logs,
        )

    @staticmethod
    def _init_log(target: FunctionVersion, logs: str, tail: str) -> str:
        if logs and not logs.endswith("\n"):
            logs += "\n"
        return f"INIT_START Runtime Version: {target.spec.runtime}\n{logs}{tail}"
