"""HTTP triggers: /function/<name>/<path> behaves like a Lambda function URL.

A request becomes the API Gateway HTTP API payload format 2.0 event that function URLs
send (build_event), and the function's answer becomes the HTTP response with the same
inference rules (build_response). Both are pure functions so that the event can be
checked field by field against what Lambda builds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

from flask import Blueprint, Response, request

from faas.deploy.routes import Cors
from faas.errors import FaasError, FunctionNotFound, RequestTooLarge, ShuttingDown, TooManyRequests
from faas.models import SYNC_PAYLOAD_LIMIT
from gateway.common import BodyTooLarge, platform, read_body

LOG = logging.getLogger(__name__)

bp = Blueprint("http_trigger", __name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # HEAD comes with GET
# Measured on AWS (HTTP API v2 / function URLs): only these bodies arrive as text; every
# other content type, and a body without one, arrives base64-encoded.
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The server sets these itself; passing a function's own values on would corrupt framing.
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
# What a function may answer with. A header gunicorn would refuse to write (it answers its own
# HTML 500 instead) must be refused here, as the 502 the route gives for every bad answer.
# The bounds follow API Gateway's 10 KB for a request's headers; a function URL documents none
# for responses, so these are faas's own: one call may not flood the client or the worker.
RESPONSE_HEADER_BYTES = 10240  # names, values and cookies together
RESPONSE_HEADER_COUNT = 100  # headers and cookies together
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_FIELD_VALUE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")  # RFC 9110 field-value, as latin-1 text (PEP 3333)


class InvalidFunctionResponse(Exception):
    """The function answered something a function URL cannot turn into HTTP (Lambda: 502)."""


def api_id(function_name: str) -> str:
    """A stable 32-character id per function, like the <url-id> of a function URL."""
    digest = hashlib.sha256(function_name.encode("utf-8")).digest()[:20]
    return base64.b32encode(digest).decode("ascii").lower()


def request_time(epoch: float) -> str:
    """requestContext.time: '12/Mar/2020:19:03:58 +0000', independent of the locale."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES


def _join_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in joined:
            value = f"{joined[key]}{'; ' if key == 'cookie' else ','}{value}"
        joined[key] = value
    return joined


def _cookies(cookie_header: str | None) -> list[str]:
    if not cookie_header:
        return []
    # Cookies are separated by ";" (several Cookie headers are joined by "; " above).
    return [c.strip() for c in cookie_header.split(";") if c.strip()]


def _query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    function_name: str,
    request_id: str,
    epoch: float,
    protocol: str = "HTTP/1.1",
    server_port: str | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    """The payload format 2.0 event a function URL sends for this request, field for field.

    headers: (name, value) pairs as received; names become lower case and repeated
    headers are joined by ",". The cookie header stays in headers and is also split
    into `cookies`, as function URLs do. queryStringParameters and body are left out
    when there are none, as in the events Lambda builds.
    """
    joined = _join_headers(headers)
    forwarded = joined.get("x-forwarded-for")
    joined["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    joined.setdefault("x-forwarded-proto", scheme)
    if server_port:
        joined.setdefault("x-forwarded-port", server_port)
    joined.setdefault("x-amzn-trace-id", f"Root=1-{int(epoch):08x}-{uuid.uuid4().hex[:24]}")
    host = joined.get("host", "localhost")
    domain = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    prefix = domain if domain.replace(".", "").isdigit() or domain.startswith("[") else domain.split(".", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    cookies = _cookies(joined.get("cookie"))
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    params = _query_parameters(raw_query)
    if params:
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": api_id(function_name),
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": request_time(epoch),
        "timeEpoch": int(epoch * 1000),
    }
    encoded = False
    if body:
        text: str | None = None
        if is_text(joined.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            text = base64.b64encode(body).decode("ascii")
            encoded = True
        event["body"] = text
    event["isBase64Encoded"] = encoded
    return event


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_header_value(v) for v in value)
    return str(value)


def build_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes, list[str]]:
    """(status, headers, body, cookies) for what the function returned, as a function URL
    maps it: an object with statusCode is a response description; any other JSON is the
    body of a 200 application/json response. Raises InvalidFunctionResponse for what
    Lambda answers with 502."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidFunctionResponse(f"function response is not JSON: {e}") from None
    if not isinstance(value, dict) or "statusCode" not in value:
        return 200, [("content-type", "application/json")], payload, []
    status = value.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    # 1xx are not answers (101 would switch protocols under the client); Lambda answers 502.
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise InvalidFunctionResponse(f"statusCode must be an HTTP status from 200 to 599, got {_clip(status)}")
    raw_headers = value.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise InvalidFunctionResponse("headers must be an object")
    raw_cookies = value.get("cookies") or []
    if not isinstance(raw_cookies, list):
        raise InvalidFunctionResponse("cookies must be a list of strings")
    if len(raw_headers) + len(raw_cookies) > RESPONSE_HEADER_COUNT:
        raise InvalidFunctionResponse(f"more than {RESPONSE_HEADER_COUNT} headers and cookies")
    headers: list[tuple[str, str]] = []
    size = 0
    for name, raw in raw_headers.items():
        if raw is None or str(name).lower() in _HOP_HEADERS:
            continue
        text = _header_value(raw)
        size += len(str(name)) + len(text) + 4  # checked before the value is: it may be megabytes
        if size > RESPONSE_HEADER_BYTES:
            raise InvalidFunctionResponse(f"headers over {RESPONSE_HEADER_BYTES} bytes")
        headers.append(_field(str(name), text))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if value.get("isBase64Encoded") is True:
            try:
                data = base64.b64decode(body, validate=True)
            except binascii.Error as e:
                raise InvalidFunctionResponse(f"body is not valid base64: {e}") from None
        else:
            data = body.encode("utf-8")
    else:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    cookies: list[str] = []
    for c in raw_cookies:
        if c is None:
            continue
        size += len(str(c)) + 14
        if size > RESPONSE_HEADER_BYTES:
            raise InvalidFunctionResponse(f"headers over {RESPONSE_HEADER_BYTES} bytes")
        cookies.append(_field("Set-Cookie", str(c))[1])
    return status, headers, data, cookies


def _field(name: str, value: str) -> tuple[str, str]:
    """(name, value) as the WSGI server must get them: a valid name, and the value's UTF-8
    bytes as latin-1 text (PEP 3333), so that it goes out as the function wrote it."""
    if not _TOKEN.fullmatch(name):
        raise InvalidFunctionResponse(f"header name {_clip(name)} is not a valid HTTP field name")
    text = value.encode("utf-8", "surrogatepass").decode("latin-1")
    if not _FIELD_VALUE.fullmatch(text):
        raise InvalidFunctionResponse(f"header {_clip(name)} has a control character (CR, LF, NUL...) in its value")
    return name, text


def _clip(value: object, limit: int = 80) -> str:
    """A value quoted in a log line, cut short: a function's answer may be megabytes."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _message(status: int, message: str, request_id: str, extra: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps({"message": message}), status=status, mimetype="application/json")
    response.headers["x-amzn-RequestId"] = request_id
    for key, value in (extra or {}).items():
        response.headers[key] = value
    return response


def _raw_path(rest: str) -> str:
    """rawPath as the client sent it (percent-encoding kept) below /function/<name>."""
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw_uri:
        path = raw_uri.split("?", 1)[0]
        if path.startswith("http://") or path.startswith("https://"):  # absolute-form request target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        parts = path.split("/", 3)  # ["", "function", "<name>", "<rest>"]
        return "/" + (parts[3] if len(parts) > 3 else "")
    return "/" + quote(rest, safe="/!$&'()*+,;=:@~")


@bp.route("/function/<name>/", defaults={"rest": ""}, methods=METHODS, strict_slashes=False)
@bp.route("/function/<name>/<path:rest>", methods=METHODS)
def trigger(name: str, rest: str) -> Response:
    """Run the function for one HTTP request and answer as its function URL would."""
    from gateway.api_events import http_cors_headers, http_preflight  # api_events imports this module

    request_id = str(uuid.uuid4())
    cors = _url_cors(name)
    origin = request.headers.get("Origin")
    if cors is not None and request.method == "OPTIONS":
        # The URL service answers a preflight from the configuration; the function never sees it.
        answer = http_preflight(cors, origin, request.headers.get("Access-Control-Request-Method"))
        if answer is not None:
            status, preflight_headers, data = answer
            response = Response(data, status=status, headers=preflight_headers)
            response.headers["x-amzn-RequestId"] = request_id
            return response
    try:
        body = read_body(SYNC_PAYLOAD_LIMIT)
    except BodyTooLarge:
        return _message(413, "Request Entity Too Large", request_id)
    environ = request.environ
    event = build_event(
        method=request.method,
        raw_path=_raw_path(rest),
        raw_query=environ.get("QUERY_STRING", ""),
        headers=request.headers.items(),
        body=body,
        source_ip=request.remote_addr or "127.0.0.1",
        function_name=name,
        request_id=request_id,
        epoch=time.time(),
        protocol=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        server_port=environ.get("SERVER_PORT"),
        scheme=request.scheme,
    )
    try:
        result = platform().invoke(name, json.dumps(event, separators=(",", ":")).encode("utf-8"))
    except FunctionNotFound:
        return _message(404, "Not Found", request_id)
    except TooManyRequests as e:
        return _message(429, "Too Many Requests", request_id, {"Retry-After": str(e.retry_after_s)})
    except RequestTooLarge:
        return _message(413, "Request Entity Too Large", request_id)
    except ShuttingDown:
        return _message(503, "Service Unavailable", request_id)
    except FaasError as e:
        LOG.warning("function %s: HTTP trigger request %s failed: %s", name, request_id, e)
        return _message(502, "Internal Server Error", request_id)
    request_id = result.request_id or request_id
    if result.function_error:
        return _message(502, "Internal Server Error", request_id)
    try:
        status, headers, data, cookies = build_response(result.payload)
    except InvalidFunctionResponse as e:
        LOG.warning("function %s: request %s: %s", name, request_id, e)
        return _message(502, "Internal Server Error", request_id)
    response = Response(data, status=status, headers=headers)
    for cookie in cookies:
        response.headers.add("Set-Cookie", cookie)
    if cors is not None:
        # With Cors configured, the URL's CORS headers replace the function's own, as Lambda does.
        for header in {h for h in response.headers.keys() if h.lower().startswith("access-control-")}:
            del response.headers[header]
        for header, value in http_cors_headers(cors, origin):
            response.headers[header] = value
    response.headers["x-amzn-RequestId"] = request_id
    return response


def _url_cors(name: str) -> Cors | None:
    """The live version's function URL Cors; None when there is none, or no such function
    (the call then answers as it would without, a 404 or the reason it cannot run)."""
    try:
        return platform().get(name).spec.url_cors
    except FaasError:
        return None
