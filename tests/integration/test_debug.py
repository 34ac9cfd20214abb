"""The debugger path for real: debugpy inside a hardened python3.11 runtime container with
`network: none`, reached from 127.0.0.1:PORT on the host through the unix socket in the
runtime folder, answering the Debug Adapter Protocol `initialize` handshake; then the call
it was holding runs once the IDE has attached.

The container runs runtimes/python/faas_debug.py as the bootstrap will (a script instead of
a handler). Until the runtime image carries Debian's python3-debugpy, the test lends it the
host's copy of that package, read-only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from faas.containers.executor import SANDBOX_UID
from faas.invoke.debug import DebugRelay, dap_initialize, dap_read, dap_send
from tests.integration.conftest import ROOT, free_port

HOST_PACKAGES = Path("/usr/lib/python3/dist-packages")
TARGET = """
import sys
print("the function runs", flush=True)
sys.exit(0)
"""


def image_has_debugpy(client: docker.DockerClient, image: str) -> bool:
    out = client.containers.run(
        image,
        entrypoint=["python3", "-c", "import importlib.util as u; print(bool(u.find_spec('debugpy')))"],
        remove=True,
        network_mode="none",
        user=f"{SANDBOX_UID}:{SANDBOX_UID}",
    )
    return out.strip() == b"True"


def host_debugpy() -> Path:
    """Debian's python3-debugpy on the host (installed when missing, as root)."""
    if not (HOST_PACKAGES / "debugpy" / "__init__.py").exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail("the runtime image has no debugpy and python3-debugpy is not installed here")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-debugpy"]
        if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    return HOST_PACKAGES


@pytest.fixture
def debuggee(
    runtime_images: dict[str, str], docker_client: docker.DockerClient, tmp_path: Path
) -> Iterator[tuple[DebugRelay, object]]:
    image = runtime_images["python3.11"]
    rt = tmp_path / "rt"
    code = tmp_path / "code"
    for d in (rt, code):
        d.mkdir()
        d.chmod(0o755)
    shutil.copy(ROOT / "runtimes" / "python" / "faas_debug.py", code / "faas_debug.py")
    (code / "target.py").write_text(TARGET)
    for f in code.iterdir():
        f.chmod(0o644)
    relay = DebugRelay(free_port(), rt / "debug.sock", label="test")
    volumes = {str(rt): {"bind": "/run/faas", "mode": "ro"}, str(code): {"bind": "/opt/faasdebug", "mode": "ro"}}
    environment = {}
    if not image_has_debugpy(docker_client, image):
        volumes[str(host_debugpy())] = {"bind": "/opt/hostpython", "mode": "ro"}
        environment["PYTHONPATH"] = "/opt/hostpython"
    container = docker_client.containers.run(
        image,
        entrypoint=["python3", "/opt/faasdebug/faas_debug.py", "/opt/faasdebug/target.py"],
        detach=True,
        network_mode="none",
        user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        read_only=True,
        tmpfs={"/tmp": "rw,size=64m,mode=1777"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        volumes=volumes,
        environment=environment,
        labels={"faas.test": "debug"},
    )
    try:
        yield relay, container
    finally:
        relay.close()
        container.remove(force=True)


def wait_for_log(container, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = container.logs().decode(errors="replace")
        if text in logs:
            return logs
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the container's output:\n{container.logs().decode(errors='replace')}")


def test_dap_initialize_through_the_relay_with_network_none(debuggee) -> None:
    relay, container = debuggee
    wait_for_log(container, "faas debug: waiting for a debugger to attach")
    response = dap_initialize(relay.port, timeout=30)
    assert response["success"] is True, response
    capabilities = response["body"]
    assert capabilities["supportsConfigurationDoneRequest"] is True
    assert "exceptionBreakpointFilters" in capabilities
    assert relay.sessions == 1
    assert "the function runs" not in container.logs().decode()  # it still waits for the debugger


def test_the_call_runs_once_the_ide_attached_and_an_ide_may_come_back(debuggee) -> None:
    relay, container = debuggee
    wait_for_log(container, "faas debug: waiting for a debugger to attach")
    assert dap_initialize(relay.port, timeout=30)["success"] is True  # a first look, then gone
    with socket.create_connection(("127.0.0.1", relay.port), timeout=30) as ide:  # and back, to attach
        buffer = bytearray()
        seq = 0

        def request(command: str, **arguments: object) -> None:
            nonlocal seq
            seq += 1
            dap_send(ide, {"seq": seq, "type": "request", "command": command, "arguments": arguments})

        def until(predicate) -> dict:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = dap_read(ide, buffer)
                if predicate(message):
                    return message
            raise AssertionError("no such DAP message")

        request("initialize", clientID="faas", adapterID="python", pathFormat="path", linesStartAt1=True, columnsStartAt1=True)
        assert until(lambda m: m.get("command") == "initialize")["success"] is True
        request("attach", justMyCode=True)
        until(lambda m: m.get("event") == "initialized")
        request("configurationDone")
        until(lambda m: m.get("command") == "configurationDone")
        logs = wait_for_log(container, "the function runs")
        assert "faas debug: debugger attached" in logs
        assert relay.attached.is_set()
    assert relay.sessions == 2


def attach_and_run(port: int, timeout: float = 60) -> socket.socket:
    """Be an IDE: connect (retrying until the relay listens), initialize, attach, configurationDone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ide = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    buffer = bytearray()

    def until(predicate) -> dict:
        while True:
            message = dap_read(ide, buffer)
            if predicate(message):
                return message

    dap_send(
        ide,
        {
            "seq": 1,
            "type": "request",
            "command": "initialize",
            "arguments": {"clientID": "faas-test", "adapterID": "python", "pathFormat": "path"},
        },
    )
    assert until(lambda m: m.get("command") == "initialize")["success"] is True
    dap_send(ide, {"seq": 2, "type": "request", "command": "attach", "arguments": {"justMyCode": True}})
    until(lambda m: m.get("event") == "initialized")
    dap_send(ide, {"seq": 3, "type": "request", "command": "configurationDone", "arguments": {}})
    until(lambda m: m.get("command") == "configurationDone")
    return ide


def test_faas_invoke_debug_waits_for_the_ide_and_suspends_the_timeout(gateway, make_function) -> None:
    """`faas invoke NAME --debug PORT` end to end: the call waits for an IDE, runs once it has
    attached, and outlives its 1 s timeout while the IDE stays attached (as SAM CLI does)."""
    name, folder = make_function(
        """
        import time
        def handler(event, context):
            time.sleep(2)  # longer than the timeout: only a suspended timeout lets this finish
            return {"debugged": True}
    """,
        timeout=1,
    )
    gateway.deploy(folder)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "faas"),
            "invoke",
            name,
            "--debug",
            str(port),
        ],
        env=gateway.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "the call waits for a debugger"
        ide = attach_and_run(port)
        out, errs = proc.communicate(timeout=60)
        ide.close()
        assert proc.returncode == 0, errs
        assert f"waiting for a debugger on 127.0.0.1:{port}" in errs
        assert '"debugged": true' in out.replace(" ", "").replace('"debugged":true', '"debugged": true')
    finally:
        if proc.poll() is None:
            proc.kill()
    # the debug environment was one-off: nothing of it is left in the pool
    import requests

    envs = requests.get(f"{gateway.url}/system/environments", timeout=10).json()
    assert not [e for e in envs if e.get("function") == name]


def _ws_frame(text: str) -> bytes:
    """One masked text frame, as a websocket client sends it."""
    data = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    head += bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_node_function_under_the_inspector(gateway, make_function) -> None:
    """nodejs20.x: `--debug` opens Node's inspector behind the same relay; its /json answer names
    the port the IDE uses, and the call runs once a debugger tells it to."""
    import json as _json
    import threading

    import requests

    name, folder = make_function(
        "",
        runtime="nodejs20.x",
        handler="index.handler",
        timeout=3,
        files={"index.mjs": "export const handler = async () => ({ inspected: true });\n"},
    )
    (folder / "app.py").unlink()
    gateway.deploy(folder)
    port = free_port()
    result: dict = {}

    def call() -> None:
        r = requests.post(
            f"{gateway.url}/2015-03-31/functions/{name}/invocations",
            data=b"{}",
            headers={"X-Faas-Debug-Port": str(port)},
            timeout=120,
        )
        result["status"], result["body"] = r.status_code, r.json()

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 60
    targets = None
    while time.monotonic() < deadline and targets is None:
        try:
            targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5, headers={"Connection": "close"}).json()
        except (requests.RequestException, ValueError):
            time.sleep(0.2)
    assert targets, "the inspector answered through the relay"
    ws_url = targets[0]["webSocketDebuggerUrl"]
    assert f"127.0.0.1:{port}/" in ws_url
    time.sleep(0.3)  # the /json session ended on the relay
    path = "/" + ws_url.split("/", 3)[3]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as ws:
        ws.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert ws.recv(4096).startswith(b"HTTP/1.1 101")
        ws.sendall(_ws_frame(_json.dumps({"id": 1, "method": "Runtime.runIfWaitingForDebugger"})))
        t.join(60)
    assert result == {"status": 200, "body": {"inspected": True}}
