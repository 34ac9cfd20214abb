"""The Docker engine restarted while faas runs: calls fail cleanly while it is down (a clear
Lambda-shaped error, quickly, never a hang), event calls are kept, a deploy is refused and the
live version stays; once the engine is back, calls work again without restarting faas.

The engine restarted is one this test starts for itself (its own dockerd, data root, socket
and containerd), not the one other tests share: stopping the shared engine would kill every
container of every other test running at the time. The runtime images are copied into it
once (docker save | docker load, kept under its data root for later runs).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from faas.containers.engine import ping
from tests.faults.support import wait_for
from tests.integration.aws_clients import lambda_client
from tests.integration.conftest import Gateway, start_gateway, stop_gateway

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dockerd") is None, reason="starts a dockerd of its own: needs root and dockerd"
)

ROOT = Path(os.environ.get("FAAS_FAULT_ENGINE_DIR", "/var/tmp/faas-fault-engine"))


@dataclass
class PrivateEngine:
    """A dockerd of this test's own; start() and stop() it as often as the test likes."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60) -> float:
        """Start dockerd; seconds until it answers."""
        started = time.monotonic()
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            [
                shutil.which("dockerd") or "dockerd",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "-H",
                self.url,
                "--shutdown-timeout",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        while not ping(self.url, timeout=1.0):
            assert self.proc.poll() is None, f"dockerd exited: {(self.root / 'dockerd.log').read_text()[-2000:]}"
            assert time.monotonic() - started < timeout, "dockerd did not answer"
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self, timeout: float = 30) -> float:
        """Stop dockerd as `systemctl stop docker` does (SIGTERM); seconds until it is gone."""
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return time.monotonic() - started

    def load(self, tags: list[str], source_url: str) -> None:
        """Copy images from the shared engine unless this one has them already."""
        docker = shutil.which("docker")
        assert docker, "the docker CLI is needed to copy images"
        for tag in tags:
            have = subprocess.run([docker, "-H", self.url, "image", "inspect", tag], capture_output=True)
            if have.returncode == 0:
                continue
            save = subprocess.Popen([docker, "-H", source_url, "save", tag], stdout=subprocess.PIPE)
            loaded = subprocess.run([docker, "-H", self.url, "load", "-q"], stdin=save.stdout, capture_output=True)
            assert save.wait(120) == 0 and loaded.returncode == 0, loaded.stderr


def _stop_leftover(root: Path) -> None:
    """A dockerd of an earlier run of this test that did not get to stop its engine."""
    try:
        pid = int((root / "dockerd.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if cmdline and cmdline[0].endswith(b"dockerd") and str(root / "data").encode() in cmdline:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)


@pytest.fixture(scope="module")
def private_engine(runtime_images: dict[str, str], engine) -> Iterator[PrivateEngine]:
    ROOT.mkdir(parents=True, exist_ok=True)
    _stop_leftover(ROOT)
    eng = PrivateEngine(ROOT)
    eng.start()
    try:
        eng.load(sorted(set(runtime_images.values())), engine.base_url)
        yield eng
    finally:
        eng.stop()
        shutil.rmtree(ROOT / "exec", ignore_errors=True)


CODE = """
    def handler(event, context):
        print("ran", event.get("id"))
        return {"id": event.get("id"), "stream": context.log_stream_name}
"""


def _clean_error(r: requests.Response) -> bool:
    """A platform error in Lambda's API shape, or a function error Lambda would give."""
    if r.status_code >= 400:
        return bool(r.headers.get("x-amzn-ErrorType")) and {"Type", "Message"} <= set(r.json())
    return r.status_code == 200 and r.headers.get("X-Amz-Function-Error") == "Unhandled" and "errorType" in r.json()


def test_engine_restart_while_faas_runs(private_engine: PrivateEngine, tmp_path: Path, make_function, figures) -> None:
    gw = start_gateway(tmp_path / "state", extra_env={"DOCKER_HOST": private_engine.url})
    try:
        name, folder = make_function(CODE)
        gw.deploy(folder)
        assert gw.invoke(name).json()["id"] is None
        lam = lambda_client(gw.url)

        down_s = private_engine.stop()
        calls_while_down = []
        for i in range(3):
            started = time.monotonic()
            r = gw.invoke(name, json.dumps({"id": f"down-{i}"}).encode(), timeout=30)
            took = time.monotonic() - started
            assert _clean_error(r), f"{r.status_code} {r.headers} {r.text}"
            assert took < 10, f"a call took {took:.1f} s to fail while the engine was down"
            calls_while_down.append(
                {
                    "status": r.status_code,
                    "error": r.headers.get("x-amzn-ErrorType") or r.json().get("errorType"),
                    "ms": round(took * 1000),
                }
            )
        event_id = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"id": "queued-while-down"}')[
            "ResponseMetadata"
        ]["RequestId"]
        (folder / "app.py").write_text(CODE.replace("\n    ", "\n").replace('"ran"', '"ran v2"'))
        refused = gw.cli("deploy", str(folder))
        assert refused.returncode != 0, refused.stdout
        assert requests.get(f"{gw.url}/system/functions/{name}", timeout=10).json()["version"] == 1
        assert gw.cli("ls").returncode == 0

        up_s = private_engine.start()
        started = time.monotonic()
        r = gw.invoke(name, b'{"id": "back"}')
        first_after = time.monotonic() - started
        assert r.status_code == 200 and r.json()["id"] == "back", f"{r.status_code} {r.text}"
        ran = wait_for(lambda: _ran(gw, name, event_id), timeout=60, step=0.5)
        assert ran, "the event queued while the engine was down never ran"
        gw.deploy(folder)  # (the versions refused while the engine was down keep their numbers)
        assert requests.get(f"{gw.url}/system/functions/{name}", timeout=10).json()["version"] > 1
        r = gw.invoke(name, b'{"id": "v2"}', headers={"X-Amz-Log-Type": "Tail"})
        assert r.json()["id"] == "v2" and "ran v2 v2" in base64.b64decode(r.headers["X-Amz-Log-Result"]).decode()
        figures.add(
            "engine restart",
            engine_stop_s=round(down_s, 1),
            engine_start_s=round(up_s, 1),
            calls_while_down=calls_while_down,
            first_call_after_ms=round(first_after * 1000),
            event_queued_while_down="ran",
        )
    finally:
        code = stop_gateway(gw)
    left = subprocess.run(
        [shutil.which("docker") or "docker", "-H", private_engine.url, "ps", "-aq", "--filter", f"label=faas.state={gw.label}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert not left, f"containers left in the engine: {left}"
    assert code == 0, gw.logs()[-3000:]


def _ran(gw: Gateway, name: str, request_id: str) -> bool:
    out = gw.cli("calls", name, "--json", "--limit", "100")
    return out.returncode == 0 and any(c["request_id"] == request_id and c["status"] == "ok" for c in json.loads(out.stdout))
