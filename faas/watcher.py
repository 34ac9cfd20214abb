"""File watching: function source folders (redeploy on save) and the gateway's upload folder.

Both follow the same discipline (werkzeug's reloader, watchdog's EventDebouncer, SAM's
checksums): watchdog's callbacks only enqueue a key; one worker thread waits until a key
has been quiet for a short while (an editor's save is a burst of create/modify/rename
events) and then does the work; and the work starts by comparing a content hash, so a
touch, a `git checkout` of the same bytes or an editor's swap file changes nothing.

SourceWatcher runs where the developer's files are (`faas up`, `faas deploy --watch`) and
uploads through a callable it is given; IncomingWatcher runs in the gateway worker next to
the Platform and feeds zips dropped into STATE/incoming/ to Platform.deploy_zip, the one
deploy code path.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Hashable, TypeVar

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from faas.errors import FaasError, GatewayUnavailable, ValidationError
from faas.models import ZIPPED_LIMIT
from faas.packages import is_ignored, read_spec, zip_folder

LOG = logging.getLogger(__name__)

DEBOUNCE_S = 0.05  # an editor's save (write, rename, chmod) lands well within this
SETTLE_S = 2.0  # a file that is not a zip yet and was written this recently may still be growing
INCOMING_SUFFIX = ".zip"
REJECTED_SUFFIX = ".rejected"
# Event types that can change what a folder would zip to; opened/closed_no_write cannot.
_CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed", "attrib"})

K = TypeVar("K", bound=Hashable)


class Debouncer(Generic[K]):
    """Coalesces bursts per key: fire(key, first_seen) runs on one worker thread once the key
    has had no push for delay_s. first_seen is the monotonic time of the burst's first push,
    so callers can say how long a change took to go live."""

    def __init__(self, fire: Callable[[K, float], None], delay_s: float = DEBOUNCE_S, *, name: str = "debounce") -> None:
        self._fire = fire
        self.delay_s = delay_s
        self._cond = threading.Condition()
        self._due: dict[K, float] = {}
        self._first: dict[K, float] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def push(self, key: K, delay_s: float | None = None) -> None:
        """Safe from any thread, including watchdog's: only records the key and wakes the worker."""
        now = time.monotonic()
        with self._cond:
            self._due[key] = now + (self.delay_s if delay_s is None else delay_s)
            self._first.setdefault(key, now)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    ready = [k for k, due in self._due.items() if due <= now]
                    if ready:
                        break
                    wait = min(self._due.values()) - now if self._due else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                batch = [(k, self._first.pop(k, now)) for k in ready]
                for k in ready:
                    del self._due[k]
            for key, first in batch:
                try:
                    self._fire(key, first)
                except Exception:  # one bad folder or file must not stop the watching of the others
                    LOG.exception("watcher: handling a change of %s failed", key)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


class _Enqueue(FileSystemEventHandler):
    """watchdog's callback: filter, then push; nothing slow ever runs on the observer's thread."""

    def __init__(self, root: Path, accept: Callable[[Path, str], bool], push: Callable[[Path], None]) -> None:
        self.root = root
        self.accept = accept
        self.push = push

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES or (event.is_directory and event.event_type == "modified"):
            return
        paths = [event.src_path]
        if event.event_type == "moved" and getattr(event, "dest_path", ""):
            paths.append(event.dest_path)
        for raw in paths:
            path = Path(os.fsdecode(raw))
            try:
                rel = path.relative_to(self.root)
            except ValueError:
                continue
            if self.accept(path, rel.as_posix()):
                self.push(path)
                return


# ------------------------------------------------------------------------- source folders


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

    def __init__(self, upload: Upload, report: Report, *, debounce_s: float = DEBOUNCE_S) -> None:
        self._upload = upload
        self._report = report
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
            baseline = fingerprint(zip_folder(folder, validate=False))
            name = name or read_spec(folder).name
        except ValidationError as e:
            LOG.info("watcher: %s is not deployable right now (%s); watching it anyway", folder, e.message)
        handler = _Enqueue(folder, lambda _path, rel: not is_ignored(rel), lambda _path: self._debouncer.push(folder))
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
            data = zip_folder(folder, validate=False)
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
            self._report(Redeploy(folder, name, ok=False, message=e.message, logs=str(details.get("Logs") or ""),
                                  version=details.get("Version"), took_ms=_since(first_seen)))
            return
        with self._lock:
            self._last[folder] = digest
            self._names[folder] = name
        self._report(Redeploy(folder, name, ok=True, changed=bool(answer.get("changed")), version=answer.get("version"),
                              took_ms=_since(first_seen)))


def _since(start: float) -> float:
    return (time.monotonic() - start) * 1000


# ----------------------------------------------------------------------- the upload folder


Deploy = Callable[[bytes, str], object]


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


class IncomingWatcher:
    """STATE/incoming/: a NAME.zip that appears there is deployed as function NAME.

    Only names ending in .zip are taken, so a writer creates NAME.zip.tmp (or any other
    name) and renames it: the rename is atomic and the zip is complete when seen. A file
    that is still not a zip and was written less than SETTLE_S ago is looked at again
    later rather than refused, for writers that ignore that advice. A deployed zip is
    removed (its content is in the package store); a refused one is renamed
    NAME.zip.rejected and the reason logged (and, for an existing function, shown by
    `faas ls` and `faas logs`, which Platform.deploy_zip records).
    """

    def __init__(self, folder: Path, deploy: Deploy, *, debounce_s: float = DEBOUNCE_S, settle_s: float = SETTLE_S) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._deploy = deploy
        self.settle_s = settle_s
        self._debouncer: Debouncer[Path] = Debouncer(self._arrived, debounce_s, name="incoming-watch")
        self._observer = Observer()
        self._observer.daemon = True
        handler = _Enqueue(self.folder, self._takes, self._debouncer.push)
        self._observer.schedule(handler, str(self.folder), recursive=False)
        self._observer.start()
        for path in sorted(self.folder.iterdir()):  # dropped while no gateway was running
            if self._takes(path, path.name):
                self._debouncer.push(path)

    @staticmethod
    def _takes(path: Path, rel: str) -> bool:
        name = path.name
        return "/" not in rel and name.endswith(INCOMING_SUFFIX) and not name.startswith(".")

    def close(self) -> None:
        self._observer.stop()
        self._debouncer.close()
        self._observer.join(timeout=5)

    def _arrived(self, path: Path, _first_seen: float) -> None:
        try:
            st = path.stat()
            with open(path, "rb") as f:
                data = f.read(ZIPPED_LIMIT + 1)
        except FileNotFoundError:
            return  # renamed away or already handled
        except OSError as e:
            LOG.warning("incoming %s: cannot be read: %s", path.name, e)
            return
        if not _looks_like_zip(data) and time.time() - st.st_mtime < self.settle_s:
            LOG.debug("incoming %s: not a complete zip yet, looking again in %.1f s", path.name, self.settle_s)
            self._debouncer.push(path, self.settle_s)
            return
        name = path.name[: -len(INCOMING_SUFFIX)]
        try:
            self._deploy(data, name)
        except FaasError as e:
            LOG.warning("incoming %s refused: %s", path.name, e.message)
            self._settle(path, st, path.with_name(path.name + REJECTED_SUFFIX))
            return
        LOG.info("incoming %s: deployed", path.name)
        self._settle(path, st, None)

    @staticmethod
    def _settle(path: Path, seen: os.stat_result, rename_to: Path | None) -> None:
        """Remove (or set aside) the file handled, unless a newer one replaced it meanwhile:
        that one has its own event and must not be lost."""
        try:
            if _identity(path.stat()) != _identity(seen):
                return
            if rename_to is None:
                path.unlink()
            else:
                os.replace(path, rename_to)
        except FileNotFoundError:
            pass
        except OSError as e:
            LOG.warning("incoming %s: cannot be cleared away: %s", path.name, e)


def _looks_like_zip(data: bytes) -> bool:
    """True when the end-of-central-directory record is there, i.e. the writer finished."""
    return zipfile.is_zipfile(io.BytesIO(data))
