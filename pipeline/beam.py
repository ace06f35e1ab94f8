"""Beam's running mode, chosen from the input's size and the machine's cores.

Why: every Beam component pays to start its runner, and in multi-processing mode also to
start one worker process per core (each imports TensorFlow and Beam: seconds per worker).
On small data that start-up is most of the component's time and one in-process worker is
fastest; on large data the work dominates and a worker per core pays back. The setting
`beam_args` may say `--direct_running_mode=auto` (the default); anything else is passed
through unchanged, so an explicit mode always wins.
"""

from __future__ import annotations

import glob
import logging
import os
import posixpath

from pipeline.config import BEAM_COMPONENTS, PipelineConfig, beam_runner_of, glob_pattern

LOG = logging.getLogger(__name__)
AUTO = "--direct_running_mode=auto"
# Measured at 1.5M rows on 2 cores (README, Benchmarks): these three ran faster, and in
# less memory, in one process than with a worker per core (their work is vectorised over
# Arrow batches and TF graphs, and workers mostly add serialisation between processes);
# the Evaluator, whose metrics run per example in Python, ran faster with workers.
# Untested on more cores, where the workers may pay back: there they keep the workers.
IN_PROCESS_NODES = ("ImportExampleGen", "StatisticsGen", "Transform")
IN_PROCESS_MAX_CORES = 2
# ExampleGen writes one file per Beam worker, and a gzip file is read by one worker only:
# from a single file the Evaluator's workers would take turns, not share the work (200k
# eval examples in 4 files: 64 s with 2 workers, 111 s in one process; in 1 file, no
# gain). So ExampleGen keeps one in-process worker per core, one output file each.
SHARDED_NODES = ("ImportExampleGen",)


# TFX stages an sdist of itself for a Beam component's workers unless its Beam args say how
# the workers get their dependencies (tfx/utils/dependency_utils.py, make_beam_dependency_flags:
# it returns early on extra_packages, setup_file, requirements_file or sdk_container_image).
# Building it copies the installed TFX and runs `setup.py sdist`: seconds per Beam component
# (measured in docs/benchmarks.md). Beam's FnApiRunner stages nothing (its workers are this
# interpreter or subprocesses of it, in the same environment), so that package is never read.
# The project's own setup.py is the true answer to TFX's question; the path is relative on
# purpose: Beam args are part of TFX's cache key, which must not hold where the clone lives.
LOCAL_DEPENDENCY_ARGS = ["--setup_file=./setup.py"]
STAGES_NOTHING = "--runner=FnApiRunner"


def local_node_args(cfg: PipelineConfig, per_node: dict[str, list[str]]) -> dict[str, list[str]]:
    """plan()'s per-node args, plus LOCAL_DEPENDENCY_ARGS for every Beam component where the
    runner is the FnApiRunner (any other runner may stage what the args name)."""
    if STAGES_NOTHING not in cfg.beam_args:
        return per_node
    return {node: per_node.get(node, []) + LOCAL_DEPENDENCY_ARGS for node in BEAM_COMPONENTS}


def pod_node_args(cfg: PipelineConfig, pod_args: list[str]) -> dict[str, list[str]]:
    """local_node_args for Kubeflow pods: the pipeline image installed the project from
    `image_workdir`'s setup.py (Dockerfile: WORKDIR, COPY setup.py, pip install .), so naming
    that file is true there. The pod's FnApiRunner stages nothing (its multi-processing
    workers are subprocesses in the same image); only TFX's check reads the flag."""
    if STAGES_NOTHING not in pod_args:
        return {}
    return {node: [f"--setup_file={posixpath.join(cfg.image_workdir, 'setup.py')}"] for node in BEAM_COMPONENTS}


def input_bytes(cfg: PipelineConfig) -> int | None:
    """Compressed size of the input files, or None where it cannot be known here (remote)."""
    base = cfg.path("input_base")
    if "://" in base:
        return None
    patterns = list(cfg.split_patterns.values()) or [glob_pattern(cfg.input_pattern)]
    files = {f for p in patterns for f in glob.glob(os.path.join(base, p)) if os.path.isfile(f)}
    return sum(os.path.getsize(f) for f in files)


def plan(
    cfg: PipelineConfig, size: int | None = None, cores: int | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """(cfg.beam_args with `auto` replaced by a concrete running mode and worker count,
    {node id: Beam args appended to the pipeline's for that node})."""
    args = list(cfg.beam_args)
    if AUTO not in args:
        return args, {}
    args = [a for a in args if a != AUTO and not a.startswith("--direct_num_workers")]
    size = input_bytes(cfg) if size is None else size
    cores = cores or os.cpu_count() or 1
    if size is None:  # remote input (e.g. Kubeflow): decide on the worker, one per core
        mode, workers = "multi_processing", 0
    elif size < cfg.beam_parallel_input_mb * 2**20 or cores == 1:
        mode, workers = "in_memory", 1
    else:
        mode, workers = "multi_processing", cores
    per_node = {}
    if mode == "multi_processing" and size is not None and cores <= IN_PROCESS_MAX_CORES:
        per_node = {
            node: ["--direct_running_mode=in_memory", f"--direct_num_workers={cores if node in SHARDED_NODES else 1}"]
            for node in IN_PROCESS_NODES
        }
    LOG.info(
        "Beam: %s with %s worker(s) (input %s, %d cores)%s",
        mode,
        workers or "one per core",
        "remote" if size is None else f"{size / 2**20:.1f} MB",
        cores,
        f"; in-process: {', '.join(per_node)}" if per_node else "",
    )
    return args + [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"], per_node


def resolve(cfg: PipelineConfig, size: int | None = None, cores: int | None = None) -> list[str]:
    """The pipeline-level half of plan()."""
    return plan(cfg, size, cores)[0]


# Each runner's Beam arguments, filled from the configuration (docs/scale-out.md).
# Dataflow runs every worker in the pipeline image (custom container: the project, TFX and
# the Beam SDK are already there, so nothing is staged and TFX builds no package of itself).
_DATAFLOW = [
    "--runner=DataflowRunner",
    "--project={dataflow_project}",
    "--region={dataflow_region}",
    "--temp_location={dataflow_temp_location}",
    "--sdk_container_image={worker_image}",
    "--sdk_location=container",
]
_PORTABLE = [
    "--runner=PortableRunner",
    "--job_endpoint={portable_job_endpoint}",
    "--environment_type={portable_environment_type}",
]
RUNNER_ARGS = {"dataflow": _DATAFLOW, "flink": _PORTABLE, "spark": _PORTABLE, "portable": _PORTABLE}
# DOCKER workers run an image; naming it as --sdk_container_image too tells TFX that the
# workers have their dependencies (tfx/utils/dependency_utils.py make_beam_dependency_flags),
# so it does not stage an sdist of TFX for them to reinstall.
ENVIRONMENT_ARGS = {
    "DOCKER": ["--environment_config={docker_image}", "--sdk_container_image={docker_image}"],
    "EXTERNAL": ["--environment_config={portable_environment_config}"],
    "PROCESS": ["--environment_config={portable_environment_config}"],
    "LOOPBACK": [],
}


def runner_args(cfg: PipelineConfig, runner: str) -> list[str]:
    """One runner's Beam arguments (none for direct: beam_args / plan() decide those)."""
    if runner == "direct":
        return []
    worker_image = cfg.beam_worker_image or cfg.image
    values = {
        **{
            f: getattr(cfg, f)
            for f in (
                "dataflow_project",
                "dataflow_region",
                "dataflow_temp_location",
                "portable_job_endpoint",
                "portable_environment_type",
                "portable_environment_config",
            )
        },
        "worker_image": worker_image,
        "docker_image": cfg.portable_environment_config or worker_image,
    }
    template = RUNNER_ARGS[runner]
    if template is _PORTABLE:
        template = template + ENVIRONMENT_ARGS[cfg.portable_environment_type]
    return [a.format(**values) for a in template] + list(cfg.beam_runner_args)


def component_args(cfg: PipelineConfig, per_node: dict[str, list[str]]) -> dict[str, list[str]]:
    """{Beam component id: its own Beam args}: plan()'s for a direct component, its runner's
    otherwise, then beam_component_args. Appended after the pipeline's args, so they win."""
    out = {}
    for node in BEAM_COMPONENTS:
        runner = beam_runner_of(cfg, node)
        args = per_node.get(node, []) if runner == "direct" else runner_args(cfg, runner)
        args = args + list(cfg.beam_component_args.get(node, []))
        if args:
            out[node] = args
    if any(beam_runner_of(cfg, n) != "direct" for n in BEAM_COMPONENTS):
        LOG.info("Beam runners: %s", ", ".join(f"{n} {beam_runner_of(cfg, n)}" for n in BEAM_COMPONENTS))
    return out
