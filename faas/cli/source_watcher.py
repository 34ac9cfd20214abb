"""Function source folders watched where the developer's files are (`faas up`, `faas deploy --watch`).

A save redeploys the folder through an upload callable it is given, after the debounce and
content-hash discipline of faas/deploy/folder_events.py. The package is made as `faas deploy`
makes it (faas/deploy/builds.py): a build: command runs again, and requirements.txt /
package.json are installed again only when they changed (their install is cached).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.observers import Observer

from faas.deploy.builds import package_folder
from faas.deploy.dependencies import Progress
from faas.deploy.folder_events import DEBOUNCE_S, Debouncer, Enqueue
from faas.deploy.packages import is_ignored, read_spec
from faas.errors import FaasError, GatewayUnavailable, ValidationError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Redeploy:
    """What one save led to, for the developer's terminal."""

    folder: Path
    name: str | None
    ok: bool
    changed: bool = False
    version: int | None = None
    message: str = ""  # why it failed, or ""
    logs: str = ""  # the new version's init output when it failed to start
    took_ms: float = 0.0  # from the first file event of the save to the gateway's answer


Upload = Callable[[str, bytes, Path], dict]
Report = Callable[[Redeploy], None]


def fingerprint(data: bytes) -> str:
    """zip_folder() is byte-for-byte reproducible, so the zip's hash is the folder's content hash."""
    return hashlib.sha256(data).hexdigest()


class SourceWatcher:
    """Watches function folders and redeploys one when what it would deploy has changed.

    upload(name, zip, folder) deploys and returns the gateway's answer (a FaasError when
    the gateway refused it or the new version failed to start); report(Redeploy) tells
    the developer. A folder whose function.yaml is broken is still uploaded, unvalidated,
    under the name it had, so that the gateway refuses it where `faas ls` and `faas logs`
    show the refusal; the old version keeps serving either way.
    """

    def __init__(
        self, upload: Upload, report: Report, *, debounce_s: float = DEBOUNCE_S, progress: Progress | None = None
    ) -> None:
        self._upload = upload
        self._report = report
        self._progress = progress  # a save's build and dependency install, as they run
        self._lock = threading.Lock()
        self._watches: dict[Path, object] = {}
        self._names: dict[Path, str] = {}
        self._last: dict[Path, str | None] = {}
        self._debouncer: Debouncer[Path] = Debouncer(self._changed, debounce_s, name="source-watch")
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()

    def folders(self) -> list[Path]:
        with self._lock:
            return sorted(self._watches)

    def add(self, folder: Path, name: str | None = None) -> bool:
        """Start watching a function folder; False if it is watched already. The content it
        has now is the baseline: only a change from it redeploys."""
        folder = Path(folder).resolve()
        with self._lock:
            if folder in self._watches:
                if name:
                    self._names[folder] = name
                return False
        baseline: str | None = None
        try:
            baseline = fingerprint(package_folder(folder, validate=False).data)
            name = name or read_spec(folder).name
        except ValidationError as e:
            LOG.info("watcher: %s is not deployable right now (%s); watching it anyway", folder, e.message)
        handler = Enqueue(folder, lambda _path, rel: not is_ignored(rel), lambda _path: self._debouncer.push(folder))
        watch = self._observer.schedule(handler, str(folder), recursive=True)
        with self._lock:
            self._watches[folder] = watch
            self._last[folder] = baseline
            if name:
                self._names[folder] = name
        LOG.info("watcher: watching %s (function %s)", folder, name or "?")
        return True

    def remove(self, folder: Path) -> None:
        folder = Path(folder).resolve()
        with self._lock:
            watch = self._watches.pop(folder, None)
            self._names.pop(folder, None)
            self._last.pop(folder, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)  # type: ignore[arg-type]
            except (KeyError, OSError):
                pass

    def close(self) -> None:
        self._debouncer.close()
        self._observer.stop()
        self._observer.join(timeout=5)

    def _changed(self, folder: Path, first_seen: float) -> None:
        with self._lock:
            if folder not in self._watches:
                return
            known_name = self._names.get(folder)
            last = self._last.get(folder)
        spec_error: ValidationError | None = None
        try:
            name: str | None = read_spec(folder).name
        except ValidationError as e:
            spec_error, name = e, known_name
        try:
            # A save that changes only code finds its dependencies' install in the cache.
            data = package_folder(folder, validate=False, progress=self._progress).data
        except ValidationError as e:
            self._report(Redeploy(folder, name, ok=False, message=e.message, took_ms=_since(first_seen)))
            return
        digest = fingerprint(data)
        if digest == last:
            LOG.debug("watcher: %s: content unchanged, nothing to deploy", folder)
            return
        if name is None:  # never deployable so far: nothing on the gateway to report it against
            assert spec_error is not None
            with self._lock:
                self._last[folder] = digest
            self._report(Redeploy(folder, None, ok=False, message=spec_error.message, took_ms=_since(first_seen)))
            return
        try:
            answer = self._upload(name, data, folder)
        except FaasError as e:
            details = getattr(e, "details", {}) or {}
            with self._lock:
                # No gateway answered: the same content must be tried again on the next save.
                self._last[folder] = None if isinstance(e, GatewayUnavailable) else digest
            self._report(
                Redeploy(
                    folder,
                    name,
                    ok=False,
                    message=e.message,
                    logs=str(details.get("Logs") or ""),
                    version=details.get("Version"),
                    took_ms=_since(first_seen),
                )
            )
            return
        with self._lock:
            self._last[folder] = digest
            self._names[folder] = name
        self._report(
            Redeploy(
                folder,
                name,
                ok=True,
                changed=bool(answer.get("changed")),
                version=answer.get("version"),
                took_ms=_since(first_seen),
            )
        )


def _since(start: float) -> float:
    return (time.monotonic() - start) * 1000
