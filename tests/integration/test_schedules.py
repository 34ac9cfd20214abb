"""Schedules from a SAM template, fired by a real gateway: FAAS_SCHEDULE_SPEEDUP=60 makes
`rate(1 minute)` fire every second and `rate(10 minutes)` every 10 s (cron() is never sped up)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.conftest import Gateway, gateway_session, start_gateway, stop_gateway

HANDLER = "import json\n\ndef handler(event, context):\n    print('EVENT ' + json.dumps(event))\n    return {}\n"

TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    Handler: app.handler
    CodeUri: fn/
Resources:
  SchedTick:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Often:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
  SchedNever:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Off:
          Type: Schedule
          Properties:
            Name: never-on-its-own
            Schedule: rate(1 minute)
            Enabled: false
            Input: '{"by": "hand"}'
  SchedSlow:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Slow:
          Type: ScheduleV2
          Properties:
            Name: slow
            ScheduleExpression: rate(10 minutes)
            ScheduleExpressionTimezone: Europe/Paris
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sched-app")
    (folder / "fn").mkdir()
    (folder / "fn" / "app.py").write_text(HANDLER)
    (folder / "template.yaml").write_text(TEMPLATE)
    return folder / "template.yaml"


@pytest.fixture(scope="module")
def gw(runtime_images, tmp_path_factory: pytest.TempPathFactory, docker_client, app: Path) -> Iterator[Gateway]:
    with gateway_session(
        tmp_path_factory.mktemp("gw-sched") / "state", docker_client, extra_env={"FAAS_SCHEDULE_SPEEDUP": "60"}
    ) as g:
        out = g.cli("deploy", str(app))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "schedule SchedTickOften -> SchedTick (rate(1 minute))" in out.stdout
        assert "schedule never-on-its-own -> SchedNever (rate(1 minute), disabled)" in out.stdout
        assert "ignored" not in out.stderr, out.stderr
        yield g


def events_seen(g: Gateway, name: str) -> list[dict]:
    out = g.cli("logs", name, "--tail", "500")
    return [json.loads(line.split("EVENT ", 1)[1]) for line in out.stdout.splitlines() if "EVENT " in line]


def wait_for(g: Gateway, name: str, count: int, within_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + within_s
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen = events_seen(g, name)
        if len(seen) >= count:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{name} saw {len(seen)} event(s), wanted {count}")


def schedules(g: Gateway) -> dict[str, dict]:
    out = g.cli("schedules", "--json")
    assert out.returncode == 0, out.stderr
    return {s["name"]: s for s in json.loads(out.stdout)}


def test_the_shortened_schedule_fires_with_eventbridges_scheduled_event(gw: Gateway) -> None:
    seen = wait_for(gw, "SchedTick", 2)
    event = seen[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/SchedTickOften"]
    assert event["detail"] == {} and event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= datetime.now(UTC)
    assert seen[0]["id"] != seen[1]["id"]
    listing = gw.cli("schedules")
    assert "SchedTickOften" in listing.stdout and "rate(1 minute)" in listing.stdout and "enabled" in listing.stdout


def test_a_disabled_schedule_never_fires_but_fires_by_hand(gw: Gateway) -> None:
    wait_for(gw, "SchedTick", 3)  # at least three seconds of firings went by
    assert events_seen(gw, "SchedNever") == []
    assert schedules(gw)["never-on-its-own"]["next"] is None
    fired = gw.cli("schedules", "fire", "never-on-its-own")
    assert fired.returncode == 0 and "fired never-on-its-own" in fired.stdout, fired.stderr
    assert wait_for(gw, "SchedNever", 1, within_s=30) == [{"by": "hand"}]
    unknown = gw.cli("schedules", "fire", "no-such-schedule")
    assert unknown.returncode != 0 and "no schedule is named 'no-such-schedule'" in unknown.stderr


def test_a_restart_skips_the_firings_missed_while_faas_was_stopped(runtime_images, tmp_path: Path, app: Path) -> None:
    state = tmp_path / "state"
    env = {"FAAS_SCHEDULE_SPEEDUP": "60"}
    g = start_gateway(state, env)
    try:
        out = g.cli("deploy", str(app))
        assert out.returncode == 0, out.stdout + out.stderr
        before = wait_for(g, "SchedSlow", 1, within_s=40)  # every 10 s
        assert before[0]["source"] == "aws.scheduler"
        assert before[0]["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/slow"]
    finally:
        assert stop_gateway(g) == 0
    time.sleep(25)  # two firings of `slow` fall while faas is stopped
    g = start_gateway(state, env)
    try:
        nxt = datetime.strptime(schedules(g)["slow"]["next"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert nxt > datetime.now(UTC)  # the next firing is ahead, not in the past
        # Until then nothing fires: the missed firings are not made up.
        wait_s = (nxt - datetime.now(UTC)).total_seconds() - 1.0
        if wait_s > 0:
            time.sleep(wait_s)
        assert len(events_seen(g, "SchedSlow")) == len(before)
        # And the schedule keeps firing after the restart.
        wait_for(g, "SchedSlow", len(before) + 1, within_s=30)
    finally:
        assert stop_gateway(g) == 0


def test_faas_up_runs_a_templates_schedules_and_rm_stops_them(runtime_images, tmp_path: Path, app: Path) -> None:
    g = start_gateway(tmp_path / "state", {"FAAS_SCHEDULE_SPEEDUP": "60"}, args=(str(app), "--no-watch"))
    try:
        deadline = time.monotonic() + 120
        while "SchedTickOften" not in schedules(g) and time.monotonic() < deadline:
            time.sleep(0.5)  # `faas up` deploys the template once the gateway answers
        wait_for(g, "SchedTick", 1)
        stack = schedules(g)["SchedTickOften"]["stack"]
        removed = g.cli("schedules", "rm", stack)
        assert removed.returncode == 0 and f"removed the schedules of {stack}" in removed.stdout, removed.stderr
        assert schedules(g) == {}
        time.sleep(2)  # an event fired just before the removal may still be running
        count = len(events_seen(g, "SchedTick"))
        time.sleep(3)  # three periods of rate(1 minute) sped up
        assert len(events_seen(g, "SchedTick")) == count
    finally:
        assert stop_gateway(g) == 0
