"""STATE/incoming/: the upload folder, watched in the gateway worker next to the Platform.

A zip dropped there is fed to Platform.deploy_zip, the one deploy code path; one that is
refused is kept beside it as NAME.zip.rejected.
"""

from __future__ import annotations

import io
import logging
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from watchdog.observers import Observer

from faas.deploy.folder_events import DEBOUNCE_S, Debouncer, Enqueue
from faas.errors import FaasError
from faas.models import ZIPPED_LIMIT, clip

LOG = logging.getLogger(__name__)

SETTLE_S = 2.0  # a file that is not a zip yet and was written this recently may still be growing
INCOMING_SUFFIX = ".zip"
REJECTED_SUFFIX = ".rejected"

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
        handler = Enqueue(self.folder, self._takes, self._debouncer.push)
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
            LOG.warning("incoming %s refused: %s", path.name, clip(e.message))
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
