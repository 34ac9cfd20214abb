"""The `faas` command. The only module that configures logging.

`faas up` runs the gateway in this process (gunicorn's arbiter; the worker is forked
from it) and deploys the folders it was given over HTTP from a thread, once the gateway
answers. The other commands talk to a running gateway through faas.cli.client, except
`faas runtimes build`, which needs only the Docker engine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from faas.cli.client import GatewayClient, gateway_url
from faas.cli.watch_claims import claim
from faas.config import DEFAULT_PORT, Config
from faas.errors import FaasError, GatewayUnavailable, ValidationError
from faas.models import short_repr

LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NO_GATEWAY = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0    success
  1    an error: the gateway refused the request (the message says why), a
       function.yaml or package is invalid, or the invoked function failed
  2    no faas gateway answers at FAAS_GATEWAY (default http://127.0.0.1:8080),
       or the command line is wrong
  130  interrupted (Ctrl-C)

environment:
  FAAS_GATEWAY    the gateway the commands talk to (default http://127.0.0.1:8080)
  FAAS_STATE_DIR  where `faas up` keeps its state (default ~/.local/state/faas)
  FAAS_API_TOKEN  sent to the gateway's admin API when it requires one
"""

SPEC_NAMES = ("function.yaml", "function.yml")
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", ".venv", "venv", ".git"})
WAIT_POLL_S = 0.1

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """Progress from engine and image preparation: dim, on stderr."""
    err.print(message, style="dim", markup=False, emoji=False)  # "sbx:x:993" is no emoji


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


# ------------------------------------------------------------------ function folders


def _is_function_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in SPEC_NAMES)


def find_function_folders(paths: Iterable[Path]) -> list[Path]:
    """Each path is a function folder, or a folder holding function folders at any depth
    (a function folder's own subfolders are not searched). Raises ValidationError for a
    path that is not a folder or holds no function."""
    found: list[Path] = []
    for path in paths:
        path = Path(path).expanduser().resolve()
        if not path.is_dir():
            raise ValidationError(f"{path}: not a folder")
        if _is_function_folder(path):
            found.append(path)
            continue
        inside = sorted(_walk_functions(path))
        if not inside:
            raise ValidationError(f"{path}: no function.yaml in it or in any folder below it")
        found.extend(inside)
    unique: list[Path] = []
    for folder in found:
        if folder not in unique:
            unique.append(folder)
    return unique


def _walk_functions(root: Path) -> Iterable[Path]:
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return
    for child in children:
        if child.name.startswith(".") or child.name in _SKIP_DIRS:
            continue
        if _is_function_folder(child):
            yield child
        else:
            yield from _walk_functions(child)


def deploy_folder(client: GatewayClient, folder: Path, *, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build and zip one function folder (its requirements.txt / package.json installed for its
    runtime, its build: command run) and PUT it to the gateway; returns the gateway's answer
    plus "package_size"."""
    from faas.deploy import builds, packages

    progress = on_progress or (lambda _msg: None)
    progress(f"packaging {folder}")
    spec = packages.read_spec(folder)
    data = builds.package_folder(folder, progress=progress).data
    progress(f"uploading {spec.name} ({human_size(len(data))})")
    result = client.deploy(spec.name, data, source_dir=str(folder))
    function = dict(result.function)
    function["changed"] = result.changed
    function["package_size"] = len(data)
    return function


def progress_line(message: str) -> None:
    """A build's or an install's output, as it comes: dim, on stderr."""
    err.print(message, style="dim", markup=False, emoji=False, highlight=False)


def cmd_build(args: argparse.Namespace) -> int:
    """`faas build DIR|template`: what `faas deploy` would upload, built, without deploying."""
    from faas.deploy import builds, sam

    target = Path(args.dir)
    out_dir = Path(args.output).expanduser().resolve() if args.output else None
    made: list[tuple[str, bytes]] = []
    if target.is_file():
        template = sam.load(target, sam.parse_overrides(args.parameter_overrides))
        for warning in template.warnings:
            err.print(f"warning: {warning}", style="yellow", markup=False)
        made = [(fn.spec.name, sam.package(fn, progress_line)) for fn in template.functions]
    else:
        from faas.deploy import packages

        for folder in find_function_folders([target]):
            made.append((packages.read_spec(folder).name, builds.package_folder(folder, progress=progress_line).data))
    out_dir = out_dir or (Path.cwd() / ".faas-build")
    for name, data in made:
        where = builds.write_result(data, out_dir / name)
        out.print(f"built {name}: {human_size(len(data))} zipped, unpacked in {where} (zip: {where}.zip)", markup=False)
    return EXIT_OK


def _warn_fallback(function: dict[str, Any]) -> None:
    from faas.models import fallback_warning

    warning = fallback_warning(function)
    if warning:
        err.print(warning, style="yellow", markup=False)


def _deploy_line(function: dict[str, Any]) -> str:
    name, version = function.get("name"), function.get("version")
    if function.get("changed"):
        return f"deployed {name} version {version} ({human_size(int(function.get('package_size', 0)))})"
    return f"{name} unchanged (version {version})"


# ------------------------------------------------------------------ commands


def add_template_options(parser: argparse.ArgumentParser) -> None:
    """A SAM template's options, as SAM CLI spells them (for deploy, and `faas up` with a template)."""
    parser.add_argument(
        "--parameter-overrides",
        metavar="OVERRIDES",
        default="",
        help="a SAM template's parameter values, in SAM's syntax: 'Key=Value Key2=Value2' or 'ParameterKey=K,ParameterValue=V ...'",
    )
    parser.add_argument(
        "--env-vars",
        metavar="ENV_JSON",
        help='environment variables in SAM\'s env.json format: {"Parameters": {...}} for every function, '
        '{"LogicalId": {...}} for one; only variables the template declares are set, as SAM CLI',
    )


def template_options(args: argparse.Namespace) -> dict[str, Any]:
    """add_template_options' values, read: keyword arguments of sam.load and sam.deploy."""
    from faas.deploy import sam

    env_file = getattr(args, "env_vars", None)
    return {
        "overrides": sam.parse_overrides(getattr(args, "parameter_overrides", "") or ""),
        "env_vars": sam.read_env_vars(env_file) if env_file else None,
    }


def cmd_deploy(args: argparse.Namespace) -> int:
    if Path(args.dir).is_file():  # an AWS SAM template: every AWS::Serverless::Function in it
        from faas.deploy import sam

        with GatewayClient(gateway_url(args.gateway)) as client:
            failed = sam.deploy(
                client,
                Path(args.dir),
                say=lambda m: out.print(m, markup=False),
                warn=lambda m: err.print(m, style="yellow", markup=False),
                progress=progress_line,
                **template_options(args),
            )
        return EXIT_ERROR if failed else EXIT_OK
    if getattr(args, "parameter_overrides", "") or getattr(args, "env_vars", None):
        raise ValidationError(
            "--parameter-overrides and --env-vars apply to a SAM template (faas deploy template.yaml), not to a folder"
        )
    folders = find_function_folders([Path(args.dir)])
    failed = 0
    state_dir = _local_state_dir(args)
    with GatewayClient(gateway_url(args.gateway)) as client:
        for folder in folders:
            try:
                with err.status(f"deploying {folder}") as status:
                    function = deploy_folder(client, folder, on_progress=lambda m: status.update(m))
            except GatewayUnavailable:
                raise
            except FaasError as e:
                err.print(f"error: {e.message}", style="red", markup=False)
                _print_init_logs(e)
                failed += 1
                continue
            out.print(_deploy_line(function), markup=False)
            _warn_fallback(function)
            if state_dir is not None:
                claim(state_dir, str(function.get("name")), folder)  # so `faas up` may watch it
    if getattr(args, "watch", False):
        from faas.cli import devloop

        try:
            devloop.watch_until_interrupted(gateway_url(args.gateway), folders, out=out, err=err)
        except KeyboardInterrupt:
            err.print("stopped watching", markup=False)
            return EXIT_OK
    return EXIT_ERROR if failed else EXIT_OK


def _local_state_dir(args: argparse.Namespace) -> Path | None:
    """The state dir a local `faas up` would use, for watch_claims; None when the config cannot load."""
    try:
        return _load_config(args).state_dir
    except FaasError:
        return None


def _print_init_logs(error: FaasError) -> None:
    """A new version that failed to start: its init output says why (the gateway sends it as Logs)."""
    logs = str((getattr(error, "details", None) or {}).get("Logs") or "").rstrip("\n")
    if logs:
        err.print("\n".join("    " + line for line in logs.splitlines()), style="dim", markup=False)


def cmd_versions(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        versions = client.versions(args.name)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("version", "status", "created", "sha256", "size", "source"):
        table.add_column(column, justify="right" if column in ("version", "size") else "left", no_wrap=column != "source")
    for v in versions:
        problem = v.get("problem") or {}
        status = "live" if v.get("live") else (f"failed: {problem.get('error_type')}" if problem else "")
        table.add_row(
            str(v.get("version")),
            status,
            _when(v.get("created")),
            str(v.get("code_sha256") or "")[:12],
            human_size(int(v.get("code_size") or 0)),
            str(v.get("source_dir") or ""),
        )
    out.print(table)
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        try:
            answer = client.rollback(args.name, args.version)
        except FaasError as e:
            err.print(f"error: {e.message}", style="red", markup=False)
            _print_init_logs(e)
            return EXIT_ERROR
    if answer.get("changed"):
        out.print(f"{args.name}: version {answer.get('version')} is live (was {answer.get('previous_version')})", markup=False)
    else:
        out.print(f"{args.name}: version {answer.get('version')} is already live", markup=False)
    return EXIT_OK


def _status(environments: dict[str, int] | None) -> str:
    if not environments:
        return "cold"
    return ", ".join(f"{count} {state}" for state, count in sorted(environments.items()))


def _when(value: Any) -> str:
    try:
        return datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OSError):
        return str(value or "")


def cmd_ls(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        functions = client.functions()
        unrunnable = client.unrunnable()
    if not functions and not unrunnable:
        err.print("no functions deployed; deploy one with `faas deploy DIR`", markup=False)
        return EXIT_OK
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "version", "runtime", "memory", "timeout", "status", "last modified"):
        table.add_column(column, justify="right" if column in ("version", "memory", "timeout") else "left")
    for f in functions:
        table.add_row(
            str(f.get("name")),
            str(f.get("version")),
            str(f.get("runtime")),
            f"{f.get('memory')} MB",
            f"{f.get('timeout')} s",
            (f.get("deploy_problem") or {}).get("summary") or _status(f.get("environments")),
            _when(f.get("created")),
        )
    live = {f.get("name") for f in functions}
    missing = [u for u in unrunnable if u.get("name") not in live]
    for u in missing:  # a template's function faas cannot run: listed, its reason printed whole below
        table.add_row(str(u.get("name")), "-", "-", "-", "-", "not deployed", "")
    out.print(table)
    for u in missing:
        out.print(f"{u.get('name')}: not deployed: {u.get('reason')} (template {u.get('stack')})", markup=False, soft_wrap=True)
    for f in functions:
        _warn_fallback(f)
    return EXIT_OK


def cmd_routes(args: argparse.Namespace) -> int:
    """The API routes of every deployed template, as the gateway serves them at its root."""
    with GatewayClient(gateway_url(args.gateway)) as client:
        if args.rm:
            client.remove_routes(args.rm)
            out.print(f"removed the routes of {args.rm}", markup=False)
            return EXIT_OK
        routes = client.routes()
    if not routes:
        err.print(
            "no API routes; a SAM template's Api / HttpApi events become routes with `faas deploy template.yaml`", markup=False
        )
        return EXIT_OK
    # Plain aligned columns, never cut to the terminal's width: paths are what users copy.
    rows = [["METHOD", "PATH", "FUNCTION", "API", "API_ID", "STAGE", "TEMPLATE"]]
    rows += [[str(r.get(k, "")) for k in ("method", "path", "function", "kind", "api_id", "stage", "stack")] for r in routes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), markup=False, soft_wrap=True
        )
    return EXIT_OK


def cmd_schedules(args: argparse.Namespace) -> int:
    """Every deployed template's schedules with their next firing; `fire NAME` fires one now."""
    with GatewayClient(gateway_url(args.gateway)) as client:
        if args.action == "fire":
            if not args.name:
                err.print("usage: faas schedules fire NAME", markup=False)
                return EXIT_ERROR
            request_id = client.fire_schedule(args.name)
            out.print(f"fired {args.name} (async request {request_id}; `faas calls` and `faas logs` show the call)", markup=False)
            return EXIT_OK
        if args.action == "rm":
            if not args.name:
                err.print("usage: faas schedules rm TEMPLATE (its TEMPLATE column)", markup=False)
                return EXIT_ERROR
            client.put_schedules(args.name, [])
            out.print(f"removed the schedules of {args.name}", markup=False)
            return EXIT_OK
        schedules = client.schedules()
    if args.json:
        sys.stdout.write(json.dumps(schedules, indent=2) + "\n")
        return EXIT_OK
    if not schedules:
        err.print(
            "no schedules; a SAM template's Schedule events become schedules with `faas deploy template.yaml`", markup=False
        )
        return EXIT_OK
    rows = [["NAME", "FUNCTION", "EXPRESSION", "TIMEZONE", "STATE", "NEXT (UTC)", "LAST FIRED", "TEMPLATE"]]
    for sch in schedules:
        rows.append(
            [
                str(sch.get("name")),
                str(sch.get("function")),
                str(sch.get("expression")),
                str(sch.get("timezone") or "UTC"),
                "enabled" if sch.get("enabled") else "disabled",
                str(sch.get("next") or "-"),
                str(sch.get("last_fired") or "-") + (f" ({sch['last_error']})" if sch.get("last_error") else ""),
                str(sch.get("stack")),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), markup=False, soft_wrap=True)
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    """Lambda's sample events (faas/events/samples.py): no gateway needed."""
    from faas.events import samples

    if not args.service:
        for entry in samples.catalogue():
            flags = " ".join(f"--{o.replace('_', '-')}" for o in entry["options"])
            out.print(f"{entry['service']:<12} {entry['kind']:<13} {entry['help']}  [{flags}]", markup=False, soft_wrap=True)
        return EXIT_OK
    try:
        sample = samples.find(args.service, args.kind)
    except KeyError as e:
        err.print(f"error: {e.args[0]}", markup=False)
        return EXIT_ERROR
    given = {o: getattr(args, o) for o in samples.OPTIONS if getattr(args, o, None) is not None}
    unused = sorted(set(given) - set(sample.options))
    if unused:
        err.print(
            f"error: {sample.service} {sample.kind} takes {', '.join('--' + o.replace('_', '-') for o in sample.options)};"
            f" not {', '.join('--' + o.replace('_', '-') for o in unused)}",
            markup=False,
        )
        return EXIT_ERROR
    try:
        event = sample.make(given)
    except ValueError as e:
        err.print(f"error: {e}", markup=False)
        return EXIT_ERROR
    sys.stdout.write(json.dumps(event, indent=2) + "\n")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        client.remove(args.name)
    out.print(f"removed {args.name}", markup=False)
    return EXIT_OK


def read_payload(spec: str | None) -> bytes:
    """--payload: inline JSON, @file, or @- for standard input; nothing means {}."""
    if spec is None:
        return b"{}"
    if spec.startswith("@"):
        source = spec[1:]
        if source == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(source).expanduser().read_bytes()
        except OSError as e:
            raise ValidationError(f"--payload {spec}: cannot read {source}: {e.strerror}") from e
    return spec.encode("utf-8")


def _print_payload(console: Console, payload: bytes, stream: Any) -> None:
    if console.is_terminal:
        try:
            console.print_json(payload.decode("utf-8"))
            return
        except (ValueError, UnicodeDecodeError):
            pass
    stream.buffer.write(payload + (b"" if payload.endswith(b"\n") else b"\n"))
    stream.flush()


def _function_name(args: argparse.Namespace) -> str:
    """NAME, or with --template the deployed name of a logical id or SAM's Child/Function path."""
    if not getattr(args, "template", None):
        if "/" in args.name:
            raise ValidationError(
                f"{short_repr(args.name)} is a SAM function path: give the template too (--template template.yaml)"
            )
        return str(args.name)
    from faas.deploy import sam

    env_file = getattr(args, "env_vars", None)
    template = sam.load(Path(args.template), None, sam.read_env_vars(env_file) if env_file else None)
    found = template.find(args.name)
    if found is None:
        for gone in template.unrunnable:
            if args.name in (gone.path, gone.name, gone.path.rsplit("/", 1)[-1]):
                raise ValidationError(f"{gone.path} is not deployed: it cannot run here: {gone.reason}")
        raise ValidationError(f"{Path(args.template).name} has no function {short_repr(args.name)}")
    if env_file:
        _deploy_with_env_vars(args, template, found)
    return found.spec.name


def _deploy_with_env_vars(args: argparse.Namespace, template: Any, fn: Any) -> None:
    """`faas invoke --template T --env-vars E NAME`: the function deployed from T with E's values
    first. sam local invoke starts a one-off container; a faas function persists, so it keeps
    them (an unchanged package is not a new version) until the next deploy."""
    from faas.deploy import sam

    with GatewayClient(gateway_url(args.gateway)) as client:
        result = client.deploy(fn.spec.name, sam.package(fn, progress_line))
    version = result.function.get("version")
    state = f"deployed version {version}" if result.changed else f"unchanged (version {version})"
    err.print(f"{fn.spec.name}: {state} with the variables of {Path(args.env_vars).name}", style="dim", markup=False)


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = read_payload(args.payload)
    if getattr(args, "env_vars", None) and not getattr(args, "template", None):
        raise ValidationError("--env-vars needs --template: the variables a function may take are the ones its template declares")
    args.name = _function_name(args)
    if args.debug:
        err.print(f"waiting for a debugger on 127.0.0.1:{args.debug} (the call runs once one attaches)", markup=False)
    with GatewayClient(gateway_url(args.gateway)) as client:
        result = client.invoke(args.name, payload, tail=args.tail, qualifier=args.qualifier, debug_port=args.debug)
    if result.log_tail:
        err.print(result.log_tail.rstrip("\n"), style="dim", markup=False)
    if result.function_error:
        _print_payload(err, result.payload, sys.stderr)
        return EXIT_ERROR
    _print_payload(out, result.payload, sys.stdout)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        if not getattr(args, "follow", False):
            text = client.logs(args.name, tail=args.tail)
            sys.stdout.write(text)
            sys.stdout.flush()
            return EXIT_OK
        cursor: str | None = None
        while True:  # until Ctrl-C, the function's removal (404) or the gateway's exit
            text, cursor = client.follow_logs(args.name, cursor, tail=args.tail)
            sys.stdout.write(text)
            sys.stdout.flush()


def cmd_calls(args: argparse.Namespace) -> int:
    from faas.observe.records import print_calls

    with GatewayClient(gateway_url(args.gateway)) as client:
        calls = client.calls(args.name, limit=args.limit)
    if args.json:
        out.print_json(json.dumps(calls))
    else:
        print_calls(out, calls)
    return EXIT_OK


def cmd_failures(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        failures = client.failures(args.name, limit=args.limit)
    if not failures:
        err.print(f"no failed async events for {args.name}", markup=False)
    for record in failures:
        sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    with GatewayClient(gateway_url(args.gateway)) as client:
        state = client.pool()
    if args.json:
        out.print_json(json.dumps(state))
    else:
        print_pool(out, state)
    return EXIT_OK


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def print_pool(console: Console, state: dict[str, Any]) -> None:
    """`faas ps`: one row per environment, functions first, pre-started containers last (how each
    came to serve, cold or pre-started, is in --json and in `faas calls`)."""
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    for column, justify in (
        ("env", "left"),
        ("function", "left"),
        ("ver", "right"),
        ("state", "left"),
        ("age", "right"),
        ("calls", "right"),
        ("mem MB", "right"),
        ("idle", "right"),
        ("keep", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    styles = {"busy": "yellow", "starting": "cyan", "pre-started": "dim", "debugging": "magenta"}
    for env in state.get("environments", []):
        st = str(env.get("state"))
        shown = f"{st} :{env['debug_port']}" if env.get("debug_port") else st  # a debug call, and its IDE's port
        table.add_row(
            str(env.get("id")),
            str(env.get("function") or f"({env.get('runtime')})"),
            str(env.get("version") or "-"),
            Text(shown, style=styles.get(st, "")),
            _duration(env.get("age_s")),
            str(env.get("calls", 0)),
            f"{float(env.get('memory_used_mb') or 0):.0f}/{env.get('memory_mb')}",
            _duration(env.get("idle_s")) if st == "idle" else "-",
            _duration(env.get("keep_alive_s")) if env.get("function") else "-",
        )
    budget = state.get("memory_budget_mb") or {}
    prestarted = state.get("prestarted") or {}
    if not state.get("environments"):
        console.print("no environments: none has been started yet, or all were reaped", style="dim")
    else:
        # A pipe (grep, a file) gets whole rows rather than rich's default of 80 columns.
        wide = console if console.is_terminal else Console(file=console.file, width=200, highlight=False)
        wide.print(table)
    console.print(
        f"memory budget: {budget.get('used', 0)} of {budget.get('total', 0)} MB reserved · pre-started containers "
        f"taken {prestarted.get('taken', 0)}, missed {prestarted.get('missed', 0)} · keep-alive "
        f"{_duration(state.get('keep_alive_default_s'))} (keep: longer for a function whose calls come back later)",
        style="dim",
        markup=False,
    )


def cmd_top(args: argparse.Namespace) -> int:
    from faas.cli import top

    return top.run(gateway_url(args.gateway), interval_s=args.interval, window_s=args.window, once=args.once, console=out)


def _load_config(args: argparse.Namespace) -> Config:
    overrides = {
        "state_dir": getattr(args, "state_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "api_port": getattr(args, "api_port", None),
        "threads": getattr(args, "threads", None),
        "debug": getattr(args, "debug", None),
    }
    return Config.load({k: v for k, v in overrides.items() if v is not None})


def runtimes_to_build(config: Config, folders: Iterable[Path], asked: Sequence[str] = ()) -> list[str] | None:
    """The runtimes `faas up` (or `faas runtimes build`) builds before the gateway starts: the
    default ones (None), plus those the folders' functions run on. Any other is built by the
    gateway when a function first needs it. A folder that does not parse is left to the deploy."""
    from faas.deploy.packages import read_spec
    from faas.models import DEFAULT_RUNTIMES, RUNTIMES

    wanted: list[str] = list(asked)
    for folder in folders:
        try:
            runtime = read_spec(folder).runtime
        except FaasError:
            continue
        runtime = runtime if runtime in RUNTIMES else config.runtime_fallback.get(runtime, "")
        if runtime and runtime not in wanted:
            wanted.append(runtime)
    if set(wanted) <= set(DEFAULT_RUNTIMES):
        return None
    return [*DEFAULT_RUNTIMES, *(r for r in wanted if r not in DEFAULT_RUNTIMES)]


def _prepare_runtimes(config: Config, *, force: bool = False, runtimes: list[str] | None = None) -> Any:
    """Find or start a Docker engine and build the runtime images (runtimes, default: the
    default ones); returns the engine."""
    from faas.containers.docker_executor import DockerExecutor  # type: ignore[import-not-found]
    from faas.containers.engine import ensure_engine  # type: ignore[import-not-found]
    from faas.containers.images import ensure_all  # type: ignore[import-not-found]

    engine = ensure_engine(config.state_dir, say=say)
    executor = DockerExecutor(base_url=engine.base_url)
    try:
        ensure_all(executor, runtimes, force=force, say=say)
    finally:
        close = getattr(executor, "close", None)
        if callable(close):
            close()
    return engine


def cmd_init(args: argparse.Namespace) -> int:
    from faas.cli.scaffold import starter_files, write_starter

    folder = write_starter(args.name, args.runtime, Path(args.dir))
    for rel in starter_files(args.name, args.runtime):
        out.print(f"created {folder / rel}", markup=False)
    out.print(f'next: faas deploy {folder} && faas invoke {args.name} --payload \'{{"name": "you"}}\'', markup=False)
    return EXIT_OK


def cmd_runtimes_build(args: argparse.Namespace) -> int:
    config = _load_config(args)
    from faas.models import RUNTIMES

    unknown = [r for r in args.runtimes if r not in RUNTIMES]
    if unknown:
        raise ValidationError(f"no such runtime: {', '.join(unknown)} (available: {', '.join(RUNTIMES)})")
    wanted = list(RUNTIMES) if args.all else runtimes_to_build(config, [], args.runtimes)
    _prepare_runtimes(config, force=args.force, runtimes=wanted)
    out.print("runtime images are ready", markup=False)
    return EXIT_OK


def cmd_runtimes_list(args: argparse.Namespace) -> int:
    """Each runtime, its image (a hash of its recipe) and the AWS SDK that image ships; no engine needed."""
    from faas.containers.images import runtime_image_tag, sdk_summary, sdk_versions
    from faas.models import RUNTIMES

    rows: list[tuple[str, str, dict[str, str]]] = [(r, runtime_image_tag(r), sdk_versions(r)) for r in RUNTIMES]
    if getattr(args, "json", False):
        out.print_json(json.dumps([{"runtime": r, "image": image, "sdk": sdk} for r, image, sdk in rows]))
        return EXIT_OK
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("RUNTIME", "IMAGE", "AWS SDK"):
        table.add_column(column, no_wrap=column != "AWS SDK")
    for runtime, image, sdk in rows:
        table.add_row(runtime, image, sdk_summary(sdk) or "-")
    out.print(table)
    return EXIT_OK


_WILDCARD_HOSTS = ("0.0.0.0", "", "::")


def _public_url(config: Config) -> str:
    """The URL this machine's own clients use: loopback when the gateway listens on every address."""
    host = config.host if config.host not in _WILDCARD_HOSTS else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


@dataclass(frozen=True)
class UpTemplates:
    """The SAM templates `faas up` was given, read once before the gateway starts."""

    paths: list[Path]
    overrides: dict[str, str]
    runtimes: list[str]
    api_url: str | None  # `--api-port`'s listener, where the routes are served too
    env_vars: dict[str, Any] | None = None  # --env-vars, in SAM's format


def _read_templates(
    paths: Iterable[Path], overrides: dict[str, str], api_url: str | None, env_vars: dict[str, Any] | None = None
) -> UpTemplates:
    """Load each template (a broken one stops `faas up` before anything starts)."""
    from faas.deploy import sam

    loaded = [sam.load(Path(p).expanduser(), overrides, env_vars) for p in paths]
    runtimes = sorted({fn.spec.runtime for t in loaded for fn in t.functions})
    return UpTemplates([t.path for t in loaded], overrides, runtimes, api_url, env_vars)


def _deploy_templates(client: GatewayClient, base_url: str, templates: UpTemplates) -> int:
    """Deploy each template's functions and routes, printing the routes as curl would reach them."""
    from faas.deploy import sam

    failed = 0
    for path in templates.paths:
        try:
            failed += sam.deploy(
                client,
                path,
                say=lambda m: out.print(m, markup=False),
                warn=lambda m: err.print(m, style="yellow", markup=False),
                overrides=templates.overrides,
                env_vars=templates.env_vars,
            )
        except GatewayUnavailable:
            raise
        except FaasError as e:
            err.print(f"error: {path}: {e.message}", style="red", markup=False)
            failed += 1
    if templates.paths:
        where = base_url + (f" and {templates.api_url}" if templates.api_url else "")
        out.print(f"template routes at {where} (`faas routes` lists them)", markup=False)
    return failed


def _deploy_when_ready(base_url: str, folders: list[Path], stop: threading.Event, templates: UpTemplates | None = None) -> None:
    """Thread body for `faas up`: wait for /healthz, then deploy each folder and template over HTTP.

    Prints nothing until the gateway answers: the worker is forked from this process,
    and a fork while this thread holds the console's lock would hang the worker.
    """
    with GatewayClient(base_url) as client:
        while not stop.is_set():
            if client.health():
                break
            stop.wait(WAIT_POLL_S)
        else:
            return
        has_templates = templates is not None and bool(templates.paths)
        if templates is not None and has_templates:
            _deploy_templates(client, base_url, templates)
        if not folders:
            hint = "Ctrl-C to stop" if has_templates else "deploy with `faas deploy DIR`"
            out.print(f"ready: {base_url} ({hint})", markup=False)
            return
        deployed = 0
        for folder in folders:
            if stop.is_set():
                return
            try:
                function = deploy_folder(client, folder, on_progress=progress_line)
            except FaasError as e:
                err.print(f"error: {folder}: {e.message}", style="red", markup=False)
                continue
            deployed += 1
            state = "deployed" if function.get("changed") else "unchanged"
            out.print(
                f"{function.get('name')}  version {function.get('version')}  {state}  {base_url}/function/{function.get('name')}",
                markup=False,
            )
            _warn_fallback(function)
        out.print(
            f"ready: {deployed} function(s); Invoke API at {base_url} (boto3/aws cli: --endpoint-url), Ctrl-C to stop",
            markup=False,
        )


def _deploy_then_watch(
    base_url: str, folders: list[Path], stop: threading.Event, watch: bool, state_dir: Path, templates: UpTemplates
) -> None:
    """Thread body for `faas up`: deploy the folders and templates, then redeploy them (and every
    function deployed from a folder here) on save until the gateway stops."""
    _deploy_when_ready(base_url, folders, stop, templates)
    if watch and not stop.is_set():
        from faas.cli import devloop

        devloop.watch_sources(
            base_url,
            folders,
            stop,
            state_dir=state_dir,
            out=out,
            err=err,
            templates=templates.paths,
            overrides=templates.overrides,
            env_vars=templates.env_vars,
        )


def _listening_line(config: Config, base_url: str) -> str:
    """The start-up line: where the gateway really listens, so `--host 0.0.0.0` never reads as loopback."""
    where = base_url
    if config.host in _WILDCARD_HOSTS:
        bound = config.host or "0.0.0.0"
        bound = f"[{bound}]" if ":" in bound else bound
        where = f"http://{bound}:{config.port}, every address of this machine (here: {base_url})"
    return f"faas gateway on {where} ({config.threads} threads, state in {config.state_dir})"


def cmd_up(args: argparse.Namespace) -> int:
    config = _load_config(args)
    from gateway.server import check_exposure

    check_exposure(config)  # before the engine and the images: refuse at once
    # A file is a SAM template (`sam local start-api`'s project, unchanged); a folder holds functions.
    options = template_options(args)
    overrides = options["overrides"]
    template_paths = [Path(d) for d in args.dirs if Path(d).is_file()]
    if (overrides or options["env_vars"]) and not template_paths:
        raise ValidationError("--parameter-overrides and --env-vars apply to a SAM template (faas up template.yaml)")
    folders = find_function_folders(Path(d) for d in args.dirs if not Path(d).is_file())
    base_url = _public_url(config)
    api_url = _public_url(replace(config, port=config.api_port)) if config.api_port else None
    templates = _read_templates(template_paths, overrides, api_url, options["env_vars"])
    with GatewayClient(base_url) as probe:
        if probe.health():
            err.print(f"error: a faas gateway already answers at {base_url}", markup=False)
            return EXIT_ERROR
    engine = _prepare_runtimes(config, runtimes=runtimes_to_build(config, folders, templates.runtimes))
    base = getattr(engine, "base_url", None)
    if base and not os.environ.get("DOCKER_HOST"):
        os.environ["DOCKER_HOST"] = str(base)  # the worker's Platform finds the same engine
    from gateway import server

    err.print(_listening_line(config, base_url), markup=False)
    stop = threading.Event()
    deployer = threading.Thread(
        target=_deploy_then_watch,
        args=(base_url, folders, stop, not getattr(args, "no_watch", False), config.state_dir, templates),
        name="faas-up-deploy",
        daemon=True,
    )
    deployer.start()
    loglevel = "info" if logging.getLogger().isEnabledFor(logging.INFO) else "warning"
    try:
        code = server.serve(config, overrides={"loglevel": loglevel})
    finally:
        stop.set()
        deployer.join(timeout=5)
    err.print("faas gateway stopped" if code == 0 else f"faas gateway exited with status {code}", markup=False)
    return code


def cmd_compose(args: argparse.Namespace) -> int:
    """faas as a compose service: build its image, up (and wait until healthy), down, or pass on."""
    from faas.cli import compose
    from faas.containers.docker_executor import DockerExecutor
    from faas.containers.engine import ensure_engine

    engine = ensure_engine(Config.load().state_dir, say=say)
    executor = DockerExecutor(base_url=engine.base_url)
    try:
        if args.action == "build":
            tag = compose.build(executor, force=args.force, say=say)
            out.print(f"gateway image {tag} is ready (also tagged faas-gateway:latest)", markup=False)
            return EXIT_OK
        files = [f.expanduser().resolve() for f in args.file] or compose.default_files()
        project = compose.ComposeProject(files, compose.compose_client(say=say))
        if args.action == "up":
            url = compose.up(project, executor, extra=args.args, force=args.force, say=say, status=say)
            out.print(f"ready: {url} (faas deploy DIR; curl {url}/function/NAME; boto3/aws: --endpoint-url {url})", markup=False)
        elif args.action == "down":
            compose.down(project, executor, extra=args.args, say=say)
        else:
            project.run(args.action, *args.args)
        return EXIT_OK
    finally:
        executor.close()


# ------------------------------------------------------------------ parser and main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faas",
        description="AWS Lambda on one machine: deploy functions and call them as on Lambda.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def client_command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument("--gateway", metavar="URL", help="gateway URL (default: $FAAS_GATEWAY or http://127.0.0.1:8080)")
        return p

    up = sub.add_parser(
        "up",
        help="start the gateway (and the Docker engine), deploy DIRs",
        description="Start the Docker engine if needed, build the runtime images, run the "
        "gateway in the foreground and deploy each DIR. Ctrl-C stops everything.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "dirs",
        nargs="*",
        metavar="DIR",
        help="a function folder, a folder of function folders, or an AWS SAM template.yaml (its functions and API routes)",
    )
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    up.add_argument("--state-dir", type=Path, help="state folder (default $FAAS_STATE_DIR or ~/.local/state/faas)")
    up.add_argument("--threads", type=int, help="gateway threads, i.e. calls served at once (default 64)")
    up.add_argument(
        "--api-port",
        type=int,
        metavar="P",
        help="also serve the templates' API routes at the root of port P, with nothing else of faas there "
        "(as `sam local start-api` does on 3000)",
    )
    add_template_options(up)
    up.add_argument("--no-watch", action="store_true", help="do not redeploy functions when their source folder changes")
    up.add_argument(
        "--debug",
        metavar="NAME[:PORT]",
        help="run every call of NAME under a debugger on 127.0.0.1:PORT (default 5678), one at a time",
    )
    up.set_defaults(func=cmd_up)

    from faas.models import RUNTIMES

    init = sub.add_parser(
        "init",
        help="write a starter function (function.yaml and a handler) into ./NAME",
        description="Write a working starter function for a runtime into DIR/NAME; deploy it with `faas deploy DIR/NAME`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("name", metavar="NAME", help="the function's name (letters, digits, '-' and '_')")
    init.add_argument("--runtime", choices=RUNTIMES, default="python3.11", help="default: python3.11")
    init.add_argument("--dir", default=".", metavar="DIR", help="where the function's folder goes (default: .)")
    init.set_defaults(func=cmd_init)

    deploy = client_command("deploy", "zip a function folder and deploy it to the gateway")
    deploy.add_argument(
        "dir", metavar="DIR", help="a function folder (with function.yaml), a folder of them, or an AWS SAM template.yaml"
    )
    deploy.add_argument("--watch", action="store_true", help="then redeploy on every save until Ctrl-C")
    add_template_options(deploy)
    deploy.set_defaults(func=cmd_deploy)

    build_cmd = sub.add_parser(
        "build",
        help="build a function folder (or a SAM template's functions) as `faas deploy` would, without deploying",
        description="Run the build (function.yaml's build:, SAM's BuildMethod), install requirements.txt / "
        "package.json for the function's runtime, and write the package, zipped and unpacked, to OUTPUT/NAME.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build_cmd.add_argument("dir", metavar="DIR", help="a function folder, a folder of them, or an AWS SAM template.yaml")
    build_cmd.add_argument("-o", "--output", metavar="OUTPUT", help="where the packages go (default ./.faas-build)")
    build_cmd.add_argument("--parameter-overrides", metavar="OVERRIDES", default="", help="a SAM template's parameter values")
    build_cmd.set_defaults(func=cmd_build)

    versions = client_command("versions", "list a function's numbered versions (the live one marked)")
    versions.add_argument("name", metavar="NAME")
    versions.set_defaults(func=cmd_versions)

    rollback = client_command("rollback", "make an earlier version live (default: the one before the live one)")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("version", metavar="VERSION", type=int, nargs="?", help="the version to make live")
    rollback.set_defaults(func=cmd_rollback)

    ls = client_command("ls", "list deployed functions")
    ls.set_defaults(func=cmd_ls)

    routes = client_command("routes", "list the API routes of deployed SAM templates (METHOD, path, function, API, stage)")
    routes.add_argument("--rm", metavar="TEMPLATE", help="remove one template's routes (its TEMPLATE column); its functions stay")
    routes.set_defaults(func=cmd_routes)

    schedules = client_command("schedules", "list the schedules of deployed SAM templates with their next firing")
    schedules.add_argument(
        "action",
        nargs="?",
        choices=["list", "fire", "rm"],
        default="list",
        help="fire NAME: fire one now; rm TEMPLATE: remove a template's schedules",
    )
    schedules.add_argument("name", nargs="?", metavar="NAME")
    schedules.add_argument("--json", action="store_true", help="print JSON instead of a table")
    schedules.set_defaults(func=cmd_schedules)

    events = sub.add_parser(
        "events",
        help='print a Lambda sample event (faas invoke NAME --payload "$(faas events s3 put --bucket b --key k)")',
    )
    events.add_argument(
        "service", nargs="?", metavar="SERVICE", help="apigateway, alb, sqs, sns, s3, dynamodb, kinesis, eventbridge, cloudwatch"
    )
    events.add_argument("kind", nargs="?", metavar="KIND", help="e.g. rest / http, put / delete, scheduled / custom")
    from faas.events.samples import OPTIONS as SAMPLE_OPTIONS

    for option in SAMPLE_OPTIONS:  # the fields people change, one flag each
        events.add_argument(f"--{option.replace('_', '-')}", dest=option, metavar=option.upper())
    events.set_defaults(func=cmd_events)

    rm = client_command("rm", "remove a function, its versions and environments")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_rm)

    invoke = client_command("invoke", "call a function through Lambda's Invoke API and print the result")
    invoke.add_argument("name", metavar="NAME")
    invoke.add_argument("--payload", metavar="JSON", help="the event: inline JSON, @file, or @- for stdin (default {})")
    invoke.add_argument("--qualifier", metavar="VERSION", help="a version to call instead of the live one")
    invoke.add_argument(
        "--template",
        metavar="TEMPLATE",
        help="a SAM template: NAME may be a logical id or SAM's Child/Function path in it (nested stacks)",
    )
    invoke.add_argument(
        "--env-vars",
        metavar="ENV_JSON",
        help="with --template: deploy NAME from the template with these variables (SAM's env.json format) "
        "before the call; the function keeps them until its next deploy",
    )
    invoke.add_argument("--tail", action="store_true", help="also print the end of the call's log (stderr)")
    invoke.add_argument(
        "--debug",
        nargs="?",
        type=int,
        const=5678,
        metavar="PORT",
        help="run the call under a debugger on 127.0.0.1:PORT (default 5678) and wait for it to attach",
    )
    invoke.set_defaults(func=cmd_invoke)

    logs = client_command("logs", "print a function's recent log lines")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--tail", type=int, default=200, metavar="N", help="how many lines (default 200)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines as calls happen (Ctrl-C stops)")
    logs.set_defaults(func=cmd_logs)

    calls = client_command("calls", "list a function's recent invocation records")
    calls.add_argument("name", metavar="NAME")
    calls.add_argument("--limit", type=int, default=50, metavar="N", help="how many (default 50, newest first)")
    calls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    calls.set_defaults(func=cmd_calls)

    failures = client_command("failures", "print a function's failed async events (Lambda's on-failure records)")
    failures.add_argument("name", metavar="NAME")
    failures.add_argument("--limit", type=int, default=50, metavar="N", help="how many (default 50, newest first)")
    failures.set_defaults(func=cmd_failures)

    ps = client_command("ps", "list the environments: function, version, state, age, calls, memory, keep-alive")
    ps.add_argument("--json", action="store_true", help="print JSON (GET /system/pool) instead of a table")
    ps.set_defaults(func=cmd_ps)

    top = client_command("top", "live view of calls/s, p50/p99, errors and environments per function")
    top.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between refreshes (default 1)")
    top.add_argument("--window", type=int, default=10, metavar="S", help="seconds the rates and percentiles cover (default 10)")
    top.add_argument("--once", action="store_true", help="print one frame and exit (also when not on a terminal)")
    top.set_defaults(func=cmd_top)

    compose_cmd = sub.add_parser(
        "compose",
        help="run faas itself as a Docker Compose service (compose.yaml)",
        description="faas in a container next to your other compose services. build: the gateway image "
        "(offline, from Debian packages); up: build it if needed, start the service and wait until it is "
        "healthy; down: stop it and its function containers; anything else goes to the compose client. "
        "Settings: FAAS_PORT, FAAS_COMPOSE_STATE_DIR, FAAS_IMAGE (see compose.yaml).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compose_cmd.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="compose file, repeatable (default ./compose.yaml, else the faas source tree's)",
    )
    compose_cmd.add_argument("--force", action="store_true", help="rebuild the gateway image even when up to date")
    compose_cmd.add_argument("action", metavar="ACTION", help="build | up | down | another compose command (ps, logs, ...)")
    compose_cmd.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="passed on to the compose client")
    compose_cmd.set_defaults(func=cmd_compose)

    runtimes = sub.add_parser("runtimes", help="list the runtimes and the AWS SDK in their images; build their images")
    runtimes.add_argument("--json", action="store_true", help="as JSON")
    runtimes.set_defaults(func=cmd_runtimes_list)
    runtimes_sub = runtimes.add_subparsers(dest="runtimes_command", metavar="COMMAND")
    listing = runtimes_sub.add_parser("list", help="the runtimes, their images and the AWS SDK versions in them")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=cmd_runtimes_list)
    build = runtimes_sub.add_parser("build", help="build the runtime images (no gateway needed)")
    build.add_argument(
        "runtimes", nargs="*", metavar="RUNTIME", help="also these runtimes (default: python3.11, nodejs20.x, provided)"
    )
    build.add_argument("--all", action="store_true", help="every runtime")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.add_argument("--state-dir", type=Path, help="state folder (default $FAAS_STATE_DIR or ~/.local/state/faas)")
    build.set_defaults(func=cmd_runtimes_build)
    return parser


def configure_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = RichHandler(console=err, show_path=False, markup=False, rich_tracebacks=False)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except GatewayUnavailable as e:
        err.print(str(e.message), style="red", markup=False)
        return EXIT_NO_GATEWAY
    except FaasError as e:  # GatewayError (the gateway's own message) included
        err.print(f"error: {e.message}", style="red", markup=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
