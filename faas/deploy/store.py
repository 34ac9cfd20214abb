"""Durable state in one SQLite file: functions, their numbered versions, aliases.

SQLite because the state must survive a gateway restart and a crash mid-deploy, and
the data is small; WAL with synchronous=NORMAL keeps each deploy to one cheap fsync-free
commit while a crash still only ever loses whole transactions. The hot path never
reads from here: the registry keeps the live versions in memory.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from faas.deploy.routes import Cors
from faas.errors import FaasError, FunctionNotFound
from faas.models import FunctionSpec, FunctionVersion, function_arn
from faas.private import private_file

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: function_settings, async_events, invocations (tables only added: 1 -> 2 is CREATE IF NOT EXISTS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    live_version INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    code_dir TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    source_dir TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS function_settings (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE TABLE IF NOT EXISTS async_events (
    request_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    qualifier TEXT,
    payload BLOB NOT NULL,
    received REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    running INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS async_events_due ON async_events (running, next_attempt);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    finished REAL NOT NULL,
    start TEXT NOT NULL,
    init_ms REAL,
    duration_ms REAL NOT NULL,
    max_memory_mb INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT
);
CREATE INDEX IF NOT EXISTS invocations_by_name ON invocations (name, id);
"""
_ROUTES_TABLE = "CREATE TABLE IF NOT EXISTS api_routes (stack TEXT PRIMARY KEY, routes_json TEXT NOT NULL, updated REAL NOT NULL)"
# Layer versions (faas/deploy/layers.py): created on first use like api_routes. A deleted
# version keeps its row (deleted = 1) so its number is never given again, as on Lambda.
_LAYERS_TABLE = (
    "CREATE TABLE IF NOT EXISTS layer_versions (name TEXT NOT NULL, version INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, content_dir TEXT NOT NULL, code_size INTEGER NOT NULL, zip_size INTEGER NOT NULL,"
    " info_json TEXT NOT NULL, created REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (name, version))"
)
# Event source mappings (faas/events/sqs_mappings.py): created on first use, like api_routes.
_MAPPINGS_TABLE = (
    "CREATE TABLE IF NOT EXISTS event_source_mappings (uuid TEXT PRIMARY KEY, function TEXT NOT NULL,"
    " mapping_json TEXT NOT NULL, updated REAL NOT NULL)"
)
LAYER_COLUMNS = "name, version, sha256, content_dir, code_size, zip_size, info_json, created"
_VERSION_COLUMNS = "v.name, v.version, v.sha256, v.spec_json, v.code_dir, v.code_size, v.source_dir, v.created"
_SPEC_FIELDS = frozenset(f.name for f in fields(FunctionSpec))


def _spec_json(spec: FunctionSpec) -> str:
    return json.dumps(spec.to_mapping(), sort_keys=True, separators=(",", ":"))


def _spec_from_json(text: str) -> FunctionSpec:
    # Stored specs were validated when deployed; re-validating here would let a later,
    # stricter rule make the gateway unable to start on existing state.
    raw = json.loads(text)
    raw["environment"] = dict(raw.get("environment") or {})
    raw["layers"] = tuple(raw.get("layers") or ())
    if raw.get("url_cors") is not None:
        raw["url_cors"] = Cors.from_json(raw["url_cors"])
    return FunctionSpec(**{k: v for k, v in raw.items() if k in _SPEC_FIELDS})


def _row_to_version(row: tuple[Any, ...]) -> FunctionVersion:
    _name, version, sha, spec_json, code_dir, code_size, source_dir, created = row
    return FunctionVersion(
        spec=_spec_from_json(spec_json),
        version=int(version),
        code_sha256=sha,
        code_dir=Path(code_dir),
        code_size=int(code_size),
        created=float(created),
        source_dir=source_dir,
    )


class Store:
    """The one connection to the state database; every method is thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
            for p in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))):
                if p is self.path or p.exists():
                    private_file(p)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _write),
            # so each write method is exactly one transaction.
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as e:
            raise FaasError(f"cannot open the state database {self.path}: {e}") from e
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise FaasError(f"{self.path} is not a usable faas state database: {e}") from e

    def _migrate(self) -> None:
        (current,) = self._db.execute("PRAGMA user_version").fetchone()
        if current > SCHEMA_VERSION:
            raise FaasError(
                f"{self.path} has schema version {current}, newer than this faas understands ({SCHEMA_VERSION}); "
                "upgrade faas or use another state dir"
            )
        if current < SCHEMA_VERSION:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            LOG.info("state database %s: schema version %d", self.path, SCHEMA_VERSION)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: all of it lands, or none of it (a crash
        mid-deploy leaves the previous state)."""
        with self._lock, self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:  # SQLite may have rolled back already (disk full, I/O error)
                    LOG.warning("state database %s: rollback failed", self.path, exc_info=True)
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._translated():
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite's errors (disk full, locked by another process) become FaasError here,
        where they enter, so callers handle one family of errors."""
        try:
            yield
        except sqlite3.Error as e:
            raise FaasError(f"state database {self.path}: {e}") from e

    @staticmethod
    def _get_live(db: sqlite3.Connection, name: str) -> FunctionVersion | None:
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM functions f JOIN versions v"
            " ON v.name = f.name AND v.version = f.live_version WHERE f.name = ?",
            (name,),
        ).fetchone()
        return _row_to_version(row) if row else None

    def add_version(
        self,
        spec: FunctionSpec,
        sha256: str,
        code_dir: Path,
        code_size: int,
        source_dir: str | None = None,
        *,
        make_live: bool = True,
    ) -> tuple[FunctionVersion, bool]:
        """Record a deploy; returns (the version, whether a new one was created).

        A new version is created only when code or configuration differ from the LIVE
        version: redeploying what is live is a no-op returning (live, False), so saving
        a file twice or re-running `faas deploy` does not churn versions or drain warm
        environments. Deploying content equal to an older, non-live version creates a
        new number (as Lambda's publish does): numbers only go up while the function
        exists. Numbers start at 1 and restart at 1 after the function is deleted, as
        on Lambda.
        """
        spec_json = _spec_json(spec)
        now = time.time()
        with self._write() as db:
            live = self._get_live(db, spec.name)
            if live is not None and live.code_sha256 == sha256 and _spec_json(live.spec) == spec_json:
                return live, False
            (latest,) = db.execute("SELECT MAX(version) FROM versions WHERE name = ?", (spec.name,)).fetchone()
            number = (latest or 0) + 1
            db.execute(
                "INSERT INTO versions (name, version, sha256, spec_json, code_dir, code_size, source_dir, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (spec.name, number, sha256, spec_json, str(code_dir), int(code_size), source_dir, now),
            )
            db.execute(
                "INSERT INTO functions (name, live_version, created, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET"
                " live_version = CASE WHEN ? THEN excluded.live_version ELSE functions.live_version END,"
                " updated = excluded.updated",
                (spec.name, number if make_live else None, now, now, int(make_live)),
            )
        version = FunctionVersion(
            spec=spec,
            version=number,
            code_sha256=sha256,
            code_dir=Path(code_dir),
            code_size=int(code_size),
            created=now,
            source_dir=source_dir,
        )
        LOG.info("function %s: version %d recorded (%s)%s", spec.name, number, sha256[:12], " live" if make_live else "")
        return version, True

    def get_live(self, name: str) -> FunctionVersion | None:
        with self._lock, self._translated():
            return self._get_live(self._db, name)

    def get_version(self, name: str, version: int) -> FunctionVersion | None:
        rows = self._query(f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE v.name = ? AND v.version = ?", (name, version))
        return _row_to_version(rows[0]) if rows else None

    def versions(self, name: str) -> list[FunctionVersion]:
        """Every version of a function, oldest first."""
        rows = self._query(f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE v.name = ? ORDER BY v.version", (name,))
        return [_row_to_version(r) for r in rows]

    def live_all(self) -> list[FunctionVersion]:
        """The live version of every function, sorted by name."""
        rows = self._query(
            f"SELECT {_VERSION_COLUMNS} FROM functions f JOIN versions v"
            " ON v.name = f.name AND v.version = f.live_version ORDER BY f.name"
        )
        return [_row_to_version(r) for r in rows]

    def set_live(self, name: str, version: int) -> FunctionVersion:
        """Make an existing version live (a rollback); FunctionNotFound if there is no such version."""
        with self._write() as db:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE v.name = ? AND v.version = ?", (name, version)
            ).fetchone()
            if row is None:
                raise FunctionNotFound(f"Function not found: {function_arn(name, str(version))}")
            db.execute("UPDATE functions SET live_version = ?, updated = ? WHERE name = ?", (version, time.time(), name))
        LOG.info("function %s: version %d is live", name, version)
        return _row_to_version(row)

    def delete_function(self, name: str) -> bool:
        """Forget a function with all its versions and aliases; False if there was none."""
        with self._write() as db:
            found = db.execute("DELETE FROM functions WHERE name = ?", (name,)).rowcount > 0
            found = db.execute("DELETE FROM versions WHERE name = ?", (name,)).rowcount > 0 or found
            db.execute("DELETE FROM aliases WHERE name = ?", (name,))
            db.execute("DELETE FROM function_settings WHERE name = ?", (name,))
        if found:
            LOG.info("function %s: deleted", name)
        return found

    # ---- aliases and Lambda-only settings (role, tags, async config) ---------------------

    def aliases_all(self) -> list[tuple[str, str, str]]:
        """(function, alias, target) for every alias; target is a version number or $LATEST."""
        return [(n, a, str(v)) for n, a, v in self._query("SELECT name, alias, version FROM aliases ORDER BY name, alias")]

    def put_alias(self, name: str, alias: str, target: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO aliases (name, alias, version) VALUES (?, ?, ?)"
                " ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
                (name, alias, target),
            )

    def delete_alias(self, name: str, alias: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias)).rowcount > 0

    def settings(self, name: str) -> dict[str, Any]:
        """Settings Lambda keeps beside the code (role, tags, event invoke config), JSON-decoded."""
        rows = self._query("SELECT key, value FROM function_settings WHERE name = ?", (name,))
        return {k: json.loads(v) for k, v in rows}

    def put_setting(self, name: str, key: str, value: Any) -> None:
        """Store one setting; None deletes it."""
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM function_settings WHERE name = ? AND key = ?", (name, key))
            else:
                db.execute(
                    "INSERT INTO function_settings (name, key, value) VALUES (?, ?, ?)"
                    " ON CONFLICT(name, key) DO UPDATE SET value = excluded.value",
                    (name, key, json.dumps(value, sort_keys=True)),
                )

    def referenced_shas(self) -> set[str]:
        """Packages some version still points at: garbage collection must keep these."""
        return {sha for (sha,) in self._query("SELECT DISTINCT sha256 FROM versions")}

    # ---- API routes of deployed templates (faas/deploy/routes.py) -----------------------
    # The table is created on first use rather than by a schema version: adding it changes
    # nothing else, and an older faas opening the file simply never reads it.

    def routes_all(self) -> list[tuple[str, str]]:
        """(stack, routes as JSON) of every template whose routes are deployed."""
        with self._write() as db:
            db.execute(_ROUTES_TABLE)
            return db.execute("SELECT stack, routes_json FROM api_routes ORDER BY stack").fetchall()

    def put_routes(self, stack: str, routes_json: str) -> None:
        with self._write() as db:
            db.execute(_ROUTES_TABLE)
            db.execute(
                "INSERT INTO api_routes (stack, routes_json, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(stack) DO UPDATE SET routes_json = excluded.routes_json, updated = excluded.updated",
                (stack, routes_json, time.time()),
            )

    def delete_routes(self, stack: str) -> bool:
        with self._write() as db:
            db.execute(_ROUTES_TABLE)
            return db.execute("DELETE FROM api_routes WHERE stack = ?", (stack,)).rowcount > 0

    # ---- layer versions (faas/deploy/layers.py) ------------------------------------------

    def add_layer_version(
        self, name: str, sha256: str, content_dir: str, code_size: int, zip_size: int, info_json: str
    ) -> tuple[Any, ...]:
        """Record a new layer version (numbers only go up, deleted ones included); its row."""
        with self._write() as db:
            db.execute(_LAYERS_TABLE)
            (latest,) = db.execute("SELECT MAX(version) FROM layer_versions WHERE name = ?", (name,)).fetchone()
            row = (name, (latest or 0) + 1, sha256, content_dir, int(code_size), int(zip_size), info_json, time.time())
            db.execute(f"INSERT INTO layer_versions ({LAYER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        return row

    def layer_versions(self, name: str | None = None, *, deleted: bool = False) -> list[tuple[Any, ...]]:
        """Rows of the layer versions (of one layer, or all) by name then version; deleted ones
        only with deleted=True (a function that mounts one keeps it, as on Lambda)."""
        where, params = ("AND name = ?", (name,)) if name is not None else ("", ())
        with self._write() as db:
            db.execute(_LAYERS_TABLE)
            return db.execute(
                f"SELECT {LAYER_COLUMNS} FROM layer_versions WHERE deleted <= ? {where} ORDER BY name, version",
                (int(deleted), *params),
            ).fetchall()

    def delete_layer_version(self, name: str, version: int) -> bool:
        with self._write() as db:
            db.execute(_LAYERS_TABLE)
            return (
                db.execute(
                    "UPDATE layer_versions SET deleted = 1 WHERE name = ? AND version = ? AND deleted = 0", (name, version)
                ).rowcount
                > 0
            )

    # ---- event source mappings (faas/events/sqs_mappings.py) ------------------------------

    def mappings_all(self) -> list[tuple[str, str]]:
        """(uuid, mapping as JSON) of every event source mapping."""
        with self._write() as db:
            db.execute(_MAPPINGS_TABLE)
            return db.execute("SELECT uuid, mapping_json FROM event_source_mappings ORDER BY uuid").fetchall()

    def put_mapping(self, uuid: str, function: str, mapping_json: str) -> None:
        with self._write() as db:
            db.execute(_MAPPINGS_TABLE)
            db.execute(
                "INSERT INTO event_source_mappings (uuid, function, mapping_json, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(uuid) DO UPDATE SET function = excluded.function, mapping_json = excluded.mapping_json,"
                " updated = excluded.updated",
                (uuid, function, mapping_json, time.time()),
            )

    def delete_mapping(self, uuid: str) -> bool:
        with self._write() as db:
            db.execute(_MAPPINGS_TABLE)
            return db.execute("DELETE FROM event_source_mappings WHERE uuid = ?", (uuid,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
