"""The developer's side of live redeploy: watch function folders, upload saves, say what happened.

`faas up` watches the folders it was given and the source folder of every function this
machine's user deployed with `faas deploy DIR` (the gateway records it as source_dir, and
watch_claims confirms it, since a deploy header alone proves nothing), picking up functions
deployed later by listing the gateway every few seconds; `faas deploy DIR
--watch` watches DIR. Both print one line per save that went live, and the error with the
new version's init output when it did not (the old version then keeps serving).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from faas.cli.client import GatewayClient
from faas.cli.source_watcher import Redeploy, SourceWatcher
from faas.cli.template_watcher import TemplateRedeploy, TemplateWatcher
from faas.cli.watch_claims import claimed
from faas.errors import FaasError

LOG = logging.getLogger(__name__)

REFRESH_S = 2.0  # how often `faas up` looks for functions newly deployed from a folder


def _upload(client: GatewayClient):  # type: ignore[no-untyped-def]
    def upload(name: str, data: bytes, folder: Path) -> dict[str, Any]:
        result = client.deploy(name, data, source_dir=str(folder))
        answer = dict(result.function)
        answer["changed"] = result.changed
        return answer

    return upload


def _progress(err: Console):  # type: ignore[no-untyped-def]
    return lambda message: err.print(message, style="dim", markup=False, emoji=False, highlight=False)


def redeploy_printer(out: Console, err: Console):  # type: ignore[no-untyped-def]
    """report(Redeploy) for a terminal: a line per save, the init output of a version that failed."""

    def report(r: Redeploy) -> None:
        who = r.name or str(r.folder)
        if r.ok:
            if r.changed:
                out.print(f"{who}  version {r.version}  live  ({r.took_ms:.0f} ms after the save)", markup=False)
            else:
                out.print(f"{who}  unchanged (version {r.version})", style="dim", markup=False)
            return
        if r.version is None:
            err.print(f"{who}: not deployed, the live version still serves: {r.message}", style="red", markup=False)
        else:
            err.print(f"{who}: {r.message}", style="red", markup=False)
        if r.logs.strip():
            err.print("\n".join("    " + line for line in r.logs.rstrip("\n").splitlines()), style="dim", markup=False)

    return report


def template_printer(out: Console, err: Console):  # type: ignore[no-untyped-def]
    """report(TemplateRedeploy) for a terminal: what went live, routes added and removed, or why nothing did."""

    def report(r: TemplateRedeploy) -> None:
        who = r.template.name
        if r.message:
            err.print(f"{who}: not deployed, the live functions and routes still serve: {r.message}", style="red", markup=False)
            return
        for warning in r.warnings:
            err.print(f"{who}: {warning}", style="yellow", markup=False)
        for name, version in r.live:
            out.print(f"{name}  version {version}  live  ({r.took_ms:.0f} ms after the save)", markup=False)
        for line in r.added:
            out.print(f"route {line}  added", markup=False)
        for line in r.removed:
            out.print(f"route {line}  removed", markup=False)
        for error in r.errors:
            err.print(f"{who}: {error} (its live version still serves)", style="red", markup=False)
        if not (r.live or r.added or r.removed or r.errors):
            out.print(f"{who}  unchanged", style="dim", markup=False)

    return report


def _local_folder(raw: object, name: str, state_dir: Path) -> Path | None:
    """The function's source folder when `faas deploy` on this machine recorded the same one."""
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(raw)
    if not path.is_absolute() or not path.is_dir():
        return None
    mine = claimed(state_dir, name)
    if mine is None or mine.resolve() != path.resolve():
        LOG.debug("watcher: not watching %s for %s: not deployed from there by `faas deploy` here", raw[:200], name)
        return None
    return path.resolve()


def watch_sources(
    base_url: str,
    folders: Iterable[Path],
    stop: threading.Event,
    *,
    state_dir: Path,
    out: Console,
    err: Console,
    templates: Iterable[Path] = (),
    overrides: Mapping[str, str] | None = None,
    env_vars: Mapping[str, Any] | None = None,
) -> None:
    """For `faas up`: redeploy on save until stop is set (function folders, and SAM templates
    with their functions' code: faas/cli/template_watcher.py)."""
    pinned = {Path(f).resolve() for f in folders}
    with (
        GatewayClient(base_url) as upload_client,
        GatewayClient(base_url) as list_client,
        GatewayClient(base_url) as template_client,
    ):
        watcher = SourceWatcher(_upload(upload_client), redeploy_printer(out, err), progress=_progress(err))
        report = template_printer(out, err)
        template_watchers = [
            TemplateWatcher(template_client, t, report, overrides=overrides, env_vars=env_vars) for t in templates
        ]
        try:
            for tw in template_watchers:
                out.print(
                    f"watching {tw.path.name} and its functions' code ({len(tw.folders())} folder(s)); a save redeploys",
                    style="dim",
                    markup=False,
                )
            for folder in sorted(pinned):
                watcher.add(folder)
            listed: dict[Path, str] = {}
            announced = False
            while not stop.is_set():
                try:
                    functions = list_client.functions()
                except FaasError as e:  # the gateway is restarting or stopping: keep what is watched
                    LOG.debug("watcher: cannot list functions: %s", e.message)
                    functions = None
                if functions is not None:
                    now: dict[Path, str] = {}
                    for f in functions:
                        local = _local_folder(f.get("source_dir"), str(f.get("name")), state_dir)
                        if local is not None:
                            now[local] = str(f.get("name"))
                    for kept, name in now.items():
                        watcher.add(kept, name)
                    for folder in set(listed) - set(now) - pinned:  # removed, or deployed from elsewhere now
                        watcher.remove(folder)
                    listed = now
                    if not announced:
                        announced = True
                        watched = watcher.folders()
                        if watched:
                            out.print(
                                f"watching {len(watched)} folder(s) for changes; a save redeploys", style="dim", markup=False
                            )
                stop.wait(REFRESH_S)
        finally:
            for tw in template_watchers:
                tw.close()
            watcher.close()


def watch_until_interrupted(base_url: str, folders: Iterable[Path], *, out: Console, err: Console) -> None:
    """For `faas deploy DIR --watch`: redeploy on save until Ctrl-C (KeyboardInterrupt)."""
    folders = [Path(f).resolve() for f in folders]
    with GatewayClient(base_url) as client:
        watcher = SourceWatcher(_upload(client), redeploy_printer(out, err), progress=_progress(err))
        try:
            for folder in folders:
                watcher.add(folder)
            out.print(
                f"watching {', '.join(str(f) for f in folders)}; a save redeploys (Ctrl-C to stop)", style="dim", markup=False
            )
            stop = threading.Event()
            while not stop.wait(3600):
                pass
        finally:
            watcher.close()
