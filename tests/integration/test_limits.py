"""Limits enforced by the real engine, with Lambda's errors, and the hardening of every container."""

from __future__ import annotations

import time

from tests.integration.conftest import Gateway


def test_timeout_answers_in_time_and_replaces_the_environment(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        import os, time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return os.getpid()
    """,
        timeout=2,
    )
    gateway.deploy(folder)
    gateway.invoke(name)  # warm it up: the deadline is about the call, not the cold start
    t = time.monotonic()
    r = gateway.invoke(name, b'{"sleep": 10}')
    took = time.monotonic() - t
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    body = r.json()
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in body["errorMessage"]
    assert 2.0 <= took <= 2.5, took
    ok = gateway.invoke(name)
    assert ok.status_code == 200 and "X-Amz-Function-Error" not in ok.headers


def test_out_of_memory_is_reported_and_the_next_call_works(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        def handler(event, context):
            chunks = []
            for _ in range(event.get("mb", 0)):
                chunks.append(bytearray(1024 * 1024))
            return len(chunks)
    """,
        memory=128,
    )
    gateway.deploy(folder)
    r = gateway.invoke(name, b'{"mb": 400}')
    assert r.headers.get("X-Amz-Function-Error") == "Unhandled", r.text
    assert r.json()["errorType"] == "Runtime.OutOfMemory"
    ok = gateway.invoke(name, b'{"mb": 10}')
    assert ok.json() == 10


def test_every_container_is_hardened(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        import os, resource
        def handler(event, context):
            status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
            try:
                open("/etc/faas-probe", "w")
                root_writable = True
            except OSError:
                root_writable = False
            try:
                open("/var/task/probe", "w")
                task_writable = True
            except OSError:
                task_writable = False
            st = os.statvfs("/tmp")
            with open("/tmp/probe", "w") as f:
                f.write("ok")
            return {
                "uid": os.getuid(), "gid": os.getgid(),
                "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
                "root_writable": root_writable, "task_writable": task_writable,
                "tmp_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
                "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
                "cwd": os.getcwd(),
            }
    """,
        memory=256,
        ephemeral_storage=600,
    )
    gateway.deploy(folder)
    r = gateway.invoke(name)
    out = r.json()
    assert out["uid"] == 993 and out["gid"] == 993
    assert out["cap_eff"] == "0000000000000000"
    assert out["no_new_privs"] == "1"
    assert out["root_writable"] is False
    assert out["task_writable"] is False
    assert 590 <= out["tmp_mb"] <= 600
    assert out["nofile"] == [1024, 1024]
    assert out["cwd"] == "/var/task"


def test_engine_side_limits_of_the_container(gateway: Gateway, make_function, docker_client) -> None:
    name, folder = make_function("def handler(e, c):\n    return 1\n", memory=512)
    gateway.deploy(folder)
    gateway.invoke(name)
    [c] = gateway.function_containers(docker_client, name)
    host = c.attrs["HostConfig"]
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["MemorySwap"] == 512 * 1024 * 1024
    assert host["PidsLimit"] == 1024
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["CpuShares"] == 512 * 1024 // 1769
    assert c.attrs["Config"]["User"] == "993:993"


def test_fork_bomb_is_held_by_the_pids_limit(gateway: Gateway, make_function) -> None:
    name, folder = make_function(
        """
        import os, subprocess
        def handler(event, context):
            procs = []
            try:
                for _ in range(3000):
                    procs.append(subprocess.Popen(["sleep", "30"]))
            except OSError as e:
                return {"started": len(procs), "error": e.errno}
            finally:
                for p in procs:
                    p.kill()
            return {"started": len(procs)}
    """,
        timeout=20,
        memory=1024,
    )
    gateway.deploy(folder)
    r = gateway.invoke(name)
    out = r.json()
    assert "started" in out, r.text
    assert out["started"] < 1024 and out["error"] == 11  # EAGAIN
