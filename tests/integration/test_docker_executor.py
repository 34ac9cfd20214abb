"""DockerExecutor against the real engine: the hardening a function sees from inside, memory
limits and OOM events, and that kill/remove are safe to repeat."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from faas.containers.docker_executor import DockerExecutor
from faas.containers.engine import DEFAULT_URL, ping
from faas.containers.executor import ContainerSpec
from faas.errors import EngineError

try:
    from docker_fixtures import TEST_LABELS, executor, python_image, sandbox  # noqa: F401
except ImportError:  # imported as a package
    from tests.integration.docker_fixtures import TEST_LABELS, executor, python_image, sandbox  # noqa: F401

pytestmark = pytest.mark.integration

INSPECT = r"""
import os, resource, subprocess

def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "error: %s" % e.strerror

def handler(event, context):
    status = dict(line.split(":\t", 1) for line in read("/proc/self/status").splitlines() if ":\t" in line)
    try:
        open("/etc/faas-was-here", "w")
        root_fs = "writable"
    except OSError as e:
        root_fs = e.strerror
    st = os.statvfs("/tmp")
    script = "/tmp/hello.sh"
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho ran from tmp\n")
    os.chmod(script, 0o755)
    return {
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
        "user": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
        "cap_eff": status.get("CapEff", "").strip(), "cap_bnd": status.get("CapBnd", "").strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "root_fs": root_fs,
        "tmp_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
        "tmp_exec": subprocess.run([script], capture_output=True, text=True).stdout.strip(),
        "pids_max": read("/sys/fs/cgroup/pids/pids.max") if os.path.exists("/sys/fs/cgroup/pids") else read("/sys/fs/cgroup/pids.max"),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes") if os.path.exists("/sys/fs/cgroup/memory") else read("/sys/fs/cgroup/memory.max"),
        "cpu_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") if os.path.exists("/sys/fs/cgroup/cpu") else read("/sys/fs/cgroup/cpu.max"),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "hostname": read("/etc/hostname"),
        "task_writable": os.access("/var/task", os.W_OK),
    }
"""


def test_container_is_hardened(sandbox):
    sandbox.run(INSPECT, memory_mb=256, tmp_mb=600, cpu_quota_us=14_000)
    out = sandbox.api.invoke({})
    assert out.kind == "response", out.body
    seen = out.json()
    assert (seen["uid"], seen["gid"], seen["euid"]) == (993, 993, 993)
    assert seen["user"] == "sbx_user1051"
    assert seen["cap_eff"] == "0000000000000000" and seen["cap_bnd"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    assert seen["root_fs"] == "Read-only file system"
    assert seen["task_writable"] is False
    assert 590 <= seen["tmp_mb"] <= 600
    assert seen["tmp_exec"] == "ran from tmp"  # Lambda allows running programs from /tmp
    assert seen["pids_max"] == "1024"
    assert seen["nofile"] == [1024, 1024]
    assert seen["memory_limit"] == str(256 * 1024 * 1024)
    assert seen["cpu_quota"] in ("14000", "14000 100000")
    assert seen["interfaces"] == ["lo"]  # network none
    assert seen["hostname"] == "faas"


def test_update_resources_of_a_running_container(sandbox, executor):
    container_id = sandbox.run(INSPECT, memory_mb=128)
    executor.update_resources(container_id, 512, 296, None)
    assert sandbox.api.invoke({}).json()["memory_limit"] == str(512 * 1024 * 1024)
    executor.update_resources(container_id, 192, 111, 10000)  # and down again: memory and swap set together
    seen = sandbox.api.invoke({}).json()
    assert seen["memory_limit"] == str(192 * 1024 * 1024)
    assert seen["cpu_quota"] in ("10000", "10000 100000")


def test_memory_peak_is_read_from_the_cgroup(sandbox, executor):
    container_id = sandbox.run("def handler(event, context):\n    return len(bytearray(event * 1024 * 1024))\n")
    assert sandbox.api.invoke(40).json() == 40 * 1024 * 1024
    peak = executor.memory_peak_bytes(container_id)
    assert 40 * 1024 * 1024 < peak < 128 * 1024 * 1024
    assert executor.memory_peak_bytes("0" * 64) == 0


def test_out_of_memory_is_killed_and_reported(sandbox, executor):
    events: list[tuple[str, str]] = []
    got_die = threading.Event()

    def on_event(kind: str, container_id: str) -> None:
        events.append((kind, container_id))
        if kind == "die" and container_id == target[0]:
            got_die.set()

    target = [""]
    executor.subscribe(on_event)
    time.sleep(0.3)  # let the event stream connect
    target[0] = sandbox.run(
        "def handler(event, context):\n    blocks = [bytearray(16 * 1024 * 1024) for _ in range(40)]\n    return len(blocks)\n"
    )
    sandbox.api.send({})
    assert got_die.wait(20), f"no die event; events seen: {events}"
    ours = [kind for kind, cid in events if cid == target[0]]
    assert "oom" in ours and "die" in ours
    state = sandbox.wait_exit(target[0])
    assert state["OOMKilled"] is True and state["ExitCode"] == 137


def test_events_resume_after_the_stream_drops(sandbox, executor):
    seen: list[tuple[str, str]] = []
    executor.subscribe(lambda kind, cid: seen.append((kind, cid)))
    time.sleep(0.3)
    stream = executor._events_stream
    assert stream is not None
    stream.close()  # as if the engine went away
    time.sleep(0.5)
    container_id = sandbox.start(command=("/bin/true",))
    deadline = time.monotonic() + 15
    while ("die", container_id) not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ("die", container_id) in seen


def test_kill_is_idempotent(sandbox, executor):
    container_id = sandbox.start(command=("/bin/sleep", "60"))
    assert executor.container_state(container_id)["Running"] is True
    executor.kill(container_id)
    assert executor.container_state(container_id) is None
    executor.kill(container_id)  # already gone: no error
    executor.kill("f" * 64)  # never existed: no error


def test_remove_labelled(sandbox, executor):
    label = {"faas.test.run": uuid.uuid4().hex}
    ids = []
    for _ in range(2):
        spec = ContainerSpec(
            env_id="orphan",
            image=sandbox.image,
            task_dir=sandbox.task_dir,
            runtime_dir=sandbox.runtime_dir,
            memory_mb=128,
            cpu_shares=74,
            cpu_quota_us=None,
            tmp_mb=512,
            network="none",
            labels={**TEST_LABELS, **label},
            command=("/bin/sleep", "60"),
        )
        ids.append(executor.start(spec))
        sandbox.containers.append(ids[-1])
    assert executor.remove_labelled(label) == 2
    assert all(executor.container_state(i) is None for i in ids)
    assert executor.remove_labelled(label) == 0


def test_engine_errors_are_translated(executor, tmp_path):
    spec = ContainerSpec(
        env_id="x",
        image="faas-runtime/does-not-exist:0",
        task_dir=tmp_path,
        runtime_dir=tmp_path,
        memory_mb=128,
        cpu_shares=74,
        cpu_quota_us=None,
        tmp_mb=512,
        network="none",
        labels=dict(TEST_LABELS),
    )
    with pytest.raises(EngineError, match="does-not-exist"):
        executor.start(spec)
    with pytest.raises(EngineError):
        DockerExecutor(base_url=f"unix://{tmp_path}/no-engine.sock")


def test_engine_ping(engine):
    assert ping(engine.base_url)
    assert not ping("unix:///nonexistent/docker.sock")
    assert isinstance(engine.started_by_faas, bool)
    assert engine.base_url.startswith(("unix://", "tcp://")) or engine.base_url == DEFAULT_URL


def test_has_bridge_matches_the_engine(executor):
    names = {n["Name"] for n in executor.api.networks()}
    assert executor.has_bridge() is ("bridge" in names)


# --- faas.containers.engine: starting and stopping an engine, with a stand-in dockerd ---------------

FAKE_DOCKERD = r"""
import os, signal, socket, sys
path = os.environ["FAKE_DOCKER_SOCK"]
if os.environ.get("FAKE_DOCKERD_FAIL"):
    print("failed to start daemon: " + os.environ["FAKE_DOCKERD_FAIL"], flush=True)
    sys.exit(1)
print("API listen on " + path, " ".join(sys.argv[1:]), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
while True:
    conn, _ = server.accept()
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    conn.close()
"""


@pytest.fixture
def fake_dockerd(tmp_path, monkeypatch):
    """A stand-in dockerd on PATH that answers /_ping on a socket in tmp_path; the real engine is untouched."""
    import sys

    from faas.containers import engine as engine_module

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fake_dockerd.py").write_text(FAKE_DOCKERD)
    script = bin_dir / "dockerd"
    script.write_text(f'#!/bin/bash\nexec -a dockerd {sys.executable} {bin_dir / "fake_dockerd.py"} "$@"\n')
    script.chmod(0o755)
    sock = tmp_path / "docker.sock"
    monkeypatch.setenv("FAKE_DOCKER_SOCK", str(sock))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine_module, "SYSTEM_PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(engine_module, "DEFAULT_SOCKET", str(sock))
    monkeypatch.setattr(engine_module, "DEFAULT_URL", f"unix://{sock}")
    monkeypatch.setattr(engine_module, "START_TIMEOUT_S", 10.0)
    state = tmp_path / "state"
    try:
        yield state
    finally:
        engine_module.stop_engine(state, timeout_s=5)


def test_engine_is_started_detached_and_stopped_only_by_its_pidfile(fake_dockerd):
    from faas.containers import engine as engine_module

    said: list[str] = []
    started = engine_module.ensure_engine(fake_dockerd, say=said.append)
    assert started.started_by_faas is True
    assert started.base_url == engine_module.DEFAULT_URL
    pid = int((fake_dockerd / "engine" / "dockerd.pid").read_text())
    assert os.getsid(pid) != os.getsid(0)  # its own session: it outlives faas
    assert "--bridge=none --iptables=false" in (fake_dockerd / "engine" / "dockerd.log").read_text()
    assert any("starting dockerd" in line for line in said)

    again = engine_module.ensure_engine(fake_dockerd)  # answers now: reused, still ours
    assert again == started
    assert engine_module.stop_engine(fake_dockerd) is True
    assert not engine_module.ping(started.base_url)
    assert engine_module.stop_engine(fake_dockerd) is False  # nothing of ours left


def test_engine_that_fails_to_start_shows_its_log(fake_dockerd, monkeypatch):
    from faas.containers import engine as engine_module

    monkeypatch.setenv("FAKE_DOCKERD_FAIL", "no cgroups here")
    with pytest.raises(EngineError, match="no cgroups here"):
        engine_module.ensure_engine(fake_dockerd)


def test_engine_at_a_dead_docker_host_is_not_replaced(monkeypatch, tmp_path):
    from faas.containers import engine as engine_module
    from faas.errors import EngineUnavailable

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(EngineUnavailable, match="DOCKER_HOST"):
        engine_module.ensure_engine(tmp_path)
