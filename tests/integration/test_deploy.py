"""Deploys through the CLI and the admin API: validation refuses bad input and changes nothing."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Gateway


def put_zip(gateway: Gateway, name: str, data: bytes) -> requests.Response:
    return requests.put(f"{gateway.url}/system/functions/{name}", data=data, timeout=120)


def zip_of(entries: dict[str, bytes | str], *, symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def store_snapshot(gateway: Gateway) -> set[str]:
    root = gateway.state_dir / "packages"
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_deploy_then_identical_redeploy_changes_nothing(gateway: Gateway, make_function) -> None:
    name, folder = make_function("def handler(e, c):\n    return 'v1'\n")
    first = gateway.deploy(folder)
    assert "version 1" in first.stdout
    again = gateway.deploy(folder)
    assert "unchanged" in again.stdout
    (folder / "app.py").write_text("def handler(e, c):\n    return 'v2'\n")
    third = gateway.deploy(folder)
    assert "version 2" in third.stdout
    assert gateway.invoke(name).json() == "v2"
    listed = requests.get(f"{gateway.url}/system/functions/{name}", timeout=10).json()
    assert listed["version"] == 2


def test_rm_removes_the_function_and_its_containers(gateway: Gateway, make_function, docker_client) -> None:
    name, folder = make_function("def handler(e, c):\n    return 1\n")
    gateway.deploy(folder)
    gateway.invoke(name)
    [container] = gateway.function_containers(docker_client, name)
    out = gateway.cli("rm", name)
    assert out.returncode == 0, out.stderr
    assert gateway.invoke(name).status_code == 404
    deadline = time.monotonic() + 10  # containers are removed in the background, off the request
    while container.id in {c.id for c in gateway.containers(docker_client)} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert container.id not in {c.id for c in gateway.containers(docker_client)}
    assert gateway.cli("rm", name).returncode != 0


@pytest.mark.parametrize(
    "yaml_text,expected",
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("name: x\nruntime: python3.11\nhandler: app.handler\ncolour: blue\n", "colour"),
        ("name: x\nruntime: cobol\n", "runtime must be one of"),
        ("name: x/y\n", "name must match"),
        ("name: x\nmemory: 64\n", "memory must be between 128 and 10240"),
        ("name: x\ntimeout: 0\n", "timeout must be between 1 and 900"),
        ("name: x\ntimeout: 901\n", "timeout must be between 1 and 900"),
        ("name: x\nhandler: ''\n", "handler must be"),
        ("name: x\nenvironment:\n  BIG: " + "v" * 4100 + "\n", "4 KB"),
    ],
)
def test_bad_function_yaml_is_refused_by_the_cli(gateway: Gateway, tmp_path: Path, yaml_text: str, expected: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "function.yaml").write_text(yaml_text)
    (folder / "app.py").write_text("def handler(e, c):\n    return 1\n")
    before = store_snapshot(gateway)
    out = gateway.cli("deploy", str(folder))
    assert out.returncode != 0
    assert expected in out.stdout + out.stderr
    assert store_snapshot(gateway) == before


@pytest.mark.parametrize(
    "yaml_text,expected",
    [
        ("name: x\nruntime: cobol\n", "runtime must be one of"),
        ("name: x\nmemory: 64\n", "memory must be between"),
        ("name: x\ntimeout: 901\n", "timeout must be between"),
        ("name: x\nenvironment:\n  BIG: " + "v" * 4100 + "\n", "4 KB"),
        ("name: [oops\n", "YAML"),
    ],
)
def test_bad_function_yaml_is_refused_by_the_gateway(gateway: Gateway, yaml_text: str, expected: str) -> None:
    before = store_snapshot(gateway)
    r = put_zip(gateway, "x", zip_of({"function.yaml": yaml_text, "app.py": "def handler(e, c):\n    return 1\n"}))
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert expected in r.json()["Message"]
    assert store_snapshot(gateway) == before
    assert gateway.invoke("x").status_code == 404


GOOD_YAML = "name: evil\nruntime: python3.11\nhandler: app.handler\n"


@pytest.mark.parametrize(
    "entries,symlinks,expected",
    [
        ({"function.yaml": GOOD_YAML, "../escape.py": "x = 1\n"}, None, ".."),
        ({"function.yaml": GOOD_YAML, "/etc/evil.py": "x = 1\n"}, None, "absolute"),
        ({"function.yaml": GOOD_YAML, "app.py": "x = 1\n"}, {"link": "/etc/passwd"}, "symlink"),
        ({"app.py": "x = 1\n"}, None, "function.yaml"),
    ],
)
def test_dangerous_zips_are_refused_and_nothing_is_written(
    gateway: Gateway, tmp_path: Path, entries: dict[str, str], symlinks: dict[str, str] | None, expected: str
) -> None:
    before = store_snapshot(gateway)
    parent_before = set(os.listdir(gateway.state_dir.parent))
    r = put_zip(gateway, "evil", zip_of(entries, symlinks=symlinks))
    assert r.status_code == 400, r.text
    assert expected in r.json()["Message"]
    assert store_snapshot(gateway) == before
    assert set(os.listdir(gateway.state_dir.parent)) == parent_before
    assert not Path("/etc/evil.py").exists()


def test_zip_over_50_mb_is_refused(gateway: Gateway) -> None:
    before = store_snapshot(gateway)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("function.yaml", "name: huge\n")
        z.writestr("blob.bin", os.urandom(50 * 1024 * 1024 + 1))
    r = put_zip(gateway, "huge", buf.getvalue())
    assert r.status_code == 413
    assert "50" in r.json()["Message"]
    assert store_snapshot(gateway) == before


def test_zip_over_250_mb_unzipped_is_refused(gateway: Gateway) -> None:
    before = store_snapshot(gateway)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("function.yaml", "name: bomb\n")
        z.writestr("zeros.bin", b"\0" * (251 * 1024 * 1024))
    r = put_zip(gateway, "bomb", buf.getvalue())
    assert r.status_code in (400, 413)
    assert "250" in r.json()["Message"] or "262144000" in r.json()["Message"]
    assert store_snapshot(gateway) == before


def test_cli_without_a_gateway_says_how_to_start_one(gateway: Gateway, tmp_path: Path) -> None:
    env = {**gateway.env, "FAAS_GATEWAY": "http://127.0.0.1:9"}
    import subprocess

    from tests.integration.conftest import FAAS

    out = subprocess.run([FAAS, "ls"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "faas up" in out.stderr + out.stdout
