"""The admin API the `faas` CLI talks to: deploy, list, remove, logs, environments, health.

Answers are JSON built from FunctionVersion; errors are the same Lambda-shaped JSON as
the Invoke API's, so the CLI has one way to print them. When the config sets api_token,
/system/* wants it as `Authorization: Bearer <token>` (deploys run code on this machine).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from faas.errors import PackageTooLarge, ValidationError
from faas.models import ZIPPED_LIMIT, FunctionVersion, function_arn
from gateway.common import BodyTooLarge, platform, read_body, require_token
from gateway.contract import PlatformAPI

LOG = logging.getLogger(__name__)

SOURCE_DIR_HEADER = "X-Faas-Source-Dir"
MAX_LOG_TAIL = 100_000


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, default=str), status=status, mimetype="application/json")


def environment_counts(environments: Iterable[dict[str, object]]) -> dict[str, dict[str, int]]:
    """{function: {state: count}} from the pool snapshot, for the status column of `faas ls`."""
    counts: dict[str, Counter[str]] = {}
    for env in environments:
        function = str(env.get("function", ""))
        counts.setdefault(function, Counter())[str(env.get("state", "unknown")).lower()] += 1
    return {name: dict(c) for name, c in counts.items()}


def describe(fv: FunctionVersion, *, environments: dict[str, int] | None = None) -> dict[str, Any]:
    """What the admin API says about one function version."""
    spec = fv.spec
    return {
        "name": fv.name,
        "version": fv.version,
        "runtime": spec.runtime,
        "handler": spec.handler,
        "memory": spec.memory,
        "timeout": spec.timeout,
        "code_sha256": fv.code_sha256,
        "code_size": fv.code_size,
        "created": fv.created,
        "last_modified": datetime.fromtimestamp(fv.created, UTC).isoformat(timespec="seconds"),
        "source_dir": fv.source_dir,
        "arn": function_arn(fv.name),
        "url": f"/function/{fv.name}",
        "environments": environments or {},
        "spec": spec.to_mapping(),
    }


def _deploy_problems(plat: PlatformAPI) -> dict[str, dict[str, Any]]:
    """{function: its latest deploy problem}."""
    return {name: p.to_json() for name, p in plat.deploy_problems().items()}


def _tail_arg() -> int:
    raw = request.args.get("tail", "200")
    try:
        tail = int(raw)
    except ValueError:
        raise ValidationError(f"tail must be a whole number of lines, got {raw!r}") from None
    if not 1 <= tail <= MAX_LOG_TAIL:
        raise ValidationError(f"tail must be between 1 and {MAX_LOG_TAIL}, got {tail}")
    return tail


def create_blueprint() -> Blueprint:
    """The admin routes; /system/* requires the API token where the gateway has one."""
    bp = Blueprint("admin", __name__)

    @bp.before_request
    def _check_token() -> None:
        if request.path.startswith("/system/"):
            require_token()

    @bp.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    @bp.put("/system/functions/<name>")
    def deploy(name: str) -> Response:
        try:
            data = read_body(ZIPPED_LIMIT)
        except BodyTooLarge as e:
            size = f"{e.size} bytes" if e.size is not None else f"more than {ZIPPED_LIMIT} bytes"
            raise PackageTooLarge(f"package is {size} zipped, over Lambda's 50 MB limit ({ZIPPED_LIMIT} bytes)") from None
        if not data:
            raise ValidationError("empty request body: expected the function's zip package")
        source_dir = request.headers.get(SOURCE_DIR_HEADER) or None
        outcome = platform().deploy_zip(data, expected_name=name, source_dir=source_dir)
        body = describe(outcome.version)
        body["changed"] = outcome.changed
        if outcome.changed:
            LOG.info("function %s: deployed version %s (%d bytes)", name, outcome.version.version, len(data))
        return _json(body, 201 if outcome.changed else 200)

    @bp.get("/system/functions")
    def list_functions() -> Response:
        plat = platform()
        counts = environment_counts(plat.environments())
        problems = _deploy_problems(plat)
        return _json(
            [
                {**describe(fv, environments=counts.get(fv.name)), "deploy_problem": problems.get(fv.name)}
                for fv in plat.functions()
            ]
        )

    @bp.get("/system/functions/<name>")
    def get_function(name: str) -> Response:
        plat = platform()
        fv = plat.get(name)
        counts = environment_counts(plat.environments())
        return _json({**describe(fv, environments=counts.get(fv.name)), "deploy_problem": _deploy_problems(plat).get(name)})

    @bp.get("/system/functions/<name>/versions")
    def versions(name: str) -> Response:
        return _json(
            [
                {**describe(info.version), "live": info.live, "problem": info.problem.to_json() if info.problem else None}
                for info in platform().versions(name)
            ]
        )

    @bp.post("/system/functions/<name>/rollback")
    def rollback(name: str) -> Response:
        raw = request.get_data(cache=False) or b"{}"
        try:
            wanted = json.loads(raw)
        except ValueError:
            raise ValidationError('rollback body must be JSON: {} or {"version": N}') from None
        version = wanted.get("version") if isinstance(wanted, dict) else None
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise ValidationError(f"version must be a version number (1, 2, ...), got {version!r}")
        live, before = platform().rollback(name, version)
        body = describe(live)
        body["previous_version"] = before.version
        body["changed"] = live.version != before.version
        return _json(body)

    @bp.delete("/system/functions/<name>")
    def remove_function(name: str) -> Response:
        platform().remove(name)
        LOG.info("function %s: removed", name)
        return Response(status=204)

    @bp.get("/system/functions/<name>/logs")
    def logs(name: str) -> Response:
        lines = platform().logs(name, tail=_tail_arg())
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        return Response(text, mimetype="text/plain")

    @bp.get("/system/functions/<name>/logs/follow")
    def follow_logs(name: str) -> Response:
        """Long poll for `faas logs --follow`: new lines after ?cursor= (the last ?tail= lines
        without one), waiting up to ?wait= seconds; the next cursor is in X-Faas-Log-Cursor."""
        try:
            wait_s = float(request.args.get("wait", "20"))
        except ValueError:
            raise ValidationError("wait must be a number of seconds") from None
        if not math.isfinite(wait_s) or wait_s < 0:  # nan would make the wait endless
            raise ValidationError(f"wait must be a number of seconds, 0 or more, got {request.args.get('wait')!r}")
        text, cursor = platform().follow_logs(name, request.args.get("cursor"), wait_s=wait_s, tail=_tail_arg())
        response = Response(text, mimetype="text/plain")
        response.headers["X-Faas-Log-Cursor"] = cursor
        return response

    @bp.get("/system/functions/<name>/calls")
    def calls(name: str) -> Response:
        """The function's invocation records, newest first (`faas calls`)."""
        return _json(platform().calls(name, limit=_tail_arg()))

    @bp.get("/system/functions/<name>/failures")
    def failures(name: str) -> Response:
        """Async events that failed every attempt or aged out (`faas failures`)."""
        return _json(platform().failures(name, limit=_tail_arg()))

    @bp.get("/system/environments")
    def environments() -> Response:
        return _json(list(platform().environments()))

    @bp.get("/system/pool")
    def pool() -> Response:
        """`faas ps`: every environment (state, age, calls, memory, keep-alive) and the budget."""
        return _json(platform().pool_state())

    return bp
