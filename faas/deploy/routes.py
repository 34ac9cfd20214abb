"""API routes from a SAM template, matched as API Gateway matches them.

A template's `Events` of type `Api` (a REST API, payload format 1.0) and `HttpApi` (an HTTP
API, payload format 2.0 unless PayloadFormatVersion says 1.0) become Routes. The gateway keeps
one RouteTable for every deployed template (a "stack"): `faas deploy template.yaml` replaces
its stack's routes as a whole, after the functions, so a redeploy never leaves routes of an
older template behind. This module is pure: parsing, validation and matching only; the
state lives in SQLite (faas/deploy/store.py) and the HTTP side in gateway/api_routes.py.

Precedence is API Gateway's: a path made of literal segments wins over one with `{param}`
segments, which wins over a greedy `{proxy+}`; a named method wins over `ANY`; the HTTP
API's `$default` route catches what nothing else matches.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faas.errors import ValidationError
from faas.models import NAME_RE

REST = "Api"
HTTP = "HttpApi"
KINDS = (REST, HTTP)
DEFAULT_ROUTE = "$default"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
API_TYPES = {"AWS::Serverless::Api": REST, "AWS::Serverless::HttpApi": HTTP}
# What faas reads of an API (its own properties or Globals' Api / HttpApi); the rest is warned about.
API_PROPERTIES = {
    REST: {"StageName", "Variables", "BinaryMediaTypes", "Cors", "DefinitionBody", "DefinitionUri"},
    HTTP: {"StageName", "StageVariables", "CorsConfiguration", "DefinitionBody", "DefinitionUri"},
}
IMPLICIT_REST_ID = "ServerlessRestApi"
IMPLICIT_HTTP_ID = "ServerlessHttpApi"
IMPLICIT_REST_STAGE = "Prod"  # SAM's stage for the implicit REST API
IMPLICIT_HTTP_STAGE = "$default"
MAX_ROUTES = 1000  # per stack: far above real templates, bounds what one request may store
MAX_PATH = 1024
_SEGMENT = re.compile(r"\{(?P<name>[A-Za-z0-9._-]+)(?P<greedy>\+)?\}|(?P<literal>[^{}/\s\x00-\x1f\x7f]+)")
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# What API Gateway answers when nothing matches: (status, body, x-amzn-ErrorType).
NO_MATCH = {
    REST: (403, {"message": "Missing Authentication Token"}, "MissingAuthenticationTokenException"),
    HTTP: (404, {"message": "Not Found"}, None),
}


@dataclass(frozen=True)
class Cors:
    """An API's CORS settings, as API Gateway applies them (lists of allowed values; "*" is any).

    allow_methods None: the methods of the path's routes (SAM's default for a REST API)."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] | None = None
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "allow_origins": list(self.allow_origins),
            "allow_methods": None if self.allow_methods is None else list(self.allow_methods),
            "allow_headers": list(self.allow_headers),
            "expose_headers": list(self.expose_headers),
            "max_age": self.max_age,
            "allow_credentials": self.allow_credentials,
        }

    def texts(self) -> tuple[str, ...]:
        return (*self.allow_origins, *(self.allow_methods or ()), *self.allow_headers, *self.expose_headers)

    @classmethod
    def from_json(cls, raw: Any) -> Cors:
        if not isinstance(raw, Mapping):
            raise ValidationError("route: cors must be an object")

        def texts(key: str) -> tuple[str, ...]:
            value = raw.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 100:
                raise ValidationError(f"route: cors.{key} must be a list of strings")
            return tuple(value)

        max_age = raw.get("max_age")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 86400):
            raise ValidationError("route: cors.max_age must be 0..86400 seconds")
        return cls(
            allow_origins=texts("allow_origins"),
            allow_methods=None if raw.get("allow_methods") is None else texts("allow_methods"),
            allow_headers=texts("allow_headers"),
            expose_headers=texts("expose_headers"),
            max_age=max_age,
            allow_credentials=raw.get("allow_credentials") is True,
        )

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins


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


@dataclass(frozen=True)
class Route:
    """One METHOD path -> function, with what the API it belongs to decides for the event."""

    method: str  # GET ... or ANY; ANY for $default
    path: str  # "/hello", "/items/{id}", "/{proxy+}", or "$default"
    function: str
    kind: str = REST  # Api (REST) | HttpApi
    api_id: str = IMPLICIT_REST_ID  # the API's logical id in the template
    stage: str = IMPLICIT_REST_STAGE
    payload_version: str = "1.0"
    stage_variables: Mapping[str, str] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()
    cors: Cors | None = None  # the API's Cors / CorsConfiguration

    @property
    def route_key(self) -> str:
        """The HTTP API's routeKey: "GET /items/{id}", "ANY /{proxy+}" or "$default"."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "function": self.function,
            "kind": self.kind,
            "api_id": self.api_id,
            "stage": self.stage,
            "payload_version": self.payload_version,
            "stage_variables": dict(self.stage_variables),
            "binary_media_types": list(self.binary_media_types),
            "cors": self.cors.to_json() if self.cors else None,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Route:
        """A route from the admin API or the store, checked: bad input is a ValidationError."""
        if not isinstance(raw, Mapping):
            raise ValidationError(f"a route must be an object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(f"route: unknown key(s) {', '.join(map(str, unknown))}")

        def text(key: str, default: str | None = None) -> str:
            value = raw.get(key, default)
            if not isinstance(value, str) or not value or len(value) > MAX_PATH:
                raise ValidationError(f"route: {key} must be a non-empty string, got {value!r}")
            return value

        variables = raw.get("stage_variables") or {}
        if not isinstance(variables, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
            raise ValidationError("route: stage_variables must map names to strings")
        binary = raw.get("binary_media_types") or []
        if not isinstance(binary, list) or not all(isinstance(b, str) for b in binary):
            raise ValidationError("route: binary_media_types must be a list of strings")
        route = cls(
            method=text("method").upper(),
            path=text("path"),
            function=text("function"),
            kind=text("kind", REST),
            api_id=text("api_id", IMPLICIT_REST_ID),
            stage=text("stage", IMPLICIT_REST_STAGE),
            payload_version=text("payload_version", "1.0"),
            stage_variables=dict(variables),
            binary_media_types=tuple(binary),
            cors=Cors.from_json(raw["cors"]) if raw.get("cors") is not None else None,
        )
        route.check()
        return route

    def check(self) -> None:
        where = f"route {self.method} {self.path}"
        if not NAME_RE.match(self.function):
            raise ValidationError(f"{where}: function name must match {NAME_RE.pattern}, got {self.function[:80]!r}")
        if self.kind not in KINDS:
            raise ValidationError(f"{where}: kind must be Api or HttpApi, got {self.kind!r}")
        if self.method not in METHODS:
            raise ValidationError(f"{where}: method must be one of {', '.join(sorted(METHODS))}")
        if self.payload_version not in ("1.0", "2.0") or (self.kind == REST and self.payload_version != "1.0"):
            raise ValidationError(f"{where}: payload format {self.payload_version!r} is not one {self.kind} sends")
        cors = self.cors.texts() if self.cors else ()
        for text in (
            self.api_id,
            self.stage,
            *self.stage_variables,
            *self.stage_variables.values(),
            *self.binary_media_types,
            *cors,
        ):
            if len(text) > MAX_PATH or any(ord(c) < 32 for c in text):
                raise ValidationError(f"{where}: {text[:80]!r} is too long or has control characters")
        if self.path == DEFAULT_ROUTE:
            if self.kind != HTTP:
                raise ValidationError(f"{where}: $default is a route of an HttpApi only")
            return
        segments(self.path, where)


def segments(path: str, where: str) -> list[tuple[str, str]]:
    """A path template as [(kind, text)], kind literal | param | greedy; a ValidationError
    names what API Gateway would refuse."""
    if not path.startswith("/") or len(path) > MAX_PATH:
        raise ValidationError(f"{where}: a path must start with '/'")
    parts = [p for p in path.split("/") if p]
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    for i, part in enumerate(parts):
        m = _SEGMENT.fullmatch(part)
        if m is None:
            raise ValidationError(f"{where}: path segment {part!r} is neither a literal nor {{name}} / {{name+}}")
        if m.group("literal") is not None:
            out.append(("literal", part))
            continue
        name = m.group("name")
        if name in names:
            raise ValidationError(f"{where}: path parameter {{{name}}} appears twice")
        names.add(name)
        if m.group("greedy"):
            if i != len(parts) - 1:
                raise ValidationError(f"{where}: a greedy {{{name}+}} must be the path's last segment")
            out.append(("greedy", name))
        else:
            out.append(("param", name))
    return out


def first_segment(path: str) -> str | None:
    """The literal first segment of a route's path ("/system/x" -> "system"); None for a
    parameter, the root or $default."""
    parts = [p for p in path.split("/") if p] if path.startswith("/") else []
    if not parts or parts[0].startswith("{"):
        return None
    return parts[0]


def check_reserved(routes: Iterable[Route], reserved: Iterable[str]) -> None:
    """Refuse a route under one of faas's own prefixes: it could never be reached."""
    taken = {r.strip("/").split("/", 1)[0] for r in reserved if r.strip("/")}
    clashes = [r for r in routes if first_segment(r.path) in taken]
    if clashes:
        named = ", ".join(f"{r.method} {r.path} ({r.function})" for r in clashes)
        raise ValidationError(
            f"route(s) {named} would be hidden by faas's own paths (/{', /'.join(sorted(taken))}): "
            "change the route's Path in the template (for example put it under its own prefix)"
        )


def check_clashes(routes: Sequence[Route], others: Mapping[str, Sequence[Route]] | Iterable[Route] = ()) -> None:
    """Two routes of the same method and path (parameter names aside) cannot both be served."""
    seen: dict[tuple[str, str], Route] = {}
    stacks = {id(r): stack for stack, rs in (others.items() if isinstance(others, Mapping) else []) for r in rs}
    flat = [r for rs in others.values() for r in rs] if isinstance(others, Mapping) else list(others)
    for route in [*flat, *routes]:
        shape = route.path if route.path == DEFAULT_ROUTE else _shape(route.path)
        key = (route.method, shape)
        if key in seen:
            first = seen[key]
            owner = stacks.get(id(first))
            way_out = f"; if that template is gone, remove its routes with `faas routes --rm {owner}`" if owner else ""
            raise ValidationError(
                f"route {route.method} {route.path} ({route.function}, {route.api_id}) clashes with "
                f"{first.method} {first.path} ({first.function}, {first.api_id}"
                f"{f', template {owner}' if owner else ''}): every route is served at the root "
                f"of the gateway's port, so each METHOD path may appear once{way_out}"
            )
        seen[key] = route


def _shape(path: str) -> str:
    return "/" + "/".join(
        text if kind == "literal" else ("{+}" if kind == "greedy" else "{}") for kind, text in segments(path, path)
    )


# ------------------------------------------------------------------------------ matching


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class Miss:
    """Nothing matched: API Gateway's answer for the API kind the request was closest to."""

    status: int
    body: dict[str, str]
    error_type: str | None


@dataclass(frozen=True)
class _Compiled:
    route: Route
    parts: tuple[tuple[str, str], ...]
    rank: tuple[int, ...]


class RouteTable:
    """An immutable set of routes, matched per request (the gateway swaps whole tables)."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        compiled = []
        self._default: Route | None = None
        for route in self.routes:
            if route.path == DEFAULT_ROUTE:
                self._default = route
                continue
            parts = tuple(segments(route.path, route.path))
            # Lower sorts first: literal segments before parameters before greedy, at each
            # position in turn; then a longer path; then a named method before ANY.
            kinds = {"literal": 0, "param": 1, "greedy": 2}
            rank = (*[kinds[k] for k, _ in parts], 3, -len(parts), 1 if route.method == "ANY" else 0)
            compiled.append(_Compiled(route, parts, rank))
        compiled.sort(key=lambda c: c.rank)
        self._compiled = tuple(compiled)
        self._kinds = {r.kind for r in self.routes}

    def __bool__(self) -> bool:
        return bool(self.routes)

    def preflight(self, path: str) -> tuple[Route, list[str]] | None:
        """The route whose API answers a CORS preflight for path, with the path's methods."""
        return _preflight(self, path)

    def match(self, method: str, path: str) -> Match | Miss:
        """The route for METHOD path (path percent-decoded), or what API Gateway answers."""
        parts = [p for p in path.split("/") if p]
        near: Route | None = None
        for c in self._compiled:
            params = _bind(c.parts, parts)
            if params is None:
                continue
            if c.route.method in (method, "ANY"):
                return Match(c.route, params)
            near = near or c.route
        if self._default is not None:
            return Match(self._default, {})
        kind = near.kind if near is not None else (REST if REST in self._kinds else HTTP)
        status, body, error_type = NO_MATCH[kind]
        return Miss(status, dict(body), error_type)


def _preflight(table: RouteTable, path: str) -> tuple[Route, list[str]] | None:
    """For an OPTIONS request: the CORS-enabled route whose path it is, and the methods of
    that path's routes, unless the template routes OPTIONS there itself."""
    parts = [p for p in path.split("/") if p]
    found: Route | None = None
    methods: list[str] = []
    for c in table._compiled:
        if _bind(c.parts, parts) is None:
            continue
        if c.route.method == "OPTIONS":
            return None
        if found is None and c.route.cors is not None:
            found = c.route
        if found is not None and c.route.api_id == found.api_id and c.route.method not in methods:
            methods.append(c.route.method)
    if found is None and table._default is not None and table._default.cors is not None:
        return table._default, ["*"]
    return (found, methods) if found is not None else None


def _bind(template: Sequence[tuple[str, str]], parts: Sequence[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, (kind, text) in enumerate(template):
        if kind == "greedy":
            if i >= len(parts):
                return None  # {proxy+} needs at least one segment
            params[text] = "/".join(parts[i:])
            return params
        if i >= len(parts):
            return None
        if kind == "literal":
            if parts[i] != text:
                return None
        else:
            params[text] = parts[i]
    return params if len(parts) == len(template) else None


# ------------------------------------------------------------------------- the route book


class RouteStore(Protocol):
    def routes_all(self) -> list[tuple[str, str]]: ...

    def put_routes(self, stack: str, routes_json: str) -> None: ...

    def delete_routes(self, stack: str) -> bool: ...


class RouteBook:
    """Every stack's routes, durable in the store, with one compiled table for the hot path.

    A stack's routes are replaced whole (a deploy of its template); the table is rebuilt
    and swapped under a lock, so a request sees the old table or the new one, never half.
    """

    def __init__(self, store: RouteStore | None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stacks: dict[str, list[Route]] = {}
        for stack, text in store.routes_all() if store is not None else []:
            try:
                self._stacks[stack] = [Route.from_json(r) for r in json.loads(text)]
            except (ValueError, ValidationError):
                continue  # written by a faas whose rules were looser: skipped, not fatal
        self.table = RouteTable(r for rs in self._stacks.values() for r in rs)

    def stacks(self) -> dict[str, list[Route]]:
        with self._lock:
            return {k: list(v) for k, v in self._stacks.items()}

    def put(self, stack: str, routes: Sequence[Route], *, dry_run: bool = False) -> None:
        check_stack(stack)
        if len(routes) > MAX_ROUTES:
            raise ValidationError(f"a template may have at most {MAX_ROUTES} routes, got {len(routes)}")
        for route in routes:
            route.check()
        with self._lock:
            check_clashes(routes, {name: rs for name, rs in self._stacks.items() if name != stack})
            if dry_run:
                return
            if self._store is not None:
                if routes:
                    self._store.put_routes(stack, json.dumps([r.to_json() for r in routes], separators=(",", ":")))
                else:
                    self._store.delete_routes(stack)
            if routes:
                self._stacks[stack] = list(routes)
            else:
                self._stacks.pop(stack, None)
            self.table = RouteTable(r for rs in self._stacks.values() for r in rs)


def check_stack(stack: str) -> None:
    if not _STACK.fullmatch(stack):
        raise ValidationError(f"stack name must match {_STACK.pattern}, got {stack[:140]!r}")


def stack_name(folder: str, path: str) -> str:
    """A template's stack: its folder's name and a short hash of where it is, stable across deploys."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", folder).strip("-.") or "template"
    return f"{base[:100]}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------------------- templates


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
