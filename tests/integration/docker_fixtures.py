"""Fixtures for tests against the real Docker engine: a DockerExecutor on the `engine` of
tests/integration/conftest.py, the python runtime image, and a sandbox that runs runtime containers against a small fake
Runtime API server (threads, AF_UNIX), so the bootstrap is tested without the platform.

Import what a test module uses: `from docker_fixtures import executor, sandbox, ...`.
Every container a sandbox starts is removed when the test ends, passed or failed.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faas.containers.docker_executor import DockerExecutor
from faas.containers.executor import LOG_FIFO_NAME, SOCKET_NAME, ContainerSpec
from faas.containers.images import ensure_runtime_image

TEST_LABELS = {"faas.test": "docker-executor"}


@pytest.fixture(scope="session")
def executor(engine):
    ex = DockerExecutor(base_url=engine.base_url)
    try:
        yield ex
    finally:
        ex.remove_labelled(TEST_LABELS)
        ex.close()


@pytest.fixture(scope="session")
def python_image(executor):
    started = time.monotonic()
    tag = ensure_runtime_image("python3.11", executor, say=print)
    print(f"python runtime image {tag} ready in {time.monotonic() - started:.1f} s, {executor.image_size(tag) / 1e6:.0f} MB")
    return tag


# --- a fake Runtime API ------------------------------------------------------------------


@dataclass
class Outcome:
    """What the bootstrap posted for one request (or for init)."""

    kind: str  # "response" | "error" | "init-error"
    request_id: str
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


@dataclass
class Request:
    event: bytes
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeRuntimeAPI:
    """Serves the faas Runtime API protocol on a unix socket, one thread per connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.environment: dict | None = None
        self._environment_ready = threading.Event()
        self.environment_requested_at: float | None = None
        self._events: queue.Queue[Request] = queue.Queue()
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.response_status: dict[str, int] = {}  # request id -> status to answer its POST with
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        os.chmod(path, 0o666)
        self._server.listen(16)
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def set_environment(self, handler: str, env: dict[str, str]) -> None:
        self.environment = {"handler": handler, "env": env}
        self._environment_ready.set()

    def invoke(self, event, *, timeout: float = 30.0, **send) -> Outcome:
        """Queue one event and wait for what the bootstrap posts for it."""
        self.send(event, **send)
        return self.wait_outcome(timeout=timeout)

    def send(
        self, event, *, headers: dict[str, str] | None = None, request_id: str | None = None, deadline_s: float = 30.0
    ) -> str:
        """Queue one event for the bootstrap's next GET .../invocation/next; returns its request id."""
        request_id = request_id or str(uuid.uuid4())
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        hdrs = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + deadline_s) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
            "Lambda-Runtime-Trace-Id": "Root=1-5e1b4151-5ac6c58f5b5daa6532e4a0f5;Parent=1;Sampled=0",
            "Content-Type": "application/json",
        }
        hdrs.update(headers or {})
        self._events.put(Request(body, request_id, hdrs))
        return request_id

    def wait_outcome(self, timeout: float = 30.0) -> Outcome:
        try:
            return self.outcomes.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the bootstrap posted nothing within {timeout} s") from None

    def close(self) -> None:
        self._closed = True
        self._environment_ready.set()
        for conn in [self._server, *self._conns]:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    # server side

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._closed:
                line = reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = reader.readline().decode().rstrip("\r\n")
                    if not h:
                        break
                    name, _, value = h.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                self._route(conn, method, path, headers, body)
        except (OSError, ValueError):
            return

    def _route(self, conn, method, path, headers, body) -> None:
        if method == "GET" and path == "/faas/v1/environment":
            self.environment_requested_at = time.monotonic()
            self._environment_ready.wait()
            if self._closed:
                return
            self._send(conn, 200, json.dumps(self.environment).encode())
        elif method == "GET" and path == "/2018-06-01/runtime/invocation/next":
            while not self._closed:
                try:
                    request = self._events.get(timeout=0.2)
                    break
                except queue.Empty:
                    continue
            else:
                return
            self._send(conn, 200, request.event, request.headers)
        elif method == "POST" and path == "/2018-06-01/runtime/init/error":
            self.outcomes.put(Outcome("init-error", "", body, headers))
            self._send(conn, 202, b'{"status":"OK"}')
        elif method == "POST" and path.startswith("/2018-06-01/runtime/invocation/"):
            _, _, rest = path.partition("/invocation/")
            request_id, _, kind = rest.partition("/")
            status = self.response_status.get(request_id, 202)
            self.outcomes.put(Outcome(kind, request_id, body, headers))
            self._send(conn, status, b'{"status":"OK"}' if status == 202 else b'{"errorMessage":"refused"}')
        else:
            self._send(conn, 404, b'{"errorMessage":"not found"}')

    @staticmethod
    def _send(conn, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        conn.sendall(head.encode() + b"\r\n" + body)


# --- a sandbox: folders, FIFO, fake API and the containers of one test -------------------


class Sandbox:
    def __init__(self, root: Path, executor: DockerExecutor, image: str) -> None:
        self.executor = executor
        self.image = image
        self.task_dir = root / "task"
        self.runtime_dir = root / "runtime"
        for folder in (self.task_dir, self.runtime_dir):
            folder.mkdir(parents=True)
            folder.chmod(0o755)
        fifo = self.runtime_dir / LOG_FIFO_NAME
        os.mkfifo(fifo)
        fifo.chmod(0o666)
        # Opened read-write on the host first, so the container's open for writing never blocks.
        self._fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.api = FakeRuntimeAPI(self.runtime_dir / SOCKET_NAME)
        self.containers: list[str] = []
        self._log = b""
        self.start_ms: float | None = None
        self.started_at: float | None = None

    def write(self, name: str, text: str) -> None:
        path = self.task_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)

    def start(
        self,
        *,
        memory_mb: int = 128,
        tmp_mb: int = 512,
        network: str = "none",
        cpu_quota_us: int | None = None,
        command: tuple[str, ...] = (),
    ) -> str:
        spec = ContainerSpec(
            env_id=f"test-{uuid.uuid4().hex[:8]}",
            image=self.image,
            task_dir=self.task_dir,
            runtime_dir=self.runtime_dir,
            memory_mb=memory_mb,
            cpu_shares=max(2, memory_mb * 1024 // 1769),
            cpu_quota_us=cpu_quota_us,
            tmp_mb=tmp_mb,
            network=network,
            labels=dict(TEST_LABELS),
            command=command,
        )
        self.started_at = time.monotonic()
        container_id = self.executor.start(spec)
        self.start_ms = (time.monotonic() - self.started_at) * 1000
        self.containers.append(container_id)
        return container_id

    def run(self, code: str, *, handler: str = "app.handler", env: dict[str, str] | None = None, **start) -> str:
        """Write app.py, start a container and give it its function."""
        self.write("app.py", code)
        container_id = self.start(**start)
        self.api.set_environment(
            handler,
            {
                "AWS_LAMBDA_FUNCTION_NAME": "probe",
                "AWS_LAMBDA_FUNCTION_VERSION": "3",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(start.get("memory_mb", 128)),
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe",
                "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[3]abcdef",
                "AWS_REGION": "us-east-1",
                "_HANDLER": handler,
                **(env or {}),
            },
        )
        return container_id

    def logs(self) -> str:
        """Everything written to the log FIFO so far."""
        while True:
            try:
                chunk = os.read(self._fifo_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._log += chunk
        return self._log.decode("utf-8", "replace")

    def wait_exit(self, container_id: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.executor.container_state(container_id)
            if state is None or not state.get("Running"):
                return state or {}
            time.sleep(0.05)
        raise AssertionError(f"container {container_id[:12]} still running after {timeout} s")

    def close(self) -> None:
        for container_id in self.containers:
            self.executor.kill(container_id)
        self.api.close()
        os.close(self._fifo_fd)


@pytest.fixture
def sandbox(tmp_path, executor, python_image):
    box = Sandbox(tmp_path, executor, python_image)
    try:
        yield box
    finally:
        box.close()
