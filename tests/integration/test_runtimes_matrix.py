"""The same behaviour in every runtime, through the real gateway: one probe function per
runtime (a Python handler for python3.11/3.13/3.14, a Node.js ES module for nodejs20.x/22.x/24.x,
a Java RequestHandler for java21, a shell bootstrap for provided, provided.al2 and provided.al2023,
a Ruby handler for ruby3.3),
each answering the same
actions, plus one function per runtime whose init fails.

What the caller sees must not depend on the runtime: the event and context arrive whole,
a handler error and an init error come back as Unhandled function errors with the runtime's
own error shape, a timeout and an OOM kill are reported as Lambda reports them and the next
call gets a fresh environment, variables arrive byte for byte, the log tail has START, the
function's own line, END and REPORT, and the 6 MB limits hold both ways.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from faas.models import RUNTIMES  # the matrix covers every runtime faas offers

pytestmark = pytest.mark.integration

TIMEOUT_S = 5  # room for 5 MB events on a loaded machine; the timeout test waits this long
ENV = {"GREETING": "hi there", "QUOTED": 'it\'s "q" \\ $HOME', "UNICODE": "grüße €"}
ENV_NAMES = [*ENV, "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "TZ", "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_EXECUTION_ENV"]
LIMIT = 6 * 1024 * 1024

PYTHON_PROBE = """
import os, platform, time

RUNTIME = os.environ["AWS_EXECUTION_ENV"].removeprefix("AWS_Lambda_")

def handler(event, context):
    print(f"hello from {RUNTIME}", context.aws_request_id)
    action = event.get("action")
    if action == "version":
        return platform.python_version()
    if action == "echo":
        return {"event": event, "requestId": context.aws_request_id, "functionName": context.function_name,
                "functionVersion": context.function_version, "memoryLimitInMB": str(context.memory_limit_in_mb),
                "invokedFunctionArn": context.invoked_function_arn, "logGroupName": context.log_group_name,
                "logStreamName": context.log_stream_name, "remainingMs": context.get_remaining_time_in_millis()}
    if action == "error":
        raise ValueError("boom")
    if action == "sleep":
        time.sleep(event["seconds"])
        return "slept"
    if action == "oom":
        hog = []
        while True:
            hog.append(b"x" * (16 * 1024 * 1024))
    if action == "env":
        return {name: os.environ.get(name) for name in event["names"]}
    if action == "size":
        return {"length": len(event["data"])}
    if action == "big":
        return "x" * event["length"]
"""

PYTHON_INIT_ERROR = 'raise RuntimeError("init failed")\n'

NODE_PROBE = """
export const handler = async (event, context) => {
  console.log(`hello from ${process.env.AWS_EXECUTION_ENV.replace('AWS_Lambda_', '')} ${context.awsRequestId}`);
  switch (event.action) {
    case 'version':
      return process.versions.node;
    case 'echo':
      return { event, requestId: context.awsRequestId, functionName: context.functionName,
        functionVersion: context.functionVersion, memoryLimitInMB: context.memoryLimitInMB,
        invokedFunctionArn: context.invokedFunctionArn, logGroupName: context.logGroupName,
        logStreamName: context.logStreamName, remainingMs: context.getRemainingTimeInMillis() };
    case 'error':
      throw new Error('boom');
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
      return 'slept';
    case 'oom': {
      const hog = [];
      for (;;) hog.push(Buffer.alloc(16 * 1024 * 1024, 1));
    }
    case 'env':
      return Object.fromEntries(event.names.map((name) => [name, process.env[name] ?? null]));
    case 'size':
      return { length: event.data.length };
    case 'big':
      return 'x'.repeat(event.length);
  }
};
"""

NODE_INIT_ERROR = "throw new Error('init failed');\nexport const handler = async () => 'never';\n"

# A custom runtime in sh, with curl and coreutils only (what Lambda's provided.al2023 has).
# Events arrive as compact JSON with the action first, so `case` patterns can dispatch on them.
SH_PROBE = r"""#!/bin/sh
set -u
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
header() { sed -n "s/^$1: *\([^[:space:]]*\).*/\1/Ip" /tmp/headers; }
while true; do
    curl -sS -D /tmp/headers -o /tmp/event "$api/invocation/next"
    event=$(cat /tmp/event)
    id=$(header lambda-runtime-aws-request-id)
    echo "hello from provided $id" >&2
    case "$event" in
    '{"action":"echo"'*)
        now=$(date +%s%3N)
        printf '{"event":%s,"requestId":"%s","functionName":"%s","functionVersion":"%s","memoryLimitInMB":"%s","invokedFunctionArn":"%s","logGroupName":"%s","logStreamName":"%s","remainingMs":%s}' \
            "$event" "$id" "$AWS_LAMBDA_FUNCTION_NAME" "$AWS_LAMBDA_FUNCTION_VERSION" "$AWS_LAMBDA_FUNCTION_MEMORY_SIZE" \
            "$(header lambda-runtime-invoked-function-arn)" "$AWS_LAMBDA_LOG_GROUP_NAME" "$AWS_LAMBDA_LOG_STREAM_NAME" \
            "$(($(header lambda-runtime-deadline-ms) - now))" >/tmp/response ;;
    '{"action":"error"'*)
        curl -sS -o /dev/null -H 'Lambda-Runtime-Function-Error-Type: Unhandled' \
            --data-binary '{"errorType":"HandlerError","errorMessage":"boom"}' "$api/invocation/$id/error"
        continue ;;
    '{"action":"sleep"'*)
        sleep 60
        printf '"slept"' >/tmp/response ;;
    '{"action":"oom"'*)
        head -c 1000000000 /dev/zero | sort >/dev/null  # one 1 GB line: sort holds it all
        printf '"survived"' >/tmp/response ;;
    '{"action":"env"'*)
        {
            printf '{'
            sep=
            for name in GREETING QUOTED UNICODE AWS_LAMBDA_FUNCTION_NAME AWS_REGION TZ LAMBDA_TASK_ROOT _HANDLER; do
                eval "value=\${$name-}"
                printf '%s"%s":%s' "$sep" "$name" "$(json_string "$value")"
                sep=,
            done
            printf '}'
        } >/tmp/response ;;
    '{"action":"size"'*)
        data=${event#*\"data\":\"}
        data=${data%\"\}}
        printf '{"length":%s}' "${#data}" >/tmp/response ;;
    '{"action":"big"'*)
        length=${event#*\"length\":}
        length=${length%\}}
        { printf '"'; head -c "$length" /dev/zero | tr '\0' x; printf '"'; } >/tmp/response ;;
    *)
        printf 'null' >/tmp/response ;;
    esac
    curl -sS -o /dev/null --data-binary @/tmp/response "$api/invocation/$id/response"
done
"""

SH_INIT_ERROR = r"""#!/bin/sh
echo "starting, then failing" >&2
curl -sS -o /dev/null -H 'Lambda-Runtime-Function-Error-Type: InitError' \
    --data-binary '{"errorType":"InitError","errorMessage":"init failed"}' \
    "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error"
exit 1
"""

# A RequestHandler with POJO input (JSON mapped to a Map) and output, compiled in the fixture
# with the java21 image's own javac against its com.amazonaws.services.lambda.runtime interfaces.
# Its "oom" grows native memory past the function's memory (as a JVM does when it outgrows its
# container); a heap that is full is Java's own OutOfMemoryError (test_java_heap_out_of_memory).
JAVA_PROBE = """
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Probe implements RequestHandler<Map<String, Object>, Object> {
    @Override
    public Object handleRequest(Map<String, Object> event, Context context) {
        String runtime = System.getenv("AWS_EXECUTION_ENV").replace("AWS_Lambda_", "");
        System.out.println("hello from " + runtime + " " + context.getAwsRequestId());
        switch (String.valueOf(event.get("action"))) {
            case "version":
                return System.getProperty("java.version");
            case "echo": {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("event", event);
                out.put("requestId", context.getAwsRequestId());
                out.put("functionName", context.getFunctionName());
                out.put("functionVersion", context.getFunctionVersion());
                out.put("memoryLimitInMB", String.valueOf(context.getMemoryLimitInMB()));
                out.put("invokedFunctionArn", context.getInvokedFunctionArn());
                out.put("logGroupName", context.getLogGroupName());
                out.put("logStreamName", context.getLogStreamName());
                out.put("remainingMs", context.getRemainingTimeInMillis());
                return out;
            }
            case "error":
                throw new RuntimeException("boom");
            case "sleep":
                try {
                    Thread.sleep(((Number) event.get("seconds")).longValue() * 1000);
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
                return "slept";
            case "oom":
                try {
                    java.lang.reflect.Field field = Class.forName("sun.misc.Unsafe").getDeclaredField("theUnsafe");
                    field.setAccessible(true);
                    sun.misc.Unsafe unsafe = (sun.misc.Unsafe) field.get(null);
                    for (;;) {
                        long address = unsafe.allocateMemory(16 << 20);
                        unsafe.setMemory(address, 16 << 20, (byte) 1);
                    }
                } catch (ReflectiveOperationException e) {
                    throw new RuntimeException(e);
                }
            case "heap": {
                List<byte[]> hog = new java.util.ArrayList<>();
                for (;;) hog.add(new byte[16 << 20]);
            }
            case "env": {
                Map<String, Object> out = new LinkedHashMap<>();
                for (Object name : (List<?>) event.get("names")) out.put((String) name, System.getenv((String) name));
                return out;
            }
            case "size":
                return Map.of("length", ((String) event.get("data")).length());
            case "big":
                return "x".repeat(((Number) event.get("length")).intValue());
            default:
                return null;
        }
    }
}
"""

JAVA_INIT_ERROR = """
public class Probe implements com.amazonaws.services.lambda.runtime.RequestHandler<Object, Object> {
    public Probe() {
        throw new RuntimeException("init failed");
    }

    @Override
    public Object handleRequest(Object event, com.amazonaws.services.lambda.runtime.Context context) {
        return "never";
    }
}
"""

# Lambda's Ruby runtime calls handler(event:, context:); errors come back as Function<Class>.
RUBY_PROBE = """
RUNTIME = ENV["AWS_EXECUTION_ENV"].delete_prefix("AWS_Lambda_")

def handler(event:, context:)
  puts "hello from #{RUNTIME} #{context.aws_request_id}"
  case event["action"]
  when "version" then RUBY_VERSION
  when "echo"
    { event: event, requestId: context.aws_request_id, functionName: context.function_name,
      functionVersion: context.function_version, memoryLimitInMB: context.memory_limit_in_mb,
      invokedFunctionArn: context.invoked_function_arn, logGroupName: context.log_group_name,
      logStreamName: context.log_stream_name, remainingMs: context.get_remaining_time_in_millis }
  when "error" then raise ArgumentError, "boom"
  when "sleep"
    sleep event["seconds"]
    "slept"
  when "oom"
    hog = []
    loop { hog << ("x" * (16 * 1024 * 1024)) }
  when "env" then event["names"].to_h { |name| [name, ENV[name]] }
  when "size" then { length: event["data"].length }
  when "big" then "x" * event["length"]
  end
end
"""

RUBY_INIT_ERROR = 'raise "init failed"\ndef handler(event:, context:) = "never"\n'

# runtime family -> (handler, probe files, init-error files, the error type each one reports)
FAMILIES = {
    "python": ("app.handler", {"app.py": PYTHON_PROBE}, {"app.py": PYTHON_INIT_ERROR}, "ValueError", "RuntimeError"),
    "nodejs": ("index.handler", {"index.mjs": NODE_PROBE}, {"index.mjs": NODE_INIT_ERROR}, "Error", "Error"),
    "provided": ("probe.handler", {"bootstrap": SH_PROBE}, {"bootstrap": SH_INIT_ERROR}, "HandlerError", "InitError"),
    "java": (
        "Probe",
        {"Probe.java": JAVA_PROBE},
        {"Probe.java": JAVA_INIT_ERROR},
        "java.lang.RuntimeException",
        "java.lang.RuntimeException",
    ),
    "ruby": ("app.handler", {"app.rb": RUBY_PROBE}, {"app.rb": RUBY_INIT_ERROR}, "Function<ArgumentError>", "Init<RuntimeError>"),
}
SOURCES = {runtime: FAMILIES[re.sub(r"[\d.].*$", "", runtime)] for runtime in RUNTIMES}


def family(runtime: str) -> str:
    return re.sub(r"[\d.].*$", "", runtime)


def write_function(root: Path, name: str, runtime: str, handler: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    env = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in ENV.items())
    (folder / "function.yaml").write_text(
        f"name: {name}\nruntime: {runtime}\nhandler: {handler}\nmemory: 128\ntimeout: {TIMEOUT_S}\nenvironment:\n{env}"
    )
    for rel, text in files.items():
        (folder / rel).write_text(text)
        (folder / rel).chmod(0o755 if rel == "bootstrap" else 0o644)
    return folder


def compile_java(gateway, docker_client, runtime: str, folders: list[Path]) -> None:
    """javac each folder's .java files into classes beside them, with the runtime image's own JDK
    (built first if need be) and its aws-lambda-java-core interfaces: what a user's build makes."""
    built = gateway.cli("runtimes", "build", runtime, timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    from faas.containers.images import runtime_image_tag

    volumes = {str(folder): {"bind": f"/src/{i}", "mode": "rw"} for i, folder in enumerate(folders)}
    sources = [f"/src/{i}/{p.name}" for i, folder in enumerate(folders) for p in folder.glob("*.java")]
    for i, folder in enumerate(folders):  # one javac per folder: each has its own Probe class
        docker_client.containers.run(
            runtime_image_tag(runtime),
            entrypoint=["javac", "-nowarn", "-cp", "/var/runtime/lib/aws-lambda-java-core.jar", "-d", f"/src/{i}"]
            + [src for src in sources if src.startswith(f"/src/{i}/")],
            volumes=volumes,
            user=f"{os.getuid()}:{os.getgid()}",
            network_disabled=True,
            remove=True,
        )
        assert (folder / "Probe.class").is_file()


@pytest.fixture(scope="module")
def functions(gateway, docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """runtime -> (probe function name, init-error function name), deployed once for the module."""
    root = tmp_path_factory.mktemp("matrix")
    suffix = uuid.uuid4().hex[:6]
    names: dict[str, tuple[str, str]] = {}
    for runtime in RUNTIMES:
        handler, probe, broken, _, _ = SOURCES[runtime]
        short = re.sub(r"[^a-z0-9]", "", runtime)
        probe_name, broken_name = f"mx-{short}-{suffix}", f"mx-{short}-init-{suffix}"
        folders = [
            write_function(root, name, runtime, handler, files) for name, files in ((probe_name, probe), (broken_name, broken))
        ]
        if family(runtime) == "java":
            compile_java(gateway, docker_client, runtime, folders)
        for folder in folders:
            gateway.deploy(folder)
        names[runtime] = (probe_name, broken_name)
    yield names
    for probe_name, broken_name in names.values():
        gateway.cli("rm", probe_name)
        gateway.cli("rm", broken_name)


def call(gateway, name: str, event: dict | bytes, tail: bool = False) -> requests.Response:
    body = event if isinstance(event, bytes) else json.dumps(event, separators=(",", ":")).encode()
    return gateway.invoke(name, body, headers={"X-Amz-Log-Type": "Tail"} if tail else None)


def ok(response: requests.Response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    assert "X-Amz-Function-Error" not in response.headers, response.text[:500]
    return response.json()


def function_error(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text[:500]
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", response.text[:500]
    return response.json()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_echo_event_and_context(gateway, functions, runtime: str) -> None:
    name = functions[runtime][0]
    event = {"action": "echo", "nested": {"list": [1, 2.5, None, True], "text": 'ü ✓ "quoted"'}}
    response = call(gateway, name, event)
    body = ok(response)
    assert body["event"] == event
    assert body["requestId"] == response.headers["x-amzn-RequestId"]
    assert body["functionName"] == name
    assert body["functionVersion"] == response.headers["X-Amz-Executed-Version"]
    assert body["memoryLimitInMB"] == "128"
    assert body["invokedFunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert body["logGroupName"] == f"/aws/lambda/{name}"
    assert body["logStreamName"].startswith(tuple("0123456789")) and "[" in body["logStreamName"]
    assert 0 < body["remainingMs"] <= TIMEOUT_S * 1000


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_handler_error(gateway, functions, runtime: str) -> None:
    error_type = SOURCES[runtime][3]
    body = function_error(call(gateway, functions[runtime][0], {"action": "error"}))
    assert body["errorType"] == error_type and body["errorMessage"] == "boom"
    if family(runtime) == "python":
        assert any("raise ValueError" in line for line in body["stackTrace"])
    if family(runtime) == "nodejs":
        assert body["trace"][0] == "Error: boom" and "/var/task/index.mjs" in body["trace"][1]
    if family(runtime) == "java":  # Lambda's Java shape: the handler's frame first, the runtime's left out
        assert body["stackTrace"][0].startswith("Probe.handleRequest(Probe.java:"), body
        assert not any("faas.runtime" in line or "reflect" in line for line in body["stackTrace"]), body
    if family(runtime) == "ruby":  # the function's own frames, none of the runtime's
        assert body["stackTrace"][0].startswith("/var/task/app.rb:") and "in `handler'" in body["stackTrace"][0]
        assert not any("/var/runtime/" in line for line in body["stackTrace"]), body["stackTrace"]
    # The environment survives its function's error: the next call is answered.
    assert ok(call(gateway, functions[runtime][0], {"action": "echo"}))["event"] == {"action": "echo"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_init_error(gateway, functions, runtime: str) -> None:
    response = call(gateway, functions[runtime][1], {"action": "echo"}, tail=True)
    body = function_error(response)
    assert body["errorType"] == SOURCES[runtime][4]
    assert body["errorMessage"] == "init failed"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_timeout_then_a_fresh_environment(gateway, functions, runtime: str) -> None:
    name = functions[runtime][0]
    response = call(gateway, name, {"action": "sleep", "seconds": 60}, tail=True)
    body = function_error(response)
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith(f"Task timed out after {TIMEOUT_S:.2f} seconds")
    assert f"Task timed out after {TIMEOUT_S:.2f} seconds" in base64.b64decode(response.headers["X-Amz-Log-Result"]).decode()
    assert ok(call(gateway, name, {"action": "echo"}))["functionName"] == name


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_out_of_memory_then_a_fresh_environment(gateway, functions, runtime: str) -> None:
    name = functions[runtime][0]
    body = function_error(call(gateway, name, {"action": "oom"}))
    assert body["errorType"] == "Runtime.OutOfMemory", body
    assert ok(call(gateway, name, {"action": "echo"}))["functionName"] == name


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_environment_variables(gateway, functions, runtime: str) -> None:
    name = functions[runtime][0]
    handler = SOURCES[runtime][0]
    body = ok(call(gateway, name, {"action": "env", "names": ENV_NAMES}))
    assert {k: body[k] for k in ENV} == ENV  # quotes, backslash, $ and UTF-8 arrive byte for byte
    assert body["AWS_LAMBDA_FUNCTION_NAME"] == name and body["AWS_REGION"] == "us-east-1"
    assert body["TZ"] == ":UTC" and body["LAMBDA_TASK_ROOT"] == "/var/task" and body["_HANDLER"] == handler
    # As Lambda sets it: the managed runtime's name, nothing for the OS-only (provided) ones.
    assert body.get("AWS_EXECUTION_ENV") == (None if family(runtime) == "provided" else f"AWS_Lambda_{runtime}")


@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if family(r) != "provided"])
def test_the_language_is_the_runtimes_version(gateway, functions, runtime: str) -> None:
    version = ok(call(gateway, functions[runtime][0], {"action": "version"}))
    wanted = runtime.removeprefix("python").removeprefix("nodejs").removeprefix("java").removeprefix("ruby").removesuffix(".x")
    assert version == wanted or version.startswith(wanted + "."), (runtime, version)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_log_tail_has_the_functions_line_and_report(gateway, functions, runtime: str) -> None:
    response = call(gateway, functions[runtime][0], {"action": "echo"}, tail=True)
    ok(response)
    request_id = response.headers["x-amzn-RequestId"]
    log = base64.b64decode(response.headers["X-Amz-Log-Result"]).decode()
    lines = log.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("START RequestId: ")))
    assert lines[start].startswith(f"START RequestId: {request_id} Version: ")
    own = [line for line in lines if f"hello from {'provided' if family(runtime) == 'provided' else runtime}" in line]
    assert own and request_id in own[0]
    if family(runtime) == "nodejs":  # console.log as Lambda's Node.js runtime formats it
        stamp, rid, level, message = own[0].split("\t")
        assert stamp.endswith("Z") and rid == request_id and level == "INFO" and message.startswith("hello from")
    assert f"END RequestId: {request_id}" in lines
    report = next(line for line in lines if line.startswith("REPORT RequestId: "))
    assert report.startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tMemory Size: 128 MB\tMax Memory Used: " in report and "Billed Duration: " in report


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_payload_limits(gateway, functions, runtime: str) -> None:
    name = functions[runtime][0]
    data = "y" * (5 * 1024 * 1024)
    assert ok(call(gateway, name, {"action": "size", "data": data})) == {"length": len(data)}
    big = call(gateway, name, {"action": "big", "length": 5_000_000})
    assert ok(big) == "x" * 5_000_000
    too_big = function_error(call(gateway, name, {"action": "big", "length": LIMIT}))
    assert too_big["errorType"] == "Function.ResponseSizeTooLarge"
    refused = call(gateway, name, b'"' + b"z" * LIMIT + b'"')
    assert refused.status_code == 413
    assert refused.headers.get("x-amzn-ErrorType", "").startswith("RequestTooLargeException")


@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if family(r) == "java"])
def test_java_heap_out_of_memory_then_a_fresh_environment(gateway, functions, runtime: str) -> None:
    """A full heap is Java's OutOfMemoryError, reported as Lambda's Java runtime reports it; the
    environment does not outlive it (the runtime exits), so the next call is answered afresh."""
    name = functions[runtime][0]
    body = function_error(call(gateway, name, {"action": "heap"}))
    assert body["errorType"] == "java.lang.OutOfMemoryError" and body["errorMessage"] == "Java heap space", body
    assert ok(call(gateway, name, {"action": "echo"}))["functionName"] == name
