"""Settings, declared once and validated at start. Nothing reads them at import time."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from faas.deploy.yaml_input import load_settings
from faas.errors import ValidationError

DEFAULT_PORT = 8080


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "faas"


def _machine_memory_mb() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


def _delays(value: Any) -> tuple[float, ...]:
    """'1,2' (an environment variable) or [1, 2] (faas.yaml): the async retry delays."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(float(p) for p in parts)


def _layer_map(value: Any) -> dict[str, str]:
    """faas.yaml's layer_map: {layer version ARN: local folder or zip} (faas/deploy/layers.py)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k.startswith("arn:") and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ValidationError(
            "layer_map must map layer version ARNs to local folders or zips, e.g. {arn:aws:lambda:...:layer:NAME:3: /path/to/layer}"
        )
    return dict(value)


def _runtime_images(value: Any) -> dict[str, str]:
    """faas.yaml's runtime_images: {Lambda runtime: an image following Lambda's base-image contract}."""
    from faas.models import IMAGE_URI_RE, RUNTIMES, UNAVAILABLE_RUNTIMES

    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"runtime_images must map a runtime to an image, e.g. {{python3.12: my/python:3.12}}, got {type(value).__name__}"
        )
    problems = []
    for runtime, image in value.items():
        if runtime not in RUNTIMES and runtime not in UNAVAILABLE_RUNTIMES:
            problems.append(f"{str(runtime)[:40]!r} is not a Lambda runtime")
        if not isinstance(image, str) or not IMAGE_URI_RE.match(image):
            problems.append(f"{str(runtime)[:40]}: {str(image)[:80]!r} is not an image name")
    if problems:
        raise ValidationError("runtime_images: " + "; ".join(problems))
    return {str(k): str(v) for k, v in value.items()}


def _runtime_fallback(value: Any) -> dict[str, str]:
    """faas.yaml's runtime_fallback: {unavailable runtime: available runtime}, each pair checked."""
    from faas.models import RUNTIMES, UNAVAILABLE_RUNTIMES

    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"runtime_fallback must map a runtime to another, e.g. {{python3.12: python3.13}}, got {value!r}")
    problems = []
    for source, target in value.items():
        if source in RUNTIMES:
            problems.append(f"{source} is available: it needs no fallback")
        elif source not in UNAVAILABLE_RUNTIMES:
            problems.append(f"{source!r} is not a Lambda runtime")
        if target not in RUNTIMES:
            problems.append(f"{source}: {target!r} is not an available runtime ({', '.join(RUNTIMES)})")
    if problems:
        raise ValidationError("runtime_fallback: " + "; ".join(problems))
    return {str(k): str(v) for k, v in value.items()}


_ENDPOINT_VAR = re.compile(r"AWS_ENDPOINT_URL(_[A-Z0-9_]{1,64})?")
_ENDPOINT_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,255}(/[\x21-\x7e]{0,1024})?")


def _aws_endpoints(value: Any, env: Mapping[str, str]) -> dict[str, str]:
    """The AWS endpoints passed on to functions: AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
    set where faas runs, then faas.yaml's aws_endpoints (keys: a service such as s3 or dynamodb,
    `default` for AWS_ENDPOINT_URL, or the variable's own name). Lambda's own endpoint is always
    this gateway's, so AWS_ENDPOINT_URL_LAMBDA is not taken from here: a host that points its own
    AWS CLI at faas with it must not send functions to a loopback address they cannot reach."""
    from faas.models import short_repr

    out = {k: v for k, v in env.items() if _ENDPOINT_VAR.fullmatch(k)}
    if value is not None:
        if not isinstance(value, Mapping):
            raise ValidationError("aws_endpoints: expected a mapping of service to URL, e.g. {s3: http://127.0.0.1:4566}")
        for key, url in value.items():
            name = str(key).upper().replace("-", "_")
            if name == "DEFAULT":
                name = "AWS_ENDPOINT_URL"
            elif not name.startswith("AWS_ENDPOINT_URL"):
                name = f"AWS_ENDPOINT_URL_{name}"
            if not _ENDPOINT_VAR.fullmatch(name):
                raise ValidationError(f"aws_endpoints: {short_repr(key)} is not a service name")
            out[name] = url
    for name, url in out.items():
        if not isinstance(url, str) or not _ENDPOINT_URL.fullmatch(url):
            raise ValidationError(f"aws_endpoints: {name} must be an http:// or https:// URL, got {short_repr(url)}")
    out.pop("AWS_ENDPOINT_URL_LAMBDA", None)
    return out


def _debug_target(value: Any) -> tuple[str, int] | None:
    """'hello' or 'hello:5890' -> (name, port); the default port is debugpy's 5678."""
    if not value:
        return None
    if isinstance(value, (tuple, list)):
        return str(value[0]), int(value[1])
    name, _, port = str(value).partition(":")
    return name, int(port or 5678)


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


@dataclass(frozen=True)
class Config:
    """Everything the gateway and CLI can be told; see README 'Configuration'."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # `faas up --api-port P`: template routes also on a listener of their own, nothing else of faas there
    api_port: int | None = None
    threads: int = 64
    keep_alive_s: float = 600.0
    memory_budget_mb: int = 8192
    api_token: str | None = None
    # Listen beyond loopback without api_token: only where something else guards the port
    # (a container whose port is published on the host's 127.0.0.1 only, compose.bridge.yaml).
    allow_no_token: bool = False
    network_fallback: bool = True
    debug: tuple[str, int] | None = None  # (function, port): `faas up --debug NAME[:PORT]`
    prestart_min: int = 1  # pre-started containers kept per runtime in use
    prestart_max: int = 4
    budget_wait_s: float = 5.0  # how long a call may queue for memory before 429
    # Async (Event) calls: Lambda waits 1 then 2 minutes before the two retries, and drops
    # an event after 6 hours; tests shorten these.
    async_workers: int = 4
    async_retry_delays_s: tuple[float, ...] = (60.0, 120.0)
    async_max_event_age_s: float = 21600.0
    # The Event queue's bounds (async_invoke.QueueBounds): past them an Event call gets 429.
    async_max_events_per_function: int = 1000
    async_max_mb_per_function: int = 64
    async_max_events: int = 10_000
    async_max_mb: int = 256
    records_per_function: int = 1000  # invocation records kept per function (`faas calls`)
    # Opt-in: run a function that names an unavailable runtime on an available one (warned about).
    runtime_fallback: Mapping[str, str] = field(default_factory=dict)
    # A runtime -> an image following Lambda's base-image contract that runs it (docs/image-functions.md).
    runtime_images: Mapping[str, str] = field(default_factory=dict)
    # Layer ARNs faas cannot fetch (public layers, a vendor's) -> a local folder or zip standing in.
    layer_map: Mapping[str, str] = field(default_factory=dict)
    # AWS_ENDPOINT_URL[_<SERVICE>] -> URL, passed on to every function (docs/aws-sdk.md).
    aws_endpoints: Mapping[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults, then faas.yaml in the state dir, then FAAS_* variables, then explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        state_dir = Path((overrides or {}).get("state_dir") or env.get("FAAS_STATE_DIR") or _default_state_dir())
        config_file = state_dir / "faas.yaml"
        if config_file.is_file():
            try:
                loaded = load_settings(config_file.read_text()) or {}
            except yaml.YAMLError as e:
                raise ValidationError(f"{config_file}: not valid YAML: {e}") from e
            except RecursionError:
                raise ValidationError(f"{config_file}: nested too deeply") from None
            if not isinstance(loaded, dict):
                raise ValidationError(f"{config_file}: expected a mapping")
            values.update(loaded)
        names = {
            "FAAS_HOST": "host",
            "FAAS_PORT": "port",
            "FAAS_API_PORT": "api_port",
            "FAAS_THREADS": "threads",
            "FAAS_KEEP_ALIVE": "keep_alive_s",
            "FAAS_MEMORY_BUDGET": "memory_budget_mb",
            "FAAS_API_TOKEN": "api_token",
            "FAAS_PRESTART_MIN": "prestart_min",
            "FAAS_PRESTART_MAX": "prestart_max",
            "FAAS_ALLOW_NO_TOKEN": "allow_no_token",
            "FAAS_BUDGET_WAIT": "budget_wait_s",
            "FAAS_DEBUG": "debug",
            "FAAS_ASYNC_WORKERS": "async_workers",
            "FAAS_ASYNC_RETRY_DELAYS": "async_retry_delays_s",
            "FAAS_ASYNC_MAX_EVENT_AGE": "async_max_event_age_s",
            "FAAS_ASYNC_MAX_EVENTS_PER_FUNCTION": "async_max_events_per_function",
            "FAAS_ASYNC_MAX_MB_PER_FUNCTION": "async_max_mb_per_function",
            "FAAS_ASYNC_MAX_EVENTS": "async_max_events",
            "FAAS_ASYNC_MAX_MB": "async_max_mb",
            "FAAS_RECORDS_PER_FUNCTION": "records_per_function",
        }
        for var, key in names.items():
            if env.get(var):
                values[key] = env[var]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        values["state_dir"] = state_dir
        values.setdefault("memory_budget_mb", max(1024, _machine_memory_mb() // 2))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError(f"unknown setting(s): {', '.join(unknown)}")
        try:
            cfg = cls(
                state_dir=Path(values.pop("state_dir")).expanduser().resolve(),
                host=str(values.pop("host", "127.0.0.1")),
                port=int(values.pop("port", DEFAULT_PORT)),
                api_port=_optional_int(values.pop("api_port", None)),
                threads=int(values.pop("threads", 64)),
                keep_alive_s=float(values.pop("keep_alive_s", 600.0)),
                memory_budget_mb=int(values.pop("memory_budget_mb")),
                api_token=values.pop("api_token", None) or None,
                allow_no_token=str(values.pop("allow_no_token", False)).lower() in ("1", "true", "yes", "on"),
                network_fallback=bool(values.pop("network_fallback", True)),
                debug=_debug_target(values.pop("debug", None)),
                prestart_min=int(values.pop("prestart_min", 1)),
                prestart_max=int(values.pop("prestart_max", 4)),
                budget_wait_s=float(values.pop("budget_wait_s", 5.0)),
                async_workers=int(values.pop("async_workers", 4)),
                async_retry_delays_s=_delays(values.pop("async_retry_delays_s", (60.0, 120.0))),
                async_max_event_age_s=float(values.pop("async_max_event_age_s", 21600.0)),
                async_max_events_per_function=int(values.pop("async_max_events_per_function", 1000)),
                async_max_mb_per_function=int(values.pop("async_max_mb_per_function", 64)),
                async_max_events=int(values.pop("async_max_events", 10_000)),
                async_max_mb=int(values.pop("async_max_mb", 256)),
                records_per_function=int(values.pop("records_per_function", 1000)),
                runtime_fallback=_runtime_fallback(values.pop("runtime_fallback", None)),
                runtime_images=_runtime_images(values.pop("runtime_images", None)),
                layer_map=_layer_map(values.pop("layer_map", None)),
                aws_endpoints=_aws_endpoints(values.pop("aws_endpoints", None), env),
            )
        except (TypeError, ValueError) as e:
            raise ValidationError(f"bad setting: {e}") from e
        if not 0 < cfg.port < 65536:
            raise ValidationError(f"port must be 1..65535, got {cfg.port}")
        if cfg.api_port is not None and not (0 < cfg.api_port < 65536 and cfg.api_port != cfg.port):
            raise ValidationError(f"api_port must be 1..65535 and not the gateway's port {cfg.port}, got {cfg.api_port}")
        if not 1 <= cfg.threads <= 1024:
            raise ValidationError(f"threads must be 1..1024, got {cfg.threads}")
        if not 0 <= cfg.prestart_min <= cfg.prestart_max <= 64:
            raise ValidationError("need 0 <= prestart_min <= prestart_max <= 64")
        if cfg.keep_alive_s <= 0:
            raise ValidationError("keep_alive_s must be positive")
        if not 1 <= cfg.async_workers <= 64:
            raise ValidationError(f"async_workers must be 1..64, got {cfg.async_workers}")
        if len(cfg.async_retry_delays_s) != 2 or min(cfg.async_retry_delays_s) < 0:
            raise ValidationError("async_retry_delays_s must be two delays in seconds, e.g. 60,120")
        if cfg.async_max_event_age_s <= 0 or cfg.records_per_function < 1:
            raise ValidationError("async_max_event_age_s and records_per_function must be positive")
        queue = (cfg.async_max_events_per_function, cfg.async_max_mb_per_function, cfg.async_max_events, cfg.async_max_mb)
        if min(queue) < 1:
            raise ValidationError(
                "async_max_events_per_function, async_max_mb_per_function, async_max_events and async_max_mb must be positive"
            )
        return cfg

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)
