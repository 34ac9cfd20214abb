"""`faas up template.yaml`: a SAM template, every CodeUri and DockerContext watched; a save redeploys what changed.

A save of the template, of any function's code or of an Image function's DockerContext runs the template's deploy again
(faas/deploy/sam.py deploy: its routes checked by the gateway first, each function through the
no-drop switch, then the routes replaced whole). The gateway answers `unchanged` for a function
whose package is the same bytes, so only what changed goes live, and a touch changes nothing.
A template that no longer loads, or whose routes the gateway refuses (a clash, a path under
faas's own prefixes), changes nothing: the live functions and routes keep serving, and the
developer is told why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.observers import Observer

from faas.deploy import sam
from faas.deploy.folder_events import DEBOUNCE_S, Debouncer, Enqueue
from faas.deploy.packages import is_ignored
from faas.errors import FaasError, GatewayUnavailable

LOG = logging.getLogger(__name__)

BUILD_DIRS = (".aws-sam",)  # `sam build`'s output beside the template: copies, never the source


@dataclass(frozen=True)
class TemplateRedeploy:
    """What one save of a template's files led to."""

    template: Path
    ok: bool
    live: list[tuple[str, Any]] = field(default_factory=list)  # (function, version) that went live
    errors: list[str] = field(default_factory=list)  # functions that failed (the old version serves)
    added: list[str] = field(default_factory=list)  # route lines
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # new since the last deploy
    message: str = ""  # why nothing was deployed
    took_ms: float = 0.0


def route_line(route: Any) -> str:
    return f"{route.method} {route.path} -> {route.function} ({route.kind} {route.api_id}, stage {route.stage})"


class _Recorder:
    """The client sam.deploy is given: passes every call on and notes which functions went live."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.live: list[tuple[str, Any]] = []

    def deploy(self, name: str, package: bytes, **kwargs: Any) -> Any:
        result = self._client.deploy(name, package, **kwargs)
        if result.changed:
            self.live.append((name, result.function.get("version")))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def watch_roots(template: sam.Template) -> tuple[list[Path], list[Path]]:
    """(folders to watch, paths whose changes count): the template, each function's code, each
    layer's content (a save there rebuilds and republishes the layer) and each Image function's
    DockerContext (a save there rebuilds its image); a folder inside another watched one is not
    watched twice."""
    wanted = [template.path, *(layer.content for layer in template.layers.values())]
    for fn in template.functions:
        if fn.image_build is not None:
            wanted.append(fn.image_build.context)
        elif fn.spec.package_type != "Image":  # an ImageUri function's "code" is the template's folder
            wanted.append(fn.code)
    folders = sorted({p if p.is_dir() else p.parent for p in wanted}, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for folder in folders:
        if not any(folder == r or r in folder.parents for r in roots):
            roots.append(folder)
    return roots, wanted


class TemplateWatcher:
    """Watches one template and its functions' code; report(TemplateRedeploy) after each save."""

    def __init__(
        self,
        client: Any,
        path: Path,
        report: Callable[[TemplateRedeploy], None],
        *,
        overrides: Mapping[str, str] | None = None,
        env_vars: Mapping[str, Any] | None = None,
        debounce_s: float = DEBOUNCE_S,
    ) -> None:
        self._client = client
        self.path = Path(path).resolve()
        self._report = report
        self._overrides = dict(overrides or {})
        self._env_vars = dict(env_vars) if env_vars is not None else None
        self._lock = threading.Lock()
        self._watches: dict[Path, Any] = {}
        self._counted: list[Path] = [self.path]
        self._routes: set[str] = set()
        self._warnings: set[str] = set()
        self._debouncer: Debouncer[Path] = Debouncer(self._changed, debounce_s, name="template-watch")
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        try:
            template = sam.load(self.path, self._overrides, self._env_vars)
        except FaasError as e:  # `faas up` deployed nothing from it: watch the template for a fix
            LOG.info("watcher: %s does not load right now (%s); watching it anyway", self.path, e.message)
            self._rewatch([self.path.parent], [self.path])
        else:
            self._routes = {route_line(r) for r in template.routes}
            self._warnings = set(template.warnings)
            self._rewatch(*watch_roots(template))

    def folders(self) -> list[Path]:
        with self._lock:
            return sorted(self._watches)

    def close(self) -> None:
        self._debouncer.close()
        self._observer.stop()
        self._observer.join(timeout=5)

    def _counts(self, path: Path) -> bool:
        """Whether a change of path can change what the template deploys."""
        with self._lock:
            counted = list(self._counted)
        for target in counted:
            if path == target:
                return True
            if target.is_dir() and target in path.parents:
                rel = path.relative_to(target)
                return not is_ignored(rel) and not any(part in BUILD_DIRS for part in rel.parts)
        return False

    def _rewatch(self, roots: Iterable[Path], counted: list[Path]) -> None:
        roots = set(roots)
        with self._lock:
            self._counted = counted
            gone = [r for r in self._watches if r not in roots]
            new = [r for r in roots if r not in self._watches and r.is_dir()]
        for root in gone:
            with self._lock:
                watch = self._watches.pop(root)
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):
                pass
        for root in new:
            handler = Enqueue(root, lambda p, _rel: self._counts(p), lambda _p: self._debouncer.push(self.path))
            try:
                watch = self._observer.schedule(handler, str(root), recursive=True)
            except OSError as e:
                LOG.warning("watcher: cannot watch %s: %s", root, e)
                continue
            with self._lock:
                self._watches[root] = watch

    def _changed(self, _key: Path, first_seen: float) -> None:
        try:
            template = sam.load(self.path, self._overrides, self._env_vars)
        except FaasError as e:
            self._report(TemplateRedeploy(self.path, ok=False, message=e.message, took_ms=_since(first_seen)))
            return
        self._rewatch(*watch_roots(template))  # a CodeUri the save added or moved
        recorder = _Recorder(self._client)
        warnings: list[str] = []
        errors: list[str] = []

        def warn(line: str) -> None:
            (errors if line.startswith("error:") else warnings).append(line)

        try:
            sam.deploy(recorder, self.path, say=lambda _line: None, warn=warn, overrides=self._overrides, env_vars=self._env_vars)
        except GatewayUnavailable as e:
            self._report(TemplateRedeploy(self.path, ok=False, message=e.message, took_ms=_since(first_seen)))
            return
        except FaasError as e:  # a route the gateway refuses, a template changed since it was read
            self._report(TemplateRedeploy(self.path, ok=False, message=e.message, took_ms=_since(first_seen)))
            return
        routes = {route_line(r) for r in template.routes}
        fresh = [w for w in warnings if w.removeprefix("warning: ") not in self._warnings]
        added, removed = sorted(routes - self._routes), sorted(self._routes - routes)
        self._routes = routes
        self._warnings = {w.removeprefix("warning: ") for w in warnings}
        self._report(
            TemplateRedeploy(
                self.path,
                ok=not errors,
                live=recorder.live,
                errors=errors,
                added=added,
                removed=removed,
                warnings=fresh,
                took_ms=_since(first_seen),
            )
        )


def _since(start: float) -> float:
    return (time.monotonic() - start) * 1000
