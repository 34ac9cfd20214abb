"""Benchmark: messages per second through an SQS event source mapping to a no-op function at
batch size 1 and 10, and the latency from enqueue to handler.

Starts moto's server (an SQS-compatible endpoint) and its own gateway on free loopback ports,
deploys a no-op Python function and prints one JSON document. Baseline in the same run: a bare
receive-and-delete loop on the same endpoint with the same batch size and the same number of
consumers (what the endpoint itself allows, with no function in the way); the ratio is the
mapping's rate over it. Usage:

    .venv/bin/python bench/sqs.py [--messages 300] [--latency-samples 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FAAS, emit, free_port, running_gateway, summary  # noqa: E402

CONSUMERS = 2  # the poller threads of a mapping without ScalingConfig (faas/events/sqs_poller.py)
HANDLER = """import json, time
def handler(event, context):
    now = time.time()
    for r in event["Records"]:
        if r["body"].startswith("t="):
            print("LAT", (now - float(r["body"][2:])) * 1000)
"""


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/moto-api/", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def queued(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def fill(sqs: Any, url: str, n: int) -> None:
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(min(10, n - start))])


def wait_empty(sqs: Any, url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while queued(sqs, url) and time.monotonic() < deadline:
        time.sleep(0.05)


def baseline_rate(sqs: Any, url: str, n: int, batch: int) -> float:
    """Messages per second a bare receive/delete loop gets from the endpoint."""
    fill(sqs, url, n)

    def consume() -> None:
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            )

    t = time.perf_counter()
    threads = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--latency-samples", type=int, default=40)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    moto, endpoint = start_moto()
    os.environ.update(AWS_ENDPOINT_URL_SQS=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    result: dict[str, Any] = {"messages": args.messages, "consumers": CONSUMERS, "endpoint": "moto_server"}
    try:
        with running_gateway("faas-bench-sqs-") as gw:
            folder = gw.tmp / "noop"
            folder.mkdir()
            (folder / "function.yaml").write_text("name: noop\nruntime: python3.11\nhandler: app.handler\n")
            (folder / "app.py").write_text(HANDLER)
            gw.deploy(folder)
            lam = boto3.client(
                "lambda",
                endpoint_url=f"http://127.0.0.1:{gw.port}",
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            for batch in (1, 10):
                base_url = sqs.create_queue(QueueName=f"base-{batch}")["QueueUrl"]
                base = baseline_rate(sqs, base_url, args.messages, batch)
                url = sqs.create_queue(QueueName=f"b{batch}")["QueueUrl"]
                arn = f"arn:aws:sqs:us-east-1:123456789012:b{batch}"
                made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="noop", BatchSize=batch, Enabled=False)
                fill(sqs, url, args.messages)
                t = time.perf_counter()
                lam.update_event_source_mapping(UUID=made["UUID"], Enabled=True)
                wait_empty(sqs, url)
                rate = args.messages / (time.perf_counter() - t)
                lam.delete_event_source_mapping(UUID=made["UUID"])
                result[f"batch_{batch}"] = {
                    "mapping_msgs_per_s": round(rate, 1),
                    "baseline_receive_delete_msgs_per_s": round(base, 1),
                    "ratio_to_baseline": round(rate / base, 3),
                }
            url = sqs.create_queue(QueueName="latency")["QueueUrl"]
            lam.create_event_source_mapping(
                EventSourceArn="arn:aws:sqs:us-east-1:123456789012:latency", FunctionName="noop", BatchSize=1
            )
            for _ in range(args.latency_samples):
                sqs.send_message(QueueUrl=url, MessageBody=f"t={time.time()}")
                time.sleep(0.25)
            wait_empty(sqs, url)
            time.sleep(1.0)
            logs = subprocess.run([FAAS, "logs", "noop", "--tail", "5000"], env=gw.env, capture_output=True, text=True).stdout
            lat = [float(line.split("LAT ", 1)[1]) for line in logs.splitlines() if "LAT " in line]
            result["enqueue_to_handler"] = summary(lat, (50, 90, 99), digits=1)
    finally:
        moto.terminate()
        moto.wait(10)
    emit(result, args.out)
    json.dumps(result)


if __name__ == "__main__":
    main()
