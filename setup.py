"""Packaging for the pipeline image and for `pip install -e .`.

Versions come from requirements.lock, the same pins the runtime installs, so the
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

setup(
    name="taxi-tfx-pipeline",
    version="0.1.0",
    description="Production TFX 1.21 pipeline for tabular data (binary, multiclass, regression), local (Beam) and Kubeflow v2.",
    packages=["modeling", "pipeline", "components", "reporting", "serving"],
    py_modules=["local_runner", "kfp_runner"],
    python_requires=">=3.10,<3.14",
    install_requires=[f"{name}=={PINS[name]}" for name in DIRECT],
    package_data={"": ["*.pbtxt"]},
)
