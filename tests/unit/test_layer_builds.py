"""A template's LayerVersion with Metadata BuildMethod, built as `sam build` builds it
(faas/deploy/builds.py built_layer): the layer a function receives is the built content."""

from __future__ import annotations

import io
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest

from faas.deploy import sam
from faas.errors import ValidationError


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "faas"


def template(root: Path, metadata: str, name: str = "Deps") -> Path:
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (root / "template.yaml").write_text(
        textwrap.dedent(
            """
            Transform: AWS::Serverless-2016-10-31
            Resources:
              DepsLayer:
                Type: AWS::Serverless::LayerVersion
                Properties:
                  LayerName: {name}
                  ContentUri: layer
                  CompatibleRuntimes: [python3.11]
                Metadata:
                  {metadata}
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: src
                  Handler: app.handler
                  Runtime: python3.11
                  Layers: [!Ref DepsLayer]
            """
        ).format(name=name, metadata=metadata)
    )
    return root / "template.yaml"


def layer_files(package: bytes, name: str = "Deps") -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        layer = zf.read(f".faas-layers/0/{name}.zip")
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}


def test_a_python_layer_gets_its_requirements_installed_under_python(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "layer" / "shared.py").write_text("WHO = 'layer'\n")
    fn = sam.load(template(tmp_path, "BuildMethod: python3.11")).functions[0]
    said: list[str] = []
    files = layer_files(sam.package(fn, said.append))
    assert files["python/shared.py"] == b"WHO = 'layer'\n"
    assert "python/six.py" in files, sorted(files)
    assert any("installing dependencies" in m for m in said), said
    again: list[str] = []  # a second deploy reuses the install: same content, nothing installed
    assert layer_files(sam.package(fn, again.append)) == files
    assert not any("installing dependencies" in m for m in again), again
    assert any("unchanged, using the cached install" in m for m in again), again


def test_a_makefile_layer_is_what_make_writes_to_artifacts_dir(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "Makefile").write_text(
        'build-DepsLayer:\n\tmkdir -p $(ARTIFACTS_DIR)/python\n\techo "MADE = True" > $(ARTIFACTS_DIR)/python/made.py\n'
    )
    fn = sam.load(template(tmp_path, "BuildMethod: makefile")).functions[0]
    assert layer_files(sam.package(fn)) == {"python/made.py": b"MADE = True\n"}


def test_a_failing_layer_build_is_refused_with_its_output(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "Makefile").write_text("build-DepsLayer:\n\t@echo layer-broke && false\n")
    fn = sam.load(template(tmp_path, "BuildMethod: makefile")).functions[0]
    with pytest.raises(ValidationError, match=r"(?s)DepsLayer: make build-DepsLayer failed.*layer-broke"):
        sam.package(fn)


def test_a_layer_without_build_method_is_sent_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "layer" / "Makefile").write_text("build-DepsLayer:\n\tfalse\n")
    fn = sam.load(template(tmp_path, "Description: none")).functions[0]
    assert sorted(layer_files(sam.package(fn))) == ["Makefile", "requirements.txt"]


@pytest.mark.parametrize("method", ["esbuild", "java21", "python2"])
def test_a_layer_build_method_faas_does_not_run_is_refused_by_name(tmp_path: Path, method: str) -> None:
    (tmp_path / "layer").mkdir()
    with pytest.raises(ValidationError, match=f"DepsLayer: Metadata BuildMethod '{method}' is not one faas runs for a layer"):
        sam.load(template(tmp_path, f"BuildMethod: {method}"))


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not on PATH")
def test_a_node_layer_is_its_files_under_nodejs(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "package.json").write_text('{"name": "l", "version": "1.0.0", "dependencies": {}}')
    (tmp_path / "layer" / "index.js").write_text("exports.who = 'layer'\n")
    fn = sam.load(template(tmp_path, "BuildMethod: nodejs20.x")).functions[0]
    files = layer_files(sam.package(fn))
    assert files["nodejs/index.js"] == b"exports.who = 'layer'\n"
    assert "nodejs/package.json" in files, sorted(files)
