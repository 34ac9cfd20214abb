"""A SAM template's API routes: its functions' Api / HttpApi events and its APIs' OpenAPI
definitions, read as SAM reads them, into faas/deploy/routes.py's Routes.

Pure: the template comes parsed, intrinsics are resolved by the caller's `value` (sam.py's
resolver), a DefinitionUri is read by the caller's `load_definition`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from faas.deploy.routes import (
    DEFAULT_ROUTE,
    HTTP,
    IMPLICIT_HTTP_ID,
    IMPLICIT_HTTP_STAGE,
    IMPLICIT_REST_ID,
    IMPLICIT_REST_STAGE,
    KINDS,
    REST,
    Cors,
    Route,
    check_clashes,
)
from faas.errors import ValidationError

API_TYPES = {"AWS::Serverless::Api": REST, "AWS::Serverless::HttpApi": HTTP}
# What faas reads of an API (its own properties or Globals' Api / HttpApi); the rest is warned about.
API_PROPERTIES = {
    REST: {"StageName", "Variables", "BinaryMediaTypes", "Cors", "DefinitionBody", "DefinitionUri"},
    HTTP: {"StageName", "StageVariables", "CorsConfiguration", "DefinitionBody", "DefinitionUri"},
}


def _sam_list(value: Any, where: str) -> tuple[str, ...]:
    """A REST API Cors value: SAM writes them as quoted API Gateway literals ("'GET,POST'")."""
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be a string such as \"'*'\", got {value!r}")
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _plain_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ValidationError(f"{where} must be a list of strings")
    return tuple(str(v) for v in value)


def rest_cors(value: Any, where: str) -> Cors | None:
    """SAM's `Cors` of an AWS::Serverless::Api: a string (the allowed origin) or an object."""
    if value is None:
        return None
    if isinstance(value, str):
        return Cors(allow_origins=_sam_list(value, where))
    if not isinstance(value, Mapping) or "AllowOrigin" not in value:
        raise ValidationError(f"{where}: Cors must be an origin string or an object with AllowOrigin")
    max_age = value.get("MaxAge")
    return Cors(
        allow_origins=_sam_list(value["AllowOrigin"], f"{where}.AllowOrigin"),
        allow_methods=_sam_list(value["AllowMethods"], f"{where}.AllowMethods") if "AllowMethods" in value else None,
        allow_headers=_sam_list(value["AllowHeaders"], f"{where}.AllowHeaders") if "AllowHeaders" in value else (),
        max_age=int(_sam_list(max_age, f"{where}.MaxAge")[0]) if max_age is not None else None,
        allow_credentials=value.get("AllowCredentials") is True,
    )


def http_cors(value: Any, where: str) -> Cors | None:
    """SAM's `CorsConfiguration` of an AWS::Serverless::HttpApi: true (allow all) or an object."""
    if value is None or value is False:
        return None
    if value is True:
        return Cors(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where}: CorsConfiguration must be true or an object")
    max_age = value.get("MaxAge")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
        raise ValidationError(f"{where}.MaxAge must be a number of seconds")
    return Cors(
        allow_origins=_plain_list(value.get("AllowOrigins", []), f"{where}.AllowOrigins"),
        allow_methods=_plain_list(value["AllowMethods"], f"{where}.AllowMethods") if "AllowMethods" in value else ("*",),
        allow_headers=_plain_list(value.get("AllowHeaders", []), f"{where}.AllowHeaders"),
        expose_headers=_plain_list(value.get("ExposeHeaders", []), f"{where}.ExposeHeaders"),
        max_age=max_age,
        allow_credentials=value.get("AllowCredentials") is True,
    )


def template_routes(
    resources: Mapping[str, Any],
    functions: Mapping[str, str],
    value: Callable[[Any, str], Any],
    globals_: Mapping[str, Any],
    warnings: list[str],
    load_definition: Callable[[str, str], Any] | None = None,
) -> list[Route]:
    """The Api and HttpApi routes of a template: its functions' events, and the Lambda proxy
    integrations of its APIs' OpenAPI definitions (DefinitionBody, DefinitionUri).

    functions: logical id -> faas function name (the deployable ones); value(raw, where)
    resolves intrinsics (a ValidationError when it cannot); load_definition(uri, where) reads
    a DefinitionUri. Other event types and properties faas does not serve are named in warnings.
    """
    apis = {
        lid: res.get("Properties") or {}
        for lid, res in resources.items()
        if isinstance(res, Mapping) and res.get("Type") in API_TYPES
    }
    kinds = {lid: API_TYPES[resources[lid]["Type"]] for lid in apis}
    for lid, props in [*apis.items(), *((f"Globals.{k}", globals_.get(k) or {}) for k in KINDS)]:
        api_kind = kinds.get(lid) or lid.split(".", 1)[1]
        ignored = sorted(set(props) - API_PROPERTIES[api_kind]) if isinstance(props, Mapping) else []
        if ignored:
            warnings.append(f"{lid}: not supported by faas, ignored: {', '.join(ignored)}")
    settings: dict[str, dict[str, Any]] = {}

    def api(api_id: str, kind: str) -> dict[str, Any]:
        """What a route takes from its API: stage, stage variables, binary types, CORS."""
        if api_id not in settings:
            props = {**(globals_.get(kind) or {}), **apis.get(api_id, {})}
            stage = value(props["StageName"], f"{api_id}.StageName") if "StageName" in props else None
            variables_key = "Variables" if kind == REST else "StageVariables"
            variables = value(props.get(variables_key) or {}, f"{api_id}.{variables_key}")
            binary = value(props.get("BinaryMediaTypes") or [], f"{api_id}.BinaryMediaTypes")
            if not isinstance(variables, Mapping) or not isinstance(binary, list):
                raise ValidationError(f"{api_id}: {variables_key} must be a map and BinaryMediaTypes a list")
            cors_key = "Cors" if kind == REST else "CorsConfiguration"
            raw_cors = value(props[cors_key], f"{api_id}.{cors_key}") if cors_key in props else None
            settings[api_id] = {
                "kind": kind,
                "api_id": api_id,
                "stage": str(stage or (IMPLICIT_REST_STAGE if kind == REST else IMPLICIT_HTTP_STAGE)),
                "stage_variables": {str(k): str(v) for k, v in variables.items()},
                # SAM writes "/" as "~1" in BinaryMediaTypes (it is a JSON pointer there).
                "binary_media_types": tuple(str(b).replace("~1", "/") for b in binary),
                "cors": (rest_cors if kind == REST else http_cors)(raw_cors, f"{api_id}.{cors_key}"),
            }
        return settings[api_id]

    def add(route: Route, where: str) -> None:
        try:
            route.check()
        except ValidationError as e:
            raise ValidationError(f"{where}: {e.message}") from None
        if route not in routes:  # an event and the API's definition may both name it
            routes.append(route)

    routes: list[Route] = []
    for logical_id, name in functions.items():
        events = (resources[logical_id].get("Properties") or {}).get("Events") or {}
        if not isinstance(events, Mapping):
            raise ValidationError(f"{logical_id}.Events must be a map of events")
        for event_id, event in events.items():
            where = f"{logical_id}.Events.{event_id}"
            kind = event.get("Type") if isinstance(event, Mapping) else None
            if kind in ("Schedule", "ScheduleV2"):
                continue  # faas/deploy/sam_schedules.py
            if kind == "SQS":
                continue  # an event source mapping (faas/events/sam_sources.py)
            if kind not in KINDS:
                warnings.append(f"{where}: event type {kind} is not served by faas, ignored")
                continue
            props = event.get("Properties") or {}
            if not isinstance(props, Mapping):
                raise ValidationError(f"{where}.Properties must be a map")
            ignored = sorted(set(props) - {"Path", "Method", "RestApiId", "ApiId", "PayloadFormatVersion"})
            if ignored:
                warnings.append(f"{where}: not supported by faas, ignored: {', '.join(ignored)}")
            api_key = "RestApiId" if kind == REST else "ApiId"
            api_id = IMPLICIT_REST_ID if kind == REST else IMPLICIT_HTTP_ID
            if api_key in props:
                ref = props[api_key]
                named = ref.get("Ref") if isinstance(ref, Mapping) else ref
                if not isinstance(named, str) or named not in apis or kinds[named] != kind:
                    raise ValidationError(f"{where}.{api_key}: {ref!r} is not an {kind} resource of this template")
                api_id = named
            path = value(props.get("Path", DEFAULT_ROUTE if kind == HTTP else None), f"{where}.Path")
            method = value(props.get("Method", "ANY" if kind == HTTP else None), f"{where}.Method")
            if not isinstance(path, str) or not isinstance(method, str):
                raise ValidationError(f"{where}: an {kind} event needs Path and Method")
            version = str(value(props.get("PayloadFormatVersion", "2.0" if kind == HTTP else "1.0"), where))
            add(Route(method=_method(method), path=path, function=name, payload_version=version, **api(api_id, kind)), where)
    for api_id, props in apis.items():
        definition = props.get("DefinitionBody")
        if definition is None and props.get("DefinitionUri") is not None:
            uri = value(props["DefinitionUri"], f"{api_id}.DefinitionUri")
            if not isinstance(uri, str) or load_definition is None:
                raise ValidationError(f"{api_id}.DefinitionUri must be a local file relative to the template")
            definition = load_definition(uri, f"{api_id}.DefinitionUri")
        if definition is not None:
            for route, where in _openapi_routes(api_id, kinds[api_id], definition, functions, value, warnings):
                add(Route(**{**route, **api(api_id, kinds[api_id])}), where)
    check_clashes(routes)
    return routes


def _method(text: str) -> str:
    method = text.upper()
    return "ANY" if method in ("X-AMAZON-APIGATEWAY-ANY-METHOD", "*") else method


_FUNCTION_IN_URI = re.compile(r":function:([A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9_$-]+)?(?:/invocations)?$")


def _openapi_routes(
    api_id: str,
    kind: str,
    definition: Any,
    functions: Mapping[str, str],
    value: Callable[[Any, str], Any],
    warnings: list[str],
) -> list[tuple[dict[str, Any], str]]:
    """(route fields, where) for each Lambda proxy integration of an OpenAPI definition."""
    paths = definition.get("paths") if isinstance(definition, Mapping) else None
    if not isinstance(paths, Mapping):
        raise ValidationError(f"{api_id}: its OpenAPI definition has no paths")
    names = set(functions.values())
    out: list[tuple[dict[str, Any], str]] = []
    for path, operations in paths.items():
        if not isinstance(operations, Mapping):
            continue
        for verb, operation in operations.items():
            where = f"{api_id} OpenAPI {verb} {path}"
            if str(verb).lower() in ("parameters", "summary", "description", "servers") or not isinstance(operation, Mapping):
                continue
            integration = operation.get("x-amazon-apigateway-integration")
            if not isinstance(integration, Mapping):
                warnings.append(f"{where}: no x-amazon-apigateway-integration, not served")
                continue
            if str(integration.get("type", "")).lower() != "aws_proxy":
                warnings.append(f"{where}: integration type {integration.get('type')} is not served by faas (only aws_proxy)")
                continue
            try:
                uri = value(integration.get("uri"), f"{where}.uri")
            except ValidationError as e:
                warnings.append(f"{e.message}; not served")
                continue
            found = _FUNCTION_IN_URI.search(str(uri))
            if found is None or found.group(1) not in names:
                warnings.append(f"{where}: its integration is not a function of this template faas deploys, not served")
                continue
            version = str(integration.get("payloadFormatVersion", "2.0" if kind == HTTP else "1.0"))
            out.append(
                ({"method": _method(str(verb)), "path": str(path), "function": found.group(1), "payload_version": version}, where)
            )
    return out
