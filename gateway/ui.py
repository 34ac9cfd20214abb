"""GET /ui: the live dashboard, and the small JSON API it (and `faas top`) polls.

The page is static HTML, CSS and JavaScript in gateway/static/, with uPlot vendored for the
latency chart: nothing is built and nothing is fetched from the internet when it runs.
It invokes functions through the real Invoke API (with X-Amz-Log-Type: Tail, for the REPORT
line), so what the form shows is what boto3 would get.

The JSON API reads what the platform's listeners already keep (faas.observe.activity) and the
pool's snapshot; a poll costs the call path nothing but a short lock on the activity ring.
The page itself is open; its data (/ui/api/*: functions' environment variables, host paths,
call logs) wants the API token where the gateway has one, as /system/* does. The page asks
for the token once and keeps it for the browser tab.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file

from faas.errors import ValidationError
from gateway.admin import describe, environment_counts
from gateway.common import CONFIG_KEY, platform, require_token
from gateway.contract import PlatformAPI

STATIC = Path(__file__).resolve().parent / "static"
MAX_LIMIT = 500
MAX_SERIES_S = 600

bp = Blueprint("ui", __name__, static_folder=str(STATIC), static_url_path="/ui/static")


@bp.before_request
def _check_token() -> None:
    if request.path.startswith("/ui/api/"):
        require_token()


def _json(value: Any) -> Response:
    response = Response(json.dumps(value, default=str, separators=(",", ":")), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


@bp.get("/ui")
@bp.get("/ui/")
def index() -> Response:
    response = send_file(STATIC / "index.html", mimetype="text/html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/ui/api/overview")
def overview() -> Response:
    """Functions (version, limits, environments, recent stats), environments, the async queue."""
    plat = platform()
    window = _int_arg("window", 10, 1, MAX_SERIES_S)
    environments = list(plat.environments())
    counts = environment_counts(environments)
    stats = plat.activity_summary(window)
    functions = []
    for fv in plat.functions():
        item = describe(fv, environments=counts.get(fv.name))
        item["concurrency"] = fv.spec.concurrency
        item["stats"] = stats.get(fv.name)
        functions.append(item)
    return _json(
        {
            "time": time.time(),
            "window_s": window,
            "functions": functions,
            "environments": environments,
            "async_queue_depth": plat.async_queue_depth(),
            "routes": _routes(plat),
            "api_port": getattr(current_app.extensions.get(CONFIG_KEY), "api_port", None),
        }
    )


def _routes(plat: PlatformAPI) -> list[dict[str, Any]]:
    """The deployed templates' API routes, as `faas routes` lists them (GET /system/routes)."""
    return [{**r.to_json(), "stack": stack} for stack, routes in sorted(plat.route_stacks().items()) for r in routes]


@bp.get("/ui/api/invocations")
def invocations() -> Response:
    """Calls after the cursor `since` (0: the newest `limit`); answer {"cursor", "invocations"}."""
    since = _int_arg("since", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_LIMIT)
    function = request.args.get("function") or None
    cursor, entries = platform().recent_invocations(since, limit, function)
    return _json({"cursor": cursor, "invocations": entries})


@bp.get("/ui/api/samples")
def sample_events() -> Response:
    """The invoke form's sample picker: the catalogue, or one sample (?service=&kind=)."""
    from faas.events import samples

    service = request.args.get("service")
    if not service:
        return _json({"samples": samples.catalogue()})
    try:
        return _json(samples.generate(service[:40], (request.args.get("kind") or "")[:40] or None))
    except KeyError:
        raise ValidationError("no such sample event (GET /ui/api/samples lists them)") from None


@bp.get("/ui/api/series")
def series() -> Response:
    """One function's p50/p99 latency, calls and errors per second over the last `seconds`."""
    function = request.args.get("function") or ""
    if not function:
        raise ValidationError("function is required")
    seconds = _int_arg("seconds", 300, 1, MAX_SERIES_S)
    return _json({"function": function, **platform().latency_series(function, seconds)})
