"""The gateway's schedule registration: bad input gets Lambda's error shape and changes nothing;
the token guards it; fire-now goes through the async queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faas.config import Config
from gateway.app import create_app
from tests.fakes import FakePlatform

TICK = {"name": "tick", "function": "hello", "expression": "rate(1 minute)", "input": '{"k": 1}'}


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    platform.add("hello")
    return platform


@pytest.fixture
def client(fake: FakePlatform) -> Any:
    return create_app(fake).test_client()


def test_put_list_fire_and_remove(client: Any, fake: FakePlatform) -> None:
    assert client.put("/system/schedules/stk?dry_run=true", json={"schedules": [TICK]}).status_code == 200
    assert client.get("/system/schedules").get_json() == {"schedules": []}
    assert client.put("/system/schedules/stk", json={"schedules": [TICK]}).status_code == 200
    (row,) = client.get("/system/schedules").get_json()["schedules"]
    assert row["name"] == "tick" and row["stack"] == "stk" and row["next"].endswith("Z")
    fired = client.post("/system/schedules/tick/fire")
    assert fired.status_code == 202
    assert fake.queued[-1]["name"] == "hello" and json.loads(fake.queued[-1]["payload"]) == {"k": 1}
    assert client.put("/system/schedules/stk", json={"schedules": []}).status_code == 200
    assert client.get("/system/schedules").get_json() == {"schedules": []}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"schedules": 3}',
        json.dumps({"schedules": [{**TICK, "expression": "cron(0 10 * * * *)"}]}).encode(),
        json.dumps({"schedules": [{**TICK, "enabled": "yes"}]}).encode(),
        json.dumps({"schedules": [{**TICK, "name": "x" * 500}]}).encode(),
    ],
)
def test_bad_input_is_a_4xx_in_lambdas_shape_and_changes_nothing(client: Any, body: bytes) -> None:
    r = client.put("/system/schedules/stk", data=body)
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] and "message" in r.get_json()
    assert len(r.get_json()["message"]) < 400
    assert client.get("/system/schedules").get_json() == {"schedules": []}


def test_firing_an_unknown_schedule_is_a_400(client: Any) -> None:
    r = client.post("/system/schedules/nope/fire")
    assert r.status_code == 400 and "faas schedules" in r.get_json()["message"]


def test_the_api_token_guards_schedules(fake: FakePlatform, tmp_path: Path) -> None:
    config = Config.load({"state_dir": tmp_path, "api_token": "s3cret"}, env={})
    c = create_app(fake, config).test_client()
    assert c.get("/system/schedules").status_code == 401
    assert c.put("/system/schedules/stk", json={"schedules": [TICK]}).status_code == 401
    assert c.post("/system/schedules/tick/fire").status_code == 401
    assert c.get("/system/schedules", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_dashboards_sample_picker_serves_the_catalogue_and_each_sample(client: Any) -> None:
    catalogue = client.get("/ui/api/samples").get_json()["samples"]
    assert {"service": "s3", "kind": "put"} in [{"service": s["service"], "kind": s["kind"]} for s in catalogue]
    sample = client.get("/ui/api/samples?service=s3&kind=put").get_json()
    assert sample["Records"][0]["eventName"] == "ObjectCreated:Put"
    bad = client.get("/ui/api/samples?service=nope")
    assert bad.status_code == 400 and "GET /ui/api/samples" in bad.get_json()["message"]
