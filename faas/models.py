"""Frozen value types shared by every layer, and the validation of function.yaml."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faas.errors import RequestTooLarge, ValidationError

if TYPE_CHECKING:
    from faas.deploy.routes import Cors

# The runtimes faas builds (runtimes/, faas/containers/images.py): what a function may run on.
RUNTIMES = (
    "python3.11",
    "python3.13",
    "python3.14",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "java21",
    "provided",
    "provided.al2",
    "provided.al2023",
    "ruby3.3",
)
# What `faas up` builds before any function asks; the others are built when a function needs one.
DEFAULT_RUNTIMES = ("python3.11", "nodejs20.x", "provided")
# Lambda's runtimes that no source on this machine provides (no Debian suite or registry package):
# a function naming one is refused at deploy, unless faas.yaml's runtime_fallback maps it.
UNAVAILABLE_RUNTIMES = (
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.12",
    "nodejs16.x",
    "nodejs18.x",
    "java8.al2",
    "java11",
    "java17",
    "java25",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "ruby3.2",
    "ruby3.4",
    "go1.x",
)
# OS-only runtimes: the function's own ./bootstrap is the runtime, the handler is free-form.
PROVIDED_RUNTIMES = ("provided", "provided.al2", "provided.al2023")
NETWORKS = ("bridge", "none", "host")
PACKAGE_TYPES = ("Zip", "Image")
# ImageConfig's keys (Lambda's names): each overrides the image's own ENTRYPOINT, CMD, WORKDIR.
IMAGE_CONFIG_KEYS = ("EntryPoint", "Command", "WorkingDirectory")
IMAGE_URI_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
CPU_MODES = ("shares", "lambda")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Lambda reserves these; a function may not set them itself.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


class Status(StrEnum):
    """How a call ended, as the caller, the records and the metrics tell it (Result.status)."""

    OK = "ok"
    ERROR = "error"  # the function raised, or its runtime failed
    TIMEOUT = "timeout"
    OOM = "oom"


class OutcomeStatus(StrEnum):
    """How one environment's try at a call ended, before the scheduler reports a Status."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OOM = "oom"
    EXIT = "exit"  # the runtime process ended during the call
    UNDELIVERED = "undelivered"  # the environment was gone before the event reached it: try another


class StartType(StrEnum):
    """How the environment that served a call came to serve it (records, metrics, `faas calls`)."""

    COLD = "cold"  # started for this call
    PRESTARTED = "prestarted"  # a pre-started runtime container given this function
    WARM = "warm"  # already initialised for this function


class InitType(StrEnum):
    """AWS_LAMBDA_INITIALIZATION_TYPE, as Lambda names it."""

    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned-concurrency"


MB = 1024 * 1024
SYNC_PAYLOAD_LIMIT = 6 * MB  # 6291456 bytes, request and response
ASYNC_PAYLOAD_LIMIT = 1 * MB
ZIPPED_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB
ENVIRONMENT_LIMIT = 4096
MAX_LAYERS = 5  # layers one function may reference (faas/deploy/layers.py)
ACCOUNT_ID = "123456789012"


# Values quoted in messages and log lines come from callers: each is shortened, so a huge or
# deeply nested value (a YAML alias bomb stands for hundreds of millions) costs a few hundred
# bytes to show, never its full repr.
QUOTE_LIMIT = 120
MESSAGE_LIMIT = 2000
_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = QUOTE_LIMIT, QUOTE_LIMIT, 40


def short_repr(value: object) -> str:
    """repr() of a caller's value, at most about QUOTE_LIMIT characters whatever its size."""
    text = _REPR.repr(value)
    return text if len(text) <= QUOTE_LIMIT + 10 else text[:QUOTE_LIMIT] + "..."


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message cut to limit characters, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def payload_limit(invocation_type: str) -> int:
    """The payload limit of an invocation type: 1 MB for Event, 6 MB for RequestResponse and DryRun."""
    return ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT


def payload_too_large(size: int | None, invocation_type: str, *, request: bool = False) -> RequestTooLarge:
    """The RequestTooLarge Lambda answers for a payload over its invocation type's limit, in Lambda's words.

    Lambda words it two ways. Its API front end refuses a request body over the limit without
    reading it: "Request must be smaller than L bytes for the InvokeFunction operation" (a
    RequestResponse or DryRun request, or any body whose length is unknown). The Invoke service
    refuses a payload it has read: "N byte payload is too large for the T invocation type
    (limit L bytes)". request=True: `size` is the HTTP request body's (None when it was cut
    short before its length was known), as the Invoke API reads it.
    """
    limit = payload_limit(invocation_type)
    if size is None or (request and invocation_type != "Event"):
        return RequestTooLarge(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    return RequestTooLarge(f"{size} byte payload is too large for the {invocation_type} invocation type (limit {limit} bytes)")


def check_payload(size: int, invocation_type: str = "RequestResponse", *, request: bool = False) -> None:
    """Raise payload_too_large(...) when `size` bytes are over the invocation type's limit; the one check."""
    if size > payload_limit(invocation_type):
        raise payload_too_large(size, invocation_type, request=request)


@dataclass(frozen=True)
class FunctionSpec:
    """A function's configuration, as written in function.yaml and validated."""

    name: str
    runtime: str = "python3.11"
    handler: str = "app.handler"
    memory: int = 128
    timeout: int = 3
    environment: Mapping[str, str] = field(default_factory=dict)
    concurrency: int | None = None
    ephemeral_storage: int = 512
    network: str = "bridge"
    cpu: str = "shares"
    min_warm: int = 0
    description: str = ""
    # The runtime the function asked for when faas.yaml's runtime_fallback runs it on `runtime`.
    requested_runtime: str = ""
    # Layer version ARNs, in the order they are merged at /opt (a later one wins). In a
    # function.yaml an entry may also be a folder or .zip relative to the function folder:
    # `faas deploy` sends its content with the code and the gateway publishes it as a layer
    # version (faas/deploy/packages.py), so a stored spec holds ARNs only.
    layers: tuple[str, ...] = ()
    # The CORS settings of the function's URL (/function/NAME): a SAM FunctionUrlConfig's or an
    # AWS::Lambda::Url's Cors, or function.yaml's `url_cors`. Part of the spec so that it is
    # versioned with the function and a redeploy changes it.
    url_cors: Cors | None = None
    # A container-image function (docs/image-functions.md): the image is the code and the runtime.
    package_type: str = "Zip"
    image_uri: str = ""
    # Lambda's ImageConfig: EntryPoint and Command (lists of strings), WorkingDirectory (a path).
    image_config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Any, *, source: str = "function.yaml") -> FunctionSpec:
        """Validate a parsed function.yaml; every problem is named, unknown keys included."""
        if not isinstance(raw, Mapping):
            raise ValidationError(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(short_repr(k) if not isinstance(k, str) else short_repr(k)[1:-1] for k in raw if k not in known)
        if unknown:
            raise ValidationError(f"{source}: unknown key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        problems: list[str] = []

        def integer(key: str, lo: int, hi: int, default: int | None) -> int | None:
            value = raw.get(key, default)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{key} must be an integer, got {short_repr(value)}")
                return default
            if not lo <= value <= hi:
                problems.append(f"{key} must be between {lo} and {hi}, got {short_repr(value)}")
            return int(value)  # an int, checked above (raw is untyped JSON/YAML)

        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(
                f"name must match {NAME_RE.pattern} (letters, digits, '-' and '_', at most 64), got {short_repr(name)}"
            )
        runtime = raw.get("runtime", "python3.11")
        if runtime not in RUNTIMES and runtime not in UNAVAILABLE_RUNTIMES:
            problems.append(f"runtime must be one of {', '.join(RUNTIMES)}, got {short_repr(runtime)}")
        requested = raw.get("requested_runtime", "")
        if requested and (requested not in UNAVAILABLE_RUNTIMES or runtime not in RUNTIMES):
            problems.append(
                f"requested_runtime is set by runtime_fallback: an unavailable runtime run on an available one, got {short_repr(requested)}"
            )
        package_type = raw.get("package_type", "Zip")
        image_uri = raw.get("image_uri", "")
        image_config = raw.get("image_config") or {}
        if package_type not in PACKAGE_TYPES:
            problems.append(f"package_type must be one of {', '.join(PACKAGE_TYPES)}, got {short_repr(package_type)}")
        elif package_type == "Image":
            problems.extend(_image_problems(image_uri, image_config))
        elif image_uri or image_config:
            problems.append("image_uri and image_config are for package_type Image")
        handler = raw.get("handler", "" if package_type == "Image" else "app.handler")
        if package_type == "Image":
            if not isinstance(handler, str) or len(handler) > 128:
                problems.append(f"handler must be a string, got {short_repr(handler)}")
        elif not isinstance(handler, str) or not handler or len(handler) > 128:
            problems.append(f"handler must be a non-empty string like 'app.handler', got {short_repr(handler)}")
        elif str(runtime).startswith(("python", "nodejs")) and not re.match(r"^[^\s]+\.[^\s.]+$", handler):
            problems.append(f"handler must be 'module.function' (e.g. app.handler), got {short_repr(handler)}")
        memory = integer("memory", 128, 10240, 128)
        timeout = integer("timeout", 1, 900, 3)
        concurrency = integer("concurrency", 1, 1000, None)
        storage = integer("ephemeral_storage", 512, 10240, 512)
        min_warm = integer("min_warm", 0, 100, 0)
        network = raw.get("network", "bridge")
        if network not in NETWORKS:
            problems.append(f"network must be one of {', '.join(NETWORKS)}, got {short_repr(network)}")
        cpu = raw.get("cpu", "shares")
        if cpu not in CPU_MODES:
            problems.append(f"cpu must be one of {', '.join(CPU_MODES)}, got {short_repr(cpu)}")
        description = raw.get("description", "")
        if not isinstance(description, str) or len(description) > 256:
            problems.append("description must be a string of at most 256 characters")
        env = raw.get("environment") or {}
        environment: dict[str, str] = {}
        if not isinstance(env, Mapping):
            problems.append(f"environment must be a mapping of NAME: value, got {type(env).__name__}")
        else:
            for key, value in env.items():
                if not isinstance(key, str) or not ENV_KEY_RE.match(key):
                    problems.append(f"environment variable name {short_repr(key)} is not valid (letters, digits, '_')")
                elif key in RESERVED_ENV:
                    problems.append(f"environment variable {key} is reserved by the runtime")
                elif isinstance(value, (dict, list)) or value is None:
                    problems.append(f"environment variable {key} must be a string, number or boolean")
                else:
                    environment[key] = str(value).lower() if isinstance(value, bool) else str(value)
            size = env_size(environment)
            if size > ENVIRONMENT_LIMIT:
                problems.append(f"environment variables take {size} bytes, over the 4 KB limit ({ENVIRONMENT_LIMIT} bytes)")
        layers = raw.get("layers") or []
        if not isinstance(layers, (list, tuple)) or not all(isinstance(x, str) and 0 < len(x) <= 2048 for x in layers):
            problems.append(f"layers must be a list of layer version ARNs, folders or .zip files, got {short_repr(layers)}")
            layers = []
        elif len(layers) > MAX_LAYERS:
            problems.append(f"Cannot reference more than {MAX_LAYERS} layers.")
        url_cors = _url_cors(raw.get("url_cors"), problems)
        if problems:
            raise ValidationError(clip(f"{source}: " + "; ".join(problems)))
        # What the checks above proved, said to the type checker.
        assert isinstance(name, str) and isinstance(description, str)
        assert memory is not None and timeout is not None and storage is not None and min_warm is not None
        return cls(
            name=name,
            runtime=runtime,
            handler=handler,
            memory=memory,
            timeout=timeout,
            environment=environment,
            concurrency=concurrency,
            ephemeral_storage=storage,
            network=network,
            cpu=cpu,
            min_warm=min_warm,
            description=description,
            requested_runtime=requested,
            layers=tuple(layers),
            url_cors=url_cors,
            package_type=str(package_type),
            image_uri=str(image_uri or ""),
            image_config=_image_config(image_config) if package_type == "Image" else {},
        )

    def to_mapping(self) -> dict[str, Any]:
        """The function.yaml form, for storage and the admin API."""
        out: dict[str, Any] = {
            "name": self.name,
            "runtime": self.runtime,
            "handler": self.handler,
            "memory": self.memory,
            "timeout": self.timeout,
            "environment": dict(self.environment),
            "ephemeral_storage": self.ephemeral_storage,
            "network": self.network,
            "cpu": self.cpu,
        }
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.min_warm:
            out["min_warm"] = self.min_warm
        if self.description:
            out["description"] = self.description
        if self.requested_runtime:
            out["requested_runtime"] = self.requested_runtime
        if self.layers:
            out["layers"] = list(self.layers)
        if self.url_cors is not None:
            out["url_cors"] = self.url_cors.to_json()
        if self.package_type != "Zip":
            out["package_type"] = self.package_type
            out["image_uri"] = self.image_uri
            if self.image_config:
                out["image_config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.image_config.items()}
        return out


# Lambda's bounds on a function URL's Cors (API_Cors): (items, characters per item).
URL_CORS_LISTS = {
    "allow_origins": (100, 253),
    "allow_methods": (6, 6),
    "allow_headers": (100, 1024),
    "expose_headers": (100, 1024),
}
_URL_CORS_KEYS = frozenset({*URL_CORS_LISTS, "max_age", "allow_credentials"})
_HEADER_TEXT = re.compile(r"[\x20-\x7e]*")  # what may go into a response header unchanged


def _url_cors(raw: Any, problems: list[str]) -> Cors | None:
    """function.yaml's url_cors, checked against Lambda's bounds; every value ends up in a
    response header, so printable ASCII only (a bad one is refused at deploy, not per request)."""
    if raw is None:
        return None
    from faas.deploy.routes import Cors  # routes.py imports this module

    if not isinstance(raw, Mapping):
        problems.append(f"url_cors must be a mapping (allow_origins, allow_methods, ...), got {short_repr(raw)}")
        return None
    bad = len(problems)
    unknown = sorted(short_repr(k) for k in raw if k not in _URL_CORS_KEYS)
    if unknown:
        problems.append(f"url_cors: unknown key(s): {', '.join(unknown)} (known: {', '.join(sorted(_URL_CORS_KEYS))})")
    for key, (count, length) in URL_CORS_LISTS.items():
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)) or len(value) > count:
            problems.append(f"url_cors.{key} must be a list of at most {count} strings, got {short_repr(value)}")
        elif not all(isinstance(v, str) and 0 < len(v) <= length and _HEADER_TEXT.fullmatch(v) for v in value):
            problems.append(f"url_cors.{key} entries must be printable text of 1 to {length} characters, got {short_repr(value)}")
    max_age = raw.get("max_age")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 86400):
        problems.append(f"url_cors.max_age must be 0..86400 seconds, got {short_repr(max_age)}")
    credentials = raw.get("allow_credentials")
    if credentials is not None and not isinstance(credentials, bool):
        problems.append(f"url_cors.allow_credentials must be true or false, got {short_repr(credentials)}")
    if len(problems) > bad:
        return None
    return Cors.from_json({k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()})


def _image_problems(uri: Any, config: Any) -> list[str]:
    """What is wrong with an Image function's image_uri and image_config (Lambda's ImageConfig)."""
    problems: list[str] = []
    if not isinstance(uri, str) or not IMAGE_URI_RE.match(uri):
        problems.append(f"image_uri must name an image (repository[:tag] or @digest), got {short_repr(uri)}")
    if not isinstance(config, Mapping):
        return [*problems, f"image_config must be a mapping, got {type(config).__name__}"]
    for key, value in config.items():
        if key not in IMAGE_CONFIG_KEYS:
            problems.append(f"image_config: unknown key {short_repr(key)} (known: {', '.join(IMAGE_CONFIG_KEYS)})")
        elif key == "WorkingDirectory":
            if not isinstance(value, str) or not value.startswith("/") or len(value) > 1000:
                problems.append(f"image_config WorkingDirectory must be an absolute path, got {short_repr(value)}")
        elif (
            not isinstance(value, (list, tuple))
            or len(value) > 1500
            or not all(isinstance(x, str) and len(x) <= 1024 for x in value)
        ):
            problems.append(f"image_config {key} must be a list of strings, got {short_repr(value)}")
    return problems


def _image_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if k == "WorkingDirectory" else tuple(v)) for k, v in config.items() if v is not None}


def unavailable_runtime(runtime: str) -> ValidationError:
    """The refusal of a Lambda runtime that faas cannot build here, with the way forward."""
    nearest = suggest_fallback(runtime)
    forward = (
        f"or let faas run it on an available one by adding to faas.yaml in the state folder: "
        f"`runtime_fallback: {{{runtime}: {nearest}}}` (a warning at deploy and in `faas ls`)"
        if nearest
        else f"as faas has no {_family(runtime)} runtime yet"
    )
    return ValidationError(
        f"runtime {runtime} is not available in faas: no Debian suite or registry package on this machine "
        f"provides it. Available runtimes: {', '.join(RUNTIMES)}. Change the function's runtime, {forward}."
    )


def _family(runtime: str) -> str:
    return re.sub(r"[\d.].*$", "", runtime)


def _version(runtime: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", runtime))


def suggest_fallback(runtime: str) -> str | None:
    """The available runtime of the same language nearest above runtime (else the newest below);
    None when faas has none of that language."""
    same = [r for r in RUNTIMES if _family(r) == _family(runtime)]
    if not same:
        return None
    above = sorted((r for r in same if _version(r) >= _version(runtime)), key=_version)
    return above[0] if above else max(same, key=_version)


def fallback_warning(function: Mapping[str, Any]) -> str | None:
    """The warning for a function (as the admin API describes it) that runs on runtime_fallback."""
    spec = function.get("spec")
    requested = spec.get("requested_runtime") if isinstance(spec, Mapping) else None
    if not requested:
        return None
    return (
        f"warning: {function.get('name')} asks for {requested}, which faas does not have; "
        f"it runs on {function.get('runtime')} (runtime_fallback in faas.yaml)"
    )


def resolve_runtime(spec: FunctionSpec, fallback: Mapping[str, str]) -> FunctionSpec:
    """spec as faas will run it: unchanged on an available runtime, moved to the runtime that
    runtime_fallback names for an unavailable one, else refused (nothing falls back silently)."""
    if spec.runtime in RUNTIMES or spec.package_type == "Image":
        return spec  # an image function's runtime is its image's
    target = fallback.get(spec.runtime)
    if target == spec.runtime:
        return spec  # faas.yaml's runtime_images runs it on the image it names
    if target is None:
        raise unavailable_runtime(spec.runtime)
    return replace(spec, runtime=target, requested_runtime=spec.runtime)


def env_size(environment: Mapping[str, str]) -> int:
    """Lambda counts the keys and values of all variables against the 4 KB limit."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())


def function_arn(name: str, qualifier: str | None = None, region: str = "us-east-1") -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


@dataclass(frozen=True)
class FunctionVersion:
    """One deployed, immutable version of a function: its spec and its extracted code."""

    spec: FunctionSpec
    version: int
    code_sha256: str
    code_dir: Path
    code_size: int
    created: float
    source_dir: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        """Identifies this version in the pool: environments never cross versions."""
        return f"{self.spec.name}:{self.version}"


@dataclass(frozen=True)
class Invocation:
    """One call as it travels to an environment."""

    request_id: str
    payload: bytes
    deadline: float  # time.monotonic() by which the call must answer
    deadline_epoch_ms: int  # the same deadline as Lambda-Runtime-Deadline-Ms
    invoked_arn: str
    trace_id: str = ""
    client_context: str | None = None  # JSON text, already decoded from base64
    identity: str | None = None


@dataclass(frozen=True)
class Result:
    """What came back from one call, with what the REPORT line and the caller need."""

    request_id: str
    payload: bytes
    version: int
    function_error: str | None = None  # "Unhandled" when the function (or its runtime) failed
    error_type: str | None = None  # e.g. "ValueError", "Runtime.OutOfMemory", "Sandbox.Timedout"
    logs: str = ""
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    max_memory_mb: int = 0
    start: StartType = StartType.WARM
    status: Status = Status.OK
