"""create_app(): the Flask application of one gateway worker.

The Platform (scheduler, pool, store) lives in app.extensions["faas"]; gunicorn builds it
in the worker after fork (see gateway/server.py), never in the arbiter. Every error
leaves as Lambda's API sends it: JSON {"Type", "Message"} with x-amzn-ErrorType, so
boto3 and the AWS CLI raise their usual typed exceptions.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from faas.config import Config
from faas.errors import FaasError, InvalidRequestContent, TooManyRequests
from faas.ids import request_id
from gateway.browser_guard import GUARD_KEY, BrowserGuard
from gateway.common import CONFIG_KEY, PLATFORM_KEY

if TYPE_CHECKING:
    from gateway.contract import PlatformAPI

LOG = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-amzn-RequestId"


def create_app(platform: PlatformAPI | None = None, config: Config | None = None) -> Flask:
    """Build the app around `platform`; without one, build the real Platform from config.

    Tests pass a fake platform (tests/fakes.py FakePlatform, held to the same PlatformAPI); gunicorn's worker calls this with neither, after fork,
    so that containers, sockets and threads belong to the worker process.
    """
    if platform is None:
        from faas.platform import Platform

        config = config or Config.load()
        platform = Platform.create(config)
    app = Flask(__name__)
    app.extensions[PLATFORM_KEY] = platform
    app.extensions[CONFIG_KEY] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]

    from gateway import admin, http_trigger, lambda_api

    app.register_blueprint(lambda_api.bp)
    from gateway import management

    app.register_blueprint(management.bp)
    app.register_blueprint(http_trigger.bp)
    app.register_blueprint(admin.create_blueprint())
    from gateway import metrics, ui

    app.register_blueprint(metrics.bp)
    app.register_blueprint(ui.bp)
    from gateway import schedules_api

    app.register_blueprint(schedules_api.bp)
    from gateway import api_routes

    app.register_blueprint(api_routes.bp)  # last: template routes take what no faas route does
    guard = BrowserGuard.for_gateway(config.host if config is not None else "127.0.0.1")
    app.extensions[GUARD_KEY] = guard  # the worker's Invoke fast path asks it too

    @app.before_request
    def _refuse_web_pages() -> None:
        if request.endpoint == api_routes.SERVE_ENDPOINT:
            return  # a template's own API routes are user endpoints, which pages may call, as function URLs are
        guard.check(request.path, request.headers.get("Host"), request.headers.get("Origin"))

    app.register_error_handler(FaasError, faas_error_response)
    app.register_error_handler(HTTPException, _http_error_response)
    for parse_error in _body_parse_errors():
        app.register_error_handler(parse_error, _body_parse_error_response)
    app.register_error_handler(Exception, _unexpected_error_response)
    app.after_request(_add_request_id)
    return app


def error_json(err: FaasError) -> bytes:
    return json.dumps(err.body(), separators=(",", ":")).encode()


def error_answer(err: FaasError) -> tuple[int, list[tuple[str, str]], bytes]:
    """A FaasError as Lambda's API answers it (status, x-amzn-ErrorType, {"Type","Message"});
    shared by the Flask app and the gateway worker's fast path."""
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", err.error_type)]
    if isinstance(err, TooManyRequests):
        headers.append(("Retry-After", str(err.retry_after_s)))
    return err.status, headers, error_json(err)


def unexpected_error(err: Exception) -> FaasError:
    """A bug, not a user error: logged with its traceback, answered as Lambda's 500."""
    LOG.exception("unexpected error while serving a request: %s", err)
    return FaasError(f"internal error in the faas gateway: {type(err).__name__}: {err}")


def faas_error_response(err: FaasError) -> Response:
    status, headers, body = error_answer(err)
    return Response(body, status=status, headers=headers)


def _http_error_response(err: HTTPException) -> Response:
    """Routing errors (404 unknown path, 405 method) in the same JSON shape as the API's."""
    message = err.description or err.name
    error_type = "ResourceNotFoundException" if err.code == 404 else "InvalidRequestException"
    body = {"Type": "User", "Message": message, "message": message}
    response = Response(json.dumps(body), status=err.code or 500, mimetype="application/json")
    response.headers["x-amzn-ErrorType"] = error_type
    valid_methods = getattr(err, "valid_methods", None)
    if valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def _body_parse_errors() -> tuple[type[Exception], ...]:
    """gunicorn's errors for a body it could not read (a bad chunk size, extension or
    terminator): raised inside a route when it reads the body, they are the client's
    fault, not a bug. Empty where gunicorn is not the server (the unit tests' client)."""
    try:
        from gunicorn.http.errors import ParseException  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - gunicorn is a dependency of the gateway
        return ()
    return (ParseException,)


def _body_parse_error_response(err: Exception) -> Response:
    """400 InvalidRequestContentException; the worker closes the connection after it, as the
    body's end, and so the next request's start, is unknown."""
    return faas_error_response(InvalidRequestContent(f"could not read the request body: {str(err)[:200]}"))


def _unexpected_error_response(err: Exception) -> Response:
    return faas_error_response(unexpected_error(err))


def _add_request_id(response: Response) -> Response:
    """Every response names a request id; Invoke already set the call's own."""
    if REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = request_id()
    return response
