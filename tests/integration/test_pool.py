"""The warm pool on the real engine: parallel environments, throttling, no stampede,
pre-started containers, memory budget, provisioned concurrency, isolation between functions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import boto3
import botocore.config
import pytest
import requests

from tests.integration.conftest import Gateway, start_gateway, stop_gateway

SLEEPY = """
import os, time
ENV = os.urandom(8).hex()  # one per environment
def handler(event, context):
    start = time.time()
    time.sleep(event.get("sleep", 0))
    return {"start": start, "end": time.time(), "env": ENV}
"""


def environments(gw: Gateway, name: str | None = None) -> list[dict]:
    envs = requests.get(f"{gw.url}/system/environments", timeout=10).json()
    return [e for e in envs if name is None or e.get("function") == name]


def calls(gw: Gateway, name: str, n: int, timeout: float = 10) -> list[dict]:
    """The function's invocation records (written in the background: wait for n of them)."""
    deadline = time.monotonic() + timeout
    while True:
        records = requests.get(f"{gw.url}/system/functions/{name}/calls", timeout=10).json()
        records = records.get("calls", records) if isinstance(records, dict) else records
        if len(records) >= n or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wait_for_prestarted(gw: Gateway, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["state"] == "prestarted" for e in environments(gw)):
            time.sleep(0.3)  # its bootstrap is up and waiting
            return
        time.sleep(0.1)
    raise AssertionError(f"no pre-started container appeared: {environments(gw)}")


def parallel(fn, n: int) -> list:
    out: list = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    return out


def test_concurrent_calls_run_in_parallel_environments(gateway: Gateway, make_function) -> None:
    name, folder = make_function(SLEEPY, timeout=10)
    gateway.deploy(folder)
    gateway.invoke(name, b'{"sleep": 1}')  # learn that a call takes about a second
    first = parallel(lambda i: gateway.invoke(name, b'{"sleep": 1}').json(), 4)  # scales out to 4
    assert len({r["env"] for r in first}) >= 2
    t = time.monotonic()
    results = parallel(lambda i: gateway.invoke(name, b'{"sleep": 1}').json(), 4)
    took = time.monotonic() - t
    assert took < 2.0, f"4 one-second calls at concurrency 4 took {took:.2f} s, not about one"
    assert len({r["env"] for r in results}) == 4
    latest_start = max(r["start"] for r in results)
    earliest_end = min(r["end"] for r in results)
    assert latest_start < earliest_end, "the four calls overlapped in time"


def test_past_the_concurrency_cap_boto3_gets_throttled(gateway: Gateway, make_function) -> None:
    name, folder = make_function(SLEEPY, timeout=10, concurrency=1)
    gateway.deploy(folder)
    lam = boto3.client(
        "lambda",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )
    slow = threading.Thread(target=gateway.invoke, args=(name, b'{"sleep": 2}'))
    slow.start()
    time.sleep(0.8)
    t = time.monotonic()
    with pytest.raises(lam.exceptions.TooManyRequestsException) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert time.monotonic() - t < 0.5, "refused at once, not queued"
    assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    slow.join()
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_simultaneous_first_calls_start_no_more_environments_than_calls(gateway: Gateway, make_function) -> None:
    name, folder = make_function(SLEEPY, timeout=10)
    gateway.deploy(folder)
    results = parallel(lambda i: gateway.invoke(name).status_code, 6)
    assert results == [200] * 6
    records = calls(gateway, name, 6)
    started = [r for r in records if r["start"] in ("cold", "prestarted")]
    assert 1 <= len(started) <= len(environments(gateway, name)) <= 6


def test_a_burst_on_a_warm_fast_function_queues_instead_of_starting_containers(gateway: Gateway, make_function) -> None:
    name, folder = make_function("def handler(e, c):\n    return 1\n")
    gateway.deploy(folder)
    for _ in range(10):
        gateway.invoke(name)
    assert len(environments(gateway, name)) == 1
    for _ in range(3):
        assert parallel(lambda i: gateway.invoke(name).status_code, 8) == [200] * 8
    # waiting ~1 ms for the busy environment beats a ~200 ms start (Fn's rule); queueing load
    # adds at most one environment per burst, started in the background
    assert len(environments(gateway, name)) <= 4, environments(gateway, name)


def test_first_call_of_a_new_function_is_served_by_a_prestarted_container(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        import os
        def handler(event, context):
            return {"task": sorted(os.listdir("/var/task")), "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
                    "limit": open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip()}
    """,
        memory=384,
    )
    gateway.deploy(folder)
    wait_for_prestarted(gateway)
    t = time.monotonic()
    r = gateway.invoke(name, headers={"X-Amz-Log-Type": "Tail"})
    took = time.monotonic() - t
    out = r.json()
    assert out["task"] == ["app.py", "function.yaml"]
    assert out["memory"] == "384" and out["limit"] == str(384 * 1024 * 1024)  # resized to the function's memory
    [record] = calls(gateway, name, 1)
    assert record["start"] == "prestarted"
    assert took < 1.0


def test_functions_never_see_each_others_code(gateway: Gateway, make_function) -> None:
    secret_name, secret = make_function("def handler(e, c):\n    return 'mine'\n", files={"secret.txt": "s3cr3t"})
    gateway.deploy(secret)
    gateway.invoke(secret_name)
    spy_name, spy = make_function("""
        import os
        def handler(event, context):
            found = []
            for root in ("/var/task", "/run/faas", "/tmp", "/"):
                for dirpath, dirnames, filenames in os.walk(root):
                    if dirpath.startswith(("/proc", "/sys", "/usr", "/dev")):
                        dirnames[:] = []
                        continue
                    found += [os.path.join(dirpath, f) for f in filenames if f == "secret.txt"]
            return {"found": found, "task": sorted(os.listdir("/var/task")), "run": sorted(os.listdir("/run/faas"))}
    """)
    gateway.deploy(spy)
    wait_for_prestarted(gateway)
    for _ in range(2):  # a pre-started container, then the same one reused
        out = gateway.invoke(spy_name).json()
        assert out["found"] == []
        assert out["task"] == ["app.py", "function.yaml"]
        assert out["run"] == ["aws.sock", "out", "runtime.sock"]  # its own sockets (Runtime API, Invoke relay) and log pipe
    spy_containers = {e["container"] for e in environments(gateway, spy_name)}
    secret_containers = {e["container"] for e in environments(gateway, secret_name)}
    assert spy_containers and not spy_containers & secret_containers


def test_min_warm_keeps_environments_initialised(gateway: Gateway, make_function) -> None:
    name, folder = make_function("def handler(e, c):\n    return 1\n", min_warm=2)
    gateway.deploy(folder)
    deadline = time.monotonic() + 20
    while len(environments(gateway, name)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(environments(gateway, name)) == 2
    r = gateway.invoke(name, headers={"X-Amz-Log-Type": "Tail"})
    import base64

    assert "Init Duration" not in base64.b64decode(r.headers["X-Amz-Log-Result"]).decode()
    [record] = calls(gateway, name, 1)
    assert record["start"] == "warm"


@pytest.fixture
def small_gateway(runtime_images, tmp_path: Path, docker_client):
    gw = start_gateway(
        tmp_path / "state",
        extra_env={"FAAS_MEMORY_BUDGET": "512", "FAAS_PRESTART_MIN": "0", "FAAS_PRESTART_MAX": "0", "FAAS_BUDGET_WAIT": "1"},
    )
    try:
        yield gw
    finally:
        assert stop_gateway(gw) == 0
        assert gw.containers(docker_client) == []


def test_memory_budget_evicts_the_least_recently_used_idle_environment(small_gateway: Gateway, make_function) -> None:
    gw = small_gateway
    names = []
    for _ in range(3):
        name, folder = make_function(SLEEPY, memory=256, timeout=10)
        gw.deploy(folder)
        names.append(name)
    a, b, c = names
    gw.invoke(a)
    gw.invoke(b)
    assert {e["function"] for e in environments(gw)} == {a, b}
    assert gw.invoke(c).status_code == 200  # the budget (512 MB) was full: a, least recently used, made room
    assert {e["function"] for e in environments(gw)} == {b, c}


def test_memory_budget_full_of_busy_environments_answers_429(small_gateway: Gateway, make_function) -> None:
    gw = small_gateway
    big, folder = make_function(SLEEPY, memory=512, timeout=10)
    gw.deploy(folder)
    other, folder2 = make_function(SLEEPY, memory=128)
    gw.deploy(folder2)
    slow = threading.Thread(target=gw.invoke, args=(big, b'{"sleep": 3}'))
    slow.start()
    time.sleep(1.0)
    t = time.monotonic()
    r = gw.invoke(other)
    waited = time.monotonic() - t
    assert r.status_code == 429, r.text
    assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert r.json()["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert 0.9 <= waited < 3
    slow.join()
    assert gw.invoke(other).status_code == 200
