"""AWS SAM templates: `faas deploy template.yaml` deploys every AWS::Serverless::Function.

What is read: CodeUri (a folder, or a .zip, relative to the template; without one, the
template's own folder, as SAM builds it), Handler, Runtime, MemorySize, Timeout,
Environment.Variables, ReservedConcurrentExecutions, Description, EphemeralStorage.Size,
FunctionName, Architectures, Layers (ARNs, or !Ref to the template's AWS::Serverless::LayerVersion
and AWS::Lambda::LayerVersion, whose local content is sent with the function: docs/layers.md),
Events of type Api and HttpApi (routes: faas/deploy/routes.py),
a resource's Condition, and the Globals section's Function settings (a function's own value
wins; Environment.Variables are merged, as SAM does). Every other property, every other
resource and every value faas cannot work out is named in a warning: an existing SAM project
runs here without a function.yaml, and nothing it asks for is silently dropped.

Intrinsics resolved locally: !Ref of parameters (by their Type: a Number given as a string is a
number; overrides in SAM's --parameter-overrides syntax), of pseudo parameters and of
AWS::NoValue (the property goes), !Sub, !Join, !Select, !Split, !FindInMap (Mappings), !If,
!Equals, !And, !Or, !Not and !Condition (Conditions), !GetAtt of a function's Arn; !Ref of
another resource becomes its logical id.

Also read: AWS::Lambda::Function (Code.ZipFile, or CDK's aws:asset:path metadata) and
InlineCode; nested stacks (AWS::Serverless::Application, AWS::CloudFormation::Stack) with a
local template, their functions under their own names and SAM's Child/Function path; plain
API Gateway resources (faas/deploy/cfn_routes.py); --env-vars files in SAM's format.

A function AWS would run but faas cannot (an image, code only in S3) is listed in
Template.unrunnable with the reason and the others deploy: a template should not be all or
nothing because of one function. A template broken as a whole is refused.

Each function is packaged as a normal faas package with a function.yaml written from the
template, so the gateway validates and deploys it exactly as `faas deploy DIR`.
"""

from __future__ import annotations

import io
import logging
import re
import stat
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from faas.deploy import cfn_routes, sam_schedules, yaml_input
from faas.deploy.builds import Build, built_layer, layer_build_method, package_folder
from faas.deploy.packages import SPEC_NAMES, ZIP_EPOCH, layer_entries, local_layers
from faas.deploy.routes import Route, check_clashes, stack_name
from faas.deploy.sam_routes import API_TYPES, template_routes
from faas.errors import FaasError, GatewayUnavailable, ValidationError
from faas.events import sam_sources
from faas.events.schedule import Schedule
from faas.models import ACCOUNT_ID, NAME_RE, FunctionSpec, fallback_warning, function_arn, short_repr

LOG = logging.getLogger(__name__)

FUNCTION_TYPE = "AWS::Serverless::Function"
LAMBDA_TYPE = "AWS::Lambda::Function"  # plain CloudFormation (and CDK's output)
APPLICATION_TYPE = "AWS::Serverless::Application"
STACK_TYPES = (APPLICATION_TYPE, "AWS::CloudFormation::Stack")
# CloudFormation writes a ZipFile's text to this file, by runtime family.
INLINE_FILES = {"python": "index.py", "nodejs": "index.js"}
# Layers a template builds from local content (faas/deploy/layers.py): published with the
# functions that name them with !Ref, under their LayerName (else their logical id).
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
# SAM property -> function.yaml key, for plain values.
SCALARS = {
    "Handler": "handler",
    "Runtime": "runtime",
    "MemorySize": "memory",
    "Timeout": "timeout",
    "ReservedConcurrentExecutions": "concurrency",
    "Description": "description",
}
HANDLED = {
    *SCALARS,
    "CodeUri",
    "Environment",
    "EphemeralStorage",
    "FunctionName",
    "Architectures",
    "PackageType",
    "Events",
    "FunctionUrlConfig",
    "InlineCode",
    "Layers",
    "ImageUri",
    "ImageConfig",
    "EventInvokeConfig",
}
# AWS::Lambda::Function's properties read like the SAM ones above (Code instead of CodeUri).
LAMBDA_HANDLED = (HANDLED - {"CodeUri", "InlineCode", "Events", "FunctionUrlConfig", "EventInvokeConfig"}) | {"Code", "Role"}
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "faas",
    "AWS::StackId": "faas",
    "AWS::NotificationARNs": [],
}
_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolved(Exception):
    """A value faas cannot work out locally (a resource attribute, a condition)."""


class CannotRun(Exception):
    """A function the template may hold (AWS would run it) that faas cannot run here."""


@dataclass(frozen=True)
class SamFunction:
    logical_id: str  # "Fn", or "Child/Fn" in a nested stack (SAM's function path)
    spec: FunctionSpec
    code: Path  # a folder or a .zip file; the template's folder for inline code
    build: Build | None = None  # Metadata: BuildMethod (faas/deploy/builds.py)
    inline: str | None = None  # Code.ZipFile / InlineCode: the handler file's text
    layer_names: Mapping[str, str] = field(default_factory=dict)  # a local layer's path -> its LayerName
    layer_builds: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # path -> (BuildMethod, LogicalId)
    image_build: ImageBuild | None = None  # PackageType Image built from Metadata (docs/image-functions.md)


@dataclass(frozen=True)
class ImageBuild:
    """SAM's Metadata of an Image function: the engine builds its image before it deploys."""

    context: Path  # DockerContext, relative to the template
    dockerfile: str  # Dockerfile, relative to the context
    tag: str  # the image built: <logical id, lower case>:<DockerTag>
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unrunnable:
    """A function of the template that is not deployed: why, for `faas deploy`'s output."""

    path: str  # its logical id, or SAM's Child/Fn path
    name: str  # the name it would have
    reason: str


@dataclass(frozen=True)
class SamLayer:
    logical_id: str
    name: str
    content: Path  # a folder or a .zip file
    build: str | None = None  # Metadata BuildMethod: makefile, python3.X, nodejsNN.x (builds.built_layer)


@dataclass
class Template:
    path: Path
    functions: list[SamFunction] = field(default_factory=list)
    layers: dict[str, SamLayer] = field(default_factory=dict)  # by logical id
    warnings: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)  # its Api / HttpApi events (faas/deploy/routes.py)
    schedules: list[Schedule] = field(default_factory=list)  # Schedule events and resources (sam_schedules.py)
    unrunnable: list[Unrunnable] = field(default_factory=list)
    # SQS event sources and event invoke configs (faas/events/sam_sources.py)
    event_sources: list[dict[str, Any]] = field(default_factory=list)
    invoke_configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def find(self, name: str) -> SamFunction | None:
        """A function by SAM's path (Child/Function, or a root logical id), else by its name,
        else by a nested logical id alone (the first, as SAM CLI does)."""
        for key in (lambda f: f.logical_id, lambda f: f.spec.name, lambda f: f.logical_id.rsplit("/", 1)[-1]):
            for fn in self.functions:
                if key(fn) == name:
                    return fn
        return None

    @property
    def stack(self) -> str:
        """The name the gateway keeps this template's routes under (stable for one file)."""
        return stack_name(self.path.parent.name, str(self.path))


# ------------------------------------------------------------------------------ loading


class _Loader(yaml_input.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt ...) read as the long forms."""


def _construct_tag(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _construct_tag)


def is_template(path: Path) -> bool:
    """A YAML/JSON file that looks like a SAM or CloudFormation template."""
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml", ".json", ".template"):
        return False
    try:
        head = path.read_text(errors="replace")[:65536]
    except OSError:
        return False
    return "AWS::Serverless" in head or "AWSTemplateFormatVersion" in head


def parse_overrides(text: str) -> dict[str, str]:
    """SAM's --parameter-overrides: `Key=Value Key2='a b'` or
    `ParameterKey=Key,ParameterValue=Value ...`; a ValidationError names what it cannot read."""
    import shlex

    out: dict[str, str] = {}
    try:
        items = shlex.split(text)
    except ValueError as e:
        raise ValidationError(f"--parameter-overrides: {e}") from None
    for item in items:
        if item.startswith("ParameterKey="):
            fields = dict(part.split("=", 1) for part in item.split(",", 1) if "=" in part)
            if "ParameterKey" not in fields or "ParameterValue" not in fields:
                raise ValidationError(f"--parameter-overrides: {item!r} is not ParameterKey=K,ParameterValue=V")
            out[fields["ParameterKey"]] = fields["ParameterValue"]
        elif "=" in item:
            key, val = item.split("=", 1)
            out[key] = val
        else:
            raise ValidationError(f"--parameter-overrides: {item!r} is not Key=Value")
    return out


MAX_NESTING = 5  # nested stacks deep: CloudFormation allows more, real projects use one or two


MAX_ENV_FILE = 1 << 20  # an --env-vars file: far above Lambda's 4 KB of variables per function


def read_env_vars(path: str | Path) -> dict[str, Any]:
    """SAM's --env-vars file: JSON, `{"Parameters": {...}}` for every function and
    `{"LogicalId": {...}}` for one (SAM's Child/Function path, or the function's name, too)."""
    import json

    source = Path(path).expanduser()
    try:
        with source.open("rb") as f:
            data = f.read(MAX_ENV_FILE + 1)
    except OSError as e:
        raise ValidationError(f"--env-vars {source.name}: cannot be read: {e.strerror}") from None
    if len(data) > MAX_ENV_FILE:
        raise ValidationError(f"--env-vars {source.name}: larger than {MAX_ENV_FILE} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"--env-vars {source.name}: not JSON: {e}") from None
    if not isinstance(raw, Mapping):
        raise ValidationError(f"--env-vars {source.name}: expected an object of objects, as SAM's env.json")
    for key, section in raw.items():
        if not isinstance(section, Mapping) or not all(
            isinstance(v, (str, int, float, bool)) or v is None for v in section.values()
        ):
            raise ValidationError(
                f"--env-vars {source.name}: {short_repr(key)} must map variable names to strings, numbers or booleans"
            )
    return dict(raw)


def apply_env_vars(template: Template, env_vars: Mapping[str, Any]) -> None:
    """SAM's rules: `Parameters` sets a variable of every function, a function's own object wins;
    only variables the template declares for that function change (the others are named in a
    warning, as SAM CLI ignores them)."""
    import dataclasses

    known = {n for fn in template.functions for n in (fn.spec.name, fn.logical_id, fn.logical_id.rsplit("/", 1)[-1])}
    strange = sorted(k for k in env_vars if k != "Parameters" and k not in known)
    if strange:
        template.warnings.append(f"--env-vars: no function of the template is named {', '.join(strange)}; ignored")
    for index, fn in enumerate(template.functions):
        own: dict[str, Any] = {}
        for key in (fn.logical_id.rsplit("/", 1)[-1], fn.spec.name, fn.logical_id):  # the fullest name wins
            own.update(env_vars.get(key) or {})
        wanted = {**(env_vars.get("Parameters") or {}), **own}
        env = dict(fn.spec.environment)
        undeclared = sorted(k for k in own if k not in env)
        if undeclared:
            template.warnings.append(
                f"--env-vars: {fn.logical_id} does not declare {', '.join(undeclared)} in the template; not set (as SAM CLI)"
            )
        changed = {k: _env_text(v) for k, v in wanted.items() if k in env}
        if changed:
            env.update(changed)
            spec = FunctionSpec.from_mapping({**fn.spec.to_mapping(), "environment": env}, source=f"--env-vars {fn.logical_id}")
            template.functions[index] = dataclasses.replace(fn, spec=spec)


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load(path: Path, overrides: Mapping[str, str] | None = None, env_vars: Mapping[str, Any] | None = None) -> Template:
    """Read a template: every function's spec and code location, and the warnings.
    overrides: parameter values given on the command line (parse_overrides); env_vars: an
    --env-vars file in SAM's format (read_env_vars).

    A function that cannot run here (an image, code in S3) is listed in `unrunnable` with the
    reason, and the others still deploy; a template broken as a whole (bad YAML, a route
    clash, nothing deployable) is a ValidationError."""
    path = Path(path).resolve()
    template = Template(path)
    _load_stack(template, path, overrides, prefix="", depth=0)
    if template.unrunnable:
        template.warnings.extend(f"{u.path}: not deployed, it cannot run here: {u.reason}" for u in template.unrunnable)
    if not template.functions:
        reasons = "; ".join(f"{u.path}: {u.reason}" for u in template.unrunnable)
        raise ValidationError(
            f"{path}: no function faas can run in the template"
            + (f" ({reasons})" if reasons else "")
            + f"; it needs an {FUNCTION_TYPE} or {LAMBDA_TYPE}"
        )
    names = [f.spec.name for f in template.functions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"{path}: two functions would be named {', '.join(duplicates)}")
    try:
        check_clashes(template.routes)
    except ValidationError as e:
        raise ValidationError(f"{path.name}: {e.message}") from None
    if env_vars:
        apply_env_vars(template, env_vars)
    return template


def _read(path: Path) -> Mapping[str, Any]:
    try:
        raw = yaml_input.load_document(path.read_text(), _Loader)  # aliases allowed, within a bound
    except OSError as e:
        raise ValidationError(f"{path}: cannot be read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ValidationError(f"{path}: not valid YAML: {e}") from e
    except RecursionError:
        raise ValidationError(f"{path}: nested too deeply to be a template") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("Resources"), Mapping):
        raise ValidationError(f"{path}: not a SAM template (no Resources section)")
    return raw


def _load_stack(template: Template, path: Path, overrides: Mapping[str, Any] | None, *, prefix: str, depth: int) -> None:
    """One stack of the template (the root, or a nested one under `prefix`, "Child/"): its
    functions, routes and nested stacks are added to `template`."""
    raw = _read(path)
    where_file = path.name if not prefix else f"{prefix.rstrip('/')} ({path.name})"
    warnings: list[str] = []
    declared = raw.get("Parameters") or {}
    declared = declared if isinstance(declared, Mapping) else {}
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        given = "--parameter-overrides" if not prefix else "its Parameters"
        raise ValidationError(f"{where_file}: {given} names parameters the template does not have: {', '.join(unknown)}")
    params: dict[str, Any] = {**PSEUDO, **parameter_values(declared, overrides)}
    resources: Mapping[str, Any] = raw["Resources"]
    ctx = Intrinsics(
        mappings=_section(raw, "Mappings"),
        conditions=_section(raw, "Conditions"),
        attributes={
            **{
                f"{lid}.Arn": function_arn(_plain_name(lid, res))
                for lid, res in resources.items()
                if isinstance(res, Mapping) and res.get("Type") in (FUNCTION_TYPE, LAMBDA_TYPE)
            },
            **sam_sources.queue_attributes(resources, ACCOUNT_ID),
        },
    )
    globals_ = ((raw.get("Globals") or {}).get("Function") or {}) if isinstance(raw.get("Globals"), Mapping) else {}
    skipped: list[str] = []
    problems: list[str] = []
    stack_functions: list[SamFunction] = []
    for logical_id, resource in resources.items():
        if isinstance(resource, Mapping) and resource.get("Type") in LAYER_TYPES:
            try:
                template.layers[str(logical_id)] = _layer(template, str(logical_id), resource, params, set(resources), ctx)
            except ValidationError as e:
                problems.append(e.message)
    for logical_id, resource in resources.items():
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        if (
            kind in API_TYPES
            or kind in cfn_routes.RESOURCE_TYPES
            or kind in LAYER_TYPES
            or kind in sam_schedules.RESOURCE_TYPES
            or kind in sam_sources.TYPES
        ):
            continue  # routes (sam_routes.py, cfn_routes.py), layers, schedules and event sources, which name what they ignore
        if kind not in (FUNCTION_TYPE, LAMBDA_TYPE, *STACK_TYPES):
            skipped.append(f"{logical_id} ({kind})")
            continue
        condition = resource.get("Condition")
        if condition is not None:
            try:
                wanted = ctx.condition(condition, params, set(resources), f"{logical_id}.Condition", warnings)
            except Unresolved as e:
                problems.append(f"{logical_id}.Condition: faas cannot work out {e} locally")
                continue
            if not wanted:
                warnings.append(f"{logical_id}: its Condition {condition} is false, not deployed")
                continue
        if kind in STACK_TYPES:
            try:
                _nested(template, path, str(logical_id), resource, params, set(resources), ctx, prefix, depth, warnings)
            except ValidationError as e:
                problems.append(e.message)
            continue
        props = resource.get("Properties") or {}
        if kind == FUNCTION_TYPE:
            props = merge_globals(globals_, props)
        try:
            fn = _function(
                template,
                path,
                str(logical_id),
                props,
                params,
                set(resources),
                ctx,
                kind=str(kind),
                metadata=resource.get("Metadata"),
                prefix=prefix,
                warnings=warnings,
            )
            fn = replace(fn, build=build_of(str(logical_id), resource.get("Metadata")))
        except CannotRun as e:
            template.unrunnable.append(Unrunnable(prefix + str(logical_id), _plain_name(logical_id, resource), str(e)))
            continue
        except ValidationError as e:
            problems.append(e.message)
            continue
        stack_functions.append(fn)
    if skipped:
        warnings.append(f"resources faas does not run, not deployed: {', '.join(skipped)}")
    if problems:
        raise ValidationError(f"{path if not prefix else where_file}: " + "; ".join(problems))

    def value(raw_value: Any, where: str) -> Any:
        try:
            return resolve(raw_value, params, set(resources), where, warnings, ctx=ctx)
        except Unresolved as e:
            raise ValidationError(f"{where}: faas cannot work out {e} locally") from None

    def quiet(raw_value: Any, where: str) -> Any:  # a !Ref of a resource is its logical id, as wanted
        try:
            return resolve(raw_value, params, set(resources), where, [], ctx=ctx)
        except Unresolved as e:
            raise ValidationError(f"{where}: faas cannot work out {e} locally") from None

    raw_globals = raw.get("Globals")
    routed = {f.logical_id.rsplit("/", 1)[-1]: f.spec.name for f in stack_functions}
    # A route to a function that cannot run stays, so its callers get the reason (not a 403/404).
    routed.update(
        {
            u.path.rsplit("/", 1)[-1]: u.name
            for u in template.unrunnable
            if u.path.startswith(prefix) and "/" not in u.path[len(prefix) :] and NAME_RE.match(u.name)
        }
    )
    try:
        routes = template_routes(
            resources,
            routed,  # those whose Condition holds
            value,
            raw_globals if isinstance(raw_globals, Mapping) else {},
            warnings,
            lambda uri, where: _definition(path.parent, uri, where),
        )
        routes += cfn_routes.routes(resources, routed, quiet, warnings)
        stack_functions = [_with_url_cors(f, cfn_routes.function_url_cors(resources, routed, quiet)) for f in stack_functions]
        scheduled = {f.logical_id.rsplit("/", 1)[-1]: f.spec.name for f in stack_functions}
        schedules = sam_schedules.template_schedules(resources, scheduled, quiet, warnings)
        deployed = {f.logical_id.rsplit("/", 1)[-1]: f.spec.name for f in stack_functions}
        mappings, invoke_configs = sam_sources.read(resources, deployed, quiet, warnings)
    except ValidationError as e:
        raise ValidationError(f"{where_file}: {e.message}") from None
    template.functions.extend(stack_functions)
    template.routes.extend(routes)
    template.schedules.extend(schedules)
    template.event_sources.extend(mappings)
    template.invoke_configs.update(invoke_configs)
    template.warnings.extend(w if not prefix else f"{prefix}{w}" for w in warnings)


def _with_url_cors(fn: SamFunction, by_name: Mapping[str, Mapping[str, Any]]) -> SamFunction:
    """The function with the Cors of an AWS::Lambda::Url that serves it, checked as function.yaml's."""
    cors = by_name.get(fn.spec.name)
    if cors is None:
        return fn
    spec = FunctionSpec.from_mapping({**fn.spec.to_mapping(), "url_cors": cors}, source=f"{fn.logical_id} (its AWS::Lambda::Url)")
    return replace(fn, spec=spec)


def _nested(
    template: Template,
    parent: Path,
    logical_id: str,
    resource: Mapping[str, Any],
    params: Mapping[str, Any],
    resources: set[str],
    ctx: Intrinsics,
    prefix: str,
    depth: int,
    warnings: list[str],
) -> None:
    """A nested stack (AWS::Serverless::Application, AWS::CloudFormation::Stack) with a local
    template: its functions join the template's under their own names, its routes are served."""
    props = resource.get("Properties") or {}
    key = "Location" if resource.get("Type") == APPLICATION_TYPE else "TemplateURL"
    where = f"{prefix}{logical_id}.{key}"
    if not isinstance(props, Mapping) or key not in props:
        raise ValidationError(f"{where}: a nested stack needs {key}")
    try:
        location = resolve(props[key], params, resources, where, warnings, ctx=ctx)
    except Unresolved as e:
        raise ValidationError(f"{where}: faas cannot work out {e} locally") from None
    if not isinstance(location, str) or "://" in location:
        # An application from the Serverless Application Repository, or a template in S3.
        template.unrunnable.append(
            Unrunnable(prefix + logical_id, logical_id, f"its {key} {short_repr(location)} is not a local template file")
        )
        return
    if depth + 1 > MAX_NESTING:
        raise ValidationError(f"{where}: nested stacks deeper than {MAX_NESTING}")
    child = (parent.parent / location).resolve()
    if not child.is_file():
        raise ValidationError(f"{where}: {short_repr(location)} is not a template file next to {parent.name}")
    given = props.get("Parameters") or {}
    try:
        values = resolve(given, params, resources, f"{prefix}{logical_id}.Parameters", warnings, ctx=ctx)
    except Unresolved as e:
        raise ValidationError(f"{prefix}{logical_id}.Parameters: faas cannot work out {e} locally") from None
    if not isinstance(values, Mapping):
        raise ValidationError(f"{prefix}{logical_id}.Parameters must be a map")
    passed = {str(k): (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in values.items()}
    _load_stack(template, child, passed, prefix=f"{prefix}{logical_id}/", depth=depth + 1)


def merge_globals(globals_: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's rule: the function's value wins; maps are merged key by key; lists are joined."""
    out = dict(globals_)
    for key, value in props.items():
        base = out.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            out[key] = merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            out[key] = base + value
        else:
            out[key] = value
    return out


@dataclass
class Intrinsics:
    """What the intrinsic functions beyond !Ref and !Sub read: Mappings, Conditions, and the
    attributes faas knows (a function's Arn)."""

    mappings: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)  # "Logical.Attr" -> value
    _evaluated: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: Any, params: Mapping[str, Any], resources: set[str], where: str, warnings: list[str]) -> bool:
        if not isinstance(name, str) or name not in self.conditions:
            raise Unresolved(f"condition {name!r} (not in Conditions)")
        if name not in self._evaluated:
            self._evaluated[name] = False  # a condition that refers to itself is false, not a loop
            try:
                self._evaluated[name] = _truth(resolve(self.conditions[name], params, resources, where, warnings, ctx=self))
            except Unresolved:
                del self._evaluated[name]
                raise
        return self._evaluated[name]


class _NoValue:
    """!Ref AWS::NoValue: the property is removed."""


NO_VALUE = _NoValue()


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Unresolved(f"a condition that is not true or false ({value!r})")


def resolve(
    value: Any,
    params: Mapping[str, Any],
    resources: set[str],
    where: str,
    warnings: list[str],
    *,
    ctx: Intrinsics | None = None,
) -> Any:
    """Work out a value's intrinsic functions; Unresolved when faas cannot."""
    ctx = ctx or Intrinsics()

    def again(v: Any) -> Any:
        return resolve(v, params, resources, where, warnings, ctx=ctx)

    if isinstance(value, Mapping) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg in params:
                return params[arg]
            if arg in resources:
                warnings.append(f"{where}: !Ref {arg} (a resource faas does not create) is its logical id, {short_repr(arg)}")
                return arg
            raise Unresolved(f"!Ref {arg}")
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
            local = {**params, **ctx.attributes, **{k: again(v) for k, v in extra.items()}}

            def sub(match: re.Match[str]) -> str:
                ref = match.group(1)
                if ref in local:
                    return str(local[ref])
                raise Unresolved(f"${{{ref}}} in !Sub")

            return _SUB_RE.sub(sub, text)
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            parts = again(arg[1])
            return str(arg[0]).join(str(again(p)) for p in parts)
        if key == "Fn::GetAtt":
            target = ".".join(str(p) for p in arg) if isinstance(arg, list) else str(arg)
            if target in ctx.attributes:
                return ctx.attributes[target]
            raise Unresolved(f"!GetAtt {target}")
        if key == "Fn::FindInMap" and isinstance(arg, list) and len(arg) in (3, 4):
            name, top, second = (again(a) for a in arg[:3])
            try:
                return again(ctx.mappings[name][top][second])
            except (KeyError, TypeError):
                if len(arg) == 4 and isinstance(arg[3], Mapping) and "DefaultValue" in arg[3]:
                    return again(arg[3]["DefaultValue"])
                raise Unresolved(f"!FindInMap [{name}, {top}, {second}] (not in Mappings)") from None
        if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            return again(arg[1] if ctx.condition(arg[0], params, resources, where, warnings) else arg[2])
        if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = again(arg[0]), again(arg[1])
            return str(left) == str(right)
        if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            truths = [_truth(again(a)) for a in arg]
            return all(truths) if key == "Fn::And" else any(truths)
        if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            return not _truth(again(arg[0]))
        if key in ("Condition", "Fn::Condition") and isinstance(arg, str):
            return ctx.condition(arg, params, resources, where, warnings)
        if key == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
            index, items = again(arg[0]), again(arg[1])
            try:
                return items[int(index)]
            except (ValueError, TypeError, IndexError):
                raise Unresolved(f"!Select [{index}, {items!r}] (no such element)") from None
        if key == "Fn::Split" and isinstance(arg, list) and len(arg) == 2:
            text = again(arg[1])
            if not isinstance(text, str):
                raise Unresolved("!Split of something that is not a string")
            return text.split(str(arg[0]))
        if key.startswith("Fn::"):
            raise Unresolved(f"!{key[4:]}")
    if isinstance(value, Mapping):
        resolved = {k: again(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}
    if isinstance(value, list):
        return [v for v in (again(item) for item in value) if v is not NO_VALUE]
    return value


def parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each parameter's value (its override, else its Default) as its Type reads it: a Number
    given as a string is a number; a list type is split at commas."""
    values: dict[str, Any] = {}
    for name, definition in declared.items():
        if not isinstance(definition, Mapping):
            continue
        if overrides and name in overrides:
            raw: Any = overrides[name]
        elif "Default" in definition:
            raw = definition["Default"]
        else:
            continue
        kind = str(definition.get("Type", "String"))
        if kind == "Number":
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise ValidationError(f"parameter {name}: Type Number, got {raw!r}") from None
            raw = int(number) if number.is_integer() else number
        elif kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
            raw = [part.strip() for part in raw.split(",")] if isinstance(raw, str) else list(raw)
        allowed = definition.get("AllowedValues")
        if isinstance(allowed, list) and raw not in allowed and str(raw) not in [str(a) for a in allowed]:
            raise ValidationError(f"parameter {name}: {raw!r} is not one of its AllowedValues {allowed}")
        values[name] = raw
    return values


def _definition(folder: Path, uri: str, where: str) -> Any:
    """An API's DefinitionUri: an OpenAPI file (YAML or JSON) in the template's folder tree."""
    if uri.startswith("s3://"):
        raise ValidationError(f"{where}: {uri!r} is in S3; faas reads a local file relative to the template")
    target = (folder / uri).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise ValidationError(f"{where}: {uri!r} is not a file in the template's folder")
    try:
        return yaml.load(target.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as e:
        raise ValidationError(f"{where}: {uri!r} cannot be read as OpenAPI: {e}") from None


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = raw.get(key)
    return found if isinstance(found, Mapping) else {}


def _drop_no_values(
    props: Mapping[str, Any], params: Mapping[str, Any], resources: set[str], ctx: Intrinsics | None, warnings: list[str]
) -> dict[str, Any]:
    """Properties without those an !If (or !Ref AWS::NoValue) removes, as CloudFormation does."""
    out: dict[str, Any] = {}
    for key, raw in props.items():
        if isinstance(raw, Mapping) and ("Fn::If" in raw or raw.get("Ref") == "AWS::NoValue"):
            try:
                if resolve(raw, params, resources, key, [], ctx=ctx) is NO_VALUE:
                    continue
            except Unresolved:
                pass  # reported where the property is read
        out[key] = raw
    return out


def _plain_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    """A function's name where it is plain text (for its Arn), else its logical id."""
    name = (resource.get("Properties") or {}).get("FunctionName")
    return name if isinstance(name, str) else str(logical_id)


def _function(
    template: Template,
    path: Path,
    logical_id: str,
    props: Mapping[str, Any],
    params: Mapping[str, Any],
    resources: set[str],
    ctx: Intrinsics | None = None,
    *,
    kind: str = FUNCTION_TYPE,
    metadata: Any = None,
    prefix: str = "",
    warnings: list[str] | None = None,
) -> SamFunction:
    """One function of a stack. CannotRun: AWS would run it, faas cannot here (an image, code
    in S3); ValidationError: the function is broken, and so is the template."""
    warnings = template.warnings if warnings is None else warnings
    props = _drop_no_values(props, params, resources, ctx, warnings)
    ignored = sorted(k for k in props if k not in (HANDLED if kind == FUNCTION_TYPE else LAMBDA_HANDLED))
    if ignored:
        warnings.append(f"{logical_id}: not supported by faas, ignored: {', '.join(ignored)}")

    def value(key: str) -> Any:
        try:
            return resolve(props[key], params, resources, f"{logical_id}.{key}", warnings, ctx=ctx)
        except Unresolved as e:
            raise ValidationError(f"{logical_id}.{key}: faas cannot work out {e} locally") from None

    url_config = value("FunctionUrlConfig") if "FunctionUrlConfig" in props else None
    if isinstance(url_config, Mapping):
        extra = sorted(k for k in url_config if k not in ("AuthType", "InvokeMode", "Cors"))
        note = f" (not applied: {', '.join(extra)})" if extra else ""
        if url_config.get("AuthType") == "AWS_IAM":
            note += " without AWS_IAM auth: anyone who can reach the gateway may call it"
        if note:
            warnings.append(f"{logical_id}.FunctionUrlConfig: its function URL is /function/NAME on the gateway{note}")
    code_prop = props.get("Code") if kind == LAMBDA_TYPE else None
    image = props.get("PackageType", "Zip") != "Zip" or (isinstance(code_prop, Mapping) and "ImageUri" in code_prop)
    if image:
        return _image_function(path, logical_id, props, metadata, value, prefix)
    raw: dict[str, Any] = {}
    name = value("FunctionName") if "FunctionName" in props else logical_id
    raw["name"] = name
    for key, target in SCALARS.items():
        if key in props:
            raw[target] = value(key)
    env = props.get("Environment") or {}
    if isinstance(env, Mapping):
        extra = sorted(k for k in env if k != "Variables")
        if extra:
            warnings.append(f"{logical_id}.Environment: not supported by faas, ignored: {', '.join(extra)}")
        variables: dict[str, Any] = {}
        for var, raw_value in (env.get("Variables") or {}).items():
            try:
                resolved = resolve(raw_value, params, resources, f"{logical_id}.Environment.Variables.{var}", warnings, ctx=ctx)
                if resolved is not NO_VALUE:
                    variables[var] = resolved
            except Unresolved as e:
                warnings.append(f"{logical_id}: environment variable {var} left out: faas cannot work out {e} locally")
        raw["environment"] = variables
    storage = props.get("EphemeralStorage")
    if isinstance(storage, Mapping) and "Size" in storage:
        raw["ephemeral_storage"] = storage["Size"]
    arch = props.get("Architectures")
    if arch not in (None, ["x86_64"]):
        warnings.append(f"{logical_id}: Architectures {arch} - faas runs the code on this machine's architecture")
    layer_names: dict[str, str] = {}
    layer_builds: dict[str, tuple[str, str]] = {}
    if "Layers" in props:

        def one(entry: Any) -> Any:
            try:
                return resolve(entry, params, resources, f"{logical_id}.Layers", warnings, ctx=ctx)
            except Unresolved as e:
                raise ValidationError(f"{logical_id}.Layers: faas cannot work out {e} locally") from None

        raw["layers"] = _function_layers(template, logical_id, props["Layers"], one, layer_names, layer_builds)
    source = f"{path.name} {prefix}{logical_id}"
    if kind == LAMBDA_TYPE:
        code, inline = _lambda_code(path, logical_id, props, metadata, value)
    elif "InlineCode" in props:
        code, inline = path.parent, value("InlineCode")
    else:
        code_uri = value("CodeUri") if "CodeUri" in props else "."  # SAM: the template's own folder
        if isinstance(code_uri, Mapping) or (isinstance(code_uri, str) and code_uri.startswith("s3://")):
            raise CannotRun(f"its CodeUri {short_repr(code_uri)} is in S3; faas deploys local code (a folder or .zip)")
        if not isinstance(code_uri, str):
            raise ValidationError(
                f"{logical_id}: CodeUri must be a local folder or .zip relative to the template, got {short_repr(code_uri)}"
            )
        code, inline = (path.parent / code_uri).resolve(), None
        if not code.exists():
            raise ValidationError(f"{logical_id}: CodeUri {short_repr(code_uri)} does not exist ({code})")
    if inline is not None:
        if not isinstance(inline, str):
            raise ValidationError(f"{logical_id}: inline code must be text")
        family = str(raw.get("runtime", "")).rstrip("0123456789.x")
        if family not in INLINE_FILES:
            raise CannotRun(
                f"inline code for runtime {short_repr(raw.get('runtime'))}: Lambda writes it only for Python and Node.js"
            )
    if isinstance(url_config, Mapping) and url_config.get("Cors") is not None:
        raw["url_cors"] = cfn_routes.url_cors(url_config["Cors"], f"{logical_id}.FunctionUrlConfig.Cors")
    spec = FunctionSpec.from_mapping(raw, source=source)
    return SamFunction(prefix + logical_id, spec, code, inline=inline, layer_names=layer_names, layer_builds=layer_builds)


def _image_function(
    path: Path, logical_id: str, props: Mapping[str, Any], metadata: Any, value: Callable[[str], Any], prefix: str
) -> SamFunction:
    """A PackageType Image function: a local image (ImageUri), or one the engine builds from
    SAM's Metadata (DockerContext, Dockerfile, DockerTag, DockerBuildArgs), as `sam build` does."""
    raw: dict[str, Any] = {"name": value("FunctionName") if "FunctionName" in props else logical_id}
    for key, target in SCALARS.items():
        if key in props and key not in ("Handler", "Runtime"):
            raw[target] = value(key)
    env = value("Environment") if "Environment" in props else {}
    if isinstance(env, Mapping) and isinstance(env.get("Variables"), Mapping):
        raw["environment"] = {k: v for k, v in env["Variables"].items() if v is not NO_VALUE}
    storage = props.get("EphemeralStorage")
    if isinstance(storage, Mapping) and "Size" in storage:
        raw["ephemeral_storage"] = storage["Size"]
    raw["package_type"] = "Image"
    if "ImageConfig" in props:
        raw["image_config"] = value("ImageConfig")
    build: ImageBuild | None = None
    if isinstance(metadata, Mapping) and "DockerContext" in metadata:
        context = metadata.get("DockerContext")
        dockerfile = metadata.get("Dockerfile", "Dockerfile")
        tag = str(metadata.get("DockerTag", "latest"))
        args = metadata.get("DockerBuildArgs") or {}
        if not isinstance(context, str) or not isinstance(dockerfile, str) or not isinstance(args, Mapping):
            raise ValidationError(f"{logical_id}: Metadata DockerContext and Dockerfile must be paths, DockerBuildArgs a mapping")
        folder = (path.parent / context).resolve()
        if not folder.is_dir():
            raise ValidationError(f"{logical_id}: Metadata DockerContext {short_repr(context)} is not a folder")
        if Path(dockerfile).is_absolute() or ".." in Path(dockerfile).parts or not (folder / dockerfile).is_file():
            raise ValidationError(
                f"{logical_id}: Metadata Dockerfile {short_repr(dockerfile)} is not a file in the DockerContext"
            )
        build = ImageBuild(folder, dockerfile, f"{logical_id.lower()}:{tag}", {str(k): str(v) for k, v in args.items()})
        raw["image_uri"] = build.tag
    else:
        code = props.get("Code")
        uri = value("ImageUri") if "ImageUri" in props else (code.get("ImageUri") if isinstance(code, Mapping) else None)
        if not uri:
            raise CannotRun("PackageType Image (and it has no ImageUri, nor Metadata DockerContext to build one)")
        raw["image_uri"] = uri
    spec = FunctionSpec.from_mapping(raw, source=f"{path.name} {prefix}{logical_id}")
    return SamFunction(prefix + logical_id, spec, path.parent, image_build=build)


def _lambda_code(
    path: Path, logical_id: str, props: Mapping[str, Any], metadata: Any, value: Callable[[str], Any]
) -> tuple[Path, str | None]:
    """AWS::Lambda::Function's Code: ZipFile (inline), or CDK's aws:asset:path metadata (the
    asset folder next to the template); code only in S3 cannot run here."""
    code = value("Code") if "Code" in props else None
    if not isinstance(code, Mapping):
        raise ValidationError(f"{logical_id}: an {LAMBDA_TYPE} needs Code (ZipFile, S3Bucket/S3Key or ImageUri)")
    if "ZipFile" in code:
        return path.parent, code["ZipFile"]
    asset = metadata.get("aws:asset:path") if isinstance(metadata, Mapping) else None
    if isinstance(asset, str):
        folder = (path.parent / asset).resolve()
        if not folder.exists():
            raise ValidationError(f"{logical_id}: its aws:asset:path {short_repr(asset)} does not exist next to {path.name}")
        return folder, None
    raise CannotRun(f"its Code is in S3 ({short_repr(code.get('S3Key'))}) and it has no local aws:asset:path metadata")


def _layer(
    template: Template,
    logical_id: str,
    resource: Mapping[str, Any],
    params: Mapping[str, Any],
    resources: set[str],
    ctx: Intrinsics | None,
) -> SamLayer:
    """A LayerVersion resource: ContentUri (SAM) or Content (CloudFormation), a local folder or
    .zip relative to the template; LayerName, else the logical id."""
    props = resource.get("Properties") or {}
    if not isinstance(props, Mapping):
        raise ValidationError(f"{logical_id}: Properties must be a mapping")

    def value(key: str) -> Any:
        try:
            return resolve(props[key], params, resources, f"{logical_id}.{key}", template.warnings, ctx=ctx)
        except Unresolved as e:
            raise ValidationError(f"{logical_id}.{key}: faas cannot work out {e} locally") from None

    key = "ContentUri" if "ContentUri" in props else "Content"
    uri = value(key) if key in props else None
    if not isinstance(uri, str) or uri.startswith("s3://"):
        raise ValidationError(
            f"{logical_id}: {key} must be a local folder or .zip relative to the template, got {short_repr(uri)}"
        )
    content = (template.path.parent / uri).resolve()
    if not content.exists():
        raise ValidationError(f"{logical_id}: {key} {short_repr(uri)} does not exist")
    name = value("LayerName") if "LayerName" in props else logical_id
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_-]{1,140}$", name):
        raise ValidationError(f"{logical_id}: LayerName must be letters, digits, '-' or '_', got {short_repr(name)}")
    ignored = sorted(k for k in props if k not in ("ContentUri", "Content", "LayerName", "CompatibleRuntimes", "Description"))
    if ignored:
        template.warnings.append(f"{logical_id}: not supported by faas, ignored: {', '.join(ignored)}")
    return SamLayer(logical_id, name, content, layer_build_method(logical_id, resource.get("Metadata")))


def _function_layers(
    template: Template,
    logical_id: str,
    given: Any,
    resolve_one: Callable[[Any], Any],
    names: dict[str, str],
    builds: dict[str, tuple[str, str]],
) -> list[str]:
    """A function's Layers: a !Ref to a LayerVersion of the template is its content's path
    (sent with the code, published by the gateway); anything else must come out as an ARN."""
    if not isinstance(given, list):
        raise ValidationError(f"{logical_id}.Layers must be a list, got {short_repr(given)}")
    out: list[str] = []
    for entry in given:
        ref = entry.get("Ref") if isinstance(entry, Mapping) and len(entry) == 1 else None
        if isinstance(ref, str) and ref in template.layers:
            layer = template.layers[ref]
            out.append(str(layer.content))
            names[str(layer.content)] = layer.name
            if layer.build is not None:
                builds[str(layer.content)] = (layer.build, layer.logical_id)
            continue
        arn = resolve_one(entry)
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            raise ValidationError(f"{logical_id}.Layers: {short_repr(arn)} is neither a layer of this template nor a layer ARN")
        out.append(arn)
    return out


# ---------------------------------------------------------------------------- packaging


def build_of(logical_id: str, metadata: Any) -> Build | None:
    """A function's Metadata BuildMethod (makefile, esbuild), as SAM reads it; None for the default."""
    if not isinstance(metadata, Mapping) or "BuildMethod" not in metadata:
        return None
    method = str(metadata["BuildMethod"]).lower()
    if method not in ("makefile", "esbuild"):
        raise ValidationError(
            f"{logical_id}: Metadata BuildMethod {short_repr(metadata['BuildMethod'])} is not one faas runs (makefile, esbuild)"
        )
    props = metadata.get("BuildProperties") or {}
    return Build(method, logical_id, props if isinstance(props, Mapping) else {})


def package(fn: SamFunction, progress: Callable[[str], None] | None = None) -> bytes:
    """The function's code with a function.yaml written from the template, as a faas package:
    built (Metadata BuildMethod) and with its dependencies installed when it is a folder; its
    template layers with a BuildMethod built first, their built content sent in their place."""
    if not fn.layer_builds:
        return _package(fn, progress)
    with ExitStack() as stack:
        built: dict[str, str] = {}
        for entry, (method, layer_id) in fn.layer_builds.items():
            built[entry] = str(stack.enter_context(built_layer(Path(entry), method, layer_id, progress)))
        layers = tuple(built.get(e, e) for e in fn.spec.layers)
        names = {built.get(k, k): v for k, v in fn.layer_names.items()}
        return _package(replace(fn, spec=replace(fn.spec, layers=layers), layer_names=names, layer_builds={}), progress)


def _package(fn: SamFunction, progress: Callable[[str], None] | None) -> bytes:
    if fn.spec.package_type == "Image":  # the code is the image: built here when Metadata says how
        spec = fn.spec
        if fn.image_build is not None:  # deployed under the built image's id: a changed image is a new version
            spec = replace(spec, image_uri=build_image(fn.image_build, progress))
        return _zip({SPEC_NAMES[0]: _spec_yaml(spec)})
    if fn.inline is not None:  # Code.ZipFile / InlineCode: one file, named as Lambda names it
        family = fn.spec.runtime.rstrip("0123456789.x")
        return _zip({INLINE_FILES[family]: fn.inline.encode(), SPEC_NAMES[0]: _spec_yaml(fn.spec)})
    if fn.code.is_dir():
        return package_folder(fn.code, spec=fn.spec, build=fn.build, progress=progress, layer_names=fn.layer_names).data
    try:
        with zipfile.ZipFile(fn.code) as src:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as dst:
                for info in src.infolist():
                    if info.filename not in SPEC_NAMES:
                        dst.writestr(info, src.read(info))
                for rel, data in layer_entries(local_layers(fn.code.parent, fn.spec), fn.spec, fn.layer_names):
                    layer_info = zipfile.ZipInfo(rel, date_time=ZIP_EPOCH)
                    layer_info.create_system, layer_info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
                    dst.writestr(layer_info, data, zipfile.ZIP_DEFLATED)
                spec_info = zipfile.ZipInfo(SPEC_NAMES[0], date_time=ZIP_EPOCH)
                spec_info.create_system, spec_info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
                dst.writestr(spec_info, _spec_yaml(fn.spec), zipfile.ZIP_DEFLATED)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValidationError(f"{fn.logical_id}: CodeUri {fn.code} is not a readable zip: {e}") from e
    return buffer.getvalue()


def build_image(build: ImageBuild, progress: Callable[[str], None] | None = None) -> str:
    """docker build of an Image function's image on the engine (offline: no pull, no network);
    the tag pinned to the built image's id, which the function deploys under."""
    from faas.config import Config
    from faas.containers.docker_executor import DockerExecutor
    from faas.containers.engine import ensure_engine
    from faas.containers.image_functions import build_function_image, pin_image

    # The engine `faas up` uses (DOCKER_HOST, the default socket, or the one faas started).
    engine = ensure_engine(Config.load().state_dir, say=progress or (lambda line: None))
    executor = DockerExecutor(base_url=engine.base_url)
    try:
        build_function_image(
            executor, build.context, build.tag, dockerfile=build.dockerfile, build_args=build.build_args, on_line=progress
        )
        return pin_image(executor, build.tag)
    finally:
        executor.close()


def _spec_yaml(spec: FunctionSpec) -> bytes:
    return yaml.safe_dump(spec.to_mapping(), sort_keys=True).encode()


def _zip(files: Mapping[str, bytes]) -> bytes:
    """A reproducible zip of a few files (same bytes each time: an unchanged redeploy is a no-op)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system, info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
            dst.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def deploy(
    client: Any,
    path: Path,
    *,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    overrides: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    env_vars: Mapping[str, Any] | None = None,
) -> int:
    """`faas deploy template.yaml`: every function of the template through the gateway's
    admin API (client is a faas.cli.client.GatewayClient), then its routes; returns how many
    functions failed.

    The routes are checked by the gateway first (a clash or a path under faas's own
    prefixes refuses the template before any function is deployed), and replace the
    template's previous routes once the functions are deployed."""
    template = load(path, overrides, env_vars)
    for warning in template.warnings:
        warn(f"warning: {warning}")
    routes = [r.to_json() for r in template.routes]
    client.put_routes(template.stack, routes, dry_run=True)
    schedules = [s.to_json() for s in template.schedules]
    client.put_schedules(template.stack, schedules, dry_run=True)
    failed = 0
    for fn in template.functions:
        try:
            result = client.deploy(fn.spec.name, package(fn, progress))
        except FaasError as e:
            if isinstance(e, GatewayUnavailable):
                raise
            warn(f"error: {fn.logical_id}: {e.message}")
            failed += 1
            continue
        state = f"deployed {fn.spec.name} version" if result.changed else f"{fn.spec.name} unchanged (version"
        say(f"{state} {result.function.get('version')}{'' if result.changed else ')'} from {fn.logical_id}")
        fallback = fallback_warning(result.function)
        if fallback:
            warn(fallback)
    client.put_routes(
        template.stack, routes, unrunnable={u.name: f"{u.path} cannot run here: {u.reason}" for u in template.unrunnable}
    )
    for route in template.routes:
        say(f"route {route.method} {route.path} -> {route.function} ({route.kind} {route.api_id}, stage {route.stage})")
    client.put_schedules(template.stack, schedules)
    for sched in template.schedules:
        off = "" if sched.enabled else ", disabled"
        say(
            f"schedule {sched.name} -> {sched.function} ({sched.expression}{' ' + sched.timezone if sched.timezone else ''}{off})"
        )
    if template.event_sources or template.invoke_configs:
        for line in sam_sources.put_event_sources(client, template.event_sources, template.invoke_configs):
            say(line)
    return failed
