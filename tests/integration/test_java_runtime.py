"""The java21 runtime's handler kinds and packaging, through the real gateway: a
RequestStreamHandler, a static Class::method with POJO (String) input, a class from a jar in
lib/, and a heap sized to the function's memory (a pre-started container resized for it)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from faas.containers.images import runtime_image_tag

pytestmark = pytest.mark.integration

GREETER = """
package lib;

public class Greeter {
    public static String greet(String who) {
        return "hello " + who;
    }
}
"""

UPPER = """
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.*;

public class Upper implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        out.write(new String(in.readAllBytes(), "UTF-8").toUpperCase().getBytes("UTF-8"));
    }
}
"""

METHODS = """
import java.util.Map;

public class Methods {
    public static String greet(String name) {
        return lib.Greeter.greet(name);
    }

    public Map<String, Long> heap() {
        return Map.of("maxMemory", Runtime.getRuntime().maxMemory());
    }
}
"""


@pytest.fixture(scope="module")
def package(gateway, docker_client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with classes at its root and lib/greeter.jar, compiled with the image's JDK."""
    built = gateway.cli("runtimes", "build", "java21", timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    folder = tmp_path_factory.mktemp("javapkg")
    (folder / "src").mkdir()
    for name, text in (("Greeter.java", GREETER), ("Upper.java", UPPER), ("Methods.java", METHODS)):
        (folder / "src" / name).write_text(text)
    script = (
        "mkdir -p /p/gcls /p/lib && javac -nowarn -d /p/gcls /p/src/Greeter.java && jar --create --file /p/lib/greeter.jar -C /p/gcls . "
        "&& rm -rf /p/gcls && javac -nowarn -cp /var/runtime/lib/aws-lambda-java-core.jar:/p/lib/greeter.jar -d /p /p/src/Upper.java /p/src/Methods.java"
    )
    docker_client.containers.run(
        runtime_image_tag("java21"),
        entrypoint=["/bin/sh", "-c", script],
        volumes={str(folder): {"bind": "/p", "mode": "rw"}},
        user=f"{os.getuid()}:{os.getgid()}",
        network_disabled=True,
        remove=True,
    )
    assert (folder / "lib" / "greeter.jar").is_file() and (folder / "Methods.class").is_file()
    return folder


def deploy(gateway, package: Path, handler: str, memory: int = 128) -> str:
    name = f"java-{handler.replace(':', '').replace('.', '').lower()}-{uuid.uuid4().hex[:6]}"
    (package / "function.yaml").write_text(f"name: {name}\nruntime: java21\nhandler: {handler}\nmemory: {memory}\ntimeout: 10\n")
    gateway.deploy(package)
    return name


def test_stream_handler_gets_and_gives_bytes(gateway, package: Path) -> None:
    name = deploy(gateway, package, "Upper")
    response = gateway.invoke(name, '{"word": "grüße"}'.encode())
    assert response.status_code == 200 and "X-Amz-Function-Error" not in response.headers, response.text
    assert response.content.decode() == '{"WORD": "GRÜSSE"}'


def test_static_method_with_string_input_and_a_class_from_lib_jar(gateway, package: Path) -> None:
    name = deploy(gateway, package, "Methods::greet")
    response = gateway.invoke(name, json.dumps("you").encode())
    assert response.status_code == 200 and "X-Amz-Function-Error" not in response.headers, response.text
    assert response.json() == "hello you"
    # An event that is no JSON string for a String parameter: Lambda's unmarshal error.
    bad = gateway.invoke(name, b'{"not": "a string"}')
    assert bad.headers.get("X-Amz-Function-Error") == "Unhandled" and bad.json()["errorType"] == "Runtime.UnmarshalError"


def test_missing_class_is_an_init_error(gateway, package: Path) -> None:
    name = deploy(gateway, package, "example.Missing::handleRequest")
    body = gateway.invoke(name, b"{}").json()
    assert body["errorType"] == "java.lang.ClassNotFoundException" and body["errorMessage"] == "Class not found: example.Missing"


def test_heap_is_sized_to_the_functions_memory(gateway, package: Path) -> None:
    name = deploy(gateway, package, "Methods::heap", memory=512)
    response = gateway.invoke(name, b"{}")
    assert response.status_code == 200 and "X-Amz-Function-Error" not in response.headers, response.text
    max_mb = response.json()["maxMemory"] / 1048576
    assert 0.75 * 512 < max_mb <= 0.85 * 512, max_mb  # 85 % of 512 MB (less the serial collector's survivor space)
