"""Lambda's Invoke API: POST /2015-03-31/functions/<name>/invocations.

The route boto3, the AWS CLI and every SDK call when given endpoint_url. Headers, status
codes and error bodies follow Lambda's API reference so that clients behave here exactly
as against AWS. The payload stays bytes end to end: it is parsed once to check that it
is JSON (as Lambda does) and then passed on as received.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, request

from faas.errors import InvalidRequestContent, ValidationError
from faas.models import payload_limit, payload_too_large
from gateway.common import BodyTooLarge, api_token, platform, read_body, token_presented, unrecognized
from gateway.contract import PlatformAPI

LOG = logging.getLogger(__name__)

bp = Blueprint("lambda_api", __name__)

INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
LOG_TYPES = ("None", "Tail")
LOG_TAIL_BYTES = 4096  # Lambda returns the last 4 KB of the log in X-Amz-Log-Result
CLIENT_CONTEXT_LIMIT = 3583  # bytes of base64 Lambda accepts in X-Amz-Client-Context
# Lambda's FunctionName pattern (Invoke API reference): a name, name:qualifier, a partial
# ARN ACCOUNT:function:NAME or a full ARN, each optionally with :QUALIFIER.
FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME_RE = re.compile(
    r"(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:[a-z]{2}(?:-gov)?-[a-z]+-\d:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
)


def parse_function_name(function: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """Split what a caller may put in FunctionName into (name, qualifier), as Lambda does.

    A qualifier both in the name and in ?Qualifier= must agree, else Lambda refuses.
    """
    match = _FUNCTION_NAME_RE.fullmatch(function)
    if match is None:
        raise ValidationError(
            f"1 validation error detected: Value '{function}' at 'functionName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
    derived = match.group("qualifier")
    qualifier = qualifier or None
    if derived is not None and qualifier is not None and derived != qualifier:
        raise ValidationError("The derived qualifier from the function name does not match the specified qualifier.")
    return match.group("name"), derived or qualifier


def _reject_constant(token: str) -> object:
    # Lambda's parser (Jackson) refuses NaN and Infinity; so does ours.
    raise ValueError(f"Non-standard token '{token}'")


def check_json(payload: bytes) -> bytes:
    """The payload to pass on: an empty body becomes {} (Lambda's behaviour), anything
    else must parse as JSON or the call is refused with InvalidRequestContentException."""
    if not payload or payload.isspace():
        return b"{}"
    try:
        json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise InvalidRequestContent(f"Could not parse request body into json: Could not parse payload into json: {e}") from None
    return payload


def decode_client_context(header: str | None) -> str | None:
    """X-Amz-Client-Context is base64 of a JSON object; the function gets that object as
    compact ASCII JSON, re-serialised rather than passed on: the runtime reads it from a
    header (Lambda-Runtime-Client-Context), where a CR LF of the client's JSON whitespace
    would end the header and desynchronise the runtime's connection."""
    if not header:
        return None
    if len(header) > CLIENT_CONTEXT_LIMIT:
        raise ValidationError(
            f"1 validation error detected: Value at 'clientContext' failed to satisfy constraint: "
            f"Member must have length less than or equal to {CLIENT_CONTEXT_LIMIT}"
        )
    try:
        text = base64.b64decode(header, validate=True).decode("utf-8")
        parsed = json.loads(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
    return json.dumps(parsed, separators=(",", ":"))


DEBUG_PORT_HEADER = "X-Faas-Debug-Port"
_CLIENT_POLL_S = 0.5  # how often a debug call looks whether its client is still there


@dataclass(frozen=True)
class DebugGate:
    """What a debug call needs from the HTTP side: the gateway's API token (None: none is
    set) and the client's socket, watched so that a session whose caller left is ended."""

    token: str | None
    client: socket.socket | None


def _debug_allowed(gate: DebugGate, header: Callable[[str], str | None]) -> bool:
    """With an API token set, a debug call must carry it: as `Authorization: Bearer TOKEN`
    (what faas's CLI sends) or as the access key id of a SigV4 signature (what the
    management API takes). Both compared in constant time."""
    return not gate.token or token_presented(gate.token, header("Authorization") or "")


def _client_gone(client: socket.socket) -> bool:
    """True once the client has closed its side (or reset it): a read would return nothing."""
    poller = select.poll()
    poller.register(client, select.POLLIN | select.POLLRDHUP)
    if not poller.poll(0):
        return False
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _watch_client(client: socket.socket, done: threading.Event, end: Callable[[], int]) -> None:
    """Until `done`, look every _CLIENT_POLL_S whether the client left; once it has, end() the
    session, and again at each look until the call returns: a session whose container was
    still starting when the client left is not yet there to be ended."""
    gone = False
    while not done.wait(_CLIENT_POLL_S):
        if not gone and _client_gone(client):
            LOG.info("debug call: the client closed its connection, ending the session")
            gone = True
        if gone:
            end()


Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


@bp.post("/2015-03-31/functions/<function>/invocations")
def invoke(function: str) -> Response:
    """The route for requests the gateway worker's fast path passes over (see invoke_answer),
    debug calls among them: only here is the client's socket known."""
    gate = DebugGate(api_token(), request.environ.get("gunicorn.socket"))
    status, headers, body = invoke_answer(
        platform(), function, request.args.get("Qualifier"), request.headers.get, read_body, debug_gate=gate
    )
    response = Response(body, status=status, headers=headers)
    if not any(k == "Content-Type" for k, _ in headers):
        del response.headers["Content-Type"]  # none on 202 and 204, as from the fast path
    return response


def invoke_answer(
    plat: PlatformAPI,
    function: str,
    qualifier: str | None,
    header: Callable[[str], str | None],
    read: Callable[[int], bytes],
    *,
    debug_gate: DebugGate | None = None,
) -> Answer:
    """One Invoke call: validate as Lambda does, run it, answer with Lambda's headers.

    Free of Flask so that the gateway worker (gateway/worker.py) can serve the hottest route
    without a WSGI round trip, and the Flask route above gives the same answer for the rest.
    header(name) reads a request header; read(limit) the body (raising BodyTooLarge).
    debug_gate: given by the Flask route only; without it a debug call is refused (the
    fast path leaves them to the route). Raises FaasError for every refusal.
    """
    invocation_type = header("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type not in INVOCATION_TYPES:
        raise ValidationError(
            f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(INVOCATION_TYPES)}]"
        )
    log_type = header("X-Amz-Log-Type") or "None"
    if log_type not in LOG_TYPES:
        raise ValidationError(
            f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(LOG_TYPES)}]"
        )
    name, qualifier = parse_function_name(function, qualifier)
    try:
        payload = check_json(read(payload_limit(invocation_type)))
    except BodyTooLarge as e:
        raise payload_too_large(e.size, invocation_type, request=True) from None
    client_context = decode_client_context(header("X-Amz-Client-Context"))

    if invocation_type == "DryRun":
        # Lambda's DryRun checks that the function (and the version or alias) exists and may
        # be called, runs nothing, and answers 204 with no body and no executed version.
        plat.resolve(name, qualifier)
        return 204, [], b""
    if invocation_type == "Event":
        # 202 once the event is durably queued; the function runs later, so there is no
        # executed version, log tail or payload to report (X-Amz-Log-Type is ignored, as on
        # Lambda, and the client context is not passed: Lambda passes it to sync calls only).
        request_id = plat.invoke_async(name, payload, qualifier=qualifier, client_context=client_context)
        return 202, [("x-amzn-RequestId", request_id)], b""

    debug = header(DEBUG_PORT_HEADER)
    if debug is not None:
        # faas's own extension (`faas invoke --debug`): run under a debugger on 127.0.0.1:PORT.
        if debug_gate is None or not _debug_allowed(debug_gate, header):
            raise unrecognized(f"{DEBUG_PORT_HEADER} needs this gateway's API token (FAAS_API_TOKEN)", 403)
        if not debug.isdigit() or not 1024 <= int(debug) <= 65535:
            raise ValidationError(f"{DEBUG_PORT_HEADER} must be a port number from 1024 to 65535, got {debug[:20]!r}")
        port = int(debug)
        done = threading.Event()
        if debug_gate.client is not None:
            watch = threading.Thread(
                target=_watch_client,
                args=(debug_gate.client, done, lambda: plat.end_debug(port)),
                name="debug-client",
                daemon=True,
            )
            watch.start()
        try:
            result = plat.invoke(name, payload, qualifier=qualifier, client_context=client_context, debug_port=port)
        finally:
            done.set()
    else:
        result = plat.invoke(name, payload, qualifier=qualifier, client_context=client_context)
    # X-Amz-Executed-Version: the number of the version that ran, also for an unqualified call:
    # in faas every deploy is an immutable numbered version and the live one is what Lambda
    # calls $LATEST (Lambda itself reports "$LATEST" there); an alias reports the version it
    # resolved to, as on Lambda.
    out = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", result.request_id),
        ("X-Amz-Executed-Version", str(result.version)),
    ]
    if result.function_error:
        out.append(("X-Amz-Function-Error", result.function_error))
    if log_type == "Tail":
        out.append(("X-Amz-Log-Result", base64.b64encode(result.logs.encode("utf-8")[-LOG_TAIL_BYTES:]).decode("ascii")))
    return 200, out, result.payload
