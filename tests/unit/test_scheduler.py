"""The invocation path (platform, scheduler, pool, environment, Runtime API server, log capture)
with host processes standing in for containers: fast, and every part but Docker is real."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.config import Config
from faas.errors import FunctionNotFound, RequestTooLarge, TooManyRequests
from faas.platform import Platform
from tests.fakes import ProcessExecutor


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def fn_zip(name: str, code: str, **spec: object) -> bytes:
    lines = [f"name: {name}", "runtime: python3.11", "handler: app.handler"] + [f"{k}: {v}" for k, v in spec.items()]
    return make_zip({"function.yaml": "\n".join(lines) + "\n", "app.py": code})


@pytest.fixture(params=["direct-ahead", "direct", "threaded"])
def platform(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Platform]:
    """Every way a runtime may talk: driven by the calling thread with the answer to a result
    sent ahead with the next event (the Python bootstrap) or at once (the Node bootstrap), or
    served by the Runtime API server's threads (any other client, e.g. through the TCP forwarder)."""
    executor = ProcessExecutor(direct={"direct-ahead": "2", "direct": "1", "threaded": False}[request.param])
    p = Platform(Config.load({"state_dir": str(tmp_path / "state")}, env={}), executor, lambda runtime: "fake-image")
    yield p
    p.shutdown(wait_s=2)
    assert not executor.procs, "every fake container was removed"


ECHO = "import os\ncount = 0\ndef handler(event, context):\n    global count\n    count += 1\n    print('called', count)\n    return {'event': event, 'count': count, 'pid': os.getpid(), 'fn': os.environ['AWS_LAMBDA_FUNCTION_NAME']}\n"


def test_cold_then_warm_call_on_the_same_environment(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("echo", ECHO))
    first = platform.invoke("echo", b'{"a": 1}')
    second = platform.invoke("echo", b'{"a": 2}')
    a, b = json.loads(first.payload), json.loads(second.payload)
    assert a["event"] == {"a": 1} and b["event"] == {"a": 2}
    assert a["fn"] == "echo"
    assert (first.start, second.start) in (("cold", "warm"), ("prestarted", "warm"))
    assert b["pid"] == a["pid"] and b["count"] == 2
    assert first.init_duration_ms is not None and second.init_duration_ms is None


def test_logs_are_framed_like_lambda(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("echo", ECHO))
    r = platform.invoke("echo", b"{}")
    lines = r.logs.splitlines()
    assert lines[0] == f"START RequestId: {r.request_id} Version: 1"
    assert lines[1] == "called 1"
    assert lines[2] == f"END RequestId: {r.request_id}"
    assert lines[3].startswith(f"REPORT RequestId: {r.request_id}\tDuration: ")
    assert "\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: " in lines[3]
    stored = platform.logs("echo")
    assert stored[0].startswith("INIT_START")
    assert f"END RequestId: {r.request_id}" in stored


def test_function_error_is_a_result_not_an_exception(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("bad", "def handler(e, c):\n    raise ValueError('boom')\n"))
    r = platform.invoke("bad", b"{}")
    assert r.function_error == "Unhandled"
    assert r.error_type == "ValueError"
    assert json.loads(r.payload)["errorMessage"] == "boom"
    again = platform.invoke("bad", b"{}")
    assert again.start == "warm"  # a handled function error keeps the environment


def test_init_error_is_reported_and_the_environment_discarded(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("noimp", "import not_a_module\n"))
    r = platform.invoke("noimp", b"{}")
    assert r.function_error == "Unhandled"
    assert r.error_type == "Runtime.ImportModuleError"
    assert platform.environments() == []


def test_timeout_kills_the_environment_and_the_next_call_works(platform: Platform) -> None:
    code = "import time\ndef handler(e, c):\n    if e.get('sleep'):\n        time.sleep(e['sleep'])\n    return 'ok'\n"
    platform.deploy_zip(fn_zip("slow", code, timeout=1))
    platform.invoke("slow", b"{}")
    t = time.monotonic()
    r = platform.invoke("slow", b'{"sleep": 5}')
    took = time.monotonic() - t
    assert r.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(r.payload)["errorMessage"]
    assert 1.0 <= took < 1.5
    assert "Task timed out after 1.00 seconds" in platform.logs("slow")[-1]
    r2 = platform.invoke("slow", b"{}")
    assert r2.payload == b'"ok"' and r2.start in ("cold", "prestarted")


def test_environment_killed_from_outside_fails_the_call_cleanly(platform: Platform) -> None:
    code = "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'ok'\n"
    platform.deploy_zip(fn_zip("victim", code, timeout=10))
    platform.invoke("victim", b"{}")
    executor = platform.executor
    import threading

    threading.Timer(0.3, lambda: [executor.kill(c) for c in list(executor.procs)]).start()  # type: ignore[attr-defined]
    t = time.monotonic()
    r = platform.invoke("victim", b'{"sleep": 5}')
    assert time.monotonic() - t < 1.5
    assert r.error_type == "Runtime.ExitError"
    assert platform.invoke("victim", b"{}").payload == b'"ok"'


def test_unknown_function_and_oversized_payload(platform: Platform) -> None:
    with pytest.raises(FunctionNotFound) as e:
        platform.invoke("nope", b"{}")
    assert "function:nope" in str(e.value)
    platform.deploy_zip(fn_zip("echo", ECHO))
    with pytest.raises(RequestTooLarge):
        platform.invoke("echo", b'"' + b"x" * (6 * 1024 * 1024 - 1) + b'"')


def test_concurrency_cap_throttles(platform: Platform) -> None:
    import threading

    code = "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'ok'\n"
    platform.deploy_zip(fn_zip("capped", code, concurrency=1))
    t = threading.Thread(target=platform.invoke, args=("capped", b'{"sleep": 1}'))
    t.start()
    deadline = time.monotonic() + 10
    while platform.limiter.in_flight("capped") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first call holds the only slot
    with pytest.raises(TooManyRequests):
        platform.invoke("capped", b"{}")
    t.join()


def test_redeploy_retires_old_environments(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("echo", ECHO))
    platform.invoke("echo", b"{}")
    again = platform.deploy_zip(fn_zip("echo", ECHO))
    assert not again.changed
    new = platform.deploy_zip(fn_zip("echo", ECHO.replace("called", "hello")))
    assert new.changed and new.version.version == 2
    r = platform.invoke("echo", b"{}")
    assert r.start in ("cold", "prestarted") and r.version == 2 and "hello 1" in r.logs
    assert [e["version"] for e in platform.environments()] == [2]


def wait_for_stem(platform: Platform, runtime: str = "python3.11", timeout: float = 10) -> None:
    platform.prestarted.reconcile({runtime})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.connected.is_set() for e in platform.prestarted.environments()):
            return
        time.sleep(0.02)
    raise AssertionError("no pre-started container became ready")


ENV_DUMP = "import os\ndef handler(e, c):\n    return {'env': dict(os.environ), 'files': sorted(os.listdir(os.environ['FAKE_TASK_ROOT']))}\n"


def test_first_call_takes_a_prestarted_container_that_looks_like_a_cold_one(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("cold1", ENV_DUMP, memory=256, environment="{A: '1'}"))
    platform.prestarted.shutdown()  # none ready: a real cold start
    cold = platform.invoke("cold1", b"{}")
    assert cold.start == "cold"
    platform.prestarted._closed = False
    platform.deploy_zip(fn_zip("pre1", ENV_DUMP, memory=256, environment="{A: '1'}"))
    wait_for_stem(platform)
    pre = platform.invoke("pre1", b"{}")
    assert pre.start == "prestarted" and pre.init_duration_ms is not None
    assert "Init Duration" in pre.logs
    a, b = json.loads(cold.payload), json.loads(pre.payload)
    volatile = {"FAKE_TASK_ROOT", "FAAS_RUNTIME_SOCKET", "AWS_LAMBDA_LOG_STREAM_NAME"}
    lambda_vars = lambda env, name: {k: v.replace(name, "NAME") for k, v in env.items() if k not in volatile}
    assert lambda_vars(a["env"], "cold1") == lambda_vars(b["env"], "pre1")
    assert a["files"] == b["files"] == ["app.py", "function.yaml"]
    assert b["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    # the pre-started container was resized to the function's memory
    assert any(mb == 256 for _, mb in platform.executor.resized)  # type: ignore[attr-defined]
    assert platform.invoke("pre1", b"{}").start == "warm"


def test_functions_with_a_bigger_tmp_never_get_a_prestarted_container(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("bigtmp", ENV_DUMP, ephemeral_storage=1024))
    wait_for_stem(platform)
    assert platform.invoke("bigtmp", b"{}").start == "cold"


def test_memory_budget_is_released_when_environments_end(platform: Platform) -> None:
    platform.prestarted.shutdown()
    platform.deploy_zip(fn_zip("m", ECHO, memory=512))
    platform.invoke("m", b"{}")
    assert platform.budget.used_mb == 512
    platform.remove("m")
    deadline = time.monotonic() + 5
    while platform.budget.used_mb and time.monotonic() < deadline:
        time.sleep(0.01)
    assert platform.budget.used_mb == 0


def test_environment_gone_while_idle_costs_the_next_call_nothing(platform: Platform) -> None:
    platform.prestarted.shutdown()
    platform.deploy_zip(fn_zip("idle", "def handler(e, c):\n    return 'ok'\n"))
    platform.invoke("idle", b"{}")
    executor = platform.executor
    for proc in list(executor.procs.values()):  # type: ignore[attr-defined]
        import os
        import signal

        os.killpg(proc.pid, signal.SIGKILL)  # killed from outside, no engine event seen yet
        proc.wait()
    r = platform.invoke("idle", b"{}")
    assert r.function_error is None and r.payload == b'"ok"'
    assert r.start == "cold"
