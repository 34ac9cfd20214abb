"""The gateway's own image: faas in a container (compose.yaml), built offline like the runtime images.

gateway/Dockerfile is built FROM a Debian root filesystem that mmdebstrap makes from
gateway/base.conf (faas.containers.images.build_on_base: the same base machinery, lock and progress as
the runtime images). `docker build` has no network here (the engine may run with
--bridge=none), so the build context is assembled on this machine first: faas as a wheel,
its dependencies downloaded as wheels for the engine's machine and Python 3.11 (bookworm's
python3), and the runtime recipes, which the container uses to build the runtime images on
its first start.

Tags: faas-gateway:<hash of what goes in> (built once per content), and faas-gateway:latest,
the one compose.yaml runs unless FAAS_IMAGE says otherwise.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from faas.containers.images import (
    BASE_CONF,
    BASE_REPOSITORY,
    PYTHON_SDK,
    BaseRecipe,
    build_on_base,
    runtimes_root,
    tree_hash,
)
from faas.errors import ImageBuildError

if TYPE_CHECKING:
    from faas.containers.docker_executor import DockerExecutor

LOG = logging.getLogger(__name__)

GATEWAY_REPOSITORY = "faas-gateway"
LATEST_TAG = f"{GATEWAY_REPOSITORY}:latest"
RECIPE_FOLDER = "gateway"  # gateway/Dockerfile and gateway/base.conf
TARGET_PYTHON = "3.11"  # Debian bookworm's python3 (base.conf's suite)
TARGET_GLIBC_MINOR = 36  # bookworm's glibc 2.36: the newest manylinux wheels it runs
SOURCE_FOLDERS = ("faas", "gateway")
_SKIP = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.pyo", "*~", "*.swp", ".DS_Store")
_PIP_TIMEOUT_S = 900


def project_root() -> Path:
    """The source tree the image is built from: the folder holding faas/ and pyproject.toml."""
    return Path(__file__).resolve().parents[2]


def _recipe(root: Path) -> BaseRecipe:
    if not (root / RECIPE_FOLDER / "Dockerfile").is_file() or not (root / "pyproject.toml").is_file():
        raise ImageBuildError(
            f"{root} is not a faas source tree (no {RECIPE_FOLDER}/Dockerfile or pyproject.toml): "
            "the gateway image is built from a checkout of faas"
        )
    return BaseRecipe.read(root / RECIPE_FOLDER / BASE_CONF)


def base_image_tag(root: Path | None = None) -> str:
    return f"{BASE_REPOSITORY}/gateway:{_recipe(root or project_root()).hash()[:12]}"


def gateway_image_tag(root: Path | None = None) -> str:
    """faas-gateway:<first 12 hex of the hash of faas/, gateway/, runtimes/, pyproject.toml and the base>; no engine."""
    root = root or project_root()
    recipe = _recipe(root)
    runtimes = runtimes_root()
    digest = hashlib.sha256()
    digest.update(tree_hash([root / folder for folder in SOURCE_FOLDERS], root).encode())
    digest.update(tree_hash([runtimes], runtimes.parent).encode())
    digest.update(hashlib.sha256((root / "pyproject.toml").read_bytes()).digest())
    digest.update(f"{recipe.hash()}\n{TARGET_PYTHON}\n".encode())
    return f"{GATEWAY_REPOSITORY}:{digest.hexdigest()[:12]}"


def ensure_gateway_image(
    executor: DockerExecutor,
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
) -> str:
    """The gateway image's tag, built first when absent (or force); faas-gateway:latest points at it."""
    root = root or project_root()
    recipe = _recipe(root)
    tag = gateway_image_tag(root)
    if force or not executor.image_exists(tag):
        scratch_parent = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
        with tempfile.TemporaryDirectory(prefix="faas-gateway-", dir=scratch_parent) as scratch:
            context = Path(scratch)
            build_on_base(
                executor,
                tag,
                recipe,
                base_image_tag(root),
                context,
                what="the faas gateway",
                labels={"faas.gateway": "1"},
                force=force,
                say=say,
                prepare=lambda step: assemble_context(context, root, executor.engine_arch(), step),
            )
    executor.tag_image(tag, LATEST_TAG)
    for old in executor.image_tags(GATEWAY_REPOSITORY):
        if old not in (tag, LATEST_TAG) and executor.remove_unused_image(old):
            LOG.info("removed the older gateway image %s", old)
    return tag


def assemble_context(context: Path, root: Path, arch: str, step: Callable[[str], None]) -> None:
    """Fill context with what gateway/Dockerfile COPYs: Dockerfile, wheels/, runtimes/."""
    shutil.copy2(root / RECIPE_FOLDER / "Dockerfile", context / "Dockerfile")
    shutil.copytree(runtimes_root(), context / "runtimes", ignore=_SKIP)
    wheels = context / "wheels"
    wheels.mkdir()
    step("pip wheel faas (the gateway's own package)")
    _pip(["wheel", "--no-deps", "--wheel-dir", str(wheels), str(root)], step)
    requirements = dependencies(root / "pyproject.toml")
    step(f"pip download {len(requirements)} dependencies for CPython {TARGET_PYTHON} on {arch or 'this machine'}")
    _pip(["download", "--dest", str(wheels), *wheel_target_args(arch), *requirements], step)
    # The Python runtimes' AWS SDK, so the container builds their images without the index
    # (images.SDK_WHEELS_VAR): pure-Python wheels, pinned with their hashes.
    step("pip download the AWS SDK for the Python runtime images")
    sdk_wheels = context / "sdk-wheels"
    sdk_wheels.mkdir()
    hashed = ["--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(runtimes_root() / PYTHON_SDK)]
    _pip(["download", "--dest", str(sdk_wheels), *hashed], step)
    LOG.info("gateway build context: %d wheels", len(list(wheels.glob("*.whl"))))


def dependencies(pyproject: Path) -> list[str]:
    """[project] dependencies of pyproject.toml: what the image installs next to faas."""
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ImageBuildError(f"cannot read the dependencies in {pyproject}: {e}") from e
    return [str(requirement) for requirement in data.get("project", {}).get("dependencies", [])]


def wheel_target_args(arch: str) -> list[str]:
    """pip download options for wheels that run in the image, whatever the machine pip runs on
    (a Mac driving a Linux VM, a Python other than 3.11): binary wheels only, for CPython 3.11
    on glibc up to bookworm's, on the engine's machine."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch) or "x86_64"
    args = [
        "--only-binary=:all:",
        "--python-version",
        TARGET_PYTHON,
        "--implementation",
        "cp",
        "--abi",
        f"cp{TARGET_PYTHON.replace('.', '')}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(TARGET_GLIBC_MINOR, 4, -1)]
    platforms += [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    for platform in platforms:
        args += ["--platform", platform]
    return args


def _pip(args: list[str], step: Callable[[str], None]) -> None:
    """Run this interpreter's pip (its configured index), passing progress lines to step."""
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    tail: collections.deque[str] = collections.deque(maxlen=30)
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace"
        )
    except OSError as e:
        raise ImageBuildError(f"pip could not run: {e}") from e
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            if line.startswith(("Collecting ", "Saved ", "Building wheel", "Created wheel", "ERROR")):
                step(f"pip: {line.strip()[:90]}")
    finally:
        proc.stdout.close()
        try:
            returncode = proc.wait(timeout=_PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
    if returncode != 0:
        raise ImageBuildError(f"pip {args[0]} for the gateway image failed (exit {returncode}):\n" + "\n".join(tail))
