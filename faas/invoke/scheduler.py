"""invoke(): one call from payload to Result, through the limiter, the pool and an environment.

It reads the call's peak memory from the container's cgroup, has the call's log lines framed
as Lambda frames them (faas/logs/framing.py) and hands them to the log store, and tells its
listeners (metrics, the dashboard, the records) of every call that ran and every call that
was throttled: it takes the concurrency lease, so it is where a throttle is seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from faas.deploy.registry import Registry
from faas.errors import TooManyRequests
from faas.ids import request_id as new_request_id
from faas.ids import trace_id
from faas.invoke.environment import Outcome, error_payload
from faas.invoke.limits import Limiter
from faas.invoke.pool import InitFailed, Pool
from faas.logs import framing
from faas.logs.store import LogStore
from faas.models import (
    FunctionVersion,
    Invocation,
    OutcomeStatus,
    Result,
    StartType,
    Status,
    check_payload,
    function_arn,
)

LOG = logging.getLogger(__name__)
UNDELIVERED_ATTEMPTS = 3  # an environment found gone before the event reached it: try another
# An environment's outcome as the call's status; exit and undelivered are the runtime failing.
_STATUS = {OutcomeStatus.OK: Status.OK, OutcomeStatus.TIMEOUT: Status.TIMEOUT, OutcomeStatus.OOM: Status.OOM}


class CallListener(Protocol):
    """Told of every call on its path, so both methods must be quick and must not raise."""

    def record(self, fv: FunctionVersion, result: Result) -> None:
        """A call ran (whatever its outcome)."""

    def throttled(self, name: str) -> None:
        """A call was refused with 429 (TooManyRequestsException) before it reached an environment."""


class Scheduler:
    def __init__(
        self,
        registry: Registry,
        pool: Pool,
        limiter: Limiter,
        log_store: LogStore,
        memory_peak_bytes: Callable[[str], int],
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.limiter = limiter
        self.log_store = log_store
        self.memory_peak_bytes = memory_peak_bytes
        self.listeners: list[CallListener] = []

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
        identity: str | None = None,
        request_id: str | None = None,
        debug_port: int | None = None,
        invocation_type: str = "RequestResponse",
    ) -> Result:
        """Run one call. invocation_type "Event": a queued event's run (faas/invoke/async_invoke.py);
        a throttle of one is not told to the listeners, since the event is not refused but waits
        in the queue and is tried again (its caller had its 202 long ago)."""
        fv = self.registry.resolve(name, qualifier)
        check_payload(len(payload), invocation_type)
        request_id = request_id or new_request_id()
        spec = fv.spec
        try:
            with self.limiter.lease(spec):
                for attempt in range(1, UNDELIVERED_ATTEMPTS + 1):
                    start, init_ms, init_logs, outcome, peak = self._attempt(
                        fv, payload, request_id, qualifier, client_context, identity, debug_port
                    )
                    if outcome.status != OutcomeStatus.UNDELIVERED or attempt == UNDELIVERED_ATTEMPTS:
                        break
                    LOG.info("function %s: call %s not delivered (environment gone), trying another", fv.key, request_id)
        except TooManyRequests:  # the concurrency cap, or no memory for a new environment in time
            if invocation_type != "Event":
                for listener in self.listeners:
                    listener.throttled(fv.name)
            raise
        if outcome.status == OutcomeStatus.UNDELIVERED:
            outcome = Outcome(
                error_payload(f"RequestId: {request_id} Error: Runtime exited before it received the event", "Runtime.ExitError"),
                "Runtime.ExitError",
                OutcomeStatus.EXIT,
            )
        max_mb = framing.max_memory_used(spec.memory, peak, outcome.status == OutcomeStatus.OOM)
        result = Result(
            request_id=request_id,
            payload=outcome.payload,
            version=fv.version,
            function_error="Unhandled" if outcome.failed else None,
            error_type=outcome.error_type,
            logs=self._log(fv, request_id, outcome, init_ms, init_logs, max_mb),
            duration_ms=outcome.duration_ms,
            init_duration_ms=init_ms if start != StartType.WARM else None,
            max_memory_mb=max_mb,
            start=start,
            status=_STATUS.get(outcome.status, Status.ERROR),
        )
        for listener in self.listeners:
            listener.record(fv, result)
        return result

    def _attempt(
        self,
        fv: FunctionVersion,
        payload: bytes,
        request_id: str,
        qualifier: str | None,
        client_context: str | None,
        identity: str | None,
        debug_port: int | None = None,
    ) -> tuple[StartType, float | None, str, Outcome, int]:
        """One environment's try at the call: (start type, init ms, init logs, outcome, peak memory)."""
        spec = fv.spec
        peak = 0
        try:
            with self.pool.one_off(fv, debug_port) if debug_port else self.pool.acquire(fv) as lease:
                now = time.monotonic()
                inv = Invocation(
                    request_id=request_id,
                    payload=payload,
                    deadline=now + spec.timeout,
                    deadline_epoch_ms=int((time.time() + spec.timeout) * 1000),
                    invoked_arn=function_arn(spec.name, qualifier if qualifier not in (None, "$LATEST") else None),
                    trace_id=trace_id(),
                    client_context=client_context,
                    identity=identity,
                )
                outcome = lease.env.invoke(inv, spec.timeout)
                if lease.env.container_id and outcome.status not in (
                    OutcomeStatus.TIMEOUT,
                    OutcomeStatus.OOM,
                    OutcomeStatus.UNDELIVERED,
                ):
                    peak = self.memory_peak_bytes(lease.env.container_id)
                return lease.start, lease.init_duration_ms, lease.init_logs, outcome, peak
        except InitFailed as failed:
            o = failed.outcome
            return StartType.COLD, failed.init_duration_ms, o.logs, Outcome(o.payload, o.error_type, o.status), 0

    def _log(
        self, fv: FunctionVersion, request_id: str, outcome: Outcome, init_ms: float | None, init_logs: str, max_mb: int
    ) -> str:
        """Write the call's framed log lines (after INIT_START and init's output for a new
        environment) to the log store; returns the part from START to REPORT, which Tail returns."""
        spec = fv.spec
        text = framing.call_log(
            request_id=request_id,
            version=fv.version,
            output=outcome.logs,
            duration_ms=outcome.duration_ms,
            memory_mb=spec.memory,
            max_memory_mb=max_mb,
            init_ms=init_ms,
            timed_out_after_s=spec.timeout if outcome.status == OutcomeStatus.TIMEOUT else None,
        )
        prefix = framing.init_log(spec.runtime, init_logs) if init_ms is not None else ""
        self.log_store.append(fv.name, prefix + text)
        return text
