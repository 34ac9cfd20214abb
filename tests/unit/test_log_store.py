"""The log writer (faas/logs.LogStore): batches, rotation, flush."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas.logs import store as logs
from faas.logs.store import LogStore


@pytest.mark.parametrize("batched", [False, True])
def test_rotation_keeps_the_newest_lines_in_the_current_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    monkeypatch.setattr(logs, "FILE_ROTATE_BYTES", 10_000)
    monkeypatch.setattr(logs, "LINGER_S", 0.5 if batched else 0.0)  # batched: every call lands in one write
    store = LogStore(tmp_path)
    try:
        for i in range(30):
            store.append("f", f"call {i:02d} " + "x" * 990 + "\n")  # ~1 KB a call, 30 KB in all
        store.flush()
        current, previous = tmp_path / "f.log", tmp_path / "f.log.1"
        assert current.exists() and previous.exists()
        assert current.read_text().rstrip().endswith("x") and "call 29 " in current.read_text()
        assert previous.stat().st_size <= 10_000 and current.stat().st_size <= 10_000
        assert store.tail("f", 1)[0].startswith("call 29 ")
    finally:
        store.close()


def test_flush_does_not_wait_for_the_linger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "LINGER_S", 30.0)
    store = LogStore(tmp_path)
    try:
        store.append("f", "one line\n")
        store.flush(timeout=5)
        assert (tmp_path / "f.log").read_text() == "one line\n"
    finally:
        store.close()
