"""Container-image functions: what faas needs of an image that follows Lambda's contract.

Such an image brings its own runtime client (AWS's base images' /lambda-entrypoint.sh, or
awslambdaric run by the image's ENTRYPOINT), which speaks HTTP to AWS_LAMBDA_RUNTIME_API. It
may contain no shell and no socat, so nothing can be run inside it to reach faas's unix
socket. faas therefore bind-mounts one static binary, runtimes/image-forwarder/forwarder.c,
into the container and starts it first: it listens on 127.0.0.1:9001 in the container's own
network namespace (so network `none` still works), sends the output to the log FIFO, and
execs the image's entrypoint and command, which stay as they are (docs/image-functions.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faas.errors import EngineError, ImageBuildError, ValidationError
from faas.models import short_repr

if TYPE_CHECKING:
    from faas.containers.docker_executor import DockerExecutor

FORWARDER_SOURCE = Path(__file__).resolve().parents[2] / "runtimes" / "image-forwarder" / "forwarder.c"
FORWARDER_NAME = "faas-forwarder"
COMPILE_TIMEOUT_S = 120


@dataclass(frozen=True)
class ImageStart:
    """How to start one image: the argv the forwarder execs and the working directory."""

    argv: tuple[str, ...]
    working_dir: str | None


def start_for(executor: DockerExecutor, image: str, config: Mapping[str, Any]) -> ImageStart:
    """The image's ENTRYPOINT and CMD, each replaced by ImageConfig's EntryPoint / Command as
    Lambda does (Command alone keeps the image's ENTRYPOINT); its WORKDIR unless WorkingDirectory."""
    own = image_config(executor, image)
    entry = config.get("EntryPoint")
    command = config.get("Command")
    argv = tuple(entry if entry else own.get("Entrypoint") or ()) + tuple(command if command else own.get("Cmd") or ())
    if not argv:
        raise ValidationError(f"image {short_repr(image)} has no ENTRYPOINT or CMD, and ImageConfig sets neither")
    workdir = config.get("WorkingDirectory") or own.get("WorkingDir") or None
    return ImageStart(argv, workdir)


def image_config(executor: DockerExecutor, image: str) -> dict[str, Any]:
    """The image's Config (Entrypoint, Cmd, WorkingDir, ...); ValidationError if the engine lacks it."""
    if not executor.image_exists(image):
        raise ValidationError(
            f"image {short_repr(image)} is not in the Docker engine: build it (docker build -t ...) or pull it first"
        )
    return executor.image_inspect(image).get("Config") or {}


_compile_lock = threading.Lock()


def ensure_forwarder(folder: Path) -> Path:
    """The static forwarder binary in folder, compiled from its C source on first use.

    A C compiler is all it takes (Debian's gcc and libc6-dev); -static so it runs in any image
    whatever libc it has, or none. Rebuilt when the source is newer than the binary.
    """
    target = folder / FORWARDER_NAME
    with _compile_lock:
        if target.exists() and target.stat().st_mtime >= FORWARDER_SOURCE.stat().st_mtime:
            return target
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise ImageBuildError("container-image functions need a C compiler (cc) once, to build faas's forwarder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".forwarder.")
        os.close(fd)
        try:
            done = subprocess.run(
                [compiler, "-static", "-Os", "-s", "-o", tmp, str(FORWARDER_SOURCE)],
                capture_output=True,
                timeout=COMPILE_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                raise ImageBuildError("building faas's image forwarder failed: " + done.stderr.decode(errors="replace")[-2000:])
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        except subprocess.TimeoutExpired as e:
            raise ImageBuildError(f"building faas's image forwarder took over {COMPILE_TIMEOUT_S} s") from e
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def place_forwarder(binary: Path, runtime_dir: Path) -> None:
    """Put the forwarder in an environment's runtime folder (mounted read-only at /run/faas)."""
    target = runtime_dir / FORWARDER_NAME
    try:
        os.link(binary, target)
    except FileExistsError:
        pass
    except OSError:
        shutil.copy2(binary, target)


def build_function_image(
    executor: DockerExecutor,
    context: Path,
    tag: str,
    *,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    on_line: Any = None,
) -> str:
    """docker build of a function's image from SAM's Metadata (DockerContext, Dockerfile,
    DockerTag, DockerBuildArgs), offline: never pulls and has no network."""
    if not context.is_dir():
        raise ValidationError("DockerContext is not a folder")
    if not (context / dockerfile).is_file():
        raise ValidationError(f"Dockerfile {short_repr(dockerfile)} is not in the DockerContext")
    try:
        executor.build_image(
            context,
            tag,
            dict(build_args or {}),
            on_line or (lambda line: None),
            dockerfile=dockerfile,
            labels={"faas.function-image": "1"},
        )
    except EngineError as e:
        raise ImageBuildError(str(e)) from e
    return tag


PINNED_TAG_MAX = 128  # Docker's limit on a tag


def pin_image(executor: DockerExecutor, tag: str) -> str:
    """A second tag for the image tag names now, made from its image id: <repository>:<tag>-<id12>.

    An image function built from a Dockerfile deploys under this tag, so a rebuild whose image
    differs (a save in the DockerContext) changes the function's spec and a new version goes
    live through the no-drop switch, while the version still serving keeps its own image even
    though the plain tag has moved. A rebuild that yields the same image (the build cache, a
    touch) gives the same tag, and the deploy is `unchanged`.
    """
    image_id = str(executor.image_inspect(tag).get("Id") or "")
    digest = image_id.removeprefix("sha256:")[:12]
    if not digest:
        raise ImageBuildError(f"the engine gave no image id for {short_repr(tag)}")
    repository, _, version = tag.rpartition(":")
    if not repository:
        repository, version = tag, "latest"
    version = version[: PINNED_TAG_MAX - len(digest) - 1]
    pinned = f"{repository}:{version}-{digest}"
    try:
        executor.tag_image(tag, pinned)
    except EngineError as e:
        raise ImageBuildError(str(e)) from e
    return pinned


def argv_text(argv: Sequence[str]) -> str:
    return " ".join(argv)
