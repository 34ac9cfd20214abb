"""Prometheus metrics of one gateway, served at GET /metrics.

Counts and latencies are kept by a scheduler listener, so record() runs on every call's
path. It takes one lock and bumps plain integers: a counter per (status, start) and one
bucket of a fixed histogram per call. prometheus-client's own Counter and Histogram would
take a lock per value touched (three or four per call) and cost about five times as much
(bench/observe.py times both listeners); here its metric families are built only when
Prometheus scrapes, as are the gauges that describe the present (environments per state,
their memory from cgroups, the async queue).

The registry is this object's own (not prometheus_client's global one), so several
platforms in one process (the tests) never share or clash over series.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from faas.models import FunctionVersion, Result

LOG = logging.getLogger(__name__)

# From a warm call of a trivial handler (about a millisecond) up to Lambda's 900 s timeout.
DURATION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
# Init runs at most Lambda's 10 s init phase.
INIT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
THROTTLED_STATUS = "throttled"  # not a Status: a throttled call never ran
THROTTLED_START = "none"  # nor a StartType: it never reached an environment


class _Histogram:
    """Counts per bucket (the last one is +Inf) and the sum; the caller holds the lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value: Prometheus' "le"
        self.sum += value

    def copy(self) -> _Histogram:
        twin = _Histogram(self.bounds)
        twin.counts = list(self.counts)
        twin.sum = self.sum
        return twin

    def family_samples(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs ending with +Inf, as a HistogramMetricFamily takes them."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), total))
        return out


class _Tally:
    """One function's counts since the gateway started."""

    __slots__ = ("calls", "duration", "init")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.duration = _Histogram(DURATION_BUCKETS)
        self.init = _Histogram(INIT_BUCKETS)


class Metrics:
    """The platform's Prometheus registry; record() and throttled() are the only hot-path entries.

    The scrape-time gauges read what they are given (Platform.__init__ passes its own
    callables), never the platform's parts: the metrics know nothing of how it is built."""

    def __init__(
        self,
        *,
        environments: Callable[[], Iterable[Mapping[str, Any]]] = lambda: (),
        containers: Callable[[], Iterable[tuple[str, str]]] = lambda: (),
        memory_usage_bytes: Callable[[str], int] | None = None,
        async_queue_depth: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_CallCollector(self))
        self.registry.register(_PresentCollector(environments, containers, memory_usage_bytes, async_queue_depth))

    # ---- the hot path ------------------------------------------------------------------

    def record(self, fv: FunctionVersion, result: Result) -> None:
        """Scheduler listener: count one finished call and observe its durations."""
        name = fv.name
        key = (result.status, result.start)  # StrEnums: equal to, and exposed as, their plain values
        init = result.init_duration_ms
        with self._lock:
            tally = self._tallies.get(name)
            if tally is None:
                tally = self._tallies[name] = _Tally()
            tally.calls[key] = tally.calls.get(key, 0) + 1
            tally.duration.observe(result.duration_ms / 1000.0)
            if init is not None:
                tally.init.observe(init / 1000.0)

    def throttled(self, name: str) -> None:
        """Scheduler listener: a call refused with 429 (TooManyRequestsException) before it reached an environment."""
        key = (THROTTLED_STATUS, THROTTLED_START)
        with self._lock:
            tally = self._tallies.get(name)
            if tally is None:
                tally = self._tallies[name] = _Tally()
            tally.calls[key] = tally.calls.get(key, 0) + 1

    # ---- exposition --------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) in Prometheus' text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def families(self) -> list[Metric]:
        """The call counters and histograms as metric families, from one consistent copy."""
        calls = CounterMetricFamily(
            "faas_invocations",
            "Calls by function, outcome (ok, error, timeout, oom, throttled) and start type "
            "(cold, prestarted, warm; none when throttled).",
            labels=("function", "status", "start"),
        )
        duration = HistogramMetricFamily(
            "faas_invocation_duration_seconds",
            "Duration of a call in its environment, as in the REPORT line.",
            labels=("function",),
        )
        init = HistogramMetricFamily(
            "faas_init_duration_seconds",
            "Init Duration of new environments: the runtime and the function's own init.",
            labels=("function",),
        )
        with self._lock:  # copies only: the text is built after the hot path has its lock back
            copies = [(name, dict(t.calls), t.duration.copy(), t.init.copy()) for name, t in self._tallies.items()]
        for name, counts, durations, inits in sorted(copies, key=lambda c: c[0]):
            for (status, start), count in sorted(counts.items()):
                calls.add_metric([name, status, start], count)
            if any(durations.counts):
                duration.add_metric([name], durations.family_samples(), durations.sum)
            if any(inits.counts):
                init.add_metric([name], inits.family_samples(), inits.sum)
        return [calls, duration, init]


class _CallCollector(Collector):
    """Exposes what record() and throttled() counted."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        for family in self._metrics.families():
            family.samples = []
            yield family

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics.families()


class _PresentCollector(Collector):
    """Gauges of what exists right now, read at scrape time only."""

    def __init__(
        self,
        environments: Callable[[], Iterable[Mapping[str, Any]]],
        containers: Callable[[], Iterable[tuple[str, str]]],
        memory_usage_bytes: Callable[[str], int] | None,
        queue_depth: Callable[[], int | None],
    ) -> None:
        self._environments = environments
        self._containers = containers
        self._memory = memory_usage_bytes
        self._queue_depth = queue_depth

    def describe(self) -> Iterator[Metric]:
        # Declared without reading anything: registering must not call into the platform.
        yield GaugeMetricFamily(
            "faas_environments", "Execution environments by function and state.", labels=("function", "state")
        )
        yield GaugeMetricFamily(
            "faas_environment_memory_bytes",
            "Memory in use by the function's containers now, from their cgroups.",
            labels=("function",),
        )
        yield GaugeMetricFamily("faas_async_queue_depth", "Asynchronous (Event) calls waiting to run.")

    def collect(self) -> Iterator[Metric]:
        envs = GaugeMetricFamily(
            "faas_environments", "Execution environments by function and state.", labels=("function", "state")
        )
        counts: dict[tuple[str, str], int] = {}
        try:
            for snap in self._environments():
                key = (str(snap.get("function") or ""), str(snap.get("state") or "unknown").lower())
                counts[key] = counts.get(key, 0) + 1
        except Exception:  # a scrape must never fail because one part of the platform did
            LOG.exception("metrics: listing environments failed")
        for (function, state), n in sorted(counts.items()):
            envs.add_metric([function, state], n)
        yield envs

        memory = GaugeMetricFamily(
            "faas_environment_memory_bytes",
            "Memory in use by the function's containers now, from their cgroups.",
            labels=("function",),
        )
        if self._memory is not None:
            used: dict[str, int] = {}
            try:
                for function, container_id in self._containers():
                    used[function] = used.get(function, 0) + self._memory(container_id)
            except Exception:
                LOG.exception("metrics: reading container memory failed")
            for function, total in sorted(used.items()):
                memory.add_metric([function], total)
        yield memory

        depth: int | None = None
        try:
            depth = self._queue_depth()
        except Exception:
            LOG.exception("metrics: reading the async queue depth failed")
        queue = GaugeMetricFamily("faas_async_queue_depth", "Asynchronous (Event) calls waiting to run.")
        queue.add_metric([], depth or 0)
        yield queue
