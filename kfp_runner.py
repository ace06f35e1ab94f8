"""Compile the same DAG for Kubeflow Pipelines v2: `python kfp_runner.py compile [--config F] [--set K=V]`.

Thin on purpose: the DAG is `pipeline.dag.create_pipeline`, the settings are the one
`PipelineConfig`. On a cluster, set pipeline_root, input_base, schema_path and serving_dir
to locations every task can reach (e.g. gs:// or a shared volume), and `image` to the
pipeline image built from the Dockerfile.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pipeline.config import ConfigError, load_config, parse_overrides

LOG = logging.getLogger("pipeline.kfp")


def compile_pipeline(cfg, output: str) -> str:
    from tfx import v1 as tfx

    from pipeline.dag import create_pipeline

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=cfg.image),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    runner.run(create_pipeline(cfg))
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("compile", help="write the KFP v2 pipeline spec")
    comp.add_argument("--config", help="TOML file with settings")
    comp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    comp.add_argument("--output", default="build/pipeline.json", help="spec file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_config(args.config, parse_overrides(args.set))
    except (ConfigError, ValueError) as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    LOG.info("wrote %s", compile_pipeline(cfg, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
