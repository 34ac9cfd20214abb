"""Lambda's event source mapping API under /2015-03-31/event-source-mappings: Create, Get, List,
Update and DeleteEventSourceMapping, for SQS queues (faas/events/sqs_mappings.py).

The routes hang on the management blueprint (gateway/management.py), so its before_request
guards them with the API token like every other management route.
"""

from __future__ import annotations

import json

from flask import Response, request

from gateway.common import platform
from gateway.management import _body, _page, bp


def _json(value: object, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


@bp.post("/2015-03-31/event-source-mappings/")
@bp.post("/2015-03-31/event-source-mappings")
def create_event_source_mapping() -> Response:
    return _json(platform().event_sources().create(_body()), 202)


@bp.get("/2015-03-31/event-source-mappings/")
@bp.get("/2015-03-31/event-source-mappings")
def list_event_source_mappings() -> Response:
    found = platform().event_sources().listed(request.args.get("FunctionName"), request.args.get("EventSourceArn"))
    return _json(_page(found, "EventSourceMappings"))


@bp.get("/2015-03-31/event-source-mappings/<key>")
def get_event_source_mapping(key: str) -> Response:
    return _json(platform().event_sources().get(key))


@bp.put("/2015-03-31/event-source-mappings/<key>")
def update_event_source_mapping(key: str) -> Response:
    return _json(platform().event_sources().update(key, _body()), 202)


@bp.delete("/2015-03-31/event-source-mappings/<key>")
def delete_event_source_mapping(key: str) -> Response:
    return _json(platform().event_sources().delete(key), 202)
