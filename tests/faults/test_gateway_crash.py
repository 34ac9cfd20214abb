"""The gateway killed with SIGKILL (no cleanup of any kind) and started again: every function,
version, alias and queued async call is still there, and the containers the dead gateway left
are removed. Also the worker alone killed (as the kernel's OOM killer would): the arbiter
starts a new one, which serves the same state.

SIGTERM (calls in flight finish, new calls get 503, every container removed) is
tests/integration/test_lifecycle.py::test_sigterm_finishes_calls_in_flight_then_removes_every_container.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import requests

from tests.faults.support import wait_for, worker_pid
from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import Gateway, start_gateway, stop_gateway

CODE = """
    import time
    VERSION = "{version}"
    def handler(event, context):
        if event.get("sleep"):
            time.sleep(event["sleep"])
        print("ran", event.get("id"))
        return {{"version": VERSION, "id": event.get("id")}}
"""


def _deploy_version(gw: Gateway, make_function, name: str | None, folder: Path | None, version: str) -> tuple[str, Path]:
    if folder is None:
        name, folder = make_function(CODE.format(version=version), timeout=10)
    else:
        (folder / "app.py").write_text(CODE.format(version=version).replace("\n    ", "\n"))
    gw.deploy(folder)
    assert name is not None
    return name, folder


def _ok_calls(gw: Gateway, name: str) -> list[dict]:
    out = gw.cli("calls", name, "--json", "--limit", "500")
    return [c for c in json.loads(out.stdout) if c["status"] == "ok"] if out.returncode == 0 else []


def test_sigkill_then_restart_keeps_functions_versions_aliases_and_queued_events(
    runtime_images, tmp_path: Path, make_function, docker_client, figures
) -> None:
    state = tmp_path / "state"
    gw = start_gateway(state)
    try:
        name, folder = _deploy_version(gw, make_function, None, None, "one")
        _deploy_version(gw, make_function, name, folder, "two")
        lam = lambda_client(gw.url)
        lam.create_alias(FunctionName=name, Name="stable", FunctionVersion="1")
        other, other_folder = make_function("def handler(e, c):\n    return 'other'\n")
        gw.deploy(other_folder)
        assert gw.invoke(other).json() == "other"
        ids = [
            lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": i, "sleep": 1}).encode())[
                "ResponseMetadata"
            ]["RequestId"]
            for i in range(8)
        ]
        time.sleep(0.5)  # some events are running, the others wait in the queue
        finished_before = len({c["request_id"] for c in _ok_calls(gw, name)} & set(ids))
        orphans = {c.id for c in gw.containers(docker_client)}
        assert orphans
        os.killpg(gw.proc.pid, signal.SIGKILL)  # arbiter and worker at once: no cleanup of any kind
        gw.proc.wait(10)
        assert orphans <= {c.id for c in gw.containers(docker_client)}, "the containers outlive the crash"
    finally:
        stop_gateway(gw)

    started = time.monotonic()
    gw = start_gateway(state)
    try:
        restart_s = time.monotonic() - started
        assert not orphans & {c.id for c in gw.containers(docker_client)}, "orphans of the crashed gateway remain"
        lam = lambda_client(gw.url)
        versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
        assert versions == ["$LATEST", "1", "2"]
        assert lam.get_alias(FunctionName=name, Name="stable")["FunctionVersion"] == "1"
        assert gw.invoke(name).json()["version"] == "two"
        assert gw.invoke(name, params={"Qualifier": "stable"}).json()["version"] == "one"
        assert gw.invoke(name, params={"Qualifier": "1"}).json()["version"] == "one"
        assert gw.invoke(other).json() == "other"
        listed = requests.get(f"{gw.url}/system/functions", timeout=10).json()
        assert sorted(f["name"] for f in listed) == sorted([name, other])
        done = wait_for(lambda: {c["request_id"] for c in _ok_calls(gw, name)} >= set(ids), timeout=60, step=0.5)
        assert done, "queued events were lost in the crash"
        failures = gw.cli("failures", name)
        assert failures.returncode == 0 and not failures.stdout.strip()
        figures.add(
            "sigkill and restart",
            restart_s=round(restart_s, 1),
            events_sent=len(ids),
            events_unfinished_at_kill=len(ids) - finished_before,
            events_lost=0,
        )
    finally:
        assert stop_gateway(gw) == 0
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
    assert not left


def test_sigterm_waits_for_a_call_only_up_to_its_timeout_and_keeps_queued_events(
    runtime_images, tmp_path: Path, make_function, docker_client, figures
) -> None:
    """A call in flight that would outlast its timeout ends at the timeout (not at gunicorn's 905 s
    grace), the gateway exits, and Event calls still queued run after the next start."""
    state = tmp_path / "state"
    gw = start_gateway(state)
    try:
        name, folder = _deploy_version(gw, make_function, None, None, "one")
        (folder / "function.yaml").write_text((folder / "function.yaml").read_text().replace("timeout: 10", "timeout: 4"))
        gw.deploy(folder)
        assert gw.invoke(name).status_code == 200
        lam = lambda_client(gw.url)
        ids = [
            lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": i, "sleep": 1}).encode())[
                "ResponseMetadata"
            ]["RequestId"]
            for i in range(30)
        ]  # 7.5 s of work for the 4 async workers
        answered: dict[str, object] = {}

        def overrunning_call() -> None:
            r = gw.invoke(name, b'{"sleep": 60, "id": "long"}')
            answered["body"] = r.json()

        caller = threading.Thread(target=overrunning_call)
        caller.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        caller.join(30)
        assert gw.proc.wait(30) == 0
        exit_s = time.monotonic() - signalled
        assert answered["body"]["errorType"] == "Sandbox.Timedout", answered  # type: ignore[index]
        assert exit_s < 4 + 20, exit_s  # the call's timeout and the containers' removal, not gunicorn's 905 s
        assert gw.containers(docker_client) == []
        done_before = {c["request_id"] for c in _ok_calls_db(state, name)}
    finally:
        stop_gateway(gw)
    gw = start_gateway(state)
    try:
        assert set(ids) - done_before, "every event ran before the gateway stopped: nothing was left to survive"
        assert wait_for(lambda: {c["request_id"] for c in _ok_calls(gw, name)} >= set(ids), timeout=60, step=0.5)
        figures.add(
            "sigterm",
            exit_after_signal_s=round(exit_s, 1),
            call_timeout_s=4,
            events_queued=len(ids),
            events_run_after_restart=len(set(ids) - done_before),
        )
    finally:
        assert stop_gateway(gw) == 0
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
    assert not left


def _ok_calls_db(state: Path, name: str) -> list[dict]:
    """The invocation records of a stopped gateway, read from its state database."""
    import sqlite3

    with sqlite3.connect(state / "faas.db") as db:
        rows = db.execute("SELECT request_id FROM invocations WHERE name = ? AND status = 'ok'", (name,)).fetchall()
    return [{"request_id": r[0]} for r in rows]


def test_worker_killed_alone_is_replaced_and_serves_the_same_state(
    runtime_images, tmp_path: Path, make_function, docker_client
) -> None:
    gw = start_gateway(tmp_path / "state")
    try:
        name, folder = make_function("def handler(e, c):\n    return 'still here'\n")
        gw.deploy(folder)
        assert gw.invoke(name).json() == "still here"
        before = {c.id for c in gw.containers(docker_client)}
        old_worker = worker_pid(gw)
        os.kill(old_worker, signal.SIGKILL)
        new_worker = wait_for(lambda: _other_worker(gw, old_worker), timeout=30)
        assert new_worker, "the arbiter did not start a new worker"
        answered = wait_for(lambda: _answers(gw, name), timeout=60, step=0.3)
        assert answered == "still here"
        assert not before & {c.id for c in gw.containers(docker_client)}, "the dead worker's containers remain"
    finally:
        assert stop_gateway(gw) == 0
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
    assert not left


def _other_worker(gw: Gateway, old: int) -> int | None:
    try:
        pid = worker_pid(gw)
    except (AssertionError, OSError):
        return None
    return pid if pid != old else None


def _answers(gw: Gateway, name: str) -> object:
    try:
        r = gw.invoke(name, timeout=10)
    except Exception:
        return None
    return r.json() if r.status_code == 200 else None
