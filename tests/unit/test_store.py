"""Store: versions as a user sees them across deploys, deletes and restarts."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faas.deploy.store import SCHEMA_VERSION, Store
from faas.errors import FaasError, FunctionNotFound
from faas.models import FunctionSpec, FunctionVersion

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state" / "faas.db")
    yield s
    s.close()


def spec(name: str = "hello", **kw: Any) -> FunctionSpec:
    return FunctionSpec(name=name, **kw)


def deploy(store: Store, sha: str, name: str = "hello", **kw: Any) -> tuple[FunctionVersion, bool]:
    return store.add_version(spec(name, **kw), sha, Path("/pkgs") / sha, 123, source_dir=f"/src/{name}")


def test_first_deploy_is_version_1_and_live(store: Store) -> None:
    version, created = deploy(store, SHA_A)
    assert created
    assert (version.name, version.version, version.code_sha256) == ("hello", 1, SHA_A)
    assert version.code_dir == Path("/pkgs") / SHA_A and version.code_size == 123
    assert version.source_dir == "/src/hello" and version.created > 0
    assert store.get_live("hello") == version


def test_identical_redeploy_creates_nothing(store: Store) -> None:
    first, _ = deploy(store, SHA_A)
    again, created = deploy(store, SHA_A)
    assert not created
    assert again == first
    assert [v.version for v in store.versions("hello")] == [1]


def test_versions_count_up_per_function(store: Store) -> None:
    assert deploy(store, SHA_A)[0].version == 1
    assert deploy(store, SHA_B)[0].version == 2
    assert deploy(store, SHA_A, name="other")[0].version == 1
    assert deploy(store, SHA_C)[0].version == 3
    assert [v.code_sha256 for v in store.versions("hello")] == [SHA_A, SHA_B, SHA_C]
    assert store.get_live("hello").version == 3  # type: ignore[union-attr]


def test_config_change_with_same_code_hash_is_a_new_version(store: Store) -> None:
    deploy(store, SHA_A)
    version, created = deploy(store, SHA_A, memory=512)
    assert created and version.version == 2 and version.spec.memory == 512


def test_going_back_to_older_content_is_a_new_version(store: Store) -> None:
    deploy(store, SHA_A)
    deploy(store, SHA_B)
    version, created = deploy(store, SHA_A)
    assert created and version.version == 3 and version.code_sha256 == SHA_A


def test_get_version_and_unknowns(store: Store) -> None:
    first, _ = deploy(store, SHA_A)
    deploy(store, SHA_B)
    assert store.get_version("hello", 1) == first
    assert store.get_version("hello", 9) is None
    assert store.get_version("nope", 1) is None
    assert store.get_live("nope") is None
    assert store.versions("nope") == []


def test_live_all_is_sorted_by_name(store: Store) -> None:
    for name in ("zeta", "alpha", "mid"):
        deploy(store, SHA_A, name=name)
    deploy(store, SHA_B, name="alpha")
    live = store.live_all()
    assert [(v.name, v.version) for v in live] == [("alpha", 2), ("mid", 1), ("zeta", 1)]


def test_set_live_rolls_back(store: Store) -> None:
    deploy(store, SHA_A)
    deploy(store, SHA_B)
    rolled = store.set_live("hello", 1)
    assert rolled.version == 1 and store.get_live("hello") == rolled
    # Redeploying v1's content now is a no-op: it is what is live.
    assert deploy(store, SHA_A) == (rolled, False)


def test_set_live_unknown_version(store: Store) -> None:
    deploy(store, SHA_A)
    with pytest.raises(FunctionNotFound, match=r"^Function not found: arn:aws:lambda:us-east-1:123456789012:function:hello:7$"):
        store.set_live("hello", 7)
    assert store.get_live("hello").version == 1  # type: ignore[union-attr]


def test_delete_function_then_numbering_restarts_at_1(store: Store) -> None:
    deploy(store, SHA_A)
    deploy(store, SHA_B)
    assert store.delete_function("hello") is True
    assert store.get_live("hello") is None and store.versions("hello") == []
    assert store.delete_function("hello") is False
    version, created = deploy(store, SHA_B)
    assert created and version.version == 1


def test_delete_leaves_other_functions(store: Store) -> None:
    deploy(store, SHA_A, name="one")
    deploy(store, SHA_B, name="two")
    store.delete_function("one")
    assert [v.name for v in store.live_all()] == ["two"]


def test_referenced_shas_cover_every_version(store: Store) -> None:
    deploy(store, SHA_A)
    deploy(store, SHA_B)
    deploy(store, SHA_C, name="other")
    assert store.referenced_shas() == {SHA_A, SHA_B, SHA_C}
    store.delete_function("other")
    assert store.referenced_shas() == {SHA_A, SHA_B}


def test_add_version_without_making_it_live(store: Store) -> None:
    live, _ = deploy(store, SHA_A)
    staged, created = store.add_version(spec(), SHA_B, Path("/p"), 1, make_live=False)
    assert created and staged.version == 2
    assert store.get_live("hello") == live
    fresh, _ = store.add_version(spec("new"), SHA_A, Path("/p"), 1, make_live=False)
    assert store.get_live("new") is None and store.get_version("new", 1) == fresh


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    full = FunctionSpec(
        name="hello",
        runtime="nodejs20.x",
        handler="index.handler",
        memory=512,
        timeout=30,
        environment={"A": "1", "B": "two"},
        concurrency=5,
        ephemeral_storage=1024,
        network="none",
        cpu="lambda",
        min_warm=2,
        description="greets",
    )
    with Store(path) as s:
        v1, _ = s.add_version(full, SHA_A, tmp_path / "pkgs" / SHA_A, 42, "/src/hello")
        v2, _ = deploy(s, SHA_B, name="other")
    with Store(path) as s:
        assert s.get_live("hello") == v1
        assert s.get_live("hello").spec == full  # type: ignore[union-attr]
        assert s.live_all() == [v1, v2]
        assert deploy(s, SHA_A, name="other")[0].version == 2


def test_schema_version_wal_and_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    Store(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"functions", "versions", "aliases"} <= tables
    finally:
        db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(FaasError, match="newer than this faas understands"):
        Store(path)


def test_garbage_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FaasError, match="not a usable faas state database"):
        Store(path)


class _CrashingConnection:
    """Stands in for the connection and dies on one statement, as a crash mid-deploy would."""

    def __init__(self, real: sqlite3.Connection, fail_on: str) -> None:
        self.real = real
        self.fail_on = fail_on

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if sql.startswith(self.fail_on):
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(sql, params)

    def close(self) -> None:
        self.real.close()


def test_failure_mid_deploy_leaves_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "faas.db"
    s = Store(path)
    first, _ = deploy(s, SHA_A)
    real = s._db
    s._db = _CrashingConnection(real, "INSERT INTO functions")  # type: ignore[assignment]
    with pytest.raises(FaasError, match="state database .*: disk I/O error"):
        deploy(s, SHA_B)
    s._db = real
    assert s.versions("hello") == [first]
    assert s.get_live("hello") == first
    s.close()
    with Store(path) as again:
        assert again.versions("hello") == [first]
        assert deploy(again, SHA_B)[0].version == 2


def test_concurrent_deploys_get_distinct_numbers(store: Store) -> None:
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(10):
                store.add_version(spec("shared"), f"{i:02d}{j:02d}".ljust(64, "0"), Path("/p"), 1)
                store.add_version(spec(f"own{i}"), f"{j:02d}".ljust(64, "0"), Path("/p"), 1)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in store.versions("shared")] == list(range(1, 81))
    assert all(len(store.versions(f"own{i}")) == 10 for i in range(8))
