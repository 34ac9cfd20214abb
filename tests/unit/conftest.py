"""Fixtures the unit tests share."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected sockets: one side plays the runtime or client, the other the server."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()
