"""Invocation records: written off the hot path, listed newest first, retention bounded."""

from __future__ import annotations

import time
from pathlib import Path

from faas.deploy.store import Store
from faas.models import FunctionSpec, FunctionVersion, Result, StartType, Status
from faas.observe.records import RecordStore


def version(name: str = "f", memory: int = 256) -> FunctionVersion:
    spec = FunctionSpec.from_mapping({"name": name, "memory": memory})
    return FunctionVersion(spec, 4, "ab" * 32, Path("/x"), 1, time.time())


def test_records_are_listed_newest_first_with_every_field(tmp_path: Path) -> None:
    Store(tmp_path / "faas.db").close()
    records = RecordStore(tmp_path / "faas.db")
    try:
        fv = version()
        records.record(fv, Result("r-1", b"{}", 4, start="cold", init_duration_ms=120.5, duration_ms=3.25, max_memory_mb=40))
        records.record(
            fv,
            Result("r-2", b"{}", 4, "Unhandled", "ValueError", start="warm", duration_ms=1.5, max_memory_mb=41, status="error"),
        )
        listed = records.list("f")
    finally:
        records.close()
    assert [r["request_id"] for r in listed] == ["r-2", "r-1"]
    assert listed[1] | {"finished": 0} == {
        "name": "f",
        "version": 4,
        "request_id": "r-1",
        "finished": 0,
        "start": "cold",
        "init_ms": 120.5,
        "duration_ms": 3.25,
        "max_memory_mb": 40,
        "memory_mb": 256,
        "status": "ok",
        "error_type": None,
    }
    assert listed[0]["status"] == "error" and listed[0]["error_type"] == "ValueError" and listed[0]["init_ms"] is None


def test_record_does_not_wait_for_the_disk_and_retention_is_bounded(tmp_path: Path) -> None:
    Store(tmp_path / "faas.db").close()
    records = RecordStore(tmp_path / "faas.db", keep_per_function=100)
    try:
        fv, other = version(), version("g")
        started = time.perf_counter()
        for i in range(3000):
            records.record(fv, Result(f"r-{i}", b"", 4))
        per_call_us = (time.perf_counter() - started) / 3000 * 1e6
        records.record(other, Result("g-1", b"", 4))
        listed = records.list("f", limit=10_000)
        assert records.list("g") and records.list("g")[0]["request_id"] == "g-1"
    finally:
        records.close()
    assert per_call_us < 200, per_call_us  # a queue put, not an SQLite write (generous bound)
    assert 100 <= len(listed) < 100 + 64 + 1
    assert listed[0]["request_id"] == "r-2999"


def test_records_survive_a_restart_and_go_with_their_function(tmp_path: Path) -> None:
    Store(tmp_path / "faas.db").close()
    first = RecordStore(tmp_path / "faas.db")
    first.record(version(), Result("r-1", b"", 4))
    first.close()
    second = RecordStore(tmp_path / "faas.db")
    try:
        assert [r["request_id"] for r in second.list("f")] == ["r-1"]
        second.remove("f")
        assert second.list("f") == []
    finally:
        second.close()


def test_typed_states_are_stored_as_their_plain_strings(tmp_path: Path) -> None:
    Store(tmp_path / "faas.db").close()
    records = RecordStore(tmp_path / "faas.db")
    try:
        records.record(version(), Result("r-1", b"", 4, start=StartType.PRESTARTED, status=Status.OOM))
        records.throttled("f")  # a throttled call never ran: no record
        (row,) = records.list("f")
    finally:
        records.close()
    assert type(row["start"]) is str and type(row["status"]) is str
    assert (row["start"], row["status"]) == ("prestarted", "oom")
    assert row["start"] == StartType.PRESTARTED and row["status"] == Status.OOM


def test_a_full_disk_is_named_its_lost_records_counted_and_writing_resumes(tmp_path: Path, caplog) -> None:
    """SQLITE_FULL from real SQLite: the records connection may not grow the file (max_page_count)."""
    Store(tmp_path / "faas.db").close()
    records = RecordStore(tmp_path / "faas.db")
    fv = version()
    try:
        records.record(fv, Result("before", b"", 4))
        records.flush()
        (pages,) = records._db.execute("PRAGMA page_count").fetchone()
        records._db.execute(f"PRAGMA max_page_count = {pages}")
        with caplog.at_level("WARNING", logger="faas.observe.records"):
            for i in range(3):  # each flushed alone: three failed writes, one warning
                for j in range(200):
                    records.record(fv, Result(f"lost-{i}-{j}-" + "x" * 200, b"", 4))
                records.flush()
            assert records.dropped == 600
            warnings = [r.getMessage() for r in caplog.records]
            assert len(warnings) == 1, warnings
            assert "the disk is full" in warnings[0] and "600" not in warnings[0] and "200 record(s) dropped" in warnings[0]
            assert "cannot rollback" not in caplog.text
            records._db.execute("PRAGMA max_page_count = 1000000")
            records.record(fv, Result("after", b"", 4))
            records.flush()
            assert "written again, after 600 record(s) were dropped" in caplog.text
        assert [c["request_id"] for c in records.list("f")] == ["after", "before"]
    finally:
        records.close()
