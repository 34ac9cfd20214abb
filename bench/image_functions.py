"""Benchmark: a container-image function (its own runtime client, awslambdaric, behind faas's
forwarder) against the same handler as a python3.11 zip function, in one run.

In-process platform on the real engine (as the integration tests), a temporary state dir, no
pre-started containers, network none. The image is built offline FROM faas's awslambdaric
image with awslambdaric's wheels (tests/integration/test_awslambdaric.py caches them under
/var/tmp). Both functions are measured in turn, round after round. Prints one JSON document:
deploy (store the version; for the image function also read its image's entrypoint), the
first call (cold: the container is created and its runtime initialised), then warm calls;
medians in ms and the image function's ratios to the zip one's.

    .venv/bin/python bench/image_functions.py [--rounds 5] [--calls 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import emit, summary  # noqa: E402

from faas.config import Config  # noqa: E402
from faas.containers.docker_executor import DockerExecutor  # noqa: E402
from faas.containers.engine import ensure_engine  # noqa: E402
from faas.containers.images import ensure_runtime_image, runtime_image_tag  # noqa: E402
from faas.deploy.packages import zip_folder  # noqa: E402
from faas.platform import Platform  # noqa: E402

WHEELS = Path("/var/tmp/faas-test-awslambdaric-4.2.2")
APP = "def handler(event, context):\n    return {'ok': True}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (WHEELS / ".complete").exists():
        sys.exit(f"run tests/integration/test_awslambdaric.py once first: it caches awslambdaric's wheels in {WHEELS}")
    engine = ensure_engine(Path("/var/tmp/faas-test-engine"), say=lambda line: None)
    executor = DockerExecutor(base_url=engine.base_url)
    work = Path(tempfile.mkdtemp(prefix="faas-bench-img-"))
    tag = f"faas-bench/image-fn:{uuid.uuid4().hex[:8]}"
    try:
        base = ensure_runtime_image("awslambdaric", executor, say=lambda line: None)
        ensure_runtime_image("python3.11", executor, say=lambda line: None)
        context = work / "ctx"
        shutil.copytree(WHEELS, context / "function", ignore=shutil.ignore_patterns(".complete", "bin"))
        (context / "function" / "app.py").write_text(APP)
        (context / "Dockerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nCOPY function /function\nWORKDIR /function\n"
            'ENTRYPOINT ["/usr/bin/python3", "-m", "awslambdaric"]\nCMD ["app.handler"]\n'
        )
        executor.build_image(context, tag, {"BASE": base}, lambda line: None)
        config = Config(state_dir=work / "state", prestart_min=0, prestart_max=0)
        platform = Platform(config, DockerExecutor(base_url=engine.base_url), runtime_image_tag)
        try:
            result = run(platform, work, tag, args.rounds, args.calls)
        finally:
            platform.shutdown(wait_s=5)
    finally:
        executor.remove_image(tag)
        executor.close()
        shutil.rmtree(work, ignore_errors=True)
    emit(result, args.out)


def run(platform: Platform, work: Path, tag: str, rounds: int, calls: int) -> dict[str, object]:
    kinds = {"image": f"package_type: Image\nimage_uri: {tag}\n", "zip_python3.11": "runtime: python3.11\nhandler: app.handler\n"}
    deploy: dict[str, list[float]] = {k: [] for k in kinds}
    first: dict[str, list[float]] = {k: [] for k in kinds}
    warm: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind, yaml_text in kinds.items():
            folder = work / f"{kind}-{r}"
            folder.mkdir()
            (folder / "app.py").write_text(APP)
            name = f"b{r}-{kind.replace('.', '').replace('_', '')}"
            (folder / "function.yaml").write_text(f"name: {name}\nnetwork: none\n{yaml_text}")
            data = zip_folder(folder)
            t0 = time.perf_counter()
            platform.deploy_zip(data)
            deploy[kind].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            assert platform.invoke(name, b"{}").function_error is None
            first[kind].append((time.perf_counter() - t0) * 1000)
            for _ in range(calls // rounds):
                t0 = time.perf_counter()
                platform.invoke(name, b"{}")
                warm[kind].append((time.perf_counter() - t0) * 1000)
            platform.remove(name)
    out: dict[str, object] = {
        kind: {"deploy": summary(deploy[kind]), "first_call_cold": summary(first[kind]), "warm": summary(warm[kind])}
        for kind in kinds
    }
    ratios = {}
    for metric, table in (("deploy", deploy), ("first_call_cold", first), ("warm_p50", warm)):
        ratios[metric] = round(statistics.median(table["image"]) / statistics.median(table["zip_python3.11"]), 2)
    out["ratio_image_to_zip"] = ratios
    return out


if __name__ == "__main__":
    main()
