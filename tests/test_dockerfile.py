"""The pipeline image installs the same pins as setup.py and the local runtime.

No Docker daemon is available here, so the image is not built in CI; these checks keep the
Dockerfile, pyproject.toml, setup.py, requirements.lock and the compiled spec's paths from
drifting apart.
"""

import re
from pathlib import Path

import pytest
import setuptools
import tomllib

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
    captured["packages"] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
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
    assert re.search(r"^COPY pyproject\.toml setup\.py README\.md \./$", DOCKERFILE, re.M)


def test_compiled_paths_point_at_the_image_workdir():
    workdir = re.search(r"^WORKDIR (\S+)$", DOCKERFILE, re.M).group(1)
    assert PipelineConfig().image_workdir == workdir
    for copied in ("schemas/", "data/"):  # default schema_path and input_base
        assert re.search(rf"^COPY {copied} {copied}$", DOCKERFILE, re.M)
    # The pods' Beam args name WORKDIR/setup.py (pipeline/beam.py pod_node_args): it is
    # there, and the project was installed from it.
    assert re.search(r"^COPY [^\n]*\bsetup\.py\b[^\n]* \./$", DOCKERFILE, re.M)
    assert re.search(r"^RUN python -m pip install [^\n]*--no-deps \. ", DOCKERFILE, re.M)


def test_every_package_the_spec_imports_is_packaged(setup_kwargs):
    # Executors, run_fn/preprocessing_fn and artifact types live in these top-level packages.
    assert {"modeling", "metrics", "pipeline", "components", "reporting", "serving"} <= set(setup_kwargs["packages"])


# Python of TFX 1.21's image: its Dockerfile copies Beam's boot from
# apache/beam_python3.10_sdk (tensorflow/tfx v1.21.0, tfx/tools/docker/Dockerfile, line 122).
TFX_IMAGE_PYTHON = "3.10"


def _arg(name):
    return re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M).group(1)


def _final_stage():
    return DOCKERFILE[[m.start() for m in re.finditer(r"^FROM ", DOCKERFILE, re.M)][-1] :]


def locked_for_python(name, python):
    """The lock's pin of `name` whose environment marker holds for `python`."""
    from packaging.markers import Marker

    text = (ROOT / "requirements.lock").read_text()
    for version, marker in re.findall(rf"^{re.escape(name)}==(\S+) ; (.+?) \\$", text, re.M):
        if Marker(marker).evaluate({"python_full_version": f"{python}.0", "python_version": python}):
            return version
    return locked(name)


def test_beam_boot_comes_from_the_sdk_image_of_the_installed_beam_and_python():
    """Dataflow's custom containers (and Flink/Spark DOCKER workers) start
    /opt/apache/beam/boot; it must come from the SDK image matching the Beam and Python
    the image installs, or Dataflow refuses the SDK version the launcher reports."""
    python, beam_version = _arg("BEAM_PYTHON"), _arg("BEAM_VERSION")
    assert python == TFX_IMAGE_PYTHON
    assert beam_version == locked_for_python("apache-beam", python)
    assert (
        re.search(
            r"^FROM apache/beam_python\$\{BEAM_PYTHON\}_sdk:\$\{BEAM_VERSION\} AS (\S+)$", DOCKERFILE, re.M
        ).group(1)
        == "beam_sdk"
    )
    final = _final_stage()
    assert final.startswith("FROM gcr.io/tfx-oss-public/tfx:${TFX_VERSION}")
    assert re.search(r"^COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam$", final, re.M)
    entrypoints = re.findall(r"^ENTRYPOINT (.+)$", final, re.M)
    assert entrypoints[-1] == '["/opt/apache/beam/boot"]'
    # The build itself fails when the installed Beam or Python differ from the boot's.
    assert "apache_beam.__version__ == '${BEAM_VERSION}'" in final
    assert "== '${BEAM_PYTHON}'" in final


def test_kubeflow_tasks_do_not_start_through_the_beam_entrypoint():
    """A task with no command of its own would start Beam's boot instead of TFX."""
    import json

    spec = json.loads((ROOT / "tests" / "golden" / "pipeline.json").read_text())
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors and all(e["container"]["command"][:2] == ["python", "-m"] for e in executors.values())


def test_the_pipeline_image_is_the_default_beam_worker_container():
    from pipeline import beam
    from pipeline.config import load_config

    cfg = load_config(
        ROOT / "configs" / "kubeflow.toml",
        {
            "beam_runner": "dataflow",
            "dataflow_project": "p",
            "dataflow_region": "r",
            "dataflow_temp_location": "gs://b/tmp",
            "pipeline_root": "gs://b/root",
        },
        base_dir=ROOT,
    )
    assert f"--sdk_container_image={cfg.image}" in beam.runner_args(cfg, "dataflow")


def test_the_compiled_command_is_importable_in_the_image():
    from pipeline.kubeflow import ENTRYPOINT

    module = ENTRYPOINT[ENTRYPOINT.index("-m") + 1]
    assert module.split(".")[0] in re.findall(r"^COPY (\w+)/ ", DOCKERFILE, re.M)
    assert re.search(rf"python -c \"import [^\"]*\b{re.escape(module)}\b", DOCKERFILE)
    assert re.search(r"^ENV PYTHONPATH=/pipeline$", DOCKERFILE, re.M)  # run-local's PYTHONPATH too
