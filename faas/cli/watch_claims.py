"""Folders this machine's user deployed from, the only ones besides its own that `faas up` watches.

The gateway records where a deploy says it came from (the X-Faas-Source-Dir header), but anyone
who may deploy can write anything there, `/` included, and `faas up` would then zip that folder
and spend the machine's inotify budget watching it. So `faas deploy DIR` also writes DIR here, in
the state dir that only its owner can write (0700), and `faas up` watches a listed function's
folder only when this record names the same folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

FOLDER = "source-folders"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def claim(state_dir: Path, name: str, folder: Path) -> None:
    """Record that `name` was deployed from `folder`; nothing when no local gateway uses state_dir."""
    if not _NAME.fullmatch(name) or not state_dir.is_dir():
        return
    claims = state_dir / FOLDER
    claims.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=claims, prefix=f".{name}.")
    with os.fdopen(fd, "w") as f:
        f.write(str(folder.resolve()))
    os.replace(tmp, claims / name)


def claimed(state_dir: Path, name: str) -> Path | None:
    """The folder `faas deploy` recorded for `name`, or None."""
    if not _NAME.fullmatch(name):
        return None
    try:
        raw = (state_dir / FOLDER / name).read_text()
    except OSError:
        return None
    path = Path(raw)
    return path if path.is_absolute() else None
