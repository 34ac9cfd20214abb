"""Fixtures of the fault tests: the real engine, images and gateways of tests/integration, and a
place for the figures the faults are measured with.

Every figure a test records with `figures.add(...)` is printed at the end of the run (no -s
needed) and, when FAAS_FAULT_FIGURES names a file, written there as JSON: docs/reliability.md
quotes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures, re-exported for this folder)
    Gateway,
    docker_client,
    engine,
    gateway_session,
    make_function,
    runtime_images,
    start_gateway,
    stop_gateway,
)


class Figures:
    """Measurements worth reporting, by test: {"test": {...}}."""

    def __init__(self) -> None:
        self.by_test: dict[str, dict[str, Any]] = {}

    def add(self, test: str, **values: Any) -> None:
        self.by_test.setdefault(test, {}).update(values)


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.by_test:
        return
    terminalreporter.section("fault figures")
    for test, values in FIGURES.by_test.items():
        terminalreporter.write_line(f"{test}: {json.dumps(values)}")
    out = os.environ.get("FAAS_FAULT_FIGURES")
    if out:
        Path(out).write_text(json.dumps(FIGURES.by_test, indent=2) + "\n")


@pytest.fixture(scope="module")
def fault_gateway(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[Gateway]:  # noqa: F811 (fixtures)
    """One gateway per module; stopped with SIGTERM, after which none of its containers may remain."""
    with gateway_session(tmp_path_factory.mktemp("faults") / "state", docker_client, no_tracebacks=True) as gw:
        yield gw
