"""A function's dependencies and builds, through a real `faas up` and `faas deploy`: a
requirements.txt (pure Python and a compiled extension, for the runtime's CPython), a
package.json with its lock, a TypeScript function bundled by esbuild, a SAM makefile build,
a function.yaml build: command, a code-only save that installs nothing, and a failing
install that leaves the live version serving.

pip and npm reach their package registries from the host; the cache is this module's own.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Gateway, start_gateway, stop_gateway

SAVE_TIMEOUT_S = 30.0
NODE_LOCK = {
    "name": "dep-node",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "dep-node", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}},
        "node_modules/is-number": {
            "version": "7.0.0",
            "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
            "license": "MIT",
            "engines": {"node": ">=0.12.0"},
        },
    },
}


def write(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    return folder


def python_function(root: Path, name: str, runtime: str, requirements: str, code: str) -> Path:
    return write(
        root / name,
        {
            "function.yaml": f"name: {name}\nruntime: {runtime}\nhandler: app.handler\n",
            "requirements.txt": requirements,
            "app.py": code,
        },
    )


WATCHED_CODE = """
import six

MARK = {mark}

def handler(event, context):
    return {{"mark": MARK, "six": six.__version__}}
"""


@pytest.fixture(scope="module")
def dev(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[tuple[Gateway, Path]]:
    """`faas up` watching one Python function with a requirements.txt; its own cache dir."""
    root = tmp_path_factory.mktemp("deps")
    src = root / "src"
    python_function(src, "dep-watched", "python3.11", "six==1.17.0\n", WATCHED_CODE.format(mark=0))
    gw = start_gateway(root / "state", {"XDG_CACHE_HOME": str(root / "cache")}, args=(str(src / "dep-watched"),))
    try:
        deadline = time.monotonic() + 300
        while "watching" not in gw.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield gw, src
    finally:
        stop_gateway(gw)
        for c in gw.containers(docker_client):
            c.remove(force=True)


def call(gw: Gateway, name: str, payload: object = None) -> object:
    r = gw.invoke(name, json.dumps(payload or {}).encode(), timeout=60)
    assert r.status_code == 200 and "X-Amz-Function-Error" not in r.headers, r.text
    return r.json()


def test_requirements_install_a_pure_package_and_a_compiled_extension_for_the_runtime(dev, tmp_path: Path) -> None:
    gw, _ = dev
    code = """
        import os, sys, docopt, markupsafe, six
        from markupsafe import _speedups

        def handler(event, context):
            return {"escaped": str(markupsafe.escape("<a>")), "native": os.path.basename(_speedups.__file__),
                    "six": six.__version__, "docopt": docopt.__version__, "python": "%d.%d" % sys.version_info[:2]}
    """
    folder = python_function(tmp_path, "dep-py313", "python3.13", "markupsafe==3.0.2\nsix==1.17.0\ndocopt==0.6.2\n", code)
    out = gw.cli("deploy", str(folder), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    # The compiled extension is the runtime's (cp313), not the host's interpreter's; docopt is
    # published only as an sdist, built into a pure wheel on the host.
    assert call(gw, "dep-py313") == {
        "escaped": "&lt;a&gt;",
        "native": "_speedups.cpython-313-x86_64-linux-gnu.so",
        "six": "1.17.0",
        "docopt": "0.6.2",
        "python": "3.13",
    }


def test_a_node_function_gets_its_locked_dependencies(dev, tmp_path: Path) -> None:
    gw, _ = dev
    folder = write(
        tmp_path / "dep-node",
        {
            "function.yaml": "name: dep-node\nruntime: nodejs20.x\nhandler: index.handler\n",
            "package.json": json.dumps({"name": "dep-node", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}),
            "package-lock.json": json.dumps(NODE_LOCK),
            "index.js": "const isNumber = require('is-number');\nexports.handler = async (e) => ({ five: isNumber(5), word: isNumber('x') });\n",
        },
    )
    out = gw.cli("deploy", str(folder), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "npm" not in out.stderr or "error" not in out.stderr.lower()
    assert call(gw, "dep-node") == {"five": True, "word": False}


def test_sam_esbuild_and_makefile_builds(dev, tmp_path: Path) -> None:
    gw, _ = dev
    write(
        tmp_path,
        {
            "template.yaml": """
                AWSTemplateFormatVersion: '2010-09-09'
                Transform: AWS::Serverless-2016-10-31
                Resources:
                  TsFunction:
                    Type: AWS::Serverless::Function
                    Properties:
                      FunctionName: dep-esbuild
                      CodeUri: ts/
                      Handler: app.handler
                      Runtime: nodejs20.x
                    Metadata:
                      BuildMethod: esbuild
                      BuildProperties:
                        Minify: true
                        Target: es2020
                        EntryPoints:
                          - app.ts
                  MakeFunction:
                    Type: AWS::Serverless::Function
                    Properties:
                      FunctionName: dep-make
                      CodeUri: made/
                      Handler: app.handler
                      Runtime: python3.11
                    Metadata:
                      BuildMethod: makefile
            """,
            "ts/package.json": json.dumps({"name": "ts", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}),
            "ts/package-lock.json": json.dumps({**NODE_LOCK, "name": "ts"}),
            "ts/app.ts": """
                import isNumber from "is-number";
                interface Answer { typed: boolean; n: boolean }
                export const handler = async (): Promise<Answer> => ({ typed: true, n: isNumber(3) });
            """,
            "made/Makefile": "build-MakeFunction:\n\tcp src.py $(ARTIFACTS_DIR)/app.py\n\techo 'BY = \"make\"' > $(ARTIFACTS_DIR)/built.py\n",
            "made/src.py": "from built import BY\n\ndef handler(event, context):\n    return {'by': BY}\n",
        },
    )
    out = gw.cli("deploy", str(tmp_path / "template.yaml"), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert call(gw, "dep-esbuild") == {"typed": True, "n": True}
    assert call(gw, "dep-make") == {"by": "make"}


def test_a_build_command_in_function_yaml_makes_the_package(dev, tmp_path: Path) -> None:
    gw, _ = dev
    folder = write(
        tmp_path / "dep-cmd",
        {
            "function.yaml": "name: dep-cmd\nruntime: python3.11\nhandler: app.handler\nbuild: python3 make_app.py $ARTIFACTS_DIR\n",
            "make_app.py": "import sys, pathlib\npathlib.Path(sys.argv[1], 'app.py').write_text('def handler(e, c):\\n    return {\"generated\": True}\\n')\n",
        },
    )
    built = gw.cli("build", str(folder), "-o", str(tmp_path / "out"))
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "out" / "dep-cmd" / "app.py").is_file() and "built dep-cmd" in built.stdout
    out = gw.cli("deploy", str(folder), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert call(gw, "dep-cmd") == {"generated": True}


def test_a_code_only_save_does_not_reinstall(dev) -> None:
    gw, src = dev
    assert call(gw, "dep-watched") == {"mark": 0, "six": "1.17.0"}
    assert gw.logs().count("dep-watched: installing dependencies") == 1, gw.logs()[-3000:]
    offset = len(gw.logs())
    (src / "dep-watched" / "app.py").write_text(WATCHED_CODE.format(mark=1))
    deadline = time.monotonic() + SAVE_TIMEOUT_S
    while call(gw, "dep-watched") != {"mark": 1, "six": "1.17.0"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert call(gw, "dep-watched") == {"mark": 1, "six": "1.17.0"}
    after = gw.logs()[offset:]
    assert "installing dependencies" not in after and "using the cached install" in after, after


def test_a_failing_install_is_refused_with_pips_message_and_the_live_version_serves(dev, tmp_path: Path) -> None:
    gw, _ = dev
    code = "def handler(event, context):\n    return {'v': 1}\n"
    folder = python_function(tmp_path, "dep-fails", "python3.11", "six==1.17.0\n", code)
    assert gw.cli("deploy", str(folder), timeout=600).returncode == 0
    (folder / "requirements.txt").write_text("faas-no-such-package-anywhere==9.9.9\n")
    (folder / "app.py").write_text("def handler(event, context):\n    return {'v': 2}\n")
    out = gw.cli("deploy", str(folder), timeout=600)
    assert out.returncode == 1
    assert "pip could not install requirements.txt" in out.stderr and "faas-no-such-package-anywhere" in out.stderr, out.stderr
    assert call(gw, "dep-fails") == {"v": 1}
