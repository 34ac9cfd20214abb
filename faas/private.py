"""Host-side permissions: the state dir and everything in it belong to the gateway alone.

faas.db and the logs hold functions' environments (secrets included) and their callers'
requests; a runtime socket hands out a function's events and takes its responses. Another
local user must reach none of them: the state dir is 0700 (nothing below it can even be
looked up by another uid), its files 0600, and the two things a container must open from
inside (its Runtime API socket and its log FIFO) belong to the sandbox uid, mode 0600,
instead of being world-writable. Containers see their folders through bind mounts, whose
own modes are what counts inside, so the 0700 above them does not get in their way.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from faas.containers.executor import SANDBOX_UID

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create (or tighten) a folder only this uid may enter."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)  # an existing folder, or a umask that took bits away
    return path


def private_file(path: Path) -> Path:
    """Create (or tighten) a file only this uid may read, before anything is written to it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)
    return path


def open_private(path: str, flags: int) -> int:
    """An `opener` for open(): a file it creates is 0600 from the start."""
    return os.open(path, flags, FILE_MODE)


def for_sandbox(path: Path) -> None:
    """A socket or FIFO the function opens from inside its container: the sandbox uid's, 0600.
    A gateway that is not root cannot give it away; the file is then left open to all, and the
    0700 state dir above it is what keeps other local users out."""
    try:
        os.chown(path, SANDBOX_UID, SANDBOX_UID)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        os.chmod(path, 0o666)
        return
    os.chmod(path, FILE_MODE)
