"""`faas ps` and GET /system/pool through a real `faas up`: every environment with its function,
version, state (starting, idle, busy, pre-started), age, calls, memory used and keep-alive."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.integration.conftest import Gateway

pytestmark = pytest.mark.integration

CODE = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "done"
"""


def rows(gateway: Gateway, name: str) -> list[dict]:
    out = gateway.cli("ps", "--json")
    assert out.returncode == 0, out.stderr
    return [e for e in json.loads(out.stdout)["environments"] if e["function"] == name]


def test_ps_shows_each_environment_as_it_idles_and_works(gateway: Gateway, make_function) -> None:
    name, folder = make_function(CODE, memory=256, timeout=10)
    gateway.deploy(folder)
    assert gateway.invoke(name, b"{}").status_code == 200
    time.sleep(0.2)

    (env,) = rows(gateway, name)
    assert (env["version"], env["state"], env["calls"], env["memory_mb"]) == (1, "idle", 1, 256)
    assert env["start"] in ("cold", "prestarted") and env["container"]
    assert 0 < env["memory_used_mb"] < 256, "memory used, read from the container's cgroup"
    assert env["age_s"] >= env["idle_s"] >= 0.1
    assert env["keep_alive_s"] == 600

    done = threading.Event()
    # long enough for `faas ps` (a new process) to start and answer on a loaded machine
    caller = threading.Thread(target=lambda: (gateway.invoke(name, b'{"sleep": 6}'), done.set()))
    caller.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and rows(gateway, name)[0]["state"] != "busy":
            time.sleep(0.05)
        (busy,) = rows(gateway, name)
        assert busy["state"] == "busy" and busy["id"] == env["id"] and busy["calls"] == 2
        table = gateway.cli("ps")
        assert table.returncode == 0
        line = next(line for line in table.stdout.splitlines() if name in line)
        assert line.split()[:4] == [env["id"], name, "1", "busy"] and "/256" in line
        assert "memory budget:" in table.stdout
    finally:
        caller.join(20)
    assert done.is_set()
    assert rows(gateway, name)[0]["state"] == "idle"


def test_pre_started_containers_are_listed_without_a_function(gateway: Gateway, make_function) -> None:
    name, folder = make_function(CODE)
    gateway.deploy(folder)
    assert gateway.invoke(name, b"{}").status_code == 200  # python3.11 is in use: its pool refills
    deadline = time.monotonic() + 10
    while True:
        state = requests.get(f"{gateway.url}/system/pool", timeout=10).json()
        spare = [e for e in state["environments"] if e["function"] is None]
        if spare or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert spare, "`faas up` keeps at least one pre-started container of a runtime in use"
    assert {e["state"] for e in spare} <= {"pre-started"} and all(e["runtime"] for e in spare)
    assert state["memory_budget_mb"]["used"] >= sum(e["memory_mb"] for e in state["environments"]) > 0
    assert state["memory_budget_mb"]["total"] > 0 and state["keep_alive_default_s"] == 600
    assert set(state["prestarted"]) == {"taken", "missed"}
