"""`faas init NAME --runtime RUNTIME`: a starter function that deploys and answers as it is.

One template per runtime, each the smallest function that shows the parts a user changes
first: the handler, an environment variable from function.yaml, a log line, and an answer
to both a plain event ({"name": ...}) and a function URL call (?name=...). The provided
template is a shell bootstrap in the shape of AWS's custom runtime tutorial, so it runs on
Lambda's provided.al2023 unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faas.errors import ValidationError
from faas.models import NAME_RE, PROVIDED_RUNTIMES, RUNTIMES


@dataclass(frozen=True)
class StarterFile:
    """One file of a starter function: its text and whether it must be executable."""

    text: str
    executable: bool = False


_FUNCTION_YAML = """\
name: {name}
runtime: {runtime}
{handler_comment}handler: {handler}
memory: 128
timeout: 3
environment:
  GREETING: Hello
"""

_PYTHON_APP = '''\
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    """Greets whoever ?name= or {"name": ...} names; GREETING comes from function.yaml."""
    params = event.get("queryStringParameters") or {}
    name = params.get("name") or event.get("name") or "world"
    logger.info("greeting %s", name)
    return {"message": f"{os.environ['GREETING']}, {name}!", "requestId": context.aws_request_id}
'''

_NODE_APP = """\
// Greets whoever ?name= or {"name": ...} names; GREETING comes from function.yaml.
export const handler = async (event, context) => {
  const name = event.queryStringParameters?.name ?? event.name ?? 'world';
  console.log(`greeting ${name}`);
  return { message: `${process.env.GREETING}, ${name}!`, requestId: context.awsRequestId };
};
"""

_RUBY_APP = """\
# Greets whoever ?name= or {"name": ...} names; GREETING comes from function.yaml.
# Lambda's Ruby runtime calls the handler with the keyword arguments event: and context:.
def handler(event:, context:)
  name = (event["queryStringParameters"] || {})["name"] || event["name"] || "world"
  puts "greeting #{name}"
  { message: "#{ENV['GREETING']}, #{name}!", requestId: context.aws_request_id }
end
"""

_PROVIDED_BOOTSTRAP = """\
#!/bin/sh
# A custom runtime in shell (AWS's tutorial, in sh): load the handler named by _HANDLER
# (FILE.FUNCTION: FUNCTION in FILE.sh), then answer events from the Runtime API with curl.
# Replace this file by your Go or Rust binary named `bootstrap` to run compiled code.
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
. "$LAMBDA_TASK_ROOT/${_HANDLER%%.*}.sh"
handler_function=${_HANDLER#*.}
headers=/tmp/headers
while true; do
    event=$(curl -sS -D "$headers" "$api/invocation/next")
    request_id=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *\\([^[:space:]]*\\).*/\\1/p' "$headers")
    if response=$("$handler_function" "$event"); then
        curl -sS -o /dev/null "$api/invocation/$request_id/response" --data-binary "$response"
    else
        curl -sS -o /dev/null "$api/invocation/$request_id/error" \\
            -H 'Lambda-Runtime-Function-Error-Type: Unhandled' \\
            --data-binary '{"errorMessage": "the handler failed", "errorType": "HandlerError"}'
    fi
done
"""

_PROVIDED_HANDLER = """\
# The handler: prints the response (JSON) for the event in $1; what it writes to stderr is logged.
handler() {
    name=$(printf '%s' "$1" | sed -n 's/.*"name" *: *"\\([^"]*\\)".*/\\1/p')
    echo "greeting ${name:-world}" >&2
    printf '{"message": "%s, %s!"}' "$GREETING" "${name:-world}"
}
"""


_JAVA_APP = """\
package example;

import java.util.Map;

/** Greets whoever ?name= or {"name": ...} names; GREETING comes from function.yaml. Lambda calls
 * a public method named by the handler (example.Hello::handleRequest) with the event mapped to its
 * parameter's type; implement com.amazonaws.services.lambda.runtime.RequestHandler to get the Context. */
public class Hello {
    public Map<String, String> handleRequest(Map<String, Object> event) {
        Object params = event.get("queryStringParameters");
        Object name = params instanceof Map<?, ?> query && query.get("name") != null ? query.get("name") : event.get("name");
        String who = name == null ? "world" : name.toString();
        System.out.println("greeting " + who);
        return Map.of("message", System.getenv("GREETING") + ", " + who + "!");
    }
}
"""
# A Java starter is compiled at deploy by its build: command (a JDK 17 or newer on this machine).
_JAVA_BUILD = "build: javac --release 17 -d $ARTIFACTS_DIR src/example/Hello.java\n"


def _handler(runtime: str) -> str:
    if runtime.startswith(("python", "ruby")):
        return "app.handler"
    if runtime.startswith("java"):
        return "example.Hello::handleRequest"
    return "index.handler" if runtime.startswith("nodejs") else "function.handler"


def starter_files(name: str, runtime: str) -> dict[str, StarterFile]:
    """The files of a starter function, by path relative to its folder; pure."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(f"function name must match {NAME_RE.pattern} (letters, digits, '-' and '_'), got {name!r}")
    if runtime not in RUNTIMES:
        raise ValidationError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    provided = runtime in PROVIDED_RUNTIMES
    comment = f"# {runtime}: ./bootstrap is the runtime; this one runs FUNCTION from FILE.sh\n" if provided else ""
    files = {
        "function.yaml": StarterFile(
            _FUNCTION_YAML.format(name=name, runtime=runtime, handler=_handler(runtime), handler_comment=comment)
        )
    }
    if runtime.startswith("python"):
        files["app.py"] = StarterFile(_PYTHON_APP)
    elif runtime.startswith("nodejs"):
        files["index.mjs"] = StarterFile(_NODE_APP)
    elif runtime.startswith("java"):
        files["function.yaml"] = StarterFile(files["function.yaml"].text + _JAVA_BUILD)
        files["src/example/Hello.java"] = StarterFile(_JAVA_APP)
    elif runtime.startswith("ruby"):
        files["app.rb"] = StarterFile(_RUBY_APP)
    else:
        files["bootstrap"] = StarterFile(_PROVIDED_BOOTSTRAP, executable=True)
        files["function.sh"] = StarterFile(_PROVIDED_HANDLER)
    return files


def write_starter(name: str, runtime: str, parent: Path) -> Path:
    """Write the starter function into parent/name; refuses a folder that exists and is not empty."""
    files = starter_files(name, runtime)
    folder = Path(parent) / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValidationError(f"{folder} already exists and is not empty: choose another name or --dir")
    folder.mkdir(parents=True, exist_ok=True)
    for rel, starter in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter.text)
        mode = 0o755 if starter.executable else 0o644
        os.chmod(path, mode)
    return folder
