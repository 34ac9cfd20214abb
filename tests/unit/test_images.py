"""faas.containers.images without an engine: content-hash tags, the apt sources handed to mmdebstrap,
and the build sequence against a fake executor."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faas.containers import images
from faas.errors import ImageBuildError

REPO_RUNTIMES = Path(__file__).resolve().parents[2] / "runtimes"


def make_runtimes(root: Path) -> Path:
    folder = root / "python"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    (folder / "base.conf").write_text("suite = bookworm\npackages = python3\n")
    (folder / "bootstrap").write_text("#!/usr/bin/python3\nprint('hi')\n")
    (folder / "bootstrap").chmod(0o755)
    return root


# --- tags ---------------------------------------------------------------------------------


def test_tag_of_the_real_python_runtime():
    tag = images.runtime_image_tag("python3.11", root=REPO_RUNTIMES)
    repo, _, digest = tag.partition(":")
    assert repo == "faas-runtime/python"
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert images.runtime_image_tag("python3.11", root=REPO_RUNTIMES) == tag  # deterministic
    assert images.base_image_tag("python3.11", root=REPO_RUNTIMES).startswith("faas-base/python:")


def test_tag_follows_the_runtime_files(tmp_path):
    root = make_runtimes(tmp_path)
    first = images.runtime_image_tag("python3.11", root=root)
    base = images.base_image_tag("python3.11", root=root)

    (root / "python" / "bootstrap").write_text("#!/usr/bin/python3\nprint('changed')\n")
    second = images.runtime_image_tag("python3.11", root=root)
    assert second != first
    assert images.base_image_tag("python3.11", root=root) == base  # the Debian base is unaffected

    (root / "python" / "bootstrap").chmod(0o644)  # the executable bit counts too
    assert images.runtime_image_tag("python3.11", root=root) != second


def test_tag_ignores_bytecode_and_editor_files(tmp_path):
    root = make_runtimes(tmp_path)
    before = images.runtime_image_tag("python3.11", root=root)
    (root / "python" / "__pycache__").mkdir()
    (root / "python" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "python" / "bootstrap~").write_text("backup")
    assert images.runtime_image_tag("python3.11", root=root) == before


def test_shared_base_folder_is_part_of_every_tag(tmp_path):
    root = make_runtimes(tmp_path)
    before = images.runtime_image_tag("python3.11", root=root)
    (root / "base").mkdir()
    (root / "base" / "forwarder").write_text("shared")
    assert images.runtime_image_tag("python3.11", root=root) != before


def test_other_runtime_folders_do_not_change_the_tag(tmp_path):
    root = make_runtimes(tmp_path)
    before = images.runtime_image_tag("python3.11", root=root)
    (root / "node").mkdir()
    (root / "node" / "Dockerfile").write_text("FROM x\n")
    assert images.runtime_image_tag("python3.11", root=root) == before


def test_base_tag_follows_base_conf(tmp_path):
    root = make_runtimes(tmp_path)
    before = images.base_image_tag("python3.11", root=root)
    (root / "python" / "base.conf").write_text("# a comment\nsuite = bookworm\npackages = python3, ca-certificates\n")
    assert images.base_image_tag("python3.11", root=root) != before


def test_unknown_runtime_and_bad_recipes_are_named(tmp_path):
    with pytest.raises(ImageBuildError, match="ruby3.4"):
        images.runtime_image_tag("ruby3.4", root=REPO_RUNTIMES)
    root = make_runtimes(tmp_path)
    (root / "python" / "base.conf").write_text("packages python3\n")
    with pytest.raises(ImageBuildError, match="base.conf:1"):
        images.base_image_tag("python3.11", root=root)
    (root / "python" / "base.conf").write_text("suite = bookworm\n")
    with pytest.raises(ImageBuildError, match="packages"):
        images.base_image_tag("python3.11", root=root)


# --- apt sources for mmdebstrap -----------------------------------------------------------


def write_etc(tmp_path: Path, files: dict[str, str], codename: str = "bookworm") -> tuple[Path, Path]:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    os_release = tmp_path / "os-release"
    os_release.write_text(f'PRETTY_NAME="Debian"\nVERSION_CODENAME={codename}\n')
    return etc, os_release


DEB822 = """Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
"""


def test_sources_from_deb822(tmp_path):
    etc, os_release = write_etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    text = images.debian_sources("bookworm", etc=etc, os_release=os_release)
    assert text.splitlines() == [
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm-updates main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security bookworm-security main",
    ]


def test_sources_leave_out_third_party_and_disabled_repositories(tmp_path):
    etc, os_release = write_etc(
        tmp_path,
        {
            "sources.list": "deb http://mirror.example/debian bookworm main\n# deb http://old.example/debian bookworm main\n",
            "sources.list.d/docker.list": "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] http://vendor.example/linux/debian bookworm stable\n",
            "sources.list.d/node.sources": "Types: deb\nURIs: http://vendor.example/node\nSuites: nodistro\nComponents: main\n",
            "sources.list.d/off.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
            "sources.list.d/node.sources.disabled": DEB822,
        },
    )
    assert images.debian_sources("bookworm", etc=etc, os_release=os_release) == "deb http://mirror.example/debian bookworm main\n"


def test_sources_of_a_newer_host_are_pointed_at_the_runtime_suite(tmp_path):
    etc, os_release = write_etc(
        tmp_path,
        {
            "sources.list.d/debian.sources": DEB822.replace("bookworm", "trixie"),
        },
        codename="trixie",
    )
    lines = images.debian_sources("bookworm", etc=etc, os_release=os_release).splitlines()
    assert [line.split()[-2] for line in lines] == ["bookworm", "bookworm-updates", "bookworm-security"]


def test_no_debian_sources_is_a_clear_error(tmp_path):
    etc, os_release = write_etc(tmp_path, {})
    with pytest.raises(ImageBuildError, match="no Debian apt sources"):
        images.debian_sources("bookworm", etc=etc, os_release=os_release)


def test_mmdebstrap_recipe_is_small_and_offline_capable(tmp_path):
    recipe = images.BaseRecipe(suite="bookworm", packages=("python3",))
    argv = images._mmdebstrap_argv("mmdebstrap", recipe, tmp_path / "out.tar", tmp_path / "faas.list")
    assert "--variant=minbase" in argv and "--include=python3" in argv
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "out.tar"), str(tmp_path / "faas.list")]


# --- the build sequence, against a fake executor ------------------------------------------


class FakeExecutor:
    def __init__(self, existing: set[str] | None = None, fail_build: bool = False) -> None:
        self.images = set(existing or ())
        self.calls: list[tuple] = []
        self.fail_build = fail_build

    def image_exists(self, tag: str) -> bool:
        return tag in self.images

    def import_image(self, tar_path: Path, tag: str) -> None:
        assert tar_path.read_bytes() == b"rootfs"
        self.calls.append(("import", tag))
        self.images.add(tag)

    def build_image(self, context_dir, tag, buildargs, on_line, *, dockerfile="Dockerfile", labels=None) -> None:
        self.calls.append(("build", tag, buildargs["BASE"], dockerfile))
        on_line("Step 1/2 : ARG BASE")
        on_line("Step 2/2 : FROM ${BASE}")
        if self.fail_build:
            raise ImageBuildError("The command '/bin/sh -c false' returned a non-zero code: 1")
        self.images.add(tag)


@pytest.fixture
def fake_mmdebstrap(monkeypatch):
    runs: list[list[str]] = []

    def run(argv: list[str], progress) -> None:
        runs.append(argv)
        progress.step("mmdebstrap: downloading packages with apt")
        Path(argv[-2]).write_bytes(b"rootfs")

    monkeypatch.setattr(images, "_run_mmdebstrap", run)
    monkeypatch.setattr(images, "debian_sources", lambda suite: f"deb http://mirror.example/debian {suite} main\n")
    monkeypatch.setattr(images.shutil, "which", lambda name, path=None: f"/usr/bin/{name}")
    return runs


def test_builds_base_then_image_once(tmp_path, fake_mmdebstrap):
    root = make_runtimes(tmp_path / "runtimes")
    executor = FakeExecutor()
    said: list[str] = []
    tag = images.ensure_runtime_image("python3.11", executor, say=said.append, root=root, work_dir=tmp_path / "work")
    base = images.base_image_tag("python3.11", root=root)
    assert tag == images.runtime_image_tag("python3.11", root=root)
    assert executor.calls == [("import", base), ("build", tag, base, "python/Dockerfile")]
    assert any(line.startswith("mmdebstrap: downloading") for line in said)
    assert any(line.startswith("docker build step 2/2") for line in said)
    assert not list((tmp_path / "work").glob("faas-base-*"))  # the tarball is gone after import

    executor.calls.clear()
    assert images.ensure_runtime_image("python3.11", executor, say=said.append, root=root, work_dir=tmp_path / "work") == tag
    assert executor.calls == [] and len(fake_mmdebstrap) == 1


def test_existing_base_is_reused(tmp_path, fake_mmdebstrap):
    root = make_runtimes(tmp_path / "runtimes")
    base = images.base_image_tag("python3.11", root=root)
    executor = FakeExecutor(existing={base})
    images.ensure_runtime_image("python3.11", executor, say=lambda _: None, root=root, work_dir=tmp_path)
    assert [c[0] for c in executor.calls] == ["build"] and fake_mmdebstrap == []


def test_force_rebuilds_everything(tmp_path, fake_mmdebstrap):
    root = make_runtimes(tmp_path / "runtimes")
    tag = images.runtime_image_tag("python3.11", root=root)
    executor = FakeExecutor(existing={tag, images.base_image_tag("python3.11", root=root)})
    images.ensure_runtime_image("python3.11", executor, force=True, say=lambda _: None, root=root, work_dir=tmp_path)
    assert [c[0] for c in executor.calls] == ["import", "build"]


def test_build_failure_names_the_step(tmp_path, fake_mmdebstrap):
    root = make_runtimes(tmp_path / "runtimes")
    executor = FakeExecutor(fail_build=True)
    with pytest.raises(ImageBuildError, match=r"docker build step 2/2 failed: .*non-zero code"):
        images.ensure_runtime_image("python3.11", executor, say=lambda _: None, root=root, work_dir=tmp_path)


def test_mmdebstrap_failure_keeps_the_output_tail(tmp_path, monkeypatch):
    script = tmp_path / "fake-mmdebstrap"
    script.write_text("#!/bin/sh\necho 'I: downloading packages with apt...'\necho 'E: cannot reach the mirror'\nexit 1\n")
    script.chmod(0o755)
    progress = images._Progress(lambda _: None)
    with pytest.raises(ImageBuildError) as raised:
        images._run_mmdebstrap([str(script)], progress)
    assert "mmdebstrap: downloading packages with apt failed (exit 1)" in str(raised.value)
    assert "E: cannot reach the mirror" in str(raised.value)


def test_runtimes_root_can_be_configured(monkeypatch, tmp_path):
    monkeypatch.setenv("FAAS_RUNTIMES_DIR", str(tmp_path))
    assert images.runtimes_root() == tmp_path
    monkeypatch.delenv("FAAS_RUNTIMES_DIR")
    assert images.runtimes_root() == REPO_RUNTIMES
    assert os.access(REPO_RUNTIMES / "python" / "bootstrap", os.X_OK)
