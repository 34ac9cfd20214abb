"""invoke(): one call from payload to Result, through the limiter, the pool and an environment.

It also frames the call's logs as Lambda does (START / output / END / REPORT), with the
peak memory read from the container's cgroup, and hands them to the log store.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone
from typing import Callable

from faas.invoke.environment import Outcome, error_payload
from faas.errors import RequestTooLarge
from faas.ids import request_id as new_request_id
from faas.ids import trace_id
from faas.invoke.limits import Limiter
from faas.logs.store import LogStore
from faas.models import SYNC_PAYLOAD_LIMIT, FunctionVersion, Invocation, Result, function_arn
from faas.invoke.pool import InitFailed, Pool
from faas.deploy.registry import Registry

LOG = logging.getLogger(__name__)
MB = 1024 * 1024
UNDELIVERED_ATTEMPTS = 3  # an environment found gone before the event reached it: try another


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
        self.listeners: list[Callable[[FunctionVersion, Result], None]] = []

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
    ) -> Result:
        fv = self.registry.resolve(name, qualifier)
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise RequestTooLarge(
                f"{len(payload)} byte payload is too large for the RequestResponse invocation type (limit {SYNC_PAYLOAD_LIMIT} bytes)"
            )
        request_id = request_id or new_request_id()
        spec = fv.spec
        with self.limiter.lease(spec):
            for attempt in range(1, UNDELIVERED_ATTEMPTS + 1):
                start, init_ms, init_logs, outcome, peak = self._attempt(
                    fv, payload, request_id, qualifier, client_context, identity, debug_port
                )
                if outcome.status != "undelivered" or attempt == UNDELIVERED_ATTEMPTS:
                    break
                LOG.info("function %s: call %s not delivered (environment gone), trying another", fv.key, request_id)
        if outcome.status == "undelivered":
            outcome = Outcome(
                error_payload(f"RequestId: {request_id} Error: Runtime exited before it received the event", "Runtime.ExitError"),
                "Runtime.ExitError", "exit",
            )
        max_mb = spec.memory if outcome.status == "oom" else min(spec.memory, math.ceil(peak / MB)) if peak else 0
        result = Result(
            request_id=request_id,
            payload=outcome.payload,
            version=fv.version,
            function_error="Unhandled" if outcome.failed else None,
            error_type=outcome.error_type,
            logs=self._frame_logs(fv, request_id, outcome, init_ms, init_logs, max_mb),
            duration_ms=outcome.duration_ms,
            init_duration_ms=init_ms if start != "warm" else None,
            max_memory_mb=max_mb,
            start=start,
            status=outcome.status if outcome.status in ("ok", "timeout", "oom") else "error",
        )
        for listener in self.listeners:
            listener(fv, result)
        return result

    def _attempt(
        self, fv: FunctionVersion, payload: bytes, request_id: str, qualifier: str | None,
        client_context: str | None, identity: str | None, debug_port: int | None = None,
    ) -> tuple[str, float | None, str, Outcome, int]:
        """One environment's try at the call: (start type, init ms, init logs, outcome, peak memory)."""
        spec = fv.spec
        peak = 0
        try:
            with (self.pool.one_off(fv, debug_port) if debug_port else self.pool.acquire(fv)) as lease:
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
                if lease.env.container_id and outcome.status not in ("timeout", "oom", "undelivered"):
                    peak = self.memory_peak_bytes(lease.env.container_id)
                return lease.start, lease.init_duration_ms, lease.init_logs, outcome, peak
        except InitFailed as failed:
            o = failed.outcome
            return "cold", failed.init_duration_ms, o.logs, Outcome(o.payload, o.error_type, o.status), 0

    def _frame_logs(
        self, fv: FunctionVersion, request_id: str, outcome: Outcome, init_ms: float | None, init_logs: str, max_mb: int
    ) -> str:
        """Lambda's log lines for one call; the part from START to REPORT is what Tail returns."""
        duration = outcome.duration_ms
        if outcome.status == "timeout":
            duration = max(duration, fv.spec.timeout * 1000.0)
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {max(1, math.ceil(duration))} ms"
            f"\tMemory Size: {fv.spec.memory} MB\tMax Memory Used: {max_mb} MB\t"
        )
        if init_ms is not None:
            report += f"Init Duration: {init_ms:.2f} ms\t"
        body = outcome.logs
        if body and not body.endswith("\n"):
            body += "\n"
        text = f"START RequestId: {request_id} Version: {fv.version}\n{body}END RequestId: {request_id}\n{report}\n"
        if outcome.status == "timeout":
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            text += f"{stamp} {request_id} Task timed out after {fv.spec.timeout:.2f} seconds\n"
        prefix = ""
        if init_ms is not None:
            runtime = fv.spec.runtime
            prefix = f"INIT_START Runtime Version: {runtime}\n{init_logs}"
            if init_logs and not init_logs.endswith("\n"):
                prefix += "\n"
        self.log_store.append(fv.name, prefix + text)
        return text
