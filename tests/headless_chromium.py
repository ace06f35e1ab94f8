"""Headless Chromium as the tests drive it: one flag set for the slice report's rendering
checks and the edge page's browser test (tests/edge_page.py imports this as a sibling
module: it runs as a script)."""

from __future__ import annotations

import shutil
import subprocess

# No sandbox (the tests run as root in the runtime), no GPU, and none of Chromium's own
# network traffic (updates, sync): the pages under test must load with nothing else.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def command(profile, *args: str) -> list[str]:
    """Chromium's command line with its profile in `profile` and `args` after the flags."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError("chromium is not installed in the runtime (bin/runtime EXTRA_PACKAGES)")
    return [path, *FLAGS, f"--user-data-dir={profile}", *args]


def run_offline(*args: str, tmp_path) -> subprocess.CompletedProcess:
    """Chromium in a network namespace of its own (`unshare -n`): nothing can be fetched."""
    cmd = ["unshare", "-n", *command(tmp_path / "profile", "--enable-logging=stderr", "--v=0", *args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
