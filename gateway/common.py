"""Helpers every route shares: the platform of this process and bounded body reads."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import current_app, request

if TYPE_CHECKING:
    from faas.platform import Platform

LOG = logging.getLogger(__name__)

PLATFORM_KEY = "faas"
CONFIG_KEY = "faas.config"
_CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    """The request body is over the route's limit; `size` is its length when known."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def platform() -> "Platform":
    """The Platform of this worker process (create_app put it in app.extensions)."""
    return current_app.extensions[PLATFORM_KEY]  # type: ignore[no-any-return]


def read_body(limit: int) -> bytes:
    """The whole request body, refusing anything over `limit` bytes.

    Content-Length is checked before a byte is read, so an oversized upload costs no
    memory; a chunked body (no Content-Length) is read only up to limit + 1 bytes, which
    is how its real length is checked. Raises BodyTooLarge; callers turn it into the
    error their API uses (RequestTooLarge, PackageTooLarge, a 413 page).
    """
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise BodyTooLarge(declared)
        data = request.stream.read()
        if len(data) > limit:  # a server that does not cap the stream at Content-Length
            raise BodyTooLarge(len(data))
        return data
    parts: list[bytes] = []
    total = 0
    stream = request.stream
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(None)
        parts.append(chunk)
    return b"".join(parts)
