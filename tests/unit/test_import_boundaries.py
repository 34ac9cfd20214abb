"""The house plan's walls: which room may import which.

- The CLI side (faas/cli/, and gateway/server.py, which runs gunicorn's arbiter inside the
  `faas up` process) never imports the invoke room or the Platform that composes it: those
  belong to the gateway worker, and a CLI that imported them would start to depend on the
  path of a call.
- Only the containers room (faas/containers/) imports docker.

Checked twice: statically over every import statement (module level and inside functions,
so a lazy import cannot hide), and by importing the CLI's modules in a fresh interpreter and
looking at sys.modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_SIDE = sorted((ROOT / "faas" / "cli").glob("*.py")) + [ROOT / "gateway" / "server.py"]
WORKER_ONLY = ("faas.invoke", "faas.platform")


def _imports(path: Path) -> set[str]:
    """Every module an import statement in this file names, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_the_cli_side_imports_nothing_of_the_invoke_room() -> None:
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in _imports(path) if m.startswith(WORKER_ONLY)) for path in CLI_SIDE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_cli_loads_no_invoke_module() -> None:
    modules = [f"faas.cli.{p.stem}" for p in CLI_SIDE if p.parent.name == "cli" and p.stem != "__init__"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules + ['gateway.server']!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "faas.cli.main" in loaded  # the check looked where it should
    assert [m for m in loaded if m.startswith(WORKER_ONLY)] == []


def test_only_the_containers_room_imports_docker() -> None:
    outside = {}
    for path in sorted((ROOT / "faas").rglob("*.py")) + sorted((ROOT / "gateway").rglob("*.py")):
        if path.is_relative_to(ROOT / "faas" / "containers"):
            continue
        docker = sorted(m for m in _imports(path) if m == "docker" or m.startswith("docker."))
        if docker:
            outside[str(path.relative_to(ROOT))] = docker
    assert outside == {}


def test_the_checker_sees_imports_inside_functions() -> None:
    """The static check must not be blind to a lazy import."""
    found = _imports(ROOT / "faas" / "cli" / "main.py")
    assert "faas.cli.client" in found  # module level
    assert "faas.cli.top" in found  # inside a function: `from faas.cli import top`
