"""Runtime names: every runtime faas builds is accepted wherever a function is described, a
Lambda runtime that no source here provides is refused at deploy with the way forward, and
faas.yaml's runtime_fallback moves it to an available runtime only when asked, with a warning."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from faas.cli.main import build_parser, runtimes_to_build
from faas.config import Config
from faas.deploy.packages import unpack
from faas.errors import ValidationError
from faas.models import (
    DEFAULT_RUNTIMES,
    RUNTIMES,
    UNAVAILABLE_RUNTIMES,
    FunctionSpec,
    fallback_warning,
    resolve_runtime,
)


def zipped(function_yaml: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("function.yaml", function_yaml)
        zf.writestr("app.py", "def handler(event, context):\n    return 1\n")
    return buffer.getvalue()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_available_runtime_is_accepted_as_written(runtime: str) -> None:
    spec = FunctionSpec.from_mapping({"name": "f", "runtime": runtime, "handler": "app.handler"})
    assert resolve_runtime(spec, {}) is spec and spec.runtime == runtime and not spec.requested_runtime


def test_provided_runtimes_take_any_handler_and_the_others_need_module_function() -> None:
    for runtime in ("provided", "provided.al2", "provided.al2023"):
        assert FunctionSpec.from_mapping({"name": "f", "runtime": runtime, "handler": "anything"}).handler == "anything"
    with pytest.raises(ValidationError, match="handler must be 'module.function'"):
        FunctionSpec.from_mapping({"name": "f", "runtime": "nodejs22.x", "handler": "anything"})


def test_an_unavailable_runtimes_own_handler_form_does_not_hide_why_it_is_refused() -> None:
    spec = FunctionSpec.from_mapping({"name": "f", "runtime": "dotnet8", "handler": "Asm::Ns.Fn::Handle"})
    with pytest.raises(ValidationError, match="runtime dotnet8 is not available"):
        resolve_runtime(spec, {})


def test_a_name_that_is_no_lambda_runtime_is_refused_when_read() -> None:
    with pytest.raises(ValidationError, match=r"runtime must be one of python3\.11, python3\.13"):
        FunctionSpec.from_mapping({"name": "f", "runtime": "python2.7"})


@pytest.mark.parametrize(
    ("runtime", "nearest"),
    [
        ("python3.12", "python3.13"),
        ("python3.9", "python3.11"),
        ("nodejs18.x", "nodejs20.x"),
        ("java17", "java21"),
        ("dotnet8", None),
    ],
)
def test_an_unavailable_runtime_is_refused_at_deploy_with_the_way_forward(runtime: str, nearest: str | None) -> None:
    spec = FunctionSpec.from_mapping({"name": "f", "runtime": runtime, "handler": "app.handler"})
    with pytest.raises(ValidationError) as refused:
        resolve_runtime(spec, {})
    message = refused.value.message
    assert message.startswith(f"runtime {runtime} is not available in faas")
    assert "Available runtimes: " + ", ".join(RUNTIMES) in message
    if nearest:
        assert f"runtime_fallback: {{{runtime}: {nearest}}}" in message
    else:
        assert "runtime_fallback" not in message and "no dotnet runtime" in message


def test_a_deploy_of_an_unavailable_runtime_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "packages"
    with pytest.raises(ValidationError, match="runtime python3.12 is not available"):
        unpack(zipped("name: f\nruntime: python3.12\nhandler: app.handler\n"), root)
    assert not root.exists() or not any(root.iterdir())


def test_runtime_fallback_runs_it_on_the_named_runtime_and_says_so(tmp_path: Path) -> None:
    package = unpack(
        zipped("name: f\nruntime: python3.12\nhandler: app.handler\n"), tmp_path, runtime_fallback={"python3.12": "python3.13"}
    )
    spec = package.spec
    assert (spec.runtime, spec.requested_runtime) == ("python3.13", "python3.12")
    # Stored and read back (the admin API's describe, UpdateFunctionConfiguration's base) as is.
    again = FunctionSpec.from_mapping(spec.to_mapping())
    assert again == spec and resolve_runtime(again, {}) == spec
    described = {"name": "f", "runtime": spec.runtime, "spec": spec.to_mapping()}
    warning = fallback_warning(described)
    assert warning is not None and "python3.12" in warning and "runs on python3.13" in warning
    assert fallback_warning({"name": "g", "runtime": "python3.13", "spec": {"runtime": "python3.13"}}) is None
    # Another unavailable runtime is still refused: only the mapped one moves.
    with pytest.raises(ValidationError, match="nodejs18.x is not available"):
        unpack(
            zipped("name: f\nruntime: nodejs18.x\nhandler: app.handler\n"),
            tmp_path,
            runtime_fallback={"python3.12": "python3.13"},
        )


def test_requested_runtime_cannot_dress_up_an_available_runtime() -> None:
    with pytest.raises(ValidationError, match="requested_runtime"):
        FunctionSpec.from_mapping({"name": "f", "runtime": "python3.13", "requested_runtime": "python3.11"})


def test_runtime_fallback_setting_is_read_from_faas_yaml_and_checked(tmp_path: Path) -> None:
    (tmp_path / "faas.yaml").write_text("runtime_fallback:\n  python3.12: python3.13\n  nodejs18.x: nodejs20.x\n")
    config = Config.load({"state_dir": tmp_path}, env={})
    assert dict(config.runtime_fallback) == {"python3.12": "python3.13", "nodejs18.x": "nodejs20.x"}
    assert Config.load({"state_dir": tmp_path / "none"}, env={}).runtime_fallback == {}
    for text, problem in [
        ("runtime_fallback:\n  python3.11: python3.13\n", "python3.11 is available: it needs no fallback"),
        ("runtime_fallback:\n  python3.12: python3.9\n", "'python3.9' is not an available runtime"),
        ("runtime_fallback:\n  cobol: python3.13\n", "'cobol' is not a Lambda runtime"),
        ("runtime_fallback: python3.13\n", "runtime_fallback must map a runtime"),
    ]:
        (tmp_path / "faas.yaml").write_text(text)
        with pytest.raises(ValidationError, match=problem):
            Config.load({"state_dir": tmp_path}, env={})


def test_the_lists_do_not_overlap_and_faas_up_builds_only_the_defaults_unless_asked(tmp_path: Path) -> None:
    assert not set(RUNTIMES) & set(UNAVAILABLE_RUNTIMES) and set(DEFAULT_RUNTIMES) <= set(RUNTIMES)
    config = Config.load({"state_dir": tmp_path / "state"}, env={}).with_(runtime_fallback={"python3.12": "python3.14"})
    folders = []
    for name, runtime in [("a", "python3.11"), ("b", "nodejs24.x"), ("c", "python3.12"), ("d", "java17")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "function.yaml").write_text(f"name: {name}\nruntime: {runtime}\nhandler: app.handler\n")
        folders.append(folder)
    assert runtimes_to_build(config, folders[:1]) is None  # the defaults only
    assert runtimes_to_build(config, folders) == [*DEFAULT_RUNTIMES, "nodejs24.x", "python3.14"]


def test_faas_init_offers_every_runtime() -> None:
    parser = build_parser()
    for runtime in RUNTIMES:
        assert parser.parse_args(["init", "fn", "--runtime", runtime]).runtime == runtime
    with pytest.raises(SystemExit):
        parser.parse_args(["init", "fn", "--runtime", "python3.12"])
