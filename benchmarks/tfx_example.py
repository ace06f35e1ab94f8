"""Run TFX's own Chicago taxi example (`taxi_pipeline_native_keras.py` from the installed
tfx package) on the benchmark's CSV, with its own pipeline and module code.

What is changed, and why: only paths (data root, pipeline root, metadata, serving dir,
all under the benchmark's work directory) and the orchestrator. The example's `__main__`
uses BeamDagRunner; here LocalDagRunner runs the same `_create_pipeline(...)`, because it
is the orchestrator our DAG uses (so the comparison is of the pipelines, not of the
orchestrators) and it emits the per-component log lines the benchmark times. Its Beam
arguments are its own (`multi_processing`, one worker per core) plus `--runner=FnApiRunner`:
Beam's default would pick the Prism runner, which downloads a binary at run time.

    python -m benchmarks.tfx_example --data-root CSV_DIR --workdir DIR
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

LOG = logging.getLogger("pipeline.tfx_example")  # "pipeline.*" lines go to the console


def example_dir() -> str:
    import tfx

    return os.path.join(os.path.dirname(tfx.__file__), "examples", "chicago_taxi_pipeline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", required=True, help="directory holding the CSV file(s)")
    parser.add_argument("--workdir", required=True)
    parser.add_argument(
        "--beam-arg", action="append", default=None, help="replace the example's Beam arguments (repeatable)"
    )
    args = parser.parse_args(argv)

    from pipeline.progress import ComponentProgress, configure_logging

    os.makedirs(args.workdir, exist_ok=True)
    configure_logging(os.path.join(args.workdir, "run.log"))
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
    with open(os.path.join(args.workdir, "run.log"), "a") as f:
        os.dup2(f.fileno(), 2)  # native TF/Beam logs to the log file, as our runner does

    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    beam_args = args.beam_arg or list(example._beam_pipeline_args) + ["--runner=FnApiRunner"]
    pipeline = example._create_pipeline(
        pipeline_name=example._pipeline_name,
        pipeline_root=os.path.join(args.workdir, "pipeline_root"),
        data_root=args.data_root,
        module_file=os.path.join(example_dir(), "taxi_utils_native_keras.py"),
        serving_model_dir=os.path.join(args.workdir, "serving_model"),
        metadata_path=os.path.join(args.workdir, "metadata.db"),
        beam_pipeline_args=beam_args,
    )
    progress = ComponentProgress([c.id for c in pipeline.components])
    logging.getLogger().addHandler(progress)
    LOG.info("TFX example %s, beam args %s", example._pipeline_name, " ".join(beam_args))
    start = time.monotonic()
    LocalDagRunner().run(pipeline)
    LOG.info("finished in %.1f s", time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
