"""The file watchers with real watchdog observers on temp folders and a recording deploy:
bursts are debounced, touches and ignored files change nothing, the upload folder takes
only complete *.zip files and clears them away."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faas.cli.source_watcher import Redeploy, SourceWatcher
from faas.deploy.folder_events import Debouncer
from faas.deploy.incoming import IncomingWatcher
from faas.errors import GatewayUnavailable, ValidationError

SETTLE = 0.4  # how long "nothing happens" is given to show itself


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ------------------------------------------------------------------------------ debouncer


def test_a_burst_fires_once_and_separate_keys_fire_separately() -> None:
    fired: list[str] = []
    d: Debouncer[str] = Debouncer(lambda key, _first: fired.append(key), 0.05)
    try:
        for _ in range(20):
            d.push("a")
        d.push("b")
        assert wait_for(lambda: sorted(fired) == ["a", "b"])
        assert d.pending() == 0  # every push came before this: nothing is left that could fire again
        assert sorted(fired) == ["a", "b"]
    finally:
        d.close()


def test_a_key_pushed_again_waits_for_quiet() -> None:
    fired: list[float] = []
    d: Debouncer[str] = Debouncer(lambda _key, _first: fired.append(time.monotonic()), 0.2)
    try:
        start = time.monotonic()
        for _ in range(5):
            d.push("a")
            time.sleep(0.05)
        assert wait_for(lambda: len(fired) == 1)
        assert fired[0] - start >= 0.2 + 4 * 0.05  # the last push restarted the wait
    finally:
        d.close()


def test_a_failing_handler_does_not_stop_the_worker() -> None:
    fired: list[str] = []

    def fire(key: str, _first: float) -> None:
        fired.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    d: Debouncer[str] = Debouncer(fire, 0.01)
    try:
        d.push("bad")
        assert wait_for(lambda: fired == ["bad"])
        d.push("good")
        assert wait_for(lambda: fired == ["bad", "good"])
    finally:
        d.close()


# ---------------------------------------------------------------------------- source folders


class Recorder:
    """Plays the gateway: records uploads and answers like the admin API (or raises)."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes, Path]] = []
        self.reports: list[Redeploy] = []
        self.fail_with: Exception | None = None
        self.version = 1

    def upload(self, name: str, data: bytes, folder: Path) -> dict[str, Any]:
        self.uploads.append((name, data, folder))
        if self.fail_with is not None:
            raise self.fail_with
        self.version += 1
        return {"name": name, "version": self.version, "changed": True}

    def report(self, r: Redeploy) -> None:
        self.reports.append(r)

    def files_of_last_upload(self) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(self.uploads[-1][1])) as z:
            return {n: z.read(n) for n in z.namelist()}


@pytest.fixture
def function_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "function.yaml").write_text("name: hello\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text("def handler(e, c):\n    return 1\n")
    return folder


@pytest.fixture
def watched(function_folder: Path) -> Iterator[tuple[SourceWatcher, Recorder]]:
    rec = Recorder()
    watcher = SourceWatcher(rec.upload, rec.report, debounce_s=0.05)
    assert watcher.add(function_folder)
    yield watcher, rec
    watcher.close()


def test_a_save_uploads_the_new_code_once(watched: tuple[SourceWatcher, Recorder], function_folder: Path) -> None:
    _, rec = watched
    app = function_folder / "app.py"
    app.write_text("def handler(e, c):\n    return 2\n")  # truncate + write: several events
    os.chmod(app, 0o644)
    assert wait_for(lambda: len(rec.reports) == 1)
    time.sleep(SETTLE)
    assert len(rec.uploads) == 1
    name, _data, folder = rec.uploads[0]
    assert (name, folder) == ("hello", function_folder.resolve())
    assert rec.files_of_last_upload()["app.py"] == b"def handler(e, c):\n    return 2\n"
    report = rec.reports[0]
    assert report.ok and report.changed and report.version == 2 and report.took_ms >= 0


def test_a_touch_or_a_rewrite_of_the_same_bytes_uploads_nothing(
    watched: tuple[SourceWatcher, Recorder], function_folder: Path
) -> None:
    _, rec = watched
    app = function_folder / "app.py"
    os.utime(app)
    app.write_text(app.read_text())
    time.sleep(SETTLE)
    assert rec.uploads == [] and rec.reports == []


@pytest.mark.parametrize("noise", ["__pycache__/app.cpython-311.pyc", ".git/index", ".app.py.swp", "app.py~", "#app.py#"])
def test_ignored_files_upload_nothing(watched: tuple[SourceWatcher, Recorder], function_folder: Path, noise: str) -> None:
    _, rec = watched
    path = function_folder / noise
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"editor noise")
    time.sleep(SETTLE)
    assert rec.uploads == []


def test_a_new_file_in_a_new_subfolder_is_a_change(watched: tuple[SourceWatcher, Recorder], function_folder: Path) -> None:
    _, rec = watched
    (function_folder / "lib").mkdir()
    (function_folder / "lib" / "util.py").write_text("X = 1\n")
    assert wait_for(lambda: len(rec.uploads) >= 1)
    assert wait_for(lambda: "lib/util.py" in rec.files_of_last_upload())


def test_a_broken_function_yaml_is_still_sent_under_the_known_name(
    watched: tuple[SourceWatcher, Recorder], function_folder: Path
) -> None:
    """So the gateway refuses it where `faas ls` and `faas logs` can show it."""
    _, rec = watched
    rec.fail_with = ValidationError("function.yaml: not valid YAML at line 1, column 7")
    (function_folder / "function.yaml").write_text("name: [oops\n")
    assert wait_for(lambda: len(rec.reports) == 1)
    assert rec.uploads[0][0] == "hello"
    assert rec.files_of_last_upload()["function.yaml"] == b"name: [oops\n"
    report = rec.reports[0]
    assert not report.ok and "not valid YAML" in report.message and report.version is None


def test_an_init_failure_is_reported_with_its_logs_and_not_retried_until_the_next_change(
    watched: tuple[SourceWatcher, Recorder], function_folder: Path
) -> None:
    from faas.cli.client import GatewayError

    _, rec = watched
    rec.fail_with = GatewayError(
        "version 3 of hello failed to initialise (Runtime.UserCodeSyntaxError: ...)",
        status=400,
        error_type="InitializationFailedException",
        body={"Version": 3, "Logs": "[ERROR] Runtime.UserCodeSyntaxError: bad\n"},
    )
    app = function_folder / "app.py"
    app.write_text("def handler(e, c)\n")
    assert wait_for(lambda: len(rec.reports) == 1)
    r = rec.reports[0]
    assert not r.ok and r.version == 3 and "UserCodeSyntaxError" in r.logs
    os.utime(app)
    time.sleep(SETTLE)
    assert len(rec.uploads) == 1
    rec.fail_with = None
    app.write_text("def handler(e, c):\n    return 3\n")
    assert wait_for(lambda: len(rec.reports) == 2 and rec.reports[-1].ok)


def test_when_no_gateway_answers_the_same_content_is_tried_again(
    watched: tuple[SourceWatcher, Recorder], function_folder: Path
) -> None:
    _, rec = watched
    rec.fail_with = GatewayUnavailable("no faas gateway answers", url="http://127.0.0.1:9")
    app = function_folder / "app.py"
    app.write_text("def handler(e, c):\n    return 5\n")
    assert wait_for(lambda: len(rec.reports) == 1)
    rec.fail_with = None
    os.utime(app)  # no new content, but the last upload never arrived
    assert wait_for(lambda: len(rec.reports) == 2 and rec.reports[-1].ok)


def test_removed_folders_are_no_longer_watched(watched: tuple[SourceWatcher, Recorder], function_folder: Path) -> None:
    watcher, rec = watched
    assert not watcher.add(function_folder)  # already watched
    watcher.remove(function_folder)
    assert watcher.folders() == []
    (function_folder / "app.py").write_text("def handler(e, c):\n    return 9\n")
    time.sleep(SETTLE)
    assert rec.uploads == []


# ---------------------------------------------------------------------------- upload folder


def a_zip(name: str = "hello") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("function.yaml", f"name: {name}\n")
        z.writestr("app.py", "def handler(e, c):\n    return 1\n")
    return buf.getvalue()


class Deploys:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, data: bytes, name: str) -> None:
        with self.lock:
            self.calls.append((name, data))
        if name in self.refuse:
            raise ValidationError("zip entry '../x' contains a '..' component")


def caught_up(folder: Path, deploys: Deploys) -> None:
    """Waits until the watcher has handled every event of folder so far, instead of sleeping before
    asserting that they deployed nothing: a barrier zip goes in behind them, and the folder's events
    reach the debouncer in order (one inotify stream, one observer thread), which fires them in
    order, so anything they would deploy is deployed before the barrier is. The barrier's own call
    is then taken out, so the assertions see only the test's."""
    barrier = folder / "zz-barrier.zip"
    barrier.with_name("zz-barrier.tmp").write_bytes(a_zip("zz-barrier"))
    os.replace(barrier.with_name("zz-barrier.tmp"), barrier)
    assert wait_for(lambda: not barrier.exists())  # deployed, then removed
    with deploys.lock:
        [call] = [c for c in deploys.calls if c[0] == "zz-barrier"]
        deploys.calls.remove(call)


@pytest.fixture
def incoming(tmp_path: Path) -> Iterator[tuple[Path, Deploys]]:
    deploys = Deploys()
    folder = tmp_path / "incoming"
    watcher = IncomingWatcher(folder, deploys, debounce_s=0.05, settle_s=0.5)
    yield folder, deploys
    watcher.close()


def test_a_zip_renamed_into_place_is_deployed_once_and_removed(incoming: tuple[Path, Deploys]) -> None:
    folder, deploys = incoming
    tmp = folder / "hello.zip.tmp"
    data = a_zip()
    tmp.write_bytes(data)
    caught_up(folder, deploys)
    assert deploys.calls == []  # not a *.zip name yet
    os.replace(tmp, folder / "hello.zip")
    assert wait_for(lambda: not (folder / "hello.zip").exists())
    assert deploys.calls == [("hello", data)]
    assert not tmp.exists()


def test_a_refused_zip_is_set_aside(incoming: tuple[Path, Deploys]) -> None:
    folder, deploys = incoming
    deploys.refuse.add("evil")
    (folder / "evil.zip").write_bytes(a_zip("evil"))
    assert wait_for(lambda: (folder / "evil.zip.rejected").exists())
    assert not (folder / "evil.zip").exists()
    caught_up(folder, deploys)
    assert [c[0] for c in deploys.calls] == ["evil"]  # the .rejected name is not taken again


def test_a_zip_still_being_written_is_looked_at_again_not_refused(incoming: tuple[Path, Deploys]) -> None:
    folder, deploys = incoming
    data = a_zip()
    with open(folder / "hello.zip", "wb") as f:  # a writer that ignores the rename advice, and pauses
        f.write(data[:20])
        f.flush()
        time.sleep(0.2)
        f.write(data[20:])
    assert wait_for(lambda: not (folder / "hello.zip").exists())
    assert deploys.calls == [("hello", data)]


def test_zips_dropped_while_no_gateway_ran_are_deployed_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "early.zip").write_bytes(a_zip("early"))
    (folder / ".hidden.zip").write_bytes(a_zip("hidden"))
    deploys = Deploys()
    watcher = IncomingWatcher(folder, deploys, debounce_s=0.05)
    try:
        assert wait_for(lambda: not (folder / "early.zip").exists())
        caught_up(folder, deploys)
        assert [c[0] for c in deploys.calls] == ["early"]
    finally:
        watcher.close()
