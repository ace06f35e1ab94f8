#!/usr/bin/env python3
"""Stand-in for Beam's Python SDK container entrypoint, /opt/apache/beam/boot.

Why: on Flink, Spark and Dataflow every SDK worker starts through that program (Go, in the
apache/beam_python SDK image and in the pipeline image, see Dockerfile). It fetches the
job's staged files and pip-installs them before the worker imports any user code, which
is what decides whether a pipeline's own modules reach the workers (tensorflow/tfx#4948).
No Docker engine or Go toolchain runs here, so this script follows that program step by
step for the local job service (portable/cluster.py). Facts taken from apache/beam
sdks/python/container/boot.go (commit e6b636c9) and piputil.go (commit beb3039a); it
imports only Beam, never the project, and runs from a directory without the project.

Where it differs, it is stricter or local:
- pip never reaches an index (`--no-index`): boot.go's second install round may download
  missing dependencies from PyPI; here a dependency the worker environment lacks fails
  the worker, as it would on a cluster without internet access.
- boot.go makes `python -m venv --system-site-packages` over the image's Python; the
  runtime's Python is itself a venv, so the worker venv sees the runtime's packages
  through a .pth file instead (same order: the worker venv's own packages first).
- The semi-persistent directory defaults to $TMPDIR (boot.go: /tmp), so that concurrent
  local clusters do not share one `staged/` directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile

LOG = logging.getLogger("beam-boot")
# boot.go: names kept in sync with stager.py.
WORKFLOW_FILE = "workflow.tar.gz"
REQUIREMENTS_FILE = "requirements.txt"
EXTRA_PACKAGES_FILE = "extra_packages.txt"
WORKER_POOL_ID_ENV = "BEAM_PYTHON_WORKER_POOL_ID"
HARNESS = "apache_beam.runners.worker.sdk_worker_main"
PIP = ["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-index"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # The container contract's flags (boot.go, `flag.*` at the top).
    p.add_argument("--worker_pool", action="store_true")
    p.add_argument("--service_port", type=int, default=50000)  # boot.go hard-codes 50000
    p.add_argument("--id", default="")
    p.add_argument("--logging_endpoint", default="")
    p.add_argument("--artifact_endpoint", default="")
    p.add_argument("--provision_endpoint", default="")
    p.add_argument("--control_endpoint", default="")
    p.add_argument("--semi_persist_dir", default=tempfile.gettempdir())
    return p.parse_args(argv)


def worker_pool(port: int) -> int:
    """boot.go `--worker_pool`: Beam's worker pool, starting each worker through this file."""
    os.environ[WORKER_POOL_ID_ENV] = str(os.getpid())
    cmd = [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}",
        f"--container_executable={os.path.abspath(__file__)}",
    ]
    LOG.info("starting worker pool %s: %s", os.getpid(), " ".join(cmd))
    return subprocess.call(cmd)


def provision_info(endpoint: str, worker_id: str):
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        return stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", worker_id)]
        ).info


def materialize(endpoint: str, dependencies, dest: str) -> list[str]:
    """artifact.Materialize: every dependency written under its staged name, checked
    against its sha256 where the runner gives one."""
    import hashlib

    import grpc
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_artifact_api_pb2, beam_artifact_api_pb2_grpc, beam_runner_api_pb2

    os.makedirs(dest, exist_ok=True)
    names = []
    with grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", -1)]) as channel:
        stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        resolved = stub.ResolveArtifacts(
            beam_artifact_api_pb2.ResolveArtifactsRequest(artifacts=dependencies)
        ).replacements
        for artifact in resolved:
            if artifact.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
                raise RuntimeError(f"artifact without a staged name: {artifact.type_urn} {artifact.role_urn}")
            name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload).staged_name
            want = ""
            if artifact.type_urn == common_urns.artifact_types.FILE.urn:
                want = beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload).sha256
            digest = hashlib.sha256()
            path = os.path.join(dest, name)
            with open(path, "wb") as out:
                for chunk in stub.GetArtifact(beam_artifact_api_pb2.GetArtifactRequest(artifact=artifact)):
                    digest.update(chunk.data)
                    out.write(chunk.data)
            if want and digest.hexdigest() != want:
                raise RuntimeError(f"staged file {name}: sha256 {digest.hexdigest()} != {want}")
            LOG.info("found artifact: %s", name)
            names.append(name)
    return names


def make_venv(base: str, worker_id: str) -> str:
    """setupVenv: a fresh environment per worker that still sees the installed packages."""
    venv = os.path.join(base, f"beam-venv-worker-{worker_id}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.check_call([sys.executable, "-m", "venv", "--without-pip", venv])
    site = sysconfig.get_path("purelib", vars={"base": venv, "platbase": venv})
    with open(os.path.join(site, "_beam_boot_base.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    return venv


def pip(python: str, args: list[str], log) -> None:
    proc = subprocess.run([python, *PIP, *args], stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"pip install {' '.join(args)} failed (exit {proc.returncode}); see {log.name}")


def install(python: str, files: list[str], staged: str, log) -> None:
    """installSetupPackages: requirements, then extra packages, then the workflow tarball."""
    from importlib import metadata

    try:  # boot.go refuses an environment without Beam before installing anything
        metadata.version("apache-beam")
    except metadata.PackageNotFoundError:
        raise RuntimeError("Apache Beam is not installed in the runtime environment") from None
    if REQUIREMENTS_FILE in files:
        pip(python, ["-r", os.path.join(staged, REQUIREMENTS_FILE), "--find-links", staged], log)
    if EXTRA_PACKAGES_FILE in files:
        with open(os.path.join(staged, EXTRA_PACKAGES_FILE)) as f:
            for package in filter(None, (line.strip() for line in f)):
                if package not in files:
                    raise RuntimeError(f"extra package {package!r} was not staged")
                # piputil.go: reinstall the package alone, then let pip check its dependencies.
                pip(python, ["--upgrade", "--force-reinstall", "--no-deps", os.path.join(staged, package)], log)
                pip(python, [os.path.join(staged, package)], log)
                LOG.info("installed extra package %s", package)
    if WORKFLOW_FILE in files:
        pip(python, [os.path.join(staged, WORKFLOW_FILE)], log)
        LOG.info("installed %s", WORKFLOW_FILE)


def launch(args) -> int:
    if not args.id:
        raise SystemExit("No id provided.")
    if not args.provision_endpoint:
        raise SystemExit("No provision endpoint provided.")
    info = provision_info(args.provision_endpoint, args.id)
    logging_ep = info.logging_endpoint.url or args.logging_endpoint
    artifact_ep = info.artifact_endpoint.url or args.artifact_endpoint
    control_ep = info.control_endpoint.url or args.control_endpoint
    for name, value in (("logging", logging_ep), ("artifact", artifact_ep), ("control", control_ep)):
        if not value:
            raise SystemExit(f"No {name} endpoint provided.")

    from apache_beam.portability.api import endpoints_pb2
    from google.protobuf import json_format

    os.makedirs(args.semi_persist_dir, exist_ok=True)
    venv = make_venv(args.semi_persist_dir, args.id)
    try:
        staged = os.path.join(args.semi_persist_dir, f"staged-{args.id}")
        files = materialize(artifact_ep, info.dependencies, staged)
        python = os.path.join(venv, "bin", "python")
        with open(os.path.join(args.semi_persist_dir, f"pip-{args.id}.log"), "w") as log:
            install(python, files, staged, log)
        env = dict(
            os.environ,
            VIRTUAL_ENV=venv,
            PATH=f"{venv}/bin:{os.environ.get('PATH', '')}",
            PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
            SEMI_PERSISTENT_DIRECTORY=args.semi_persist_dir,
            LOGGING_API_SERVICE_DESCRIPTOR=str(endpoints_pb2.ApiServiceDescriptor(url=logging_ep)),
            CONTROL_API_SERVICE_DESCRIPTOR=str(endpoints_pb2.ApiServiceDescriptor(url=control_ep)),
            RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
        )
        if info.HasField("status_endpoint"):
            env["STATUS_API_SERVICE_DESCRIPTOR"] = str(info.status_endpoint)
        for key in ("job_name", "job_id"):
            if key in info.metadata:
                env[key.upper()] = info.metadata[key]
        return run_workers(python, [args.id, *info.sibling_worker_ids], env)
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def run_workers(python: str, worker_ids: list[str], env: dict) -> int:
    """One harness per worker id, each restarted after a crash up to three times."""

    def start(worker_id):
        return subprocess.Popen([python, "-m", HARNESS], env=dict(env, WORKER_ID=worker_id), stdout=sys.stderr)

    procs = {worker_id: (start(worker_id), 1) for worker_id in worker_ids}
    try:
        return _wait(procs, start)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait()


def _wait(procs: dict, start) -> int:
    status = 0
    while procs:
        for worker_id, (proc, tries) in list(procs.items()):
            code = proc.wait()
            del procs[worker_id]
            if code and tries < 4:
                LOG.warning("Python (worker %s) exited %d times: %s; restarting", worker_id, tries, code)
                procs[worker_id] = (start(worker_id), tries + 1)
            elif code:
                LOG.error("Python (worker %s) exited %d times: %s; out of retries", worker_id, tries, code)
                status = 1
    return status


def main(argv=None) -> int:
    # worker_pool_main reads nothing from the container's stdout (a pipe no one drains):
    # everything goes to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s beam-boot %(message)s")
    args = parse_args(argv)
    # boot.go traps SIGTERM to stop its workers and remove the venv: here SystemExit
    # unwinds through run_workers() and launch()'s cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.worker_pool:
        return worker_pool(args.service_port)
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
