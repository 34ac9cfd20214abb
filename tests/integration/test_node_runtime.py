"""The nodejs20.x image and its bootstrap against a fake Runtime API on a unix socket: the
Node.js programming model as Lambda's runtime interface client implements it (async and
callback handlers, callbackWaitsForEmptyEventLoop, CommonJS and ES modules, the context
object, error shapes and Runtime.* messages, console lines), and the heap sized to memory.
Each test starts one container; every container is removed when its test ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

try:
    from docker_fixtures import Sandbox, executor  # noqa: F401
except ImportError:  # imported as a package
    from tests.integration.docker_fixtures import Sandbox, executor  # noqa: F401

from faas.containers.images import ensure_runtime_image

pytestmark = pytest.mark.integration

REQUIRE_STACK = "Require stack:\n- /var/runtime/index.mjs"


@pytest.fixture(scope="module")
def node_image(executor) -> str:
    return ensure_runtime_image("nodejs20.x", executor, say=print)


@pytest.fixture
def box(tmp_path, executor, node_image) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path, executor, node_image)
    try:
        yield sandbox
    finally:
        sandbox.close()


def run(
    box: Sandbox, files: dict[str, str], handler: str = "index.handler", env: dict[str, str] | None = None, memory_mb: int = 128
) -> str:
    for name, text in files.items():
        box.write(name, text)
    container = box.start(memory_mb=memory_mb)
    box.api.set_environment(
        handler,
        {
            "AWS_LAMBDA_FUNCTION_NAME": "probe",
            "AWS_LAMBDA_FUNCTION_VERSION": "7",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[7]abcdef",
            "AWS_REGION": "us-east-1",
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": "/var/task",
            "TZ": ":UTC",
            **(env or {}),
        },
    )
    return container


def log_lines(box: Sandbox, wait_for: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while wait_for not in box.logs() and time.monotonic() < deadline:
        time.sleep(0.02)
    return box.logs().split("\n")  # not splitlines(): a \r inside a log event is part of it


CONTEXT_ECHO = """
export const handler = async (event, context) => {
  console.log('line one\\nline two', { n: 1 });
  console.warn('careful');
  return {
    event, awsRequestId: context.awsRequestId, functionName: context.functionName,
    functionVersion: context.functionVersion, memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn, logGroupName: context.logGroupName,
    logStreamName: context.logStreamName, remaining: context.getRemainingTimeInMillis(),
    clientContext: context.clientContext ?? null, identity: context.identity ?? null,
    waits: context.callbackWaitsForEmptyEventLoop, trace: process.env._X_AMZN_TRACE_ID ?? null,
    greeting: process.env.GREETING, cwd: process.cwd(), execEnv: process.env.AWS_EXECUTION_ENV,
    hasDone: typeof context.done === 'function' && typeof context.succeed === 'function',
  };
};
"""


def test_async_handler_gets_event_and_context_and_logs_as_lambda(box) -> None:
    run(box, {"index.mjs": CONTEXT_ECHO}, env={"GREETING": "hi"})
    out = box.api.invoke(
        {"a": ["ü", 1]},
        request_id="req-1",
        headers={
            "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}}),
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "cid"}),
        },
    )
    assert out.kind == "response" and out.request_id == "req-1"
    body = out.json()
    assert body["event"] == {"a": ["ü", 1]} and body["awsRequestId"] == "req-1"
    assert (body["functionName"], body["functionVersion"], body["memoryLimitInMB"]) == ("probe", "7", "128")
    assert body["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe"
    assert body["logGroupName"] == "/aws/lambda/probe" and body["logStreamName"] == "2024/01/01/[7]abcdef"
    assert 0 < body["remaining"] <= 30_000
    assert body["clientContext"]["custom"] == {"k": "v"} and body["identity"] == {"cognitoIdentityId": "cid"}
    assert body["waits"] is True and body["hasDone"] is True
    assert body["trace"].startswith("Root=1-") and body["greeting"] == "hi"
    assert body["cwd"] == "/var/task" and body["execEnv"] == "AWS_Lambda_nodejs20.x"
    lines = log_lines(box, "careful")
    info = next(line for line in lines if "line one" in line).split("\t")
    assert info[0].endswith("Z") and info[1:3] == ["req-1", "INFO"]
    assert info[3] == "line one\rline two { n: 1 }"  # one log event per call, as on Lambda
    assert next(line for line in lines if "careful" in line).split("\t")[1:] == ["req-1", "WARN", "careful"]

    second = box.api.invoke("plain string")  # same process, next event
    assert second.kind == "response" and second.json()["event"] == "plain string"
    assert second.json()["clientContext"] is None and second.json()["trace"].startswith("Root=1-")


def test_callback_handler_waits_for_the_empty_event_loop(box) -> None:
    run(
        box,
        {
            "index.js": """
exports.handler = (event, context, callback) => {
  if (event.dontWait) context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log('timer fired', event.n, Date.now()), 300);
  callback(null, { answered: Date.now() });
};
"""
        },
    )
    waited = box.api.invoke({"n": 1})
    assert waited.kind == "response"
    # Called back first, but the result was posted only once the timer had run.
    fired = [line for line in box.logs().split("\n") if "timer fired 1 " in line]
    assert fired and waited.json()["answered"] < int(fired[0].rsplit(" ", 1)[1])

    immediate = box.api.invoke({"n": 2, "dontWait": True})
    assert immediate.kind == "response" and "timer fired 2 " not in box.logs()  # posted before the timer
    assert "timer fired 2 " in "\n".join(log_lines(box, "timer fired 2 "))  # which still runs afterwards


def test_sync_handler_without_callback_answers_null(box) -> None:
    # Lambda's Node.js runtime ignores a plain function's return value: callback or async are needed.
    run(box, {"index.js": "exports.handler = (event) => ({ ignored: true });\n"})
    out = box.api.invoke({})
    assert out.kind == "response" and out.body == b"null"


def test_context_succeed_fail_and_only_the_first_answer_counts(box) -> None:
    run(
        box,
        {
            "index.cjs": """
module.exports.handler = (event, context, callback) => {
  if (event.fail) { context.fail(new TypeError('nope')); return; }
  context.succeed({ first: true });
  callback(null, { second: true });
};
"""
        },
    )
    assert box.api.invoke({}).json() == {"first": True}
    failed = box.api.invoke({"fail": True})
    assert failed.kind == "error" and failed.json()["errorType"] == "TypeError"


def test_errors_have_lambdas_node_shape_and_log_line(box) -> None:
    run(
        box,
        {
            "index.mjs": """
export const handler = async (event) => {
  if (event.kind === 'string') throw 'just a string';
  const e = new RangeError('out of range');
  e.code = 'E_RANGE';
  throw e;
};
"""
        },
    )
    out = box.api.invoke({}, request_id="err-1")
    body = out.json()
    assert out.kind == "error" and set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == "RangeError" and body["errorMessage"] == "out of range"
    assert body["trace"][0] == "RangeError: out of range" and "file:///var/task/index.mjs" in body["trace"][1]
    line = next(line for line in log_lines(box, "Invoke Error") if "Invoke Error" in line)
    stamp, request_id, level, message = line.split("\t", 3)
    assert (request_id, level) == ("err-1", "ERROR") and message.startswith("Invoke Error \t{")
    logged = json.loads(message.split("\t", 1)[1])
    assert (
        logged["errorType"] == "RangeError" and logged["code"] == "E_RANGE" and logged["stack"][0] == "RangeError: out of range"
    )

    thrown = box.api.invoke({"kind": "string"}).json()
    assert thrown == {"errorType": "string", "errorMessage": "just a string", "trace": []}


def test_commonjs_esm_and_nested_handlers_load_as_on_lambda(box) -> None:
    # .js under a package.json with "type": "module" is an ES module; a nested path and property resolve.
    run(
        box,
        {
            "package.json": '{"type": "module"}',
            "src/app.js": "export const api = { v1: { handler: async () => ({ kind: typeof require }) } };\n",
        },
        handler="src/app.api.v1.handler",
    )
    assert box.api.invoke({}).json() == {"kind": "undefined"}


def test_commonjs_js_module(box) -> None:
    run(
        box,
        {"handler.js": "module.exports.main = async () => ({ kind: typeof require, dir: __dirname });\n"},
        handler="handler.main",
    )
    assert box.api.invoke({}).json() == {"kind": "function", "dir": "/var/task"}


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        ({}, "missing.handler", "Runtime.ImportModuleError", f"Error: Cannot find module 'missing'\n{REQUIRE_STACK}"),
        (
            {"index.mjs": "export const other = 1;\n"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined or not exported",
        ),
        (
            {"index.mjs": "export const handler = 42;\n"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is not a function",
        ),
        ({"index.js": "exports.handler = async () => 1;\n"}, "index", "Runtime.MalformedHandlerName", "Bad handler"),
        (
            {"index.js": "exports.handler = async () => 1;\n"},
            "../index.handler",
            "Runtime.MalformedHandlerName",
            "'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names.",
        ),
        (
            {"index.js": "exports.handler = async () => {;\n"},
            "index.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError: Unexpected end of input",
        ),
    ],
    ids=["import", "not-exported", "not-a-function", "malformed", "relative", "syntax"],
)
def test_init_errors_are_worded_as_lambda_words_them(box, files, handler, error_type, message) -> None:
    container = run(box, files, handler=handler)
    out = box.api.wait_outcome(timeout=15)
    assert out.kind == "init-error"
    body = out.json()
    assert body["errorType"] == error_type and body["errorMessage"] == message
    assert out.headers["lambda-runtime-function-error-type"] == error_type
    assert body["trace"][0].startswith(f"{error_type}: ")
    line = next(line for line in log_lines(box, "Uncaught Exception") if "Uncaught Exception" in line)
    assert line.split("\t")[1:3] == ["undefined", "ERROR"] and "Uncaught Exception \t{" in line
    assert box.wait_exit(container).get("ExitCode") == 129


def test_missing_package_in_an_es_module_is_nodes_own_error(box) -> None:
    run(box, {"index.mjs": "import 'not-installed';\nexport const handler = async () => 1;\n"})
    body = box.api.wait_outcome(timeout=15).json()
    assert body["errorType"] == "Error"
    assert body["errorMessage"].startswith("Cannot find package 'not-installed' imported from /var/task/index.mjs")


def test_uncaught_exception_during_a_call_fails_it_and_ends_the_process(box) -> None:
    container = run(
        box,
        {
            "index.mjs": """
export const handler = async () => {
  setTimeout(() => { throw new Error('from a timer'); }, 10);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return 'late';
};
"""
        },
    )
    out = box.api.invoke({})
    assert out.kind == "error" and out.json()["errorMessage"] == "from a timer"
    assert box.wait_exit(container).get("ExitCode") == 129


def test_unhandled_rejection_and_a_promise_that_never_settles(box) -> None:
    container = run(
        box,
        {
            "index.mjs": """
export const handler = async (event) => {
  if (event.hang) return new Promise(() => {});
  Promise.reject(new Error('rejected'));
  await new Promise((resolve) => setTimeout(resolve, 1000));
};
"""
        },
    )
    hang = box.api.invoke({"hang": True}).json()
    assert hang["errorType"] == "Runtime.NodeJsExit" and "Promise that was never settled" in hang["errorMessage"]
    rejected = box.api.invoke({}).json()
    assert rejected["errorType"] == "Runtime.UnhandledPromiseRejection" and rejected["errorMessage"] == "Error: rejected"
    assert box.wait_exit(container).get("ExitCode") == 128


def test_log_level_filters_console(box) -> None:
    run(
        box,
        {
            "index.mjs": """
export const handler = async () => { console.debug('dbg'); console.info('inf'); console.error('bad'); return 1; };
"""
        },
        env={"AWS_LAMBDA_LOG_LEVEL": "WARN"},
    )
    assert box.api.invoke({}).kind == "response"
    logs = "\n".join(log_lines(box, "bad"))
    assert "\tERROR\tbad" in logs and "dbg" not in logs and "inf" not in logs


HEAP = "export const handler = async () => (await import('node:v8')).default.getHeapStatistics().heap_size_limit / 1048576;\n"


def test_heap_is_sized_to_the_functions_memory(box) -> None:
    run(box, {"index.mjs": HEAP}, memory_mb=512)
    limit = box.api.invoke({}).json()
    # Lambda's bootstrap: old space = memory - memory/32 (496 MB), plus young generation.
    assert 496 <= limit < 540


def test_a_resized_pre_started_container_restarts_node_with_the_new_heap(box, executor) -> None:
    # As the platform does with a pre-started container: started at 128 MB, resized, then given a 1024 MB function.
    box.write("index.mjs", HEAP)
    container = box.start(memory_mb=128)
    deadline = time.monotonic() + 10
    while box.api.environment_requested_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert box.api.environment_requested_at is not None, "node never asked for its function"
    executor.update_resources(container, 1024, 1024 * 1024 // 1769, None)
    box.api.set_environment(
        "index.handler", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "_HANDLER": "index.handler", "LAMBDA_TASK_ROOT": "/var/task"}
    )
    limit = box.api.invoke({}).json()
    assert 992 <= limit < 1100
