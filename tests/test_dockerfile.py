"""The pipeline image installs the same pins as setup.py and the local runtime.

No Docker daemon is available here, so the image is not built in CI; these checks keep the
Dockerfile, setup.py, requirements.lock and the compiled spec's paths from drifting apart.
"""

import re
from pathlib import Path

import pytest
import setuptools

from pipeline.config import PipelineConfig

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def setup_kwargs():
    captured = {}
    real = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        code = compile((ROOT / "setup.py").read_text(), str(ROOT / "setup.py"), "exec")
        exec(code, {"__file__": str(ROOT / "setup.py"), "__name__": "setup"})
    finally:
        setuptools.setup = real
    return captured


def locked(name):
    m = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    return m.group(1)


def test_base_image_is_the_locked_tfx_release(setup_kwargs):
    tfx_version = re.search(r"^ARG TFX_VERSION=(\S+)", DOCKERFILE, re.M).group(1)
    assert re.search(r"^FROM \S+/tfx:\$\{TFX_VERSION\}$", DOCKERFILE, re.M)
    assert tfx_version == locked("tfx")
    assert f"tfx=={tfx_version}" in setup_kwargs["install_requires"]


def test_image_installs_the_lock_with_hashes_and_the_package(setup_kwargs):
    assert re.search(r"pip install .*--require-hashes .*-r requirements\.lock", DOCKERFILE)
    for requirement in setup_kwargs["install_requires"]:
        name, version = requirement.split("==")
        assert locked(name) == version, requirement
    for package in setup_kwargs["packages"]:
        assert re.search(rf"^COPY {package}/ {package}/$", DOCKERFILE, re.M), package


def test_compiled_paths_point_at_the_image_workdir():
    workdir = re.search(r"^WORKDIR (\S+)$", DOCKERFILE, re.M).group(1)
    assert PipelineConfig().image_workdir == workdir
    for copied in ("schemas/", "data/"):  # default schema_path and input_base
        assert re.search(rf"^COPY {copied} {copied}$", DOCKERFILE, re.M)


def test_every_package_the_spec_imports_is_packaged(setup_kwargs):
    # Executors, run_fn/preprocessing_fn and artifact types live in these top-level packages.
    assert {"pipeline", "components", "reporting", "serving"} <= set(setup_kwargs["packages"])


def test_the_compiled_command_is_importable_in_the_image():
    from pipeline.kubeflow import ENTRYPOINT

    module = ENTRYPOINT[ENTRYPOINT.index("-m") + 1]
    assert module.split(".")[0] in re.findall(r"^COPY (\w+)/ ", DOCKERFILE, re.M)
    assert re.search(rf"python -c \"import [^\"]*\b{re.escape(module)}\b", DOCKERFILE)
    assert re.search(r"^ENV PYTHONPATH=/pipeline$", DOCKERFILE, re.M)  # run-local's PYTHONPATH too
