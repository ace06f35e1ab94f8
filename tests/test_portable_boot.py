"""portable/boot.py, the stand-in for Beam's SDK container boot: as strict as boot.go.

Facts from apache/beam sdks/python/container/boot.go and piputil.go (see the module's
docstring); these tests hold the stand-in to them without a job service.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from portable import boot, cluster

pytestmark = pytest.mark.integration  # builds wheels and starts Beam boot processes


def test_a_worker_without_an_id_or_provision_endpoint_is_refused(tmp_path):
    for args, message in (([], "No id provided."), (["--id=1"], "No provision endpoint provided.")):
        proc = subprocess.run([sys.executable, boot.__file__, *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode != 0 and message in proc.stderr


def _wheel(tmp_path, name, requires):
    src = tmp_path / f"src-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text("VALUE = 42\n")
    (src / "setup.py").write_text(
        f"from setuptools import setup\nsetup(name={name!r}, version='1.0', packages=[{name!r}], "
        f"install_requires={requires!r})\n"
    )
    cluster.pip_wheel(src, tmp_path / "staged")
    return next((tmp_path / "staged").glob(f"{name}-*.whl")).name


def _install(tmp_path, wheel):
    staged = tmp_path / "staged"
    (staged / boot.EXTRA_PACKAGES_FILE).write_text(wheel + "\n")
    venv = boot.make_venv(str(tmp_path), "w1")
    python = f"{venv}/bin/python"
    with open(tmp_path / "pip.log", "w") as log:
        boot.install(python, [boot.EXTRA_PACKAGES_FILE, wheel], str(staged), log)
    return python


def test_staged_extra_package_is_installed_in_the_worker_venv_only(tmp_path):
    """Its dependencies come from the environment the worker runs in (here: apache-beam)."""
    python = _install(tmp_path, _wheel(tmp_path, "staged_pkg", ["apache-beam"]))
    out = subprocess.run(
        [python, "-c", "import staged_pkg, apache_beam; print(staged_pkg.VALUE, staged_pkg.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    value, where = out.stdout.split()
    assert value == "42" and where.startswith(str(tmp_path / "beam-venv-worker-w1"))
    assert (
        subprocess.run([sys.executable, "-c", "import staged_pkg"], cwd=tmp_path, capture_output=True).returncode != 0
    )  # not in the runtime itself


def test_a_dependency_missing_from_the_worker_environment_fails_the_worker(tmp_path):
    """boot.go's second pip round would download it; the stand-in never reaches an index."""
    with pytest.raises(RuntimeError, match="pip install .*failed"):
        _install(tmp_path, _wheel(tmp_path, "needy_pkg", ["no-such-dependency-xyz==1.0"]))
