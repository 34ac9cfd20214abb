"""Builds and dependencies on the host (faas/deploy/builds.py, dependencies.py): what a developer
sees from function.yaml's build:, the install cache, and how installed files join the package."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

from faas.deploy import builds, dependencies
from faas.deploy.packages import parse_spec, zip_folder
from faas.deploy.sam import build_of
from faas.errors import ValidationError

SPEC = "name: b\nruntime: python3.11\nhandler: app.handler\n"


def names(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "faas"


def test_function_yaml_build_must_be_a_command_line() -> None:
    assert parse_spec(SPEC + "build: make dist\n", "function.yaml").name == "b"
    with pytest.raises(ValidationError, match="build must be a command line"):
        parse_spec(SPEC + "build: [make, dist]\n", "function.yaml")


def test_installed_files_join_the_package_and_the_functions_own_files_win(tmp_path: Path) -> None:
    folder, extra = tmp_path / "f", tmp_path / "deps"
    (folder / "node_modules" / "old").mkdir(parents=True)
    (folder / "function.yaml").write_text(SPEC)
    (folder / "six.py").write_text("mine")
    (folder / "node_modules" / "old" / "x.js").write_text("stale")
    (extra / "pkg").mkdir(parents=True)
    (extra / "six.py").write_text("installed")
    (extra / "pkg" / "__init__.py").write_text("")
    files = names(zip_folder(folder, extra=[extra], skip=("node_modules",)))
    assert files["six.py"] == b"mine" and "pkg/__init__.py" in files
    assert not any(n.startswith("node_modules/") for n in files)


def test_the_manifest_is_the_runtimes_and_its_cache_key_follows_the_lock(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    (tmp_path / "package.json").write_text("{}")
    assert dependencies.manifest(tmp_path, "python3.13") == ("python", [tmp_path / "requirements.txt"])
    assert dependencies.manifest(tmp_path, "provided.al2023") is None
    kind, files = dependencies.manifest(tmp_path, "nodejs20.x") or ("", [])
    assert kind == "node" and files == [tmp_path / "package.json"]
    before = dependencies.cache_key("node", "nodejs20.x", files)
    (tmp_path / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3}))
    _, locked = dependencies.manifest(tmp_path, "nodejs20.x") or ("", [])
    assert dependencies.cache_key("node", "nodejs20.x", locked) != before
    assert dependencies.cache_key("node", "nodejs22.x", files) != before


def test_a_cached_install_is_used_without_running_pip(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "function.yaml").write_text(SPEC)
    (folder / "app.py").write_text("import six\n")
    (folder / "requirements.txt").write_text("six==1.17.0\n")
    key = dependencies.cache_key("python", "python3.11", [folder / "requirements.txt"])
    (cache / "deps" / key[:32]).mkdir(parents=True)
    (cache / "deps" / key[:32] / "six.py").write_text("cached")
    monkeypatch.setattr(dependencies, "run", lambda *a, **k: pytest.fail("pip ran for a cached install"))
    said: list[str] = []
    built = builds.package_folder(folder, progress=said.append)
    assert built.dependencies is not None and not built.dependencies.installed
    assert names(built.data)["six.py"] == b"cached"
    assert any("using the cached install" in line for line in said)


def test_a_build_command_makes_the_package_from_artifacts_dir(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    script = "import os, pathlib; pathlib.Path(os.environ['ARTIFACTS_DIR'], 'app.py').write_text('built')"
    (folder / "function.yaml").write_text(SPEC + f'build: {sys.executable} -c "{script}"\n')
    (folder / "source.txt").write_text("not in the package")
    files = names(builds.package_folder(folder).data)
    assert files["app.py"] == b"built" and "source.txt" not in files and "function.yaml" in files


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (f"{sys.executable} -c \"print('boom'); raise SystemExit(3)\"", "failed (exit status 3):\nboom"),
        (f"{sys.executable} -c pass", "wrote nothing to ARTIFACTS_DIR"),
        ("'unclosed", "cannot be read"),
    ],
)
def test_a_failing_build_is_refused_with_its_output(tmp_path: Path, command: str, message: str) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "function.yaml").write_text(SPEC + f"build: {json.dumps(command)}\n")
    with pytest.raises(ValidationError) as e:
        builds.package_folder(folder)
    assert message in e.value.message


def test_sam_build_methods_faas_does_not_run_are_refused_by_name() -> None:
    assert build_of("Fn", {"BuildMethod": "makefile"}) == builds.Build("makefile", "Fn", {})
    assert build_of("Fn", {"Other": 1}) is None
    with pytest.raises(ValidationError, match="BuildMethod 'rust-cargolambda' is not one faas runs"):
        build_of("Fn", {"BuildMethod": "rust-cargolambda"})
