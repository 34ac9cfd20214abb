"""A real headless browser for the dashboard tests: Debian's chromium, driven by Playwright.

Playwright (pinned in pyproject's test extra) brings its own driver but no browser here:
it drives the system's /usr/bin/chromium, which this helper installs from Debian's
packages when it is missing and we are root (as on CI), the way faas.containers.engine installs Docker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine without a display, a GPU or outside network: no sandbox (root in CI),
# and none of Chromium's own background connections, which would only be refused here.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


class BrowserUnavailable(RuntimeError):
    """No chromium, and this machine cannot install one."""


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installing Debian's package first if needed (root with apt-get only)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserUnavailable(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise BrowserUnavailable(f"apt-get install chromium failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM
