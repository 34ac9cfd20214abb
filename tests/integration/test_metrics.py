"""GET /metrics and `faas top` against a real gateway and real containers: the counts after a
known sequence of calls (ok, error, timeout, out of memory, throttled; new environments and
warm ones), the gauges read from the pool and the containers' cgroups, the async queue."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Gateway

CODE = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    chunks = [bytearray(1024 * 1024) for _ in range(event.get("mb", 0))]
    return {"ok": True, "mb": len(chunks)}
"""


def scrape(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = requests.get(f"{gateway.url}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def busy(gateway: Gateway, name: str) -> bool:
    envs = requests.get(f"{gateway.url}/ui/api/overview", timeout=10).json()["environments"]
    return any(e["function"] == name and e["state"] == "busy" for e in envs)


@pytest.fixture(scope="module")
def sequence(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Deploy one function and make the known sequence of calls; returns its name."""
    import uuid

    name = f"m-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("metrics") / name
    folder.mkdir()
    (folder / "function.yaml").write_text(
        f"name: {name}\nruntime: python3.11\nhandler: app.handler\nmemory: 128\ntimeout: 1\nconcurrency: 1\n"
    )
    (folder / "app.py").write_text(CODE)
    gateway.deploy(folder)

    def call(event: dict) -> requests.Response:
        return gateway.invoke(name, json.dumps(event).encode())

    assert call({}).json()["ok"]  # 1: a new environment (cold or pre-started)
    assert call({}).json()["ok"]  # 2: warm
    assert call({"fail": True}).json()["errorType"] == "ValueError"  # 3: error, warm
    assert call({"sleep": 3}).json()["errorType"] == "Sandbox.Timedout"  # 4: timeout, warm; environment killed
    assert call({}).json()["ok"]  # 5: a new environment
    slow: list[requests.Response] = []
    thread = threading.Thread(target=lambda: slow.append(call({"sleep": 0.8})))  # 6: warm, holds the one lease
    thread.start()
    try:
        wait_until(lambda: busy(gateway, name), what="the slow call to be in flight")
        throttled = call({})  # 7: throttled
    finally:
        thread.join(30)
    assert throttled.status_code == 429 and throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert slow[0].json()["ok"]
    assert call({"mb": 400}).json()["errorType"] == "Runtime.OutOfMemory"  # 8: oom, warm; environment replaced
    assert call({}).json()["ok"]  # 9: a new environment
    return name


def test_invocations_are_counted_by_status_and_start(gateway: Gateway, sequence: str) -> None:
    s = scrape(gateway)

    def calls(status: str, start: str) -> float:
        return s.get(("faas_invocations_total", (("function", sequence), ("start", start), ("status", status))), 0)

    assert calls("ok", "cold") + calls("ok", "prestarted") == 3  # calls 1, 5 and 9 each met a new environment
    assert calls("ok", "warm") == 2
    assert calls("error", "warm") == 1
    assert calls("timeout", "warm") == 1
    assert calls("oom", "warm") == 1
    assert calls("throttled", "none") == 1
    for status in ("error", "timeout", "oom"):
        assert calls(status, "cold") + calls(status, "prestarted") == 0


def test_duration_histograms_follow_the_calls(gateway: Gateway, sequence: str) -> None:
    s = scrape(gateway)
    fn = (("function", sequence),)
    assert s[("faas_invocation_duration_seconds_count", fn)] == 8  # every call but the throttled one
    assert s[("faas_invocation_duration_seconds_bucket", fn + (("le", "+Inf"),))] == 8
    assert s[("faas_invocation_duration_seconds_sum", fn)] >= 1.0 + 0.8  # the timeout and the slow call
    assert s[("faas_init_duration_seconds_count", fn)] == 3  # one Init Duration per new environment
    assert 0 < s[("faas_init_duration_seconds_sum", fn)] < 30


def test_environment_gauges_come_from_the_pool_and_cgroups(gateway: Gateway, sequence: str) -> None:
    s = scrape(gateway)
    assert s.get(("faas_environments", (("function", sequence), ("state", "ready")))) == 1
    used = s.get(("faas_environment_memory_bytes", (("function", sequence),)), 0)
    assert 1024 * 1024 < used <= 128 * 1024 * 1024, used  # a live Python process, under its 128 MB limit


def test_async_queue_depth_counts_events_until_they_ran(gateway: Gateway, make_function) -> None:
    name, folder = make_function("import time\ndef handler(event, context):\n    time.sleep(1)\n    return 1\n", concurrency=1)
    gateway.deploy(folder)
    for _ in range(3):
        r = gateway.invoke(name, b"{}", headers={"X-Amz-Invocation-Type": "Event"})
        assert r.status_code == 202
    assert scrape(gateway)[("faas_async_queue_depth", ())] >= 2  # one may be running already; none can be done
    wait_until(lambda: scrape(gateway)[("faas_async_queue_depth", ())] == 0, timeout=60, what="the async queue to drain")


def test_faas_top_shows_the_functions_numbers(gateway: Gateway, sequence: str) -> None:
    out = gateway.cli("top", "--once", "--window", "600")
    assert out.returncode == 0, out.stderr
    assert "calls/s" in out.stdout and "p99 ms" in out.stdout
    [row] = [line.split() for line in out.stdout.splitlines() if line.strip().startswith(sequence)]
    # function, ver, calls/s, p50, p99, errors, throttled, calls, environments...
    assert row[1] == "1"
    assert float(row[2]) > 0
    assert int(row[5]) == 3 and int(row[6]) == 1 and int(row[7]) == 8, row
    assert "ready" in row[8:], row


def test_faas_top_without_a_gateway_says_so(gateway: Gateway) -> None:
    out = gateway.cli("top", "--once", "--gateway", "http://127.0.0.1:9")
    assert out.returncode == 2
    assert "no faas gateway answers" in out.stderr
