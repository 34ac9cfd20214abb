"""The CLI's HTTP client for a running gateway (admin API and Lambda's Invoke API).

requests' errors are translated here, where they enter: no gateway answering becomes
GatewayUnavailable, an error answer becomes GatewayError with Lambda's error type and
message, so the CLI prints one kind of error.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from faas.errors import FaasError, GatewayUnavailable

LOG = logging.getLogger(__name__)

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
SOURCE_DIR_HEADER = "X-Faas-Source-Dir"
CONNECT_TIMEOUT_S = 3.0
ADMIN_TIMEOUT_S = 120.0  # a deploy unpacks up to 250 MB
INVOKE_TIMEOUT_S = 960.0  # Lambda's longest call is 900 s


def gateway_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """--gateway, else FAAS_GATEWAY, else the default local gateway."""
    env = os.environ if env is None else env
    return (explicit or env.get("FAAS_GATEWAY") or DEFAULT_GATEWAY).rstrip("/")


class GatewayError(FaasError):
    """The gateway answered with an error (its x-amzn-ErrorType and Message)."""

    def __init__(self, message: str, *, status: int, error_type: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.details = dict(body or {})


@dataclass(frozen=True)
class InvokeResponse:
    """What Invoke returned: the payload, and Lambda's headers about the call."""

    payload: bytes
    request_id: str
    executed_version: str | None
    function_error: str | None
    log_tail: str | None  # X-Amz-Log-Result, decoded


@dataclass(frozen=True)
class DeployResponse:
    status: int
    function: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.function.get("changed", self.status == 201))


class GatewayClient:
    """One gateway, one requests.Session (keep-alive across the CLI's calls)."""

    def __init__(self, base_url: str, *, token: str | None = None, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.trust_env = False  # loopback only: never through an HTTP(S)_PROXY
        token = token if token is not None else os.environ.get("FAAS_API_TOKEN")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of the API token, for callers that use the session directly."""
        return dict(self._auth)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, timeout: float | None = ADMIN_TIMEOUT_S, **kwargs: Any) -> requests.Response:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            response = self.session.request(
                method, self.base_url + path, headers=headers, timeout=(CONNECT_TIMEOUT_S, timeout), **kwargs
            )
        except requests.ConnectionError as e:
            raise GatewayUnavailable(
                f"no faas gateway answers at {self.base_url} — start one with `faas up`", url=self.base_url
            ) from e
        except requests.Timeout as e:
            raise GatewayUnavailable(f"the faas gateway at {self.base_url} did not answer in time", url=self.base_url) from e
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def health(self) -> bool:
        """True when a gateway answers /healthz (no exception: used to wait for start)."""
        try:
            response = self.session.get(self.base_url + "/healthz", timeout=(1.0, 2.0))
        except requests.RequestException:
            return False
        return response.status_code == 200

    def deploy(self, name: str, package: bytes, *, source_dir: str | None = None) -> DeployResponse:
        headers = {"Content-Type": "application/zip"}
        if source_dir:
            headers[SOURCE_DIR_HEADER] = source_dir
        response = self._request("PUT", f"/system/functions/{quote(name, safe='')}", data=package, headers=headers)
        return DeployResponse(response.status_code, response.json())

    def functions(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/system/functions").json())

    def management(self, method: str, path: str, body: Any, *, params: dict[str, str] | None = None) -> Any:
        """A call of Lambda's management API (event source mappings, event invoke configs); its JSON."""
        response = self._request(method, path, json=body, params=params)
        return response.json() if response.content else None

    def put_routes(
        self,
        stack: str,
        routes: list[dict[str, Any]],
        *,
        dry_run: bool = False,
        unrunnable: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Replace a template's API routes (dry_run: only check them) and its functions that
        cannot run here ({name: reason}); see faas/deploy/routes.py."""
        query = "?dry_run=true" if dry_run else ""
        path = f"/system/routes/{quote(stack, safe='')}{query}"
        body: dict[str, Any] = {"routes": routes}
        if unrunnable:
            body["unrunnable"] = unrunnable
        return list(self._request("PUT", path, json=body).json().get("routes") or [])

    def put_schedules(self, stack: str, schedules: list[dict[str, Any]], *, dry_run: bool = False) -> None:
        """Replace a template's schedules (dry_run: only check them); see faas/events/schedule.py."""
        query = "?dry_run=true" if dry_run else ""
        self._request("PUT", f"/system/schedules/{quote(stack, safe='')}{query}", json={"schedules": schedules})

    def schedules(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/system/schedules").json().get("schedules") or [])

    def fire_schedule(self, name: str) -> str:
        return str(self._request("POST", f"/system/schedules/{quote(name, safe='')}/fire").json().get("request_id"))

    def unrunnable(self) -> list[dict[str, Any]]:
        """Functions of deployed templates that cannot run here: name, reason, stack."""
        return list(self._request("GET", "/system/routes").json().get("unrunnable") or [])

    def remove_routes(self, stack: str) -> None:
        self._request("DELETE", f"/system/routes/{quote(stack, safe='')}")

    def routes(self) -> list[dict[str, Any]]:
        """Every deployed template's API routes, each with its stack."""
        return list(self._request("GET", "/system/routes").json().get("routes") or [])

    def function(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/system/functions/{quote(name, safe='')}").json())

    def remove(self, name: str) -> None:
        self._request("DELETE", f"/system/functions/{quote(name, safe='')}")

    def versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/system/functions/{quote(name, safe='')}/versions").json())

    def rollback(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Make an earlier version live (default: the one before the live one)."""
        body = {"version": version} if version is not None else {}
        return dict(self._request("POST", f"/system/functions/{quote(name, safe='')}/rollback", json=body).json())

    def follow_logs(self, name: str, cursor: str | None, *, tail: int = 200, wait_s: float = 20.0) -> tuple[str, str]:
        """One long poll of `faas logs --follow`: (new text, next cursor)."""
        params: dict[str, Any] = {"tail": tail, "wait": wait_s}
        if cursor is not None:
            params["cursor"] = cursor
        response = self._request(
            "GET", f"/system/functions/{quote(name, safe='')}/logs/follow", params=params, timeout=wait_s + 30
        )
        return response.text, response.headers.get("X-Faas-Log-Cursor", cursor or "0:0")

    def calls(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/system/functions/{quote(name, safe='')}/calls", params={"tail": limit}).json())

    def failures(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/system/functions/{quote(name, safe='')}/failures", params={"tail": limit}).json())

    def logs(self, name: str, *, tail: int = 200) -> str:
        return self._request("GET", f"/system/functions/{quote(name, safe='')}/logs", params={"tail": tail}).text

    def environments(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/system/environments").json())

    def pool(self) -> dict[str, Any]:
        return dict(self._request("GET", "/system/pool").json())

    def invoke(
        self, name: str, payload: bytes, *, tail: bool = False, qualifier: str | None = None, debug_port: int | None = None
    ) -> InvokeResponse:
        """Lambda's Invoke API, as boto3 calls it (plus faas's debugger header)."""
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        if debug_port:
            headers["X-Faas-Debug-Port"] = str(debug_port)
        params = {"Qualifier": qualifier} if qualifier else None
        response = self._request(
            "POST",
            f"/2015-03-31/functions/{quote(name, safe='')}/invocations",
            data=payload,
            headers=headers,
            params=params,
            timeout=None if debug_port else INVOKE_TIMEOUT_S,  # a debugging session lasts as long as it lasts
        )
        log_result = response.headers.get("X-Amz-Log-Result")
        return InvokeResponse(
            payload=response.content,
            request_id=response.headers.get("x-amzn-RequestId", ""),
            executed_version=response.headers.get("X-Amz-Executed-Version"),
            function_error=response.headers.get("X-Amz-Function-Error"),
            log_tail=base64.b64decode(log_result).decode("utf-8", "replace") if log_result else None,
        )


def _error_from(response: requests.Response) -> GatewayError:
    error_type = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0] or f"HTTP{response.status_code}"
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    message = body.get("Message") or body.get("message") or response.text.strip() or response.reason
    return GatewayError(str(message), status=response.status_code, error_type=error_type, body=body)
