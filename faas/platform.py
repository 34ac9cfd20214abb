"""The composition root: builds store, registry, executor, pool and scheduler, and is the
one object the gateway talks to (app.extensions["faas"])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from faas.models import FunctionVersion, Result


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy did: the live version after it, and whether anything changed."""

    version: FunctionVersion
    changed: bool  # False when identical content was deployed again


class Platform:
    """INTERFACE (being filled in): see the method docstrings for the contract."""

    def deploy_zip(self, data: bytes, *, expected_name: str | None = None, source_dir: str | None = None) -> DeployOutcome:
        """Validate a zip (function.yaml inside), store it, make it live.

        Raises ValidationError / PackageTooLarge with a clear message; nothing changes then.
        expected_name: the <name> of PUT /system/functions/<name>; must match function.yaml's name.
        """
        raise NotImplementedError

    def remove(self, name: str) -> None:
        """Delete a function, its versions and environments. FunctionNotFound if unknown."""
        raise NotImplementedError

    def functions(self) -> list[FunctionVersion]:
        """The live version of every function, sorted by name."""
        raise NotImplementedError

    def get(self, name: str) -> FunctionVersion:
        """The live version of one function. FunctionNotFound if unknown."""
        raise NotImplementedError

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        client_context: str | None = None,
    ) -> Result:
        """Run one synchronous call. Raises FunctionNotFound, RequestTooLarge, TooManyRequests,
        ShuttingDown. A function error is not raised: Result.function_error says it."""
        raise NotImplementedError

    def logs(self, name: str, *, tail: int = 200) -> list[str]:
        """The last `tail` log lines of a function (START/END/REPORT and its output)."""
        raise NotImplementedError

    def environments(self) -> Iterable[dict[str, object]]:
        """A snapshot of the pool for the admin API: id, function, version, state."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Refuse new calls, let calls in flight finish, remove every container."""
        raise NotImplementedError
