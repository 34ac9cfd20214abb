"""Lambda layers: numbered, immutable layer versions, and what a function's `Layers` resolve to.

A layer version is a zip extracted once into STATE/layers/<sha256>/ (content-addressed like
function packages, with the same safety checks) and a row in SQLite. A function's spec names
its layers by version ARN; at deploy they are checked (they exist, at most 5, 250 MB together
with the function) and at start they are merged, in order, into the environment's /opt
(faas/invoke/environment.py), so a later layer's file wins over an earlier one's, as on Lambda.

A layer ARN of another account (a public layer such as Powertools', a vendor's) cannot be
fetched here: faas.yaml's `layer_map: {ARN: folder or zip}` says what stands in for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faas.deploy.packages import unpack_plain
from faas.deploy.store import Store
from faas.errors import FaasError, FunctionNotFound, ValidationError
from faas.models import ACCOUNT_ID, MAX_LAYERS, RUNTIMES, UNAVAILABLE_RUNTIMES, UNZIPPED_LIMIT, short_repr

LOG = logging.getLogger(__name__)

LAYER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,140}$")
LAYER_ARN_RE = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([A-Za-z0-9_-]{1,140})(?::(\d{1,9}))?$")
REGION = "us-east-1"
MAX_DESCRIPTION = 256
MAX_LICENSE = 512


def layer_arn(name: str, version: int | None = None, region: str = REGION) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def parse_layer_arn(arn: str) -> tuple[str, str, int | None] | None:
    """(account, name, version or None) of a layer ARN; None when it is not one."""
    match = LAYER_ARN_RE.match(arn)
    if match is None:
        return None
    return match.group(2), match.group(3), int(match.group(4)) if match.group(4) else None


def layer_not_found(arn: str) -> FunctionNotFound:
    return FunctionNotFound(f"Layer version {arn} does not exist.")


@dataclass(frozen=True)
class LayerVersion:
    name: str
    version: int
    sha256: str
    content_dir: Path
    code_size: int  # unzipped bytes: what counts against the 250 MB
    zip_size: int
    created: float
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    license_info: str = ""

    @property
    def arn(self) -> str:
        return layer_arn(self.name, self.version)

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.name)


def _from_row(row: Sequence[Any]) -> LayerVersion:
    name, version, sha, content_dir, code_size, zip_size, info_json, created = row
    info = json.loads(info_json)
    return LayerVersion(
        name=name,
        version=int(version),
        sha256=sha,
        content_dir=Path(content_dir),
        code_size=int(code_size),
        zip_size=int(zip_size),
        created=float(created),
        description=str(info.get("description", "")),
        compatible_runtimes=tuple(info.get("runtimes", ())),
        compatible_architectures=tuple(info.get("architectures", ())),
        license_info=str(info.get("license", "")),
    )


@dataclass(frozen=True)
class Resolved:
    """A function's layers as its environments mount them: folders, in order, and their size."""

    dirs: tuple[Path, ...]
    size: int


def check_name(name: str) -> str:
    if not isinstance(name, str) or not LAYER_NAME_RE.match(name):
        raise ValidationError(f"LayerName must be 1 to 140 letters, digits, '-' or '_', got {short_repr(name)}")
    return name


def check_runtimes(runtimes: Any) -> tuple[str, ...]:
    if runtimes is None:
        return ()
    if not isinstance(runtimes, list) or len(runtimes) > 15 or not all(isinstance(r, str) for r in runtimes):
        raise ValidationError(f"CompatibleRuntimes must be a list of at most 15 runtimes, got {short_repr(runtimes)}")
    unknown = [r for r in runtimes if r not in RUNTIMES and r not in UNAVAILABLE_RUNTIMES]
    if unknown:
        raise ValidationError(f"CompatibleRuntimes: unknown runtime {short_repr(unknown[0])}")
    return tuple(runtimes)


def _tree_size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                continue
            if total > UNZIPPED_LIMIT:
                return total
    return total


class LayerStore:
    """Layer versions: SQLite rows (faas/deploy/store.py) and content under root/<sha256>/."""

    def __init__(self, store: Store, root: Path, layer_map: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.layer_map = dict(layer_map or {})

    def publish(
        self,
        name: str,
        data: bytes,
        *,
        description: str = "",
        runtimes: Iterable[str] = (),
        architectures: Iterable[str] = (),
        license_info: str = "",
        reuse: bool = False,
    ) -> LayerVersion:
        """Extract and record a new version. reuse=True (a layer deployed from a folder with its
        function): the latest version is returned when its content and settings are the same,
        so a save that changes only the function's code does not make a new layer version."""
        check_name(name)
        if len(description) > MAX_DESCRIPTION or len(license_info) > MAX_LICENSE:
            raise ValidationError(f"Description must be at most {MAX_DESCRIPTION} characters, LicenseInfo {MAX_LICENSE}")
        sha, content_dir, size = unpack_plain(data, self.root, what=f"layer {name}")
        info = {
            "description": description,
            "runtimes": list(runtimes),
            "architectures": list(architectures),
            "license": license_info,
        }
        info_json = json.dumps(info, sort_keys=True)
        if reuse:
            existing = self.versions(name)
            if existing and existing[-1].sha256 == sha and _info_json(existing[-1]) == info_json:
                return existing[-1]
        row = self.store.add_layer_version(name, sha, str(content_dir), size, len(data), info_json)
        layer = _from_row(row)
        LOG.info("layer %s: version %d published (%s, %d bytes unzipped)", name, layer.version, sha[:12], size)
        return layer

    def versions(self, name: str, *, deleted: bool = False) -> list[LayerVersion]:
        return [_from_row(r) for r in self.store.layer_versions(name, deleted=deleted)]

    def all_versions(self) -> list[LayerVersion]:
        return [_from_row(r) for r in self.store.layer_versions()]

    def get(self, name: str, version: int, *, deleted: bool = False) -> LayerVersion:
        for layer in self.versions(name, deleted=deleted):
            if layer.version == version:
                return layer
        raise layer_not_found(layer_arn(name, version))

    def delete(self, name: str, version: int) -> bool:
        """Forget a version; its content stays while a function version still mounts it (as on
        Lambda, a function keeps working with a deleted layer version it already uses)."""
        return self.store.delete_layer_version(name, version)

    def by_arn(self, arn: str) -> LayerVersion:
        parsed = parse_layer_arn(arn)
        if parsed is None or parsed[2] is None:
            raise ValidationError(
                f"{short_repr(arn)} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
            )
        account, name, version = parsed
        if account != ACCOUNT_ID or version is None:
            raise layer_not_found(arn)
        return self.get(name, version)

    # ---- what a function's Layers resolve to --------------------------------------------

    def mount_dirs(self, arns: Sequence[str]) -> tuple[Path, ...]:
        """The folders an environment merges at /opt; a layer version deleted since the function
        was deployed still serves it, as on Lambda."""
        return self.resolve(arns, deleted=True).dirs if arns else ()

    def resolve(self, arns: Sequence[str], code_size: int = 0, *, deleted: bool = False, keep: Sequence[str] = ()) -> Resolved:
        """The folders of a function's layers in order, checked as Lambda checks them at
        CreateFunction: at most 5, each one existing (or mapped), 250 MB with the code.
        deleted=True, or an ARN in keep (the live version's): a deleted version still counts."""
        if len(arns) > MAX_LAYERS:
            raise ValidationError(f"Cannot reference more than {MAX_LAYERS} layers.")
        dirs: list[Path] = []
        total = code_size
        for arn in arns:
            folder, size = self._one(arn, deleted or arn in keep)
            dirs.append(folder)
            total += size
        if total > UNZIPPED_LIMIT:
            raise ValidationError(
                f"Function code combined with layers exceeds the maximum allowed size of {UNZIPPED_LIMIT} bytes. "
                f"The actual size is {total} bytes."
            )
        return Resolved(tuple(dirs), total - code_size)

    def _one(self, arn: str, deleted: bool) -> tuple[Path, int]:
        mapped = self.layer_map.get(arn)
        if mapped is not None:
            return self._mapped(arn, Path(mapped).expanduser())
        parsed = parse_layer_arn(arn)
        if parsed is None or parsed[2] is None:
            raise ValidationError(
                f"Layers: {short_repr(arn)} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
            )
        account, name, version = parsed
        assert version is not None  # checked above
        if account != ACCOUNT_ID:
            raise ValidationError(
                f"Layer version {arn} is not a local layer and faas cannot download it. Map it to a local folder "
                f"or zip with the layer's content (python/, nodejs/, bin/, lib/ at its top) in faas.yaml in the "
                f'state folder: `layer_map: {{"{arn}": /path/to/layer}}`'
            )
        try:
            layer = self.get(name, version, deleted=deleted)
        except FunctionNotFound:
            raise ValidationError(f"Layer version {arn} does not exist.") from None
        return layer.content_dir, layer.code_size

    def _mapped(self, arn: str, path: Path) -> tuple[Path, int]:
        """A public layer stood in for by a local folder (used as it is) or zip (extracted once)."""
        if path.is_dir():
            return path, _tree_size(path)
        if path.is_file():
            try:
                data = path.read_bytes()
            except OSError as e:
                raise FaasError(f"layer_map: cannot read the zip for {arn}: {e.strerror}") from None
            _sha, folder, size = unpack_plain(data, self.root, what=f"layer_map zip for {arn}")
            return folder, size
        raise ValidationError(f"layer_map maps {arn} to a path that is neither a folder nor a zip")


def _info_json(layer: LayerVersion) -> str:
    return json.dumps(
        {
            "description": layer.description,
            "runtimes": list(layer.compatible_runtimes),
            "architectures": list(layer.compatible_architectures),
            "license": layer.license_info,
        },
        sort_keys=True,
    )
