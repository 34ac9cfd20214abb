"""A container killed from outside (`docker kill`): during a call the caller gets Lambda's
Runtime.ExitError within a second, never a hang; while idle, the next call does not notice;
either way the next call succeeds."""

from __future__ import annotations

import threading
import time

import docker.errors
import requests

from tests.faults.support import wait_for
from tests.integration.conftest import Gateway

SLOW = """
    import os, time
    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return {"pid": os.getpid(), "stream": context.log_stream_name}
"""


def _busy_container(gw: Gateway, docker_client, name: str):
    [container] = wait_for(lambda: gw.function_containers(docker_client, name), timeout=10)  # type: ignore[misc]
    return container


def test_killed_mid_call_answers_exit_error_within_a_second(
    fault_gateway: Gateway, make_function, docker_client, figures
) -> None:
    gw = fault_gateway
    name, folder = make_function(SLOW, timeout=30)
    gw.deploy(folder)
    first = gw.invoke(name)
    assert first.status_code == 200, first.text
    answered: dict[str, object] = {}

    def slow_call() -> None:
        r = gw.invoke(name, b'{"sleep": 20}')
        answered["at"] = time.monotonic()
        answered["response"] = r

    caller = threading.Thread(target=slow_call)
    caller.start()
    container = _busy_container(gw, docker_client, name)
    time.sleep(0.5)  # the call is in the handler's sleep now
    assert caller.is_alive()
    killed_at = time.monotonic()
    container.kill()
    caller.join(10)
    assert not caller.is_alive(), "the call hung after its container was killed"
    took = float(answered["at"]) - killed_at  # type: ignore[arg-type]
    r: requests.Response = answered["response"]  # type: ignore[assignment]
    assert r.status_code == 200 and r.headers["X-Amz-Function-Error"] == "Unhandled", r.text
    body = r.json()
    assert body["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error" in body["errorMessage"]
    assert took < 1.0, f"the caller waited {took:.2f} s after the kill"
    figures.add("kill mid-call", answer_after_kill_ms=round(took * 1000, 1))

    after = gw.invoke(name)
    assert after.status_code == 200 and "X-Amz-Function-Error" not in after.headers, after.text
    assert after.json()["stream"] != first.json()["stream"]  # a new environment
    calls = gw.cli("calls", name, "--json")
    assert calls.returncode == 0, calls.stderr


def test_killed_while_idle_the_next_call_does_not_notice(fault_gateway: Gateway, make_function, docker_client, figures) -> None:
    gw = fault_gateway
    name, folder = make_function(SLOW)
    gw.deploy(folder)
    first = gw.invoke(name)
    assert first.status_code == 200
    container = _busy_container(gw, docker_client, name)
    container.kill()
    started = time.monotonic()
    r = gw.invoke(name)
    took = time.monotonic() - started
    assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
    assert r.json()["stream"] != first.json()["stream"]
    figures.add("kill while idle", next_call_ms=round(took * 1000, 1))


def test_every_container_killed_at_once_then_calls_go_on(fault_gateway: Gateway, make_function, docker_client) -> None:
    """Idle, busy and pre-started containers all killed (an OOM killer's or an admin's sweep)."""
    gw = fault_gateway
    names = []
    for _ in range(2):
        name, folder = make_function(SLOW, timeout=30)
        gw.deploy(folder)
        assert gw.invoke(name).status_code == 200
        names.append(name)
    answered: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answered.append(gw.invoke(names[0], b'{"sleep": 20}')))
    caller.start()
    time.sleep(1.0)
    for c in gw.containers(docker_client):
        try:
            c.kill()
        except docker.errors.APIError:  # already gone (a pre-started one being replaced)
            pass
    caller.join(10)
    assert not caller.is_alive()
    assert answered[0].json()["errorType"] == "Runtime.ExitError"
    for name in names:
        r = gw.invoke(name)
        assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
