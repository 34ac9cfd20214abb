"""Lambda's log frame around a call (faas/logs/framing.py): the exact lines, as tools grep them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from faas.logs import framing

RID = "8f5e2b8c-0000-4000-8000-000000000001"


def test_a_warm_call() -> None:
    text = framing.call_log(
        request_id=RID,
        version=3,
        output="hello\nworld",
        duration_ms=1.234,
        memory_mb=128,
        max_memory_mb=41,
    )
    assert text == (
        f"START RequestId: {RID} Version: 3\n"
        "hello\n"
        "world\n"
        f"END RequestId: {RID}\n"
        f"REPORT RequestId: {RID}\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 41 MB\t\n"
    )


def test_a_call_without_output_has_no_empty_line() -> None:
    text = framing.call_log(request_id=RID, version=1, output="", duration_ms=0.5, memory_mb=128, max_memory_mb=0)
    assert text.splitlines()[:2] == [f"START RequestId: {RID} Version: 1", f"END RequestId: {RID}"]


def test_a_cold_call_with_init_logs() -> None:
    prefix = framing.init_log("python3.11", "loading model")
    text = framing.call_log(
        request_id=RID,
        version=2,
        output="handled\n",
        duration_ms=10.0,
        memory_mb=256,
        max_memory_mb=60,
        init_ms=312.456,
    )
    assert prefix == "INIT_START Runtime Version: python3.11\nloading model\n"
    assert framing.init_log("nodejs20.x", "") == "INIT_START Runtime Version: nodejs20.x\n"
    assert (prefix + text).splitlines() == [
        "INIT_START Runtime Version: python3.11",
        "loading model",
        f"START RequestId: {RID} Version: 2",
        "handled",
        f"END RequestId: {RID}",
        f"REPORT RequestId: {RID}\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 256 MB\t"
        "Max Memory Used: 60 MB\tInit Duration: 312.46 ms\t",
    ]


def test_a_timeout_reports_at_least_the_timeout_and_says_so() -> None:
    when = datetime(2026, 12, 4, 12, 0, 1, 234567, tzinfo=UTC)
    text = framing.call_log(
        request_id=RID,
        version=1,
        output="working",
        duration_ms=2998.7,
        memory_mb=128,
        max_memory_mb=30,
        timed_out_after_s=3,
        when=when,
    )
    assert text.splitlines() == [
        f"START RequestId: {RID} Version: 1",
        "working",
        f"END RequestId: {RID}",
        f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t",
        f"2026-12-04T12:00:01.234Z {RID} Task timed out after 3.00 seconds",
    ]
    assert text.endswith("seconds\n")
    later = framing.call_log(
        request_id=RID,
        version=1,
        output="",
        duration_ms=3012.5,
        memory_mb=128,
        max_memory_mb=30,
        timed_out_after_s=3,
        when=when,
    )
    assert "\tDuration: 3012.50 ms\tBilled Duration: 3013 ms\t" in later  # a late notice is reported as measured


def test_out_of_memory_reports_the_whole_memory_as_used() -> None:
    assert framing.max_memory_used(128, 0, out_of_memory=True) == 128
    assert framing.max_memory_used(128, 40 * 1024 * 1024 + 1) == 41  # the peak, rounded up
    assert framing.max_memory_used(128, 200 * 1024 * 1024) == 128  # never over the memory size
    assert framing.max_memory_used(128, 0) == 0  # no peak read
    line = framing.report_line(RID, 153.2, 128, framing.max_memory_used(128, 0, out_of_memory=True))
    assert line == (
        f"REPORT RequestId: {RID}\tDuration: 153.20 ms\tBilled Duration: 154 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t"
    )


@pytest.mark.parametrize(
    ("duration_ms", "billed"), [(0.0, 1), (0.01, 1), (1.0, 1), (1.001, 2), (99.5, 100), (100.0, 100), (2999.99, 3000)]
)
def test_billed_duration_is_rounded_up_to_a_millisecond_and_at_least_one(duration_ms: float, billed: int) -> None:
    assert framing.billed_ms(duration_ms) == billed
    assert f"\tBilled Duration: {billed} ms\t" in framing.report_line(RID, duration_ms, 128, 1)
