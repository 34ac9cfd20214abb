"""The Runtime API belongs to the function's own runtime, and a call ends at its deadline.

Each test plays an attacker against a real gateway and real containers (issue 17):
- another local process connecting to a `provided` function's Runtime API when the function
  runs with network `host`, where that API listens on the host's loopback (finding 2);
- a runtime that writes its answer's head and then trickles the body, a byte every 2 s, to
  outlive its timeout (finding 3);
- a process the function leaves running that connects to the runtime socket after the call
  and tries to take the next caller's event (finding 10);
- a call still running when its function is deleted and created again (finding 16).
"""

from __future__ import annotations

import json
import shutil
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from faas.deploy.packages import zip_folder
from tests.integration.test_awslambdaric import platform, ric_packages  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

# A `provided` runtime in bash: asks for events on its own connection (Faas-Direct, as the
# project's runtime clients do); "api" answers with AWS_LAMBDA_RUNTIME_API, "trickle" writes
# the answer's head at once and its body a byte every 2 s (20 s in all), anything else echoes.
BASH_RUNTIME = r"""#!/bin/bash
api=${AWS_LAMBDA_RUNTIME_API}
exec 3<>"/dev/tcp/${api%:*}/${api#*:}"
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nFaas-Direct: 1\r\n\r\n' >&3
while true; do
    id=
    len=0
    while IFS= read -r line <&3; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        case "${line,,}" in
        lambda-runtime-aws-request-id:*) id=${line#*: } ;;
        content-length:*) len=${line#*: } ;;
        esac
    done
    if [ -z "$id" ]; then # the answer to our last response (202 and its body): the event comes next
        [ "$len" -gt 0 ] && IFS= read -r -N "$len" _ <&3
        continue
    fi
    IFS= read -r -N "$len" event <&3
    case "$event" in
    '"api"') out="\"$api\"" ;;
    '"trickle"')
        printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n' "$id" >&3
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            printf x >&3
            sleep 2
        done
        continue
        ;;
    *) out=$event ;;
    esac
    printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' \
        "$id" "${#out}" "$out" >&3
    printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nFaas-Direct: 1\r\n\r\n' >&3
done
"""

# A curl runtime, as people write them for `provided`: a connection per request.
CURL_RUNTIME = r"""#!/bin/sh
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
    curl -sS -D /tmp/h -o /tmp/event "$api/invocation/next"
    id=$(sed -n 's/^lambda-runtime-aws-request-id: *\([^[:space:]]*\).*/\1/Ip' /tmp/h)
    case "$(cat /tmp/event)" in
    '"api"') printf '"%s"' "$AWS_LAMBDA_RUNTIME_API" >/tmp/out ;;
    *) cp /tmp/event /tmp/out ;;
    esac
    curl -sS -o /dev/null --data-binary @/tmp/out "$api/invocation/$id/response"
done
"""


def provided(make_function, bootstrap: str, **spec: object) -> tuple[str, Path]:
    name, folder = make_function("", runtime="provided", handler="function.handler", files={"bootstrap": bootstrap}, **spec)
    (folder / "bootstrap").chmod(0o755)
    return name, folder


def calls(gw, name: str) -> list[dict]:
    out = gw.cli("calls", name, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def probe(port: int, request: bytes) -> bytes:
    """What another local process gets from a Runtime API port: everything until it closes
    (or 5 s of silence: an API that holds the request, as GET next waiting for an event)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except TimeoutError:
            data += b"<held open>"
        except ConnectionResetError:
            pass
        return data


# ---- finding 2: a `provided` function with network host --------------------------------------


@pytest.mark.parametrize("bootstrap", [CURL_RUNTIME, BASH_RUNTIME], ids=["curl", "direct"])
def test_host_network_runtime_api_serves_only_the_functions_own_processes(fault_gateway, make_function, bootstrap) -> None:
    gw = fault_gateway
    names = []
    for _ in range(2):  # two at once: the second listens on another port, and both work
        name, folder = provided(make_function, bootstrap, network="host", timeout=10)
        gw.deploy(folder)
        names.append(name)
    ports = []
    for name in names:
        r = gw.invoke(name, b'"api"')
        assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
        host, _, port = r.json().partition(":")
        assert host == "127.0.0.1"
        ports.append(int(port))
    assert len(set(ports)) == 2

    rid = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    attacks = {
        "environment": b"GET /faas/v1/environment HTTP/1.1\r\nHost: x\r\n\r\n",
        "next event": b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
        "forged response": f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\r\nHost: x\r\n"
        'Content-Length: 8\r\n\r\n"forged"'.encode(),
    }
    got = {what: probe(port, req) for port in ports for what, req in attacks.items()}
    assert got == {what: b"" for what in attacks}, got  # closed at once, nothing answered

    # While the probes were refused, the functions' own calls went on, and still do.
    for name in names:
        for i in range(3):
            r = gw.invoke(name, json.dumps({"i": i}).encode())
            assert r.status_code == 200 and r.json() == {"i": i}, r.text
    assert "refused a Runtime API connection" in gw.cli("logs", names[0]).stdout


def test_host_network_runtime_api_with_awss_own_runtime_client(platform, ric_packages, tmp_path) -> None:  # noqa: F811
    """AWS's runtime interface client (one kept-alive connection, its own HTTP code) through
    the same check: its calls work with network `host`, another process's probes do not."""
    folder = tmp_path / "ric-host"
    shutil.copytree(ric_packages, folder, ignore=shutil.ignore_patterns(".complete", "bin"))
    (folder / "bootstrap").write_text('#!/bin/sh\nexec python3 -m awslambdaric "$_HANDLER"\n')
    (folder / "bootstrap").chmod(0o755)
    (folder / "app.py").write_text(
        "import os\ndef handler(event, context):\n    return [event, os.environ['AWS_LAMBDA_RUNTIME_API']]\n"
    )
    (folder / "function.yaml").write_text("name: ric-host\nruntime: provided\nhandler: app.handler\ntimeout: 10\nnetwork: host\n")
    platform.deploy_zip(zip_folder(folder))
    first = platform.invoke("ric-host", b'{"n": 1}')
    assert first.function_error is None, first.payload
    event, api = json.loads(first.payload)
    assert event == {"n": 1}
    port = int(api.partition(":")[2])
    assert probe(port, b"GET /faas/v1/environment HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    for n in range(2, 5):
        assert json.loads(platform.invoke("ric-host", json.dumps({"n": n}).encode()).payload)[0] == {"n": n}


# ---- finding 3: a deadline across every read of the call ------------------------------------


def test_a_trickled_answer_is_cut_off_at_the_timeout_and_its_slot_freed(fault_gateway, make_function) -> None:
    gw = fault_gateway
    name, folder = provided(make_function, BASH_RUNTIME, timeout=3, concurrency=1)
    gw.deploy(folder)
    assert gw.invoke(name, b'{"warm": 1}').json() == {"warm": 1}  # the direct connection is up

    started = time.monotonic()
    r = gw.invoke(name, b'"trickle"', timeout=60)
    took = time.monotonic() - started
    assert r.status_code == 200 and r.headers.get("X-Amz-Function-Error") == "Unhandled"
    body = r.json()
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 3.00 seconds")
    assert took < 8, f"the call ran {took:.1f} s with timeout 3"

    # Its one concurrency slot is free again: the next call runs (not 429).
    r = gw.invoke(name, b'{"after": 1}')
    assert r.status_code == 200 and r.json() == {"after": 1}, r.text
    statuses = [c["status"] for c in calls(gw, name)]
    assert statuses[:2] == ["ok", "timeout"]


# ---- finding 10: a process left behind takes over the runtime's connection -------------------

INTRUDER = r"""
import os, socket, time
time.sleep(1.0)
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ.get("FAAS_RUNTIME_SOCKET", "/run/faas/runtime.sock"))
s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nFaas-Direct: 1\r\n\r\n")
s.settimeout(30)
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(65536)
    if not chunk:
        raise SystemExit
    data += chunk
head = data.split(b"\r\n\r\n")[0].decode()
ids = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("lambda-runtime-aws-request-id")]
if ids:
    body = b'"hijacked"'
    s.sendall(("POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % (ids[0], len(body))).encode() + body)
    time.sleep(10)
"""

LEAVES_A_PROCESS = f"""
import subprocess, sys

INTRUDER = {INTRUDER!r}

def handler(event, context):
    if event.get("leave"):
        subprocess.Popen([sys.executable, "-c", INTRUDER], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {{"real": event}}
"""


def test_a_process_left_running_cannot_take_the_next_call(fault_gateway, make_function) -> None:
    gw = fault_gateway
    name, folder = make_function(LEAVES_A_PROCESS, timeout=10)
    gw.deploy(folder)
    assert gw.invoke(name, b'{"leave": true}').json() == {"real": {"leave": True}}
    time.sleep(2.5)  # the process left behind has connected and asked for the next event
    for i in range(3):
        r = gw.invoke(name, json.dumps({"i": i}).encode())
        assert r.status_code == 200 and r.json() == {"real": {"i": i}}, r.text
    assert "refused NextEvent from a second connection" in " ".join(gw.logs().split())  # the log wraps its lines


# ---- finding 16: a call of a deleted function, recorded under its successor --------------------


def test_a_call_of_a_deleted_function_is_not_recorded_under_the_new_one(fault_gateway, make_function) -> None:
    gw = fault_gateway
    slow = """
        import time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return "old"
    """
    name, folder = make_function(textwrap.dedent(slow), timeout=20)
    gw.deploy(folder)
    assert gw.invoke(name).json() == "old"  # warm, so the slow call starts at once
    answer: dict[str, requests.Response] = {}
    t = threading.Thread(target=lambda: answer.setdefault("r", gw.invoke(name, b'{"sleep": 4}', timeout=60)))
    t.start()
    time.sleep(1.0)
    assert gw.cli("rm", name).returncode == 0
    (folder / "app.py").write_text("def handler(event, context):\n    return 'new'\n")
    gw.deploy(folder)  # the same name again: version 1 of a new function
    t.join(60)
    assert answer["r"].status_code == 200  # the old call ran to its end
    new = gw.invoke(name)
    assert new.json() == "new"

    records = calls(gw, name)
    assert [(c["version"], c["request_id"]) for c in records] == [(1, new.headers["x-amzn-RequestId"])], records
