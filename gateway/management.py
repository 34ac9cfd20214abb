"""Lambda's management REST API, enough of it for the AWS CLI and boto3 to manage functions:
create-function --zip-file, update-function-code, update-function-configuration,
get-function(-configuration), list-functions, list-versions-by-function, delete-function,
publish-version, create/get/list/update/delete-alias, put/get/delete-function-concurrency,
the layer API (gateway/layers_api.py),
put/get/delete-function-event-invoke-config (destinations: a function or an SQS queue),
the event source mapping API for SQS (gateway/event_sources_api.py). (invoke is gateway/lambda_api.py.)

Every change goes through Platform.deploy_zip with the configuration given as spec_override,
so a function made with the AWS CLI is validated, stored and switched exactly as one made
with `faas deploy`, and refused with the same messages. How faas versions map onto Lambda's:
every deploy already makes an immutable numbered version and makes it live; the live version
is what Lambda calls $LATEST, and publish-version names the live version's number (publishing
unchanged code twice returns the same version, as on Lambda).

When the gateway has an API token, these routes want it as the AWS access key id (the
`Credential=` of the SigV4 Authorization header): `AWS_ACCESS_KEY_ID=$FAAS_API_TOKEN aws ...`.
The signature itself is not checked: the token is what guards deploys, as on /system/*.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import uuid
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from faas.deploy.layers import parse_layer_arn
from faas.deploy.packages import zip_folder
from faas.errors import (
    FaasError,
    FunctionNotFound,
    PackageTooLarge,
    PreconditionFailed,
    ResourceConflict,
    ValidationError,
)
from faas.events.destinations import check_destination_config
from faas.models import FunctionSpec, FunctionVersion, function_arn, short_repr
from gateway.common import BodyTooLarge, api_token, platform, read_body, token_presented, unrecognized
from gateway.lambda_api import parse_function_name

LOG = logging.getLogger(__name__)

# Lambda's own limit on a CreateFunction/UpdateFunctionCode request: a 50 MB zip, base64-encoded.
REQUEST_LIMIT = 69905067
JSON_LIMIT = 256 * 1024  # any other management request
LATEST = "$LATEST"
ALIAS_RE = re.compile(r"^(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}$")
MAX_ITEMS = 10000
# Settings Lambda accepts that would make code behave differently here than there: refused.
UNSUPPORTED = {
    "FileSystemConfigs": "EFS file systems",
    "KMSKeyArn": "KMS keys for environment variables",
    "CodeSigningConfigArn": "code signing",
    "DeadLetterConfig": "dead-letter queues (faas keeps failed async events under failures/ in its state dir)",
    "CapacityProviderConfig": "capacity providers",
    "DurableConfig": "durable functions",
}
ARCHITECTURES = ("x86_64", "arm64")

bp = Blueprint("management", __name__)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


@bp.before_request
def _check_token() -> None:
    """With an API token configured, the management API wants it as the access key id (or, from
    faas's own CLI, as its bearer token)."""
    token = api_token()
    if token and not token_presented(token, request.headers.get("Authorization", "")):
        raise unrecognized(
            "The security token included in the request is invalid: "
            "this faas gateway wants its API token as the AWS access key id",
            403,
        )


# ---------------------------------------------------------------------------- helpers


def _body(limit: int = JSON_LIMIT) -> dict[str, Any]:
    try:
        data = read_body(limit)
    except BodyTooLarge:
        raise PackageTooLarge(f"Request must be smaller than {limit} bytes for the {request.endpoint} operation") from None
    if not data.strip():
        return {}
    try:
        parsed = json.loads(data)
    except ValueError as e:
        raise ValidationError(f"the request body is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise ValidationError("the request body must be a JSON object")
    return parsed


def _name(function: str) -> tuple[str, str | None]:
    return parse_function_name(function, request.args.get("Qualifier"))


def _timestamp(epoch: float) -> str:
    """Lambda's LastModified format: 2024-05-01T12:00:00.000+0000."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def code_sha256(fv: FunctionVersion) -> str:
    """Lambda's CodeSha256 is base64 of a SHA-256; faas's is of the package's content (files
    and configuration), not of the uploaded zip's bytes."""
    return base64.b64encode(bytes.fromhex(fv.code_sha256)).decode("ascii")


def revision_id(fv: FunctionVersion, settings: Mapping[str, Any]) -> str:
    """Changes whenever the code, the configuration or the role change (Lambda's RevisionId)."""
    key = f"{fv.name}:{fv.version}:{fv.code_sha256}:{settings.get('role', '')}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def configuration(fv: FunctionVersion, label: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda's FunctionConfiguration for one version; label is $LATEST or the number."""
    spec = fv.spec
    out: dict[str, Any] = {
        "FunctionName": fv.name,
        "FunctionArn": function_arn(fv.name, None if label == LATEST else label),
        "Runtime": spec.runtime,
        "Role": settings.get("role") or f"arn:aws:iam::123456789012:role/{fv.name}-role",
        "Handler": spec.handler,
        "CodeSize": fv.code_size,
        "Description": spec.description,
        "Timeout": spec.timeout,
        "MemorySize": spec.memory,
        "LastModified": _timestamp(fv.created),
        "CodeSha256": code_sha256(fv),
        "Version": label,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision_id(fv, settings),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": list(settings.get("architectures") or ["x86_64"]),
        "EphemeralStorage": {"Size": spec.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fv.name}"},
    }
    if spec.package_type == "Image":
        out["PackageType"] = "Image"
        del out["Runtime"], out["Handler"]
        if spec.image_config:
            out["ImageConfigResponse"] = {
                "ImageConfig": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.image_config.items()}
            }
    if spec.environment:
        out["Environment"] = {"Variables": dict(spec.environment)}
    if spec.layers:
        out["Layers"] = _layers(fv)
    return out


def _describe(fv: FunctionVersion, label: str) -> dict[str, Any]:
    return configuration(fv, label, platform().settings(fv.name))


def _layers(fv: FunctionVersion) -> list[dict[str, Any]]:
    """Lambda's Layers of a FunctionConfiguration: each ARN with its zip's size."""
    out: list[dict[str, Any]] = []
    store = platform().layer_store()
    for arn in fv.spec.layers:
        try:
            size = store.by_arn(arn).zip_size
        except FaasError:  # mapped (layer_map) or deleted since: the ARN is still what the function uses
            size = 0
        out.append({"Arn": arn, "CodeSize": size})
    return out


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    """Settings that change how code runs on Lambda and that faas cannot reproduce are refused
    by name, never silently dropped."""
    problems = [f"{key} ({what})" for key, what in UNSUPPORTED.items() if body.get(key) not in (None, [], {}, "")]
    snap = body.get("SnapStart") or {}
    if isinstance(snap, dict) and snap.get("ApplyOn") not in (None, "None"):
        problems.append("SnapStart")
    if body.get("PackageType") not in (None, "Zip", "Image"):
        raise ValidationError(f"PackageType must be Zip or Image, got {short_repr(body.get('PackageType'))}")
    arch = body.get("Architectures")
    if arch is not None and (not isinstance(arch, list) or len(arch) != 1 or arch[0] not in ARCHITECTURES):
        raise ValidationError(f"Architectures must be one of {list(ARCHITECTURES)} (a list of one), got {arch!r}")
    if problems:
        raise ValidationError(f"faas does not support {', '.join(problems)}; remove them to run this function locally")


def _spec(name: str, body: Mapping[str, Any], base: Mapping[str, Any], operation: str) -> FunctionSpec:
    """A FunctionSpec from Lambda's request fields over `base` (function.yaml keys), validated
    by the same code as function.yaml."""
    raw = dict(base)
    raw["name"] = name
    fields = {
        "Runtime": "runtime",
        "Handler": "handler",
        "MemorySize": "memory",
        "Timeout": "timeout",
        "Description": "description",
    }
    for key, target in fields.items():
        if key in body:
            raw[target] = body[key]
    if "Runtime" in body:
        raw.pop("requested_runtime", None)  # a new runtime: runtime_fallback is applied to it afresh
    if "Environment" in body:
        env = body["Environment"] or {}
        if not isinstance(env, dict):
            raise ValidationError(f"{operation}: Environment must be an object with Variables")
        raw["environment"] = env.get("Variables") or {}
    if "Layers" in body:
        layers = body["Layers"] or []
        if not isinstance(layers, list) or not all(isinstance(a, str) and parse_layer_arn(a) for a in layers):
            raise ValidationError(f"{operation}: Layers must be a list of layer version ARNs, got {short_repr(layers)}")
        if any(parse_layer_arn(a)[2] is None for a in layers):  # type: ignore[index]
            raise ValidationError(f"{operation}: each layer ARN must name a version (...:layer:NAME:VERSION)")
        raw["layers"] = layers
    if body.get("PackageType") == "Image":  # docs/image-functions.md
        code = body.get("Code") or {}
        raw["package_type"] = "Image"
        raw["image_uri"] = code.get("ImageUri") if isinstance(code, Mapping) else None
        raw.pop("runtime", None)
        raw.setdefault("handler", "")
    if raw.get("package_type") == "Image" and "ImageConfig" in body:
        raw["image_config"] = body["ImageConfig"] or {}
    if "EphemeralStorage" in body:
        storage = body["EphemeralStorage"] or {}
        raw["ephemeral_storage"] = storage.get("Size") if isinstance(storage, dict) else storage
    return FunctionSpec.from_mapping(raw, source=operation)


def _zip_file(code: Any, operation: str) -> bytes:
    """The ZipFile of a request (base64 in JSON); S3 locations and images are refused."""
    if not isinstance(code, Mapping):
        raise ValidationError(f"{operation}: Code must be an object with ZipFile")
    others = sorted(k for k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri") if code.get(k))
    if others:
        raise ValidationError(f"{operation}: faas takes the code as ZipFile (--zip-file fileb://f.zip), not {', '.join(others)}")
    encoded = code.get("ZipFile")
    if not encoded:
        raise ValidationError(f"{operation}: ZipFile is required (--zip-file fileb://function.zip)")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValidationError(f"{operation}: ZipFile is not valid base64") from None


def _empty_zip() -> bytes:
    """An Image function's package: its code is in its image, the package store keeps an empty zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w"):
        pass
    return buf.getvalue()


def _check_revision(body: Mapping[str, Any], fv: FunctionVersion) -> None:
    given = body.get("RevisionId")
    if given and given != revision_id(fv, platform().settings(fv.name)):
        raise PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
        )


def _store_settings(name: str, body: Mapping[str, Any]) -> None:
    plat = platform()
    if body.get("Role"):
        plat.put_setting(name, "role", str(body["Role"]))
    if body.get("Architectures"):
        plat.put_setting(name, "architectures", list(body["Architectures"]))
    if isinstance(body.get("Tags"), dict):
        plat.put_setting(name, "tags", {**plat.settings(name).get("tags", {}), **body["Tags"]})


def _page(items: list[Any], key: str) -> dict[str, Any]:
    """Lambda's Marker/MaxItems paging: the marker is the index of the next item."""
    raw_max = request.args.get("MaxItems", "50")
    marker = request.args.get("Marker") or "0"
    try:
        max_items, start = int(raw_max), int(marker)
    except ValueError:
        raise ValidationError("MaxItems and Marker must be whole numbers") from None
    if not 1 <= max_items <= MAX_ITEMS:
        raise ValidationError(f"MaxItems must be between 1 and {MAX_ITEMS}")
    out: dict[str, Any] = {key: items[start : start + max_items]}
    if start + max_items < len(items):
        out["NextMarker"] = str(start + max_items)
    return out


def _version_of(name: str, qualifier: str | None) -> tuple[FunctionVersion, str]:
    """(version, label) for GetFunction and friends: unqualified is $LATEST."""
    plat = platform()
    fv = plat.resolve(name, qualifier)
    return fv, plat.version_label(name, qualifier) if qualifier else LATEST


# ---------------------------------------------------------------------------- functions


@bp.post("/2015-03-31/functions", strict_slashes=False)
def create_function() -> Response:
    body = _body(REQUEST_LIMIT)
    if not body.get("FunctionName"):
        raise ValidationError("CreateFunction: FunctionName is required")
    name, qualifier = parse_function_name(str(body["FunctionName"]))
    if qualifier:
        raise ValidationError("CreateFunction: FunctionName cannot have a qualifier")
    plat = platform()
    try:
        plat.get(name)
    except FunctionNotFound:
        pass
    else:
        raise ResourceConflict(f"Function already exist: {name}")
    _refuse_unsupported(body)
    if body.get("PackageType") == "Image":
        code = body.get("Code")
        if not isinstance(code, Mapping) or not code.get("ImageUri") or code.get("ZipFile"):
            raise ValidationError("CreateFunction: a function of PackageType Image takes Code ImageUri (and no ZipFile)")
        spec = _spec(name, body, {}, "CreateFunction")
        data = _empty_zip()
    else:
        for required in ("Runtime", "Handler"):
            if not body.get(required):
                raise ValidationError(f"CreateFunction: {required} is required for a function packaged as a .zip file")
        spec = _spec(name, body, {}, "CreateFunction")
        data = _zip_file(body.get("Code"), "CreateFunction")
    outcome = plat.deploy_zip(data, expected_name=name, spec_override=spec)
    _store_settings(name, body)
    LOG.info("function %s: created through the management API (version %d)", name, outcome.version.version)
    label = str(outcome.version.version) if body.get("Publish") else LATEST
    return _json(_describe(outcome.version, label), 201)


@bp.get("/2015-03-31/functions", strict_slashes=False)
def list_functions() -> Response:
    plat = platform()
    everything = request.args.get("FunctionVersion") == "ALL"
    configs: list[dict[str, Any]] = []
    for fv in plat.functions():
        configs.append(_describe(fv, LATEST))
        if everything:
            configs.extend(_describe(v, str(v.version)) for v in plat.all_versions(fv.name))
    return _json(_page(configs, "Functions"))


@bp.get("/2015-03-31/functions/<function>")
def get_function(function: str) -> Response:
    name, qualifier = _name(function)
    fv, label = _version_of(name, qualifier)
    plat = platform()
    settings = plat.settings(name)
    out: dict[str, Any] = {
        "Configuration": configuration(fv, label, settings),
        "Code": {"RepositoryType": "S3", "Location": f"{request.host_url}faas/code/{name}/{fv.version}.zip"},
    }
    if fv.spec.package_type == "Image":
        out["Code"] = {"RepositoryType": "ECR", "ImageUri": fv.spec.image_uri}
    if fv.spec.concurrency is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": fv.spec.concurrency}
    if settings.get("tags"):
        out["Tags"] = settings["tags"]
    return _json(out)


@bp.get("/2015-03-31/functions/<function>/configuration")
def get_function_configuration(function: str) -> Response:
    name, qualifier = _name(function)
    fv, label = _version_of(name, qualifier)
    return _json(_describe(fv, label))


@bp.get("/faas/code/<name>/<int:version>.zip")
def download_code(name: str, version: int) -> Response:
    """Where GetFunction's Code.Location points: the version's code as a zip."""
    fv = platform().resolve(name, str(version))
    return Response(zip_folder(fv.code_dir, spec=fv.spec), mimetype="application/zip")


@bp.delete("/2015-03-31/functions/<function>")
def delete_function(function: str) -> Response:
    name, qualifier = _name(function)
    if qualifier not in (None, LATEST):
        platform().resolve(name, qualifier)
        raise ValidationError("faas deletes whole functions only; delete-function without --qualifier removes every version")
    platform().remove(name)
    LOG.info("function %s: deleted through the management API", name)
    return Response(status=204)


@bp.put("/2015-03-31/functions/<function>/code")
def update_function_code(function: str) -> Response:
    name, qualifier = _name(function)
    if qualifier:
        raise ValidationError("UpdateFunctionCode: the function name cannot have a qualifier")
    body = _body(REQUEST_LIMIT)
    plat = platform()
    live = plat.get(name)
    _check_revision(body, live)
    if body.get("Architectures"):
        _refuse_unsupported({"Architectures": body["Architectures"]})
    data = _zip_file(body, "UpdateFunctionCode")
    if body.get("DryRun"):
        # Lambda's DryRun validates the request and changes nothing: the package is checked as
        # a deploy would check it, and nothing is stored, no version is made.
        plat.check_zip(data, expected_name=name, spec_override=live.spec)
        return _json(_describe(live, LATEST))
    outcome = plat.deploy_zip(data, expected_name=name, spec_override=live.spec)
    _store_settings(name, {"Architectures": body.get("Architectures")})
    label = str(outcome.version.version) if body.get("Publish") else LATEST
    return _json(_describe(outcome.version, label))


@bp.put("/2015-03-31/functions/<function>/configuration")
def update_function_configuration(function: str) -> Response:
    name, qualifier = _name(function)
    if qualifier:
        raise ValidationError("UpdateFunctionConfiguration: the function name cannot have a qualifier")
    body = _body()
    plat = platform()
    live = plat.get(name)
    _check_revision(body, live)
    _refuse_unsupported(body)
    spec = _spec(name, body, live.spec.to_mapping(), "UpdateFunctionConfiguration")
    version = _apply_spec(live, spec)
    _store_settings(name, body)
    return _json(_describe(version, LATEST))


def _apply_spec(live: FunctionVersion, spec: FunctionSpec) -> FunctionVersion:
    """Deploy the live code with a new configuration (a new version, as any deploy)."""
    if spec == live.spec:
        return live
    data = zip_folder(live.code_dir, spec=spec)
    return platform().deploy_zip(data, expected_name=live.name, spec_override=spec).version


@bp.post("/2015-03-31/functions/<function>/versions")
def publish_version(function: str) -> Response:
    name, qualifier = _name(function)
    if qualifier:
        raise ValidationError("PublishVersion: the function name cannot have a qualifier")
    body = _body()
    live = platform().get(name)
    _check_revision(body, live)
    given = body.get("CodeSha256")
    if given and given != code_sha256(live):
        raise ValidationError(
            f"CodeSHA256 ({given}) is different from current CodeSHA256 in $LATEST ({code_sha256(live)}). "
            "Please try again with the CodeSHA256 in $LATEST."
        )
    return _json(_describe(live, str(live.version)), 201)


@bp.get("/2015-03-31/functions/<function>/versions")
def list_versions(function: str) -> Response:
    name, _ = _name(function)
    plat = platform()
    live = plat.get(name)
    configs = [_describe(live, LATEST)] + [_describe(v, str(v.version)) for v in plat.all_versions(name)]
    return _json(_page(configs, "Versions"))


# ---------------------------------------------------------------------------- aliases


def _alias_body(name: str, alias: str, target: str, description: str) -> dict[str, Any]:
    return {
        "AliasArn": function_arn(name, alias),
        "Name": alias,
        "FunctionVersion": target,
        "Description": description,
        "RevisionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}:{alias}:{target}:{description}")),
    }


def _alias_target(name: str, body: Mapping[str, Any]) -> str:
    routing = body.get("RoutingConfig") or {}
    if isinstance(routing, dict) and routing.get("AdditionalVersionWeights"):
        raise ValidationError("faas does not support weighted aliases (RoutingConfig); point the alias at one version")
    target = str(body.get("FunctionVersion") or "")
    if target != LATEST and not target.isdigit():
        raise ValidationError(f"FunctionVersion must be $LATEST or a version number, got {target!r}")
    platform().resolve(name, target)  # ResourceNotFoundException for a version that does not exist
    return target


def _existing_alias(name: str, alias: str) -> str:
    plat = platform()
    plat.get(name)
    target = plat.aliases(name).get(alias)
    if target is None:
        raise FunctionNotFound(f"Alias not found: {function_arn(name, alias)}")
    return target


@bp.post("/2015-03-31/functions/<function>/aliases")
def create_alias(function: str) -> Response:
    name, _ = _name(function)
    body = _body()
    alias = str(body.get("Name") or "")
    if not ALIAS_RE.match(alias) or alias == LATEST:
        raise ValidationError(f"alias name {alias!r} is not valid: letters, digits, '-' and '_', not only digits, at most 128")
    plat = platform()
    plat.get(name)
    if alias in plat.aliases(name):
        raise ResourceConflict(f"Alias already exists: {function_arn(name, alias)}")
    target = _alias_target(name, body)
    description = str(body.get("Description") or "")
    plat.put_alias(name, alias, target)
    plat.put_setting(name, f"alias:{alias}:description", description or None)
    LOG.info("function %s: alias %s -> %s", name, alias, target)
    return _json(_alias_body(name, alias, target, description), 201)


@bp.get("/2015-03-31/functions/<function>/aliases/<alias>")
def get_alias(function: str, alias: str) -> Response:
    name, _ = _name(function)
    target = _existing_alias(name, alias)
    description = platform().settings(name).get(f"alias:{alias}:description", "")
    return _json(_alias_body(name, alias, target, description))


@bp.put("/2015-03-31/functions/<function>/aliases/<alias>")
def update_alias(function: str, alias: str) -> Response:
    name, _ = _name(function)
    current = _existing_alias(name, alias)
    body = _body()
    plat = platform()
    description = plat.settings(name).get(f"alias:{alias}:description", "")
    given = body.get("RevisionId")
    if given and given != _alias_body(name, alias, current, description)["RevisionId"]:
        raise PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
        )
    target = _alias_target(name, body) if body.get("FunctionVersion") else current
    if "Description" in body:
        description = str(body.get("Description") or "")
        plat.put_setting(name, f"alias:{alias}:description", description or None)
    plat.put_alias(name, alias, target)
    return _json(_alias_body(name, alias, target, description))


@bp.get("/2015-03-31/functions/<function>/aliases")
def list_aliases(function: str) -> Response:
    name, _ = _name(function)
    plat = platform()
    plat.get(name)
    settings = plat.settings(name)
    wanted = request.args.get("FunctionVersion")
    items = [
        _alias_body(name, alias, target, settings.get(f"alias:{alias}:description", ""))
        for alias, target in sorted(plat.aliases(name).items())
        if wanted is None or target == wanted
    ]
    return _json(_page(items, "Aliases"))


@bp.delete("/2015-03-31/functions/<function>/aliases/<alias>")
def delete_alias(function: str, alias: str) -> Response:
    name, _ = _name(function)
    _existing_alias(name, alias)
    plat = platform()
    plat.delete_alias(name, alias)
    plat.put_setting(name, f"alias:{alias}:description", None)
    return Response(status=204)


# ----------------------------------------------------------------- concurrency, async config


@bp.put("/2017-10-31/functions/<function>/concurrency")
def put_concurrency(function: str) -> Response:
    name, _ = _name(function)
    body = _body()
    live = platform().get(name)
    value = body.get("ReservedConcurrentExecutions")
    spec = _spec(name, {}, {**live.spec.to_mapping(), "concurrency": value}, "PutFunctionConcurrency")
    _apply_spec(live, spec)
    return _json({"ReservedConcurrentExecutions": spec.concurrency})


@bp.get("/2019-09-30/functions/<function>/concurrency")
def get_concurrency(function: str) -> Response:
    name, _ = _name(function)
    live = platform().get(name)
    return _json({} if live.spec.concurrency is None else {"ReservedConcurrentExecutions": live.spec.concurrency})


@bp.delete("/2017-10-31/functions/<function>/concurrency")
def delete_concurrency(function: str) -> Response:
    name, _ = _name(function)
    live = platform().get(name)
    raw = {k: v for k, v in live.spec.to_mapping().items() if k != "concurrency"}
    _apply_spec(live, _spec(name, {}, raw, "DeleteFunctionConcurrency"))
    return Response(status=204)


def _event_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"FunctionArn": function_arn(name, LATEST), "LastModified": config.get("LastModified", 0)}
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"):
        if key in config:
            out[key] = config[key]
    return out


def _put_event_config(function: str, merge: bool) -> Response:
    name, qualifier = _name(function)
    if qualifier not in (None, LATEST):
        raise ValidationError("faas keeps one event invoke config per function: leave out --qualifier")
    plat = platform()
    plat.get(name)
    body = _body()
    config: dict[str, Any] = dict(plat.settings(name).get("event_invoke_config") or {}) if merge else {}
    retries = body.get("MaximumRetryAttempts")
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 2:
            raise ValidationError(f"MaximumRetryAttempts must be 0, 1 or 2, got {retries!r}")
        config["MaximumRetryAttempts"] = retries
    age = body.get("MaximumEventAgeInSeconds")
    if age is not None:
        if isinstance(age, bool) or not isinstance(age, int) or not 60 <= age <= 21600:
            raise ValidationError(f"MaximumEventAgeInSeconds must be between 60 and 21600, got {age!r}")
        config["MaximumEventAgeInSeconds"] = age
    if body.get("DestinationConfig"):
        config["DestinationConfig"] = check_destination_config(body["DestinationConfig"])
    config["LastModified"] = datetime.now(UTC).timestamp()
    plat.put_setting(name, "event_invoke_config", config)
    return _json(_event_config(name, config))


@bp.put("/2019-09-25/functions/<function>/event-invoke-config")
def put_event_invoke_config(function: str) -> Response:
    return _put_event_config(function, merge=False)


@bp.post("/2019-09-25/functions/<function>/event-invoke-config")
def update_event_invoke_config(function: str) -> Response:
    return _put_event_config(function, merge=True)


@bp.get("/2019-09-25/functions/<function>/event-invoke-config")
def get_event_invoke_config(function: str) -> Response:
    name, _ = _name(function)
    plat = platform()
    plat.get(name)
    config = plat.settings(name).get("event_invoke_config")
    if config is None:
        raise FunctionNotFound(f"The function {function_arn(name)} doesn't have an EventInvokeConfig")
    return _json(_event_config(name, config))


@bp.delete("/2019-09-25/functions/<function>/event-invoke-config")
def delete_event_invoke_config(function: str) -> Response:
    name, _ = _name(function)
    plat = platform()
    plat.get(name)
    plat.put_setting(name, "event_invoke_config", None)
    return Response(status=204)


# The layer routes (/2018-10-31/layers...) and the event source mapping routes
# (/2015-03-31/event-source-mappings) hang on this blueprint, under its token check.
from gateway import event_sources_api, layers_api  # noqa: E402, F401
