"""Following a log file across appends, partial lines and rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faas.errors import ValidationError
from faas.logs import follow as log_follow


def test_start_then_new_whole_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "f.log"
    log.write_text("a\nb\nc\n")
    text, cursor = log_follow.start(log, 2)
    assert text == b"b\nc\n"
    with open(log, "a") as f:
        f.write("d\npart")
    text, cursor = log_follow.read_since(log, cursor)
    assert text == b"d\n"
    with open(log, "a") as f:
        f.write("ial\n")
    text, cursor = log_follow.read_since(log, cursor)
    assert text == b"partial\n"
    assert log_follow.read_since(log, cursor) == (b"", cursor)


def test_rotation_reads_the_rest_of_the_old_file_then_the_new(tmp_path: Path) -> None:
    log = tmp_path / "f.log"
    log.write_text("one\n")
    _, cursor = log_follow.start(log, 10)
    with open(log, "a") as f:
        f.write("two\n")
    os.replace(log, tmp_path / "f.log.1")  # what LogStore does past FILE_ROTATE_BYTES
    log.write_text("three\n")
    text, cursor = log_follow.read_since(log, cursor)
    assert text == b"two\nthree\n"
    text, _ = log_follow.start(log, 10)
    assert text == b"one\ntwo\nthree\n"


def test_a_missing_file_then_a_new_one(tmp_path: Path) -> None:
    log = tmp_path / "f.log"
    text, cursor = log_follow.start(log, 5)
    assert text == b""
    assert log_follow.wait_since(log, cursor, 0.2) == (b"", cursor)
    log.write_text("x\n")
    assert log_follow.read_since(log, cursor)[0] == b"x\n"


@pytest.mark.parametrize("cursor", ["", "abc", "1", "-1:0"])
def test_bad_cursors_are_refused(tmp_path: Path, cursor: str) -> None:
    with pytest.raises(ValidationError):
        log_follow.read_since(tmp_path / "f.log", cursor)
