"""Lambda's layer API under /2018-10-31/layers: PublishLayerVersion, GetLayerVersion,
GetLayerVersionByArn, ListLayers, ListLayerVersions, DeleteLayerVersion.

The routes hang on the management blueprint (gateway/management.py), so its before_request
guards them with the API token like every other management route.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from flask import Response, request

from faas.deploy.layers import LayerVersion, check_name, check_runtimes, parse_layer_arn
from faas.errors import ValidationError
from faas.models import short_repr
from gateway.common import platform
from gateway.management import ARCHITECTURES, REQUEST_LIMIT, _body, _json, _page, _timestamp, bp

LOG = logging.getLogger(__name__)


def _name(layer_name: str) -> str:
    """LayerName in a path may be a name or the layer's ARN (without a version)."""
    parsed = parse_layer_arn(layer_name)
    return parsed[1] if parsed is not None and parsed[2] is None else check_name(layer_name)


def _number(version: str) -> int:
    if not version.isdigit() or len(version) > 9:
        raise ValidationError(f"VersionNumber must be a positive whole number, got {short_repr(version)}")
    return int(version)


def _item(layer: LayerVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LayerVersionArn": layer.arn,
        "Version": layer.version,
        "Description": layer.description,
        "CreatedDate": _timestamp(layer.created),
        "CompatibleRuntimes": list(layer.compatible_runtimes),
        "CompatibleArchitectures": list(layer.compatible_architectures),
    }
    if layer.license_info:
        out["LicenseInfo"] = layer.license_info
    return out


def _full(layer: LayerVersion) -> dict[str, Any]:
    sha = base64.b64encode(bytes.fromhex(layer.sha256)).decode("ascii")
    return {
        "Content": {"Location": "", "CodeSha256": sha, "CodeSize": layer.zip_size},
        "LayerArn": layer.layer_arn,
        **_item(layer),
    }


def _zip(content: Any) -> bytes:
    if not isinstance(content, Mapping):
        raise ValidationError("PublishLayerVersion: Content must be an object with ZipFile")
    others = sorted(k for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if content.get(k))
    if others:
        raise ValidationError(
            f"PublishLayerVersion: faas takes the content as ZipFile (--zip-file fileb://layer.zip), not {', '.join(others)}"
        )
    encoded = content.get("ZipFile")
    if not encoded or not isinstance(encoded, str):
        raise ValidationError("PublishLayerVersion: Content.ZipFile is required (--zip-file fileb://layer.zip)")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("PublishLayerVersion: ZipFile is not valid base64") from None


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string, got {short_repr(value)}")
    return value


@bp.post("/2018-10-31/layers/<layer_name>/versions")
def publish_layer_version(layer_name: str) -> Response:
    name = _name(layer_name)
    body = _body(REQUEST_LIMIT)
    architectures = body.get("CompatibleArchitectures") or []
    if not isinstance(architectures, list) or any(a not in ARCHITECTURES for a in architectures):
        raise ValidationError(f"CompatibleArchitectures must be a list of {list(ARCHITECTURES)}, got {short_repr(architectures)}")
    layer = (
        platform()
        .layer_store()
        .publish(
            name,
            _zip(body.get("Content")),
            description=_text(body, "Description"),
            runtimes=check_runtimes(body.get("CompatibleRuntimes")),
            architectures=architectures,
            license_info=_text(body, "LicenseInfo"),
        )
    )
    return _json(_full(layer), 201)


@bp.get("/2018-10-31/layers/<layer_name>/versions/<version>")
def get_layer_version(layer_name: str, version: str) -> Response:
    return _json(_full(platform().layer_store().get(_name(layer_name), _number(version))))


@bp.delete("/2018-10-31/layers/<layer_name>/versions/<version>")
def delete_layer_version(layer_name: str, version: str) -> Response:
    # Lambda answers 204 whether or not the version existed.
    if platform().layer_store().delete(_name(layer_name), _number(version)):
        LOG.info("layer %s: version %s deleted", layer_name, version)
    return Response(status=204)


@bp.get("/2018-10-31/layers/<layer_name>/versions")
def list_layer_versions(layer_name: str) -> Response:
    runtime = request.args.get("CompatibleRuntime")
    arch = request.args.get("CompatibleArchitecture")
    items = [
        _item(layer)
        for layer in reversed(platform().layer_store().versions(_name(layer_name)))  # newest first, as Lambda lists
        if _matches(layer, runtime, arch)
    ]
    return _json(_page(items, "LayerVersions"))


@bp.get("/2018-10-31/layers", strict_slashes=False)
def list_layers() -> Response:
    store = platform().layer_store()
    if request.args.get("find") == "LayerVersion":  # GetLayerVersionByArn
        arn = request.args.get("Arn") or ""
        return _json(_full(store.by_arn(arn)))
    runtime = request.args.get("CompatibleRuntime")
    arch = request.args.get("CompatibleArchitecture")
    latest: dict[str, LayerVersion] = {}
    for layer in store.all_versions():
        if _matches(layer, runtime, arch):
            latest[layer.name] = layer  # ordered by version: the last is the latest matching
    items = [
        {"LayerName": name, "LayerArn": layer.layer_arn, "LatestMatchingVersion": _item(layer)}
        for name, layer in sorted(latest.items())
    ]
    return _json(_page(items, "Layers"))


def _matches(layer: LayerVersion, runtime: str | None, arch: str | None) -> bool:
    return (not runtime or runtime in layer.compatible_runtimes) and (not arch or arch in layer.compatible_architectures)
