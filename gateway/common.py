"""Helpers every route shares: the platform of this process and bounded body reads."""

from __future__ import annotations

import hmac
import logging
import re
from typing import TYPE_CHECKING

from flask import Flask, current_app, request

from faas.errors import FaasError

if TYPE_CHECKING:
    from faas.config import Config
    from gateway.contract import PlatformAPI

LOG = logging.getLogger(__name__)

PLATFORM_KEY = "faas"
CONFIG_KEY = "faas.config"
_CHUNK = 256 * 1024
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class BodyTooLarge(Exception):
    """The request body is over the route's limit; `size` is its length when known."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def platform() -> PlatformAPI:
    """The Platform of this worker process (create_app put it in app.extensions)."""
    return platform_of(current_app)  # type: ignore[arg-type]


def platform_of(app: Flask) -> PlatformAPI:
    """The platform create_app put in this app (the worker and the gunicorn hooks, outside a request)."""
    found: PlatformAPI = app.extensions[PLATFORM_KEY]
    return found


def api_token() -> str | None:
    """The API token the gateway's config asks for; None without one (or without a config: tests)."""
    config: Config | None = current_app.extensions.get(CONFIG_KEY)
    return config.api_token if config is not None else None


def access_key_id(authorization: str) -> str:
    """The access key id of a SigV4 Authorization header ('' when there is none)."""
    match = _SIGV4_CREDENTIAL.search(authorization)
    return match.group(1) if match else ""


def bearer_matches(token: str, authorization: str) -> bool:
    """Whether `authorization` is `Bearer <token>`, compared in constant time."""
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


def token_presented(token: str, authorization: str) -> bool:
    """The token as a bearer token (faas's CLI) or as a SigV4 access key id (boto3, the AWS CLI)."""
    as_key = hmac.compare_digest(access_key_id(authorization).encode(), token.encode())
    return bearer_matches(token, authorization) or as_key


def unrecognized(message: str, status: int = 401) -> FaasError:
    """What a token-guarded route answers without the token, in Lambda's error shape."""
    err = FaasError(message)
    err.status = status
    err.error_type = "UnrecognizedClientException"
    err.kind = "User"
    return err


def require_token() -> None:
    """Refuse the request (401) when the gateway has an API token and the request lacks it."""
    token = api_token()
    if token and not bearer_matches(token, request.headers.get("Authorization", "")):
        raise unrecognized("this gateway needs its API token: set FAAS_API_TOKEN")


def read_body(limit: int) -> bytes:
    """The whole request body, refusing anything over `limit` bytes.

    Content-Length is checked before a byte is read, so an oversized upload costs no
    memory; a chunked body (no Content-Length) is read only up to limit + 1 bytes, which
    is how its real length is checked. Raises BodyTooLarge; callers turn it into the
    error their API uses (RequestTooLarge, PackageTooLarge, a 413 page).
    """
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise BodyTooLarge(declared)
        data = request.stream.read()
        if len(data) > limit:  # a server that does not cap the stream at Content-Length
            raise BodyTooLarge(len(data))
        return data
    parts: list[bytes] = []
    total = 0
    stream = request.stream
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(None)
        parts.append(chunk)
    return b"".join(parts)
