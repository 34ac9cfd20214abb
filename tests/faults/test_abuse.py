"""Abusive functions: each is held by its limit, and meanwhile another function keeps answering.

For each abuse a prober calls a small function back to back on its own connection; every
probe call must succeed, and its p50/p99 during the abuse is reported next to the same
prober's figures with nothing else running (the "fault figures" section of the output).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from tests.faults.support import PROBE_CODE, Prober, rss_mb, worker_pid
from tests.integration.conftest import Gateway

FORK_BOMB = """
    import os, time
    def handler(event, context):
        while True:  # every process, children included, forks for ever
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
"""

STDOUT_300MB = """
    import sys
    def handler(event, context):
        line = "x" * (1024 * 1024 - 1) + "\\n"
        for _ in range(300):
            sys.stdout.write(line)
        sys.stdout.flush()
        return "wrote 300 MB"
"""

FILL_TMP = """
    import os
    def handler(event, context):
        block, written = b"\\0" * (1024 * 1024), 0
        try:
            with open("/tmp/fill", "wb") as f:
                while True:
                    f.write(block)
                    f.flush()
                    written += 1
        except OSError as e:
            return {"errno": e.errno, "mb": written}
        finally:
            os.unlink("/tmp/fill")
"""

OPEN_FILES = """
    def handler(event, context):
        files = []
        try:
            for _ in range(10000):
                files.append(open("/var/task/app.py"))
        except OSError as e:
            return {"opened": len(files), "errno": e.errno}
        finally:
            for f in files:
                f.close()
        return {"opened": len(files)}
"""

SPIN = """
    import os, time
    def handler(event, context):
        end = time.monotonic() + event["seconds"]
        children = [pid for pid in (os.fork() for _ in range(3)) if pid]  # the children return 0 and spin too
        if len(children) < 3:
            while time.monotonic() < end:
                pass
            os._exit(0)
        while time.monotonic() < end:
            pass
        for pid in children:
            os.waitpid(pid, 0)
        return "spun"
"""


@pytest.fixture(scope="module")
def probe_name(fault_gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("probe") / "probe"
    folder.mkdir()
    (folder / "function.yaml").write_text("name: probe\nruntime: python3.11\nhandler: app.handler\n")
    (folder / "app.py").write_text(PROBE_CODE)
    fault_gateway.deploy(folder)
    assert fault_gateway.invoke("probe").json() == "pong"
    return "probe"


def _during(gw: Gateway, probe_name: str, abuse, figures, label: str) -> Any:
    """Run abuse() while probing; every probe call must have succeeded. Returns abuse()'s result."""
    with Prober(gw, probe_name) as probe:
        time.sleep(0.3)
        outcome = abuse()
        time.sleep(0.3)
    summary = probe.summary()
    figures.add(f"abuse: {label}", probe=summary)
    assert not probe.failures, f"the probe failed during {label}: {probe.failures[:3]}"
    assert summary["calls"] >= 5, summary
    assert summary["max_ms"] < 5000, f"the probe stalled during {label}: {summary}"
    return outcome


def test_baseline_probe(fault_gateway: Gateway, probe_name: str, figures) -> None:
    _during(fault_gateway, probe_name, lambda: time.sleep(3), figures, "none (baseline)")


def test_fork_bomb(fault_gateway: Gateway, probe_name: str, make_function, figures) -> None:
    name, folder = make_function(FORK_BOMB, timeout=5, memory=512)
    fault_gateway.deploy(folder)
    r = _during(fault_gateway, probe_name, lambda: fault_gateway.invoke(name), figures, "fork bomb")
    assert r.status_code == 200 and r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json()["errorType"] in ("Sandbox.Timedout", "Runtime.OutOfMemory"), r.text


def test_300_mb_to_stdout(fault_gateway: Gateway, probe_name: str, make_function, figures) -> None:
    gw = fault_gateway
    name, folder = make_function(STDOUT_300MB, timeout=120)
    gw.deploy(folder)
    assert gw.invoke(name).status_code == 200  # warm: the worker's memory after is compared with this
    worker = worker_pid(gw)
    rss_before = rss_mb(worker)
    started = time.monotonic()
    r = _during(
        gw, probe_name, lambda: gw.invoke(name, headers={"X-Amz-Log-Type": "Tail"}, timeout=180), figures, "300 MB to stdout"
    )
    took = time.monotonic() - started
    rss_after = rss_mb(worker)
    assert r.status_code == 200 and r.json() == "wrote 300 MB", r.text[:300]
    tail = base64.b64decode(r.headers["X-Amz-Log-Result"]).decode()
    assert "[faas] log output truncated:" in tail and "bytes dropped" in tail
    dropped = int(tail.split("[faas] log output truncated: ")[1].split()[0])
    assert dropped >= 300 * 1024 * 1024 - 512 * 1024
    log_file = gw.state_dir / "logs" / f"{name}.log"
    assert log_file.stat().st_size < 2 * 1024 * 1024  # the cap per call, not 300 MB, reached the disk
    figures.add(
        "abuse: 300 MB to stdout",
        call_s=round(took, 1),
        worker_rss_mb_before=round(rss_before),
        worker_rss_mb_after=round(rss_after),
    )
    assert rss_after - rss_before < 100, (rss_before, rss_after)


def test_fill_tmp(fault_gateway: Gateway, probe_name: str, make_function, figures) -> None:
    # /tmp is a tmpfs, whose pages count against the container's memory: give it room for them.
    name, folder = make_function(FILL_TMP, timeout=60, memory=1024, ephemeral_storage=512)
    fault_gateway.deploy(folder)
    r = _during(fault_gateway, probe_name, lambda: fault_gateway.invoke(name), figures, "fill /tmp")
    out = r.json()
    assert out["errno"] == 28, r.text  # ENOSPC inside the function
    assert 500 <= out["mb"] <= 512
    again = fault_gateway.invoke(name)  # the same environment: /tmp was emptied by the handler
    assert again.json()["errno"] == 28


def test_open_10000_files(fault_gateway: Gateway, probe_name: str, make_function, figures) -> None:
    name, folder = make_function(OPEN_FILES)
    fault_gateway.deploy(folder)
    r = _during(fault_gateway, probe_name, lambda: fault_gateway.invoke(name), figures, "open 10000 files")
    out = r.json()
    assert out["errno"] == 24 and 1000 <= out["opened"] < 1024, r.text  # EMFILE at the nofile limit
    assert fault_gateway.invoke(name).json()["errno"] == 24  # and the environment is still usable


def test_spin_the_cpu(fault_gateway: Gateway, probe_name: str, make_function, figures) -> None:
    name, folder = make_function(SPIN, timeout=30)
    fault_gateway.deploy(folder)
    r = _during(
        fault_gateway, probe_name, lambda: fault_gateway.invoke(name, b'{"seconds": 5}'), figures, "4 processes spinning for 5 s"
    )
    assert r.status_code == 200 and r.json() == "spun", r.text
