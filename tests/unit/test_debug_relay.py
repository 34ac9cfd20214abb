"""The debugger's host relay and the timeout suspension, with plain sockets standing in for the
container's relay and for debugpy (the integration test runs the real ones in a container)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.invoke.debug import DebugPortInUse, DebugRelay, dap_read, dap_send, wait_suspending


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[DebugRelay]:
    r = DebugRelay(0, tmp_path / "debug.sock", label="t", pair_wait_s=5)
    yield r
    r.close()


def container_side(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def test_an_ide_is_paired_with_the_container_and_bytes_flow_both_ways(relay: DebugRelay) -> None:
    inside = container_side(relay.socket_path)
    ide = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    dap_send(ide, {"seq": 1, "type": "request", "command": "initialize"})
    inside.settimeout(5)
    got = bytearray()
    assert dap_read(inside, got)["command"] == "initialize"
    assert relay.attached.wait(2) and relay.sessions == 1
    dap_send(inside, {"seq": 1, "type": "response", "command": "initialize", "success": True})
    assert dap_read(ide, bytearray())["success"] is True
    ide.close()
    inside.settimeout(5)
    assert inside.recv(10) == b""  # the IDE left: the container's connection is closed too
    deadline = time.monotonic() + 5
    while relay.attached.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not relay.attached.is_set()


def test_an_ide_can_attach_again_and_one_session_at_a_time(relay: DebugRelay) -> None:
    first_inside, second_inside = container_side(relay.socket_path), container_side(relay.socket_path)
    first = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    first.sendall(b"x")
    assert relay.attached.wait(2)
    intruder = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    assert intruder.recv(10) == b""  # refused while the first session lasts
    first.close()
    import select

    # the relay pairs waiting container connections in the order it accepts them: find which one
    ready, _, _ = select.select([first_inside, second_inside], [], [], 5)
    assert ready, "one container connection got the first session"
    used = ready[0]
    spare = second_inside if used is first_inside else first_inside
    for s in (used, spare):
        s.settimeout(5)
    assert used.recv(10) == b"x" and used.recv(10) == b""
    deadline = time.monotonic() + 5  # the first session has ended (an IDE refused meanwhile is closed)
    while relay.attached.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    again = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    again.sendall(b"y")
    assert spare.recv(10) == b"y"
    assert relay.sessions == 2
    again.close()


def test_an_ide_without_a_container_is_closed_after_the_wait(tmp_path: Path) -> None:
    r = DebugRelay(0, tmp_path / "debug.sock", pair_wait_s=0.3)
    try:
        ide = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        assert ide.recv(10) == b""
        assert not r.attached.is_set()
    finally:
        r.close()
    assert not (tmp_path / "debug.sock").exists()


def test_a_taken_port_is_a_clear_error(relay: DebugRelay, tmp_path: Path) -> None:
    with pytest.raises(DebugPortInUse, match=f"port {relay.port} on 127.0.0.1 is in use"):
        DebugRelay(relay.port, tmp_path / "other.sock")


def test_the_timeout_is_suspended_while_attached(relay: DebugRelay) -> None:
    done = threading.Event()
    inside = container_side(relay.socket_path)
    ide = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    ide.sendall(b"x")
    assert relay.attached.wait(2)
    t = time.monotonic()
    threading.Timer(0.8, ide.close).start()  # attached for 0.8 s of a 0.5 s budget
    assert wait_suspending(done, time.monotonic() + 0.5, relay) is False
    took = time.monotonic() - t
    assert 1.2 <= took < 3.0, took  # 0.8 s attached + the 0.5 s budget, not 0.5 s
    assert relay.attached_seconds() >= 0.75
    inside.close()


def test_without_a_debugger_the_deadline_is_the_deadline() -> None:
    done = threading.Event()
    t = time.monotonic()
    assert wait_suspending(done, t + 0.2, None) is False
    assert time.monotonic() - t < 1.0
    threading.Timer(0.1, done.set).start()
    assert wait_suspending(done, time.monotonic() + 5, None) is True
