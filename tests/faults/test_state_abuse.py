"""Abuse of what the gateway stores: hostile function.yaml and zips, a flood of Event calls,
other local users, and a full disk. Each is refused (or survived) with a clear answer, and
the state stays usable.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.faults.support import PROBE_CODE, rss_mb, wait_for, worker_pid
from tests.integration.conftest import Gateway, gateway_session


def _zip(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _put(gw: Gateway, name: str, data: bytes) -> requests.Response:
    return requests.put(f"{gw.url}/system/functions/{name}", data=data, timeout=60)


def alias_bomb(name: str, levels: int = 9) -> str:
    """Nine lines of nested aliases under a known key: 9**levels values once written out."""
    lines = [f"name: {name}", "handler:", " - &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += [f" - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _assert_refused(r: requests.Response, gw: Gateway, *needles: str) -> str:
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert r.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    message = r.json()["Message"]
    assert len(message) < 2500, len(message)
    assert str(gw.state_dir) not in message and "Traceback" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_a_yaml_alias_bomb_is_refused_and_the_worker_stays_small(fault_gateway: Gateway) -> None:
    gw = fault_gateway
    bomb = alias_bomb("bomb")
    assert len(bomb) < 600
    pid = worker_pid(gw)
    before = rss_mb(pid)
    r = _put(gw, "bomb", _zip({"function.yaml": bomb, "app.py": PROBE_CODE}))
    _assert_refused(r, gw, "alias")
    assert rss_mb(pid) - before < 50, (before, rss_mb(pid))
    assert requests.get(f"{gw.url}/system/functions/bomb", timeout=10).status_code == 404


def test_a_5000_digit_integer_in_function_yaml_is_a_400(fault_gateway: Gateway) -> None:
    gw = fault_gateway
    spec = "name: digits\ntimeout: " + "9" * 5000 + "\n"
    r = _put(gw, "digits", _zip({"function.yaml": spec, "app.py": PROBE_CODE}))
    _assert_refused(r, gw, "line 2", "digit")


def test_a_zip_entry_path_longer_than_path_max_is_a_400_without_host_paths(fault_gateway: Gateway) -> None:
    gw = fault_gateway
    deep = "/".join(["d" * 200] * 25) + "/app.py"  # 5 KB: every component legal, the whole too long
    spec = "name: deep\n"
    r = _put(gw, "deep", _zip({"function.yaml": spec, "app.py": PROBE_CODE, deep: "x = 1\n"}))
    _assert_refused(r, gw, "path")
    assert not [p for p in (gw.state_dir / "packages").iterdir() if p.name.startswith(".tmp-")]


SLEEPER = """
import time
def handler(event, context):
    time.sleep(2)
    return "slept"
"""


def _db_bytes(gw: Gateway) -> int:
    return sum(p.stat().st_size for p in gw.state_dir.glob("faas.db*"))


def test_a_flood_of_event_calls_is_bounded_with_429s_and_deploys_still_work(fault_gateway: Gateway, make_function) -> None:
    gw = fault_gateway
    name, folder = make_function(SLEEPER, timeout=3, concurrency=1)
    gw.deploy(folder)
    payload = b'"' + b"x" * 1_000_000 + b'"'  # just under Lambda's 1 MB Event limit
    before = _db_bytes(gw)
    statuses: list[int] = []
    began = time.monotonic()
    with requests.Session() as s:
        for _ in range(90):  # 90 MB offered, the function's bound is 64 MB
            r = s.post(
                f"{gw.url}/2015-03-31/functions/{name}/invocations",
                data=payload,
                headers={"X-Amz-Invocation-Type": "Event"},
                timeout=60,
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
                assert r.json()["Reason"] == "CallerRateLimitExceeded"
    flood_s = time.monotonic() - began
    accepted = statuses.count(202)
    bound = 64 * 1024 * 1024 // len(payload)  # the default bound: 64 MiB of payload
    assert set(statuses) == {202, 429}, statuses
    assert statuses[:bound] == [202] * bound, statuses
    # the function (concurrency 1, 2 s a call) takes events off the queue meanwhile: each frees a place
    assert bound <= accepted <= bound + 1 + int(flood_s / 2), (accepted, flood_s)
    grown_mb = (_db_bytes(gw) - before) / 1e6
    assert grown_mb < 80, grown_mb
    # Another function's events and a deploy still go through.
    other, other_folder = make_function(PROBE_CODE)
    gw.deploy(other_folder)
    r = gw.invoke(other, b"{}", headers={"X-Amz-Invocation-Type": "Event"})
    assert r.status_code == 202, r.text


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs: a disk that can really fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write until the disk refuses even one more byte (unbuffered, so nothing waits in a buffer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def _dropped(gw: Gateway) -> float:
    text = requests.get(f"{gw.url}/metrics", timeout=10).text
    found = re.search(r"^faas_records_dropped_total (\S+)$", text, re.M)
    assert found, text[-2000:]
    return float(found.group(1))


def test_a_full_disk_is_named_its_lost_records_counted_and_recording_resumes(
    small_disk: Path, docker_client, make_function
) -> None:
    with gateway_session(small_disk / "state", docker_client, no_tracebacks=True) as gw:
        name, folder = make_function(PROBE_CODE)
        gw.deploy(folder)

        def calls() -> list[dict]:
            found = requests.get(f"{gw.url}/system/functions/{name}/calls", timeout=10).json()
            return found.get("calls", found) if isinstance(found, dict) else found

        assert gw.invoke(name).status_code == 200
        assert wait_for(lambda: len(calls()) == 1, 10), calls()  # recorded (in the background) before the disk fills
        filler = small_disk / "filler"
        _fill(filler)
        try:
            with requests.Session() as s:
                for _ in range(50):  # calls still answer while their records cannot be written
                    r = s.post(f"{gw.url}/2015-03-31/functions/{name}/invocations", data=b"{}", timeout=30)
                    assert r.status_code == 200, r.text
            assert wait_for(lambda: _dropped(gw) > 0, 10), gw.logs()[-3000:]
            logs = gw.logs()
            assert "invocation records: the disk is full" in logs and "record(s) dropped" in logs
            assert "cannot rollback" not in logs
        finally:
            filler.unlink()
        freed = time.time()
        dropped = _dropped(gw)
        assert gw.invoke(name, b'{"after": 1}').status_code == 200

        # the call before the disk filled, and the one after (its record is written in the background)
        assert wait_for(lambda: any(c["finished"] >= freed for c in calls()), 10), calls()  # the call after
        assert _dropped(gw) == dropped
        assert "invocation records are written again" in gw.logs()


SECRET_CODE = """
import os
def handler(event, context):
    return os.environ["SECRET"][:3]
"""

_AS_NOBODY = """
import os, socket, sys
found = []
for path in sys.argv[1:]:
    try:
        if path.endswith(".sock"):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
        elif os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb" if not path.endswith("/out") else "wb"):
                pass
        found.append(path)
    except OSError:
        pass
print("\\n".join(found))
"""


def _as_nobody(paths: list[Path]) -> list[str]:
    """What uid 65534 (another local user) can open of these paths."""
    out = subprocess.run(
        ["/usr/bin/python3", "-c", _AS_NOBODY, *map(str, paths)],  # the venv may be out of its reach
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),  # noqa: PLW1509 - a one-off child
    )
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A folder every local user may traverse (pytest's own tmp folders are 0700, which would
    hide the state dir's own modes from the other user)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to act as another user")
    folder = Path(tempfile.mkdtemp(prefix="faas-perms-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_another_local_user_reaches_no_state_no_logs_and_no_runtime_socket(
    open_parent: Path, docker_client, make_function
) -> None:
    with gateway_session(open_parent / "state", docker_client, no_tracebacks=True) as gw:
        _check_private(gw, make_function)


def _check_private(gw: Gateway, make_function) -> None:
    name, folder = make_function(SECRET_CODE, environment={"SECRET": "s3cr3t-value"})
    gw.deploy(folder)
    r = gw.invoke(name)
    assert r.status_code == 200 and r.json() == "s3c", r.text  # the function still reads its code and runs
    requests.get(f"{gw.url}/system/functions/{name}/logs", timeout=10)  # flushes its log to disk
    state = gw.state_dir
    sockets = sorted(state.glob("envs/*/rt/runtime.sock"))
    fifos = sorted(state.glob("envs/*/rt/out"))
    assert sockets and fifos, sorted(p.relative_to(state) for p in state.rglob("*"))[:50]
    targets = [state, state / "faas.db", state / "logs", state / "logs" / f"{name}.log", *sockets, *fifos]
    assert _as_nobody(targets) == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in (state / "faas.db", state / "logs" / f"{name}.log"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (*sockets, *fifos):  # the sandbox user's own, no one else's
        st = path.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (993, 0o600), path
