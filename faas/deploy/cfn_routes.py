"""Routes from plain CloudFormation API resources (what CDK and hand-written templates hold):
AWS::ApiGateway::RestApi / Resource / Method with AWS_PROXY integrations, AWS::ApiGatewayV2::Api
(quick create with Target, or Route + Integration), and their Stages; AWS::Lambda::Url is the
function's URL, which faas serves at /function/NAME.

Pure, like sam_routes.py: `value` resolves intrinsics (a !Ref of a resource is its logical id),
so the resources' links (ParentId, ResourceId, ApiId, a Route's Target) are followed by id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from faas.deploy.routes import DEFAULT_ROUTE, HTTP, IMPLICIT_HTTP_STAGE, IMPLICIT_REST_STAGE, REST, Route
from faas.deploy.sam_routes import _FUNCTION_IN_URI, _method, _openapi_routes, http_cors
from faas.errors import ValidationError

REST_API = "AWS::ApiGateway::RestApi"
REST_RESOURCE = "AWS::ApiGateway::Resource"
REST_METHOD = "AWS::ApiGateway::Method"
REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
HTTP_API = "AWS::ApiGatewayV2::Api"
HTTP_ROUTE = "AWS::ApiGatewayV2::Route"
HTTP_INTEGRATION = "AWS::ApiGatewayV2::Integration"
HTTP_STAGE = "AWS::ApiGatewayV2::Stage"
FUNCTION_URL = "AWS::Lambda::Url"
PERMISSION = "AWS::Lambda::Permission"  # what lets API Gateway call the function: nothing to do here
RESOURCE_TYPES = frozenset(
    {
        REST_API,
        REST_RESOURCE,
        REST_METHOD,
        REST_STAGE,
        REST_DEPLOYMENT,
        HTTP_API,
        HTTP_ROUTE,
        HTTP_INTEGRATION,
        HTTP_STAGE,
        "AWS::ApiGatewayV2::Deployment",
        FUNCTION_URL,
        PERMISSION,
    }
)
MAX_DEPTH = 64  # resources nested under resources: a path of more segments than that is not real


def _ref(raw: Any) -> str | None:
    """The logical id a link names: !Ref X, !GetAtt X.Attr, or X itself."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((key, arg),) = raw.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt" and isinstance(arg, list) and arg and isinstance(arg[0], str):
            return arg[0]
    return None


def _function(uri: Any, names: set[str]) -> str | None:
    found = _FUNCTION_IN_URI.search(str(uri))
    return found.group(1) if found is not None and found.group(1) in names else None


def routes(
    resources: Mapping[str, Any],
    functions: Mapping[str, str],
    value: Callable[[Any, str], Any],
    warnings: list[str],
) -> list[Route]:
    """Every route of the template's plain API resources (functions: logical id -> faas name)."""
    by_type: dict[str, dict[str, Mapping[str, Any]]] = {}
    for lid, res in resources.items():
        if isinstance(res, Mapping) and res.get("Type") in RESOURCE_TYPES:
            props = res.get("Properties") or {}
            by_type.setdefault(str(res["Type"]), {})[str(lid)] = props if isinstance(props, Mapping) else {}
    names = set(functions.values())
    out = _rest(by_type, names, value, warnings) + _http(by_type, names, value, warnings)
    for lid, props in by_type.get(FUNCTION_URL, {}).items():
        target = _ref(props.get("TargetFunctionArn"))
        name = functions.get(target or "")
        if name is None:
            warnings.append(f"{lid}: its TargetFunctionArn is not a function of this template faas deploys")
            continue
        extra = sorted(k for k in props if k not in ("TargetFunctionArn", "AuthType", "InvokeMode", "Qualifier", "Cors"))
        note = f"; not applied: {', '.join(extra)}" if extra else ""
        warnings.append(f"{lid}: the function URL of {name} is /function/{name} on the gateway{note}")
    return out


# A function URL's Cors (AWS::Lambda::Url, SAM's FunctionUrlConfig) -> function.yaml's url_cors.
URL_CORS_KEYS = {
    "AllowOrigins": "allow_origins",
    "AllowMethods": "allow_methods",
    "AllowHeaders": "allow_headers",
    "ExposeHeaders": "expose_headers",
    "MaxAge": "max_age",
    "AllowCredentials": "allow_credentials",
}


def url_cors(raw: Any, where: str) -> dict[str, Any]:
    """A resolved Cors object of a function URL as function.yaml's url_cors (FunctionSpec
    checks the values against Lambda's bounds)."""
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: Cors must be an object (AllowOrigins, AllowMethods, ...)")
    unknown = sorted(str(k) for k in raw if k not in URL_CORS_KEYS)
    if unknown:
        raise ValidationError(f"{where}: unknown Cors key(s) {', '.join(unknown)} (known: {', '.join(URL_CORS_KEYS)})")
    return {URL_CORS_KEYS[k]: v for k, v in raw.items()}


def function_url_cors(
    resources: Mapping[str, Any], functions: Mapping[str, str], value: Callable[[Any, str], Any]
) -> dict[str, dict[str, Any]]:
    """The Cors of each AWS::Lambda::Url of the template, by the name of the function it serves."""
    out: dict[str, dict[str, Any]] = {}
    for lid, res in resources.items():
        if not isinstance(res, Mapping) or res.get("Type") != FUNCTION_URL:
            continue
        props = res.get("Properties") or {}
        if not isinstance(props, Mapping) or "Cors" not in props:
            continue
        name = functions.get(_ref(props.get("TargetFunctionArn")) or "")
        if name is not None:
            out[name] = url_cors(value(props["Cors"], f"{lid}.Cors"), f"{lid}.Cors")
    return out


def _rest(
    by_type: Mapping[str, Mapping[str, Mapping[str, Any]]],
    names: set[str],
    value: Callable[[Any, str], Any],
    warnings: list[str],
) -> list[Route]:
    apis = by_type.get(REST_API, {})
    nodes = by_type.get(REST_RESOURCE, {})
    stages: dict[str, tuple[str, dict[str, str]]] = {}
    for lid, props in [*by_type.get(REST_DEPLOYMENT, {}).items(), *by_type.get(REST_STAGE, {}).items()]:
        api = _ref(props.get("RestApiId"))
        if api is not None and api in apis and "StageName" in props:
            variables = value(props.get("Variables") or {}, f"{lid}.Variables")
            stages[api] = (str(value(props["StageName"], f"{lid}.StageName")), {str(k): str(v) for k, v in variables.items()})

    def path_of(node: str | None, where: str) -> str:
        parts: list[str] = []
        for _ in range(MAX_DEPTH):
            if node is None or node in apis:  # !GetAtt Api.RootResourceId
                return "/" + "/".join(reversed(parts))
            props = nodes.get(node)
            if props is None:
                raise ValidationError(f"{where}: {node!r} is not an {REST_RESOURCE} or {REST_API} of this template")
            parts.append(str(value(props.get("PathPart"), f"{node}.PathPart")))
            node = _ref(props.get("ParentId"))
        raise ValidationError(f"{where}: resources nested deeper than {MAX_DEPTH}")

    out: list[Route] = []

    def settings(api: str) -> dict[str, Any]:
        props = apis[api]
        binary = value(props.get("BinaryMediaTypes") or [], f"{api}.BinaryMediaTypes")
        stage, variables = stages.get(api, (IMPLICIT_REST_STAGE, {}))
        return {
            "kind": REST,
            "api_id": api,
            "stage": stage,
            "stage_variables": variables,
            "binary_media_types": tuple(str(b).replace("~1", "/") for b in binary),
        }

    for api, props in apis.items():
        ignored = sorted(set(props) - {"Name", "Description", "BinaryMediaTypes", "Body", "EndpointConfiguration"})
        if ignored:
            warnings.append(f"{api}: not supported by faas, ignored: {', '.join(ignored)}")
        if isinstance(props.get("Body"), Mapping):
            for fields, where in _openapi_routes(api, REST, props["Body"], {n: n for n in names}, value, warnings):
                out.append(_checked(Route(**{**fields, **settings(api)}), where))
    for lid, props in by_type.get(REST_METHOD, {}).items():
        api = _ref(props.get("RestApiId"))
        where = f"{lid} ({REST_METHOD})"
        if api is None or api not in apis:
            raise ValidationError(f"{where}: its RestApiId is not an {REST_API} of this template")
        integration = props.get("Integration") or {}
        kind = str(integration.get("Type", "")).upper() if isinstance(integration, Mapping) else ""
        if kind != "AWS_PROXY":
            warnings.append(f"{where}: integration type {kind or 'none'} is not served by faas (only AWS_PROXY)")
            continue
        name = _function(value(integration.get("Uri"), f"{lid}.Integration.Uri"), names)
        if name is None:
            warnings.append(f"{where}: its integration is not a function of this template faas deploys, not served")
            continue
        method = _method(str(value(props.get("HttpMethod"), f"{lid}.HttpMethod")))
        path = path_of(_ref(props.get("ResourceId")), where)
        out.append(_checked(Route(method=method, path=path, function=name, payload_version="1.0", **settings(api)), where))
    return out


def _http(
    by_type: Mapping[str, Mapping[str, Mapping[str, Any]]],
    names: set[str],
    value: Callable[[Any, str], Any],
    warnings: list[str],
) -> list[Route]:
    apis = {lid: p for lid, p in by_type.get(HTTP_API, {}).items() if str(p.get("ProtocolType", "HTTP")).upper() == "HTTP"}
    for lid in set(by_type.get(HTTP_API, {})) - set(apis):
        warnings.append(f"{lid}: a WEBSOCKET API is not served by faas")
    stages: dict[str, tuple[str, dict[str, str]]] = {}
    for lid, props in by_type.get(HTTP_STAGE, {}).items():
        api = _ref(props.get("ApiId"))
        if api is not None and api in apis and "StageName" in props:
            variables = value(props.get("StageVariables") or {}, f"{lid}.StageVariables")
            stages[api] = (str(value(props["StageName"], f"{lid}.StageName")), {str(k): str(v) for k, v in variables.items()})

    def settings(api: str) -> dict[str, Any]:
        stage, variables = stages.get(api, (IMPLICIT_HTTP_STAGE, {}))
        raw_cors = apis[api].get("CorsConfiguration")
        cors = http_cors(value(raw_cors, f"{api}.CorsConfiguration"), f"{api}.CorsConfiguration") if raw_cors else None
        return {"kind": HTTP, "api_id": api, "stage": stage, "stage_variables": variables, "cors": cors}

    out: list[Route] = []
    for api, props in apis.items():
        ignored = sorted(set(props) - {"Name", "Description", "ProtocolType", "Target", "RouteKey", "CorsConfiguration", "Body"})
        if ignored:
            warnings.append(f"{api}: not supported by faas, ignored: {', '.join(ignored)}")
        if "Target" in props:  # quick create: one route (RouteKey, $default unless given) to the target
            name = _function(value(props["Target"], f"{api}.Target"), names)
            if name is None:
                warnings.append(f"{api}: its Target is not a function of this template faas deploys, not served")
            else:
                key = str(value(props.get("RouteKey", DEFAULT_ROUTE), f"{api}.RouteKey"))
                out.append(_checked(_keyed(key, name, "2.0", settings(api)), f"{api}.Target"))
        if isinstance(props.get("Body"), Mapping):
            for fields, where in _openapi_routes(api, HTTP, props["Body"], {n: n for n in names}, value, warnings):
                out.append(_checked(Route(**{**fields, **settings(api)}), where))
    integrations: dict[str, tuple[str, str]] = {}
    for lid, props in by_type.get(HTTP_INTEGRATION, {}).items():
        kind = str(props.get("IntegrationType", "")).upper()
        name = _function(value(props.get("IntegrationUri"), f"{lid}.IntegrationUri"), names) if kind == "AWS_PROXY" else None
        if name is None:
            warnings.append(f"{lid}: not a Lambda proxy integration to a function of this template faas deploys, not served")
            continue
        integrations[lid] = (name, str(value(props.get("PayloadFormatVersion", "2.0"), f"{lid}.PayloadFormatVersion")))
    for lid, props in by_type.get(HTTP_ROUTE, {}).items():
        api = _ref(props.get("ApiId"))
        where = f"{lid} ({HTTP_ROUTE})"
        if api is None or api not in apis:
            raise ValidationError(f"{where}: its ApiId is not an HTTP {HTTP_API} of this template")
        target = str(value(props.get("Target", ""), f"{lid}.Target"))
        integration = integrations.get(target.removeprefix("integrations/"))
        if integration is None:
            warnings.append(f"{where}: its Target {target!r} is not a Lambda proxy integration faas serves, not served")
            continue
        key = str(value(props.get("RouteKey"), f"{lid}.RouteKey"))
        out.append(_checked(_keyed(key, integration[0], integration[1], settings(api)), where))
    return out


def _keyed(key: str, function: str, version: str, api: Mapping[str, Any]) -> Route:
    """A route from an HTTP API's RouteKey: "GET /items/{id}", "ANY /{proxy+}" or "$default"."""
    if key == DEFAULT_ROUTE:
        return Route(method="ANY", path=DEFAULT_ROUTE, function=function, payload_version=version, **api)
    method, _, path = key.partition(" ")
    return Route(method=_method(method), path=path.strip(), function=function, payload_version=version, **api)


def _checked(route: Route, where: str) -> Route:
    try:
        route.check()
    except ValidationError as e:
        raise ValidationError(f"{where}: {e.message}") from None
    return route
