"""Pins the package's dependencies to requirements.lock; everything else is in pyproject.toml.

The pins come from the lock, the same file the runtime and the image install, so the
package, the runtime and the Docker image cannot drift apart.
"""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
# Direct dependencies, pinned to the versions the lock resolved.
DIRECT = ("tfx", "kfp", "kfp-pipeline-spec", "tensorboard")


def locked_versions() -> dict:
    pins = {}
    for line in (HERE / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


PINS = locked_versions()

setup(install_requires=[f"{name}=={PINS[name]}" for name in DIRECT])
