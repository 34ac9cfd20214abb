"""The recipes of the nodejs20.x, provided and awslambdaric images: what they are built from,
and that an image is rebuilt when a file it copies changes (pure: no engine)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faas.containers import images
from faas.errors import ImageBuildError
from faas.models import RUNTIMES

REPO_RUNTIMES = Path(__file__).resolve().parents[2] / "runtimes"


def test_every_function_runtime_has_a_recipe_and_faas_up_builds_only_those() -> None:
    assert set(images.RUNTIME_FOLDERS) == set(RUNTIMES)
    for runtime in RUNTIMES:
        folder = REPO_RUNTIMES / images.runtime_folder(runtime)
        assert (REPO_RUNTIMES / images.dockerfile_of(folder.name)).is_file() and (folder / "base.conf").is_file()
        assert images.runtime_image_tag(runtime, root=REPO_RUNTIMES).startswith(f"{images.IMAGE_REPOSITORY}/{folder.name}:")
    assert "awslambdaric" not in images.RUNTIME_FOLDERS  # built by the tests only


def test_node_comes_from_debian_trixie_and_provided_from_bookworm() -> None:
    node = images.BaseRecipe.read(REPO_RUNTIMES / "node" / "base.conf")
    assert node.suite == "trixie" and "nodejs" in node.packages  # bookworm's nodejs is 18
    provided = images.BaseRecipe.read(REPO_RUNTIMES / "provided" / "base.conf")
    assert provided.suite == "bookworm" and {"curl", "socat"} <= set(provided.packages)
    assert "jq" not in provided.packages  # the launcher parses JSON with awk (env.awk)
    ric = images.BaseRecipe.read(REPO_RUNTIMES / "awslambdaric" / "base.conf")
    assert "python3" in ric.packages and set(provided.packages) <= set(ric.packages)


def test_the_trixie_sources_come_from_the_machines_own_mirror(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    os_release = tmp_path / "os-release"
    os_release.write_text("VERSION_CODENAME=bookworm\n")
    text = images.debian_sources("trixie", etc=etc, os_release=os_release)
    assert "http://mirror.example/debian trixie main" in text and "trixie-updates main" in text
    assert "bookworm" not in text


def test_awslambdaric_image_is_rebuilt_when_the_provided_launcher_changes(tmp_path: Path) -> None:
    root = tmp_path / "runtimes"
    shutil.copytree(REPO_RUNTIMES, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = images.runtime_image_tag("awslambdaric", root=root)
    node_before = images.runtime_image_tag("nodejs20.x", root=root)
    (root / "provided" / "launch").write_text((root / "provided" / "launch").read_text() + "# changed\n")
    assert images.runtime_image_tag("awslambdaric", root=root) != before
    assert images.runtime_image_tag("nodejs20.x", root=root) == node_before


def test_unknown_image_is_refused() -> None:
    with pytest.raises(ImageBuildError, match="no runtime image recipe"):
        images.runtime_image_tag("ruby3.4", root=REPO_RUNTIMES)
