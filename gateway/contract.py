"""PlatformAPI: everything the gateway asks of the platform in app.extensions["faas"].

The gateway (worker, app, lambda_api, http_trigger, management, admin, ui, metrics, server)
talks to faas.platform.Platform through these methods only, never through its attributes,
so that the two sides can change independently and a test can stand in a fake
(tests/fakes.py FakePlatform) that mypy checks against the same contract. gateway/app.py
states statically that Platform satisfies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from faas.deploy.deploys import DeployProblem, VersionInfo
    from faas.deploy.layers import LayerStore
    from faas.deploy.routes import Route, RouteTable
    from faas.events.schedule import Schedule
    from faas.events.sqs_mappings import EventSourceMappings
    from faas.models import FunctionSpec, FunctionVersion, Result
    from faas.platform import DeployOutcome, Platform


class PlatformAPI(Protocol):
    # ---- deploys and functions (admin API, management API) ------------------------------

    def deploy_zip(
        self,
        data: bytes,
        *,
        expected_name: str | None = None,
        source_dir: str | None = None,
        spec_override: FunctionSpec | None = None,
    ) -> DeployOutcome: ...

    def check_zip(
        self, data: bytes, *, expected_name: str | None = None, spec_override: FunctionSpec | None = None
    ) -> FunctionSpec:
        """Validate a package as deploy_zip would, writing nothing (UpdateFunctionCode DryRun)."""
        ...

    def remove(self, name: str) -> None: ...

    def functions(self) -> list[FunctionVersion]: ...

    def versions(self, name: str) -> list[VersionInfo]: ...

    def rollback(self, name: str, version: int | None = None) -> tuple[FunctionVersion, FunctionVersion]: ...

    def deploy_problems(self) -> dict[str, DeployProblem]: ...

    def get(self, name: str) -> FunctionVersion: ...

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion: ...

    def version_label(self, name: str, qualifier: str | None = None) -> str: ...

    def all_versions(self, name: str) -> list[FunctionVersion]: ...

    def aliases(self, name: str) -> dict[str, str]: ...

    def put_alias(self, name: str, alias: str, target: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> bool: ...

    def settings(self, name: str) -> dict[str, Any]: ...

    def put_setting(self, name: str, key: str, value: object) -> None: ...

    def layer_store(self) -> LayerStore:
        """Layer versions (gateway/layers_api.py)."""
        ...

    def event_sources(self) -> EventSourceMappings:
        """SQS event source mappings (gateway/event_sources_api.py)."""
        ...

    # ---- API routes of deployed templates (gateway/api_routes.py) ------------------------

    def api_routes(self) -> RouteTable:
        """The routes served at the gateway's root now (an immutable table, swapped whole)."""
        ...

    def route_stacks(self) -> dict[str, list[Route]]:
        """Each deployed template's (stack's) routes."""
        ...

    def note_in_log(self, name: str, text: str) -> None:
        """Add a line to a function's log (`faas logs`): why the gateway refused its answer."""
        ...

    def put_api_routes(
        self, stack: str, routes: list[Route], *, dry_run: bool = False, unrunnable: Mapping[str, str] | None = None
    ) -> None:
        """Replace a stack's routes (an empty list removes them); a clash is a ValidationError.
        unrunnable: the template's functions that cannot run here, with the reason."""
        ...

    # ---- schedules of deployed templates (gateway/schedules_api.py) ----------------------

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule with its stack, next firing and last firing (`faas schedules`)."""
        ...

    def put_schedules(self, stack: str, schedules: list[Schedule], *, dry_run: bool = False) -> None:
        """Replace a stack's schedules (an empty list removes them); a bad one is a ValidationError."""
        ...

    def fire_schedule(self, name: str) -> str:
        """Fire a schedule now through the async queue; the request id."""
        ...

    def unrunnable_functions(self) -> dict[str, dict[str, str]]:
        """Each stack's functions that cannot run here -> the reason."""
        ...

    # ---- calls (Invoke API, HTTP trigger, the worker's fast path) -----------------------

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
        debug_port: int | None = None,
    ) -> Result: ...

    def end_debug(self, port: int | None = None) -> int:
        """End the debug session on 127.0.0.1:port (every one: None); how many ended."""
        ...

    def invoke_async(
        self, name: str, payload: bytes, *, qualifier: str | None = None, client_context: str | None = None
    ) -> str: ...

    def calls(self, name: str, *, limit: int = 50) -> list[dict[str, object]]: ...

    def failures(self, name: str, *, limit: int = 50) -> list[dict[str, object]]: ...

    def follow_logs(self, name: str, cursor: str | None, *, wait_s: float = 20.0, tail: int = 200) -> tuple[str, str]: ...

    def logs(self, name: str, *, tail: int = 200) -> list[str]: ...

    # ---- what is there now (admin API, /ui, /metrics) -----------------------------------

    def environments(self) -> list[dict[str, object]]: ...

    def pool_state(self) -> dict[str, object]: ...

    def async_queue_depth(self) -> int:
        """Asynchronous (Event) calls queued or running."""
        ...

    def metrics_exposition(self) -> tuple[bytes, str]:
        """(body, content type) of GET /metrics in Prometheus' text format."""
        ...

    def activity_summary(self, window_s: float) -> dict[str, dict[str, Any]]:
        """Per function, the recent calls' stats over the last window_s seconds (/ui, `faas top`)."""
        ...

    def recent_invocations(self, since: int, limit: int, function: str | None) -> tuple[int, list[dict[str, Any]]]:
        """(cursor, calls after the cursor `since`), newest `limit`, optionally of one function."""
        ...

    def latency_series(self, function: str, seconds: int) -> dict[str, list[Any]]:
        """One function's per-second p50/p99, calls, errors and throttles over the last seconds."""
        ...

    # ---- lifecycle (gateway/worker.py, gateway/server.py) -------------------------------

    def begin_drain(self) -> None: ...

    def wait_drained(self, timeout_s: float) -> bool: ...

    def shutdown(self, wait_s: float | None = None) -> None: ...


if TYPE_CHECKING:

    def _platform_keeps_the_contract(platform: Platform) -> PlatformAPI:
        """Never called: mypy checks here that faas.platform.Platform satisfies PlatformAPI."""
        return platform
