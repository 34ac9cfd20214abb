"""Layer versions and function.yaml layers without an engine: the store, the limits, the zip
that carries a layer folder with the code."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from faas.deploy.layers import LayerStore
from faas.deploy.packages import unpack, zip_folder
from faas.deploy.store import Store
from faas.errors import ValidationError


def a_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return buffer.getvalue()


@pytest.fixture
def layers(tmp_path: Path) -> LayerStore:
    return LayerStore(Store(tmp_path / "faas.db"), tmp_path / "layers")


def test_versions_go_up_and_are_never_given_again(layers: LayerStore) -> None:
    one = layers.publish("common", a_zip({"python/a.py": "A = 1\n"}))
    two = layers.publish("common", a_zip({"python/a.py": "A = 2\n"}))
    assert (one.arn, two.version) == ("arn:aws:lambda:us-east-1:123456789012:layer:common:1", 2)
    assert (two.content_dir / "python" / "a.py").read_text() == "A = 2\n"
    assert layers.delete("common", 2)
    assert layers.publish("common", a_zip({"b": ""})).version == 3
    assert [v.version for v in layers.versions("common")] == [1, 3]
    # reuse: the same content and settings again is the latest version, not a new one
    assert layers.publish("common", a_zip({"b": ""}), reuse=True).version == 3


def test_limits_as_lambda_words_them(layers: LayerStore) -> None:
    arn = layers.publish("l", a_zip({"x": "1"})).arn
    with pytest.raises(ValidationError, match="Cannot reference more than 5 layers"):
        layers.resolve([arn] * 6)
    with pytest.raises(
        ValidationError, match=r"Function code combined with layers exceeds the maximum allowed size of 262144000"
    ):
        layers.resolve([arn], code_size=262144000)
    with pytest.raises(ValidationError, match="layer:l:9 does not exist"):
        layers.resolve([arn[:-1] + "9"])
    foreign = "arn:aws:lambda:us-east-1:999999999999:layer:vendor:2"
    with pytest.raises(ValidationError, match="layer_map"):
        layers.resolve([foreign])
    with pytest.raises(ValidationError, match="absolute path"):
        layers.publish("bad", a_zip({"/etc/passwd": "x"}))


def test_a_layer_folder_travels_with_the_code_and_becomes_an_arn(tmp_path: Path, layers: LayerStore) -> None:
    fn = tmp_path / "fn"
    (fn / "layer" / "python").mkdir(parents=True)
    (fn / "layer" / "python" / "helper.py").write_text("H = 1\n")
    (fn / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (fn / "function.yaml").write_text("name: fn\nlayers: [layer]\n")
    data = zip_folder(fn)
    assert zip_folder(fn) == data  # reproducible
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == [".faas-layers/0/layer.zip", "app.py", "function.yaml"]

    def publish(name: str, content: bytes) -> str:
        return layers.publish(name, content, reuse=True).arn

    package = unpack(data, tmp_path / "packages", publish_layer=publish)
    assert package.spec.layers == ("arn:aws:lambda:us-east-1:123456789012:layer:layer:1",)
    assert sorted(p.name for p in package.code_dir.iterdir()) == ["app.py", "function.yaml"]
    assert unpack(data, tmp_path / "packages", publish_layer=publish).sha256 == package.sha256  # no new version
    with pytest.raises(ValidationError, match="not sent with the code"):
        unpack(a_zip({"function.yaml": "name: fn\nlayers: [layer]\n"}), tmp_path / "packages", publish_layer=publish)
    with pytest.raises(ValidationError, match="holds only the layers"):
        unpack(a_zip({"function.yaml": "name: fn\n", ".faas-layers/x": ""}), tmp_path / "packages", publish_layer=publish)
