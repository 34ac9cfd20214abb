"""The ruby3.3 runtime's place in faas (pure, no engine): its image recipe is Debian trixie's
ruby3.3, function.yaml and `faas init` take it, and the Ruby runtimes faas lacks point to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas.cli.scaffold import starter_files
from faas.containers import images
from faas.errors import ValidationError
from faas.invoke.launcher import EXECUTION_ENV
from faas.models import RUNTIMES, UNAVAILABLE_RUNTIMES, FunctionSpec, resolve_runtime

REPO_RUNTIMES = Path(__file__).resolve().parents[2] / "runtimes"


def test_ruby33_is_built_from_trixies_ruby33_with_its_own_client() -> None:
    assert "ruby3.3" in RUNTIMES and "ruby3.3" not in UNAVAILABLE_RUNTIMES
    recipe = images.BaseRecipe.read(REPO_RUNTIMES / "ruby3.3" / "base.conf")
    assert recipe.suite == "trixie" and recipe.packages == ("ruby3.3",)
    dockerfile = (REPO_RUNTIMES / images.dockerfile_of("ruby3.3")).read_text()
    assert "ruby3.3/faas_bootstrap.rb" in dockerfile and "AWS_EXECUTION_ENV=AWS_Lambda_ruby3.3" in dockerfile
    assert "GEM_PATH=/var/task/vendor/bundle/ruby/3.3.0:/opt/ruby/gems/3.3.0" in dockerfile
    assert "RUBYLIB=/var/task:/opt/ruby/lib" in dockerfile
    assert EXECUTION_ENV["ruby3.3"] == "AWS_Lambda_ruby3.3"
    assert images.runtime_image_tag("ruby3.3", root=REPO_RUNTIMES).startswith("faas-runtime/ruby3.3:")


def test_a_change_to_the_ruby_client_rebuilds_only_the_ruby_image(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "runtimes"
    shutil.copytree(REPO_RUNTIMES, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = {r: images.runtime_image_tag(r, root=root) for r in ("ruby3.3", "python3.11")}
    client = root / "ruby3.3" / "faas_bootstrap.rb"
    client.write_text(client.read_text() + "\n# changed\n")
    assert images.runtime_image_tag("ruby3.3", root=root) != before["ruby3.3"]
    assert images.runtime_image_tag("python3.11", root=root) == before["python3.11"]


@pytest.mark.parametrize("handler", ["app.handler", "lib/app.Greeting::Handler.process"])
def test_function_yaml_takes_ruby33_and_lambdas_handler_forms(handler: str) -> None:
    spec = FunctionSpec.from_mapping({"name": "f", "runtime": "ruby3.3", "handler": handler})
    assert resolve_runtime(spec, {}) is spec and (spec.runtime, spec.handler) == ("ruby3.3", handler)


def test_the_ruby_runtimes_faas_lacks_name_ruby33_as_the_way_forward() -> None:
    for runtime in ("ruby3.2", "ruby3.4"):
        with pytest.raises(ValidationError, match=r"runtime_fallback: \{ruby3\.\d: ruby3\.3\}") as refused:
            resolve_runtime(FunctionSpec.from_mapping({"name": "f", "runtime": runtime, "handler": "app.handler"}), {})
        assert "ruby3.3" in refused.value.message
    moved = resolve_runtime(
        FunctionSpec.from_mapping({"name": "f", "runtime": "ruby3.2", "handler": "app.handler"}), {"ruby3.2": "ruby3.3"}
    )
    assert (moved.runtime, moved.requested_runtime) == ("ruby3.3", "ruby3.2")


def test_faas_init_writes_a_ruby_handler_with_keyword_arguments() -> None:
    files = starter_files("hello-rb", "ruby3.3")
    assert set(files) == {"function.yaml", "app.rb"}
    assert "handler: app.handler" in files["function.yaml"].text and "runtime: ruby3.3" in files["function.yaml"].text
    assert "def handler(event:, context:)" in files["app.rb"].text
