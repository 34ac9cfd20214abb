"""function.yaml's and faas.yaml's settings for container-image functions (docs/image-functions.md)."""

from __future__ import annotations

import pytest

from faas.config import _runtime_images
from faas.errors import ValidationError
from faas.models import FunctionSpec, resolve_runtime


def test_an_image_function_round_trips_with_its_image_config() -> None:
    raw = {
        "name": "img",
        "package_type": "Image",
        "image_uri": "my/fn:1",
        "image_config": {"EntryPoint": ["/bin/run"], "Command": ["app.h"], "WorkingDirectory": "/srv"},
    }
    spec = FunctionSpec.from_mapping(raw)
    assert spec.handler == "" and spec.image_config["Command"] == ("app.h",)
    assert FunctionSpec.from_mapping(spec.to_mapping()) == spec


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"package_type": "Container"}, "package_type must be one of Zip, Image"),
        ({"package_type": "Image"}, "image_uri must name an image"),
        ({"package_type": "Image", "image_uri": "Bad Name"}, "image_uri must name an image"),
        ({"package_type": "Image", "image_uri": "a:1", "image_config": {"Cmd": ["x"]}}, "unknown key 'Cmd'"),
        ({"package_type": "Image", "image_uri": "a:1", "image_config": {"Command": "x"}}, "Command must be a list"),
        ({"package_type": "Image", "image_uri": "a:1", "image_config": {"WorkingDirectory": "rel"}}, "absolute path"),
        ({"image_uri": "a:1"}, "image_uri and image_config are for package_type Image"),
    ],
)
def test_bad_image_settings_are_refused_by_name(extra: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FunctionSpec.from_mapping({"name": "img", **extra})


def test_runtime_images_keeps_a_mapped_unavailable_runtime_as_it_is() -> None:
    spec = FunctionSpec.from_mapping({"name": "f", "runtime": "python3.12"})
    assert resolve_runtime(spec, {"python3.12": "python3.12"}) == spec
    with pytest.raises(ValidationError, match="python3.12"):
        resolve_runtime(spec, {})


def test_runtime_images_settings_are_checked() -> None:
    assert _runtime_images({"python3.12": "my/python:3.12"}) == {"python3.12": "my/python:3.12"}
    with pytest.raises(ValidationError, match="not a Lambda runtime"):
        _runtime_images({"cobol": "x:1"})
    with pytest.raises(ValidationError, match="not an image name"):
        _runtime_images({"python3.12": "Not An Image"})
