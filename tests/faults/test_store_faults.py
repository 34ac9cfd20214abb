"""The state dir's disk fills, or the package store turns read-only, during a deploy: the
deploy fails with a clear message and the previous version stays live and intact (it goes
on answering, and a fresh environment of it still starts from the store).

The state dir is a small tmpfs mounted for this test (root only); the read-only store is a
read-only bind mount over STATE/packages (as root, a chmod would not stop a write).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.faults.support import wait_for
from tests.integration.conftest import Gateway, start_gateway, stop_gateway

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")

CODE = "VERSION = {version!r}\ndef handler(event, context):\n    return VERSION\n"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "faas-fault-disk", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        _umount(path)


def fill(disk: Path, leave_kb: int) -> Path:
    """Write a file until the disk has about leave_kb KB left (or none: the gateway's log and
    record writers may write meanwhile, and a disk that fills up sooner is just as full)."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    room = st.f_bavail * st.f_frsize - leave_kb * 1024
    with open(filler, "wb", buffering=0) as f:
        f.truncate(0)
        block = b"\0" * (1024 * 1024)
        try:
            while room >= len(block):
                f.write(block)
                room -= len(block)
            f.write(b"\0" * max(0, room))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def live_version(gw: Gateway, name: str) -> int:
    return int(requests.get(f"{gw.url}/system/functions/{name}", timeout=10).json()["version"])


def versions(gw: Gateway, name: str) -> list[int]:
    return [int(v["version"]) for v in requests.get(f"{gw.url}/system/functions/{name}/versions", timeout=10).json()]


def fresh_call(gw: Gateway, docker_client, name: str) -> object:
    """Call from a new environment: its code comes from the package store again."""
    for c in gw.function_containers(docker_client, name):
        c.remove(force=True)
    wait_for(lambda: not gw.function_containers(docker_client, name), timeout=10)
    r = gw.invoke(name)
    assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
    return r.json()


def write_version(folder: Path, version: str, blob_kb: int = 0) -> None:
    (folder / "app.py").write_text(CODE.format(version=version))
    if blob_kb:
        (folder / "blob.bin").write_bytes(os.urandom(blob_kb * 1024))  # incompressible


def test_disk_full_or_read_only_store_during_a_deploy(
    runtime_images, tmp_path: Path, make_function, docker_client, figures
) -> None:
    with small_disk(tmp_path / "disk", 48) as disk:
        gw = start_gateway(disk / "state")
        try:
            name, folder = make_function(CODE.format(version="v1"))
            gw.deploy(folder)
            assert gw.invoke(name).json() == "v1"
            v1_dir = next(p for p in (gw.state_dir / "packages").iterdir() if not p.name.startswith("."))
            v1_digest = tree_digest(v1_dir)

            # The disk fills while the new version is unpacked: 3 MB to write, about 1 MB left.
            filler = fill(disk, leave_kb=1024)
            write_version(folder, "v2", blob_kb=3 * 1024)
            out = gw.cli("deploy", str(folder))
            assert out.returncode != 0
            message = out.stdout + out.stderr
            assert "No space left on device" in message and "could not write package" in message, message
            figures.add("deploy on a full disk", message=message.strip().splitlines()[-1][:300])
            assert live_version(gw, name) == 1 and versions(gw, name) == [1]
            assert gw.invoke(name).json() == "v1"
            assert fresh_call(gw, docker_client, name) == "v1"
            assert tree_digest(v1_dir) == v1_digest
            assert not [p for p in (gw.state_dir / "packages").iterdir() if p.name.startswith(".tmp-")]

            # Space again: the same deploy now goes through.
            filler.unlink()
            gw.deploy(folder)
            assert gw.invoke(name).json() == "v2" and versions(gw, name) == [1, 2]

            # Completely full, so that not even the state database can grow: a deploy and a
            # rollback either fail and change nothing, or succeed and serve what they say.
            filler = fill(disk, leave_kb=0)
            write_version(folder, "v2b")
            out = gw.cli("deploy", str(folder))
            assert out.returncode != 0 and "No space left on device" in out.stdout + out.stderr
            assert gw.invoke(name).json() == "v2" and versions(gw, name) == [1, 2]
            out = gw.cli("rollback", name)
            if out.returncode == 0:
                assert live_version(gw, name) == 1 and gw.invoke(name).json() == "v1"
                filler.unlink()
                assert gw.cli("rollback", name, "2").returncode == 0
            else:
                assert live_version(gw, name) == 2 and gw.invoke(name).json() == "v2"
                filler.unlink()
            figures.add("rollback on a full disk", exit_code=out.returncode, output=(out.stdout + out.stderr).strip()[:300])
            assert gw.invoke(name).json() == "v2"
            v2_dir = next(
                p for p in (gw.state_dir / "packages").iterdir() if p.name != v1_dir.name and not p.name.startswith(".")
            )
            v2_digest = tree_digest(v2_dir)

            # The package store turns read-only.
            with read_only(gw.state_dir / "packages"):
                write_version(folder, "v3")
                out = gw.cli("deploy", str(folder))
                assert out.returncode != 0
                message = out.stdout + out.stderr
                assert "Read-only file system" in message, message
                figures.add("deploy on a read-only package store", message=message.strip().splitlines()[-1][:300])
                assert live_version(gw, name) == 2 and versions(gw, name) == [1, 2]
                assert gw.invoke(name).json() == "v2"
                assert fresh_call(gw, docker_client, name) == "v2"
                assert tree_digest(v2_dir) == v2_digest
            gw.deploy(folder)
            assert gw.invoke(name).json() == "v3"
        finally:
            code = stop_gateway(gw)
            left = gw.containers(docker_client)
            for c in left:
                c.remove(force=True)
        assert not left and code == 0, gw.logs()[-2000:]
