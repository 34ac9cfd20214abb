"""Metrics, the activity ring and the dashboard's JSON API: what a scrape, a dashboard poll
and `faas top` see after known calls. Synthetic Results for the arithmetic, then the real
platform with process-backed fake containers behind the real Flask app."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from faas.cli.top import render
from faas.config import Config
from faas.errors import ValidationError
from faas.models import FunctionSpec, FunctionVersion, Result
from faas.observe.activity import Activity, bucket_of, bucket_value, percentile
from faas.observe.metrics import Metrics
from faas.platform import Platform
from gateway.app import create_app
from tests.fakes import FakePlatform, ProcessExecutor


def version(name: str = "f", memory: int = 128) -> FunctionVersion:
    return FunctionVersion(FunctionSpec(name=name, memory=memory), 1, "ab" * 32, Path("/nonexistent"), 1, 0.0)


def result(status: str = "ok", start: str = "warm", ms: float = 1.0, init: float | None = None, rid: str = "r") -> Result:
    return Result(
        request_id=rid,
        payload=b"{}",
        version=1,
        duration_ms=ms,
        init_duration_ms=init,
        start=start,
        status=status,
        max_memory_mb=40,
        logs=f"START RequestId: {rid}\nREPORT RequestId: {rid}\n",
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# ---------------------------------------------------------------- Metrics


def test_metrics_count_each_outcome_and_start_type() -> None:
    metrics = Metrics()
    fv = version("f")
    metrics.record(fv, result("ok", "cold", 120.0, init=300.0))
    metrics.record(fv, result("ok", "warm", 1.0))
    metrics.record(fv, result("ok", "warm", 2.0))
    metrics.record(fv, result("error", "warm", 3.0))
    metrics.record(fv, result("timeout", "warm", 1000.0))
    metrics.throttled("f")
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    s = samples(body.decode())
    calls = lambda status, start: s.get(("faas_invocations_total", (("function", "f"), ("start", start), ("status", status))))
    assert calls("ok", "cold") == 1
    assert calls("ok", "warm") == 2
    assert calls("error", "warm") == 1
    assert calls("timeout", "warm") == 1
    assert calls("throttled", "none") == 1
    assert s[("faas_invocation_duration_seconds_count", (("function", "f"),))] == 5
    assert s[("faas_invocation_duration_seconds_sum", (("function", "f"),))] == pytest.approx(1.126)
    assert s[("faas_invocation_duration_seconds_bucket", (("function", "f"), ("le", "0.001")))] == 1
    assert s[("faas_init_duration_seconds_count", (("function", "f"),))] == 1
    assert s[("faas_init_duration_seconds_sum", (("function", "f"),))] == pytest.approx(0.3)
    assert s[("faas_async_queue_depth", ())] == 0


def test_scrape_time_gauges_read_environments_memory_and_the_queue() -> None:
    envs = [
        {"function": "a", "state": "ready"},
        {"function": "a", "state": "busy"},
        {"function": "a", "state": "ready"},
        {"function": "b", "state": "starting"},
    ]
    metrics = Metrics(
        environments=lambda: envs,
        containers=lambda: [("a", "c1"), ("a", "c2"), ("b", "c3")],
        memory_usage_bytes={"c1": 10_000_000, "c2": 5_000_000, "c3": 7}.__getitem__,
        async_queue_depth=lambda: 4,
    )
    s = samples(metrics.exposition()[0].decode())
    assert s[("faas_environments", (("function", "a"), ("state", "ready")))] == 2
    assert s[("faas_environments", (("function", "a"), ("state", "busy")))] == 1
    assert s[("faas_environments", (("function", "b"), ("state", "starting")))] == 1
    assert s[("faas_environment_memory_bytes", (("function", "a"),))] == 15_000_000
    assert s[("faas_environment_memory_bytes", (("function", "b"),))] == 7
    assert s[("faas_async_queue_depth", ())] == 4
    envs.clear()  # read at scrape time, not cached
    s = samples(metrics.exposition()[0].decode())
    assert not any(name == "faas_environments" for name, _ in s)


def test_a_failing_gauge_source_does_not_break_the_scrape() -> None:
    def broken() -> list[dict[str, str]]:
        raise RuntimeError("pool is being reworked")

    metrics = Metrics(environments=broken, async_queue_depth=lambda: 1 // 0)
    metrics.record(version("f"), result())
    s = samples(metrics.exposition()[0].decode())
    assert s[("faas_invocations_total", (("function", "f"), ("start", "warm"), ("status", "ok")))] == 1


# ---------------------------------------------------------------- Activity


def test_latency_buckets_are_within_five_percent() -> None:
    for value in (0.02, 0.5, 1.0, 1.7, 12.0, 250.0, 3000.0, 900_000.0):
        assert bucket_value(bucket_of(value)) == pytest.approx(value, rel=0.05)
    assert percentile({}, 50) is None
    counts: dict[int, int] = {}
    for v in [1.0] * 98 + [100.0, 200.0]:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    assert percentile(counts, 50) == pytest.approx(1.0, rel=0.05)
    assert percentile(counts, 99) == pytest.approx(100.0, rel=0.05)
    assert percentile(counts, 100) == pytest.approx(200.0, rel=0.05)


def test_recent_calls_come_once_each_with_a_cursor_and_the_ring_is_bounded() -> None:
    activity = Activity(ring_size=5)
    fv = version("f")
    for i in range(3):
        activity.record(fv, result(rid=f"r{i}"))
    cursor, calls = activity.recent(0)
    assert [c["request_id"] for c in calls] == ["r0", "r1", "r2"] and cursor == 3
    assert calls[0]["logs"].startswith("START RequestId: r0")
    assert activity.recent(cursor) == (3, [])
    for i in range(3, 10):
        activity.record(fv, result(rid=f"r{i}"))
    cursor2, calls = activity.recent(cursor)
    assert [c["request_id"] for c in calls] == ["r5", "r6", "r7", "r8", "r9"]  # r3, r4 were pushed out
    assert cursor2 == 10
    assert [c["request_id"] for c in activity.recent(0, limit=2)[1]] == ["r8", "r9"]
    assert len(activity.recent(10_000)[1]) == 5  # a cursor from before a restart starts over
    activity.throttled("g")
    _, calls = activity.recent(cursor2)
    assert calls == [dict(calls[0], function="g", status="throttled", request_id=None)]


def test_concurrent_recorders_never_make_a_poller_skip_a_call() -> None:
    activity = Activity(ring_size=100_000)
    fv = version("f")
    seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        cursor = 0
        while True:
            done = stop.is_set()
            cursor, calls = activity.recent(cursor, limit=100_000)
            seen.extend(c["request_id"] for c in calls)
            if done:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    writers = [
        threading.Thread(target=lambda w=w: [activity.record(fv, result(rid=f"{w}-{i}")) for i in range(2000)]) for w in range(4)
    ]
    [t.start() for t in writers]
    [t.join() for t in writers]
    stop.set()
    poller.join()
    assert len(seen) == 8000 and len(set(seen)) == 8000


def test_summary_and_series_per_second() -> None:
    now = [1000.2]
    activity = Activity(clock=lambda: now[0])
    fv = version("f")
    for _ in range(9):
        activity.record(fv, result(ms=1.0))
    activity.record(fv, result("error", ms=50.0))
    now[0] = 1001.5
    activity.record(fv, result("ok", "cold", ms=300.0, init=200.0))
    activity.throttled("f")
    s = activity.summary(10)["f"]
    assert s["calls"] == 11 and s["errors"] == 1 and s["throttled"] == 1 and s["cold"] == 1
    assert s["total_calls"] == 11 and s["total_throttled"] == 1
    assert s["p50_ms"] == pytest.approx(1.0, rel=0.05)
    assert s["p99_ms"] == pytest.approx(300.0, rel=0.05)
    assert s["calls_per_s"] == pytest.approx(11 / 9.5, rel=0.01)
    series = activity.series("f", 5)
    assert series["t"] == [997, 998, 999, 1000, 1001]
    assert series["calls"] == [0, 0, 0, 10, 1]
    assert series["p50"][:3] == [None, None, None]
    assert series["p99"][3] == pytest.approx(50.0, rel=0.05)
    assert series["throttled"][4] == 1
    now[0] = 1100.0  # the window moved on: nothing recent, totals stay
    s = activity.summary(10)["f"]
    assert s["calls"] == 0 and s["p50_ms"] is None and s["total_calls"] == 11
    activity.forget("f")
    assert activity.summary(10) == {}


def test_top_renders_a_row_per_function() -> None:
    from rich.console import Console

    overview = {
        "time": 0,
        "window_s": 10,
        "async_queue_depth": 2,
        "environments": [{"function": "hello", "state": "ready"}],
        "functions": [
            {
                "name": "hello",
                "version": 3,
                "memory": 128,
                "environments": {"ready": 1},
                "stats": {
                    "calls_per_s": 12.5,
                    "p50_ms": 1.04,
                    "p99_ms": 3.5,
                    "errors": 1,
                    "throttled": 0,
                    "total_calls": 200,
                    "total_errors": 4,
                    "calls": 125,
                },
            },
            {"name": "idle", "version": 1, "memory": 256, "environments": {}, "stats": None},
        ],
    }
    console = Console(width=120, record=True)
    console.print(render(overview, "http://127.0.0.1:8080"))
    text = console.export_text()
    hello = next(line for line in text.splitlines() if line.strip().startswith("hello"))
    assert "12.5" in hello and "1.04" in hello and "3.50" in hello and "1 ready" in hello and "200" in hello
    assert any(line.strip().startswith("idle") for line in text.splitlines())
    assert "async queue 2" in text


# ---------------------------------------------------------------- through the gateway, fake containers


def fn_zip(name: str, code: str, **spec: object) -> bytes:
    buf = io.BytesIO()
    lines = [f"name: {name}", "runtime: python3.11", "handler: app.handler"] + [f"{k}: {v}" for k, v in spec.items()]
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("function.yaml", "\n".join(lines) + "\n")
        z.writestr("app.py", code)
    return buf.getvalue()


CODE = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    if event.get('fail'):\n        raise ValueError('boom')\n    return {'ok': True}\n"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    executor = ProcessExecutor()
    p = Platform(Config.load({"state_dir": str(tmp_path / "state")}, env={}), executor, lambda runtime: "fake-image")
    yield p
    p.shutdown(wait_s=2)


def test_gateway_serves_metrics_and_the_dashboard_api(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("obs", CODE, concurrency=1))
    client = create_app(platform).test_client()
    url = "/2015-03-31/functions/obs/invocations"
    assert client.post(url, data=b"{}").status_code == 200  # cold
    assert client.post(url, data=b'{"fail": true}').headers["X-Amz-Function-Error"] == "Unhandled"
    slow = threading.Thread(target=lambda: create_app(platform).test_client().post(url, data=b'{"sleep": 0.5}'))
    slow.start()
    deadline = time.monotonic() + 5
    while platform.limiter.in_flight("obs") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    throttled = client.post(url, data=b"{}")
    slow.join()
    assert throttled.status_code == 429

    s = samples(client.get("/metrics").get_data(as_text=True))
    calls = lambda status, start: s.get(
        ("faas_invocations_total", (("function", "obs"), ("start", start), ("status", status))), 0
    )
    assert (calls("ok", "cold"), calls("ok", "warm"), calls("error", "warm"), calls("throttled", "none")) == (1, 1, 1, 1)
    assert s[("faas_environments", (("function", "obs"), ("state", "ready")))] == 1

    page = client.get("/ui")
    assert page.status_code == 200 and b"/ui/static/app.js" in page.data
    for asset in ("/ui/static/app.js", "/ui/static/style.css", "/ui/static/vendor/uplot/uPlot.iife.min.js"):
        assert client.get(asset).status_code == 200, asset

    overview = client.get("/ui/api/overview").get_json()
    [fn] = overview["functions"]
    assert fn["name"] == "obs" and fn["concurrency"] == 1 and fn["environments"] == {"ready": 1}
    assert fn["stats"]["calls"] == 3 and fn["stats"]["errors"] == 1 and fn["stats"]["throttled"] == 1
    assert [e["function"] for e in overview["environments"]] == ["obs"]

    calls_json = client.get("/ui/api/invocations?since=0").get_json()
    statuses = [c["status"] for c in calls_json["invocations"]]
    assert sorted(statuses) == ["error", "ok", "ok", "throttled"]
    assert client.get(f"/ui/api/invocations?since={calls_json['cursor']}").get_json()["invocations"] == []
    first = calls_json["invocations"][0]
    assert first["start"] == "cold" and first["init_duration_ms"] is not None and "REPORT RequestId" in first["logs"]

    series = client.get("/ui/api/series?function=obs&seconds=60").get_json()
    assert len(series["t"]) == 60 and sum(series["calls"]) == 3
    bad = client.get("/ui/api/invocations?limit=0")
    assert bad.status_code == 400 and "limit" in bad.get_json()["Message"]
    assert client.get("/ui/api/series").status_code == 400


def test_top_keeps_drawing_when_the_gateway_stops_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from faas.cli import top
    from faas.errors import GatewayUnavailable

    frames = [
        {
            "functions": [{"name": "hello", "version": 1, "stats": {"calls_per_s": 2.0, "total_calls": 5}}],
            "environments": [],
            "window_s": 10,
        }
    ]

    def fetch(client: object, window_s: int) -> dict:
        if frames:
            return frames.pop()
        raise GatewayUnavailable("gone")

    monkeypatch.setattr(top, "fetch_overview", fetch)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    assert top.run("http://127.0.0.1:1", console=console, iterations=2, sleep=lambda s: None) == 0
    text = buffer.getvalue()
    assert "hello" in text and "the gateway does not answer" in text
    with pytest.raises(ValidationError):
        top.run("http://127.0.0.1:1", interval_s=0)


def test_async_queue_depth_is_the_async_invokers_pending_count(platform: Platform) -> None:
    platform.deploy_zip(fn_zip("queued", CODE))
    platform.invoke_async("queued", b'{"sleep": 0.5}')
    platform.invoke_async("queued", b'{"sleep": 0.5}')
    assert 1 <= platform.async_queue_depth() <= 2  # queued or running; neither can be done yet
    client = create_app(platform).test_client()
    deadline = time.monotonic() + 20
    while platform.async_invoker.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert platform.async_queue_depth() == 0
    assert client.get("/ui/api/overview").get_json()["async_queue_depth"] == 0
    assert samples(client.get("/metrics").get_data(as_text=True))[("faas_async_queue_depth", ())] == 0


def test_dashboard_api_reads_the_platform_through_its_contract() -> None:
    fake = FakePlatform()
    fake.add("hello", memory=256, concurrency=2)
    fake.queue_depth = 3
    fake.stats = {"hello": {"calls": 5}}
    fake.activity_log = [{"function": "hello", "status": "ok"}, {"function": "other", "status": "error"}]
    fake.series["hello"] = {"t": [1], "p50": [1.0], "p99": [2.0], "calls": [5], "errors": [0], "throttled": [0]}
    fake.metrics_text = b"faas_async_queue_depth 3.0\n"
    client = create_app(fake).test_client()
    overview = client.get("/ui/api/overview?window=30").get_json()
    assert overview["async_queue_depth"] == 3 and overview["window_s"] == 30
    [fn] = overview["functions"]
    assert fn["name"] == "hello" and fn["concurrency"] == 2 and fn["stats"] == {"calls": 5}
    assert fn["environments"] == {"idle": 1}
    answer = client.get("/ui/api/invocations?since=0&function=hello").get_json()
    assert answer == {"cursor": 2, "invocations": [{"function": "hello", "status": "ok"}]}
    assert client.get("/ui/api/series?function=hello&seconds=5").get_json()["calls"] == [5]
    assert client.get("/ui/api/series?function=nope").get_json()["t"] == []
    scraped = client.get("/metrics")
    assert scraped.data == b"faas_async_queue_depth 3.0\n" and scraped.headers["Cache-Control"] == "no-store"
