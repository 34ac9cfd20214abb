"""API Gateway's Lambda proxy events and response mapping, for template routes.

Payload format 1.0 (REST APIs, and HTTP APIs that ask for it) and 2.0 (HTTP APIs), built
field for field as API Gateway builds them (AWS's "Set up Lambda proxy integrations" and
"HTTP API Lambda integrations" pages), so that code written against API Gateway's events
(Powertools, Mangum, serverless-http) runs unchanged. The 2.0 event shares
gateway/http_trigger.build_event with function URLs, which send the same format.

Responses: 1.0 is strict (only statusCode, headers, multiValueHeaders, body and
isBase64Encoded, each of its type; anything else is API Gateway's 502); 2.0 infers, as
HTTP APIs do. Every header a function returns is checked before it reaches the client.
All pure functions of their arguments.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import hashlib
import json
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from faas.deploy.routes import HTTP, Cors, Route
from faas.models import ACCOUNT_ID
from gateway.http_trigger import InvalidFunctionResponse, build_event, build_response, request_time

# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"})
_V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
MAX_RESPONSE_HEADERS = 1000

Answer = tuple[int, list[tuple[str, str]], bytes]


def api_id(route: Route) -> str:
    """A stable 10-character API id (like "a1b2c3d4e5") for the API a route belongs to."""
    return _api_id(route.kind, route.api_id)


@functools.lru_cache(maxsize=1024)
def _api_id(kind: str, logical_id: str) -> str:
    digest = hashlib.sha256(f"{kind}:{logical_id}".encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:10]


@functools.lru_cache(maxsize=1024)
def _resource_id(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:6]


def trace_header(epoch: float) -> str:
    """An X-Amzn-Trace-Id value; random, not secret (no system call per request)."""
    return f"Root=1-{int(epoch):08x}-{random.getrandbits(96):024x}"


def is_binary(content_type: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether a REST API passes a body of this type base64-encoded (BinaryMediaTypes, with wildcards)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(media, pattern.strip().lower()) for pattern in binary_media_types)


def accepts_binary(accept: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether a REST API hands a base64 response body (isBase64Encoded) to this client as
    bytes: API Gateway looks at the first type of the request's Accept header only, so a
    browser gets bytes only with */* among the binaryMediaTypes, and curl's */* only with it too."""
    first = (accept or "").split(",", 1)[0]
    return is_binary(first, binary_media_types)


def _domain(host: str) -> tuple[str, str]:
    domain = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    prefix = domain if domain.replace(".", "").isdigit() or domain.startswith("[") else domain.split(".", 1)[0]
    return domain, prefix


def build_v1_event(
    route: Route,
    path_parameters: Mapping[str, str],
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
    epoch: float,
    protocol: str = "HTTP/1.1",
    server_port: str | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    """The payload format 1.0 event: headers and query keep their last value, the multi-value
    maps keep them all; absent parts are null, as API Gateway sends them."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    lower = {k.lower(): k for k in multi_headers}
    forwarded = multi_headers.get(lower.get("x-forwarded-for", ""), [])
    multi_headers[lower.get("x-forwarded-for", "X-Forwarded-For")] = [f"{forwarded[-1]}, {source_ip}" if forwarded else source_ip]
    added: tuple[tuple[str, str | None], ...] = (
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Port", server_port),
        ("X-Amzn-Trace-Id", trace_header(epoch)),
    )
    for added_name, added_value in added:
        if added_value and added_name.lower() not in lower:
            multi_headers[added_name] = [added_value]
    single = {name: values[-1] for name, values in multi_headers.items()}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    host = next((v for k, v in single.items() if k.lower() == "host"), "localhost")
    domain, prefix = _domain(host)
    user_agent = next((v for k, v in single.items() if k.lower() == "user-agent"), "")
    content_type = next((v for k, v in single.items() if k.lower() == "content-type"), None)
    event: dict[str, Any] = {}
    if route.kind == HTTP:
        event["version"] = "1.0"
    event.update(
        {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": single,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(path_parameters) or None,
            "stageVariables": dict(route.stage_variables) or None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": api_id(route),
                "domainName": domain,
                "domainPrefix": prefix,
                "extendedRequestId": request_id,
                "httpMethod": method,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "cognitoAuthenticationProvider": None,
                    "cognitoAuthenticationType": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "principalOrgId": None,
                    "sourceIp": source_ip,
                    "user": None,
                    "userAgent": user_agent,
                    "userArn": None,
                },
                "path": path if route.stage == "$default" else f"/{route.stage}{path}",
                "protocol": protocol,
                "requestId": request_id,
                "requestTime": request_time(epoch),
                "requestTimeEpoch": int(epoch * 1000),
                "resourceId": _resource_id(f"{route.method} {route.path}"),
                "resourcePath": route.path,
                "stage": route.stage,
            },
        }
    )
    encoded = False
    text: str | None = None
    if body:
        if route.kind != HTTP and not is_binary(content_type, route.binary_media_types):
            text = body.decode("utf-8", errors="replace")
        elif route.kind == HTTP:
            try:  # HTTP APIs send UTF-8 text as is and anything else base64-encoded
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            text = base64.b64encode(body).decode("ascii")
            encoded = True
    event["body"] = text
    event["isBase64Encoded"] = encoded
    return event


def build_v2_event(
    route: Route,
    path_parameters: Mapping[str, str],
    **request: Any,
) -> dict[str, Any]:
    """The payload format 2.0 event: a function URL's event (http_trigger.build_event) with
    the route's routeKey, stage (in rawPath too, unless $default), API id, pathParameters
    and stageVariables."""
    event = build_event(function_name=route.function, **request)
    event["routeKey"] = route.route_key
    context = event["requestContext"]
    context["apiId"] = api_id(route)
    context["routeKey"] = route.route_key
    context["stage"] = route.stage
    context["accountId"] = ACCOUNT_ID
    if route.stage != "$default":
        # A named stage is the URL's first segment on AWS, so it starts rawPath and http.path
        # (Powertools' APIGatewayHttpResolver strips it off again); faas matched without it.
        event["rawPath"] = f"/{route.stage}{event['rawPath']}"
        context["http"]["path"] = f"/{route.stage}{context['http']['path']}"
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if route.stage_variables:
        event["stageVariables"] = dict(route.stage_variables)
    # Keep API Gateway's key order: body and isBase64Encoded come last.
    for key in ("body", "isBase64Encoded"):
        if key in event:
            event[key] = event.pop(key)
    return event


# ---------------------------------------------------------------------------- responses


def checked_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A function's response headers, refused (InvalidFunctionResponse) unless every name is
    an RFC 9110 token and no value holds CR, LF or NUL; hop-by-hop headers are dropped."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if not _TOKEN.match(name):
            raise InvalidFunctionResponse(f"header name {name[:100]!r} is not a valid HTTP header name")
        if _BAD_VALUE.search(value):
            raise InvalidFunctionResponse(f"header {name!r} has a line break or NUL in its value")
        if name.lower() not in _HOP_HEADERS:
            out.append((name, value))
        if len(out) > MAX_RESPONSE_HEADERS:
            raise InvalidFunctionResponse(f"more than {MAX_RESPONSE_HEADERS} response headers")
    return out


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidFunctionResponse(f"{where} must be a string, number or boolean, got {type(value).__name__}")


def map_v1_response(payload: bytes, *, decode_base64: bool = True) -> Answer:
    """A payload format 1.0 answer, as API Gateway maps it; InvalidFunctionResponse for its 502.
    `decode_base64` False (a REST API whose client did not accept a binary type, see
    accepts_binary) sends an isBase64Encoded body as the base64 text, as API Gateway does."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidFunctionResponse(f"Malformed Lambda proxy response: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise InvalidFunctionResponse(f"Malformed Lambda proxy response: a JSON {type(value).__name__}, not an object")
    extra = sorted(set(value) - _V1_KEYS)
    if extra:
        raise InvalidFunctionResponse(f"Malformed Lambda proxy response: unexpected field(s) {', '.join(extra)}")
    status = value.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidFunctionResponse(f"Malformed Lambda proxy response: statusCode must be an HTTP status, got {status!r}")
    single = value.get("headers") or {}
    multi = value.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise InvalidFunctionResponse("Malformed Lambda proxy response: headers and multiValueHeaders must be objects")
    pairs: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            raise InvalidFunctionResponse(f"Malformed Lambda proxy response: multiValueHeaders.{name} must be a list")
        pairs.extend((str(name), _scalar(v, f"multiValueHeaders.{name}")) for v in values if v is not None)
    # API Gateway merges the two maps; where a name is in both, multiValueHeaders' values win.
    in_multi = {str(n).lower() for n in multi}
    for name, raw in single.items():
        if raw is not None and str(name).lower() not in in_multi:
            pairs.append((str(name), _scalar(raw, f"headers.{name}")))
    headers = checked_headers(pairs)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = value.get("body")
    encoded = value.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise InvalidFunctionResponse("Malformed Lambda proxy response: isBase64Encoded must be a boolean")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise InvalidFunctionResponse(f"Malformed Lambda proxy response: body must be a string, got {type(body).__name__}")
    elif encoded and not decode_base64:
        data = body.encode("utf-8")
    elif encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as e:
            raise InvalidFunctionResponse(f"Malformed Lambda proxy response: body is not valid base64 ({e})") from None
    else:
        data = body.encode("utf-8")
    return status, headers, data


def map_v2_response(payload: bytes) -> Answer:
    """A payload format 2.0 answer with HTTP APIs' inference (http_trigger.build_response),
    cookies as Set-Cookie headers, every header checked."""
    status, headers, data, cookies = build_response(payload)
    headers = checked_headers([*headers, *(("Set-Cookie", c) for c in cookies)])
    return status, headers, data


# -------------------------------------------------------------------------------- CORS

_ALL_METHODS = "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"


def preflight_answer(route: Route, methods: list[str], origin: str | None, requested_method: str | None) -> Answer | None:
    """API Gateway's answer to an OPTIONS request on a path of an API with CORS; None when it
    is not a preflight the API answers itself (an HTTP API wants Origin and
    Access-Control-Request-Method; a REST API's Cors adds an OPTIONS method that always answers)."""
    cors = route.cors
    if cors is None:
        return None
    headers: list[tuple[str, str]] = []
    if route.kind != HTTP:
        if cors.allow_methods is not None:
            allowed = ",".join(cors.allow_methods)
        elif "ANY" in methods or "*" in methods:
            allowed = _ALL_METHODS
        else:
            allowed = ",".join(sorted({*methods, "OPTIONS"}))
        headers.append(("Access-Control-Allow-Origin", cors.allow_origins[0] if cors.allow_origins else "*"))
        headers.append(("Access-Control-Allow-Methods", allowed))
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(cors.max_age)))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return 200, [*checked_headers(headers), ("Content-Type", "application/json")], b""
    return http_preflight(cors, origin, requested_method)


def http_preflight(cors: Cors, origin: str | None, requested_method: str | None) -> Answer | None:
    """An HTTP API's (and a function URL's) answer to a preflight, from its CORS settings alone:
    204, with the CORS headers when the origin is allowed; None when the request is no preflight
    (no Origin or no Access-Control-Request-Method), which then goes to the function."""
    if not origin or not requested_method:
        return None
    headers: list[tuple[str, str]] = []
    if cors.allows(origin):
        headers.append(
            ("Access-Control-Allow-Origin", "*" if "*" in cors.allow_origins and not cors.allow_credentials else origin)
        )
        headers.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods or ("*",))))
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(cors.max_age)))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
    return 204, checked_headers(headers), b""


def cors_response_headers(route: Route, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers an HTTP API with CorsConfiguration puts on a response (they replace
    the function's own); REST APIs add none (the function returns its own)."""
    if route.cors is None or route.kind != HTTP:
        return []
    return http_cors_headers(route.cors, origin)


def http_cors_headers(cors: Cors, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers an HTTP API's CorsConfiguration, or a function URL's Cors, puts on a
    response to a request from an allowed Origin; none for another origin or no Origin."""
    if not origin or not cors.allows(origin):
        return []
    headers = [("Access-Control-Allow-Origin", "*" if "*" in cors.allow_origins and not cors.allow_credentials else origin)]
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return checked_headers(headers)
