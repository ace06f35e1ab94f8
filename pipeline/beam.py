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

from pipeline.config import PipelineConfig

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


def input_bytes(cfg: PipelineConfig) -> int | None:
    """Compressed size of the input files, or None where it cannot be known here (remote)."""
    base = cfg.path("input_base")
    if "://" in base:
        return None
    patterns = list(cfg.split_patterns.values()) or [cfg.input_pattern]
    files = {f for p in patterns for f in glob.glob(os.path.join(base, p)) if os.path.isfile(f)}
    return sum(os.path.getsize(f) for f in files)


def plan(cfg: PipelineConfig, size: int | None = None,
         cores: int | None = None) -> tuple[list[str], dict[str, list[str]]]:
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
        per_node = {node: ["--direct_running_mode=in_memory",
                           f"--direct_num_workers={cores if node in SHARDED_NODES else 1}"]
                    for node in IN_PROCESS_NODES}
    LOG.info("Beam: %s with %s worker(s) (input %s, %d cores)%s", mode, workers or "one per core",
             "remote" if size is None else f"{size / 2**20:.1f} MB", cores,
             f"; in-process: {', '.join(per_node)}" if per_node else "")
    return args + [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"], per_node


def resolve(cfg: PipelineConfig, size: int | None = None, cores: int | None = None) -> list[str]:
    """The pipeline-level half of plan()."""
    return plan(cfg, size, cores)[0]
