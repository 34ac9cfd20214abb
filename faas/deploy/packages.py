"""Function packages: zipping a folder, and turning an uploaded zip into code on disk.

An uploaded zip is untrusted input that ends up mounted into containers, so unpack()
checks everything it can before writing a byte, extracts only into a private temp
folder, and publishes the result with one atomic rename. Extracted packages are
content-addressed (packages_root/<sha256>/), which makes identical deploys free and
lets the store refer to code by hash.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import io
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from faas.deploy.yaml_input import load_settings
from faas.errors import FaasError, PackageTooLarge, ValidationError
from faas.models import UNZIPPED_LIMIT, ZIPPED_LIMIT, FunctionSpec, resolve_runtime, short_repr

LOG = logging.getLogger(__name__)

SPEC_NAMES = ("function.yaml", "function.yml")
# Names never packaged: build debris, VCS metadata, editor droppings, faas's own state.
IGNORED = (
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    "*.swp",
    "*.swo",
    "*~",
    ".#*",
    "#*#",
    ".faas",
)
# A zip's entries are fixed at 1980-01-01 so that the same files always zip to the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MAX_COMPONENT = 255  # bytes per path component, the usual filesystem limit
# Bytes in an entry's whole path: Linux's PATH_MAX (4096) counts the store's own folder too,
# so half of it is left for that; no real package comes near.
MAX_PATH = 2048
BUILD_KEY = "build"  # function.yaml's build command (faas/deploy/builds.py)
MAX_BUILD_COMMAND = 4096
MAX_SPEC_BYTES = 1024 * 1024  # function.yaml is a few hundred bytes; anything this big is not one
# Zip bombs: an entry may unpack to RATIO_GRACE bytes whatever its ratio (tiny files compress
# well), beyond that to at most MAX_RATIO times its compressed size (deflate's own ceiling is
# about 1032:1; code compresses 3-10:1). Checked while inflating, before the bytes are written.
MAX_RATIO = 100
RATIO_GRACE = 1024 * 1024
MAX_ENTRIES = 100_000  # files and folders in one package: each costs an inode and a syscall or three
CHUNK = 1024 * 1024
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600.0  # a temp folder this old belongs to a deploy that crashed
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755  # the function runs as another uid (993) and must traverse and read


def is_ignored(rel_path: str | os.PathLike[str]) -> bool:
    """True if any component of the path is a name faas never packages.

    Checked per component so that everything under an ignored folder (.git/...)
    is ignored too; the file watcher relies on that to skip noise.
    """
    text = os.fspath(rel_path).replace("\\", "/")
    for part in text.split("/"):
        if part and any(fnmatch.fnmatchcase(part, pattern) for pattern in IGNORED):
            return True
    return False


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB ({size} bytes)"


def _zipped_too_large(size: int) -> PackageTooLarge:
    return PackageTooLarge(
        f"package is {_human(size)} zipped, over Lambda's 50 MB limit ({ZIPPED_LIMIT} bytes); "
        "move large dependencies or data out of the function folder"
    )


def _unzipped_too_large(size: int, *, at_least: bool = False) -> ValidationError:
    qualifier = "at least " if at_least else ""
    return ValidationError(f"package is {qualifier}{_human(size)} unzipped, over Lambda's 250 MB limit ({UNZIPPED_LIMIT} bytes)")


def parse_spec(text: bytes | str, source: str) -> FunctionSpec:
    """Parse and validate the text of a function.yaml; `source` names it in every message."""
    if len(text) > MAX_SPEC_BYTES:  # YAML parsing is slow and memory-hungry: refuse before it starts
        raise ValidationError(f"{source}: is {len(text)} bytes, over {MAX_SPEC_BYTES}; that is not a function.yaml")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationError(f"{source}: not UTF-8 text (byte {e.start})") from e
    try:
        raw: Any = load_settings(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(p for p in (e.context, e.problem) if p) or str(e)
        raise ValidationError(f"{source}: not valid YAML{where}: {problem}") from e
    except yaml.YAMLError as e:
        raise ValidationError(f"{source}: not valid YAML: {e}") from e
    except RecursionError:
        raise ValidationError(f"{source}: nested too deeply to be a function.yaml") from None
    if raw is None:
        raise ValidationError(f"{source}: is empty; it needs at least 'name: <function name>'")
    if isinstance(raw, dict) and BUILD_KEY in raw:  # read by faas/deploy/builds.py on the host, not a setting
        build = raw.pop(BUILD_KEY)
        if not isinstance(build, str) or not build.strip() or len(build) > MAX_BUILD_COMMAND:
            raise ValidationError(f"{source}: build must be a command line (at most {MAX_BUILD_COMMAND} characters)")
    return FunctionSpec.from_mapping(raw, source=source)


def read_build_command(folder: Path) -> str | None:
    """function.yaml's `build:` command, if it has one (read_spec() validated it)."""
    try:
        raw = load_settings(_spec_file(Path(folder)).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    build = raw.get(BUILD_KEY) if isinstance(raw, dict) else None
    return build if isinstance(build, str) and build.strip() else None


def _spec_file(folder: Path) -> Path:
    found = [folder / n for n in SPEC_NAMES if (folder / n).is_file()]
    if not found:
        raise ValidationError(f"{folder}: no function.yaml found (every function folder needs one, with at least 'name:')")
    if len(found) > 1:
        raise ValidationError(f"{folder}: both function.yaml and function.yml exist; keep only one")
    return found[0]


def read_spec(folder: Path) -> FunctionSpec:
    """Read and validate folder/function.yaml (or function.yml)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError(f"{folder}: not a folder")
    path = _spec_file(folder)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)  # a huge file (or a link to /dev/zero) is not read whole
    except OSError as e:
        raise ValidationError(f"{path}: cannot be read: {e.strerror}") from e
    return parse_spec(data, str(path))


# ---------------------------------------------------------------------------- zipping


def _walk(root: Path, current: Path, rel: str, stack: tuple[Path, ...]) -> Iterator[tuple[str, Path, int]]:
    """Yield (relative path, real file, mode) in sorted order.

    Symlinks are followed only when they stay inside the function folder: on Lambda
    a zip holds files, so a link to elsewhere would deploy code the folder does not
    contain. `stack` holds the real folders being walked, to refuse link loops.
    """
    try:
        names = sorted(os.listdir(current))
    except OSError as e:
        raise ValidationError(f"{current}: cannot be read: {e.strerror}") from e
    for name in names:
        rel_path = f"{rel}/{name}" if rel else name
        if is_ignored(name):
            continue
        path = current / name
        real = path
        if path.is_symlink():
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError) as e:
                raise ValidationError(f"{rel_path}: broken symlink ({os.readlink(path)})") from e
            if real != root and root not in real.parents:
                raise ValidationError(
                    f"{rel_path}: symlink points outside the function folder (to {real}); "
                    "copy what it points to into the folder instead"
                )
        try:
            st = real.stat()
        except OSError as e:
            raise ValidationError(f"{rel_path}: cannot be read: {e.strerror}") from e
        if stat.S_ISDIR(st.st_mode):
            if real in stack:
                raise ValidationError(f"{rel_path}: symlink loop (points back to {real})")
            yield from _walk(root, real, rel_path, stack + (real,))
        elif stat.S_ISREG(st.st_mode):
            yield rel_path, real, stat.S_IMODE(st.st_mode)
        else:
            LOG.warning("zip %s: skipping %s, not a regular file", root, rel_path)


LAYERS_PREFIX = ".faas-layers/"  # in a zip: the layers a function.yaml names by folder or .zip
_LAYER_ENTRY_RE = re.compile(r"^\.faas-layers/([0-4])/([A-Za-z0-9_-]{1,140})\.zip$")


def is_layer_arn(entry: str) -> bool:
    return entry.startswith("arn:")


def _layer_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:140] or "layer"


def _local_layers(folder: Path, spec: FunctionSpec | None) -> list[tuple[int, Path]]:
    """(index in spec.layers, real path) of each layer given as a folder or .zip, not an ARN."""
    if spec is None:
        return []
    out = []
    for i, entry in enumerate(spec.layers):
        if is_layer_arn(entry):
            continue
        path = (folder / entry).resolve()
        if not (path.is_dir() or (path.is_file() and path.name.lower().endswith(".zip"))):
            raise ValidationError(f"layers: {short_repr(entry)} is not a folder or .zip (relative to the function folder)")
        out.append((i, path))
    return out


def layer_entries(
    layers: list[tuple[int, Path]], spec: FunctionSpec | None, names: Mapping[str, str] | None = None
) -> list[tuple[str, bytes]]:
    """The zip entries that carry a spec's folder and .zip layers to the gateway."""
    out: list[tuple[str, bytes]] = []
    for i, path in layers:
        if path.is_dir():
            data = _zip_bytes(_sized(path), [])
        else:
            data = path.read_bytes()
            if len(data) > ZIPPED_LIMIT:
                raise _zipped_too_large(len(data))
        given = (names or {}).get(spec.layers[i]) if spec is not None else None
        out.append((f"{LAYERS_PREFIX}{i}/{given or _layer_name(path)}.zip", data))
    return out


def local_layers(folder: Path, spec: FunctionSpec | None) -> list[tuple[int, Path]]:
    return _local_layers(Path(folder).resolve(), spec)


def _zip_bytes(files: list[tuple[str, Path, int]], extra: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel, real, mode in files:
            info = zipfile.ZipInfo(rel, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, so that external_attr carries the mode bits
            info.external_attr = (stat.S_IFREG | (mode & 0o777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(real, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            if buffer.tell() > ZIPPED_LIMIT:
                raise _zipped_too_large(buffer.tell())
        for rel, data in extra:
            info = zipfile.ZipInfo(rel, date_time=ZIP_EPOCH)
            info.create_system, info.external_attr = 3, (stat.S_IFREG | FILE_MODE) << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    if len(data) > ZIPPED_LIMIT:
        raise _zipped_too_large(len(data))
    return data


def _sized(root: Path) -> list[tuple[str, Path, int]]:
    return _checked_size(sorted(_walk(root, root, "", (root,))))


def _checked_size(files: list[tuple[str, Path, int]]) -> list[tuple[str, Path, int]]:
    """files, refused (before anything is zipped) when together they are over Lambda's unzipped limit."""
    total = 0
    for _rel, real, _mode in files:
        total += real.stat().st_size
        if total > UNZIPPED_LIMIT:
            raise _unzipped_too_large(total, at_least=True)
    return files


def zip_folder(
    folder: Path,
    *,
    validate: bool = True,
    spec: FunctionSpec | None = None,
    extra: Sequence[Path] = (),
    skip: Collection[str] = (),
    layer_names: Mapping[str, str] | None = None,
    layer_root: Path | None = None,
) -> bytes:
    """Zip a function folder the way unpack() expects, byte-for-byte reproducibly.

    function.yaml is validated first so that a broken function is refused on the
    developer's machine, before anything is uploaded. validate=False skips that, for the
    file watcher, which lets the gateway refuse a broken save so that `faas ls` and
    `faas logs` show why. With `spec` (a SAM template's function, or a configuration change
    through the management API) the folder needs no function.yaml: any there is left out
    and `spec` is written as the zip's function.yaml.

    Layers the spec names by folder or .zip travel in the zip under .faas-layers/<index>/
    (a folder zipped the same reproducible way), so every deploy path (faas deploy, the
    watcher, a template) carries them; a layer folder inside the function folder is not
    also part of the function's code. layer_names: a layer's name by its entry in spec.layers
    (a template's LayerName), else the folder's or zip's own name.

    extra: folders whose files join the package where the folder has none of that name (the
    installed dependencies, faas/deploy/dependencies.py); skip: top-level names left out;
    layer_root: what the spec's layer folders are relative to, when folder is a build's output.
    """
    folder = Path(folder)
    root = folder.resolve()
    read: FunctionSpec | None = spec
    if read is None:
        try:
            read = read_spec(folder)
        except ValidationError:
            if validate:
                raise
    name = read.name if read is not None else "?"
    layers = _local_layers(Path(layer_root).resolve() if layer_root is not None else root, read)
    files = [
        f
        for f in _walk(root, root, "", (root,))
        if f[0].split("/", 1)[0] not in skip and not any(f[1] == p or p in f[1].parents for _i, p in layers)
    ]
    taken = {f[0] for f in files}
    for other in extra:
        other = Path(other).resolve()
        added = [f for f in _walk(other, other, "", (other,)) if f[0] not in taken]
        taken.update(f[0] for f in added)
        files.extend(added)
    files = _checked_size(sorted(files))
    if spec is not None:
        files = [f for f in files if f[0] not in SPEC_NAMES]
    entries = layer_entries(layers, read, layer_names)
    if spec is not None:
        entries.append((SPEC_NAMES[0], yaml.safe_dump(spec.to_mapping(), sort_keys=True).encode()))
    data = _zip_bytes(files, entries)
    LOG.debug("zipped %s (function %s): %d files, %d layers, %d bytes", folder, name, len(files), len(layers), len(data))
    return data


# -------------------------------------------------------------------------- unzipping


@dataclass(frozen=True)
class Package:
    """An extracted, validated package, ready to become a version."""

    spec: FunctionSpec
    sha256: str
    code_dir: Path
    unzipped_size: int
    zipped_size: int


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    path: str  # normalised: '/'-separated, no '.' components, no trailing '/'
    is_dir: bool
    executable: bool


_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_TYPE_NAMES = {
    stat.S_IFLNK: "a symlink",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def _check_entry(info: zipfile.ZipInfo) -> _Entry | None:
    """Refuse an entry that could write outside the package or create something other
    than a plain file or folder; None for entries that name the root itself ('./')."""
    raw = info.filename
    name = raw.replace("\\", "/")  # zips made on Windows may use backslashes
    shown = short_repr(raw)
    if name.startswith("/"):
        raise ValidationError(f"zip entry {shown} has an absolute path; entries must be relative to the package root")
    if _DRIVE_RE.match(name):
        raise ValidationError(f"zip entry {shown} has a drive letter; entries must be relative to the package root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValidationError(f"zip entry {shown} contains a '..' component, which would write outside the package")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
            raise ValidationError(f"zip entry {shown} has a path component over {MAX_COMPONENT} bytes")
    if len("/".join(parts).encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise ValidationError(f"zip entry {shown} has a path over {MAX_PATH} bytes")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in _TYPE_NAMES:
        raise ValidationError(f"zip entry {shown} is {_TYPE_NAMES[kind]}; packages may only hold files and folders")
    if info.flag_bits & 0x1:
        raise ValidationError(f"zip entry {shown} is encrypted; upload an unencrypted zip")
    if not parts:
        return None
    is_dir = name.endswith("/") or kind == stat.S_IFDIR
    return _Entry(info, "/".join(parts), is_dir, bool(mode & 0o111) and not is_dir)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise ValidationError(f"zip entry {short_repr(info.filename)} is corrupt or unsupported: {e}") from e
    if len(data) > limit:
        raise ValidationError(f"{short_repr(info.filename)} is over {limit} bytes; that is not a function.yaml")
    return data


def _spec_from_zip(zf: zipfile.ZipFile, entries: list[_Entry]) -> FunctionSpec:
    by_path = {e.path: e for e in entries if not e.is_dir}
    present = [n for n in SPEC_NAMES if n in by_path]
    if not present:
        nested = sorted(e.path for e in entries if not e.is_dir and e.path.rsplit("/", 1)[-1] in SPEC_NAMES)
        hint = f" (found {nested[0]}: zip the folder's contents, not the folder itself)" if nested else ""
        raise ValidationError(f"package has no function.yaml at the top of the zip{hint}")
    if len(present) > 1:
        raise ValidationError("package has both function.yaml and function.yml; keep only one")
    entry = by_path[present[0]]
    return parse_spec(_read_member(zf, entry.info, MAX_SPEC_BYTES), entry.path)


def _check_layout(entries: list[_Entry]) -> None:
    """Two entries for one path, or a file where a folder must be, would make the
    extracted tree depend on entry order; refuse instead of guessing."""
    files: set[str] = set()
    dirs: set[str] = set()
    for e in entries:
        if e.is_dir:
            dirs.add(e.path)
        elif e.path in files:
            raise ValidationError(f"zip has two entries for {short_repr(e.path)}")
        else:
            files.add(e.path)
        parts = e.path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(files & dirs)
    if clash:
        raise ValidationError(f"zip entry {short_repr(clash[0])} is both a file and a folder")


def _open_new(path: Path, mode: int) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, mode), "wb")


def _extract(zf: zipfile.ZipFile, entries: list[_Entry], dest: Path) -> tuple[int, list[tuple[str, bool, str]]]:
    """Extract into dest (a fresh private folder); count the bytes really written,
    since a zip's declared sizes are only a claim."""
    total = 0
    digests: list[tuple[str, bool, str]] = []
    for entry in sorted(entries, key=lambda e: e.path):
        target = dest.joinpath(*entry.path.split("/"))
        if entry.is_dir:
            target.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            continue
        target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = EXEC_MODE if entry.executable else FILE_MODE
        digest = hashlib.sha256()
        written = 0
        most = max(RATIO_GRACE, MAX_RATIO * entry.info.compress_size)
        try:
            with zf.open(entry.info) as src, _open_new(target, mode) as dst:
                while chunk := src.read(CHUNK):
                    total += len(chunk)
                    written += len(chunk)
                    if total > UNZIPPED_LIMIT:
                        raise _unzipped_too_large(total, at_least=True)
                    if written > most:
                        raise ValidationError(
                            f"zip entry {short_repr(entry.info.filename)} unpacks to more than {MAX_RATIO} times its compressed "
                            f"size ({entry.info.compress_size} bytes): refused as a zip bomb"
                        )
                    digest.update(chunk)
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise ValidationError(f"zip entry {short_repr(entry.info.filename)} is corrupt or unsupported: {e}") from e
        os.chmod(target, mode)  # the umask must not take away the sandbox user's read access
        digests.append((entry.path, entry.executable, digest.hexdigest()))
    # mkdir(mode=...) is subject to the umask too.
    for dirpath, dirnames, _ in os.walk(dest):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), DIR_MODE)
    os.chmod(dest, DIR_MODE)
    return total, digests


def content_hash(files: list[tuple[str, bool, str]], spec: FunctionSpec) -> str:
    """Hash what the function is, not how it was zipped: timestamps, entry order and
    compression do not count, so re-deploying the same code is recognised as such."""
    h = hashlib.sha256()
    for path, executable, digest in sorted(files):
        h.update(f"{path}\0{int(executable)}\0{digest}\n".encode("utf-8", "surrogateescape"))
    h.update(b"spec\0")
    h.update(json.dumps(spec.to_mapping(), sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def unpack(
    data: bytes,
    packages_root: Path,
    *,
    expected_name: str | None = None,
    spec_override: FunctionSpec | None = None,
    runtime_fallback: Mapping[str, str] | None = None,
    publish_layer: Callable[[str, bytes], str] | None = None,
) -> Package:
    """Validate an uploaded zip and extract it to packages_root/<sha256>/.

    Every check that can be made from the zip's directory is made before anything is
    written; extraction goes to a private temp folder that is removed on any failure,
    so a refused deploy leaves no trace. spec_override, when given, is the function's
    configuration and the zip needs no function.yaml (one inside is then just a file).
    publish_layer(name, zip) -> layer version ARN: the layers sent under .faas-layers/
    (zip_folder) are published with it and the spec names them by ARN from then on.
    """
    packages_root = Path(packages_root)
    if len(data) > ZIPPED_LIMIT:
        raise _zipped_too_large(len(data))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise ValidationError(f"package is not a valid zip file: {e}") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ValidationError(f"package has {len(infos)} entries, over {MAX_ENTRIES}")
        entries = [e for e in (_check_entry(i) for i in infos) if e is not None]
        _check_layout(entries)
        layer_entries = [e for e in entries if e.path.startswith(LAYERS_PREFIX) or e.path == LAYERS_PREFIX[:-1]]
        entries = [e for e in entries if e not in layer_entries]
        declared = sum(e.info.file_size for e in entries)
        if declared > UNZIPPED_LIMIT:
            raise _unzipped_too_large(declared)
        spec = spec_override if spec_override is not None else _spec_from_zip(zf, entries)
        spec = _with_layer_arns(zf, spec, layer_entries, publish_layer)
        # An unavailable runtime is refused here, before anything is written (or moved by runtime_fallback).
        spec = resolve_runtime(spec, runtime_fallback or {})
        if expected_name is not None and spec.name != expected_name:
            raise ValidationError(
                f"function.yaml names the function {spec.name!r} but it was deployed as {expected_name!r}; the two must match"
            )
        try:  # a read-only or full store fails here already
            packages_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=packages_root))
        except OSError as e:
            raise FaasError(f"could not write package for {spec.name} under {packages_root}: {e}") from e
        try:
            unzipped, files = _extract(zf, entries, tmp)
            sha = content_hash(files, spec)
            target = packages_root / sha
            if _publish(tmp, target):
                LOG.info("function %s: new package %s (%d bytes unzipped)", spec.name, sha[:12], unzipped)
            else:
                LOG.info("function %s: package %s already present, reusing it", spec.name, sha[:12])
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno == errno.ENAMETOOLONG:  # a user's error; the message must not show the store's path
                raise ValidationError("package has a file path too long to be written; shorten its folders' names") from None
            raise FaasError(f"could not write package for {spec.name} under {packages_root}: {e}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Package(spec=spec, sha256=sha, code_dir=target, unzipped_size=unzipped, zipped_size=len(data))


def unpack_plain(data: bytes, root: Path, *, what: str) -> tuple[str, Path, int]:
    """A zip with no function.yaml (a layer) extracted to root/<sha256>/ with every check of
    unpack(); (sha256 of its files, the folder, unzipped bytes)."""
    root = Path(root)
    if len(data) > ZIPPED_LIMIT:
        raise _zipped_too_large(len(data))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise ValidationError(f"{what}: not a valid zip file: {e}") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ValidationError(f"{what}: {len(infos)} entries, over {MAX_ENTRIES}")
        entries = [e for e in (_check_entry(i) for i in infos) if e is not None]
        _check_layout(entries)
        declared = sum(i.file_size for i in infos)
        if declared > UNZIPPED_LIMIT:
            raise _unzipped_too_large(declared)
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
        except OSError as e:
            raise FaasError(f"could not write {what}: {e.strerror}") from e
        try:
            unzipped, files = _extract(zf, entries, tmp)
            h = hashlib.sha256()
            for path, executable, digest in sorted(files):
                h.update(f"{path}\0{int(executable)}\0{digest}\n".encode("utf-8", "surrogateescape"))
            sha = h.hexdigest()
            target = root / sha
            _publish(tmp, target)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno == errno.ENAMETOOLONG:
                raise ValidationError(f"{what}: a file path too long to be written") from None
            raise FaasError(f"could not write {what}: {e.strerror}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return sha, target, unzipped


def _with_layer_arns(
    zf: zipfile.ZipFile, spec: FunctionSpec, entries: list[_Entry], publish: Callable[[str, bytes], str] | None
) -> FunctionSpec:
    """spec with each layer given as a folder or .zip replaced by the ARN of the version its
    content (sent under .faas-layers/<index>/) was published as."""
    sent: dict[int, _Entry] = {}
    for e in entries:
        if e.is_dir:
            continue
        match = _LAYER_ENTRY_RE.match(e.path)
        if match is None:
            raise ValidationError(f"zip entry {short_repr(e.path)}: {LAYERS_PREFIX} holds only the layers function.yaml names")
        sent[int(match.group(1))] = e
    layers = list(spec.layers)
    for i, entry in enumerate(layers):
        if is_layer_arn(entry):
            continue
        got = sent.pop(i, None)
        if got is None:
            raise ValidationError(
                f"layers: {short_repr(entry)} is a folder or .zip whose content was not sent with the code; "
                "deploy the folder with `faas deploy` (or name the layer by its version ARN)"
            )
        if publish is None:
            raise ValidationError("layers given as folders or .zip files are deployed with `faas deploy`, not here")
        name = got.path.rsplit("/", 1)[-1][:-4]
        layers[i] = publish(name, _read_member(zf, got.info, ZIPPED_LIMIT))
    if sent:
        raise ValidationError(f"zip entry {short_repr(sent[min(sent)].path)}: no layer of function.yaml at that position")
    return replace(spec, layers=tuple(layers)) if layers != list(spec.layers) else spec


def _publish(tmp: Path, target: Path) -> bool:
    """Move tmp into place; False if identical content was already there (then tmp is
    discarded). Two identical deploys may race: whoever renames second just reuses."""
    if target.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        _touch(target)
        return False
    try:
        os.rename(tmp, target)
        return True
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST) and target.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            _touch(target)
            return False
        raise


def _touch(path: Path) -> None:
    # Reused packages count as fresh for remove_unreferenced(min_age_s=...).
    try:
        os.utime(path)
    except OSError:
        pass


def remove_unreferenced(packages_root: Path, keep: set[str], *, min_age_s: float = 0.0) -> int:
    """Delete extracted packages no version refers to; returns how many went.

    The caller must not run this concurrently with a deploy that has unpacked but not
    yet recorded its package, or give a min_age_s that covers that window. Temp
    folders left by crashed deploys are removed once they are an hour old.
    """
    packages_root = Path(packages_root)
    if not packages_root.is_dir():
        return 0
    now = time.time()
    removed = 0
    for child in packages_root.iterdir():
        try:
            age = now - child.lstat().st_mtime
        except OSError:
            continue
        if child.name.startswith(TMP_PREFIX):
            if age > STALE_TMP_S:
                LOG.info("removing stale temp folder %s", child)
                shutil.rmtree(child, ignore_errors=True)
            continue
        if not SHA_RE.match(child.name) or child.name in keep or age < min_age_s or child.is_symlink():
            continue
        shutil.rmtree(child, ignore_errors=True)
        if not child.exists():
            removed += 1
            LOG.info("removed unreferenced package %s", child.name[:12])
    return removed
