"""Which version of each function is live, answered from memory on every call.

Every invocation asks the registry first, so reads take no lock: they are single
dict lookups (atomic in CPython) on values that are never mutated, only replaced.
Writes go to the store first and then to the dict, under a lock, so the dict never
shows a version the store would not have after a restart.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from faas.deploy.store import Store
from faas.errors import FunctionNotFound, ValidationError
from faas.models import FunctionSpec, FunctionVersion, function_arn, short_repr

LOG = logging.getLogger(__name__)

LATEST = "$LATEST"
# Lambda's Qualifier pattern: a version number, $LATEST, or an alias name.
_QUALIFIER_RE = re.compile(r"^[A-Za-z0-9$_-]{1,128}$")
MAX_VERSION = 2**31  # larger numbers cannot exist, and would not fit an SQLite integer

Listener = Callable[[FunctionVersion | None, FunctionVersion | None], None]


def not_found(name: str, qualifier: str | None = None) -> FunctionNotFound:
    """Lambda's own wording, so SDK users see the message they would see on AWS."""
    return FunctionNotFound(f"Function not found: {function_arn(name, qualifier)}")


class Registry:
    """Live versions in memory, backed by the store; tells subscribers what changed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # RLock: a listener may read back (resolve a version) while being notified.
        self._lock = threading.RLock()
        self._live: dict[str, FunctionVersion] = {v.name: v for v in store.live_all()}
        # Numbered versions are immutable, so once read they can be served from memory.
        self._versions: dict[tuple[str, int], FunctionVersion] = {}
        # Aliases: {function: {alias: target}}, target a version number or $LATEST; replaced, never mutated.
        self._aliases: dict[str, dict[str, str]] = {}
        for fn, alias, target in store.aliases_all():
            self._aliases.setdefault(fn, {})[alias] = target
        self._listeners: list[Listener] = []
        # Functions a deployed template holds that cannot run here -> why (RouteBook.unrunnable);
        # replaced whole, read without the lock: a call to one names the reason, not only "not found".
        self.unrunnable: Mapping[str, str] = {}
        LOG.info("registry: %d live function(s)", len(self._live))

    def _missing(self, name: str, qualifier: str | None = None) -> FunctionNotFound:
        error = not_found(name, qualifier)
        reason = self.unrunnable.get(name)
        if reason:
            error = FunctionNotFound(f"{error.message}: {reason}")
        return error

    # ------------------------------------------------------------------ hot path, no lock

    def live(self, name: str) -> FunctionVersion:
        version = self._live.get(name)
        if version is None:
            raise self._missing(name)
        return version

    def resolve(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        """The version a call with this qualifier runs: None or $LATEST is the live one,
        a number that version, an alias the version it points to."""
        if qualifier is None or qualifier in ("", LATEST):
            return self.live(name)
        if not _QUALIFIER_RE.match(qualifier):
            raise ValidationError(
                f"qualifier {short_repr(qualifier)} is not valid: use $LATEST, a version number, or an alias name"
            )
        if not qualifier.isdigit():
            target = self._aliases.get(name, {}).get(qualifier)
            if target is None:
                raise self._missing(name, qualifier)
            return self.resolve(name, target)
        number = int(qualifier)
        if number > MAX_VERSION:
            raise self._missing(name, qualifier)
        live = self._live.get(name)
        if live is not None and live.version == number:
            return live
        cached = self._versions.get((name, number))
        if cached is not None:
            return cached
        with self._lock:
            # Read and cache under the lock so a concurrent remove() cannot leave a
            # deleted version in the cache (numbers restart at 1 after a delete).
            found = self._store.get_version(name, number)
            if found is None:
                raise self._missing(name, qualifier)
            self._versions[(name, number)] = found
            return found

    def label(self, name: str, qualifier: str | None) -> str:
        """What Lambda reports as the executed version: $LATEST for an unqualified call (or an
        alias pointing at $LATEST), else the version number."""
        if qualifier and not qualifier.isdigit() and qualifier != LATEST:
            qualifier = self._aliases.get(name, {}).get(qualifier, qualifier)
        if qualifier is None or qualifier in ("", LATEST):
            return LATEST
        return qualifier

    def aliases(self, name: str) -> dict[str, str]:
        """{alias: target} of one function."""
        return dict(self._aliases.get(name, {}))

    def put_alias(self, name: str, alias: str, target: str) -> None:
        """Create or move an alias; the target ($LATEST or a number) must exist."""
        with self._lock:
            self.resolve(name, target)
            self._store.put_alias(name, alias, target)
            self._aliases[name] = {**self._aliases.get(name, {}), alias: target}

    def delete_alias(self, name: str, alias: str) -> bool:
        with self._lock:
            deleted = self._store.delete_alias(name, alias)
            rest = {a: t for a, t in self._aliases.get(name, {}).items() if a != alias}
            self._aliases[name] = rest
        return deleted

    def all(self) -> list[FunctionVersion]:
        """Every live version, sorted by name."""
        return sorted(self._live.copy().values(), key=lambda v: v.name)

    # ---------------------------------------------------------------------------- writes

    def publish(
        self,
        spec: FunctionSpec,
        sha256: str,
        code_dir: Path,
        code_size: int,
        source_dir: str | None = None,
    ) -> tuple[FunctionVersion, bool]:
        """Record a deploy and make it live; (version, False) when identical content was
        already live, and then nobody is notified (warm environments stay)."""
        with self._lock:
            old = self._live.get(spec.name)
            version, changed = self._store.add_version(spec, sha256, code_dir, code_size, source_dir, make_live=True)
            if changed:
                self._live[spec.name] = version
                self._notify(old, version)
        return version, changed

    def set_live(self, name: str, version: int) -> FunctionVersion:
        """Make an existing version live again (a rollback)."""
        with self._lock:
            old = self._live.get(name)
            if old is not None and old.version == version:
                return old
            new = self._store.set_live(name, version)
            self._live[name] = new
            self._notify(old, new)
        return new

    def remove(self, name: str) -> None:
        """Delete a function and all its versions; FunctionNotFound if unknown."""
        with self._lock:
            deleted = self._store.delete_function(name)
            old = self._live.pop(name, None)
            for key in [k for k in self._versions if k[0] == name]:
                del self._versions[key]
            self._aliases.pop(name, None)
            if not deleted and old is None:
                raise self._missing(name)
            if old is not None:
                self._notify(old, None)

    def subscribe(self, callback: Listener) -> None:
        """callback(old, new) runs after each change, in order of the changes; old is
        None for a new function, new is None when the function was removed (then every
        environment of that function, whatever its version, should go). Keep it quick:
        it runs under the write lock."""
        with self._lock:
            self._listeners.append(callback)

    def _notify(self, old: FunctionVersion | None, new: FunctionVersion | None) -> None:
        changed = new or old
        name = changed.name if changed is not None else "?"
        for callback in list(self._listeners):
            try:
                callback(old, new)
            except Exception:  # the change is committed; a listener's bug must not undo or hide it
                LOG.exception("function %s: registry listener %r failed", name, callback)
