"""From a function's source to its package: the build, the dependencies, the zip.

Every way a package is made on the host goes through package_folder(): `faas deploy DIR`,
a SAM template's functions, `faas up`'s and `faas deploy --watch`'s saves, and `faas build`.
What runs before the zip, as `sam build` does:

- function.yaml's `build:` command (any tool: tsc, cargo, a script), run in the function's
  folder with ARTIFACTS_DIR set to an empty folder; what it writes there is the package.
- SAM's `Metadata: BuildMethod: makefile`: `make build-<LogicalId>` with ARTIFACTS_DIR.
- SAM's `BuildMethod: esbuild`: esbuild (pinned, from the npm registry, cached) bundles the
  BuildProperties' EntryPoints into ARTIFACTS_DIR; the dependencies are bundled in.
- Otherwise the folder as it is, with its requirements.txt / package.json installed for the
  runtime (faas/deploy/dependencies.py) and zipped beside it.

A template's LayerVersion with `Metadata: BuildMethod` is built as `sam build` builds it
(built_layer()): `python3.X` puts ContentUri's files and its requirements.txt installed for that
CPython under `python/`, `nodejsNN.x` its files and package.json's node_modules under
`nodejs/`, `makefile` runs `make build-<LogicalId>` and ARTIFACTS_DIR is the layer's content.
The installs share the functions' cache (dependencies.py).

Commands run from an argv list (shlex), never through a shell, with a timeout, their output
shown as progress and the last of it kept for the error message.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faas.deploy import dependencies
from faas.deploy.dependencies import Progress
from faas.deploy.packages import read_build_command, read_spec, zip_folder
from faas.errors import ValidationError
from faas.models import FunctionSpec, short_repr

BUILD_TIMEOUT_S = 900.0
ESBUILD_VERSION = "0.24.2"
ESBUILD_FLAGS = {"Minify": "--minify", "Sourcemap": "--sourcemap"}
_LAYER_RUNTIME_RE = re.compile(r"^(python3\.\d{1,2}|nodejs\d{1,2}\.x)$")


@dataclass(frozen=True)
class Build:
    """How a function's code becomes its package: a SAM BuildMethod or a build: command."""

    method: str  # "command", "makefile" or "esbuild"
    target: str = ""  # makefile: the template's LogicalId; command: the command line
    properties: Mapping[str, Any] = field(default_factory=dict)  # esbuild's BuildProperties


@dataclass(frozen=True)
class Built:
    data: bytes
    dependencies: dependencies.Dependencies | None


def package_folder(
    folder: Path,
    *,
    spec: FunctionSpec | None = None,
    build: Build | None = None,
    validate: bool = True,
    progress: Progress | None = None,
    layer_names: Mapping[str, str] | None = None,
) -> Built:
    """The package (zip bytes) of a function folder, built and with its dependencies.

    spec: the function's configuration when it is not the folder's function.yaml (a SAM
    function). validate=False (the file watcher): a folder whose function.yaml is broken is
    zipped as it is, so that the gateway refuses it where `faas ls` shows why. layer_names: a
    template's LayerName for each of its layer folders (packages.zip_folder)."""
    folder = Path(folder).resolve()
    say = progress or (lambda _m: None)
    own = spec
    if own is None:
        try:
            own = read_spec(folder)
        except ValidationError:
            if validate:
                raise
            return Built(zip_folder(folder, validate=False), None)
        command = read_build_command(folder)
        if build is None and command is not None:
            build = Build("command", command)
    if build is not None:
        with _artifacts() as artifacts:
            _run_build(folder, build, artifacts, own, say)
            deps = (
                None
                if build.method in ("makefile", "esbuild")
                else dependencies.install(folder, own.runtime, progress=say, name=own.name)
            )
            data = zip_folder(artifacts, spec=own, extra=[deps.root] if deps else [], layer_names=layer_names, layer_root=folder)
        return Built(data, deps)
    deps = dependencies.install(folder, own.runtime, progress=say, name=own.name)
    skip = ("node_modules",) if deps is not None and deps.kind == "node" else ()
    extra = [deps.root] if deps else []
    return Built(zip_folder(folder, validate=validate, spec=spec, extra=extra, skip=skip, layer_names=layer_names), deps)


@contextmanager
def _artifacts() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="faas-artifacts-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def layer_build_method(logical_id: str, metadata: Any) -> str | None:
    """A LayerVersion's Metadata BuildMethod, checked as SAM checks it; None when it has none."""
    if not isinstance(metadata, Mapping) or "BuildMethod" not in metadata:
        return None
    method = metadata["BuildMethod"]
    if isinstance(method, str) and (method.lower() == "makefile" or _LAYER_RUNTIME_RE.match(method)):
        return method.lower() if method.lower() == "makefile" else method
    raise ValidationError(
        f"{logical_id}: Metadata BuildMethod {short_repr(method)} is not one faas runs for a layer "
        "(makefile, python3.X, nodejsNN.x)"
    )


@contextmanager
def built_layer(content: Path, method: str, logical_id: str, progress: Progress | None = None) -> Iterator[Path]:
    """A template layer's content built by its BuildMethod, in a folder that lives as long as
    the context (what is zipped and sent as the layer)."""
    say = progress or (lambda _m: None)
    content = Path(content).resolve()
    if not content.is_dir():
        raise ValidationError(f"{logical_id}: Metadata BuildMethod needs ContentUri to be a folder, not a .zip")
    with _artifacts() as artifacts:
        if method == "makefile":
            _run_build(content, Build("makefile", logical_id), artifacts, None, say, who=logical_id)
        else:
            family = "python" if method.startswith("python") else "nodejs"
            out = artifacts / family
            skip = shutil.ignore_patterns("node_modules", "__pycache__", ".aws-sam")
            shutil.copytree(content, out, ignore=skip, symlinks=False)
            deps = dependencies.install(content, method, progress=say, name=logical_id)
            if deps is not None:
                shutil.copytree(deps.root, out, dirs_exist_ok=True)
        yield artifacts


def _run_build(folder: Path, build: Build, artifacts: Path, spec: FunctionSpec | None, say: Progress, *, who: str = "") -> None:
    who = spec.name if spec is not None else who
    env = {**os.environ, "ARTIFACTS_DIR": str(artifacts)}
    if build.method == "command":
        try:
            argv = shlex.split(build.target)
        except ValueError as e:
            raise ValidationError(f"{who}: build command {short_repr(build.target)} cannot be read: {e}") from None
        if not argv:
            raise ValidationError(f"{who}: build command is empty")
        argv = [a.replace("$ARTIFACTS_DIR", str(artifacts)).replace("${ARTIFACTS_DIR}", str(artifacts)) for a in argv]
        what = f"build command {short_repr(build.target)}"
    elif build.method == "makefile":
        if not (folder / "Makefile").is_file():
            raise ValidationError(f"{who}: BuildMethod makefile needs a Makefile in its CodeUri")
        make = shutil.which("make")
        if make is None:
            raise ValidationError(f"{who}: BuildMethod makefile needs make, which is not on PATH")
        argv = [make, f"build-{build.target}"]
        what = f"make build-{build.target}"
    elif build.method == "esbuild" and spec is not None:
        argv, node_path = _esbuild_argv(folder, build.properties, artifacts, spec, say)
        env.update(node_path)
        what = "esbuild"
    else:
        raise ValidationError(f"{who}: BuildMethod {short_repr(build.method)} is not one faas knows (makefile, esbuild)")
    say(f"{who}: running {what}")
    code, lines = dependencies.run(argv, folder, say, timeout=BUILD_TIMEOUT_S, env=env)
    if code != 0:
        raise ValidationError(f"{who}: {what} failed (exit status {code}):\n" + "\n".join(lines[-40:]).strip())
    if not any(artifacts.iterdir()):
        raise ValidationError(f"{who}: {what} wrote nothing to ARTIFACTS_DIR; the package would be empty")


def esbuild_binary(say: Progress) -> Path:
    """esbuild, pinned, installed once from the npm registry into the user's cache."""
    home = dependencies.cache_dir() / "tools" / f"esbuild-{ESBUILD_VERSION}"
    binary = home / "node_modules" / ".bin" / "esbuild"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise ValidationError("BuildMethod esbuild needs npm (to fetch esbuild), and npm is not on PATH")
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=home.parent))
    try:
        say(f"installing esbuild {ESBUILD_VERSION}")
        argv = [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(tmp), f"esbuild@{ESBUILD_VERSION}"]
        code, lines = dependencies.run(argv, tmp, say)
        if code != 0:
            raise ValidationError("could not install esbuild:\n" + "\n".join(lines[-40:]))
        try:
            os.rename(tmp, home)
        except OSError:
            if not binary.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def _esbuild_argv(
    folder: Path, props: Mapping[str, Any], artifacts: Path, spec: FunctionSpec, say: Progress
) -> tuple[list[str], dict[str, str]]:
    """SAM's esbuild BuildProperties as esbuild's command line."""
    who = spec.name
    entries = props.get("EntryPoints") or [spec.handler.rsplit(".", 1)[0] + ".ts"]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValidationError(f"{who}: BuildProperties.EntryPoints must be a list of file names")
    for entry in entries:
        target = (folder / entry).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            raise ValidationError(f"{who}: EntryPoints {short_repr(entry)} is not a file in the function's folder")
    deps = dependencies.install(folder, spec.runtime, progress=say, name=who)
    version = spec.runtime.removeprefix("nodejs").removesuffix(".x")
    argv = [str(esbuild_binary(say)), *entries, "--bundle", "--platform=node", f"--outdir={artifacts}"]
    argv.append(f"--target={props.get('Target') or 'node' + version}")
    argv.append(f"--format={props.get('Format') or 'cjs'}")
    for key, flag in ESBUILD_FLAGS.items():
        if str(props.get(key, "false")).lower() == "true":
            argv.append(flag)
    external = props.get("External") or []
    for name in external if isinstance(external, list) else [external]:
        argv.append(f"--external:{name}")
    # The installed dependencies are found through NODE_PATH, which esbuild's command line reads.
    node_path = {"NODE_PATH": str(deps.root / "node_modules")} if deps is not None else {}
    return argv, node_path


def write_result(data: bytes, where: Path) -> Path:
    """`faas build`'s output: the package unpacked in `where` and zipped beside it as where.zip."""
    import io
    import zipfile

    where = Path(where)
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(where)  # our own zip, made a moment ago from checked paths
    where.with_name(where.name + ".zip").write_bytes(data)
    return where
