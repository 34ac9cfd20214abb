"""Following a function's log file as it grows (`faas logs NAME --follow`).

The gateway answers a long poll: "what was written after this cursor?", waiting up to a few
seconds for something new. A cursor is "<inode>:<offset>" of the log file, so a rotation
(the file renamed to .log.1 by faas.logs.store.LogStore and a new one started) is noticed: the
rest of the old file is read from .log.1, then the new file from its start. Only whole
lines are returned; a line being written stays for the next poll.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from faas.errors import ValidationError

POLL_S = 0.1
MAX_WAIT_S = 25.0  # under common client and proxy idle timeouts
MAX_CHUNK = 4 * 1024 * 1024  # most bytes one answer carries; the rest comes with the next poll


def parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        inode, offset = (int(part) for part in cursor.split(":", 1))
    except ValueError:
        raise ValidationError(f"log cursor {cursor!r} is not valid (expected INODE:OFFSET)") from None
    if inode < 0 or offset < 0:
        raise ValidationError(f"log cursor {cursor!r} is not valid")
    return inode, offset


def _read_from(path: Path, offset: int, limit: int) -> tuple[int, bytes]:
    """(inode, bytes from offset) of path; (0, b'') when it does not exist."""
    try:
        with open(path, "rb") as f:
            inode = os.fstat(f.fileno()).st_ino
            f.seek(offset)
            return inode, f.read(limit)
    except FileNotFoundError:
        return 0, b""


def _whole_lines(data: bytes) -> bytes:
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def read_since(path: Path, cursor: str) -> tuple[bytes, str]:
    """What was appended to the log after cursor, in whole lines, and the cursor after it."""
    inode, offset = parse_cursor(cursor)
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return b"", cursor
    if current.st_ino == inode:
        if current.st_size < offset:  # truncated: start over
            offset = 0
        got_inode, data = _read_from(path, offset, MAX_CHUNK)
        data = _whole_lines(data)
        return data, f"{got_inode or inode}:{offset + len(data)}"
    old = path.with_name(path.name + ".1")
    before = b""
    if inode:
        try:
            if os.stat(old).st_ino == inode:
                before = _whole_lines(_read_from(old, offset, MAX_CHUNK)[1])
        except FileNotFoundError:
            pass
    got_inode, data = _read_from(path, 0, MAX_CHUNK)
    data = _whole_lines(data)
    return before + data, f"{got_inode}:{len(data)}"


def start(path: Path, tail: int) -> tuple[bytes, str]:
    """The last `tail` lines now (of the rotated file too), and the cursor just after them."""
    lines: deque[bytes] = deque(maxlen=tail)
    old = path.with_name(path.name + ".1")
    if old.exists():
        lines.extend(_read_from(old, 0, -1)[1].splitlines(keepends=True))
    inode, data = _read_from(path, 0, -1)
    data = _whole_lines(data)
    lines.extend(data.splitlines(keepends=True))
    return b"".join(lines), f"{inode}:{len(data)}"


def wait_since(
    path: Path,
    cursor: str,
    wait_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bytes, str]:
    """read_since, waiting up to wait_s (at most MAX_WAIT_S) for something to arrive."""
    deadline = clock() + min(max(wait_s, 0.0), MAX_WAIT_S)
    while True:
        data, after = read_since(path, cursor)
        if data or clock() >= deadline:
            return data, after
        cursor = after
        sleep(POLL_S)
