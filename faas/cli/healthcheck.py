"""The compose service's health check: `python -m faas.cli.healthcheck [DIR ...]`.

Healthy means what a caller needs: the gateway answers /healthz, and every function in the
folders `faas up` was started with has a live version. So a service that waits for faas with
`depends_on: {faas: {condition: service_healthy}}` finds the example functions deployed, not
a 404. Once they were all there, later checks look at /healthz only: removing a function
later does not make the service unhealthy, and a check costs a Python start and one request
(it runs every few seconds). Exit 0 when healthy, 1 otherwise, with the reason on stdout
(docker keeps it in the container's health log).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

TIMEOUT_S = 3.0


def missing_functions(base_url: str, folders: Sequence[Path], token: str | None = None) -> list[str]:
    """Names of the functions under folders that the gateway does not serve; raises OSError if it does not answer."""
    from faas.cli.main import find_function_folders
    from faas.deploy.packages import read_spec

    wanted = [read_spec(folder).name for folder in find_function_folders(folders)] if folders else []
    if not wanted:
        return []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{base_url}/system/functions", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        deployed = {str(f.get("name")) for f in json.loads(response.read())}
    return [name for name in wanted if name not in deployed]


def check(base_url: str, folders: Sequence[Path], token: str | None = None, marker: Path | None = None) -> str | None:
    """None when healthy, else why not. marker: a file that exists once every function was deployed."""
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=TIMEOUT_S) as response:
            if response.status != 200:
                return f"{base_url}/healthz answered {response.status}"
        if marker is not None and marker.exists():
            return None
        missing = missing_functions(base_url, folders, token)
    except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
        return f"no answer from {base_url}: {e}"
    except Exception as e:  # a function.yaml that does not parse: say so, stay unhealthy
        return f"{type(e).__name__}: {getattr(e, 'message', e)}"
    if missing:
        return f"not deployed yet: {', '.join(missing)}"
    if marker is not None:
        try:
            marker.touch()
        except OSError:
            pass
    return None


def started_marker() -> Path | None:
    """A file that says "the start deploys were all done", named for this start of the container
    (the start time of its process 1), so a restarted container checks its functions again."""
    try:
        start = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    return Path(tempfile.gettempdir()) / f"faas-healthcheck-started-{start}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    port = os.environ.get("FAAS_PORT") or "8080"
    base_url = (os.environ.get("FAAS_GATEWAY") or f"http://127.0.0.1:{port}").rstrip("/")
    problem = check(base_url, [Path(a) for a in args], os.environ.get("FAAS_API_TOKEN") or None, started_marker())
    print(problem or f"healthy: {base_url}")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
