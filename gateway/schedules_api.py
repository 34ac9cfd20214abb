"""Template schedules, registered by `faas deploy template.yaml` as its routes are.

PUT /system/schedules/STACK replaces a template's schedules (?dry_run=true only checks
them, before its functions deploy); GET /system/schedules lists them with their next
firing; POST /system/schedules/NAME/fire fires one now. All want the API token. The firing
itself is faas/events/schedule.py's, into the async queue.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from faas.errors import ValidationError
from faas.events.schedule import MAX_SCHEDULES, Schedule
from gateway.common import BodyTooLarge, platform, read_body, require_token

bp = Blueprint("schedules_api", __name__)

BODY_LIMIT = 2 * 1024 * 1024  # MAX_SCHEDULES schedules with an Input each, and room to spare


@bp.get("/system/schedules")
def list_schedules() -> Response:
    require_token()
    return Response(json.dumps({"schedules": platform().schedules()}), mimetype="application/json")


@bp.put("/system/schedules/<stack>")
def put_schedules(stack: str) -> Response:
    require_token()
    try:
        data = read_body(BODY_LIMIT)
    except BodyTooLarge:
        raise ValidationError(f"a schedule list may be at most {BODY_LIMIT} bytes") from None
    try:
        raw = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError('the body must be JSON: {"schedules": [...]}') from None
    if not isinstance(raw, dict) or not isinstance(raw.get("schedules"), list):
        raise ValidationError('the body must be JSON: {"schedules": [...]}')
    if len(raw["schedules"]) > MAX_SCHEDULES:
        raise ValidationError(f"a template may have at most {MAX_SCHEDULES} schedules")
    schedules = [Schedule.from_json(s) for s in raw["schedules"]]
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    platform().put_schedules(stack, schedules, dry_run=dry_run)
    return Response(json.dumps({"schedules": [s.to_json() for s in schedules]}), mimetype="application/json")


@bp.post("/system/schedules/<name>/fire")
def fire_schedule(name: str) -> Response:
    require_token()
    request_id = platform().fire_schedule(name)
    return Response(json.dumps({"name": name[:64], "request_id": request_id}), status=202, mimetype="application/json")
