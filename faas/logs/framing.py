"""Lambda's log frame around one call: INIT_START, START, END, REPORT and "Task timed out".

Pure functions that build the text; the scheduler knows the call's numbers and hands the
text to the log store. Kept apart from the scheduler so that the exact lines (which tools
grep for, and which Tail returns) are written, and tested, in one place.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

MB = 1024 * 1024


def max_memory_used(memory_mb: int, peak_bytes: int, out_of_memory: bool = False) -> int:
    """Max Memory Used in MB: the cgroup's peak rounded up, never over the memory size; the
    whole size when the call ran out of it (the peak is not read then); 0 when unknown."""
    if out_of_memory:
        return memory_mb
    return min(memory_mb, math.ceil(peak_bytes / MB)) if peak_bytes else 0


def billed_ms(duration_ms: float) -> int:
    """Lambda bills whole milliseconds, rounded up, and at least one."""
    return max(1, math.ceil(duration_ms))


def report_line(request_id: str, duration_ms: float, memory_mb: int, max_memory_mb: int, init_ms: float | None = None) -> str:
    """The REPORT line (tab-separated, with Lambda's trailing tab); Init Duration only after a start."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed_ms(duration_ms)} ms"
        f"\tMemory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    return line


def timeout_line(request_id: str, timeout_s: float, when: datetime | None = None) -> str:
    """Lambda's own line after the REPORT of a call that ran out of time (UTC, milliseconds)."""
    when = when or datetime.now(UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def _lines(text: str) -> str:
    """Output as it goes into the log: ending with a newline unless empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def call_log(
    *,
    request_id: str,
    version: int,
    output: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    timed_out_after_s: float | None = None,
    when: datetime | None = None,
) -> str:
    """START, the call's output, END and REPORT: what Tail returns.

    timed_out_after_s: the function's timeout when the call ran out of it; the REPORT then
    says at least that long (the environment may have noticed a little early) and the
    "Task timed out" line follows it.
    """
    if timed_out_after_s is not None:
        duration_ms = max(duration_ms, timed_out_after_s * 1000.0)
    text = (
        f"START RequestId: {request_id} Version: {version}\n{_lines(output)}END RequestId: {request_id}\n"
        f"{report_line(request_id, duration_ms, memory_mb, max_memory_mb, init_ms)}\n"
    )
    if timed_out_after_s is not None:
        text += timeout_line(request_id, timed_out_after_s, when) + "\n"
    return text


def init_log(runtime: str, init_output: str) -> str:
    """What goes into the log before the first call of a new environment: INIT_START and init's output."""
    return f"INIT_START Runtime Version: {runtime}\n{_lines(init_output)}"
