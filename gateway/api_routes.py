"""Template routes served at the gateway's root, as API Gateway serves them.

`faas deploy template.yaml` registers its Api / HttpApi routes (PUT /system/routes/STACK);
a request that no faas route answers reaches `serve`, is matched against the route table
(faas/deploy/routes.py), becomes API Gateway's event (gateway/api_events.py) and the
function's answer is mapped back as API Gateway maps it. faas's own paths always win: a
template route under one of their prefixes is refused when it is registered.

Errors on these routes are API Gateway's, not Lambda's API's: `{"message": ...}` bodies.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from faas.deploy.routes import HTTP, NO_MATCH, REST, Match, Route, RouteTable, check_reserved, first_segment
from faas.errors import FaasError, FunctionNotFound, ShuttingDown, ValidationError
from faas.ids import request_id as new_request_id
from faas.models import SYNC_PAYLOAD_LIMIT, clip
from gateway.api_events import (
    accepts_binary,
    build_v1_event,
    build_v2_event,
    cors_response_headers,
    map_v1_response,
    map_v2_response,
    preflight_answer,
    trace_header,
)
from gateway.common import CONFIG_KEY, BodyTooLarge, platform, read_body, require_token
from gateway.contract import PlatformAPI
from gateway.http_trigger import InvalidFunctionResponse

LOG = logging.getLogger(__name__)

bp = Blueprint("api_routes", __name__)
SERVE_ENDPOINT = "api_routes.serve"  # the catch-all below: a template's routes, user endpoints as function URLs are

RAW_HEADERS_KEY = "faas.raw_headers"  # gateway/worker.py: the request's headers before WSGI joins repeats
_RESERVED_KEY = "faas.api_routes.reserved"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES_BODY_LIMIT = 1024 * 1024
# API Gateway's bodies for the failures it answers itself, per API kind.
_INTERNAL = {REST: "Internal server error", HTTP: "Internal Server Error"}


def reserved_prefixes() -> frozenset[str]:
    """The first path segments of every route the app serves besides the catch-all below
    (worked out once per app: its rules are fixed once it serves)."""
    cached: frozenset[str] | None = current_app.extensions.get(_RESERVED_KEY)
    if cached is None:
        found: set[str] = set()
        for rule in current_app.url_map.iter_rules():
            if rule.endpoint == f"{bp.name}.serve":
                continue
            segment = first_segment(rule.rule.split("<", 1)[0])
            if segment:
                found.add(segment)
        cached = current_app.extensions[_RESERVED_KEY] = frozenset(found)
    return cached


# ------------------------------------------------------------------------- admin side


@bp.get("/system/routes")
def list_routes() -> Response:
    require_token()
    plat = platform()
    rows = [{**r.to_json(), "stack": stack} for stack, routes in sorted(plat.route_stacks().items()) for r in routes]
    missing = [
        {"name": name, "reason": why, "stack": stack}
        for stack, found in sorted(plat.unrunnable_functions().items())
        for name, why in sorted(found.items())
    ]
    return Response(json.dumps({"routes": rows, "unrunnable": missing}), mimetype="application/json")


@bp.put("/system/routes/<stack>")
def put_routes(stack: str) -> Response:
    """Replace a template's routes; ?dry_run=true only checks them (before its functions deploy)."""
    require_token()
    try:
        data = read_body(ROUTES_BODY_LIMIT)
    except BodyTooLarge:
        raise ValidationError(f"a route table may be at most {ROUTES_BODY_LIMIT} bytes") from None
    try:
        raw = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError('the body must be JSON: {"routes": [...]}') from None
    if not isinstance(raw, dict) or not isinstance(raw.get("routes"), list):
        raise ValidationError('the body must be JSON: {"routes": [...]}')
    routes = [Route.from_json(r) for r in raw["routes"]]
    check_reserved(routes, reserved_prefixes())
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    platform().put_api_routes(stack, routes, dry_run=dry_run, unrunnable=raw.get("unrunnable") or {})
    if not dry_run:
        for route in routes:
            LOG.info(
                "route %s %s -> %s (%s %s, stage %s)",
                route.method,
                route.path,
                route.function,
                route.kind,
                route.api_id,
                route.stage,
            )
    return Response(json.dumps({"routes": [r.to_json() for r in routes]}), mimetype="application/json")


@bp.delete("/system/routes/<stack>")
def delete_routes(stack: str) -> Response:
    """Remove a template's routes (its functions stay)."""
    require_token()
    plat = platform()
    if stack not in plat.route_stacks():
        raise ValidationError(f"no routes are deployed for {stack[:140]!r} (see GET /system/routes)")
    plat.put_api_routes(stack, [])
    return Response(status=204)


# ----------------------------------------------------------------------- serving side


def _message(status: int, message: str, request_id: str, error_type: str | None = None) -> Response:
    response = Response(json.dumps({"message": message}), status=status, mimetype="application/json")
    response.headers["x-amzn-RequestId"] = request_id
    if error_type:
        response.headers["x-amzn-ErrorType"] = error_type
    return response


def _internal(route: Route, status: int, request_id: str) -> Response:
    return _message(status, _INTERNAL[route.kind], request_id, "InternalServerErrorException" if route.kind == REST else None)


@bp.route("/", defaults={"path": ""}, methods=ALL_METHODS)
@bp.route("/<path:path>", methods=ALL_METHODS)
def serve(path: str) -> Response:
    """Every request no faas route took: a template route's, or API Gateway's no-match answer."""
    plat = platform()
    table = plat.api_routes()
    if not table or first_segment("/" + path) in reserved_prefixes():
        raise NotFound()  # faas's own 404, as before any template was deployed
    return _answer(plat, table)


@bp.before_app_request
def _api_port_only() -> Response | None:
    """On `faas up --api-port P`'s listener the template routes answer every request, at the
    root, as `sam local start-api` serves them: no /system, /ui, Invoke API or function URLs
    there (the worker sends none of its requests down the Invoke fast path either)."""
    port = getattr(current_app.extensions.get(CONFIG_KEY), "api_port", None)
    if not port or request.environ.get("SERVER_PORT") != str(port):
        return None
    plat = platform()
    table = plat.api_routes()
    if not table:  # nothing deployed yet: what a REST API (and `sam local start-api`) answers
        status, body, error_type = NO_MATCH[REST]
        return _message(status, body["message"], new_request_id(), error_type)
    return _answer(plat, table)


def _answer(plat: PlatformAPI, table: RouteTable) -> Response:
    """The request through the route table: a preflight, a route's function, or API Gateway's miss."""
    request_id = new_request_id()
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        preflight = table.preflight(request.path)
        if preflight is not None:
            answer = preflight_answer(*preflight, origin, request.headers.get("Access-Control-Request-Method"))
            if answer is not None:
                status, headers, data = answer
                response = Response(data, status=status, headers=headers)
                response.headers["x-amzn-RequestId"] = request_id
                return response
    found = table.match(request.method, request.path)
    if not isinstance(found, Match):
        return _message(found.status, found.body["message"], request_id, found.error_type)
    route = found.route
    try:
        body = read_body(SYNC_PAYLOAD_LIMIT)
    except BodyTooLarge:
        return _message(413, "Request Entity Too Large", request_id)
    environ = request.environ
    common: dict[str, Any] = {
        "method": request.method,
        "raw_query": environ.get("QUERY_STRING", ""),
        "headers": _request_headers(),
        "body": body,
        "source_ip": request.remote_addr or "127.0.0.1",
        "request_id": request_id,
        "epoch": time.time(),
        "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "server_port": environ.get("SERVER_PORT"),
        "scheme": request.scheme,
    }
    if route.payload_version == "1.0":
        event = build_v1_event(route, found.path_parameters, path=request.path, **common)
    else:
        event = build_v2_event(route, found.path_parameters, raw_path=_raw_path(), **common)
    try:
        result = plat.invoke(route.function, json.dumps(event, separators=(",", ":")).encode("utf-8"))
    except ShuttingDown:
        return _message(503, "Service Unavailable", request_id)
    except FunctionNotFound as e:
        LOG.warning("route %s %s: %s", route.method, route.path, e.message)
        response = _internal(route, 500, request_id)
        # Why, for the developer: "not found", or the reason the template's function cannot run here.
        text = "".join(c if " " <= c <= "~" else "?" for c in e.message)
        response.headers["X-Faas-Error"] = clip(text, 500)
        return response
    except FaasError as e:
        # API Gateway: Lambda refused the call (throttled, too large...) -> 500.
        LOG.warning("route %s %s: function %s: %s", route.method, route.path, route.function, e.message)
        return _internal(route, 500, request_id)
    if result.function_error:  # REST: 502; HTTP APIs answer 500 for every failure of the call
        return _internal(route, 502 if route.kind == REST else 500, result.request_id or request_id)
    try:
        if route.payload_version == "1.0":
            binary = route.kind != REST or accepts_binary(request.headers.get("Accept"), route.binary_media_types)
            status, headers, data = map_v1_response(result.payload, decode_base64=binary)
        else:
            status, headers, data = map_v2_response(result.payload)
    except InvalidFunctionResponse as e:
        LOG.warning("function %s: request %s: %s", route.function, result.request_id, e)
        status = 502 if route.kind == REST else 500
        plat.note_in_log(route.function, f"API Gateway {route.kind} {route.route_key}: {e}; answered {status}\n")
        return _internal(route, status, result.request_id or request_id)
    response = Response(data, status=status, headers=headers)
    for name, value in cors_response_headers(route, origin):
        response.headers[name] = value  # an HTTP API's CORS settings replace the function's
    response.headers["x-amzn-RequestId"] = result.request_id or request_id
    if route.kind == REST:
        response.headers.setdefault("X-Amzn-Trace-Id", trace_header(time.time()))
    return response


def _raw_path() -> str:
    """rawPath as the client sent it (percent-encoding kept)."""
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw_uri:
        path = raw_uri.split("?", 1)[0]
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        return path or "/"
    return request.path


def _request_headers() -> list[tuple[str, str]]:
    """The request's headers, a repeated header as many pairs: WSGI joins repeats with ","
    (as HTTP APIs do), REST APIs keep them apart in multiValueHeaders."""
    raw = request.environ.get(RAW_HEADERS_KEY)
    if isinstance(raw, list):
        return [(str(name).title(), str(value)) for name, value in raw]
    return list(request.headers.items())
