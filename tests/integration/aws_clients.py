"""The real clients the fidelity tests drive: boto3's lambda client and the AWS CLI (awscli v1,
run as a subprocess), both pointed at a faas gateway with dummy credentials."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import boto3
import botocore.config

AWS = str(Path(sys.executable).parent / "aws")


def lambda_client(url: str, read_timeout: int = 60) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 0}, read_timeout=read_timeout),
    )


def aws(url: str, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`aws lambda ARGS --endpoint-url URL` with dummy credentials; JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_PAGER="",
    )
    return subprocess.run(
        [AWS, "lambda", *args, "--endpoint-url", url, "--output", "json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def aws_json(url: str, *args: str, cwd: Path | None = None) -> Any:
    out = aws(url, *args, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def zip_code(code: str, name: str = "app.py", extra: dict[str, str] | None = None) -> bytes:
    """A Lambda-style deployment package: the handler file at the top of the zip, no function.yaml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(name, textwrap.dedent(code))
        for rel, text in (extra or {}).items():
            zf.writestr(rel, text)
    return buffer.getvalue()
