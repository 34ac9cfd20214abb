"""API routes from a SAM template, matched as API Gateway matches them.

A template's `Events` of type `Api` (a REST API, payload format 1.0) and `HttpApi` (an HTTP
API, payload format 2.0 unless PayloadFormatVersion says 1.0) become Routes (read by
faas/deploy/sam_routes.py). The gateway keeps one RouteTable for every deployed template
(a "stack"): `faas deploy template.yaml` replaces its stack's routes as a whole, after the
functions, so a redeploy never leaves routes of an older template behind. Validation and
matching here are pure; RouteBook holds the stacks over the SQLite state
(faas/deploy/store.py); the HTTP side is gateway/api_routes.py.

Precedence is API Gateway's: a path made of literal segments wins over one with `{param}`
segments, which wins over a greedy `{proxy+}`; a named method wins over `ANY`; the HTTP
API's `$default` route catches what nothing else matches.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faas.errors import ValidationError
from faas.models import NAME_RE

REST = "Api"
HTTP = "HttpApi"
KINDS = (REST, HTTP)
DEFAULT_ROUTE = "$default"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
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
        self._unrunnable: dict[str, dict[str, str]] = {}  # stack -> {function: why it cannot run here}
        for stack, text in store.routes_all() if store is not None else []:
            try:
                saved = json.loads(text)
                if isinstance(saved, list):  # a route list: written before unrunnable functions were kept
                    saved = {"routes": saved}
                self._stacks[stack] = [Route.from_json(r) for r in saved.get("routes") or []]
                self._unrunnable[stack] = check_unrunnable(saved.get("unrunnable") or {})
            except (ValueError, ValidationError, AttributeError):
                continue  # written by a faas whose rules were looser: skipped, not fatal
        self.table = RouteTable(r for rs in self._stacks.values() for r in rs)

    def stacks(self) -> dict[str, list[Route]]:
        with self._lock:
            return {k: list(v) for k, v in self._stacks.items()}

    def unrunnable(self) -> dict[str, str]:
        """Every function a deployed template holds that cannot run here -> the reason, with its stack."""
        with self._lock:
            return {name: f"{why} (template {stack})" for stack, found in self._unrunnable.items() for name, why in found.items()}

    def unrunnable_by_stack(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self._unrunnable.items()}

    def put(
        self,
        stack: str,
        routes: Sequence[Route],
        *,
        dry_run: bool = False,
        unrunnable: Mapping[str, str] | None = None,
    ) -> None:
        """Replace a stack's routes, and the functions of its template that cannot run here
        (listed by `faas ls`, named in the error a call to one gets)."""
        check_stack(stack)
        if len(routes) > MAX_ROUTES:
            raise ValidationError(f"a template may have at most {MAX_ROUTES} routes, got {len(routes)}")
        for route in routes:
            route.check()
        missing = check_unrunnable(unrunnable or {})
        with self._lock:
            check_clashes(routes, {name: rs for name, rs in self._stacks.items() if name != stack})
            if dry_run:
                return
            if self._store is not None:
                if routes or missing:
                    saved = {"routes": [r.to_json() for r in routes], "unrunnable": missing}
                    self._store.put_routes(stack, json.dumps(saved, separators=(",", ":")))
                else:
                    self._store.delete_routes(stack)
            if routes or missing:
                self._stacks[stack] = list(routes)
                self._unrunnable[stack] = missing
            else:
                self._stacks.pop(stack, None)
                self._unrunnable.pop(stack, None)
            self.table = RouteTable(r for rs in self._stacks.values() for r in rs)


MAX_REASON = 500


def check_unrunnable(raw: Any) -> dict[str, str]:
    """{function name: why it cannot run here}, bounded as routes are."""
    if not isinstance(raw, Mapping) or len(raw) > MAX_ROUTES:
        raise ValidationError(f"unrunnable must map at most {MAX_ROUTES} function names to reasons")
    out: dict[str, str] = {}
    for name, why in raw.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(why, str):
            raise ValidationError(f"unrunnable: {str(name)[:80]!r} must be a function name mapped to a reason")
        out[name] = "".join(c if c.isprintable() else " " for c in why[:MAX_REASON])
    return out


def check_stack(stack: str) -> None:
    if not _STACK.fullmatch(stack):
        raise ValidationError(f"stack name must match {_STACK.pattern}, got {stack[:140]!r}")


def stack_name(folder: str, path: str) -> str:
    """A template's stack: its folder's name and a short hash of where it is, stable across deploys."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", folder).strip("-.") or "template"
    return f"{base[:100]}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
