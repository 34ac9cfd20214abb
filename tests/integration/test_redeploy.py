"""Live redeploy through a real `faas up` (gateway, Docker, file watchers): saves go live under
load without a failed call, a broken save never goes live and says why where the developer
looks, zips dropped into the upload folder deploy (or are refused, writing nothing outside
the store), rollback, and a touch that changes nothing does nothing.

One gateway for the module; each test has its own functions.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import FAAS, Gateway, start_gateway, stop_gateway

SAVE_TIMEOUT_S = 20.0  # a save must be live well within this, even on a busy machine


def code(mark: object, *, broken: bool = False) -> str:
    head = "def handler(event, context)" if broken else "def handler(event, context):"
    return f"MARK = {mark!r}\n{head}\n    return {{'mark': MARK}}\n"


def write_function(root: Path, name: str, mark: object = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text(code(mark))
    return folder


def wait_for(predicate: Callable[[], object], timeout: float = SAVE_TIMEOUT_S, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@dataclass
class Dev:
    gw: Gateway
    src: Path
    started: list[subprocess.Popen[bytes]]

    def mark(self, name: str) -> object:
        r = self.gw.invoke(name, timeout=30)
        assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
        return r.json()["mark"]

    def function(self, name: str) -> dict:
        return requests.get(f"{self.gw.url}/system/functions/{name}", timeout=10).json()

    def versions(self, name: str) -> list[dict]:
        return requests.get(f"{self.gw.url}/system/functions/{name}/versions", timeout=10).json()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI as on a wide terminal, so that tables do not wrap what the tests look for."""
        return subprocess.run([FAAS, *args], env={**self.gw.env, "COLUMNS": "250"}, capture_output=True, text=True, timeout=120)

    def output_after(self, offset: int) -> str:
        return self.gw.logs()[offset:]


FUNCTIONS = ("rd-load", "rd-broken", "rd-roll", "rd-touch", "rd-prestarted")


@pytest.fixture(scope="module")
def dev(runtime_images, docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    root = tmp_path_factory.mktemp("redeploy")
    src = root / "src"
    for name in FUNCTIONS:
        write_function(src, name)
    gw = start_gateway(root / "state", args=(str(src),))
    d = Dev(gw, src, [])
    try:
        assert wait_for(lambda: "watching" in gw.logs(), 120), gw.logs()
        yield d
    finally:
        for proc in d.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        code_ = stop_gateway(gw)
        left = gw.containers(docker_client)
        for c in left:
            c.remove(force=True)
        assert not left, f"containers left after SIGTERM: {[c.name for c in left]}"
        assert code_ == 0, gw.logs()[-3000:]


def test_twenty_saves_under_load_drop_no_call_and_never_go_back(dev: Dev) -> None:
    name, app = "rd-load", dev.src / "rd-load" / "app.py"
    assert dev.mark(name) == 0
    stop = threading.Event()
    marks: list[list[int]] = [[], []]
    failures: list[str] = []

    def client(i: int) -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.post(f"{dev.gw.url}/2015-03-31/functions/{name}/invocations", data=b"{}", timeout=30)
                except requests.RequestException as e:
                    failures.append(f"client {i}: {e}")
                    continue
                if r.status_code != 200 or "X-Amz-Function-Error" in r.headers:
                    failures.append(f"client {i}: {r.status_code} {r.text[:300]}")
                    continue
                marks[i].append(r.json()["mark"])
                time.sleep(0.005)  # steady and bounded: about 100 calls/s per client at most

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 21):
            app.write_text(code(n))
            assert wait_for(lambda n=n: dev.mark(name) == n), f"save {n} never went live:\n{dev.gw.logs()[-2000:]}"
            time.sleep(0.1)  # the load sees each version for a moment
        assert wait_for(lambda: all(seen and seen[-1] == 20 for seen in marks)), "both clients reach the last save"
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == [], failures[:5]
    for seen in marks:
        assert len(seen) > 20, "each client kept calling through the saves"
        assert seen == sorted(seen), "a client got an older version's answer after a newer one's"
    versions = dev.versions(name)
    assert [v["version"] for v in versions] == list(range(1, 22))
    assert [v["version"] for v in versions if v["live"]] == [21]
    # one line per save in `faas up`'s output (printed once the deploy has answered)
    assert wait_for(lambda: dev.output_after(0).count(f"{name}  version ") == 21, 5), dev.output_after(0)


def test_a_broken_save_keeps_the_previous_version_live_and_says_why(dev: Dev) -> None:
    name, folder = "rd-broken", dev.src / "rd-broken"
    assert dev.mark(name) == 0
    offset = len(dev.gw.logs())
    (folder / "app.py").write_text(code(1, broken=True))
    assert wait_for(lambda: dev.function(name).get("deploy_problem")), dev.output_after(offset)
    problem = dev.function(name)["deploy_problem"]
    assert problem["summary"] == "failed: Runtime.UserCodeSyntaxError in version 2"
    assert dev.mark(name) == 0 and dev.function(name)["version"] == 1  # the old version still serves
    ls = dev.cli("ls")
    assert "failed: Runtime.UserCodeSyntaxError in version 2" in ls.stdout, ls.stdout + ls.stderr
    logs = dev.cli("logs", name).stdout
    assert "[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'app'" in logs
    assert "Status: error\tError Type: Runtime.UserCodeSyntaxError" in logs
    assert wait_for(lambda: "version 2 of rd-broken failed to initialise" in dev.output_after(offset), 5)
    assert "version 1 stays live" in dev.output_after(offset)
    versions = dev.cli("versions", name).stdout
    assert "failed: Runtime.UserCodeSyntaxError" in versions and "live" in versions

    # a broken function.yaml is refused by the gateway, and shown the same way
    (folder / "function.yaml").write_text("name: [rd-broken\n")
    assert wait_for(lambda: (dev.function(name).get("deploy_problem") or {}).get("kind") == "refused")
    assert "not valid YAML" in dev.function(name)["deploy_problem"]["message"]
    assert "refused: function.yaml: not valid YAML" in dev.cli("ls").stdout
    assert "deploy refused" in dev.cli("logs", name).stdout
    assert dev.mark(name) == 0

    # fixing both makes the next version live and clears the status
    (folder / "function.yaml").write_text(f"name: {name}\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text(code(3))
    assert wait_for(lambda: dev.mark(name) == 3)
    assert wait_for(lambda: dev.function(name).get("deploy_problem") is None, 5)
    assert "failed" not in dev.cli("ls").stdout.split(name, 1)[1].splitlines()[0]


def test_a_touch_without_a_change_triggers_nothing(dev: Dev) -> None:
    name, app = "rd-touch", dev.src / "rd-touch" / "app.py"
    assert dev.mark(name) == 0
    before = dev.versions(name)
    offset = len(dev.gw.logs())
    os.utime(app)
    app.write_text(app.read_text())  # an editor saving unchanged content
    (dev.src / name / "__pycache__").mkdir(exist_ok=True)
    (dev.src / name / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0" * 16)
    (dev.src / name / ".app.py.swp").write_bytes(b"vim")
    time.sleep(1.5)
    assert dev.versions(name) == before
    assert name not in dev.output_after(offset)


def test_a_save_goes_live_in_a_prestarted_container(dev: Dev) -> None:
    """The switch initialises the new version in a pre-started container (one ready, or the one
    on its way), not a container started for it: `faas calls` says so for its first call."""
    name, app = "rd-prestarted", dev.src / "rd-prestarted" / "app.py"
    assert dev.mark(name) == 0
    app.write_text(code(1))
    assert wait_for(lambda: dev.mark(name) == 1)
    calls = requests.get(f"{dev.gw.url}/system/functions/{name}/calls", timeout=10).json()
    first_of_v2 = [c for c in calls if c["version"] == 2][-1]  # newest first
    assert first_of_v2["start"] == "prestarted", calls


def test_rollback_makes_an_earlier_version_live(dev: Dev) -> None:
    name, app = "rd-roll", dev.src / "rd-roll" / "app.py"
    for n in (1, 2):
        app.write_text(code(n))
        assert wait_for(lambda n=n: dev.mark(name) == n)
    out = dev.cli("rollback", name)
    assert out.returncode == 0 and f"{name}: version 2 is live (was 3)" in out.stdout, out.stdout + out.stderr
    assert dev.mark(name) == 1
    r = dev.gw.invoke(name, params={"Qualifier": "2"})
    assert r.headers["X-Amz-Executed-Version"] == "2" and r.json()["mark"] == 1
    out = dev.cli("rollback", name, "1")
    assert out.returncode == 0 and "version 1 is live (was 2)" in out.stdout
    assert dev.mark(name) == 0
    listing = dev.cli("versions", name).stdout
    live_rows = [line for line in listing.splitlines() if " live " in f" {line} "]
    assert len(live_rows) == 1 and live_rows[0].split()[0] == "1", listing
    out = dev.cli("rollback", name)
    assert out.returncode == 1 and "no version before 1" in out.stderr
    out = dev.cli("rollback", name, "9")
    assert out.returncode == 1 and "Function not found" in out.stderr


def zip_bytes(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, text in entries.items():
            z.writestr(path, text)
    return buf.getvalue()


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_zip_dropped_by_hand_is_deployed_and_a_bad_one_refused(dev: Dev) -> None:
    incoming = dev.gw.state_dir / "incoming"
    yaml = "name: rd-drop\nruntime: python3.11\nhandler: app.handler\n"
    tmp = incoming / "rd-drop.zip.part"
    tmp.write_bytes(zip_bytes({"function.yaml": yaml, "app.py": code("by hand")}))
    os.replace(tmp, incoming / "rd-drop.zip")  # the documented way: write elsewhere, rename in
    assert wait_for(lambda: dev.gw.invoke("rd-drop").status_code == 200)
    assert dev.mark("rd-drop") == "by hand"
    assert wait_for(lambda: not (incoming / "rd-drop.zip").exists(), 5)

    packages = dev.gw.state_dir / "packages"
    before_packages, before_parent = tree(packages), set(os.listdir(dev.gw.state_dir.parent))
    before_state = set(os.listdir(dev.gw.state_dir))
    evil = zip_bytes({"function.yaml": yaml, "app.py": code("evil"), "../escaped.py": "x = 1\n", "../../escaped.py": "x = 1\n"})
    tmp.write_bytes(evil)
    os.replace(tmp, incoming / "rd-drop.zip")
    assert wait_for(lambda: (incoming / "rd-drop.zip.rejected").exists())
    assert tree(packages) == before_packages
    assert set(os.listdir(dev.gw.state_dir.parent)) == before_parent
    assert set(os.listdir(dev.gw.state_dir)) == before_state
    assert not (dev.gw.state_dir / "escaped.py").exists() and not (packages / "escaped.py").exists()
    assert dev.mark("rd-drop") == "by hand"
    assert "refused: zip entry '../escaped.py'" in dev.cli("ls").stdout
    assert "'..' component" in dev.cli("logs", "rd-drop").stdout
    assert "incoming rd-drop.zip refused" in dev.gw.logs()


def test_deploy_watch_and_functions_deployed_later_are_watched(dev: Dev, tmp_path: Path) -> None:
    folder = write_function(tmp_path, "rd-watch")
    log = open(tmp_path / "watch.log", "wb")
    proc = subprocess.Popen(
        [FAAS, "deploy", str(folder), "--watch"], env=dev.gw.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    dev.started.append(proc)
    output = lambda: (tmp_path / "watch.log").read_text(errors="replace")  # noqa: E731
    assert wait_for(lambda: "watching" in output()), output()
    assert "deployed rd-watch version 1" in output()
    (folder / "app.py").write_text(code(1))
    assert wait_for(lambda: dev.mark("rd-watch") == 1)
    # `faas up` watches it too (it was deployed from a folder here): one of the two deploys it,
    # the other finds it unchanged
    assert wait_for(lambda: "rd-watch  version 2" in output() or "rd-watch  unchanged (version 2)" in output(), 5)
    (folder / "app.py").write_text(code(2, broken=True))
    assert wait_for(lambda: "failed to initialise (Runtime.UserCodeSyntaxError" in output()), output()
    assert dev.mark("rd-watch") == 1
    (folder / "app.py").write_text(code(3))
    assert wait_for(lambda: dev.mark("rd-watch") == 3)
    # the broken save was tried by both watchers under one number
    assert [(v["version"], v["live"], bool(v["problem"])) for v in dev.versions("rd-watch")] == [
        (1, False, False),
        (2, False, False),
        (3, False, True),
        (4, True, False),
    ]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert "stopped watching" in output()

    # without --watch, `faas up` alone picks the folder up from the gateway's listing
    later = write_function(tmp_path, "rd-later")
    assert dev.cli("deploy", str(later)).returncode == 0
    time.sleep(2.5)  # `faas up` lists the gateway every 2 s
    (later / "app.py").write_text(code("saved"))
    assert wait_for(lambda: dev.mark("rd-later") == "saved")
