"""Hostile YAML in every file faas parses: function.yaml, faas.yaml and SAM templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas.config import Config
from faas.deploy import sam
from faas.deploy.packages import parse_spec
from faas.errors import ValidationError
from faas.models import short_repr


def _bomb(levels: int) -> str:
    lines = [" - &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += [f" - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_function_yaml_refuses_aliases_where_they_are() -> None:
    with pytest.raises(ValidationError) as e:
        parse_spec("name: x\nhandler:\n" + _bomb(6), "function.yaml")
    assert "line 4" in e.value.message and "alias" in e.value.message
    assert len(e.value.message) < 500


def test_a_huge_value_is_quoted_short() -> None:
    with pytest.raises(ValidationError) as e:
        parse_spec("name: x\nruntime: " + "y" * 100_000 + "\n", "function.yaml")
    assert "runtime must be one of" in e.value.message and len(e.value.message) < 500
    assert len(short_repr([[list(range(10))] * 10] * 10)) < 200


def test_a_5000_digit_integer_is_a_located_validation_error() -> None:
    with pytest.raises(ValidationError) as e:
        parse_spec("name: x\nmemory: " + "1" * 5000 + "\n", "function.yaml")
    assert "line 2" in e.value.message and "4300-digit" in e.value.message


def test_faas_yaml_refuses_aliases(tmp_path: Path) -> None:
    (tmp_path / "faas.yaml").write_text("port: &p 8080\nthreads: *p\n")
    with pytest.raises(ValidationError, match="alias"):
        Config.load({"state_dir": str(tmp_path)}, env={})


def _template(tmp_path: Path, body: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text("AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n" + body)
    return path


def test_a_sam_template_may_use_anchors_within_a_bound(tmp_path: Path) -> None:
    path = _template(
        tmp_path,
        "Resources:\n"
        "  One:\n    Type: AWS::Serverless::Function\n    Properties: &props\n"
        "      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.11\n"
        "  Two:\n    Type: AWS::Serverless::Function\n    Properties:\n      <<: *props\n      MemorySize: 256\n",
    )
    specs = {f.spec.name: f.spec for f in sam.load(path).functions}
    assert specs["Two"].memory == 256 and specs["Two"].handler == specs["One"].handler == "app.handler"


def test_a_sam_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = _template(tmp_path, "Resources: {}\nMetadata:\n" + _bomb(9))
    with pytest.raises(ValidationError, match="aliases are written out"):
        sam.load(path)
