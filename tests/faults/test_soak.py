"""The short version of the soak (bench/soak.py --minutes 1): mixed load at half the measured
capacity with redeploys and an abusive function in the mix; nothing lost, nothing duplicated,
the gateway's memory flat. The 10-minute run is `python bench/soak.py` (docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_minute_soak(runtime_images, tmp_path: Path, figures) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--minutes",
            "1",
            "--capacity-seconds",
            "5",
            "--redeploy-every",
            "15",
            "--abuse-every",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    rss = result["gateway_rss_mb"]
    figures.add(
        "soak (1 minute)",
        capacity_calls_per_s=result["capacity_calls_per_s"],
        offered_calls_per_s=result["offered_calls_per_s"],
        calls=result["calls"],
        lost=result["lost"],
        duplicated=result["duplicated"],
        redeploys=result["redeploys"],
        abusive_calls=result["abusive_calls"],
        latency=result["latency"],
        rss_mb={"start": rss["start"], "end": rss["end"], "max": rss["max"]},
    )
    assert result["lost"] == 0 and result["duplicated"] == 0, json.dumps(result["detail"])
    assert result["detail"]["unexpected_function_errors"] == 0, result["detail"]["examples"]
    assert result["redeploys"]["count"] >= 3 and result["redeploys"]["failed"] == 0, result["redeploys"]
    assert result["calls"]["abusive"] >= 10 and result["calls"]["event"] > 0
    assert rss["end"] - rss["start"] < 50, rss  # generous: a leak per call would show as hundreds of MB
    assert result["ok"] and run.returncode == 0, run.stderr[-3000:]
