"""A local Beam "cluster": Beam's job service and a worker pool, each its own process.

Why: on Flink or Spark the runner is not the process that builds the pipeline, and the
Python code runs in SDK workers that know nothing of the launching machine's files or
imports. This starts the same shape here: Beam's local job service (its FnApiRunner plays
the cluster's runner) and Beam's worker pool in EXTERNAL mode, the shape of a Flink task
manager with a Python worker-pool sidecar, starting each worker through portable/boot.py
(the stand-in for the SDK image's boot). Both run from their own directory with an empty
PYTHONPATH, so the project's modules reach a worker only when staged with the job.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (TFX 1.21's image): tomli, the same parser, is in the lock
    import tomli as tomllib

LOG = logging.getLogger(__name__)
BOOT = Path(__file__).resolve().parent / "boot.py"
PROJECT_DIR = Path(__file__).resolve().parent.parent


class ClusterError(RuntimeError):
    """The local cluster could not start; the message says what to fix."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def check_host_name() -> None:
    """The local runner hands EXTERNAL workers its own host name, socket.getfqdn()
    (apache_beam/runners/portability/fn_api_runner/worker_handlers.py,
    ExternalWorkerHandler.host_from_worker): it must resolve here."""
    name = socket.getfqdn()
    try:
        socket.gethostbyname(name)
    except OSError:
        raise ClusterError(
            f"host name {name!r} does not resolve: Beam's workers connect back to it; "
            f"add it to /etc/hosts (bin/runtime binds the host's /etc/hosts)"
        ) from None


def pip_wheel(src: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """A wheel of the project at `src` into `out_dir`, from what is installed: no build
    isolation and no index, because nothing may be downloaded at run time."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out_dir),
            str(src),
        ],
        check=True,
        cwd=src,
        capture_output=True,
    )


def build_wheel(out_dir: str | os.PathLike) -> str:
    """The project as a wheel (pyproject.toml + setup.py), built from a copy so the checkout
    gets no build files."""
    out_dir = Path(out_dir)
    src = out_dir / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    packaging = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name in ("pyproject.toml", "setup.py", "README.md", "requirements.lock"):
        shutil.copy(PROJECT_DIR / name, src / name)
    for module in packaging["py-modules"]:
        shutil.copy(PROJECT_DIR / f"{module}.py", src / f"{module}.py")
    for package in packaging["packages"]:
        shutil.copytree(PROJECT_DIR / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip_wheel(src, out_dir)
    wheels = sorted(out_dir.glob("taxi_tfx_pipeline-*.whl"))
    if len(wheels) != 1:
        raise ClusterError(f"expected one project wheel in {out_dir}, found {wheels}")
    return str(wheels[0])


class LocalCluster:
    """`with LocalCluster(workdir) as c:` c.beam_args() are the PortableRunner's arguments."""

    def __init__(self, workdir: str | os.PathLike, start_timeout_s: float = 60.0):
        self.workdir = Path(workdir)
        self.timeout = start_timeout_s
        self.procs: list[subprocess.Popen] = []
        self.job_port = self.pool_port = 0

    def _env(self) -> dict[str, str]:
        tmp = self.workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(PYTHONPATH="", PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp))
        return env

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        home = self.workdir / name  # not the checkout: nothing of the project is importable
        home.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{name}.log", "w")
        proc = subprocess.Popen(
            cmd, cwd=home, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )  # its own group: stop() ends its workers too
        self.procs.append(proc)
        return proc

    def _wait_for_port(self, port: int, proc: subprocess.Popen, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}; see {self.workdir / (name + '.log')}")
            try:
                socket.create_connection(("localhost", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise ClusterError(f"{name} did not listen on port {port} within {self.timeout:.0f} s")

    def __enter__(self) -> "LocalCluster":
        check_host_name()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.job_port, self.pool_port = _free_port(), _free_port()
            job = self._start(
                "job_service",
                [
                    sys.executable,
                    "-m",
                    "apache_beam.runners.portability.local_job_service_main",
                    f"--port={self.job_port}",
                    f"--staging_dir={self.workdir / 'staging'}",
                ],
            )
            pool = self._start(
                "worker_pool", [sys.executable, str(BOOT), "--worker_pool", f"--service_port={self.pool_port}"]
            )
            self._wait_for_port(self.job_port, job, "job_service")
            self._wait_for_port(self.pool_port, pool, "worker_pool")
        except BaseException:
            self.stop()
            raise
        LOG.info(
            "local Beam cluster: job service localhost:%d, worker pool localhost:%d", self.job_port, self.pool_port
        )
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=15)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.procs.clear()

    def endpoints(self) -> dict[str, str]:
        """The portable runner settings (pipeline/config.py) that point at this cluster."""
        return {
            "portable_job_endpoint": f"localhost:{self.job_port}",
            "portable_environment_type": "EXTERNAL",
            "portable_environment_config": f"localhost:{self.pool_port}",
        }
