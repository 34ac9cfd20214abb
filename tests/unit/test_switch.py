"""The switch between versions, on the real Platform with host processes for containers:
no call fails while versions change, a version that cannot start never goes live, rollback,
and zips dropped into STATE/incoming/."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.config import Config
from faas.errors import FunctionNotFound, ValidationError, VersionInitFailed
from faas.platform import Platform
from tests.fakes import ProcessExecutor


def fn_zip(name: str, code: str, extra: dict[str, str] | None = None, yaml_text: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("function.yaml", yaml_text or f"name: {name}\nruntime: python3.11\nhandler: app.handler\n")
        z.writestr("app.py", code)
        for path, text in (extra or {}).items():
            z.writestr(path, text)
    return buf.getvalue()


def returns(value: object) -> str:
    return f"def handler(e, c):\n    return {value!r}\n"


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    executor = ProcessExecutor()
    p = Platform(Config.load({"state_dir": str(tmp_path / "state")}, env={}), executor, lambda runtime: "fake-image")
    yield p
    p.shutdown(wait_s=2)
    assert not executor.procs, "every fake container was removed"


def test_redeploys_under_load_drop_no_call_and_never_go_back(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns(1)))
    stop = threading.Event()
    seen: list[list[tuple[int, object]]] = [[], []]
    failures: list[str] = []

    def client(i: int) -> None:
        while not stop.is_set():
            try:
                r = platform.invoke("f", b"{}")
            except Exception as e:  # noqa: BLE001 - any exception is a failed call here
                failures.append(f"{type(e).__name__}: {e}")
                continue
            if r.function_error:
                failures.append(r.payload.decode())
            seen[i].append((r.version, json.loads(r.payload)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(2, 12):
            out = platform.deploy_zip(fn_zip("f", returns(n)))
            assert out.changed and out.version.version == n
            # the deploy answers once the new version is live: the next call runs it
            assert json.loads(platform.invoke("f", b"{}").payload) == n
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []
    for calls in seen:
        assert calls, "each client made calls"
        versions = [v for v, _ in calls]
        assert versions == sorted(versions), "a client saw an older version after a newer one"
        assert all(v == payload for v, payload in calls), "each version answered with its own code"


def versions_running(platform: Platform, name: str) -> list[int]:
    return sorted(e["version"] for e in platform.environments() if e.get("function") == name)


def test_old_environments_drain_idle_at_once_busy_when_their_call_ends(platform: Platform) -> None:
    code = "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 1\n"
    platform.deploy_zip(fn_zip("f", code))
    slow: dict[str, object] = {}
    t = threading.Thread(target=lambda: slow.update(r=platform.invoke("f", b'{"sleep": 1.5}')))
    t.start()
    assert wait_for(lambda: len(versions_running(platform, "f")) == 1)
    platform.invoke("f", b"{}")  # a second, idle environment of version 1
    assert versions_running(platform, "f") == [1, 1]
    platform.deploy_zip(fn_zip("f", code.replace("return 1", "return 2")))
    assert versions_running(platform, "f") == [1, 2]  # the idle one went; the busy one finishes its call
    t.join(10)
    r = slow["r"]
    assert (r.version, r.payload, r.function_error) == (1, b"1", None)  # type: ignore[attr-defined]
    assert wait_for(lambda: versions_running(platform, "f") == [2])


def test_a_version_that_cannot_start_never_goes_live(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns("v1")))
    assert platform.invoke("f", b"{}").payload == b'"v1"'
    with pytest.raises(VersionInitFailed) as caught:
        platform.deploy_zip(fn_zip("f", "import not_a_module\n"))
    err = caught.value
    assert err.extra["Version"] == 2 and err.extra["LiveVersion"] == 1
    assert err.extra["ErrorType"] == "Runtime.ImportModuleError"
    r = platform.invoke("f", b"{}")
    assert (r.version, r.payload) == (1, b'"v1"')
    assert platform.deploy_problems()["f"].summary() == "failed: Runtime.ImportModuleError in version 2"
    log = "\n".join(platform.logs("f"))
    assert "Status: error\tError Type: Runtime.ImportModuleError" in log
    assert "version 2 failed to initialise" in log and "version 1 stays live" in log
    infos = platform.versions("f")
    assert [(i.version.version, i.live, i.problem is not None) for i in infos] == [(1, True, False), (2, False, True)]
    # the next good deploy clears the problem
    out = platform.deploy_zip(fn_zip("f", returns("v3")))
    assert out.version.version == 3
    assert platform.invoke("f", b"{}").payload == b'"v3"'
    assert "f" not in platform.deploy_problems()


def test_saving_back_what_is_live_mends_the_status(platform: Platform) -> None:
    good = fn_zip("f", returns(1))
    platform.deploy_zip(good)
    with pytest.raises(VersionInitFailed):
        platform.deploy_zip(fn_zip("f", "def handler(e, c)\n"))
    assert "f" in platform.deploy_problems()
    again = platform.deploy_zip(good)
    assert not again.changed and again.version.version == 1
    assert "f" not in platform.deploy_problems()


def test_a_refused_package_for_an_existing_function_is_shown(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns(1)))
    with pytest.raises(ValidationError):
        platform.deploy_zip(fn_zip("f", returns(2), yaml_text="name: [oops\n"), expected_name="f")
    assert platform.deploy_problems()["f"].summary().startswith("refused: function.yaml: not valid YAML")
    assert any("deploy refused" in line for line in platform.logs("f"))
    assert platform.invoke("f", b"{}").payload == b"1"


def test_rollback_to_the_previous_version_and_to_a_chosen_one(platform: Platform) -> None:
    for n in (1, 2, 3):
        platform.deploy_zip(fn_zip("f", returns(n)))
    with pytest.raises(VersionInitFailed):
        platform.deploy_zip(fn_zip("f", "import nope\n"))  # version 4, failed
    live, before = platform.rollback("f")
    assert (live.version, before.version) == (2, 3)
    r = platform.invoke("f", b"{}")
    assert (r.version, r.payload) == (2, b"2")
    live, before = platform.rollback("f", 3)
    assert (live.version, before.version) == (3, 2)
    assert platform.invoke("f", b"{}").payload == b"3"
    live, before = platform.rollback("f", 3)
    assert live.version == before.version == 3
    platform.rollback("f", 1)
    with pytest.raises(ValidationError, match="no version before 1"):
        platform.rollback("f")
    with pytest.raises(FunctionNotFound):
        platform.rollback("f", 99)
    with pytest.raises(VersionInitFailed):
        platform.rollback("f", 4)
    assert platform.invoke("f", b"{}").payload == b"1"
    # the deploy after a rollback is a new number, as on Lambda
    assert platform.deploy_zip(fn_zip("f", returns(5))).version.version == 5


def test_a_zip_dropped_into_incoming_goes_live(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns("by api")))
    incoming = platform.config.state_dir / "incoming"
    tmp = incoming / "f.zip.part"
    tmp.write_bytes(fn_zip("f", returns("by hand")))
    os.replace(tmp, incoming / "f.zip")
    assert wait_for(lambda: platform.invoke("f", b"{}").payload == b'"by hand"')
    assert platform.get("f").version == 2
    assert wait_for(lambda: not (incoming / "f.zip").exists())


def test_a_dropped_zip_that_escapes_is_refused_and_writes_nothing_outside(platform: Platform, tmp_path: Path) -> None:
    platform.deploy_zip(fn_zip("f", returns(1)))
    state = platform.config.state_dir
    before_parent = set(os.listdir(tmp_path))
    before_packages = set(os.listdir(state / "packages"))
    incoming = state / "incoming"
    (incoming / "f.zip").write_bytes(fn_zip("f", returns(2), extra={"../../escaped.py": "x = 1\n"}))
    assert wait_for(lambda: (incoming / "f.zip.rejected").exists())
    assert set(os.listdir(tmp_path)) == before_parent
    assert set(os.listdir(state / "packages")) == before_packages
    assert not (state / "escaped.py").exists() and not (tmp_path / "escaped.py").exists()
    assert "'..'" in platform.deploy_problems()["f"].message
    assert platform.invoke("f", b"{}").payload == b"1"


def test_remove_forgets_the_problems(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns(1)))
    with pytest.raises(VersionInitFailed):
        platform.deploy_zip(fn_zip("f", "import nope\n"))
    platform.remove("f")
    assert platform.deploy_problems() == {}
    platform.deploy_zip(fn_zip("f", returns(1)))
    assert [i.version.version for i in platform.versions("f")] == [1]


def test_admin_api_reports_failures_lists_versions_and_rolls_back(platform: Platform) -> None:
    from gateway.app import create_app

    client = create_app(platform).test_client()
    assert client.put("/system/functions/f", data=fn_zip("f", returns(1))).status_code == 201
    assert client.put("/system/functions/f", data=fn_zip("f", returns(2))).status_code == 201
    r = client.put("/system/functions/f", data=fn_zip("f", "def handler(e, c)\n    return 3\n"))
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "InitializationFailedException"
    body = r.get_json()
    assert body["Version"] == 3 and body["LiveVersion"] == 2 and "version 2 stays live" in body["Message"]
    listed = client.get("/system/functions").get_json()
    assert listed[0]["version"] == 2
    assert (
        listed[0]["deploy_problem"]["summary"].startswith("failed: ") and "in version 3" in listed[0]["deploy_problem"]["summary"]
    )
    versions = client.get("/system/functions/f/versions").get_json()
    assert [(v["version"], v["live"], bool(v["problem"])) for v in versions] == [
        (1, False, False),
        (2, True, False),
        (3, False, True),
    ]
    back = client.post("/system/functions/f/rollback", json={})
    assert back.status_code == 200
    assert (back.get_json()["version"], back.get_json()["previous_version"], back.get_json()["changed"]) == (1, 2, True)
    r = client.post("/2015-03-31/functions/f/invocations", data=b"{}")
    assert r.data == b"1"
    r = client.post("/2015-03-31/functions/f/invocations?Qualifier=1", data=b"{}")
    assert r.headers["X-Amz-Executed-Version"] == "1" and r.data == b"1"
    assert client.post("/system/functions/f/rollback", json={"version": "two"}).status_code == 400
    assert client.post("/system/functions/f/rollback", json={"version": 9}).status_code == 404
    assert client.get("/system/functions/nope/versions").status_code == 404


def test_the_same_broken_package_again_is_retried_under_its_number(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("f", returns(1)))
    broken = fn_zip("f", "import nope\n")
    for _ in range(2):
        with pytest.raises(VersionInitFailed) as caught:
            platform.deploy_zip(broken)
        assert caught.value.extra["Version"] == 2
    assert [i.version.version for i in platform.versions("f")] == [1, 2]
    assert platform.deploy_zip(fn_zip("f", returns(3))).version.version == 3


def test_a_switch_takes_the_prestarted_container_on_its_way_rather_than_start_its_own(tmp_path: Path) -> None:
    """The new version's first environment comes from a pre-started container even when the
    only one was just taken and its replacement is still starting (the first save of
    bench/redeploy.py, whose switch used to start its own container: ~1 s on a busy machine)."""
    executor = ProcessExecutor()
    config = Config.load({"state_dir": str(tmp_path / "state"), "prestart_max": 1}, env={})
    p = Platform(config, executor, lambda runtime: "fake-image")
    try:
        p.deploy_zip(fn_zip("f", returns(1)))
        p.deploy_zip(fn_zip("other", returns("x")))
        p.prestarted.reconcile({"python3.11"})
        assert wait_for(lambda: any(e.connected.is_set() for e in p.prestarted.environments()))
        assert p.invoke("other", b"{}").start == "prestarted"  # takes the only one; its refill starts
        p.deploy_zip(fn_zip("f", returns(2)))
        first = p.invoke("f", b"{}")
        assert (first.version, first.payload, first.start) == (2, b"2", "prestarted")
        assert p.prestarted.missed_total == 0
    finally:
        p.shutdown(wait_s=2)
    assert not executor.procs, "every fake container was removed"
