"""The gateway's own lifecycle: SIGTERM drains and cleans up, state survives a restart, orphans go, idle reaping."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import requests

from tests.integration.conftest import start_gateway, stop_gateway


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_sigterm_finishes_calls_in_flight_then_removes_every_container(
    runtime_images, tmp_path: Path, make_function, docker_client
) -> None:
    gw = start_gateway(tmp_path / "state")
    try:
        name, folder = make_function(
            """
            import time
            def handler(event, context):
                time.sleep(event.get("sleep", 0))
                return "finished"
        """,
            timeout=10,
        )
        gw.deploy(folder)
        assert gw.invoke(name).json() == "finished"
        result: dict[str, object] = {}

        def slow_call() -> None:
            r = gw.invoke(name, b'{"sleep": 2}')
            result["status"], result["body"] = r.status_code, r.json()

        t = threading.Thread(target=slow_call)
        t.start()
        time.sleep(0.5)
        assert gw.containers(docker_client)
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = gw.invoke(name)  # a new call during the drain: a clear 503, not a closed port
        assert refused.status_code == 503
        assert "shutting down" in refused.json()["Message"]
        t.join(30)
        assert result == {"status": 200, "body": "finished"}
        assert gw.proc.wait(60) == 0
        assert gw.containers(docker_client) == []
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)


def test_state_survives_a_crash_and_orphans_are_removed(runtime_images, tmp_path: Path, make_function, docker_client) -> None:
    state = tmp_path / "state"
    gw = start_gateway(state)
    try:
        name, folder = make_function("def handler(e, c):\n    return 'still here'\n")
        gw.deploy(folder)
        assert gw.invoke(name).json() == "still here"
        orphans = gw.containers(docker_client)
        assert orphans
        os.killpg(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
    finally:
        stop_gateway(gw)
    gw2 = start_gateway(state)
    try:
        left = {c.id for c in gw2.containers(docker_client)}
        assert not left & {c.id for c in orphans}, "the restarted gateway removed the containers of the crashed one"
        assert gw2.invoke(name).json() == "still here"
        ls = gw2.cli("ls")
        assert name in ls.stdout
    finally:
        assert stop_gateway(gw2) == 0
        assert gw2.containers(docker_client) == []


def test_idle_environments_stop_after_the_keep_alive(runtime_images, tmp_path: Path, make_function, docker_client) -> None:
    gw = start_gateway(tmp_path / "state", extra_env={"FAAS_KEEP_ALIVE": "2"})
    try:
        name, folder = make_function("def handler(e, c):\n    return 1\n")
        gw.deploy(folder)
        gw.invoke(name)
        assert len(gw.function_containers(docker_client, name)) == 1
        assert wait_for(lambda: not gw.function_containers(docker_client, name), timeout=10)
        r = gw.invoke(name, headers={"X-Amz-Log-Type": "Tail"})
        assert r.json() == 1
    finally:
        assert stop_gateway(gw) == 0
        assert gw.containers(docker_client) == []


def test_healthz(gateway) -> None:
    r = requests.get(f"{gateway.url}/healthz", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"
