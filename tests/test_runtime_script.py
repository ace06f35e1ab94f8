"""The runtime script's decisions: which mode a host gets, and when a runtime is reused."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.taxi_sample import PROJECT_DIR

SCRIPT = PROJECT_DIR / "bin" / "runtime"


def runtime(*args: str, env: dict | None = None, script=SCRIPT) -> subprocess.CompletedProcess:
    """Run bin/runtime; `decide` calls drop the mode the tests themselves run under."""
    import os

    full_env = dict(os.environ)
    if args and args[0] == "decide":
        full_env.pop("TFX_RUNTIME_MODE", None)
    full_env.update(env or {})
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=full_env)


@pytest.mark.parametrize(
    "glibc, python, mode",
    [
        ("2.36", "3.11", "chroot"),  # Debian 12: TFX 1.21 wheels cannot load
        ("2.38", "3.13", "chroot"),
        ("2.39", "3.13", "venv"),
        ("2.41", "3.10", "venv"),
        ("2.41", "3.9", "chroot"),  # Python below what the lock supports
        ("2.41", "3.14", "chroot"),  # Python above what TFX 1.21 supports
        ("2.41", "", "chroot"),  # no python3 on the host
    ],
)
def test_mode_follows_glibc_and_python(glibc, python, mode):
    result = runtime("decide", "--glibc", glibc, "--python", python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[0] == mode


def test_mode_can_be_forced_and_bad_values_are_refused():
    assert runtime("decide", "--glibc", "2.36", env={"TFX_RUNTIME_MODE": "venv"}).stdout.startswith("venv")
    bad = runtime("decide", env={"TFX_RUNTIME_MODE": "docker"})
    assert bad.returncode != 0 and "TFX_RUNTIME_MODE" in bad.stderr


def _env_dir(script) -> str:
    info = runtime("info", script=script).stdout
    return dict(line.split("\t", 1) for line in info.splitlines())["env"]


def test_runtime_is_keyed_by_the_lock_file(tmp_path):
    clone = tmp_path / "clone"
    (clone / "bin").mkdir(parents=True)
    shutil.copy(SCRIPT, clone / "bin" / "runtime")
    shutil.copy(PROJECT_DIR / "requirements.lock", clone / "requirements.lock")
    # Another clone with the same lock shares the runtime ...
    assert _env_dir(clone / "bin" / "runtime") == _env_dir(SCRIPT)
    # ... and a changed lock gets a new one.
    with open(clone / "requirements.lock", "a") as f:
        f.write("# changed\n")
    assert _env_dir(clone / "bin" / "runtime") != _env_dir(SCRIPT)


def test_runtime_lives_outside_the_clone_and_is_ready():
    env_dir = _env_dir(SCRIPT)
    assert not env_dir.startswith(str(PROJECT_DIR))
    info = dict(line.split("\t", 1) for line in runtime("info").stdout.splitlines())
    assert info["ready"] == "yes"  # these tests run inside it


def test_lock_pins_every_package_with_hashes():
    lines = (PROJECT_DIR / "requirements.lock").read_text().splitlines()
    pins = [l for l in lines if l and l[0].isalnum()]
    assert pins and all("==" in l for l in pins)
    names = {l.split("==")[0] for l in pins}
    assert {"tfx", "kfp", "kfp-pipeline-spec", "tensorflow", "apache-beam"} <= names
    assert any(l.startswith("tfx==1.21.0") for l in pins)
    assert any(l.startswith("kfp==2.16.1") for l in pins)
    assert any(l.startswith("kfp-pipeline-spec==2.16.") for l in pins)
    # every pin is followed by at least one hash
    text = "\n".join(lines)
    assert text.count("--hash=sha256:") >= len(pins)


def test_installed_stack_matches_the_lock():
    from importlib.metadata import version

    lock = (PROJECT_DIR / "requirements.lock").read_text()
    for dist in ("tfx", "tensorflow", "apache-beam", "tensorflow-model-analysis", "kfp"):
        assert f"\n{dist}=={version(dist)} " in lock, dist
