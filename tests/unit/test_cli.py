"""The `faas` command as a developer uses it, against a real HTTP gateway (werkzeug on
127.0.0.1, random port) with a fake Platform behind it."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from werkzeug.serving import make_server

from faas.cli import main as cli
from faas.models import function_arn
from gateway.app import create_app
from tests.fakes import FakePlatform

REPO = Path(__file__).resolve().parents[2]


def echo_or_fail(payload: bytes) -> tuple[bytes, str | None]:
    """The CLI tests' function: echoes the event, or fails for a payload {"fail": ...}."""
    event = json.loads(payload)
    if isinstance(event, dict) and "fail" in event:
        return json.dumps({"errorMessage": event["fail"], "errorType": "ValueError"}).encode(), "Unhandled"
    return json.dumps({"echo": event}).encode(), None


def write_function(folder: Path, name: str, **spec: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(yaml.safe_dump({"name": name, **spec}))
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    return folder


def start_server(platform: FakePlatform, port: int = 0) -> tuple[Any, threading.Thread]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log in the CLI's output
    server = make_server("127.0.0.1", port, create_app(platform), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    platform.default_handler = echo_or_fail
    platform.printed = "hello from the function\n"
    platform.log_lines["hello"] = [f"line {i}" for i in range(5)]
    platform.env_rows = [{"id": "e1", "function": "hello", "version": 1, "state": "busy"}]
    return platform


@pytest.fixture
def gateway(fake: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server, thread = start_server(fake)
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("FAAS_GATEWAY", url)
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_until(proc: Any, mark: bytes, timeout: float) -> bytes:
    """Reads proc's stdout, unbuffered (communicate() takes the rest), until mark shows or timeout."""
    import os
    import select

    fd = proc.stdout.fileno()
    got = b""
    deadline = time.monotonic() + timeout
    while mark not in got and time.monotonic() < deadline:
        if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ deploy


def test_deploy_then_unchanged(gateway: str, fake: FakePlatform, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_function(tmp_path / "hello", "hello")
    code, out, _ = run(capsys, "deploy", str(folder))
    assert code == 0
    assert re.fullmatch(r"deployed hello version 1 \((\d+ B|\d+\.\d KB)\)", out.strip()), out
    assert fake.source_dirs == [str(folder.resolve())]
    code, out, _ = run(capsys, "deploy", str(folder))
    assert code == 0 and out.strip() == "hello unchanged (version 1)"
    (folder / "app.py").write_text("def handler(event, context):\n    return 2\n")
    code, out, _ = run(capsys, "deploy", str(folder))
    assert out.startswith("deployed hello version 2")


def test_deploy_a_folder_of_functions(
    gateway: str, fake: FakePlatform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_function(tmp_path / "fns" / "a", "alpha")
    write_function(tmp_path / "fns" / "nested" / "b", "beta")
    (tmp_path / "fns" / "notes").mkdir()
    code, out, _ = run(capsys, "deploy", str(tmp_path / "fns"))
    assert code == 0
    assert sorted(fake.live) == ["alpha", "beta"]
    assert "deployed alpha version 1" in out and "deployed beta version 1" in out


def test_deploy_invalid_function_yaml_is_a_clear_error(gateway: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_function(tmp_path / "bad", "bad", memory=64)
    code, out, err = run(capsys, "deploy", str(folder))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "memory must be between 128 and 10240" in err


def test_deploy_of_a_folder_without_functions(gateway: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "deploy", str(tmp_path))
    assert code == 1 and "no function.yaml" in err


# ------------------------------------------------------------------ ls, rm, logs


def test_ls_shows_a_table(gateway: str, fake: FakePlatform, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "deploy", str(write_function(tmp_path / "h", "hello", memory=256, timeout=30)))
    code, out, _ = run(capsys, "ls")
    assert code == 0
    header, row = out.splitlines()[0], out.splitlines()[1]
    for column in ("name", "version", "runtime", "memory", "timeout", "status", "last modified"):
        assert column in header
    for cell in ("hello", "python3.11", "256 MB", "30 s", "1 busy"):
        assert cell in row


def test_ls_with_nothing_deployed(gateway: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ls")
    assert code == 0 and out == "" and "no functions deployed" in err


def test_rm(gateway: str, fake: FakePlatform, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "deploy", str(write_function(tmp_path / "h", "hello")))
    code, out, _ = run(capsys, "rm", "hello")
    assert code == 0 and out.strip() == "removed hello" and fake.removed == ["hello"]
    code, _, err = run(capsys, "rm", "hello")
    assert code == 1 and err.strip() == f"error: Function not found: {function_arn('hello')}"


def test_logs_with_tail(gateway: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "deploy", str(write_function(tmp_path / "h", "hello")))
    code, out, _ = run(capsys, "logs", "hello", "--tail", "2")
    assert code == 0 and out == "line 3\nline 4\n"


# ------------------------------------------------------------------ invoke


@pytest.fixture
def deployed(gateway: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    run(capsys, "deploy", str(write_function(tmp_path / "h", "hello")))
    return gateway


def test_invoke_prints_the_payload(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "invoke", "hello", "--payload", '{"x": 1}')
    assert code == 0
    assert json.loads(out) == {"echo": {"x": 1}}
    assert err == ""


def test_invoke_without_payload_sends_empty_object(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "invoke", "hello")
    assert code == 0 and json.loads(out) == {"echo": {}}


def test_invoke_payload_from_file(deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "event.json").write_text('{"from": "file"}')
    code, out, _ = run(capsys, "invoke", "hello", "--payload", f"@{tmp_path / 'event.json'}")
    assert code == 0 and json.loads(out) == {"echo": {"from": "file"}}


def test_invoke_function_error_goes_to_stderr_with_exit_1(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "invoke", "hello", "--payload", '{"fail": "bad thing"}')
    assert code == 1 and out == ""
    assert json.loads(err)["errorMessage"] == "bad thing"


def test_invoke_tail_prints_the_log_to_stderr(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "invoke", "hello", "--tail")
    assert code == 0 and json.loads(out) == {"echo": {}}
    assert "START RequestId:" in err and "hello from the function" in err


def test_invoke_non_json_payload_shows_lambdas_error(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "invoke", "hello", "--payload", "nope")
    assert code == 1 and err.startswith("error: Could not parse request body into json")


def test_invoke_unknown_function(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "invoke", "ghost")
    assert code == 1 and err.strip() == f"error: Function not found: {function_arn('ghost')}"


# ------------------------------------------------------------------ no gateway, help


def test_no_gateway_answering_is_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("FAAS_GATEWAY", url)
    code, _, err = run(capsys, "ls")
    assert code == 2
    assert err.strip() == f"no faas gateway answers at {url} — start one with `faas up`"


def test_gateway_option_beats_the_environment(
    gateway: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAAS_GATEWAY", f"http://127.0.0.1:{free_port()}")
    code, _, _ = run(capsys, "ls", "--gateway", gateway)
    assert code == 0


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "deploy", "ls", "rm", "invoke", "logs", "runtimes"):
        assert command in out
    assert "exit codes:" in out and "no faas gateway answers" in out


# ------------------------------------------------------------------ engine, images and `up`


@pytest.fixture
def fake_runtime_modules(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """faas.containers.engine, faas.containers.images and faas.containers.docker_executor replaced by recorders."""
    calls: dict[str, list[Any]] = {"engine": [], "images": [], "executors": []}

    class Engine:
        base_url = "unix:///tmp/fake-docker.sock"

    def ensure_engine(state_dir: Path, *, install: bool = True, say: Any) -> Engine:
        say("engine: found")
        calls["engine"].append(state_dir)
        return Engine()

    def ensure_all(executor: Any, runtimes: Any = None, force: bool = False, say: Any = None) -> None:
        say("images: up to date")
        calls["images"].append({"executor": executor, "force": force})

    class DockerExecutor:
        def __init__(self, base_url: str) -> None:
            self.base_url = base_url
            calls["executors"].append(base_url)

    monkeypatch.setitem(sys.modules, "faas.containers.engine", types.SimpleNamespace(ensure_engine=ensure_engine))
    monkeypatch.setitem(sys.modules, "faas.containers.images", types.SimpleNamespace(ensure_all=ensure_all))
    monkeypatch.setitem(sys.modules, "faas.containers.docker_executor", types.SimpleNamespace(DockerExecutor=DockerExecutor))
    return calls


def test_runtimes_build(fake_runtime_modules: dict[str, list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runtimes", "build", "--force", "--state-dir", str(tmp_path))
    assert code == 0 and "ready" in out and "images: up to date" in err
    assert fake_runtime_modules["engine"] == [tmp_path.resolve()]
    assert fake_runtime_modules["executors"] == ["unix:///tmp/fake-docker.sock"]
    assert fake_runtime_modules["images"][0]["force"] is True


def test_up_prepares_runtimes_serves_and_deploys(
    fake_runtime_modules: dict[str, list[Any]],
    fake: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_function(tmp_path / "fns" / "a", "alpha")
    write_function(tmp_path / "fns" / "b", "beta")
    port = free_port()
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/already-set.sock")
    served: list[Any] = []
    summary_printed = threading.Event()
    print_out = cli.out.print

    def print_and_note(*objects: Any, **kwargs: Any) -> None:
        print_out(*objects, **kwargs)
        if objects and str(objects[0]).startswith("ready:"):
            summary_printed.set()  # the deploy thread's last line: every deploy is done and printed

    monkeypatch.setattr(cli.out, "print", print_and_note)

    def fake_serve(config: Any, *, overrides: dict[str, Any] | None = None) -> int:
        served.append(config)
        server, thread = start_server(fake, config.port)
        try:
            summary_printed.wait(10)
        finally:
            server.shutdown()
            thread.join(5)
        return 0

    import gateway.server

    monkeypatch.setattr(gateway.server, "serve", fake_serve)
    code, out, err = run(
        capsys, "up", str(tmp_path / "fns"), "--port", str(port), "--state-dir", str(tmp_path / "state"), "--threads", "8"
    )
    assert code == 0, err
    assert served[0].port == port and served[0].threads == 8 and served[0].state_dir == (tmp_path / "state").resolve()
    assert fake_runtime_modules["engine"] and fake_runtime_modules["images"]
    assert f"alpha  version 1  deployed  http://127.0.0.1:{port}/function/alpha" in out
    assert f"beta  version 1  deployed  http://127.0.0.1:{port}/function/beta" in out
    assert "ready: 2 function(s)" in out
    assert "stopped" in err


def test_up_refuses_a_folder_without_functions(
    fake_runtime_modules: dict[str, list[Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "up", str(tmp_path), "--port", str(free_port()))
    assert code == 1 and "no function.yaml" in err
    assert fake_runtime_modules["engine"] == []  # nothing started for a typo


def test_up_refuses_when_a_gateway_already_answers(
    fake_runtime_modules: dict[str, list[Any]], gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = gateway.rsplit(":", 1)[1]
    code, _, err = run(capsys, "up", "--port", port)
    assert code == 1 and "already answers" in err


UP_SCRIPT = """
import io, sys, time, types, zipfile
from pathlib import Path
import yaml
marks = Path(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import faas.platform as fp
from tests.fakes import FakePlatform

def mark(name, text):
    with open(marks / name, "a") as f:
        f.write(text + "\\n")

class Platform(FakePlatform):
    def __init__(self):
        super().__init__()
        self.env_rows = []
    def shutdown(self, wait_s=None):
        super().shutdown(wait_s)
        mark("shutdown", "worker")

class Engine:
    base_url = "unix:///nonexistent/docker.sock"

fp.Platform.create = classmethod(lambda cls, config: Platform())
sys.modules["faas.containers.engine"] = types.SimpleNamespace(ensure_engine=lambda state_dir, install=True, say=None: Engine())
sys.modules["faas.containers.images"] = types.SimpleNamespace(ensure_all=lambda executor, runtimes=None, force=False, say=None: None)
sys.modules["faas.containers.docker_executor"] = types.SimpleNamespace(
    DockerExecutor=lambda base_url: object(),
    remove_state_containers=lambda config: mark("cleanup", str(config.port)),
)
from faas.cli import main as cli
code = cli.main(sys.argv[3:])
mark("exit", str(code))
sys.exit(code)
"""


def test_up_for_real_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """gunicorn in this process, worker forked, deploys over HTTP; Ctrl-C (SIGINT to the
    whole process group) shuts the platform down in the worker and cleans up in the arbiter."""
    import os
    import signal
    import subprocess

    import requests

    write_function(tmp_path / "fns" / "hello", "hello")
    (tmp_path / "up.py").write_text(UP_SCRIPT)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "up.py"),
            str(tmp_path),
            str(REPO),
            "up",
            str(tmp_path / "fns"),
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / "state"),
            "--threads",
            "4",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/system/functions/hello", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "faas up did not deploy hello"
            time.sleep(0.05)
        r = requests.post(f"{url}/2015-03-31/functions/hello/invocations", data=b'{"a": 1}', timeout=5)
        assert r.status_code == 200 and r.content == b'{"a": 1}'
        assert requests.get(f"{url}/system/functions/hello", timeout=5).json()["source_dir"] == str(
            (tmp_path / "fns" / "hello").resolve()
        )
        printed = read_until(proc, b"ready: ", timeout=10)  # the deploy thread's summary, after its lines
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        out = printed + out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = out.decode()
    assert f"hello  version 1  deployed  {url}/function/hello" in text, (text, err.decode())
    assert proc.returncode == 0, err.decode()
    assert (tmp_path / "shutdown").read_text() == "worker\n"
    assert (tmp_path / "cleanup").read_text() == f"{port}\n"
    assert (tmp_path / "exit").read_text() == "0\n"  # main() returned once, in the arbiter only
