"""GET /metrics: the platform's Prometheus metrics in the text exposition format.

Open like the Invoke API (no API token): it tells counts and timings, nothing a caller
could not learn by calling. The gauges of environments and memory are read here, at
scrape time, never on a call's path.
"""

from __future__ import annotations

from flask import Blueprint, Response

from gateway.common import platform

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = platform().metrics_exposition()
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
