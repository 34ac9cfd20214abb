"""`faas top`: the dashboard's live view in the terminal, refreshed every second.

It polls the gateway's /ui/api/overview (the same numbers the dashboard shows: calls/s,
p50/p99 and errors over the last few seconds, environments per function) and redraws one
rich table. Polling a running gateway costs its call path nothing but a short lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from faas.cli.client import CONNECT_TIMEOUT_S, GatewayClient
from faas.errors import GatewayUnavailable, ValidationError

LOG = logging.getLogger(__name__)

OVERVIEW_PATH = "/ui/api/overview"


def fetch_overview(client: GatewayClient, window_s: int) -> dict[str, Any]:
    """One overview from the gateway; GatewayUnavailable when it does not answer."""
    try:
        response = client.session.get(
            client.base_url + OVERVIEW_PATH,
            params={"window": window_s},
            headers=client.auth_headers,
            timeout=(CONNECT_TIMEOUT_S, 5.0),
        )
    except requests.RequestException as e:
        raise GatewayUnavailable(f"no faas gateway answers at {client.base_url} — start one with `faas up`") from e
    if response.status_code == 401:
        raise GatewayUnavailable(f"{client.base_url} wants its API token: set FAAS_API_TOKEN")
    if response.status_code != 200:
        raise GatewayUnavailable(
            f"{client.base_url}{OVERVIEW_PATH} answered HTTP {response.status_code}: is this a faas gateway of this version?"
        )
    return dict(response.json())


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _rate(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _envs(environments: dict[str, int] | None) -> str:
    if not environments:
        return "–"
    return ", ".join(f"{n} {state}" for state, n in sorted(environments.items()))


def render(overview: dict[str, Any], url: str, problem: str | None = None) -> Group:
    """One frame: a header line and a row per function, busiest first."""
    functions = overview.get("functions") or []
    window = overview.get("window_s", 10)
    rate = sum(((f.get("stats") or {}).get("calls_per_s") or 0.0) for f in functions)
    header = Text()
    header.append("faas top", style="bold")
    header.append(f"  {url}  {datetime.now().strftime('%H:%M:%S')}  ", style="dim")
    environments = overview.get("environments") or []
    spare = sum(1 for e in environments if not e.get("function"))
    header.append(
        f"{len(functions)} function(s) · {len(environments)} environment(s)"
        + (f" ({spare} pre-started)" if spare else "")
        + f" · {rate:.1f} calls/s"
    )
    depth = overview.get("async_queue_depth")
    if depth is not None:
        header.append(f" · async queue {depth}")
    if problem:
        header.append(f"  {problem}", style="bold red")

    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("function")
    table.add_column("ver", justify="right")
    table.add_column("calls/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("throttled", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("environments")

    def busiest(f: dict[str, Any]) -> tuple[float, str]:
        return (-((f.get("stats") or {}).get("calls_per_s") or 0.0), str(f.get("name")))

    for f in sorted(functions, key=busiest):
        s = f.get("stats") or {}
        errors = int(s.get("errors") or 0)
        throttled = int(s.get("throttled") or 0)
        table.add_row(
            str(f.get("name")),
            str(f.get("version")),
            _rate(float(s.get("calls_per_s") or 0.0)),
            _ms(s.get("p50_ms")),
            _ms(s.get("p99_ms")),
            Text(str(errors), style="red" if errors else ""),
            Text(str(throttled), style="yellow" if throttled else ""),
            str(s.get("total_calls") or 0),
            _envs(f.get("environments")),
        )
    footer = Text(
        f"calls/s, p50, p99, errors and throttled over the last {window} s; calls since the gateway started.  Ctrl-C to quit.",
        style="dim",
    )
    if not functions:
        footer = Text("no functions deployed; deploy one with `faas deploy DIR`", style="dim")
    return Group(header, Text(""), table, Text(""), footer)


def run(
    base_url: str,
    *,
    interval_s: float = 1.0,
    window_s: int = 10,
    once: bool = False,
    console: Console | None = None,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Draw until Ctrl-C (or once). A gateway that stops answering is shown, and polled again."""
    if not 0.1 <= interval_s <= 3600:
        raise ValidationError(f"--interval must be between 0.1 and 3600 seconds, got {interval_s}")
    if not 1 <= window_s <= 600:
        raise ValidationError(f"--window must be between 1 and 600 seconds, got {window_s}")
    console = console or Console()
    with GatewayClient(base_url) as client:
        overview = fetch_overview(client, window_s)  # no gateway at all: GatewayUnavailable, exit 2
        if once or not console.is_terminal:
            console.print(render(overview, base_url))
            return 0
        done = 0
        with Live(render(overview, base_url), console=console, auto_refresh=False, screen=False) as live:
            while iterations is None or done < iterations:
                sleep(interval_s)
                problem = None
                try:
                    overview = fetch_overview(client, window_s)
                except GatewayUnavailable:
                    problem = "the gateway does not answer"
                live.update(render(overview, base_url, problem), refresh=True)
                done += 1
    return 0
