"""A function's dependencies, installed on the host for the runtime it will run on, as `sam build` does.

The runtime containers have no network, so a `requirements.txt` (Python) or `package.json`
(Node, with `npm ci` when its lock file is there) is installed here, by the host's pip and npm,
into a folder whose contents are zipped at the package's root beside the function's code. pip is
told the runtime's interpreter version and Lambda's platform (manylinux up to glibc 2.34, as on
Amazon Linux 2023) and takes wheels only, so a compiled extension matches the runtime's ABI and
not the host's. A pure-Python package published only as an sdist is built into a wheel on the
host first (a pure wheel runs on any CPython 3), as SAM CLI's pip builder does.

Installs are cached by the content of the manifest, its lock and the runtime, under
$XDG_CACHE_HOME/faas/deps: a save that changes only code zips the cached folder again and
installs nothing. A failed install raises ValidationError carrying pip's or npm's own message;
nothing is deployed, so the live version keeps serving.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from faas.errors import ValidationError

INSTALLER_VERSION = "1"  # part of every cache key: a change to how installs are made starts a new cache
PLATFORM_TAGS = ("manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 35)))
INSTALL_TIMEOUT_S = 900.0
KEEP_OUTPUT = 200  # lines of pip's/npm's output kept for an error message
MAX_LINE = 500
MAX_SDIST_ROUNDS = 10  # sdist-only requirements built into wheels, at most, per install
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")
_NO_MATCH_RE = re.compile(r"No matching distribution found for (\S+)")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Dependencies:
    """Installed dependencies: root's contents go at the package's root."""

    kind: str  # "python" or "node"
    manifest: str  # the file they come from, for messages
    root: Path
    installed: bool  # False when they came from the cache


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faas"


def manifest(folder: Path, runtime: str) -> tuple[str, list[Path]] | None:
    """(kind, [manifest, lock...]) of the dependencies the runtime would install, else None."""
    if runtime.startswith("python") and (folder / "requirements.txt").is_file():
        return "python", [folder / "requirements.txt"]
    if runtime.startswith("nodejs") and (folder / "package.json").is_file():
        return "node", [folder / "package.json", *(folder / n for n in LOCK_FILES if (folder / n).is_file())]
    return None


def cache_key(kind: str, runtime: str, files: list[Path]) -> str:
    h = hashlib.sha256(f"{INSTALLER_VERSION}\0{kind}\0{runtime}\0".encode())
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def install(folder: Path, runtime: str, *, progress: Progress | None = None, name: str = "") -> Dependencies | None:
    """The folder's dependencies for `runtime`, from the cache or installed now; None if it has none."""
    folder = Path(folder).resolve()
    found = manifest(folder, runtime)
    if found is None:
        return None
    kind, files = found
    say = progress or (lambda _m: None)
    who = name or folder.name
    try:
        key = cache_key(kind, runtime, files)
    except OSError as e:
        raise ValidationError(f"{who}: {files[0].name} cannot be read: {e.strerror}") from None
    root = cache_dir() / "deps" / key[:32]
    if root.is_dir():
        say(f"{who}: dependencies from {files[0].name} unchanged, using the cached install")
        return Dependencies(kind, files[0].name, root, installed=False)
    root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
    try:
        say(f"{who}: installing dependencies from {files[0].name} for {runtime}")
        if kind == "python":
            _pip(folder, runtime, tmp, say, who)
        else:
            _npm(folder, files, tmp, say, who)
        try:
            os.rename(tmp, root)
        except OSError:  # another install of the same manifest won the race: use that one
            if not root.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"{who}: dependencies installed")
    return Dependencies(kind, files[0].name, root, installed=True)


def python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def _pip(folder: Path, runtime: str, target: Path, say: Progress, who: str) -> None:
    version = python_version(runtime)
    wheels = target.parent / f"{target.name}-wheels"
    base = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile"]
    base += ["--target", str(target / "site"), "--python-version", version, "--implementation", "cp"]
    for tag in PLATFORM_TAGS:
        base += ["--platform", tag]
    base += ["--only-binary=:all:", "--find-links", str(wheels), "-r", "requirements.txt"]
    try:
        for _round in range(MAX_SDIST_ROUNDS + 1):
            code, lines = run(base, folder, say)
            if code == 0:
                break
            missing = _NO_MATCH_RE.search("\n".join(lines))
            if missing is None or not _pure_wheel(missing.group(1), folder, wheels, say):
                raise ValidationError(f"{who}: pip could not install requirements.txt for {runtime}:\n" + _tail(lines))
            shutil.rmtree(target / "site", ignore_errors=True)
        else:
            raise ValidationError(f"{who}: requirements.txt needs more than {MAX_SDIST_ROUNDS} packages built from source")
    finally:
        shutil.rmtree(wheels, ignore_errors=True)
    site = target / "site"
    if site.is_dir():  # pip --target's layout: the packages at its top, as Lambda's /var/task holds them
        for child in site.iterdir():
            os.rename(child, target / child.name)
        site.rmdir()
    for bin_dir in (target / "bin",):  # console scripts point at the host's interpreter: no use in the runtime
        shutil.rmtree(bin_dir, ignore_errors=True)


def _pure_wheel(requirement: str, folder: Path, wheels: Path, say: Progress) -> bool:
    """Build a wheel of an sdist-only requirement on the host; True if it is pure Python
    (then it runs on the runtime's CPython too), else it is removed and False."""
    wheels.mkdir(exist_ok=True)
    say(f"building a wheel of {requirement} from its source")
    before = set(wheels.iterdir())
    argv = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input", "--no-deps"]
    code, _lines = run([*argv, "--wheel-dir", str(wheels), requirement], folder, say)
    built = [p for p in set(wheels.iterdir()) - before if p.suffix == ".whl"]
    if code != 0 or not built:
        return False
    pure = all(p.name.endswith("-none-any.whl") for p in built)
    if not pure:
        for p in built:
            p.unlink()
    return pure


def _npm(folder: Path, files: list[Path], target: Path, say: Progress, who: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ValidationError(f"{who}: package.json needs npm to install its dependencies, and npm is not on PATH")
    for path in files:
        shutil.copyfile(path, target / path.name)
    locked = len(files) > 1
    argv = [npm, "ci" if locked else "install", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"]
    if not locked:
        argv.append("--no-package-lock")
    code, lines = run(argv, target, say)
    if code != 0:
        command = "npm ci" if locked else "npm install"
        raise ValidationError(f"{who}: {command} failed:\n" + _tail(lines))
    for path in files:
        (target / path.name).unlink(missing_ok=True)
    (target / "node_modules" / ".package-lock.json").unlink(missing_ok=True)


def _tail(lines: list[str]) -> str:
    return "\n".join(lines[-40:]).strip()


def run(
    argv: list[str], cwd: Path, say: Progress, *, timeout: float = INSTALL_TIMEOUT_S, env: Mapping[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run an installer or a build, its output shown line by line (bounded) and kept for an error message."""
    env = {**(env or os.environ), "PIP_NO_COLOR": "1", "NO_COLOR": "1", "npm_config_color": "false"}
    kept: deque[str] = deque(maxlen=KEEP_OUTPUT)
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
    except OSError as e:
        raise ValidationError(f"could not run {Path(argv[0]).name}: {e.strerror}") from None
    timed_out: list[bool] = []

    def stop() -> None:
        timed_out.append(True)
        proc.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()[:MAX_LINE]
            if line:
                kept.append(line)
                say(line)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code < 0:
        kept.append(f"(stopped after {timeout:.0f} s)" if timed_out else f"(killed by signal {-code})")
    return code, list(kept)
