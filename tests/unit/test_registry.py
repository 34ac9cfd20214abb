"""Registry: which version a call runs, Lambda's not-found messages, change notices."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from faas.deploy.registry import Registry
from faas.deploy.store import Store
from faas.errors import FunctionNotFound, ValidationError
from faas.models import FunctionSpec, FunctionVersion

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64
ARN = "arn:aws:lambda:us-east-1:123456789012:function"

Change = tuple[FunctionVersion | None, FunctionVersion | None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "faas.db")
    yield s
    s.close()


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(store)


def publish(registry: Registry, sha: str, name: str = "hello", **kw: object) -> tuple[FunctionVersion, bool]:
    return registry.publish(FunctionSpec(name=name, **kw), sha, Path("/pkgs") / sha, 10, f"/src/{name}")  # type: ignore[arg-type]


def record(registry: Registry) -> list[Change]:
    changes: list[Change] = []
    registry.subscribe(lambda old, new: changes.append((old, new)))
    return changes


def test_unknown_function_message_is_lambdas(registry: Registry) -> None:
    with pytest.raises(FunctionNotFound) as info:
        registry.live("nope")
    assert str(info.value) == f"Function not found: {ARN}:nope"
    assert info.value.status == 404 and info.value.error_type == "ResourceNotFoundException"
    assert info.value.body()["Type"] == "User"


def test_publish_makes_live(registry: Registry) -> None:
    version, created = publish(registry, SHA_A)
    assert created and registry.live("hello") == version and version.version == 1


def test_identical_publish_changes_nothing_and_notifies_nobody(registry: Registry) -> None:
    first, _ = publish(registry, SHA_A)
    changes = record(registry)
    again, created = publish(registry, SHA_A)
    assert (again, created) == (first, False)
    assert changes == []


def test_subscribers_see_old_and_new(registry: Registry) -> None:
    changes = record(registry)
    v1, _ = publish(registry, SHA_A)
    v2, _ = publish(registry, SHA_B)
    registry.remove("hello")
    assert changes == [(None, v1), (v1, v2), (v2, None)]


def test_resolve_qualifiers(registry: Registry) -> None:
    v1, _ = publish(registry, SHA_A)
    v2, _ = publish(registry, SHA_B)
    assert registry.resolve("hello", None) == v2
    assert registry.resolve("hello", "$LATEST") == v2
    assert registry.resolve("hello", "2") == v2
    assert registry.resolve("hello", "1") == v1
    assert registry.resolve("hello", "1") == v1  # served from memory the second time


@pytest.mark.parametrize("qualifier", ["9", "0", "prod", "99999999999999999999999"])
def test_resolve_unknown_qualifier_names_it(registry: Registry, qualifier: str) -> None:
    publish(registry, SHA_A)
    with pytest.raises(FunctionNotFound, match=f"^Function not found: {ARN}:hello:{qualifier}$"):
        registry.resolve("hello", qualifier)


def test_resolve_unknown_function(registry: Registry) -> None:
    with pytest.raises(FunctionNotFound, match=f"^Function not found: {ARN}:ghost$"):
        registry.resolve("ghost", None)
    with pytest.raises(FunctionNotFound, match=f"^Function not found: {ARN}:ghost:1$"):
        registry.resolve("ghost", "1")


def test_resolve_refuses_malformed_qualifier(registry: Registry) -> None:
    publish(registry, SHA_A)
    with pytest.raises(ValidationError, match="qualifier 'a b/c' is not valid"):
        registry.resolve("hello", "a b/c")


def test_remove_then_recreate_restarts_versions(registry: Registry) -> None:
    publish(registry, SHA_A)
    publish(registry, SHA_B)
    assert registry.resolve("hello", "1").code_sha256 == SHA_A  # cached now
    registry.remove("hello")
    with pytest.raises(FunctionNotFound, match=f"{ARN}:hello$"):
        registry.live("hello")
    with pytest.raises(FunctionNotFound):
        registry.resolve("hello", "2")
    fresh, created = publish(registry, SHA_C)
    assert created and fresh.version == 1
    assert registry.resolve("hello", "1") == fresh  # not the deleted version 1


def test_remove_unknown(registry: Registry) -> None:
    with pytest.raises(FunctionNotFound, match=f"^Function not found: {ARN}:nope$"):
        registry.remove("nope")


def test_set_live_rolls_back_and_notifies(registry: Registry) -> None:
    v1, _ = publish(registry, SHA_A)
    v2, _ = publish(registry, SHA_B)
    changes = record(registry)
    assert registry.set_live("hello", 1) == v1
    assert registry.live("hello") == v1
    assert changes == [(v2, v1)]
    registry.set_live("hello", 1)
    assert len(changes) == 1
    with pytest.raises(FunctionNotFound, match=":hello:5$"):
        registry.set_live("hello", 5)


def test_all_is_sorted(registry: Registry) -> None:
    for name in ("b", "c", "a"):
        publish(registry, SHA_A, name=name)
    assert [v.name for v in registry.all()] == ["a", "b", "c"]


def test_loads_live_versions_from_store_at_start(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    with Store(path) as s:
        r = Registry(s)
        publish(r, SHA_A, name="one")
        two, _ = publish(r, SHA_B, name="two")
        publish(r, SHA_C, name="two", memory=256)
        r.set_live("two", 1)
    with Store(path) as s:
        r = Registry(s)
        assert [(v.name, v.version) for v in r.all()] == [("one", 1), ("two", 1)]
        assert r.live("two") == two
        assert r.resolve("two", "2").spec.memory == 256


def test_a_failing_subscriber_does_not_undo_the_deploy(registry: Registry) -> None:
    def broken(old: FunctionVersion | None, new: FunctionVersion | None) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(broken)
    changes = record(registry)
    version, created = publish(registry, SHA_A)
    assert created and registry.live("hello") == version
    assert changes == [(None, version)]


def test_calls_are_not_blocked_by_a_deploy_in_progress(registry: Registry) -> None:
    """While a slow subscriber holds up one deploy, invocations still resolve."""
    v1, _ = publish(registry, SHA_A)
    release = threading.Event()
    entered = threading.Event()

    def slow(old: FunctionVersion | None, new: FunctionVersion | None) -> None:
        entered.set()
        release.wait(5)

    registry.subscribe(slow)
    deployer = threading.Thread(target=publish, args=(registry, SHA_B))
    deployer.start()
    try:
        assert entered.wait(5)
        seen: list[FunctionVersion] = []
        reader = threading.Thread(target=lambda: seen.extend([registry.live("hello"), registry.resolve("hello", "$LATEST")]))
        reader.start()
        reader.join(2)
        assert not reader.is_alive(), "live() blocked behind a deploy"
        assert [v.version for v in seen] == [2, 2]  # the new version is live before subscribers return
    finally:
        release.set()
        deployer.join()


def test_versions_are_replaced_not_mutated(registry: Registry) -> None:
    v1, _ = publish(registry, SHA_A)
    held = registry.live("hello")
    publish(registry, SHA_B)
    assert held is v1 and held.version == 1 and held.code_sha256 == SHA_A
