"""`faas init`: each runtime's starter is a valid function folder, written safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faas.cli.main import main
from faas.cli.scaffold import starter_files, write_starter
from faas.deploy.packages import read_spec, zip_folder
from faas.errors import ValidationError
from faas.models import RUNTIMES


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_each_runtime_gets_a_deployable_starter(tmp_path: Path, runtime: str) -> None:
    folder = write_starter("my-fn", runtime, tmp_path)
    spec = read_spec(folder)
    assert (spec.name, spec.runtime, spec.memory, spec.timeout) == ("my-fn", runtime, 128, 3)
    assert spec.environment == {"GREETING": "Hello"}
    assert zip_folder(folder)  # the same packaging `faas deploy` does accepts it
    module = spec.handler.split(".")[0]
    names = {p.name for p in folder.iterdir()}
    if runtime.startswith("provided"):
        assert {"bootstrap", f"{module}.sh"} <= names
        assert os.access(folder / "bootstrap", os.X_OK)
        assert (folder / "bootstrap").read_text().startswith("#!/bin/sh\n")
    elif runtime.startswith("java"):  # compiled at deploy by its build: command
        assert spec.handler == "example.Hello::handleRequest" and "src" in names
        assert "handleRequest" in (folder / "src/example/Hello.java").read_text()
    else:
        extension = {"python": "py", "nodejs": "mjs", "ruby": "rb"}[runtime.rstrip("0123456789.x")]
        handler_file = f"{module}.{extension}"
        assert handler_file in names and not os.access(folder / handler_file, os.X_OK)
        assert spec.handler.split(".")[1] in (folder / handler_file).read_text()


def test_starter_refuses_a_folder_with_files_and_bad_input(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ValidationError, match="already exists and is not empty"):
        write_starter("taken", "python3.11", tmp_path)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert write_starter("empty", "nodejs20.x", tmp_path) == tmp_path / "empty"
    with pytest.raises(ValidationError, match="runtime must be one of"):
        starter_files("fn", "ruby3.4")
    with pytest.raises(ValidationError, match="function name"):
        starter_files("no spaces", "python3.11")


def test_faas_init_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "hello-sh", "--runtime", "provided", "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"created {tmp_path / 'hello-sh' / 'bootstrap'}" in printed and "faas deploy" in printed
    assert read_spec(tmp_path / "hello-sh").runtime == "provided"
    assert main(["init", "hello-sh", "--dir", str(tmp_path)]) == 1  # exists: refused, nothing overwritten
