"""The `provided` image against a fake Runtime API on a unix socket: the launcher fetches
the function, serves the Runtime API on 127.0.0.1:9001 inside the container (network none),
and runs the package's own bootstrap; or reports why it cannot, as Lambda words it."""

from __future__ import annotations

import errno
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from docker_fixtures import Sandbox, executor  # noqa: F401
except ImportError:  # imported as a package
    from tests.integration.docker_fixtures import Sandbox, executor  # noqa: F401

from faas.containers.images import ensure_runtime_image

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = {"AWS_LAMBDA_FUNCTION_NAME": "probe", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "LAMBDA_TASK_ROOT": "/var/task"}

# Answers every event with what it was asked to print (sh, curl and coreutils only).
ECHO_SH = r"""#!/bin/sh
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
    curl -sS -D /tmp/h -o /tmp/event "$api/invocation/next"
    id=$(sed -n 's/^lambda-runtime-aws-request-id: *\([^[:space:]]*\).*/\1/Ip' /tmp/h)
    case "$(cat /tmp/event)" in
    '"env"') env -0 >/tmp/out ;;
    '"api"') printf '%s' "$AWS_LAMBDA_RUNTIME_API" >/tmp/out ;;
    '"tools"') for tool in socat jq curl sh bash awk; do command -v "$tool"; done >/tmp/out ;;
    *) cp /tmp/event /tmp/out ;;
    esac
    curl -sS -o /dev/null --data-binary @/tmp/out "$api/invocation/$id/response"
done
"""


@pytest.fixture(scope="module")
def provided_image(executor) -> str:
    return ensure_runtime_image("provided", executor, say=print)


@pytest.fixture
def box(tmp_path, executor, provided_image) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path, executor, provided_image)
    try:
        yield sandbox
    finally:
        sandbox.close()


def put(box: Sandbox, name: str, text: str, mode: int = 0o755) -> None:
    box.write(name, text)
    (box.task_dir / name).chmod(mode)


def test_hello_sh_example_answers_over_the_forwarder_with_network_none(box) -> None:
    for name in ("bootstrap", "function.sh"):
        shutil.copy2(ROOT / "functions" / "hello-sh" / name, box.task_dir / name)
    box.start(network="none")
    box.api.set_environment("function.handler", {**ENV, "_HANDLER": "function.handler", "GREETING": "Hello"})
    out = box.api.invoke({"name": "sh"})
    assert out.kind == "response" and out.json() == {"message": "Hello, sh!"}
    assert box.api.invoke({}).json() == {"message": "Hello, world!"}
    assert "greeting sh\n" in box.logs()


def test_function_arrives_late_and_variables_arrive_exactly(box) -> None:
    put(box, "bootstrap", ECHO_SH)
    box.start()
    time.sleep(0.5)  # a pre-started container: the launcher waits on the socket for its function
    tricky = {
        "QUOTES": 'it\'s "both"',
        "MULTI": "line1\nline2\ttab",
        "UTF8": "grüße 😀",
        "DOLLAR": "$HOME `id` $(id)",
        "EMPTY": "",
    }
    box.api.set_environment("x.y", {**ENV, **tricky})
    env = dict(item.split("=", 1) for item in box.api.invoke("env").body.decode().split("\0") if item)
    assert {k: env.get(k) for k in tricky} == tricky
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001" and env["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert env["LD_LIBRARY_PATH"].endswith("/var/task:/var/task/lib:/opt/lib") and env["PWD"] == "/var/task"
    # The launcher's own tools are not there for the function, as on provided.al2023.
    assert box.api.invoke("tools").body.decode().split() == ["/usr/bin/curl", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/awk"]


def test_missing_bootstrap_is_an_invalid_entrypoint(box) -> None:
    put(box, "main.go", "package main\n", 0o644)
    container = box.start()
    box.api.set_environment("main", ENV)
    out = box.api.wait_outcome(timeout=15)
    assert out.kind == "init-error"
    assert out.json() == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
    }
    assert out.headers["lambda-runtime-function-error-type"] == "Runtime.InvalidEntrypoint"
    assert box.wait_exit(container).get("ExitCode") == 1


def test_bootstrap_that_is_not_executable(box) -> None:
    put(box, "bootstrap", ECHO_SH, 0o644)
    box.start()
    box.api.set_environment("main", ENV)
    out = box.api.wait_outcome(timeout=15)
    assert out.json()["errorMessage"] == "fork/exec /var/task/bootstrap: permission denied"


def test_host_network_with_the_port_taken_falls_back_to_a_free_port(box) -> None:
    # With network `host` the container shares the host's loopback: 127.0.0.1:9001 may be
    # someone else's (here: this test's socket, which never answers).
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind(("127.0.0.1", 9001))
        squatter.listen(1)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
    try:
        put(box, "bootstrap", ECHO_SH)
        box.start(network="host")
        box.api.set_environment("x.y", ENV)
        out = box.api.invoke("api", timeout=15)
        host, _, port = out.body.decode().partition(":")
        assert host == "127.0.0.1" and port.isdigit() and port != "9001"
        assert box.api.invoke({"still": "works"}).json() == {"still": "works"}
    finally:
        squatter.close()
