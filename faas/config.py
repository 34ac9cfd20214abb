"""Settings, declared once and validated at start. Nothing reads them at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

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


@dataclass(frozen=True)
class Config:
    """Everything the gateway and CLI can be told; see README 'Configuration'."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    threads: int = 64
    keep_alive_s: float = 600.0
    memory_budget_mb: int = 8192
    api_token: str | None = None
    network_fallback: bool = True

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> "Config":
        """Defaults, then faas.yaml in the state dir, then FAAS_* variables, then explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        state_dir = Path((overrides or {}).get("state_dir") or env.get("FAAS_STATE_DIR") or _default_state_dir())
        config_file = state_dir / "faas.yaml"
        if config_file.is_file():
            try:
                loaded = yaml.safe_load(config_file.read_text()) or {}
            except yaml.YAMLError as e:
                raise ValidationError(f"{config_file}: not valid YAML: {e}") from e
            if not isinstance(loaded, dict):
                raise ValidationError(f"{config_file}: expected a mapping")
            values.update(loaded)
        names = {
            "FAAS_HOST": "host", "FAAS_PORT": "port", "FAAS_THREADS": "threads",
            "FAAS_KEEP_ALIVE": "keep_alive_s", "FAAS_MEMORY_BUDGET": "memory_budget_mb",
            "FAAS_API_TOKEN": "api_token",
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
                threads=int(values.pop("threads", 64)),
                keep_alive_s=float(values.pop("keep_alive_s", 600.0)),
                memory_budget_mb=int(values.pop("memory_budget_mb")),
                api_token=values.pop("api_token", None) or None,
                network_fallback=bool(values.pop("network_fallback", True)),
            )
        except (TypeError, ValueError) as e:
            raise ValidationError(f"bad setting: {e}") from e
        if not 0 < cfg.port < 65536:
            raise ValidationError(f"port must be 1..65535, got {cfg.port}")
        if not 1 <= cfg.threads <= 1024:
            raise ValidationError(f"threads must be 1..1024, got {cfg.threads}")
        if cfg.keep_alive_s <= 0:
            raise ValidationError("keep_alive_s must be positive")
        return cfg

    def with_(self, **changes: Any) -> "Config":
        return replace(self, **changes)
